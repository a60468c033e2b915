/* Probe: thread names. The main thread is "probe-main", two workers are
 * "worker-one" and "worker-two-long" (15 bytes, the most there is); after
 * SIGUSR1 each thread's /proc/self/task/TID/comm reads the same. */
#include "probe.h"
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>

static volatile int go, ready_count;
static pid_t tids[2];
static void *worker(void *arg) {
    int i = (int)(long)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_NAME, i ? "worker-two-long" : "worker-one");
    tids[i] = (pid_t)syscall(SYS_gettid);
    __sync_fetch_and_add(&ready_count, 1);
    while (!go) usleep(1000);
    return NULL;
}

static void comm(pid_t tid, char *out) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (f) { if (!fgets(out, 32, f)) out[0] = 0; fclose(f); }
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    prctl(PR_SET_NAME, "probe-main");
    pthread_t th[2];
    for (long i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    while (ready_count < 2) usleep(1000);
    pid_t all[3] = {getpid(), tids[0], tids[1]};
    char before[3][32], after[3][32];
    for (int i = 0; i < 3; i++) comm(all[i], before[i]);
    probe_ready();
    probe_wait();
    for (int i = 0; i < 3; i++) {
        comm(all[i], after[i]);
        if (strcmp(before[i], after[i])) probe_bad("thread %d: name %s, was %s", all[i], after[i], before[i]);
    }
    go = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    return probe_end();
}
