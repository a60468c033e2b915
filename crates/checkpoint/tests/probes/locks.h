/* What the lock probes (lock_*.c) share: reading their own locks back
 * from /proc/self/fdinfo, and asking from another process or another open
 * file description whether a lock would be granted. */
#ifndef LOCKS_H
#define LOCKS_H
#include "probe.h"
#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>

/* Whether fd's fdinfo has a lock line that, blanks squeezed, holds
 * `want` (e.g. "POSIX ADVISORY WRITE 1234 " and then " 100 199"). */
static int fdinfo_lock(int fd, const char *want, const char *range) {
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return 0;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0) return 0;
    buf[n] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "lock:", 5) != 0) continue;
        char sq[512];
        size_t j = 0;
        for (size_t i = 5; line[i] && j < sizeof sq - 2; i++) {
            int blank = line[i] == ' ' || line[i] == '\t';
            if (blank && (j == 0 || sq[j - 1] == ' ')) continue;
            sq[j++] = blank ? ' ' : line[i];
        }
        sq[j++] = '\n';
        sq[j] = 0;
        char end[64];
        snprintf(end, sizeof end, " %s\n", range);
        if (strstr(sq, want) && strstr(sq, end)) return 1;
    }
    return 0;
}

/* Number of lock lines in fd's fdinfo. */
static int fdinfo_locks(int fd) {
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return -1;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0) return -1;
    buf[n] = 0;
    int count = 0;
    for (char *p = buf; (p = strstr(p, "lock:")); p += 5) count++;
    return count;
}

/* In a child (another process: POSIX locks of ours do not conflict with
 * our own requests): F_GETLK of `type` on [start, start+len) of `path`.
 * Returns the type the kernel reports (F_UNLCK: it would be granted) and
 * puts the holder's pid in *pid; -1 on error. */
static int posix_probe(const char *path, short type, off_t start, off_t len, pid_t *pid) {
    int p[2];
    if (pipe(p)) return -1;
    pid_t c = fork();
    if (c == 0) {
        int f = open(path, O_RDWR);
        struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
        int r[2] = {-1, 0};
        if (f >= 0 && fcntl(f, F_GETLK, &fl) == 0) { r[0] = fl.l_type; r[1] = fl.l_pid; }
        /* And the kernel refuses F_SETLK exactly when F_GETLK says so. */
        struct flock set = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
        int granted = fcntl(f, F_SETLK, &set) == 0;
        if (granted != (r[0] == F_UNLCK)) r[0] = -2;
        if (write(p[1], r, sizeof r) != sizeof r) _exit(1);
        _exit(0);
    }
    close(p[1]);
    int r[2] = {-1, 0};
    if (read(p[0], r, sizeof r) != sizeof r) r[0] = -1;
    close(p[0]);
    waitpid(c, NULL, 0);
    if (pid) *pid = r[1];
    return r[0];
}

/* From a new open file description of `path` in this process: whether
 * flock(op | LOCK_NB) is granted (1), refused with EWOULDBLOCK (0), or
 * fails otherwise (-1). A granted lock is dropped at once. */
static int flock_granted(const char *path, int op) {
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return -1;
    int r = flock(f, op | LOCK_NB);
    int e = errno;
    close(f);
    if (r == 0) return 1;
    return e == EWOULDBLOCK ? 0 : -1;
}
#endif
