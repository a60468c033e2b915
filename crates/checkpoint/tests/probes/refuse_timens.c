/* Not a probe: a tree that a dump must refuse, for tests/timens_refusals.rs.
 * Usage: refuse_timens READY_FILE enter|unshare
 *   enter:   the root's child enters a time namespace of its own (unshare,
 *            then setns into it): the tree is in two;
 *   unshare: the child unshares a time namespace without entering it, so
 *            its children would be made in another one than its own.
 * Writes the child's pid to READY_FILE and sleeps until killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    syscall(SYS_close_range, 3, ~0u, 0);
    int enter = strcmp(argv[2], "enter") == 0;
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return 2;
    pid_t kid = fork();
    if (kid < 0) return 2;
    if (kid == 0) {
        close(p[0]);
        if (unshare(CLONE_NEWTIME)) { perror("unshare"); _exit(2); }
        if (enter) {
            int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWTIME)) { perror("setns"); _exit(2); }
            close(fd);
        }
        if (write(p[1], "x", 1) != 1) _exit(2);
        close(p[1]);
        for (;;) pause();
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) return 2;
    close(p[0]);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f) return 2;
    fprintf(f, "%d\n", kid);
    fclose(f);
    rename(tmp, argv[1]);
    for (;;) pause();
}
