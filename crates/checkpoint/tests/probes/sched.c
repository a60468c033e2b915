/* Probe: scheduling state per thread. The main thread runs SCHED_BATCH at
 * nice 5 on the first CPU it may use; a second thread SCHED_IDLE on the
 * last one (the same one on a single CPU). After SIGUSR1 each thread's
 * sched_getattr policy and nice, getpriority and affinity read back the
 * same. */
#include "probe.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>

struct state { int policy, nice, prio; cpu_set_t cpus; };

static void read_state(struct state *s) {
    memset(s, 0, sizeof *s);
    s->policy = sched_getscheduler(0);
    s->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    struct sched_param p;
    sched_getparam(0, &p);
    s->prio = p.sched_priority;
    sched_getaffinity(0, sizeof s->cpus, &s->cpus);
}

static const char *same(const struct state *a, const struct state *b) {
    if (a->policy != b->policy) return "policy differs";
    if (a->nice != b->nice) return "nice differs";
    if (a->prio != b->prio) return "priority differs";
    if (!CPU_EQUAL(&a->cpus, &b->cpus)) return "affinity differs";
    return NULL;
}

static int first_cpu, last_cpu;
static volatile int go, set_up;
static const char *thread_bad;
static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct sched_param p = {0};
    sched_setscheduler(0, SCHED_IDLE, &p);
    cpu_set_t c;
    CPU_ZERO(&c);
    CPU_SET(last_cpu, &c);
    sched_setaffinity(0, sizeof c, &c);
    struct state before, after;
    read_state(&before);
    set_up = 1;
    while (!go) usleep(1000);
    read_state(&after);
    thread_bad = same(&before, &after);
    return NULL;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    cpu_set_t all;
    sched_getaffinity(0, sizeof all, &all);
    first_cpu = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &all)) { if (first_cpu < 0) first_cpu = i; last_cpu = i; }
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!set_up) usleep(1000);
    struct sched_param p = {0};
    if (sched_setscheduler(0, SCHED_BATCH, &p)) { perror("SCHED_BATCH"); return 2; }
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5);
    cpu_set_t c;
    CPU_ZERO(&c);
    CPU_SET(first_cpu, &c);
    sched_setaffinity(0, sizeof c, &c);
    struct state before, after;
    read_state(&before);
    if (before.policy != SCHED_BATCH || before.nice != 5) probe_bad("set-up failed");
    probe_ready();
    probe_wait();
    read_state(&after);
    const char *d = same(&before, &after);
    if (d) probe_bad("main: %s", d);
    go = 1;
    pthread_join(th, NULL);
    if (thread_bad) probe_bad("thread: %s", thread_bad);
    return probe_end();
}
