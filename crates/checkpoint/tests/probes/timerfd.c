/* Probe: timerfds: a periodic CLOCK_MONOTONIC one far from firing (its
 * interval exact, its time left no more than before), a one-shot on
 * CLOCK_BOOTTIME that fired and was not read (ticks 1, disarmed since),
 * a disarmed one on CLOCK_REALTIME, an absolute CLOCK_REALTIME one with
 * TFD_TIMER_CANCEL_ON_SET, and a disarmed one that keeps an interval. */
#include "probe.h"
#include <stdint.h>
#include <string.h>
#include <sys/timerfd.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int periodic = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = {{7, 250000000}, {1000, 0}};
    timerfd_settime(periodic, 0, &its, NULL);
    int fired = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec twice = {{0, 1000000}, {0, 1000000}};
    timerfd_settime(fired, 0, &twice, NULL);
    struct timespec ms = {0, 5000000};
    nanosleep(&ms, NULL);
    struct itimerspec off = {{0, 0}, {0, 0}};
    uint64_t n;
    read(fired, &n, 8);
    struct itimerspec once = {{0, 0}, {0, 1000000}};
    timerfd_settime(fired, 0, &once, NULL);
    nanosleep(&ms, NULL);
    int idle = timerfd_create(CLOCK_REALTIME, 0);
    timerfd_settime(idle, 0, &off, NULL);
    /* An absolute CLOCK_REALTIME timer, cancelled if the clock is set;
     * and a disarmed one that keeps an interval. */
    int absolute = timerfd_create(CLOCK_REALTIME, 0);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    struct itimerspec at = {{0, 0}, {rt.tv_sec + 5000, 0}};
    timerfd_settime(absolute, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &at, NULL);
    int keeps = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec iv = {{3, 0}, {0, 0}};
    timerfd_settime(keeps, 0, &iv, NULL);
    struct itimerspec before;
    timerfd_gettime(periodic, &before);
    probe_ready();
    probe_wait();
    struct itimerspec now;
    timerfd_gettime(periodic, &now);
    if (now.it_interval.tv_sec != 7 || now.it_interval.tv_nsec != 250000000) probe_bad("interval %ld.%09ld", (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
    if (now.it_value.tv_sec > before.it_value.tv_sec || now.it_value.tv_sec < 900) probe_bad("time left %ld s, was %ld s", (long)now.it_value.tv_sec, (long)before.it_value.tv_sec);
    if (read(periodic, &n, 8) != -1) probe_bad("the periodic timer fired");
    if (read(fired, &n, 8) != 8 || n != 1) probe_bad("the fired timer reports %llu expirations, want 1", (unsigned long long)n);
    timerfd_gettime(fired, &now);
    if (now.it_value.tv_sec || now.it_value.tv_nsec) probe_bad("the one-shot timer is armed again");
    timerfd_gettime(idle, &now);
    if (now.it_value.tv_sec || now.it_value.tv_nsec) probe_bad("the idle timer is armed");
    if (fcntl(fired, F_GETFD) != FD_CLOEXEC) probe_bad("lost FD_CLOEXEC");
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", absolute);
    FILE *f = fopen(path, "r");
    int flags_ok = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "settime flags:", 14) == 0) flags_ok = strstr(line, "03") != NULL;
    if (f) fclose(f);
    if (!flags_ok) probe_bad("the absolute timer lost TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET");
    timerfd_gettime(absolute, &now);
    clock_gettime(CLOCK_REALTIME, &rt);
    if (now.it_value.tv_sec < 4000 || now.it_value.tv_sec > 5000) probe_bad("the absolute timer has %ld s left", (long)now.it_value.tv_sec);
    timerfd_gettime(keeps, &now);
    if (now.it_value.tv_sec || now.it_interval.tv_sec != 3) probe_bad("the disarmed timer: value %ld s, interval %ld s", (long)now.it_value.tv_sec, (long)now.it_interval.tv_sec);
    /* The clocks: a BOOTTIME timer set absolute to now+1s is in range only on that clock. */
    struct timespec bt;
    clock_gettime(CLOCK_BOOTTIME, &bt);
    struct itimerspec abs = {{0, 0}, {bt.tv_sec + 100, 0}};
    timerfd_settime(fired, TFD_TIMER_ABSTIME, &abs, NULL);
    timerfd_gettime(fired, &now);
    if (now.it_value.tv_sec < 90 || now.it_value.tv_sec > 100) probe_bad("the BOOTTIME timer is on another clock (%ld s left)", (long)now.it_value.tv_sec);
    return probe_end();
}
