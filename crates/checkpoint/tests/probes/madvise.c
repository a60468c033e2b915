/* Probe: madvise flags of mappings. Six 4 MiB anonymous mappings get
 * MADV_DONTFORK, DONTDUMP, WIPEONFORK, HUGEPAGE, NOHUGEPAGE, MERGEABLE
 * (one each, with a byte written); after SIGUSR1 the VmFlags line of each
 * in /proc/self/smaps is the same as before, and the data too. */
#include "probe.h"
#include <string.h>
#include <sys/mman.h>

#define N 6
static char *maps[N];
static const int advice[N] = {MADV_DONTFORK, MADV_DONTDUMP, MADV_WIPEONFORK,
                              MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_MERGEABLE};

static void flags(char out[N][256]) {
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
        } else if (cur >= 0 && !strncmp(line, "VmFlags:", 8)) {
            strncpy(out[cur], line, 255);
        }
    }
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    for (int i = 0; i < N; i++) {
        /* A PROT_NONE page between mappings keeps them apart. */
        char *m = mmap(NULL, (4 << 20) + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        maps[i] = m + 4096;
        mprotect(maps[i], 4 << 20, PROT_READ | PROT_WRITE);
        if (madvise(maps[i], 4 << 20, advice[i])) { perror("madvise"); return 2; }
        maps[i][0] = (char)(i + 1);
    }
    char before[N][256], after[N][256];
    flags(before);
    for (int i = 0; i < N; i++)
        if (!before[i][0]) { probe_bad("mapping %d not in smaps", i); return probe_end(); }
    probe_ready();
    probe_wait();
    flags(after);
    for (int i = 0; i < N; i++) {
        if (strcmp(before[i], after[i])) probe_bad("mapping %d: %swas %s", i, after[i], before[i]);
        if (maps[i][0] != (char)(i + 1)) probe_bad("mapping %d lost its data", i);
    }
    return probe_end();
}
