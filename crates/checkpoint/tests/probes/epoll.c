/* Probe: an epoll instance watching a pipe's read end (level-triggered,
 * data 0x1111), an eventfd (edge-triggered, EPOLLOUT too, data
 * 0xdeadbeefcafe) and a dup of the eventfd under another number
 * (one-shot). After the restore the watches are the same (fdinfo), the
 * kernel reports them with their data, and EPOLL_CTL_MOD finds each by
 * its fd number. */
#include "probe.h"
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int watches(int ep, char *out, size_t n) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
    FILE *f = fopen(path, "r");
    int count = 0;
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "tfd:", 4) != 0) continue;
        char *ino = strstr(line, " pos:");
        if (ino) *ino = 0;
        strncat(out, line, n - strlen(out) - 2);
        strcat(out, "\n");
        count++;
    }
    if (f) fclose(f);
    return count;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int p[2];
    pipe(p);
    int ev = eventfd(0, EFD_NONBLOCK);
    int evdup = dup(ev);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e1 = {EPOLLIN, {.u64 = 0x1111}};
    struct epoll_event e2 = {EPOLLIN | EPOLLOUT | EPOLLET, {.u64 = 0xdeadbeefcafeULL}};
    struct epoll_event e3 = {EPOLLIN | EPOLLONESHOT, {.u64 = 3}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e1) || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e2) ||
        epoll_ctl(ep, EPOLL_CTL_ADD, evdup, &e3)) { perror("epoll_ctl"); return 2; }
    char before[2048];
    watches(ep, before, sizeof before);
    probe_ready();
    probe_wait();
    char after[2048];
    /* fdinfo lists watches in the kernel's tree order (by file address):
     * compare them as a set. */
    int same = watches(ep, after, sizeof after) == 3 && strlen(after) == strlen(before);
    for (char *l = before; same && *l; l = strchr(l, '\n') + 1) {
        char one[256];
        size_t len = (size_t)(strchr(l, '\n') - l) + 1;
        memcpy(one, l, len);
        one[len] = 0;
        same = strstr(after, one) != NULL;
    }
    if (!same) probe_bad("watches differ:\n%swas:\n%s", after, before);
    write(p[1], "x", 1);
    struct epoll_event got[8];
    int n = epoll_wait(ep, got, 8, 0);
    int seen_pipe = 0, seen_ev = 0;
    for (int i = 0; i < n; i++) {
        if (got[i].data.u64 == 0x1111 && got[i].events == EPOLLIN) seen_pipe = 1;
        if (got[i].data.u64 == 0xdeadbeefcafeULL && got[i].events == EPOLLOUT) seen_ev = 1;
    }
    if (!seen_pipe) probe_bad("the pipe's readiness is not reported with its data");
    if (!seen_ev) probe_bad("the eventfd's EPOLLOUT is not reported with its data");
    struct epoll_event mod = {EPOLLIN, {.u64 = 9}};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, evdup, &mod)) probe_bad("EPOLL_CTL_MOD of the dup failed: not watched under its number");
    if (epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL)) probe_bad("EPOLL_CTL_DEL of the pipe failed");
    if (fcntl(ep, F_GETFD) != FD_CLOEXEC) probe_bad("epoll lost FD_CLOEXEC");
    return probe_end();
}
