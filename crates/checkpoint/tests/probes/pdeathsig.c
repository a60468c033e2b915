/* Probe: parent-death signals, per thread: SIGUSR2 in the main thread,
 * SIGHUP in a second one. */
#include "probe.h"
#include <pthread.h>
#include <sys/prctl.h>

static volatile int go, seen = -1, set_up;
static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    set_up = 1;
    while (!go) usleep(1000);
    int s = 0;
    prctl(PR_GET_PDEATHSIG, &s);
    seen = s;
    return NULL;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    signal(SIGUSR2, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGUSR2);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!set_up) usleep(1000);
    probe_ready();
    probe_wait();
    int s = 0;
    prctl(PR_GET_PDEATHSIG, &s);
    if (s != SIGUSR2) probe_bad("parent-death signal %d, was %d", s, SIGUSR2);
    go = 1;
    pthread_join(th, NULL);
    if (seen != SIGHUP) probe_bad("thread's parent-death signal %d, was %d", seen, SIGHUP);
    return probe_end();
}
