/* Probe: datagram sockets connected one way, as a client to a server: a
 * server bound to a path with two datagrams queued (one from its client,
 * one from an unbound sender), an unbound client connected to it, and a
 * bound client connected to it. After the restore the server has both
 * messages, in order, and the clients still send to it and name it as
 * their peer. */
#include "probe.h"
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct sockaddr_un at(const char *name) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char cwd[80];
    if (!getcwd(cwd, sizeof cwd)) exit(2);
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", cwd, name);
    return a;
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    struct sockaddr_un sa = at("server.sock"), ba = at("client.sock");
    unlink(sa.sun_path);
    unlink(ba.sun_path);
    int server = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(server, (struct sockaddr *)&sa, sizeof sa)) { perror("bind"); return 2; }
    int client = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (connect(client, (struct sockaddr *)&sa, sizeof sa)) { perror("connect"); return 2; }
    int named = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(named, (struct sockaddr *)&ba, sizeof ba) || connect(named, (struct sockaddr *)&sa, sizeof sa)) { perror("named client"); return 2; }
    if (send(client, "first", 5, 0) != 5) { perror("send"); return 2; }
    int tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (sendto(tx, "second", 6, 0, (struct sockaddr *)&sa, sizeof sa) != 6) { perror("sendto"); return 2; }
    close(tx);
    probe_ready();
    probe_wait();
    char buf[32] = {0};
    if (recv(server, buf, sizeof buf, MSG_DONTWAIT) != 5 || memcmp(buf, "first", 5)) probe_bad("first datagram: %s", buf);
    memset(buf, 0, sizeof buf);
    if (recv(server, buf, sizeof buf, MSG_DONTWAIT) != 6 || memcmp(buf, "second", 6)) probe_bad("second datagram: %s", buf);
    if (recv(server, buf, sizeof buf, MSG_DONTWAIT) != -1) probe_bad("more datagrams than queued");
    int fds[2] = {client, named};
    for (int i = 0; i < 2; i++) {
        struct sockaddr_un p = {0};
        socklen_t pl = sizeof p;
        if (getpeername(fds[i], (struct sockaddr *)&p, &pl) || strcmp(p.sun_path, sa.sun_path)) probe_bad("client %d: peer %s", i, p.sun_path);
        if (send(fds[i], "again", 5, 0) != 5) probe_bad("client %d cannot send", i);
        struct sockaddr_un from = {0};
        socklen_t fl = sizeof from;
        memset(buf, 0, sizeof buf);
        if (recvfrom(server, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl) != 5) probe_bad("client %d: nothing arrived", i);
        if (i == 1 && strcmp(from.sun_path, ba.sun_path)) probe_bad("named client sends as %s", from.sun_path);
    }
    struct sockaddr_un me = {0};
    socklen_t ml = sizeof me;
    getsockname(named, (struct sockaddr *)&me, &ml);
    if (strcmp(me.sun_path, ba.sun_path)) probe_bad("named client bound to %s", me.sun_path);
    return probe_end();
}
