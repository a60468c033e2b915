/* Probe: flock(LOCK_EX) held through a dup'd fd. After the restore the
 * fd (and its dup) shows the lock in fdinfo, and neither LOCK_EX nor
 * LOCK_SH is granted to another open file description of the file. */
#include "locks.h"

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int f = open("locked", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (f < 0 || flock(f, LOCK_EX)) { perror("flock"); return 2; }
    int d = dup(f);
    probe_ready();
    probe_wait();
    char want[64];
    snprintf(want, sizeof want, "FLOCK ADVISORY WRITE ");
    if (!fdinfo_lock(f, want, "0 EOF")) probe_bad("fd %d: no FLOCK WRITE line in fdinfo", f);
    if (!fdinfo_lock(d, want, "0 EOF")) probe_bad("dup fd %d: no FLOCK WRITE line in fdinfo", d);
    if (fdinfo_locks(f) != 1) probe_bad("fd %d: %d lock lines, want 1", f, fdinfo_locks(f));
    if (flock_granted("locked", LOCK_EX) != 0) probe_bad("another description got LOCK_EX");
    if (flock_granted("locked", LOCK_SH) != 0) probe_bad("another description got LOCK_SH");
    if (flock(f, LOCK_UN)) probe_bad("LOCK_UN: %m");
    if (flock_granted("locked", LOCK_EX) != 1) probe_bad("LOCK_EX refused after our LOCK_UN");
    return probe_end();
}
