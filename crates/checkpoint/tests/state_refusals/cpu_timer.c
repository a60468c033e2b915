/* A POSIX timer on CLOCK_THREAD_CPUTIME_ID in a process of two threads:
 * /proc does not say which thread's CPU time it counts, so a dump must
 * refuse it. */
#include "../probes/probe.h"
#include <pthread.h>

static void *idle(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) pause();
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pthread_t th;
    pthread_create(&th, NULL, idle, NULL);
    timer_t t;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_NONE;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &t)) { perror("timer_create"); return 2; }
    probe_ready();
    probe_wait();
    return probe_end();
}
