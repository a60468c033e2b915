/* Probe: a signalfd on SIGUSR2 and SIGRTMIN+3 (both blocked). After the
 * restore it reports those signals, and only those. */
#include "probe.h"
#include <string.h>
#include <sys/signalfd.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, SIGRTMIN + 3);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int fd = signalfd(-1, &m, SFD_NONBLOCK);
    if (fd < 0) { perror("signalfd"); return 2; }
    probe_ready();
    probe_wait();
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) != -1) probe_bad("a signal before any was sent");
    kill(getpid(), SIGUSR2);
    if (read(fd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR2) probe_bad("SIGUSR2 not read through the signalfd");
    kill(getpid(), SIGRTMIN + 3);
    if (read(fd, &si, sizeof si) != sizeof si || si.ssi_signo != (unsigned)(SIGRTMIN + 3)) probe_bad("SIGRTMIN+3 not read");
    char line[256] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "r");
    int found = 0;
    char want[32];
    snprintf(want, sizeof want, "%016llx", (1ULL << (SIGUSR2 - 1)) | (1ULL << (SIGRTMIN + 3 - 1)));
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "sigmask:", 8) == 0) found = strstr(line, want) != NULL;
    if (f) fclose(f);
    if (!found) probe_bad("sigmask differs: %s", line);
    if (!(fcntl(fd, F_GETFL) & O_NONBLOCK)) probe_bad("lost O_NONBLOCK");
    return probe_end();
}
