/* Probe: eventfds: a counter (non-blocking, a value over 32 bits), a
 * semaphore one (EFD_SEMAPHORE: each read takes 1), and one at zero.
 * After the restore the counts and modes are as they were. */
#include "probe.h"
#include <stdint.h>
#include <sys/eventfd.h>

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int counter = eventfd(0, EFD_NONBLOCK);
    uint64_t big = 0x123456789aULL;
    if (write(counter, &big, 8) != 8) { perror("write"); return 2; }
    int sem = eventfd(3, EFD_SEMAPHORE | EFD_CLOEXEC);
    int zero = eventfd(0, EFD_NONBLOCK);
    probe_ready();
    probe_wait();
    uint64_t v = 0;
    if (read(counter, &v, 8) != 8 || v != big) probe_bad("counter %llx, want %llx", (unsigned long long)v, (unsigned long long)big);
    if (!(fcntl(counter, F_GETFL) & O_NONBLOCK)) probe_bad("counter lost O_NONBLOCK");
    if (fcntl(sem, F_GETFL) & O_NONBLOCK) probe_bad("semaphore gained O_NONBLOCK");
    fcntl(sem, F_SETFL, O_NONBLOCK); /* a lost count must not hang the probe */
    for (int i = 0; i < 3; i++)
        if (read(sem, &v, 8) != 8 || v != 1) probe_bad("semaphore read %d gave %llu", i, (unsigned long long)v);
    if (read(sem, &v, 8) != -1) probe_bad("semaphore count above 3");
    if (fcntl(sem, F_GETFD) != FD_CLOEXEC) probe_bad("semaphore lost FD_CLOEXEC");
    if (read(zero, &v, 8) != -1) probe_bad("the zero eventfd has a count");
    return probe_end();
}
