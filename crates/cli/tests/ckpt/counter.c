/* Counts in a loop, one number every 20 ms, written (pwrite at 0) to the
 * file named by argv[1]; a checkpoint test reads it. With a second
 * argument "thread", a second thread does the counting while the first
 * waits for it (a threaded process); with "block", SIGUSR1 is blocked (so
 * one sent stays pending); with "sock", it listens on a unix socket bound
 * to /tmp/sock first; with "flock", it holds flock(LOCK_EX) on its file. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fd;

static void *count(void *arg) {
    (void)arg;
    unsigned long n = 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (;;) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lu\n", ++n);
        memset(buf + len, ' ', sizeof buf - len - 1);
        buf[sizeof buf - 1] = '\n';
        if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) _exit(4);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 3;
    if (argc > 2 && strcmp(argv[2], "sock") == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "/tmp/sock"};
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        unlink(a.sun_path);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0)
            return 8;
    }
    if (argc > 2 && strcmp(argv[2], "flock") == 0 && flock(fd, LOCK_EX) != 0) return 9;
    if (argc > 2 && strcmp(argv[2], "block") == 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return 7;
    }
    if (argc > 2 && strcmp(argv[2], "thread") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, count, NULL) != 0) return 5;
        pthread_join(t, NULL);
        return 6;
    }
    count(NULL);
    return 0;
}
