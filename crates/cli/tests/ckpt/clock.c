/* Reads CLOCK_MONOTONIC and CLOCK_BOOTTIME every 20 ms, through the vDSO
 * (glibc's clock_gettime: no syscall, even static) and through the raw
 * syscall, and writes (pwrite at 0) to the file named by argv[1] one line:
 *   COUNT MONO_NS BOOT_NS LARGEST_STEP_NS BACKWARDS MISMATCHES
 * the readings count, the last vDSO readings, the largest step of
 * CLOCK_MONOTONIC between two readings, how many times a clock went back,
 * and how many readings the vDSO and the syscall disagreed on by more than
 * 10 ms. A checkpoint test reads it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef long long ns_t;

static ns_t vdso(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (ns_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static ns_t sys(clockid_t id) {
    struct timespec t;
    syscall(SYS_clock_gettime, id, &t);
    return (ns_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 3;
    unsigned long n = 0, back = 0, mismatch = 0;
    ns_t last_mono = 0, last_boot = 0, largest = 0;
    struct timespec pause = {0, 20 * 1000 * 1000};
    for (;;) {
        ns_t mono = vdso(CLOCK_MONOTONIC), mono_sys = sys(CLOCK_MONOTONIC);
        ns_t boot = vdso(CLOCK_BOOTTIME), boot_sys = sys(CLOCK_BOOTTIME);
        if (llabs(mono_sys - mono) > 10000000LL || llabs(boot_sys - boot) > 10000000LL) mismatch++;
        if (n > 0) {
            if (mono < last_mono || boot < last_boot) back++;
            if (mono - last_mono > largest) largest = mono - last_mono;
        }
        last_mono = mono;
        last_boot = boot;
        char buf[160];
        int len = snprintf(buf, sizeof buf, "%lu %lld %lld %lld %lu %lu\n", ++n, mono, boot, largest, back, mismatch);
        memset(buf + len, ' ', sizeof buf - len - 1);
        buf[sizeof buf - 1] = '\n';
        if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) _exit(4);
        nanosleep(&pause, NULL);
    }
}
