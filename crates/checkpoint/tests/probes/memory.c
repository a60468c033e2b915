/* Probe: anonymous memory, a data section, TLS, a signal handler and a
 * counting loop. Usage: memory MIB READY_FILE
 * Fills MIB MiB of anonymous memory with a pseudo-random pattern, writes
 * READY_FILE, then counts until SIGUSR1; then checks every word, its pid,
 * its TLS and that the loop went on, and exits 0, or prints what differs
 * and exits 1. Built static by the tests so that no loader is involved. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/syscall.h>

static volatile sig_atomic_t got_usr1;
static uint64_t data_words[4096] = {1}; /* .data: a private file mapping */
static __thread uint64_t tls_word = 0x7115;

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    /* Only stdio is ours: a harness may leak fds (pipes) we cannot dump. */
    syscall(SYS_close_range, 3, ~0u, 0);
    size_t words = (size_t)atol(argv[1]) << 17; /* MiB / 8 bytes */
    uint64_t *mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 3;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < words; i++) mem[i] = next(&seed);
    for (size_t i = 0; i < 4096; i++) data_words[i] = i * 0x10001;
    tls_word = 0xfeedface;
    pid_t pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 4;
    close(fd);
    /* From 1: a dump may stop us before the loop runs once, and the
     * restored copy may get SIGUSR1 at once; 0 means the stack was lost. */
    volatile uint64_t count = 1;
    uint64_t at_ready = 0;
    while (!got_usr1) count++;
    at_ready = count;

    int bad = 0;
    seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < words; i++) {
        uint64_t want = next(&seed);
        if (mem[i] != want) {
            if (bad++ < 5) printf("word %zu: %#lx, want %#lx\n", i, mem[i], want);
        }
    }
    for (size_t i = 0; i < 4096; i++)
        if (data_words[i] != i * 0x10001 && bad++ < 10) printf("data word %zu differs\n", i);
    if (tls_word != 0xfeedface) { printf("tls word %#lx\n", tls_word); bad++; }
    if (getpid() != pid) { printf("pid %d, was %d\n", getpid(), pid); bad++; }
    if (at_ready == 0) { printf("the counter went back to 0\n"); bad++; }
    printf("%s: %d differences, counted to %lu\n", bad ? "FAIL" : "ok", bad, (unsigned long)at_ready);
    fflush(stdout);
    return bad ? 1 : 0;
}
