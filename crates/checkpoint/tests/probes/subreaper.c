/* Probe: the child-subreaper flag. */
#include "probe.h"
#include <sys/prctl.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    probe_ready();
    probe_wait();
    int on = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &on);
    if (on != 1) probe_bad("child subreaper %d", on);
    return probe_end();
}
