/* SysV IPC probe: makes a shared memory segment (attached, a pattern
 * written), a second one attached in part (first page unmapped) and
 * removed (IPC_RMID) while attached, a semaphore set with values and a
 * message queue with messages of several types; writes their ids to
 * DIR/ready; waits for DIR/go; then checks that all of it is as it was
 * (ids, keys, modes, sizes, contents, values, message order) and that the
 * mapping still aliases the segment, and writes "ok IDS" or "FAIL: why"
 * to DIR/result. Then it removes the objects and sleeps. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define A_KEY 0x5ce1
#define A_SIZE (3 * PAGE + 100)
#define B_PAGES 4
#define S_KEY 0x5e11
#define Q_KEY 0x4e55

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msg {
	long mtype;
	char text[64];
};

static const struct {
	long type;
	const char *text;
} msgs[] = {{1, "one"}, {5, "five"}, {2, "two"}, {5, "five again"}};

static char dir[200];

static void put(const char *name, const char *text)
{
	char tmp[300], path[300];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(tmp, "w");
	if (!f)
		exit(2);
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

static int failed(const char *fmt, ...)
{
	char buf[300] = "FAIL: ";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + 6, sizeof buf - 7, fmt, ap);
	va_end(ap);
	strcat(buf, "\n");
	put("result", buf);
	return 1;
}

static unsigned char pat(size_t i, int seed)
{
	return (unsigned char)(i * 31 + seed + i / PAGE);
}

/* Page 2 of B stays zero: a hole in the dump. */
static unsigned char b_byte(size_t i)
{
	return i / PAGE == 2 ? 0 : pat(i, 2);
}

static int check(int a, int b, int s, int q, unsigned char *pa, unsigned char *pb)
{
	struct shmid_ds ds;
	if (shmctl(a, IPC_STAT, &ds) < 0)
		return failed("shmctl(%d): %s", a, strerror(errno));
	if (ds.shm_perm.__key != A_KEY || (ds.shm_perm.mode & 0777) != 0640 ||
	    ds.shm_segsz != A_SIZE || ds.shm_nattch != 1)
		return failed("segment %d: key %x mode %o size %zu nattch %lu", a,
			      ds.shm_perm.__key, ds.shm_perm.mode, ds.shm_segsz,
			      (unsigned long)ds.shm_nattch);
	for (size_t i = 0; i < A_SIZE; i++)
		if (pa[i] != pat(i, 1))
			return failed("segment %d byte %zu: %u", a, i, pa[i]);
	if (shmctl(b, IPC_STAT, &ds) < 0)
		return failed("shmctl(%d): %s", b, strerror(errno));
	if (!(ds.shm_perm.mode & SHM_DEST) || ds.shm_nattch != 1 ||
	    ds.shm_segsz != B_PAGES * PAGE)
		return failed("segment %d: mode %o nattch %lu (removed, attached once?)", b,
			      ds.shm_perm.mode, (unsigned long)ds.shm_nattch);
	for (size_t i = PAGE; i < B_PAGES * PAGE; i++)
		if (pb[i] != b_byte(i))
			return failed("segment %d byte %zu: %u", b, i, pb[i]);
	/* The mapping is the segment: write through it, read through a
	 * fresh attach. */
	pa[5] = 0xab;
	pb[3 * PAGE + 7] = 0xcd;
	unsigned char *fresh = shmat(a, NULL, SHM_RDONLY);
	if (fresh == (void *)-1)
		return failed("shmat(%d): %s", a, strerror(errno));
	if (fresh[5] != 0xab || fresh[A_SIZE - 1] != pat(A_SIZE - 1, 1))
		return failed("segment %d: the mapping does not alias it", a);
	shmdt(fresh);
	fresh = shmat(b, NULL, SHM_RDONLY);
	if (fresh == (void *)-1)
		return failed("shmat(%d): %s", b, strerror(errno));
	if (fresh[3 * PAGE + 7] != 0xcd || fresh[0] != pat(0, 2))
		return failed("segment %d: the mapping does not alias it", b);
	shmdt(fresh);

	struct semid_ds sds;
	union semun arg = {.buf = &sds};
	if (semctl(s, 0, IPC_STAT, arg) < 0)
		return failed("semctl(%d): %s", s, strerror(errno));
	if (sds.sem_perm.__key != S_KEY || (sds.sem_perm.mode & 0777) != 0604 ||
	    sds.sem_nsems != 4)
		return failed("semaphore set %d: key %x mode %o nsems %lu", s,
			      sds.sem_perm.__key, sds.sem_perm.mode,
			      (unsigned long)sds.sem_nsems);
	unsigned short vals[4];
	arg.array = vals;
	if (semctl(s, 0, GETALL, arg) < 0)
		return failed("GETALL(%d): %s", s, strerror(errno));
	if (vals[0] != 1 || vals[1] != 2 || vals[2] != 3 || vals[3] != 42)
		return failed("semaphores: %u %u %u %u", vals[0], vals[1], vals[2], vals[3]);

	struct msqid_ds mds;
	if (msgctl(q, IPC_STAT, &mds) < 0)
		return failed("msgctl(%d): %s", q, strerror(errno));
	if (mds.msg_perm.__key != Q_KEY || (mds.msg_perm.mode & 0777) != 0620 ||
	    mds.msg_qnum != 4 || mds.msg_qbytes != 12345)
		return failed("queue %d: key %x mode %o qnum %lu qbytes %lu", q,
			      mds.msg_perm.__key, mds.msg_perm.mode,
			      (unsigned long)mds.msg_qnum, (unsigned long)mds.msg_qbytes);
	for (int i = 0; i < 4; i++) {
		struct msg m;
		memset(&m, 0, sizeof m);
		ssize_t n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
		if (n < 0)
			return failed("msgrcv %d: %s", i, strerror(errno));
		if (m.mtype != msgs[i].type || (size_t)n != strlen(msgs[i].text) ||
		    memcmp(m.text, msgs[i].text, n))
			return failed("message %d: type %ld %.*s", i, m.mtype, (int)n, m.text);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	snprintf(dir, sizeof dir, "%s", argv[1]);
	/* Objects made and removed first: the kernel hands out slots in
	 * turn, so the next ones get ids a fresh namespace would not give
	 * first (1, 2), which a restore gets only by asking for them. */
	shmctl(shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600), IPC_RMID, NULL);
	semctl(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600), 0, IPC_RMID);
	msgctl(msgget(IPC_PRIVATE, IPC_CREAT | 0600), IPC_RMID, NULL);
	int a = shmget(A_KEY, A_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	int b = shmget(IPC_PRIVATE, B_PAGES * PAGE, IPC_CREAT | 0600);
	int s = semget(S_KEY, 4, IPC_CREAT | IPC_EXCL | 0604);
	int q = msgget(Q_KEY, IPC_CREAT | IPC_EXCL | 0620);
	if (a < 0 || b < 0 || s < 0 || q < 0)
		return failed("create: %s", strerror(errno));
	unsigned char *pa = shmat(a, NULL, 0);
	unsigned char *pb = shmat(b, NULL, 0);
	if (pa == (void *)-1 || pb == (void *)-1)
		return failed("shmat: %s", strerror(errno));
	for (size_t i = 0; i < A_SIZE; i++)
		pa[i] = pat(i, 1);
	for (size_t i = 0; i < B_PAGES * PAGE; i++)
		pb[i] = b_byte(i);
	/* B: mapped from its second page on, and removed. */
	munmap(pb, PAGE);
	shmctl(b, IPC_RMID, NULL);
	unsigned short vals[4] = {1, 2, 3, 42};
	union semun arg = {.array = vals};
	if (semctl(s, 0, SETALL, arg) < 0)
		return failed("SETALL: %s", strerror(errno));
	struct msqid_ds mds;
	msgctl(q, IPC_STAT, &mds);
	mds.msg_qbytes = 12345;
	if (msgctl(q, IPC_SET, &mds) < 0)
		return failed("IPC_SET qbytes: %s", strerror(errno));
	for (int i = 0; i < 4; i++) {
		struct msg m = {.mtype = msgs[i].type};
		strcpy(m.text, msgs[i].text);
		if (msgsnd(q, &m, strlen(m.text), IPC_NOWAIT) < 0)
			return failed("msgsnd: %s", strerror(errno));
	}
	char ids[100];
	snprintf(ids, sizeof ids, "%d %d %d %d\n", a, b, s, q);
	put("ready", ids);

	char go[300];
	snprintf(go, sizeof go, "%s/go", dir);
	struct timespec ts = {0, 10 * 1000 * 1000};
	while (access(go, F_OK) != 0)
		nanosleep(&ts, NULL);
	if (check(a, b, s, q, pa, pb) == 0) {
		char ok[120];
		snprintf(ok, sizeof ok, "ok %s", ids);
		put("result", ok);
	}
	shmctl(a, IPC_RMID, NULL);
	semctl(s, 0, IPC_RMID);
	msgctl(q, IPC_RMID, NULL);
	for (;;)
		pause();
}
