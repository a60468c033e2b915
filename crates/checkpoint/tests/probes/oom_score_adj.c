/* Probe: oom_score_adj (raised to 500: lowering needs CAP_SYS_RESOURCE). */
#include "probe.h"

static int adj(void) {
    FILE *f = fopen("/proc/self/oom_score_adj", "r");
    int v = -10000;
    if (f) { if (fscanf(f, "%d", &v) != 1) v = -10000; fclose(f); }
    return v;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    FILE *f = fopen("/proc/self/oom_score_adj", "w");
    if (!f || fprintf(f, "500\n") < 0 || fclose(f)) { perror("oom_score_adj"); return 2; }
    if (adj() != 500) probe_bad("set-up failed");
    probe_ready();
    probe_wait();
    if (adj() != 500) probe_bad("oom_score_adj %d, was 500", adj());
    return probe_end();
}
