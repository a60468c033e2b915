/* Probe: memfds: one with contents, a hole, a size past its data, its
 * offset, and seals (shrink, grow); a second fd on it opened through
 * /proc/self/fd (same file, its own offset); one without sealing. After
 * the restore contents, size, offsets, seals and names are the same. */
#include "probe.h"
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void name_of(int fd, char *out, size_t n) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(p, out, n - 1);
    out[k < 0 ? 0 : k] = 0;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int m = memfd_create("probe-memfd", MFD_ALLOW_SEALING);
    char block[5000];
    for (size_t i = 0; i < sizeof block; i++) block[i] = (char)(i % 251);
    pwrite(m, block, sizeof block, 0);
    pwrite(m, "tail", 4, 1 << 20);
    ftruncate(m, (1 << 20) + 8192);
    lseek(m, 1234, SEEK_SET);
    fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", m);
    int again = open(self, O_RDONLY);
    lseek(again, 77, SEEK_SET);
    int plain = memfd_create("plain", MFD_CLOEXEC);
    write(plain, "abc", 3);
    char name_m[128], name_p[128];
    name_of(m, name_m, sizeof name_m);
    name_of(plain, name_p, sizeof name_p);
    struct stat st;
    fstat(m, &st);
    probe_ready();
    probe_wait();
    struct stat now, now2;
    fstat(m, &now);
    fstat(again, &now2);
    if (now.st_size != st.st_size) probe_bad("size %lld, was %lld", (long long)now.st_size, (long long)st.st_size);
    if (now.st_ino != now2.st_ino) probe_bad("the second fd is another file");
    if (lseek(m, 0, SEEK_CUR) != 1234) probe_bad("offset %lld", (long long)lseek(m, 0, SEEK_CUR));
    if (lseek(again, 0, SEEK_CUR) != 77) probe_bad("second offset %lld", (long long)lseek(again, 0, SEEK_CUR));
    char got[5000];
    if (pread(m, got, sizeof got, 0) != sizeof got || memcmp(got, block, sizeof got) != 0) probe_bad("contents differ");
    char hole[16], zero[16] = {0};
    pread(m, hole, 16, 100000);
    if (memcmp(hole, zero, 16) != 0) probe_bad("the hole is not zero");
    if (pread(m, got, 4, 1 << 20) != 4 || memcmp(got, "tail", 4) != 0) probe_bad("tail differs");
    if (fcntl(m, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW)) probe_bad("seals %x", fcntl(m, F_GET_SEALS));
    if (fcntl(plain, F_GET_SEALS) != F_SEAL_SEAL) probe_bad("plain memfd seals %x", fcntl(plain, F_GET_SEALS));
    if (fcntl(again, F_GETFL) & O_ACCMODE) probe_bad("second fd not read-only");
    if (write(again, "x", 1) != -1) probe_bad("second fd writable");
    char n1[128], n2[128];
    name_of(m, n1, sizeof n1);
    name_of(plain, n2, sizeof n2);
    if (strcmp(n1, name_m) || strcmp(n2, name_p)) probe_bad("names %s %s, were %s %s", n1, n2, name_m, name_p);
    if (ftruncate(m, 10) != -1) probe_bad("shrink seal not enforced");
    if (fcntl(plain, F_GETFD) != FD_CLOEXEC) probe_bad("plain lost FD_CLOEXEC");
    return probe_end();
}
