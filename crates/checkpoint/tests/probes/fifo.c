/* Probe: a FIFO in the cwd, opened for reading and for writing, with data
 * buffered in it. After the restore both ends are the FIFO at that path
 * and the data is there. */
#include "probe.h"
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    unlink("the.fifo");
    if (mkfifo("the.fifo", 0600)) { perror("mkfifo"); return 2; }
    int r = open("the.fifo", O_RDONLY | O_NONBLOCK);
    int w = open("the.fifo", O_WRONLY);
    if (r < 0 || w < 0) { perror("open fifo"); return 2; }
    const char msg[] = "through the named pipe";
    if (write(w, msg, sizeof msg) != sizeof msg) { perror("write"); return 2; }
    struct stat st;
    stat("the.fifo", &st);
    probe_ready();
    probe_wait();
    struct stat sr, sw;
    fstat(r, &sr);
    fstat(w, &sw);
    if (sr.st_ino != st.st_ino || sw.st_ino != st.st_ino) probe_bad("the ends are not the FIFO");
    if ((fcntl(r, F_GETFL) & ~0100000) != (O_RDONLY | O_NONBLOCK)) probe_bad("read end flags %o", fcntl(r, F_GETFL));
    if ((fcntl(w, F_GETFL) & ~0100000) != O_WRONLY) probe_bad("write end flags %o", fcntl(w, F_GETFL));
    char got[64] = {0};
    ssize_t n = read(r, got, sizeof got);
    if (n != sizeof msg || memcmp(got, msg, sizeof msg) != 0) probe_bad("read %zd bytes: %s", n, got);
    if (write(w, "y", 1) != 1 || read(r, got, 1) != 1 || got[0] != 'y') probe_bad("the FIFO no longer carries data");
    return probe_end();
}
