/* Probe: a pipe inherited by a child. The root makes a pipe and forks; both
 * keep both ends. The child writes "child" into it before the dump, so the
 * pipe holds data. On SIGUSR1 the root signals the child, which writes
 * "again"; the root must read "childagain" from its read end: one pipe,
 * shared by both processes, with its data kept. */
#include "probe.h"
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int p[2];
    if (pipe(p)) { perror("pipe"); return 2; }
    pid_t kid = fork();
    if (kid == 0) {
        if (write(p[1], "child", 5) != 5) _exit(2);
        probe_wait();
        _exit(write(p[1], "again", 5) == 5 ? 0 : 1);
    }
    /* The child's bytes are in the pipe before the harness may dump. */
    int n = 0;
    while (ioctl(p[0], FIONREAD, &n) == 0 && n < 5) usleep(1000);
    probe_ready();
    probe_wait();
    kill(kid, SIGUSR1);
    int st;
    if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) probe_bad("child failed (%#x)", st);
    char buf[16] = {0};
    ssize_t got = read(p[0], buf, 10);
    if (got != 10 || memcmp(buf, "childagain", 10)) probe_bad("read \"%s\" (%zd bytes), want childagain", buf, got);
    return probe_end();
}
