/* Probe: a regular file unlinked while open (contents, a hole, offset,
 * mode), and a dup of it sharing its offset. After the restore the fd
 * holds the same contents at the same offset, has no links, and is still
 * shown under its old name. */
#include "probe.h"
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int f = open("gone.txt", O_CREAT | O_RDWR | O_TRUNC, 0640);
    char data[10000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
    write(f, data, sizeof data);
    pwrite(f, "end", 3, 300000);
    lseek(f, 4321, SEEK_SET);
    fchmod(f, 0604);
    unlink("gone.txt");
    int d = dup(f);
    char link[256], p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", f);
    ssize_t k = readlink(p, link, sizeof link - 1);
    link[k < 0 ? 0 : k] = 0;
    probe_ready();
    probe_wait();
    struct stat st;
    fstat(f, &st);
    if (st.st_nlink != 0) probe_bad("the file has %lu links", (unsigned long)st.st_nlink);
    if (st.st_size != 300003) probe_bad("size %lld", (long long)st.st_size);
    if ((st.st_mode & 07777) != 0604) probe_bad("mode %o", st.st_mode & 07777);
    if (lseek(d, 0, SEEK_CUR) != 4321) probe_bad("offset %lld", (long long)lseek(d, 0, SEEK_CUR));
    lseek(d, 1, SEEK_CUR);
    if (lseek(f, 0, SEEK_CUR) != 4322) probe_bad("the dup does not share the offset");
    char got[10000];
    if (pread(f, got, sizeof got, 0) != sizeof got || memcmp(got, data, sizeof got) != 0) probe_bad("contents differ");
    if (pread(f, got, 3, 300000) != 3 || memcmp(got, "end", 3) != 0) probe_bad("tail differs");
    char now[256];
    k = readlink(p, now, sizeof now - 1);
    now[k < 0 ? 0 : k] = 0;
    if (strcmp(now, link) != 0) probe_bad("shown as %s, was %s", now, link);
    if (access("gone.txt", F_OK) == 0) probe_bad("gone.txt exists again");
    return probe_end();
}
