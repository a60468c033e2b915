/* Probe: credentials. As root it drops CAP_SYS_BOOT from the bounding set,
 * keeps its capabilities over the uid change (PR_SET_KEEPCAPS), sets
 * groups 2001 2002, gids 1001/1002/1003 and uids 1001/1002/1003, the fs
 * ids to 1003, then keeps CAP_NET_BIND_SERVICE and CAP_KILL permitted and
 * CAP_NET_BIND_SERVICE effective, inheritable and ambient. After SIGUSR1
 * the ids (fs ids too), groups, the five capability sets and securebits
 * read back the same. */
#include "probe.h"
#include <grp.h>
#include <libgen.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>

struct creds {
    uid_t r, e, s; gid_t gr, ge, gs;
    int ngroups; gid_t groups[16];
    struct __user_cap_data_struct caps[2];
    int bounding_boot, bounding_kill, ambient, securebits;
    char status[2048];
};

static void read_creds(struct creds *c) {
    memset(c, 0, sizeof *c);
    getresuid(&c->r, &c->e, &c->s);
    getresgid(&c->gr, &c->ge, &c->gs);
    c->ngroups = getgroups(16, c->groups);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    syscall(SYS_capget, &h, c->caps);
    c->bounding_boot = prctl(PR_CAPBSET_READ, CAP_SYS_BOOT);
    c->bounding_kill = prctl(PR_CAPBSET_READ, CAP_KILL);
    c->ambient = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0);
    c->securebits = prctl(PR_GET_SECUREBITS);
    /* Uid/Gid lines include the fs ids; Cap* lines every set. */
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid", 3) || !strncmp(line, "Gid", 3) || !strncmp(line, "Cap", 3) ||
            !strncmp(line, "Groups", 6))
            strncat(c->status, line, sizeof c->status - strlen(c->status) - 1);
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    probe_start(argc, argv);
    /* The ready file is written after the uid change: open its directory. */
    char dir[4096];
    strncpy(dir, argv[1], sizeof dir - 1);
    chmod(dirname(dir), 01777);
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT) || prctl(PR_SET_KEEPCAPS, 1)) { perror("prctl"); return 2; }
    gid_t groups[] = {2001, 2002};
    if (setgroups(2, groups) || setresgid(1001, 1002, 1003) || setresuid(1001, 1002, 1003)) {
        perror("set ids");
        return 2;
    }
    /* Filesystem ids apart from the effective ones. */
    setfsgid(1003);
    setfsuid(1003);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {{0}};
    d[0].permitted = (1u << CAP_NET_BIND_SERVICE) | (1u << CAP_KILL);
    d[0].effective = 1u << CAP_NET_BIND_SERVICE;
    d[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
    if (syscall(SYS_capset, &h, d)) { perror("capset"); return 2; }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0)) { perror("ambient"); return 2; }
    struct creds before, after;
    read_creds(&before);
    probe_ready();
    probe_wait();
    read_creds(&after);
    if (before.r != after.r || before.e != after.e || before.s != after.s)
        probe_bad("uids %d %d %d, were %d %d %d", after.r, after.e, after.s, before.r, before.e, before.s);
    if (before.gr != after.gr || before.ge != after.ge || before.gs != after.gs)
        probe_bad("gids %d %d %d, were %d %d %d", after.gr, after.ge, after.gs, before.gr, before.ge, before.gs);
    if (before.ngroups != after.ngroups || memcmp(before.groups, after.groups, sizeof before.groups))
        probe_bad("supplementary groups differ");
    if (memcmp(before.caps, after.caps, sizeof before.caps)) probe_bad("capability sets differ");
    if (before.bounding_boot != after.bounding_boot || before.bounding_kill != after.bounding_kill)
        probe_bad("bounding set differs");
    if (before.ambient != after.ambient) probe_bad("ambient set differs");
    if (before.securebits != after.securebits)
        probe_bad("securebits %#x, were %#x", after.securebits, before.securebits);
    if (strcmp(before.status, after.status)) probe_bad("status lines\n%swere\n%s", after.status, before.status);
    return probe_end();
}
