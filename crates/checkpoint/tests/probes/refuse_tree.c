/* Not a probe: a tree that a dump must refuse, for tests/tree_refusals.rs.
 * Usage: refuse_tree READY_FILE session|group
 *   session: the root calls setsid after forking a child, which stays in
 *            the harness's session, whose leader is outside the tree;
 *   group:   the root leads a group of its own and its child joins the
 *            harness's group, whose leader is outside the tree.
 * Writes the child's pid to READY_FILE and sleeps until killed. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    syscall(SYS_close_range, 3, ~0u, 0);
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
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f) return 2;
    fprintf(f, "%d\n", kid);
    fclose(f);
    rename(tmp, argv[1]);
    for (;;) pause();
}
