/* Probe: an inotify instance watching two directories (a gap in the watch
 * descriptors: the one between was removed) and a file. After the
 * restore the watches have the same descriptors, files and masks, and
 * events arrive under them. */
#include "probe.h"
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    mkdir("watched-a", 0700);
    mkdir("watched-b", 0700);
    mkdir("watched-gone", 0700);
    int f = open("watched-file", O_CREAT | O_WRONLY, 0600);
    close(f);
    int in = inotify_init1(IN_NONBLOCK);
    int wa = inotify_add_watch(in, "watched-a", IN_CREATE | IN_DELETE);
    int wg = inotify_add_watch(in, "watched-gone", IN_CREATE);
    int wb = inotify_add_watch(in, "watched-b", IN_CREATE | IN_ONLYDIR);
    int wf = inotify_add_watch(in, "watched-file", IN_MODIFY | IN_CLOSE_WRITE);
    inotify_rm_watch(in, wg);
    char drain[4096];
    while (read(in, drain, sizeof drain) > 0) {} /* the IN_IGNORED of the removal */
    probe_ready();
    probe_wait();
    /* Same descriptors: adding an existing watch returns its number. */
    if (inotify_add_watch(in, "watched-a", IN_CREATE | IN_DELETE) != wa) probe_bad("watched-a is not wd %d", wa);
    if (inotify_add_watch(in, "watched-b", IN_CREATE | IN_ONLYDIR) != wb) probe_bad("watched-b is not wd %d", wb);
    if (inotify_add_watch(in, "watched-file", IN_MODIFY | IN_CLOSE_WRITE) != wf) probe_bad("watched-file is not wd %d", wf);
    char path[64];
    snprintf(path, sizeof path, "watched-b/new-%d", getpid());
    int c = open(path, O_CREAT | O_WRONLY, 0600);
    close(c);
    unlink(path);
    f = open("watched-file", O_WRONLY);
    write(f, "m", 1);
    close(f);
    usleep(1000);
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(in, buf, sizeof buf);
    int create_b = 0, modify_f = 0, other = 0;
    for (char *p = buf; n > 0 && p < buf + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        if (e->wd == wb && (e->mask & IN_CREATE)) create_b = 1;
        else if (e->wd == wf && (e->mask & (IN_MODIFY | IN_CLOSE_WRITE))) modify_f = 1;
        else { other++; printf("unexpected event wd %d mask %x\n", e->wd, e->mask); }
        p += sizeof *e + e->len;
    }
    if (!create_b) probe_bad("no IN_CREATE under wd %d", wb);
    if (!modify_f) probe_bad("no IN_MODIFY under wd %d", wf);
    if (other) probe_bad("%d unexpected events (the delete in b is not watched)", other);
    if (!(fcntl(in, F_GETFL) & O_NONBLOCK)) probe_bad("lost O_NONBLOCK");
    return probe_end();
}
