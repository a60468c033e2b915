/* Not in the probe set: the programs of tests/fd_refusals.rs, one per
 * mode (argv[2]), each holding one thing a dump must refuse by name, or
 * (mode "tty") a shell job: fds 0-2 on a terminal that is its controlling
 * one, checked after SIGUSR1 like a probe. */
#include "probe.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[2];
    if (strcmp(mode, "tty") == 0) {
        /* Before probe_start, which keeps fds 0-2: take the terminal. */
        setsid();
        if (ioctl(0, TIOCSCTTY, 0)) { perror("TIOCSCTTY"); return 2; }
    }
    probe_start(argc, argv);
    if (strcmp(mode, "tcp") == 0 || strcmp(mode, "tcp_listen") == 0) {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al)) return 2;
        if (strcmp(mode, "tcp") == 0) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(c, (struct sockaddr *)&a, sizeof a)) return 2;
            int s = accept(l, NULL, NULL);
            (void)s;
            close(l);
        } else {
            /* A connection waits in the listener's accept queue. */
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(c, (struct sockaddr *)&a, sizeof a)) return 2;
        }
    } else if (strcmp(mode, "flock") == 0) {
        int f = open("locked", O_CREAT | O_RDWR, 0600);
        if (flock(f, LOCK_EX)) return 2;
    } else if (strcmp(mode, "posix_lock") == 0) {
        int f = open("locked", O_CREAT | O_RDWR, 0600);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
        if (fcntl(f, F_SETLK, &fl)) return 2;
    } else if (strcmp(mode, "ofd_lock") == 0) {
        int f = open("locked", O_CREAT | O_RDWR, 0600);
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 0};
        if (fcntl(f, F_OFD_SETLK, &fl)) return 2;
    } else if (strcmp(mode, "lease") == 0) {
        int f = open("leased", O_CREAT | O_RDONLY, 0600);
        if (fcntl(f, F_SETLEASE, F_RDLCK)) { perror("F_SETLEASE"); return 2; }
    } else if (strcmp(mode, "mapped_flock") == 0) {
        /* The lock belongs to the open file description, which the
         * mapping keeps after the fd is closed: no fd shows it. */
        int f = open("locked", O_CREAT | O_RDWR, 0600);
        if (ftruncate(f, 4096) || flock(f, LOCK_EX)) return 2;
        if (mmap(NULL, 4096, PROT_READ, MAP_SHARED, f, 0) == MAP_FAILED) return 2;
        close(f);
    } else if (strcmp(mode, "passcred") == 0) {
        int sv[2], on = 1;
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on)) return 2;
    } else if (strcmp(mode, "scm_rights") == 0) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 2;
        char c = 'x', ctl[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {&c, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        int one = 1;
        memcpy(CMSG_DATA(h), &one, sizeof one);
        if (sendmsg(sv[0], &m, 0) != 1) return 2;
    } else if (strcmp(mode, "relative_bind") == 0) {
        int s = socket(AF_UNIX, SOCK_DGRAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "relative.sock"};
        unlink(a.sun_path);
        if (bind(s, (struct sockaddr *)&a, sizeof a)) return 2;
    } else if (strcmp(mode, "pidfd") == 0) {
        if (syscall(SYS_pidfd_open, getpid(), 0) < 0) return 2;
    } else if (strcmp(mode, "ext_unix") == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[3]);
        if (connect(c, (struct sockaddr *)&a, sizeof a)) return 2;
    }
    probe_ready();
    probe_wait();
    if (strcmp(mode, "tty") == 0) {
        for (int fd = 0; fd < 3; fd++)
            if (!isatty(fd)) probe_bad("fd %d is not a terminal", fd);
    }
    return probe_end();
}
