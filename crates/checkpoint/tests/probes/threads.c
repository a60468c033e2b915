/* Probe: a process of 5 threads. Usage: threads READY_FILE
 * The main thread starts 4 workers; each records its tid, keeps its own
 * counter in TLS and in a shared array, a value in an SSE register, and
 * blocks SIGUSR1 (so only the main thread takes it, which tests the
 * per-thread masks). Once every worker counts, READY_FILE is written; on
 * SIGUSR1 the main thread checks that every worker still counts, stops and
 * joins them (pthread_join waits on clear_child_tid, which the restore must
 * put back), and each worker checks its tid, its TLS and its register.
 * Exits 0, or prints what differs and exits 1. Built static by the tests. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N 4
static volatile sig_atomic_t got_usr1;
static volatile pid_t handled_by;
static volatile int stop;
static volatile uint64_t counts[N];
static pid_t tids[N];
static __thread uint64_t tls_count;
static __thread uint64_t tls_mark;
static int bad_in[N];

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }
static void on_usr1(int sig) { (void)sig; handled_by = gettid_(); got_usr1 = 1; }

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    tids[id] = gettid_();
    tls_mark = 0x1000 + id;
    /* A value kept in xmm15 across the whole loop: the compiler never
     * touches that register here, so a restore that loses xstate shows. */
    uint64_t want = 0x5eed0000 + id, got;
    __asm__ volatile("movq %0, %%xmm15" ::"r"(want));
    while (!stop) { tls_count++; counts[id] = tls_count; }
    __asm__ volatile("movq %%xmm15, %0" : "=r"(got));
    int bad = 0;
    if (gettid_() != tids[id]) { printf("worker %d: tid %d, was %d\n", id, gettid_(), tids[id]); bad++; }
    if (tls_mark != 0x1000 + (uint64_t)id) { printf("worker %d: tls mark %#lx\n", id, tls_mark); bad++; }
    if (counts[id] != tls_count) { printf("worker %d: count differs from tls\n", id); bad++; }
    if (got != want) { printf("worker %d: xmm15 %#lx, want %#lx\n", id, got, want); bad++; }
    bad_in[id] = bad;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    syscall(SYS_close_range, 3, ~0u, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pid_t main_tid = gettid_();
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i)) return 3;
    for (int i = 0; i < N; i++)
        while (counts[i] == 0) usleep(1000);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 4;
    close(fd);
    while (!got_usr1) pause();

    int bad = 0;
    uint64_t seen[N];
    for (int i = 0; i < N; i++) seen[i] = counts[i];
    /* Five spinning threads on a loaded machine: give each 2 s to run. */
    for (int i = 0; i < N; i++) {
        int waited = 0;
        while (counts[i] == seen[i] && waited++ < 2000) usleep(1000);
        if (counts[i] == seen[i]) { printf("worker %d stopped counting\n", i); bad++; }
    }
    if (handled_by != main_tid) { printf("SIGUSR1 ran in %d, not main %d\n", handled_by, main_tid); bad++; }
    if (gettid_() != main_tid || getpid() != main_tid) { printf("main tid changed\n"); bad++; }
    stop = 1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        bad += bad_in[i];
    }
    printf("%s: %d differences, %d threads\n", bad ? "FAIL" : "ok", bad, N + 1);
    fflush(stdout);
    return bad ? 1 : 0;
}
