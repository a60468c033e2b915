/* A TCP listener on [::1] (a free port the kernel picks) with IPV6_V6ONLY,
 * SO_REUSEPORT and SO_REUSEADDR, blocking. After the restore it listens
 * on the same address with the same options, and a child connects to it
 * and exchanges data. */
#include "probe.h"
#include <arpa/inet.h>
#include <netinet/in.h>
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
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 3) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) != 0) {
        perror("listen");
        return 2;
    }
    probe_ready();
    probe_wait();

    struct sockaddr_in6 now = {0};
    len = sizeof now;
    if (getsockname(l, (struct sockaddr *)&now, &len) != 0 || now.sin6_port != a.sin6_port ||
        memcmp(&now.sin6_addr, &a.sin6_addr, sizeof a.sin6_addr) != 0)
        probe_bad("bound to port %d, was %d", ntohs(now.sin6_port), ntohs(a.sin6_port));
    if (opt(l, SOL_SOCKET, SO_ACCEPTCONN) != 1) probe_bad("not listening");
    if (opt(l, IPPROTO_IPV6, IPV6_V6ONLY) != 1) probe_bad("IPV6_V6ONLY lost");
    if (opt(l, SOL_SOCKET, SO_REUSEPORT) != 1) probe_bad("SO_REUSEPORT lost");
    if (opt(l, SOL_SOCKET, SO_REUSEADDR) != 1) probe_bad("SO_REUSEADDR lost");
    if (fcntl(l, F_GETFL) & O_NONBLOCK) probe_bad("O_NONBLOCK set");
    pid_t child = fork();
    if (child == 0) {
        int c = socket(AF_INET6, SOCK_STREAM, 0);
        char buf[8] = {0};
        if (connect(c, (struct sockaddr *)&a, sizeof a) != 0 || send(c, "ping", 4, 0) != 4 ||
            recv(c, buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "pong", 4) != 0)
            _exit(1);
        _exit(0);
    }
    struct pollfd p = {.fd = l, .events = POLLIN};
    int s = poll(&p, 1, 5000) == 1 ? accept(l, NULL, NULL) : -1;
    char buf[4];
    if (s < 0 || recv(s, buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "ping", 4) != 0)
        probe_bad("no ping on the accepted connection");
    else if (send(s, "pong", 4, 0) != 4)
        probe_bad("pong not sent");
    int st;
    waitpid(child, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) probe_bad("the client failed");
    close(s);
    return probe_end();
}
