/* Probe: POSIX record locks: a write lock on bytes 100-199 through one
 * fd and a read lock on 300-EOF through a second open of the same file.
 * After the restore each fd's fdinfo shows its lock with our pid, and
 * another process is refused a write lock on either range (F_GETLK names
 * us as the holder) and a read lock on the first, gets a read lock on the
 * second and anything on 200-299. */
#include "locks.h"

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int w = open("locked", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    int r = open("locked", O_RDONLY | O_CLOEXEC);
    struct flock wl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 100};
    struct flock rl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 300, .l_len = 0};
    if (w < 0 || r < 0 || fcntl(w, F_SETLK, &wl) || fcntl(r, F_SETLK, &rl)) { perror("lock"); return 2; }
    probe_ready();
    probe_wait();
    pid_t me = getpid(), holder = 0;
    char want[64];
    snprintf(want, sizeof want, "POSIX ADVISORY WRITE %d ", me);
    if (!fdinfo_lock(w, want, "100 199")) probe_bad("fd %d: no POSIX WRITE 100-199 line with pid %d", w, me);
    snprintf(want, sizeof want, "POSIX ADVISORY READ %d ", me);
    if (!fdinfo_lock(r, want, "300 EOF")) probe_bad("fd %d: no POSIX READ 300-EOF line with pid %d", r, me);
    int t = posix_probe("locked", F_WRLCK, 150, 10, &holder);
    if (t != F_WRLCK || holder != me) probe_bad("write on 150: F_GETLK says %d held by %d", t, holder);
    t = posix_probe("locked", F_RDLCK, 199, 1, &holder);
    if (t != F_WRLCK || holder != me) probe_bad("read on 199: F_GETLK says %d held by %d", t, holder);
    t = posix_probe("locked", F_WRLCK, 1000, 1, &holder);
    if (t != F_RDLCK || holder != me) probe_bad("write on 1000: F_GETLK says %d held by %d", t, holder);
    t = posix_probe("locked", F_RDLCK, 300, 50, &holder);
    if (t != F_UNLCK) probe_bad("read on 300: F_GETLK says %d (want it granted)", t);
    t = posix_probe("locked", F_WRLCK, 200, 100, &holder);
    if (t != F_UNLCK) probe_bad("write on 200-299: F_GETLK says %d (want it granted)", t);
    return probe_end();
}
