/* Probe: a child process with threads. The root makes a child that starts
 * three threads, each counting and remembering its tid. On SIGUSR1 the
 * root forwards the signal; the child checks that every thread still
 * counts and has its tid, joins them, and exits 0; the root checks that. */
#include "probe.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>

#define N 3
static volatile uint64_t counts[N];
static volatile int stop;
static pid_t tids[N];
static int bad_in[N];
static volatile int done[N];

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    tids[id] = (pid_t)syscall(SYS_gettid);
    while (!stop) counts[id]++;
    if ((pid_t)syscall(SYS_gettid) != tids[id]) { printf("thread %d: tid changed\n", id); bad_in[id] = 1; }
    done[id] = 1;
    return NULL;
}

static void child(int up) {
    pid_t ppid = getppid();
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i)) _exit(2);
    for (int i = 0; i < N; i++)
        while (counts[i] == 0) usleep(1000);
    if (write(up, "x", 1) != 1) _exit(2);
    close(up);
    probe_wait();
    int bad = 0;
    uint64_t seen[N];
    for (int i = 0; i < N; i++) seen[i] = counts[i];
    for (int i = 0; i < N; i++) {
        int waited = 0;
        while (counts[i] == seen[i] && waited++ < 2000) usleep(1000);
        if (counts[i] == seen[i]) { printf("thread %d stopped counting\n", i); bad++; }
    }
    if (getppid() != ppid) { printf("child: parent %d, was %d\n", getppid(), ppid); bad++; }
    stop = 1;
    /* Joined only once each thread said it is done: a thread that does
     * not run would make pthread_join wait for ever. */
    for (int i = 0; i < N; i++) {
        int waited = 0;
        while (!done[i] && waited++ < 2000) usleep(1000);
        if (!done[i]) { printf("thread %d never finished\n", i); _exit(1); }
        pthread_join(th[i], NULL);
        bad += bad_in[i];
    }
    _exit(bad ? 1 : 0);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return 2;
    pid_t kid = fork();
    if (kid == 0) { close(p[0]); child(p[1]); }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) return 2;
    close(p[0]);
    probe_ready();
    probe_wait();
    kill(kid, SIGUSR1);
    int st;
    if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) probe_bad("child failed (%#x)", st);
    return probe_end();
}
