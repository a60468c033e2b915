/* Probe: locks in a tree of two processes, each on its right owner. The
 * root takes flock(LOCK_EX) on "shared" and a POSIX write lock on bytes
 * 0-9 of "ranges", then forks: the child shares both open file
 * descriptions (so the flock, owned by the description, is the child's
 * too; the POSIX lock, owned by the root, is not) and takes a POSIX read
 * lock on bytes 20-29 through the same fd. After the restore each
 * process's fdinfo shows its own POSIX lock and not the other's, both show
 * the flock, and a third process is refused each lock, told the right
 * holder's pid. */
#include "locks.h"

static int check(pid_t root, pid_t child, int s, int r, int is_root) {
    int bad = 0;
    const char *who = is_root ? "root" : "child";
    char want[64];
    if (!fdinfo_lock(s, "FLOCK ADVISORY WRITE ", "0 EOF")) { printf("%s: fd %d: no FLOCK WRITE line\n", who, s); bad++; }
    snprintf(want, sizeof want, "POSIX ADVISORY WRITE %d ", root);
    if (fdinfo_lock(r, want, "0 9") != is_root) { printf("%s: fd %d: root's POSIX write lock %s\n", who, r, is_root ? "missing" : "shown"); bad++; }
    snprintf(want, sizeof want, "POSIX ADVISORY READ %d ", child);
    if (fdinfo_lock(r, want, "20 29") == is_root) { printf("%s: fd %d: child's POSIX read lock %s\n", who, r, is_root ? "shown" : "missing"); bad++; }
    if (fdinfo_locks(r) != 1) { printf("%s: fd %d: %d lock lines, want 1\n", who, r, fdinfo_locks(r)); bad++; }
    return bad;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int s = open("shared", O_CREAT | O_RDWR, 0600);
    int r = open("ranges", O_CREAT | O_RDWR, 0600);
    struct flock wl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    if (s < 0 || r < 0 || flock(s, LOCK_EX) || fcntl(r, F_SETLK, &wl)) { perror("lock"); return 2; }
    pid_t root = getpid();
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return 2;
    pid_t child = fork();
    if (child == 0) {
        struct flock rl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
        if (fcntl(r, F_SETLK, &rl)) _exit(2);
        if (write(p[1], "x", 1) != 1) _exit(2);
        probe_wait();
        _exit(check(root, getpid(), s, r, 0) ? 1 : 0);
    }
    char c;
    if (read(p[0], &c, 1) != 1) { printf("child never got ready\n"); return 2; }
    close(p[0]);
    close(p[1]);
    probe_ready();
    probe_wait();
    if (check(root, child, s, r, 1)) probe_bad("the root's locks differ");
    pid_t holder = 0;
    int t = posix_probe("ranges", F_WRLCK, 0, 1, &holder);
    if (t != F_WRLCK || holder != root) probe_bad("write on 0: F_GETLK says %d held by %d, want the root %d", t, holder, root);
    t = posix_probe("ranges", F_WRLCK, 25, 1, &holder);
    if (t != F_RDLCK || holder != child) probe_bad("write on 25: F_GETLK says %d held by %d, want the child %d", t, holder, child);
    if (flock_granted("shared", LOCK_SH) != 0) probe_bad("another description got LOCK_SH on shared");
    kill(child, SIGUSR1);
    int st;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) probe_bad("child status %#x", st);
    return probe_end();
}
