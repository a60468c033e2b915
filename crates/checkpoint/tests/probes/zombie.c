/* Probe: zombies. The root makes two children that end at once, one with
 * exit status 7, one killed by SIGTERM, and does not reap them: they are
 * zombies when it is dumped. A SIGCHLD handler counts the notifications.
 * On SIGUSR1 the root's waitpid (WNOHANG: they must already be zombies)
 * must give 7 and SIGTERM, and no SIGCHLD may have come meanwhile. */
#include "probe.h"
#include <sys/wait.h>

static volatile sig_atomic_t sigchlds;
static void on_chld(int sig) { (void)sig; sigchlds++; }

int main(int argc, char **argv) {
    probe_start(argc, argv);
    struct sigaction sa = {0};
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    pid_t z7 = fork();
    if (z7 == 0) _exit(7);
    pid_t zt = fork();
    if (zt == 0) { signal(SIGTERM, SIG_DFL); raise(SIGTERM); _exit(3); }
    siginfo_t info;
    for (int i = 0; i < 2; i++)
        if (waitid(P_PID, i ? zt : z7, &info, WEXITED | WNOWAIT)) { perror("waitid"); return 2; }
    struct timespec ms = {0, 20000000};
    nanosleep(&ms, NULL);
    int before = sigchlds;
    probe_ready();
    probe_wait();
    int st;
    pid_t got = waitpid(z7, &st, WNOHANG);
    if (got != z7) probe_bad("waitpid(%d) gave %d", z7, got);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) probe_bad("status %#x, want exit 7", st);
    got = waitpid(zt, &st, WNOHANG);
    if (got != zt) probe_bad("waitpid(%d) gave %d", zt, got);
    else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM) probe_bad("status %#x, want SIGTERM", st);
    if (sigchlds != before) probe_bad("%d SIGCHLD after the dump", sigchlds - before);
    if (waitpid(-1, &st, WNOHANG) != -1) probe_bad("another child");
    return probe_end();
}
