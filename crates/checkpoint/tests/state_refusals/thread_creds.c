/* A thread whose uid differs from the leader's (a raw setresuid changes
 * only the calling thread): a dump must refuse it. */
#include "../probes/probe.h"
#include <pthread.h>

static volatile int changed;
static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    syscall(SYS_setresuid, 1000, 1000, 1000);
    changed = 1;
    for (;;) pause();
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!changed) usleep(1000);
    probe_ready();
    probe_wait();
    return probe_end();
}
