/* Probe: locked memory. One 1 MiB mapping is mlock()ed (VmFlags `lo`,
 * every page resident), another mlock2(MLOCK_ONFAULT)ed (`lo lf`), with
 * data in both; after SIGUSR1 their VmFlags lines and the Locked: counts
 * of smaps are as before, and the data too. */
#include "probe.h"
#include <string.h>
#include <sys/mman.h>

#define N 2
#define LEN (1 << 20)
static char *maps[N];

static void flags(char out[N][512]) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int cur = -1;
    for (int i = 0; i < N; i++) out[i][0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ' ') == line + strcspn(line, " ")) {
            cur = -1;
            for (int i = 0; i < N; i++)
                if (lo == (unsigned long)maps[i]) cur = i;
        } else if (cur >= 0 && (!strncmp(line, "VmFlags:", 8) || !strncmp(line, "Locked:", 7))) {
            strncat(out[cur], line, 511 - strlen(out[cur]));
        }
    }
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    for (int i = 0; i < N; i++) {
        char *m = mmap(NULL, LEN + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        maps[i] = m + 4096;
        mprotect(maps[i], LEN, PROT_READ | PROT_WRITE);
    }
    if (mlock(maps[0], LEN) || syscall(SYS_mlock2, maps[1], LEN, MLOCK_ONFAULT)) { perror("mlock"); return 2; }
    maps[0][100] = 1;
    maps[1][0] = 2; /* one page faulted in, the rest not */
    char before[N][512], after[N][512];
    flags(before);
    probe_ready();
    probe_wait();
    flags(after);
    for (int i = 0; i < N; i++)
        if (strcmp(before[i], after[i])) probe_bad("mapping %d:\n%swas\n%s", i, after[i], before[i]);
    if (maps[0][100] != 1 || maps[1][0] != 2) probe_bad("data lost");
    return probe_end();
}
