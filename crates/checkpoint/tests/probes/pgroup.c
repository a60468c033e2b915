/* Probe: process groups. The root leads a group of its own (as a shell job
 * does) in the harness's session; it makes A, which leads a second group,
 * B, which joins A's group, and C, which stays in the root's group. On
 * SIGUSR1 the root forwards the signal; each checks its group, its session
 * and its parent; the root checks every child's group and exit status. */
#include "probe.h"
#include <sys/wait.h>

static int up_fd = -1;

static pid_t spawn(void (*body)(pid_t), pid_t arg) {
    int p[2];
    if (pipe2(p, O_CLOEXEC)) { perror("pipe"); _exit(2); }
    pid_t pid = fork();
    if (pid == 0) { close(p[0]); up_fd = p[1]; body(arg); _exit(2); }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) { printf("child %d never got ready\n", pid); _exit(2); }
    close(p[0]);
    return pid;
}

static void body(pid_t group) {
    if (group >= 0 && setpgid(0, group) < 0) { perror("setpgid"); _exit(2); }
    pid_t pgid = getpgrp(), sid = getsid(0), ppid = getppid();
    if (write(up_fd, "x", 1) != 1) _exit(2);
    close(up_fd);
    probe_wait();
    int bad = 0;
    if (getpgrp() != pgid) { printf("%d: group %d, was %d\n", getpid(), getpgrp(), pgid); bad++; }
    if (getsid(0) != sid) { printf("%d: session %d, was %d\n", getpid(), getsid(0), sid); bad++; }
    if (getppid() != ppid) { printf("%d: parent %d, was %d\n", getpid(), getppid(), ppid); bad++; }
    _exit(bad ? 1 : 0);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    if (setpgid(0, 0) < 0) { perror("setpgid"); return 2; }
    pid_t me = getpid(), sid = getsid(0);
    pid_t a = spawn(body, 0);
    pid_t b = spawn(body, a);
    pid_t c = spawn(body, -1);
    pid_t want[3] = {a, a, me}, kids[3] = {a, b, c};
    probe_ready();
    probe_wait();
    if (getpgrp() != me) probe_bad("root: group %d, was %d", getpgrp(), me);
    if (getsid(0) != sid) probe_bad("root: session %d, was %d", getsid(0), sid);
    for (int i = 0; i < 3; i++)
        if (getpgid(kids[i]) != want[i]) probe_bad("child %d: group %d, was %d", kids[i], getpgid(kids[i]), want[i]);
    for (int i = 0; i < 3; i++) {
        kill(kids[i], SIGUSR1);
        int st;
        if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
            probe_bad("child %d failed (%#x)", kids[i], st);
    }
    return probe_end();
}
