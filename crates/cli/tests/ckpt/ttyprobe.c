/* A container's init on a terminal (process.terminal), for the
 * checkpoint tests. At start it changes its terminal: no ICANON, no ECHO,
 * VMIN 1, VINTR ^G, a window of 33 rows and 101 columns, and keeps a
 * second dup of it on fd 5; then prints "ready". For every "c" read on
 * stdin it checks that all this is still so (fds 0-2 and 5 terminals, the
 * terminal its session's controlling one, its group in the foreground)
 * and prints "check ok N" (N counts the checks) or "check bad WHAT";
 * so too on SIGUSR1 (for engines, which cannot type on its terminal).
 * With the argument "otherpty" it holds a pty of its own too: the slave
 * on fd 4, the master on fd 9; with "notty" it gives up its controlling
 * terminal (TIOCNOTTY) once ready; with "noread" it reads nothing once
 * ready. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static int checks;
static volatile sig_atomic_t asked;

static void on_usr1(int sig) {
    (void)sig;
    asked = 1;
}

static void say(const char *s) {
    if (write(1, s, strlen(s)) < 0) _exit(3);
}

static unsigned long long tty_nr(void) {
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    /* ) state ppid pgrp session tty_nr */
    char state;
    int ppid, pgrp, session;
    unsigned long long nr;
    if (sscanf(p + 1, " %c %d %d %d %llu", &state, &ppid, &pgrp, &session, &nr) != 5) return 0;
    return nr;
}

static const char *check(void) {
    for (int fd = 0; fd <= 5; fd++)
        if ((fd <= 2 || fd == 5) && !isatty(fd)) return "isatty";
    struct stat st0, st5;
    if (fstat(0, &st0) || fstat(5, &st5)) return "fstat";
    if (st0.st_rdev != st5.st_rdev) return "fd 5 another terminal";
    if (tcgetsid(0) != getsid(0) || getsid(0) != getpid()) return "tcgetsid";
    if (tcgetpgrp(0) != getpgrp()) return "tcgetpgrp";
    if (tty_nr() != (unsigned long long)st0.st_rdev) return "tty_nr";
    struct termios t;
    if (tcgetattr(0, &t)) return "tcgetattr";
    if (t.c_lflag & (ICANON | ECHO)) return "lflag";
    if (t.c_cc[VMIN] != 1 || t.c_cc[VINTR] != 7) return "c_cc";
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws)) return "TIOCGWINSZ";
    if (ws.ws_row != 33 || ws.ws_col != 101) return "window size";
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "otherpty") == 0) {
        int m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
        if (m < 0 || unlockpt(m)) return 2;
        int s = open(ptsname(m), O_RDWR | O_NOCTTY);
        if (s < 0 || dup2(s, 4) != 4 || dup2(m, 9) != 9) return 2;
        if (s != 4) close(s);
        if (m != 9) close(m);
    }
    struct termios t;
    if (tcgetattr(0, &t)) return 1;
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    t.c_cc[VINTR] = 7;
    if (tcsetattr(0, TCSANOW, &t)) return 1;
    struct winsize ws = {.ws_row = 33, .ws_col = 101};
    if (ioctl(0, TIOCSWINSZ, &ws)) return 1;
    if (dup2(1, 5) != 5) return 1;
    struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
    if (sigaction(SIGUSR1, &sa, NULL)) return 1;
    if (argc > 1 && strcmp(argv[1], "notty") == 0 && ioctl(0, TIOCNOTTY) != 0) return 2;
    say("ready\n");
    if (argc > 1 && strcmp(argv[1], "noread") == 0)
        for (;;) pause();
    for (;;) {
        char c = 0;
        ssize_t n = read(0, &c, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) return 0;
        if (asked) {
            asked = 0;
            c = 'c';
        }
        if (c != 'c') continue;
        const char *bad = check();
        char line[64];
        if (bad)
            snprintf(line, sizeof line, "check bad %s\n", bad);
        else
            snprintf(line, sizeof line, "check ok %d\n", ++checks);
        say(line);
    }
}
