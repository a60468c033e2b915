/* UDP sockets: a server bound to 127.0.0.1 (a free port), a client
 * connected to it (bound implicitly to a port of its own), and an unbound
 * one. After the restore each has its address, the client its peer, and a
 * datagram goes each way between them. */
#include "probe.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

static int same(struct sockaddr_in *x, struct sockaddr_in *y) {
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static int got(int s, const char *want, struct sockaddr_in *from) {
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return 0;
    char buf[16];
    socklen_t len = sizeof *from;
    ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)from, &len);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, n) == 0;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    int srv = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET}, ca = {0}, any = {0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(srv, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(srv, (struct sockaddr *)&a, &len) != 0)
        return 2;
    int cli = socket(AF_INET, SOCK_DGRAM, 0);
    len = sizeof ca;
    if (connect(cli, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(cli, (struct sockaddr *)&ca, &len) != 0)
        return 3;
    int unbound = socket(AF_INET, SOCK_DGRAM, 0);
    probe_ready();
    probe_wait();

    struct sockaddr_in now = {0};
    len = sizeof now;
    if (getsockname(srv, (struct sockaddr *)&now, &len) != 0 || !same(&now, &a))
        probe_bad("server bound to port %d, was %d", ntohs(now.sin_port), ntohs(a.sin_port));
    len = sizeof now;
    if (getsockname(cli, (struct sockaddr *)&now, &len) != 0 || !same(&now, &ca))
        probe_bad("client bound to port %d, was %d", ntohs(now.sin_port), ntohs(ca.sin_port));
    len = sizeof now;
    if (getpeername(cli, (struct sockaddr *)&now, &len) != 0 || !same(&now, &a))
        probe_bad("client not connected to the server");
    len = sizeof now;
    if (getsockname(unbound, (struct sockaddr *)&now, &len) != 0 || now.sin_port != 0)
        probe_bad("the unbound socket has port %d", ntohs(now.sin_port));
    struct sockaddr_in from = {0};
    if (send(cli, "there", 5, 0) != 5 || !got(srv, "there", &from))
        probe_bad("no datagram from the client");
    else if (!same(&from, &ca))
        probe_bad("the datagram came from port %d", ntohs(from.sin_port));
    if (sendto(srv, "back", 4, 0, (struct sockaddr *)&ca, sizeof ca) != 4 || !got(cli, "back", &from))
        probe_bad("no datagram back to the client");
    (void)any;
    return probe_end();
}
