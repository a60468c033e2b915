/* Probe: alternate signal stacks. The main thread has one of 64 KiB with
 * SS_AUTODISARM, a second thread one of 32 KiB; SIGUSR2 has an SA_ONSTACK
 * handler. After SIGUSR1 each thread's sigaltstack reads back the same and
 * a SIGUSR2 sent to each runs its handler on that thread's stack. */
#include "probe.h"
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static char main_stack[65536], thread_stack[32768];
static __thread volatile uintptr_t handler_sp;
static volatile int thread_go, thread_done;
static char thread_bad[256];

static void on_usr2(int sig) { (void)sig; int here; handler_sp = (uintptr_t)&here; }

static const char *differs(const stack_t *want) {
    stack_t now;
    sigaltstack(NULL, &now);
    if (now.ss_sp != want->ss_sp || now.ss_size != want->ss_size || now.ss_flags != want->ss_flags)
        return "sigaltstack differs";
    handler_sp = 0;
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR2);
    uintptr_t lo = (uintptr_t)want->ss_sp, hi = lo + want->ss_size;
    if (handler_sp < lo || handler_sp >= hi) return "the handler did not run on the alternate stack";
    return NULL;
}

static stack_t thread_want;
static void *worker(void *arg) {
    (void)arg;
    thread_want = (stack_t){.ss_sp = thread_stack, .ss_size = sizeof thread_stack, .ss_flags = 0};
    sigaltstack(&thread_want, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    while (!thread_go) usleep(1000);
    const char *d = differs(&thread_want);
    if (d) snprintf(thread_bad, sizeof thread_bad, "thread: %s", d);
    return NULL;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    struct sigaction sa = {0};
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    stack_t want = {.ss_sp = main_stack, .ss_size = sizeof main_stack, .ss_flags = SS_AUTODISARM};
    if (sigaltstack(&want, NULL)) { perror("sigaltstack"); return 2; }
    stack_t now;
    sigaltstack(NULL, &now);
    want.ss_flags = now.ss_flags;
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    usleep(20000);
    probe_ready();
    probe_wait();
    const char *d = differs(&want);
    if (d) probe_bad("main: %s", d);
    thread_go = 1;
    pthread_join(th, NULL);
    if (thread_bad[0]) probe_bad("%s", thread_bad);
    return probe_end();
}
