/* Probe: a periodic ITIMER_REAL (10 ms) whose SIGALRM is blocked: it fires
 * once, its SIGALRM stays pending, and the kernel re-arms it only when
 * that signal is taken, so until then getitimer reads 0 left with the
 * interval still set. After SIGUSR1 the interval is still 10 ms, SIGALRM
 * is pending, and once unblocked the timer goes on firing. */
#include "probe.h"
#include <sys/time.h>

static volatile sig_atomic_t alarms;
static void on_alrm(int sig) { (void)sig; alarms++; }

int main(int argc, char **argv) {
    probe_start(argc, argv);
    signal(SIGALRM, on_alrm);
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm, NULL);
    struct itimerval real = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &real, NULL);
    struct timespec t = {0, 50000000};
    while (nanosleep(&t, &t)) {}
    struct itimerval got;
    getitimer(ITIMER_REAL, &got);
    if (got.it_value.tv_sec || got.it_value.tv_usec) probe_bad("set-up: %ld us left", (long)got.it_value.tv_usec);
    probe_ready();
    probe_wait();
    getitimer(ITIMER_REAL, &got);
    if (got.it_interval.tv_sec != 0 || got.it_interval.tv_usec != 10000)
        probe_bad("interval %ld us, was 10000", (long)got.it_interval.tv_usec);
    sigset_t pend;
    sigpending(&pend);
    if (!sigismember(&pend, SIGALRM)) probe_bad("SIGALRM no longer pending");
    sigprocmask(SIG_UNBLOCK, &alrm, NULL);
    t = (struct timespec){0, 200000000};
    while (nanosleep(&t, &t)) {}
    if (alarms < 5) probe_bad("SIGALRM came %d times in 200 ms once unblocked", alarms);
    return probe_end();
}
