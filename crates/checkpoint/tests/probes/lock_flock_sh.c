/* Probe: flock(LOCK_SH). After the restore fdinfo shows a FLOCK READ
 * lock; another open file description gets LOCK_SH but not LOCK_EX. */
#include "locks.h"

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int f = open("locked", O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
    if (f < 0 || flock(f, LOCK_SH)) { perror("flock"); return 2; }
    probe_ready();
    probe_wait();
    if (!fdinfo_lock(f, "FLOCK ADVISORY READ ", "0 EOF")) probe_bad("fd %d: no FLOCK READ line in fdinfo", f);
    if (flock_granted("locked", LOCK_SH) != 1) probe_bad("another description was refused LOCK_SH");
    if (flock_granted("locked", LOCK_EX) != 0) probe_bad("another description got LOCK_EX");
    return probe_end();
}
