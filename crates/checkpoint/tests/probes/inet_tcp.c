/* A TCP listener on 127.0.0.1 (a free port the kernel picks), with
 * SO_REUSEADDR (a restore right after the original's connection closed
 * binds the port again), TCP_NODELAY, SO_KEEPALIVE and O_NONBLOCK. After
 * the restore it is listening on the same address with the same options,
 * and a child connects and exchanges data with it. */
#include "probe.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int opt(int s, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(s, level, name, &v, &len) != 0) return -1;
    return v;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(l, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 7) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) != 0) {
        perror("listen");
        return 2;
    }
    probe_ready();
    probe_wait();

    struct sockaddr_in now = {0};
    len = sizeof now;
    if (getsockname(l, (struct sockaddr *)&now, &len) != 0 || now.sin_port != a.sin_port ||
        now.sin_addr.s_addr != a.sin_addr.s_addr)
        probe_bad("bound to port %d, was %d", ntohs(now.sin_port), ntohs(a.sin_port));
    if (opt(l, SOL_SOCKET, SO_ACCEPTCONN) != 1) probe_bad("not listening");
    if (opt(l, SOL_SOCKET, SO_REUSEADDR) != 1) probe_bad("SO_REUSEADDR lost");
    if (opt(l, IPPROTO_TCP, TCP_NODELAY) != 1) probe_bad("TCP_NODELAY lost");
    if (opt(l, SOL_SOCKET, SO_KEEPALIVE) != 1) probe_bad("SO_KEEPALIVE lost");
    if (opt(l, SOL_SOCKET, SO_REUSEPORT) != 0) probe_bad("SO_REUSEPORT set");
    if (!(fcntl(l, F_GETFL) & O_NONBLOCK)) probe_bad("O_NONBLOCK lost");
    pid_t child = fork();
    if (child == 0) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        char buf[8] = {0};
        if (connect(c, (struct sockaddr *)&a, sizeof a) != 0 || send(c, "ping", 4, 0) != 4 ||
            recv(c, buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "pong", 4) != 0)
            _exit(1);
        _exit(0);
    }
    struct pollfd p = {.fd = l, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) {
        probe_bad("no connection came");
    } else {
        int s = accept(l, NULL, NULL);
        char buf[4];
        if (s < 0 || recv(s, buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "ping", 4) != 0)
            probe_bad("no ping on the accepted connection");
        else if (send(s, "pong", 4, 0) != 4)
            probe_bad("pong not sent");
        int st;
        waitpid(child, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) probe_bad("the client failed");
        close(s);
    }
    return probe_end();
}
