/* Probe: sessions. The root (in the harness's session) makes S, which
 * makes E (which stays in the root's session), then calls setsid, then
 * makes T: the session S holds the process group S of two, S and T. On
 * SIGUSR1 the root forwards the signal; each process checks its session,
 * its group and its parent, and the root that each child exited 0. */
#include "probe.h"
#include <sys/wait.h>

static int up_fd = -1;

static int same(const char *who, const char *what, long got, long want) {
    if (got == want) return 0;
    printf("%s %d: %s %ld, was %ld\n", who, getpid(), what, got, want);
    return 1;
}

/* Forks `body`; waits until it wrote one byte. */
static pid_t spawn(void (*body)(void)) {
    int p[2];
    if (pipe2(p, O_CLOEXEC)) { perror("pipe"); _exit(2); }
    pid_t pid = fork();
    if (pid == 0) { /* only its own pipe end: no fd of an ancestor's pipe */
        syscall(SYS_close_range, 3, p[1] - 1, 0);
        syscall(SYS_close_range, p[1] + 1, ~0u, 0);
        up_fd = p[1]; body(); _exit(2);
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) { printf("child %d never got ready\n", pid); _exit(2); }
    close(p[0]);
    return pid;
}

static void ready(void) { if (write(up_fd, "x", 1) != 1) _exit(2); close(up_fd); }

static int reap(const char *who, pid_t kid) {
    kill(kid, SIGUSR1);
    int st;
    if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) {
        printf("%s %d: child %d failed (%#x)\n", who, getpid(), kid, st);
        return 1;
    }
    return 0;
}

/* A member: records its ids, waits, checks them. */
static void member(void) {
    pid_t sid = getsid(0), pgid = getpgrp(), ppid = getppid();
    ready();
    probe_wait();
    int bad = same("member", "session", getsid(0), sid) + same("member", "group", getpgrp(), pgid) +
              same("member", "parent", getppid(), ppid);
    _exit(bad ? 1 : 0);
}

static void leader(void) {
    pid_t old_sid = getsid(0), ppid = getppid();
    pid_t e = spawn(member);           /* stays in the old session */
    if (setsid() < 0) { perror("setsid"); _exit(2); }
    pid_t t = spawn(member);           /* in the new session and group */
    int bad = same("leader", "session of T", getsid(t), getpid()) + same("leader", "session of E", getsid(e), old_sid);
    ready();
    probe_wait();
    bad += same("leader", "session", getsid(0), getpid()) + same("leader", "group", getpgrp(), getpid());
    bad += same("leader", "parent", getppid(), ppid);
    bad += same("leader", "group of T", getpgid(t), getpid()) + same("leader", "session of T", getsid(t), getpid());
    bad += same("leader", "session of E", getsid(e), old_sid);
    bad += reap("leader", e) + reap("leader", t);
    _exit(bad ? 1 : 0);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pid_t sid = getsid(0), pgid = getpgrp();
    pid_t s = spawn(leader);
    probe_ready();
    probe_wait();
    if (same("root", "session", getsid(0), sid) + same("root", "group", getpgrp(), pgid) +
        same("root", "session of S", getsid(s), s))
        probe_bad("ids differ");
    if (reap("root", s)) probe_bad("the session leader failed");
    return probe_end();
}
