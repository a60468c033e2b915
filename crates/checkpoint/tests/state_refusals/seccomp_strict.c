/* Seccomp strict mode, spinning (no syscall but read, write, exit and
 * sigreturn is allowed): a dump must refuse it. */
#include "../probes/probe.h"
#include <linux/seccomp.h>
#include <sys/prctl.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    probe_ready();
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
    for (volatile unsigned long n = 0;; n++) {}
}
