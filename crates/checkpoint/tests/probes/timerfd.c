/* Probe: timerfds: a periodic CLOCK_MONOTONIC one far from firing (its
 * interval exact, its time left no more than before), a one-shot on
 * CLOCK_BOOTTIME that fired and was not read (ticks 1, disarmed since),
 * and a disarmed one on CLOCK_REALTIME. */
#include "probe.h"
#include <stdint.h>
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
    /* The clocks: a BOOTTIME timer set absolute to now+1s is in range only on that clock. */
    struct timespec bt;
    clock_gettime(CLOCK_BOOTTIME, &bt);
    struct itimerspec abs = {{0, 0}, {bt.tv_sec + 100, 0}};
    timerfd_settime(fired, TFD_TIMER_ABSTIME, &abs, NULL);
    timerfd_gettime(fired, &now);
    if (now.it_value.tv_sec < 90 || now.it_value.tv_sec > 100) probe_bad("the BOOTTIME timer is on another clock (%ld s left)", (long)now.it_value.tv_sec);
    return probe_end();
}
