/* Probe: timer slack per thread: 123456 ns in the main thread, 7000 ns in
 * a second one. */
#include "probe.h"
#include <pthread.h>
#include <sys/prctl.h>

static volatile int go, set_up;
static volatile long seen = -1;
static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_TIMERSLACK, 7000);
    set_up = 1;
    while (!go) usleep(1000);
    seen = prctl(PR_GET_TIMERSLACK);
    return NULL;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!set_up) usleep(1000);
    prctl(PR_SET_TIMERSLACK, 123456);
    probe_ready();
    probe_wait();
    long now = prctl(PR_GET_TIMERSLACK);
    if (now != 123456) probe_bad("timer slack %ld ns, was 123456", now);
    go = 1;
    pthread_join(th, NULL);
    if (seen != 7000) probe_bad("thread's timer slack %ld ns, was 7000", seen);
    return probe_end();
}
