/* Counts in a loop, one number every 20 ms, written (pwrite at 0) to the
 * file named by argv[1]; a checkpoint test reads it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 3;
    unsigned long n = 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (;;) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lu\n", ++n);
        memset(buf + len, ' ', sizeof buf - len - 1);
        buf[sizeof buf - 1] = '\n';
        if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) return 4;
        nanosleep(&ts, NULL);
    }
}
