/* Not a probe: a tree that a dump must refuse, for tests/tree_refusals.rs.
 * Usage: refuse_tree READY_FILE session|group|vfork|files
 *   session: the root calls setsid after forking a child, which stays in
 *            the harness's session, whose leader is outside the tree;
 *   group:   the root leads a group of its own and its child joins the
 *            harness's group, whose leader is outside the tree.
 * Writes the child's pid to READY_FILE and sleeps until killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void say(const char *ready, pid_t kid) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", ready);
    FILE *f = fopen(tmp, "w");
    if (!f) exit(2);
    fprintf(f, "%d\n", kid);
    fclose(f);
    rename(tmp, ready);
}

static int sleeper(void *arg) { (void)arg; for (;;) pause(); return 0; }

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    syscall(SYS_close_range, 3, ~0u, 0);
    if (strcmp(argv[2], "vfork") == 0) {
        /* The parent waits in vfork until the child exits; the child
         * reports and sleeps (raw syscalls only: it runs on our memory). */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
        if (vfork() == 0) {
            int fd = (int)syscall(SYS_openat, AT_FDCWD, tmp, 01101, 0644);
            char buf[16];
            int n = 0;
            for (long p = syscall(SYS_getpid), d = 1000000000; d; d /= 10)
                if (p / d || n) buf[n++] = (char)('0' + p / d % 10);
            syscall(SYS_write, fd, buf, n);
            syscall(SYS_close, fd);
            syscall(SYS_rename, tmp, argv[1]);
            for (;;) syscall(SYS_pause);
        }
        return 0;
    }
    if (strcmp(argv[2], "files") == 0) {
        static char stack[65536];
        pid_t kid = clone(sleeper, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
        if (kid < 0) return 2;
        say(argv[1], kid);
        for (;;) pause();
    }
    pid_t outside = getpgrp();
    int group = strcmp(argv[2], "group") == 0;
    if (group && setpgid(0, 0)) { perror("setpgid"); return 2; }
    pid_t kid = fork();
    if (kid == 0) {
        if (group && setpgid(0, outside)) { perror("setpgid"); _exit(2); }
        for (;;) pause();
    }
    if (!group && setsid() < 0) { perror("setsid"); return 2; }
    usleep(50000); /* the child's setpgid comes first */
    say(argv[1], kid);
    for (;;) pause();
}
