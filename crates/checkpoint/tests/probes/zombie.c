/* Probe: zombies. The root makes three children that end at once, one with
 * exit status 7, one killed by SIGTERM, and one made by clone with SIGURG
 * as its exit signal, which exits 5; it does not reap them: they are
 * zombies when it is dumped. Handlers count SIGCHLD and SIGURG. On SIGUSR1
 * the root's waitpid (WNOHANG: they must already be zombies) must give 7,
 * SIGTERM, and 5 for the clone child only with __WCLONE (it is still a
 * child with another exit signal), and no SIGCHLD or SIGURG may have come
 * meanwhile. */
#include "probe.h"
#include <errno.h>
#include <sched.h>
#include <sys/wait.h>

static volatile sig_atomic_t sigchlds, sigurgs;
static void on_chld(int sig) { (void)sig; sigchlds++; }
static void on_urg(int sig) { (void)sig; sigurgs++; }
static int five(void *arg) { (void)arg; return 5; }
static char stack[65536];

int main(int argc, char **argv) {
    probe_start(argc, argv);
    struct sigaction sa = {0};
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = on_urg;
    sigaction(SIGURG, &sa, NULL);
    pid_t z7 = fork();
    if (z7 == 0) _exit(7);
    pid_t zt = fork();
    if (zt == 0) { signal(SIGTERM, SIG_DFL); raise(SIGTERM); _exit(3); }
    pid_t zc = clone(five, stack + sizeof stack, SIGURG, NULL);
    if (zc < 0) { perror("clone"); return 2; }
    siginfo_t info;
    pid_t zs[3] = {z7, zt, zc};
    for (int i = 0; i < 3; i++)
        if (waitid(P_PID, zs[i], &info, WEXITED | WNOWAIT | __WALL)) { perror("waitid"); return 2; }
    struct timespec ms = {0, 20000000};
    nanosleep(&ms, NULL);
    int before = sigchlds, urgs_before = sigurgs;
    probe_ready();
    probe_wait();
    int st;
    pid_t got = waitpid(z7, &st, WNOHANG);
    if (got != z7) probe_bad("waitpid(%d) gave %d", z7, got);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) probe_bad("status %#x, want exit 7", st);
    got = waitpid(zt, &st, WNOHANG);
    if (got != zt) probe_bad("waitpid(%d) gave %d", zt, got);
    else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM) probe_bad("status %#x, want SIGTERM", st);
    errno = 0;
    got = waitpid(zc, &st, WNOHANG);
    if (got != -1 || errno != ECHILD) probe_bad("waitpid(%d) without __WCLONE gave %d", zc, got);
    got = waitpid(zc, &st, WNOHANG | __WCLONE);
    if (got != zc) probe_bad("waitpid(%d, __WCLONE) gave %d", zc, got);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 5) probe_bad("status %#x, want exit 5", st);
    if (sigchlds != before) probe_bad("%d SIGCHLD after the dump", sigchlds - before);
    if (sigurgs != urgs_before) probe_bad("%d SIGURG after the dump", sigurgs - urgs_before);
    if (waitpid(-1, &st, WNOHANG | __WALL) != -1) probe_bad("another child");
    return probe_end();
}
