/* Probe: regular files with offsets and flags: read-only, write-only with
 * O_APPEND, read-write; a dup sharing its offset (and another number got
 * with F_DUPFD_CLOEXEC), a second open of the same file with its own
 * offset, a directory; close-on-exec set on some. After the restore each
 * fd has its offset, flags and FD_CLOEXEC, and dups still share. */
#include "probe.h"
#include <string.h>
#include <sys/stat.h>

struct want { int fd; off_t off; int fl; int cloexec; const char *name; };

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int w = open("data.txt", O_CREAT | O_RDWR | O_TRUNC, 0600);
    char buf[8192];
    memset(buf, 'q', sizeof buf);
    write(w, buf, sizeof buf);
    lseek(w, 100, SEEK_SET);
    int ro = open("data.txt", O_RDONLY | O_CLOEXEC);
    lseek(ro, 2000, SEEK_SET);
    int ap = open("data.txt", O_WRONLY | O_APPEND);
    int dupped = dup(ro);
    int high = fcntl(w, F_DUPFD_CLOEXEC, 40);
    int again = open("data.txt", O_RDONLY);
    lseek(again, 7, SEEK_SET);
    int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int nul = open("/dev/null", O_WRONLY);
    struct want want[] = {
        {w, 100, O_RDWR, 0, "rw"},
        {ro, 2000, O_RDONLY, 1, "ro"},
        {ap, 0, O_WRONLY | O_APPEND, 0, "append"},
        {dupped, 2000, O_RDONLY, 0, "dup of ro"},
        {high, 100, O_RDWR, 1, "F_DUPFD_CLOEXEC of rw"},
        {again, 7, O_RDONLY, 0, "second open"},
        {dir, 0, O_RDONLY | O_DIRECTORY, 1, "directory"},
        {nul, 0, O_WRONLY, 0, "/dev/null"},
    };
    probe_ready();
    probe_wait();
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        struct want *x = &want[i];
        off_t off = lseek(x->fd, 0, SEEK_CUR);
        int fl = fcntl(x->fd, F_GETFL) & ~0100000; /* O_LARGEFILE, which the kernel always sets here */
        int ce = fcntl(x->fd, F_GETFD) == FD_CLOEXEC;
        if (off != x->off) probe_bad("%s (fd %d): offset %lld, want %lld", x->name, x->fd, (long long)off, (long long)x->off);
        if (fl != x->fl) probe_bad("%s (fd %d): flags %o, want %o", x->name, x->fd, fl, x->fl);
        if (ce != x->cloexec) probe_bad("%s (fd %d): close-on-exec %d", x->name, x->fd, ce);
    }
    lseek(dupped, 10, SEEK_CUR);
    if (lseek(ro, 0, SEEK_CUR) != 2010) probe_bad("the dup no longer shares ro's offset");
    lseek(high, 5, SEEK_CUR);
    if (lseek(w, 0, SEEK_CUR) != 105) probe_bad("the high dup no longer shares rw's offset");
    if (lseek(again, 0, SEEK_CUR) != 7) probe_bad("the second open moved with the others");
    struct stat st0, st;
    fstat(w, &st0);
    write(ap, "Z", 1);
    fstat(w, &st);
    char last;
    if (st.st_size != st0.st_size + 1 || pread(w, &last, 1, st0.st_size) != 1 || last != 'Z')
        probe_bad("O_APPEND write did not go to the end");
    return probe_end();
}
