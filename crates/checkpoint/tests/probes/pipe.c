/* Probe: an anonymous pipe with both ends open and data buffered in it
 * (not read yet), and a second, non-blocking pipe with a bigger buffer
 * holding more than the default 64 KiB. After the restore every byte must
 * still be there, in order, and the flags and sizes as they were. */
#include "probe.h"
#include <errno.h>
#include <string.h>

static int check_pipe(int r, int w, const unsigned char *want, size_t n, const char *name) {
    unsigned char *got = malloc(n + 1);
    size_t have = 0;
    int fl = fcntl(r, F_GETFL);
    fcntl(r, F_SETFL, fl | O_NONBLOCK);
    while (have < n + 1) {
        ssize_t k = read(r, got + have, n + 1 - have);
        if (k <= 0) break;
        have += (size_t)k;
    }
    fcntl(r, F_SETFL, fl);
    if (have != n) probe_bad("%s: %zu bytes buffered, want %zu", name, have, n);
    else if (memcmp(got, want, n) != 0) probe_bad("%s: the buffered bytes differ", name);
    free(got);
    if (write(w, "x", 1) != 1) probe_bad("%s: write end unusable: %s", name, strerror(errno));
    char c;
    if (read(r, &c, 1) != 1 || c != 'x') probe_bad("%s: read end unusable", name);
    return 0;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int a[2], b[2];
    if (pipe(a) || pipe2(b, O_NONBLOCK | O_CLOEXEC)) { perror("pipe"); return 2; }
    static unsigned char small[1000], big[200000];
    for (size_t i = 0; i < sizeof small; i++) small[i] = (unsigned char)(i * 7 + 1);
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 13 + i / 256);
    if (write(a[1], small, sizeof small) != sizeof small) { perror("write"); return 2; }
    if (fcntl(b[1], F_SETPIPE_SZ, 256 * 1024) < 0) { perror("F_SETPIPE_SZ"); return 2; }
    int bsize = fcntl(b[1], F_GETPIPE_SZ);
    if (write(b[1], big, sizeof big) != sizeof big) { perror("write big"); return 2; }
    probe_ready();
    probe_wait();
    if (fcntl(a[0], F_GETFL) != O_RDONLY) probe_bad("pipe a read end flags %o", fcntl(a[0], F_GETFL));
    if (fcntl(a[1], F_GETFL) != O_WRONLY) probe_bad("pipe a write end flags %o", fcntl(a[1], F_GETFL));
    if (fcntl(b[0], F_GETFL) != (O_RDONLY | O_NONBLOCK)) probe_bad("pipe b read end flags %o", fcntl(b[0], F_GETFL));
    if (fcntl(b[1], F_GETFD) != FD_CLOEXEC) probe_bad("pipe b write end lost FD_CLOEXEC");
    if (fcntl(a[1], F_GETFD) != 0) probe_bad("pipe a write end gained FD_CLOEXEC");
    if (fcntl(b[1], F_GETPIPE_SZ) != bsize) probe_bad("pipe b size %d, was %d", fcntl(b[1], F_GETPIPE_SZ), bsize);
    check_pipe(a[0], a[1], small, sizeof small, "pipe a");
    check_pipe(b[0], b[1], big, sizeof big, "pipe b");
    return probe_end();
}
