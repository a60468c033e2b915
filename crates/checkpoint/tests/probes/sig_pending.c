/* Probe: pending signals with their siginfo. SIGRTMIN is blocked and
 * queued twice on the process (values 11, 12: order and count matter),
 * SIGUSR2 is blocked and queued on it once (value 13); a second thread
 * blocks SIGRTMIN+1, which is queued on that thread alone (value 21).
 * SIGRTMIN+2 is queued 40 times on the process (values 100..139: more
 * than one batch of PTRACE_PEEKSIGINFO). After SIGUSR1 each is still
 * pending where it was, and dequeues with the same si_code, si_pid, si_uid
 * and value, in the same order. */
#include "probe.h"
#include <pthread.h>
#include <string.h>

static pid_t me;
static volatile int thread_go, thread_done;
static char thread_bad[256];

static void check(const siginfo_t *si, int sig, int value, const char *where) {
    if (si->si_signo != sig || si->si_code != SI_QUEUE || si->si_pid != me ||
        si->si_uid != getuid() || si->si_value.sival_int != value)
        probe_bad("%s: signal %d code %d pid %d value %d, want %d SI_QUEUE %d %d", where,
                  si->si_signo, si->si_code, si->si_pid, si->si_value.sival_int, sig, me, value);
}

static void *worker(void *arg) {
    (void)arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    union sigval v = {.sival_int = 21};
    pthread_sigqueue(pthread_self(), SIGRTMIN + 1, v);
    while (!thread_go) usleep(1000);
    sigset_t pend;
    sigpending(&pend);
    if (!sigismember(&pend, SIGRTMIN + 1)) strcpy(thread_bad, "thread: SIGRTMIN+1 not pending");
    sigset_t want;
    sigemptyset(&want);
    sigaddset(&want, SIGRTMIN + 1);
    siginfo_t si;
    struct timespec zero = {0, 0};
    if (sigtimedwait(&want, &si, &zero) < 0) strcpy(thread_bad, "thread: nothing to dequeue");
    else if (si.si_value.sival_int != 21 || si.si_code != SI_QUEUE || si.si_pid != me)
        snprintf(thread_bad, sizeof thread_bad, "thread: value %d code %d pid %d",
                 si.si_value.sival_int, si.si_code, si.si_pid);
    thread_done = 1;
    return NULL;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    me = getpid();
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGRTMIN);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGRTMIN + 1);
    sigaddset(&block, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &block, NULL);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    sigqueue(me, SIGRTMIN, (union sigval){.sival_int = 11});
    sigqueue(me, SIGRTMIN, (union sigval){.sival_int = 12});
    sigqueue(me, SIGUSR2, (union sigval){.sival_int = 13});
    for (int v = 100; v < 140; v++) sigqueue(me, SIGRTMIN + 2, (union sigval){.sival_int = v});
    usleep(20000);
    probe_ready();
    probe_wait();
    sigset_t pend;
    sigpending(&pend);
    if (!sigismember(&pend, SIGRTMIN) || !sigismember(&pend, SIGUSR2))
        probe_bad("SIGRTMIN or SIGUSR2 no longer pending");
    if (sigismember(&pend, SIGRTMIN + 1)) probe_bad("the thread's SIGRTMIN+1 pends on the main thread");
    struct timespec zero = {0, 0};
    siginfo_t si;
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    for (int want = 11; want <= 12; want++) {
        if (sigtimedwait(&rt, &si, &zero) < 0) { probe_bad("SIGRTMIN #%d missing", want - 10); continue; }
        check(&si, SIGRTMIN, want, "SIGRTMIN");
    }
    if (sigtimedwait(&rt, &si, &zero) >= 0) probe_bad("a third SIGRTMIN");
    sigset_t u2;
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    if (sigtimedwait(&u2, &si, &zero) < 0) probe_bad("SIGUSR2 missing");
    else check(&si, SIGUSR2, 13, "SIGUSR2");
    sigset_t many;
    sigemptyset(&many);
    sigaddset(&many, SIGRTMIN + 2);
    for (int want = 100; want < 140; want++) {
        if (sigtimedwait(&many, &si, &zero) < 0) { probe_bad("SIGRTMIN+2 value %d missing", want); break; }
        check(&si, SIGRTMIN + 2, want, "SIGRTMIN+2");
    }
    if (sigtimedwait(&many, &si, &zero) >= 0) probe_bad("a 41st SIGRTMIN+2");
    thread_go = 1;
    pthread_join(th, NULL);
    if (thread_bad[0]) probe_bad("%s", thread_bad);
    return probe_end();
}
