/* Probe: a process tree in a time namespace of its own, with large offsets
 * (CLOCK_MONOTONIC +1000000 s, CLOCK_BOOTTIME +2000000 s). The root makes
 * the namespace (unshare, offsets, setns into it) and then a child, which
 * is in it too. Each reads both clocks through the vDSO (glibc's
 * clock_gettime: no syscall, even static) and through the raw syscall
 * before the dump and again after SIGUSR1, and requires:
 * - no clock gone back, and none forward by BOUND_NS or more: the harness
 *   waits 1.5 s between the dump and each restore, which shows if the
 *   restore lets the downtime through (or puts us in the host's namespace,
 *   a jump of a million seconds back);
 * - the vDSO and the syscall agreeing (the vvar page is the namespace's);
 * - /proc/self/timens_offsets consistent with the clocks: still a namespace
 *   of our own (for our children too), both offsets moved by one amount,
 *   never up, and clock minus offset (the host's clock) advanced as
 *   CLOCK_REALTIME, which no namespace shifts, did.
 * The root forwards SIGUSR1 to the child and requires it to exit 0. */
#include "probe.h"
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NS 1000000000LL
#define MONO_OFFSET 1000000LL
#define BOOT_OFFSET 2000000LL
/* Less than the harness's 1.5 s pause between dump and restore. */
#define BOUND_NS (NS)

typedef long long ns_t;

struct reading {
    ns_t mono_vdso, mono_sys, boot_vdso, boot_sys, real;
    ns_t off_mono, off_boot;
};

static ns_t nanos(struct timespec t) { return (ns_t)t.tv_sec * NS + t.tv_nsec; }

static ns_t vdso(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return nanos(t);
}

static ns_t sys(clockid_t id) {
    struct timespec t;
    syscall(SYS_clock_gettime, id, &t);
    return nanos(t);
}

/* /proc/self/timens_offsets: "monotonic S N" and "boottime S N". */
static int offsets(ns_t *mono, ns_t *boot) {
    FILE *f = fopen("/proc/self/timens_offsets", "re");
    if (!f) return -1;
    char name[32];
    long long s, n;
    int got = 0;
    while (fscanf(f, "%31s %lld %lld", name, &s, &n) == 3) {
        if (!strcmp(name, "monotonic")) { *mono = s * NS + n; got |= 1; }
        if (!strcmp(name, "boottime")) { *boot = s * NS + n; got |= 2; }
    }
    fclose(f);
    return got == 3 ? 0 : -1;
}

static int read_all(struct reading *r) {
    r->mono_vdso = vdso(CLOCK_MONOTONIC);
    r->mono_sys = sys(CLOCK_MONOTONIC);
    r->boot_vdso = vdso(CLOCK_BOOTTIME);
    r->boot_sys = sys(CLOCK_BOOTTIME);
    r->real = vdso(CLOCK_REALTIME);
    return offsets(&r->off_mono, &r->off_boot);
}

static int same_ns(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static double sec(ns_t n) { return (double)n / NS; }

/* Compares a reading after the restore with one before; returns the number
 * of differences, printed with `who`. */
static int check(const struct reading *b, const char *who) {
    struct reading a;
    int bad = 0;
#define BAD(...) do { printf("%s %d: ", who, getpid()); printf(__VA_ARGS__); printf("\n"); bad++; } while (0)
    if (read_all(&a)) { BAD("cannot read /proc/self/timens_offsets"); return bad; }
    struct { const char *name; ns_t before, after; } c[] = {
        {"CLOCK_MONOTONIC (vDSO)", b->mono_vdso, a.mono_vdso},
        {"CLOCK_MONOTONIC (syscall)", b->mono_sys, a.mono_sys},
        {"CLOCK_BOOTTIME (vDSO)", b->boot_vdso, a.boot_vdso},
        {"CLOCK_BOOTTIME (syscall)", b->boot_sys, a.boot_sys},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        ns_t d = c[i].after - c[i].before;
        if (d < 0) BAD("%s went back by %.3f s (%.3f -> %.3f)", c[i].name, sec(-d), sec(c[i].before), sec(c[i].after));
        else if (d >= BOUND_NS) BAD("%s jumped forward by %.3f s (%.3f -> %.3f)", c[i].name, sec(d), sec(c[i].before), sec(c[i].after));
    }
    /* Read one after the other: a few microseconds apart. */
    if (llabs(a.mono_vdso - a.mono_sys) > NS / 100) BAD("CLOCK_MONOTONIC: vDSO %.6f, syscall %.6f", sec(a.mono_vdso), sec(a.mono_sys));
    if (llabs(a.boot_vdso - a.boot_sys) > NS / 100) BAD("CLOCK_BOOTTIME: vDSO %.6f, syscall %.6f", sec(a.boot_vdso), sec(a.boot_sys));
    if (a.off_mono < MONO_OFFSET * NS / 2 || a.off_boot < BOOT_OFFSET * NS / 2)
        BAD("offsets %.3f s and %.3f s: not a namespace like ours", sec(a.off_mono), sec(a.off_boot));
    if (!same_ns("/proc/self/ns/time", "/proc/self/ns/time_for_children"))
        BAD("its children would be made in another time namespace");
    ns_t dm = b->off_mono - a.off_mono, db = b->off_boot - a.off_boot;
    if (dm < 0 || db < 0) BAD("offsets went up: monotonic by %.3f s, boottime by %.3f s", sec(-dm), sec(-db));
    if (llabs(dm - db) > NS / 1000) BAD("offsets moved apart: monotonic by %.6f s, boottime by %.6f s", sec(dm), sec(db));
    ns_t host = (a.mono_sys - a.off_mono) - (b->mono_sys - b->off_mono);
    ns_t real = a.real - b->real;
    if (llabs(host - real) > NS / 10)
        BAD("clock minus offset moved %.3f s, CLOCK_REALTIME %.3f s", sec(host), sec(real));
    printf("%s %d: %.3f s passed, %.3f s of it in the namespace (offsets -%.3f s)\n", who, getpid(),
           sec(real), sec(a.mono_sys - b->mono_sys), sec(dm));
    return bad;
}

static int enter_namespace(void) {
    if (unshare(CLONE_NEWTIME)) { perror("unshare(CLONE_NEWTIME)"); return -1; }
    char text[64];
    int len = snprintf(text, sizeof text, "monotonic %lld 0\nboottime %lld 0\n", MONO_OFFSET, BOOT_OFFSET);
    int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, len) != len) { perror("write timens_offsets"); return -1; }
    close(fd);
    fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWTIME)) { perror("setns"); return -1; }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    if (enter_namespace()) return 2;
    if (vdso(CLOCK_MONOTONIC) < MONO_OFFSET * NS || vdso(CLOCK_BOOTTIME) < BOOT_OFFSET * NS) {
        printf("the offsets do not show\n");
        return 2;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC)) { perror("pipe"); return 2; }
    pid_t kid = fork();
    if (kid < 0) { perror("fork"); return 2; }
    if (kid == 0) {
        close(p[0]);
        struct reading r;
        if (read_all(&r)) _exit(2);
        if (write(p[1], "x", 1) != 1) _exit(2);
        close(p[1]);
        probe_wait();
        _exit(check(&r, "child") ? 1 : 0);
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) { printf("the child never got ready\n"); return 2; }
    close(p[0]);
    struct reading r;
    if (read_all(&r)) { printf("cannot read /proc/self/timens_offsets\n"); return 2; }
    probe_ready();
    probe_wait();
    probe_differences += check(&r, "root");
    kill(kid, SIGUSR1);
    int st;
    if (waitpid(kid, &st, 0) != kid) probe_bad("waitpid %d failed", kid);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) probe_bad("child %d status %#x", kid, st);
    return probe_end();
}
