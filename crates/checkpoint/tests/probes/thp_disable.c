/* Probe: PR_SET_THP_DISABLE. */
#include "probe.h"
#include <sys/prctl.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) { perror("PR_SET_THP_DISABLE"); return 2; }
    probe_ready();
    probe_wait();
    int now = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
    if (now != 1) probe_bad("THP disable %d, was 1", now);
    return probe_end();
}
