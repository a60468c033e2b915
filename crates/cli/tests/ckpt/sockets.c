/* Holds unix sockets and an inotify watch across a checkpoint, then checks
 * them itself. Made before counting: a socketpair with "pair" queued on
 * one end; a stream listener on /tmp/sock with a connected, accepted
 * client whose "ping" the server end has not read; a datagram socket bound
 * to the abstract name "corral-ckpt-abstract" holding the datagram "dgram";
 * an inotify watch for IN_CREATE on /tmp. Then it counts into argv[1]
 * (as counter.c) until /tmp/check appears (made from outside), then checks
 * everything: the queued data reads back; a new client connects to
 * /tmp/sock and to the abstract name (in the container's mount and network
 * namespaces) and talks to its accepted end; the inotify watch reports the
 * creation of "check". It writes "ok" or the failed step to /tmp/result.
 * With a second argument "tcp", it also listens on 127.0.0.1:4321 (in the
 * container's network namespace) and checks that a new client of that
 * port is accepted; with "tcpq", a client of its own waits in that
 * listener's accept queue (a checkpoint refuses it). A new network
 * namespace has loopback down: in those modes it waits for /tmp/go, made
 * once the test brought it up. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char abstract_name[] = "\0corral-ckpt-abstract";

static int result(const char *what) {
    int r = open("/tmp/result.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (r < 0) return 20;
    char buf[256];
    int len = snprintf(buf, sizeof buf, "%s (errno %d)\n", what, errno);
    if (strcmp(what, "ok") == 0) len = snprintf(buf, sizeof buf, "ok\n");
    if (write(r, buf, len) != len) return 21;
    close(r);
    rename("/tmp/result.tmp", "/tmp/result");
    return strcmp(what, "ok") == 0 ? 0 : 1;
}

/* Reads exactly `want` within 2 s. */
static int read_is(int fd, const char *want) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1) return 0;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, n) == 0;
}

static int tcp = -1;

static int check(int pair, int server, int listener, int dgram, int ino) {
    if (!read_is(pair, "pair")) return result("socketpair data");
    if (!read_is(server, "ping")) return result("accepted connection data");
    if (!read_is(dgram, "dgram")) return result("abstract datagram");
    /* A new client of /tmp/sock, as the container sees it. */
    struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "/tmp/sock"};
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a) != 0) return result("connect /tmp/sock");
    int s = accept(listener, NULL, NULL);
    if (s < 0 || send(c, "new", 3, 0) != 3 || !read_is(s, "new")) return result("new connection");
    /* The abstract name, in the container's network namespace. */
    struct sockaddr_un b = {.sun_family = AF_UNIX};
    memcpy(b.sun_path, abstract_name, sizeof abstract_name - 1);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t blen = offsetof(struct sockaddr_un, sun_path) + sizeof abstract_name - 1;
    if (sendto(d, "again", 5, 0, (struct sockaddr *)&b, blen) != 5) return result("sendto abstract");
    if (!read_is(dgram, "again")) return result("abstract datagram after restore");
    /* The inotify watch on /tmp saw /tmp/check made. */
    struct pollfd p = {.fd = ino, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1) return result("inotify event");
    char ev[4096];
    ssize_t n = read(ino, ev, sizeof ev);
    int seen = 0;
    for (ssize_t at = 0; at + (ssize_t)sizeof(struct inotify_event) <= n;) {
        struct inotify_event *e = (struct inotify_event *)(ev + at);
        if (e->len && strcmp(e->name, "check") == 0 && (e->mask & IN_CREATE)) seen = 1;
        at += sizeof *e + e->len;
    }
    if (!seen) return result("inotify IN_CREATE of check");
    if (tcp >= 0) {
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(4321)};
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int t = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(t, (struct sockaddr *)&in, sizeof in) != 0) return result("connect 127.0.0.1:4321");
        int a = accept(tcp, NULL, NULL);
        if (a < 0 || send(t, "tcp", 3, 0) != 3 || !read_is(a, "tcp")) return result("tcp connection");
    }
    return result("ok");
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 3;
    if (argc > 2 && strncmp(argv[2], "tcp", 3) == 0) {
        struct stat go;
        struct timespec ms = {0, 1000 * 1000};
        while (stat("/tmp/go", &go) != 0) nanosleep(&ms, NULL);
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(4321)};
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        tcp = socket(AF_INET, SOCK_STREAM, 0);
        if (tcp < 0 || bind(tcp, (struct sockaddr *)&in, sizeof in) != 0 || listen(tcp, 4) != 0)
            return 12;
        if (strcmp(argv[2], "tcpq") == 0) {
            int q = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(q, (struct sockaddr *)&in, sizeof in) != 0) return 13;
        }
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || send(sv[1], "pair", 4, 0) != 4) return 4;
    struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "/tmp/sock"};
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    unlink(a.sun_path);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0) return 5;
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a) != 0) return 6;
    int server = accept(l, NULL, NULL);
    if (server < 0 || send(c, "ping", 4, 0) != 4) return 7;
    struct sockaddr_un b = {.sun_family = AF_UNIX};
    memcpy(b.sun_path, abstract_name, sizeof abstract_name - 1);
    socklen_t blen = offsetof(struct sockaddr_un, sun_path) + sizeof abstract_name - 1;
    int dg = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (dg < 0 || bind(dg, (struct sockaddr *)&b, blen) != 0) return 8;
    int tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (sendto(tx, "dgram", 5, 0, (struct sockaddr *)&b, blen) != 5) return 9;
    close(tx);
    int ino = inotify_init1(0);
    if (ino < 0 || inotify_add_watch(ino, "/tmp", IN_CREATE) < 0) return 10;
    unsigned long n = 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (;;) {
        struct stat st;
        if (stat("/tmp/check", &st) == 0) return check(sv[0], server, l, dg, ino);
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lu\n", ++n);
        memset(buf + len, ' ', sizeof buf - len - 1);
        buf[sizeof buf - 1] = '\n';
        if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) return 11;
        nanosleep(&ts, NULL);
    }
}
