/* Probe: seccomp filters, two of them, in the main thread and a second
 * thread (installed with TSYNC). The first makes getpriority fail with
 * ENOMSG, the second makes prctl fail with ENOKEY: the dump and restore
 * run prctl inside the task, so they must suspend the filters. After
 * SIGUSR1 both syscalls still fail with those errnos in both threads, and
 * /proc/self/status shows mode 2 with 2 filters. */
#include "probe.h"
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static int install(int nr, int err) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {sizeof f / sizeof f[0], f};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &p);
}

static const char *filtered(void) {
    errno = 0;
    if (syscall(SYS_getpriority, PRIO_PROCESS, 0) != -1 || errno != ENOMSG) return "getpriority not filtered";
    errno = 0;
    if (syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0) != -1 || errno != ENOKEY) return "prctl not filtered";
    return NULL;
}

static volatile int go, done;
static const char *thread_bad;
static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    while (!go) usleep(1000);
    thread_bad = filtered();
    return NULL;
}

static void status_line(const char *name, char *out, size_t n) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name))) strncat(out, line, n - strlen(out) - 1);
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (install(SYS_getpriority, ENOMSG) || install(SYS_prctl, ENOKEY)) { perror("seccomp"); return 2; }
    char before[256];
    status_line("Seccomp", before, sizeof before);
    probe_ready();
    probe_wait();
    const char *bad = filtered();
    if (bad) probe_bad("main: %s", bad);
    go = 1;
    pthread_join(th, NULL);
    if (thread_bad) probe_bad("thread: %s", thread_bad);
    char now[256];
    status_line("Seccomp", now, sizeof now);
    if (strcmp(now, before)) probe_bad("status\n%swas\n%s", now, before);
    if (!strstr(now, "Seccomp:\t2") || !strstr(now, "Seccomp_filters:\t2")) probe_bad("status\n%s", now);
    return probe_end();
}
