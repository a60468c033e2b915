/* Probe: a process locked down as a container's init often is, all at
 * once: bounding set cut to CAP_NET_BIND_SERVICE, uids and gids 1000 with
 * no capabilities, no_new_privs, RLIMIT_NOFILE 64, umask 077, and then a
 * seccomp filter that makes setresuid, setresgid, setgroups, capset,
 * prctl and seccomp itself fail with EPERM: a restore has to set these
 * very things after installing the filter, so it only passes if the
 * filter is suspended while it works. After SIGUSR1 all of it reads back
 * the same and the filter still denies. */
#include "probe.h"
#include <errno.h>
#include <libgen.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

static void status(char *out, size_t n) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid", 3) || !strncmp(line, "Gid", 3) || !strncmp(line, "Cap", 3) ||
            !strncmp(line, "Groups", 6) || !strncmp(line, "NoNewPrivs", 10) ||
            !strncmp(line, "Seccomp", 7) || !strncmp(line, "Umask", 5))
            strncat(out, line, n - strlen(out) - 1);
    if (f) fclose(f);
}

static int denied(long nr) {
    errno = 0;
    return syscall(nr, -1, -1, -1, 0, 0) == -1 && errno == EPERM;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    char dir[4096];
    strncpy(dir, argv[1], sizeof dir - 1);
    chmod(dirname(dir), 01777);
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
        if (cap != CAP_NET_BIND_SERVICE) prctl(PR_CAPBSET_DROP, cap);
    gid_t none[1];
    if (setgroups(0, none) || setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) {
        perror("drop");
        return 2;
    }
    struct rlimit nofile = {64, 64};
    setrlimit(RLIMIT_NOFILE, &nofile);
    umask(077);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    long deny[] = {SYS_setresuid, SYS_setresgid, SYS_setgroups, SYS_capset, SYS_prctl, SYS_seccomp};
    struct sock_filter f[2 + 2 * 6];
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (int i = 0; i < 6; i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, deny[i], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {n, f};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) { perror("seccomp"); return 2; }
    char before[2048], after[2048];
    status(before, sizeof before);
    probe_ready();
    probe_wait();
    status(after, sizeof after);
    if (strcmp(before, after)) probe_bad("status\n%swas\n%s", after, before);
    struct rlimit now;
    getrlimit(RLIMIT_NOFILE, &now);
    if (now.rlim_cur != 64 || now.rlim_max != 64) probe_bad("RLIMIT_NOFILE %lu/%lu", now.rlim_cur, now.rlim_max);
    for (int i = 0; i < 6; i++)
        if (!denied(deny[i])) probe_bad("syscall %ld no longer denied", deny[i]);
    return probe_end();
}
