/* Probe: the umask (027) and a file created with it. */
#include "probe.h"
#include <sys/stat.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    umask(027);
    probe_ready();
    probe_wait();
    mode_t now = umask(0);
    if (now != 027) probe_bad("umask %03o, was 027", now);
    return probe_end();
}
