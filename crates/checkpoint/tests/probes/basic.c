/* Probe: the simplest process — its pid, a loop that keeps counting, a
 * heap block with a pattern, and its cwd. */
#include "probe.h"
#include <stdint.h>
#include <string.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    pid_t pid = getpid();
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) { perror("getcwd"); return 1; }
    size_t n = 1 << 20;
    uint32_t *heap = malloc(n * sizeof *heap);
    for (size_t i = 0; i < n; i++) heap[i] = (uint32_t)(i * 2654435761u);
    /* Counts from a known value: a dump may stop the process before the
     * loop runs once, and the restored copy may get SIGUSR1 at once. */
    volatile uint64_t count = 1000;
    probe_ready();
    while (!probe_go) count++;
    if (getpid() != pid) probe_bad("pid %d, was %d", getpid(), pid);
    char now[4096];
    if (!getcwd(now, sizeof now) || strcmp(now, cwd) != 0) probe_bad("cwd %s, was %s", now, cwd);
    for (size_t i = 0; i < n; i++)
        if (heap[i] != (uint32_t)(i * 2654435761u)) { probe_bad("heap word %zu differs", i); break; }
    if (count < 1000) probe_bad("the counter went back to %lu", (unsigned long)count);
    return probe_end();
}
