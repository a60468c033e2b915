/* A POSIX timer on CLOCK_PROCESS_CPUTIME_ID: a dump must refuse it. */
#include "../probes/probe.h"

int main(int argc, char **argv) {
    probe_start(argc, argv);
    timer_t t;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_NONE;
    if (timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &t)) { perror("timer_create"); return 2; }
    probe_ready();
    probe_wait();
    return probe_end();
}
