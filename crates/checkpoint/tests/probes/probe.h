/* What every probe of tests/probes.rs shares. A probe:
 *
 *   int main(int argc, char **argv) {
 *       probe_start(argc, argv);   // stdio only, unbuffered, SIGUSR1 armed
 *       ... set up the state ...
 *       probe_ready();             // the harness may dump from now on
 *       probe_wait();              // until SIGUSR1 (after the restore)
 *       ... check: probe_bad("what differs", ...) for each difference ...
 *       return probe_end();        // prints "ok" and 0, or 1
 *   }
 *
 * A probe that needs SIGUSR1 for itself handles it in its own handler and
 * sets probe_go there. */
#ifndef PROBE_H
#define PROBE_H
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t probe_go;
static const char *probe_ready_path;
static int probe_differences;

static void probe_on_usr1(int sig) { (void)sig; probe_go = 1; }

static void probe_start(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s READY_FILE\n", argv[0]); exit(2); }
    probe_ready_path = argv[1];
    /* Only stdio is ours: a harness may leak fds (pipes) into us. */
    syscall(SYS_close_range, 3, ~0u, 0);
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = probe_on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
}

static void probe_ready(void) {
    int fd = open(probe_ready_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { perror("ready file"); exit(2); }
    close(fd);
}

/* Sleeps in 1 ms steps until SIGUSR1. */
static void probe_wait(void) {
    struct timespec ms = {0, 1000000};
    while (!probe_go) nanosleep(&ms, NULL);
}

__attribute__((format(printf, 1, 2)))
static void probe_bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    probe_differences++;
}

static int probe_end(void) {
    if (probe_differences) { printf("%d differences\n", probe_differences); return 1; }
    printf("ok\n");
    return 0;
}
#endif
