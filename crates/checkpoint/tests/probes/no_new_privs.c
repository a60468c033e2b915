/* Probe: no_new_privs, in the main thread and a thread started after. */
#include "probe.h"
#include <pthread.h>
#include <sys/prctl.h>

static volatile int go, seen = -1;
static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    while (!go) usleep(1000);
    seen = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    return NULL;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    probe_ready();
    probe_wait();
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) probe_bad("no_new_privs cleared");
    go = 1;
    pthread_join(th, NULL);
    if (seen != 1) probe_bad("no_new_privs %d in the thread", seen);
    return probe_end();
}
