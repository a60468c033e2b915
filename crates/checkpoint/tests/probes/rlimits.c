/* Probe: resource limits. Several are lowered (soft and hard apart, never
 * above the hard limit we were given: raising one needs CAP_SYS_RESOURCE);
 * after SIGUSR1 every one of the 16 reads back the same. */
#include "probe.h"
#include <sys/resource.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    struct { int r; rlim_t soft, hard; } set[] = {
        {RLIMIT_NOFILE, 100, 200}, {RLIMIT_CORE, 0, 1234567}, {RLIMIT_FSIZE, 1 << 30, RLIM_INFINITY},
        {RLIMIT_NPROC, 5000, 6000}, {RLIMIT_MSGQUEUE, 4096, 8192}, {RLIMIT_SIGPENDING, 300, 400},
        {RLIMIT_CPU, 100000, 200000}, {RLIMIT_NICE, 0, 5}};
    for (unsigned i = 0; i < sizeof set / sizeof set[0]; i++) {
        struct rlimit l;
        getrlimit(set[i].r, &l);
        if (set[i].hard < l.rlim_max) l.rlim_max = set[i].hard;
        l.rlim_cur = set[i].soft < l.rlim_max ? set[i].soft : l.rlim_max;
        if (setrlimit(set[i].r, &l)) { perror("setrlimit"); return 2; }
    }
    struct rlimit before[16], after[16];
    for (int r = 0; r < 16; r++) getrlimit(r, &before[r]);
    probe_ready();
    probe_wait();
    for (int r = 0; r < 16; r++) {
        getrlimit(r, &after[r]);
        if (after[r].rlim_cur != before[r].rlim_cur || after[r].rlim_max != before[r].rlim_max)
            probe_bad("rlimit %d: %llu/%llu, was %llu/%llu", r, (unsigned long long)after[r].rlim_cur,
                      (unsigned long long)after[r].rlim_max, (unsigned long long)before[r].rlim_cur,
                      (unsigned long long)before[r].rlim_max);
    }
    return probe_end();
}
