/* Probe: unix socket pairs, stream, dgram and seqpacket, with data queued
 * both ways (several messages on the message kinds, their boundaries
 * kept). After the restore each end reads exactly what was queued to it,
 * and the two ends still talk to each other. */
#include "probe.h"
#include <string.h>
#include <sys/socket.h>

static void queue(int fd, const char *tag, int n) {
    for (int i = 0; i < n; i++) {
        char m[64];
        int len = snprintf(m, sizeof m, "%s message %d%*s", tag, i, i * 3, "");
        if (send(fd, m, (size_t)len, 0) != len) { perror("send"); exit(2); }
    }
}

static void expect(int fd, const char *tag, int n, int stream, const char *name) {
    char want[4096] = {0}, got[4096] = {0};
    size_t wl = 0;
    for (int i = 0; i < n; i++) {
        char m[64];
        int len = snprintf(m, sizeof m, "%s message %d%*s", tag, i, i * 3, "");
        if (!stream) {
            ssize_t k = recv(fd, got, sizeof got, MSG_DONTWAIT);
            if (k != len || memcmp(got, m, (size_t)len) != 0) { probe_bad("%s: message %d: got %zd bytes", name, i, k); return; }
        }
        memcpy(want + wl, m, (size_t)len);
        wl += (size_t)len;
    }
    if (stream) {
        ssize_t k = recv(fd, got, sizeof got, MSG_DONTWAIT);
        if (k != (ssize_t)wl || memcmp(got, want, wl) != 0) probe_bad("%s: stream: got %zd bytes, want %zu", name, k, wl);
    }
    if (recv(fd, got, sizeof got, MSG_DONTWAIT) != -1) probe_bad("%s: more data than queued", name);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    const char *names[3] = {"stream", "dgram", "seqpacket"};
    int sv[3][2];
    for (int t = 0; t < 3; t++) {
        if (socketpair(AF_UNIX, types[t], 0, sv[t])) { perror("socketpair"); return 2; }
        queue(sv[t][0], "to b", 3 + t);
        queue(sv[t][1], "to a", 2);
    }
    int empty[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, empty);
    probe_ready();
    probe_wait();
    for (int t = 0; t < 3; t++) {
        int type = 0;
        socklen_t l = sizeof type;
        getsockopt(sv[t][0], SOL_SOCKET, SO_TYPE, &type, &l);
        if (type != types[t]) probe_bad("%s: type %d", names[t], type);
        expect(sv[t][1], "to b", 3 + t, t == 0, names[t]);
        expect(sv[t][0], "to a", 2, t == 0, names[t]);
        char c = 0;
        if (send(sv[t][0], "z", 1, 0) != 1 || recv(sv[t][1], &c, 1, 0) != 1 || c != 'z')
            probe_bad("%s: the ends are no longer connected", names[t]);
    }
    if (!(fcntl(empty[0], F_GETFL) & O_NONBLOCK)) probe_bad("empty pair lost O_NONBLOCK");
    char c;
    if (send(empty[1], "q", 1, 0) != 1 || recv(empty[0], &c, 1, 0) != 1) probe_bad("empty pair not connected");
    return probe_end();
}
