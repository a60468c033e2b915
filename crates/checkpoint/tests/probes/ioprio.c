/* Probe: I/O priority per thread: best-effort level 6 in the main thread,
 * idle class in a second one. */
#include "probe.h"
#include <pthread.h>

#define WHO_PROCESS 1
#define PRIO(class, data) (((class) << 13) | (data))
static int get(void) { return (int)syscall(SYS_ioprio_get, WHO_PROCESS, 0); }

static volatile int go, set_up, seen = -1;
static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    syscall(SYS_ioprio_set, WHO_PROCESS, 0, PRIO(3, 0));
    set_up = 1;
    while (!go) usleep(1000);
    seen = get();
    return NULL;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!set_up) usleep(1000);
    if (syscall(SYS_ioprio_set, WHO_PROCESS, 0, PRIO(2, 6))) { perror("ioprio_set"); return 2; }
    probe_ready();
    probe_wait();
    if (get() != PRIO(2, 6)) probe_bad("ioprio %#x, was %#x", get(), PRIO(2, 6));
    go = 1;
    pthread_join(th, NULL);
    if (seen != PRIO(3, 0)) probe_bad("thread ioprio %#x, was %#x", seen, PRIO(3, 0));
    return probe_end();
}
