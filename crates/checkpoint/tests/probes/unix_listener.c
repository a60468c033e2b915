/* Probe: a unix stream socket listening on a path, with a connection it
 * accepted (data queued both ways, named as the listener) and two
 * connections waiting in its backlog (their clients are ours), and a datagram socket
 * bound to a path with a message queued from an unbound sender. After the
 * restore the listener has its name and accepts both connections, each
 * talking to its client, and the datagram is there. */
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
    struct sockaddr_un la = at("listener.sock"), da = at("dgram.sock");
    unlink(la.sun_path);
    unlink(da.sun_path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&la, sizeof la) || listen(l, 7)) { perror("listen"); return 2; }
    /* A third connection, accepted, with data queued both ways. */
    int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c3, (struct sockaddr *)&la, sizeof la)) { perror("connect"); return 2; }
    int a3 = accept(l, NULL, NULL);
    if (a3 < 0 || send(c3, "to server", 9, 0) != 9 || send(a3, "to client", 9, 0) != 9) { perror("accepted"); return 2; }
    /* Then two that wait in the backlog. */
    int c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c1, (struct sockaddr *)&la, sizeof la) || connect(c2, (struct sockaddr *)&la, sizeof la)) { perror("connect"); return 2; }
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(d, (struct sockaddr *)&da, sizeof da)) { perror("bind dgram"); return 2; }
    int tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (sendto(tx, "datagram", 8, 0, (struct sockaddr *)&da, sizeof da) != 8) { perror("sendto"); return 2; }
    close(tx);
    probe_ready();
    probe_wait();
    struct sockaddr_un got = {0};
    socklen_t gl = sizeof got;
    getsockname(l, (struct sockaddr *)&got, &gl);
    if (strcmp(got.sun_path, la.sun_path) != 0) probe_bad("listener bound to %s", got.sun_path);
    int acc = 0;
    socklen_t al = sizeof acc;
    getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al);
    if (!acc) probe_bad("the socket no longer listens");
    char r3[16] = {0};
    if (recv(a3, r3, sizeof r3, MSG_DONTWAIT) != 9 || memcmp(r3, "to server", 9) != 0) probe_bad("accepted end has %s", r3);
    memset(r3, 0, sizeof r3);
    if (recv(c3, r3, sizeof r3, MSG_DONTWAIT) != 9 || memcmp(r3, "to client", 9) != 0) probe_bad("its client has %s", r3);
    gl = sizeof got;
    memset(&got, 0, sizeof got);
    getsockname(a3, (struct sockaddr *)&got, &gl);
    if (strcmp(got.sun_path, la.sun_path) != 0) probe_bad("accepted end named %s", got.sun_path);
    gl = sizeof got;
    memset(&got, 0, sizeof got);
    getpeername(c3, (struct sockaddr *)&got, &gl);
    if (strcmp(got.sun_path, la.sun_path) != 0) probe_bad("its client's peer named %s", got.sun_path);
    if (fcntl(l, F_GETFL) & O_NONBLOCK) probe_bad("the listener gained O_NONBLOCK");
    fcntl(l, F_SETFL, O_NONBLOCK); /* a lost backlog must not hang the probe */
    /* The backlog keeps its order: the first accepted is c1's. */
    send(c1, "from c1", 7, MSG_DONTWAIT);
    send(c2, "from c2", 7, MSG_DONTWAIT);
    const char *want[2] = {"from c1", "from c2"};
    int clients[2] = {c1, c2};
    for (int i = 0; i < 2; i++) {
        int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
        if (s < 0) { probe_bad("connection %d not in the backlog", i); continue; }
        char r[16] = {0};
        if (recv(s, r, sizeof r, MSG_DONTWAIT) != 7 || strcmp(r, want[i]) != 0) probe_bad("connection %d carries %s", i, r);
        if (send(s, "back", 4, 0) != 4 || recv(clients[i], r, sizeof r, MSG_DONTWAIT) != 4) probe_bad("connection %d one-way", i);
        close(s);
    }
    if (accept4(l, NULL, NULL, 0) >= 0) probe_bad("more connections than queued");
    gl = sizeof got;
    getsockname(d, (struct sockaddr *)&got, &gl);
    if (strcmp(got.sun_path, da.sun_path) != 0) probe_bad("dgram socket bound to %s", got.sun_path);
    char buf[32] = {0};
    if (recv(d, buf, sizeof buf, MSG_DONTWAIT) != 8 || memcmp(buf, "datagram", 8) != 0) probe_bad("queued datagram lost: %s", buf);
    return probe_end();
}
