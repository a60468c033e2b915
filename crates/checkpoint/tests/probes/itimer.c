/* Probe: interval timers. ITIMER_REAL fires every 20 ms (a SIGALRM
 * handler counts); ITIMER_VIRTUAL and ITIMER_PROF are armed far ahead
 * with their own intervals. After SIGUSR1 the intervals read back exactly,
 * the values no later than they were (a restore that lengthens a CPU timer
 * by the tick the kernel adds when it is set fails here), and SIGALRM
 * still comes. */
#include "probe.h"
#include <sys/time.h>

static volatile sig_atomic_t alarms;
static void on_alrm(int sig) { (void)sig; alarms++; }

static long us(struct timeval t) { return t.tv_sec * 1000000L + t.tv_usec; }

int main(int argc, char **argv) {
    probe_start(argc, argv);
    signal(SIGALRM, on_alrm);
    struct itimerval real = {{0, 20000}, {0, 20000}};
    struct itimerval virt = {{500, 0}, {1000, 0}};
    struct itimerval prof = {{700, 250}, {2000, 0}};
    setitimer(ITIMER_REAL, &real, NULL);
    setitimer(ITIMER_VIRTUAL, &virt, NULL);
    setitimer(ITIMER_PROF, &prof, NULL);
    /* The kernel adds a tick to a CPU timer's value when it is set: what
     * counts is what it read before the dump. */
    struct itimerval read_virt, read_prof;
    getitimer(ITIMER_VIRTUAL, &read_virt);
    getitimer(ITIMER_PROF, &read_prof);
    virt.it_value = read_virt.it_value;
    prof.it_value = read_prof.it_value;
    probe_ready();
    probe_wait();
    struct itimerval got;
    struct { int which; struct itimerval *want; const char *name; } all[] = {
        {ITIMER_REAL, &real, "REAL"}, {ITIMER_VIRTUAL, &virt, "VIRTUAL"}, {ITIMER_PROF, &prof, "PROF"}};
    for (int i = 0; i < 3; i++) {
        getitimer(all[i].which, &got);
        if (us(got.it_interval) != us(all[i].want->it_interval))
            probe_bad("%s interval %ld us, was %ld", all[i].name, us(got.it_interval), us(all[i].want->it_interval));
        if (us(got.it_value) <= 0 || us(got.it_value) > us(all[i].want->it_value))
            probe_bad("%s value %ld us, set to %ld", all[i].name, us(got.it_value), us(all[i].want->it_value));
        if (i > 0 && us(got.it_value) < us(all[i].want->it_value) - 5000000)
            probe_bad("%s value %ld us: more than 5 s of CPU gone", all[i].name, us(got.it_value));
    }
    int before = alarms;
    struct timespec t = {0, 200000000};
    while (nanosleep(&t, &t)) {}
    if (alarms - before < 3) probe_bad("SIGALRM came %d times in 200 ms", alarms - before);
    return probe_end();
}
