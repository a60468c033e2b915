/* Probe: POSIX timers with their ids. Three are created and the first
 * deleted, so the two left have ids the kernel would not hand out first:
 * A (CLOCK_MONOTONIC, SIGRTMIN, value 0xA) armed 1000 s ahead with a
 * 500 s interval; B (CLOCK_REALTIME, SIGRTMIN+1, value 0xB) firing every
 * 10 ms, counted by an SA_SIGINFO handler that checks si_timerid and the
 * value; C (CLOCK_BOOTTIME, SIGRTMIN+2 to a second thread alone,
 * SIGEV_THREAD_ID) firing every 10 ms. After SIGUSR1 /proc/self/timers
 * (ids, signals, values, notification, clocks) reads the same, the
 * intervals read back exactly, A's time left is no more than before, B
 * still fires with its id and value, and C in the second thread only. */
#include "probe.h"
#include <pthread.h>
#include <string.h>

static timer_t a, b, c;
static volatile sig_atomic_t fired, wrong, c_fired, c_wrong;
static volatile pid_t worker_tid;
static volatile int stop;

static void on_c(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    if (syscall(SYS_gettid) != worker_tid || si->si_code != SI_TIMER || si->si_timerid != (int)(long)c) c_wrong++;
    else c_fired++;
}

static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, SIGRTMIN + 2);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    worker_tid = syscall(SYS_gettid);
    while (!stop) usleep(1000);
    return NULL;
}

static void on_b(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    if (si->si_code != SI_TIMER || si->si_value.sival_int != 0xB || si->si_timerid != (int)(long)b) wrong++;
    else fired++;
}

static void timer_list(char *out, size_t n) {
    FILE *f = fopen("/proc/self/timers", "r");
    char line[256];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        strncat(out, line, n - strlen(out) - 1);
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_b;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sa.sa_sigaction = on_c;
    sigaction(SIGRTMIN + 2, &sa, NULL);
    sigset_t only_c;
    sigemptyset(&only_c);
    sigaddset(&only_c, SIGRTMIN + 2);
    pthread_sigmask(SIG_BLOCK, &only_c, NULL);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!worker_tid) usleep(1000);
    timer_t first;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    timer_create(CLOCK_MONOTONIC, &ev, &first);
    ev.sigev_value.sival_int = 0xA;
    timer_create(CLOCK_MONOTONIC, &ev, &a);
    ev.sigev_signo = SIGRTMIN + 1;
    ev.sigev_value.sival_int = 0xB;
    timer_create(CLOCK_REALTIME, &ev, &b);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGRTMIN + 2;
    ev._sigev_un._tid = worker_tid;
    timer_create(CLOCK_BOOTTIME, &ev, &c);
    timer_delete(first);
    struct itimerspec wa = {{500, 0}, {1000, 0}}, wb = {{0, 10000000}, {0, 10000000}};
    timer_settime(a, 0, &wa, NULL);
    timer_settime(b, 0, &wb, NULL);
    timer_settime(c, 0, &wb, NULL);
    char ids[1024];
    timer_list(ids, sizeof ids);
    probe_ready();
    probe_wait();
    char now[1024];
    timer_list(now, sizeof now);
    if (strcmp(now, ids)) probe_bad("/proc/self/timers\n%swas\n%s", now, ids);
    struct itimerspec ga, gb;
    if (timer_gettime(a, &ga) || timer_gettime(b, &gb)) probe_bad("timer_gettime failed");
    if (ga.it_interval.tv_sec != 500 || ga.it_interval.tv_nsec != 0) probe_bad("A's interval differs");
    if (ga.it_value.tv_sec > 1000 || ga.it_value.tv_sec < 900) probe_bad("A has %ld s left", (long)ga.it_value.tv_sec);
    if (gb.it_interval.tv_sec != 0 || gb.it_interval.tv_nsec != 10000000) probe_bad("B's interval differs");
    int before = fired, c_before = c_fired;
    struct timespec t = {0, 200000000};
    while (nanosleep(&t, &t)) {}
    if (fired - before < 5) probe_bad("B fired %d times in 200 ms", fired - before);
    if (wrong) probe_bad("%d signals of B with a wrong id, code or value", wrong);
    if (c_fired - c_before < 5) probe_bad("C fired %d times in 200 ms", c_fired - c_before);
    if (c_wrong) probe_bad("%d signals of C in the wrong thread or with a wrong id", c_wrong);
    stop = 1;
    pthread_join(th, NULL);
    return probe_end();
}
