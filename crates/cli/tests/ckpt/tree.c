/* A process tree for the container checkpoint test, started as pid 1 of
 * the container with a directory as argv[1]. Pid 1 opens DIR/count (its
 * children inherit that fd: one open file description in every process),
 * then forks:
 *   - a child that exits with status 7 at once and is never reaped (a
 *     zombie);
 *   - "a", in pid 1's session and group, whose second thread counts into
 *     DIR/count-a while the first waits for it;
 *   - "b", which leads a new session (setsid) and counts into DIR/count-b,
 *     after forking "c", which leads its own process group in b's session
 *     (setpgid) and counts into DIR/count-c.
 * Pid 1 counts into DIR/count. Each count is one number every 20 ms,
 * written at offset 0. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dir;

static void *count(void *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, (const char *)name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(3);
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
    dir = argv[1];
    char path[256];
    snprintf(path, sizeof path, "%s/shared", dir);
    if (open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644) < 0) return 3;
    if (fork() == 0) _exit(7);
    if (fork() == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, count, "count-a") != 0) _exit(5);
        pthread_join(t, NULL);
        _exit(6);
    }
    if (fork() == 0) {
        if (setsid() < 0) _exit(5);
        if (fork() == 0) {
            if (setpgid(0, 0) != 0) _exit(5);
            count("count-c");
        }
        count("count-b");
    }
    count("count");
    return 0;
}
