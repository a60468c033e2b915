/* Probe: POSIX timers on CPU-time clocks of the process itself:
 * CLOCK_PROCESS_CPUTIME_ID firing every 5 ms of CPU time (SIGRTMIN,
 * counted) and clock_getcpuclockid(own pid) armed 1000 s of CPU ahead.
 * After SIGUSR1 /proc/self/timers reads the same, the far one has no more
 * than its time left, and the first still fires while the probe burns CPU. */
#include "probe.h"
#include <string.h>

static volatile sig_atomic_t fired;
static void on_tick(int sig) { (void)sig; fired++; }

static void timer_list(char *out, size_t n) {
    FILE *f = fopen("/proc/self/timers", "r");
    char line[256];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) strncat(out, line, n - strlen(out) - 1);
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    struct sigaction sa = {0};
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGRTMIN, &sa, NULL);
    timer_t tick, far;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &tick);
    clockid_t own;
    clock_getcpuclockid(getpid(), &own);
    ev.sigev_signo = SIGRTMIN + 1;
    timer_create(own, &ev, &far);
    struct itimerspec wt = {{0, 5000000}, {0, 5000000}}, wf = {{0, 0}, {1000, 0}};
    timer_settime(tick, 0, &wt, NULL);
    timer_settime(far, 0, &wf, NULL);
    char before[1024], after[1024];
    timer_list(before, sizeof before);
    probe_ready();
    probe_wait();
    timer_list(after, sizeof after);
    if (strcmp(before, after)) probe_bad("/proc/self/timers\n%swas\n%s", after, before);
    struct itimerspec gf, gt;
    timer_gettime(far, &gf);
    timer_gettime(tick, &gt);
    if (gf.it_value.tv_sec > 1000 || gf.it_value.tv_sec < 990) probe_bad("far timer: %ld s left", (long)gf.it_value.tv_sec);
    if (gt.it_interval.tv_nsec != 5000000) probe_bad("tick interval %ld ns", gt.it_interval.tv_nsec);
    int start = fired;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &now);
    while (fired - start < 5 && now.tv_sec - t0.tv_sec < 5);
    if (fired - start < 5) probe_bad("the CPU-time timer fired %d times in 5 s of spinning", fired - start);
    return probe_end();
}
