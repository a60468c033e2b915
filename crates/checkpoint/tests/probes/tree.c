/* Probe: a process tree. The root makes two children; the first makes a
 * grandchild. Each process fills its own heap block with a pattern of its
 * own and remembers its pid and parent. On SIGUSR1 the root forwards the
 * signal to its children, each child to its own; each process checks its
 * pid, its parent and its memory, waits for its children and requires each
 * to exit 0. The root prints ok only if every process passed. */
#include "probe.h"
#include <stdint.h>
#include <sys/wait.h>

#define WORDS (256 * 1024)

static uint32_t *mem;
static pid_t kids[2];
static int nkids;

static uint32_t word(uint32_t seed, size_t i) { return (uint32_t)((i + seed * 7919u) * 2654435761u); }

static void fill(uint32_t seed) {
    mem = malloc(WORDS * sizeof *mem);
    if (!mem) { perror("malloc"); _exit(2); }
    for (size_t i = 0; i < WORDS; i++) mem[i] = word(seed, i);
}

static void node(uint32_t seed, int nchildren, int up);

/* Forks a node and waits until it (and its subtree) is set up. */
static pid_t spawn(uint32_t seed, int nchildren) {
    int p[2];
    if (pipe2(p, O_CLOEXEC)) { perror("pipe"); _exit(2); }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); _exit(2); }
    if (pid == 0) { /* only its own pipe end: no fd of an ancestor's pipe */
        syscall(SYS_close_range, 3, p[1] - 1, 0);
        syscall(SYS_close_range, p[1] + 1, ~0u, 0);
        node(seed, nchildren, p[1]);
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) { printf("child %d never got ready\n", pid); _exit(2); }
    close(p[0]);
    return pid;
}

/* The checks every process makes after SIGUSR1; returns how many failed. */
static int check(uint32_t seed, pid_t pid, pid_t ppid, const char *who) {
    int bad = 0;
    if (getpid() != pid) { printf("%s: pid %d, was %d\n", who, getpid(), pid); bad++; }
    if (ppid && getppid() != ppid) { printf("%s %d: parent %d, was %d\n", who, pid, getppid(), ppid); bad++; }
    for (size_t i = 0; i < WORDS; i++)
        if (mem[i] != word(seed, i)) { printf("%s %d: word %zu differs\n", who, pid, i); bad++; break; }
    for (int i = 0; i < nkids; i++) {
        kill(kids[i], SIGUSR1);
        int st;
        if (waitpid(kids[i], &st, 0) != kids[i]) { printf("%s %d: waitpid %d failed\n", who, pid, kids[i]); bad++; }
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { printf("%s %d: child %d status %#x\n", who, pid, kids[i], st); bad++; }
    }
    return bad;
}

static void node(uint32_t seed, int nchildren, int up) {
    pid_t pid = getpid(), ppid = getppid();
    nkids = 0;
    fill(seed);
    for (int i = 0; i < nchildren; i++) kids[nkids++] = spawn(seed * 10 + (uint32_t)i, 0);
    if (write(up, "x", 1) != 1) _exit(2);
    close(up);
    probe_wait();
    _exit(check(seed, pid, ppid, "child") ? 1 : 0);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pid_t pid = getpid();
    fill(1);
    kids[0] = spawn(2, 1);
    kids[1] = spawn(3, 0);
    nkids = 2;
    probe_ready();
    probe_wait();
    if (check(1, pid, 0, "root")) probe_bad("the tree differs");
    return probe_end();
}
