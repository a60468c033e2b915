/* Probe: an open file description lock (F_OFD_SETLK), write, bytes 0-49.
 * After the restore fdinfo shows it (OFDLCK, pid -1), and a second open
 * file description of ours is refused a conflicting OFD lock (F_OFD_GETLK
 * reports the write lock) but gets one on bytes 50 and up. */
#include "locks.h"

static int ofd_probe(short type, off_t start, off_t len) {
    int g = open("locked", O_RDWR | O_CLOEXEC);
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    int r = -1;
    if (g >= 0 && fcntl(g, F_OFD_GETLK, &fl) == 0) r = fl.l_type;
    struct flock set = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if ((fcntl(g, F_OFD_SETLK, &set) == 0) != (r == F_UNLCK)) r = -2;
    close(g);
    return r;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int f = open("locked", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 50};
    if (f < 0 || fcntl(f, F_OFD_SETLK, &fl)) { perror("F_OFD_SETLK"); return 2; }
    probe_ready();
    probe_wait();
    if (!fdinfo_lock(f, "OFDLCK ADVISORY WRITE -1 ", "0 49")) probe_bad("fd %d: no OFDLCK WRITE 0-49 line in fdinfo", f);
    int t = ofd_probe(F_RDLCK, 10, 1);
    if (t != F_WRLCK) probe_bad("OFD read on 10 from another description: %d, want F_WRLCK", t);
    t = ofd_probe(F_WRLCK, 50, 0);
    if (t != F_UNLCK) probe_bad("OFD write on 50-EOF from another description: %d, want it granted", t);
    pid_t holder;
    t = posix_probe("locked", F_WRLCK, 49, 1, &holder);
    if (t != F_WRLCK) probe_bad("POSIX write on 49 from another process: %d, want F_WRLCK", t);
    return probe_end();
}
