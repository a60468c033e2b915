/* Probe: the personality (ADDR_NO_RANDOMIZE | UNAME26 | SHORT_INODE),
 * and that uname shows UNAME26's 2.6 release. */
#include "probe.h"
#include <string.h>
#include <sys/personality.h>
#include <sys/utsname.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int want = ADDR_NO_RANDOMIZE | UNAME26 | SHORT_INODE;
    personality(want);
    probe_ready();
    probe_wait();
    int now = personality(0xffffffff);
    if (now != want) probe_bad("personality %#x, was %#x", now, want);
    struct utsname u;
    uname(&u);
    if (strncmp(u.release, "2.6", 3)) probe_bad("uname release %s under UNAME26", u.release);
    return probe_end();
}
