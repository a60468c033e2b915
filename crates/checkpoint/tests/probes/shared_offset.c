/* Probe: one open file description in two processes. The root opens a
 * file, dups it, writes "A", forks a child that writes "B"; the offset is
 * shared, so the file reads "AB". On SIGUSR1 the root writes "R" and
 * signals the child, which writes "C": if the restore kept one
 * description, the file reads "ABRC" and every offset is 4. */
#include "probe.h"
#include <string.h>
#include <sys/wait.h>

static int fd;

static int at(const char *who, int f, off_t want) {
    off_t got = lseek(f, 0, SEEK_CUR);
    if (got == want) return 0;
    printf("%s: offset %ld, want %ld\n", who, (long)got, (long)want);
    return 1;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    fd = open("shared.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int dup_fd = dup(fd);
    if (fd < 0 || dup_fd < 0 || write(fd, "A", 1) != 1) { perror("shared.txt"); return 2; }
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return 2;
    pid_t kid = fork();
    if (kid == 0) {
        close(p[0]);
        if (write(fd, "B", 1) != 1 || write(p[1], "x", 1) != 1) _exit(2);
        close(p[1]);
        probe_wait();
        if (write(fd, "C", 1) != 1) _exit(2);
        _exit(at("child", fd, 4));
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) return 2;
    close(p[0]);
    probe_ready();
    probe_wait();
    if (at("root before", fd, 2)) probe_bad("offset not kept");
    if (write(fd, "R", 1) != 1) probe_bad("write");
    kill(kid, SIGUSR1);
    int st;
    if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st)) probe_bad("child failed (%#x)", st);
    if (at("root", fd, 4) + at("root dup", dup_fd, 4)) probe_bad("offset not shared");
    char buf[8] = {0};
    if (pread(fd, buf, sizeof buf - 1, 0) != 4 || strcmp(buf, "ABRC")) probe_bad("file holds \"%s\", want ABRC", buf);
    return probe_end();
}
