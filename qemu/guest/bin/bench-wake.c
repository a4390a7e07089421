// SPDX-License-Identifier: GPL-2.0
/*
 * bench-wake: how long after the last holder lets go does a waiter return,
 * and was the filesystem really dead when it did? For bench/latency.
 *
 *   bench-wake wake  -f FS -s STRATEGY [-n RUNS] [-k KIB] [-w MS] [-d DEV] [-c CMD] MNT
 *   bench-wake floor -f FS [-n RUNS] [-k KIB] [-d DEV] MNT
 *   bench-wake idle  -f FS [-n RUNS] [-d DEV] [-c CMD] MNT
 *
 * FS is ext4 (mounted from DEV) or tmpfs. Each run mounts FS on MNT afresh.
 *
 * wake: a holder process writes KIB KiB to MNT/hold (no fsync: dirty data
 * the shutdown must write back) and keeps it open. On "go" it sleeps a
 * random MS..MS+100 ms (-w, default 50: a random phase against the 100 ms
 * loops; MS must exceed a spawned waiter's start-up so that it is waiting
 * when the holder lets go), stores CLOCK_MONOTONIC in shared memory
 * just before its close(), closes and exits: that close drops the last
 * reference, and the shutdown runs in its task work. "go" is sent right
 * before the waiter starts. STRATEGY is the waiter:
 *   kernel-syscall  umount2(MNT, MNT_DETACH | UMOUNT_WAIT), in this process
 *   kernel-cmd      CMD --mode kernel -l MNT (spawned)
 *   notify-syscall  fd = umount2(MNT, MNT_DETACH | UMOUNT_NOTIFY), then
 *                   poll(fd) until readable, in this process
 *   notify-cmd      CMD --mode notify -l MNT (spawned)
 *   fallback-cmd    CMD --mode fallback -l MNT (spawned)
 *   poll-mounts     umount2(MNT, MNT_DETACH), then every 100 ms: is MNT
 *                   gone from /proc/mounts (Android init's loop)
 *   retry-excl      umount2(MNT, MNT_DETACH), then every 100 ms: does DEV
 *                   open with O_EXCL; on tmpfs (no device): has the inotify
 *                   watch on the root reported IN_UNMOUNT
 *   retry-umount    umount2(MNT, 0) every 100 ms while EBUSY (LTP's
 *                   tst_umount itself: no detach, the shutdown runs in the
 *                   waiter's own successful call)
 * The waiter's return is timestamped at once, then checked: on ext4 an
 * O_EXCL open of DEV that fails with EBUSY, on tmpfs an inotify watch on the
 * root (added before the go) that has not reported IN_UNMOUNT, is an early
 * return: the waiter came back while the filesystem was alive. After each
 * run, one floor run (below) is timed as strategy=floor-STRATEGY, so that
 * the slack compares runs made under the same host load.
 *
 * floor: the same dirty data, written by a child that then exits (no
 * holder), and the time a synchronous umount2(MNT, 0) takes.
 *
 * idle: nothing written; umount2(MNT, 0) and umount2(MNT, UMOUNT_WAIT),
 * then spawned "umount MNT" (busybox), "CMD --mode kernel MNT" and
 * "CMD --mode notify MNT" (the latter only with -N: a kernel with
 * UMOUNT_NOTIFY), each timed around the call or the spawn and reap; each
 * pair in turns first.
 * Then "busybox true" and "CMD --probe" (no unmount): what a spawn and the
 * command's start-up cost alone (idle-busybox-true-cmd, idle-probe-cmd),
 * and "CMD --probe" again without address space randomization
 * (idle-probe-norandom-cmd): under TCG a static-pie binary loaded at a new
 * address each time may not reuse the code QEMU translated for the last.
 *
 * Lines, printed after the last run so the console does not disturb the
 * timing:
 *   # UMW-BENCH fs=F strategy=S run=I latency_us=L early=E status=X
 * (idle: strategy=idle-umount2, idle-umount2-wait, idle-umount-cmd,
 * idle-umount-wait-cmd, idle-umount-notify-cmd; floor: strategy=floor). latency_us is the waiter's
 * return minus the holder's close; negative when it returned before the
 * close. status is the spawned command's exit status (0 in process).
 * Exit: 0 when every run was measured, 2 on a setup error.
 *
 * Build: gcc -static -O2 -Wall.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UMOUNT_WAIT
#define UMOUNT_WAIT	0x00000010
#endif
#ifndef UMOUNT_NOTIFY
#define UMOUNT_NOTIFY	0x00000020
#endif

#define POLL_MS		100
#define MAX_RUNS	10000

extern char **environ;

struct opts {
	const char *what;
	const char *fs;
	const char *strategy;
	const char *dev;
	const char *cmd;
	const char *mnt;
	int runs;
	int kib;
	int window_ms;
	int notify;		/* -N: the kernel has UMOUNT_NOTIFY */
};

struct sample {
	const char *strategy;
	long long latency_us;
	int early;
	int status;
};

static struct sample *samples;
static int nsamples;

static void usage(void)
{
	fprintf(stderr,
		"usage: bench-wake wake|floor|idle -f ext4|tmpfs [-s STRATEGY] [-n RUNS] [-k KIB] [-w MS] [-d DEV] [-c CMD] [-N] MNT\n");
	exit(2);
}

static void die(const char *what)
{
	fprintf(stderr, "bench-wake: %s: %s\n", what, strerror(errno));
	exit(2);
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int is_ext4(const struct opts *o)
{
	return strcmp(o->fs, "ext4") == 0;
}

/* 0 free, 1 claimed (EBUSY); dies on anything else. */
static int dev_busy(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EBUSY)
		die(dev);
	return 1;
}

/* The previous run's superblock must be dead before the next mount. */
static void mount_fresh(const struct opts *o)
{
	int ms;

	if (is_ext4(o)) {
		for (ms = 0; dev_busy(o->dev); ms++) {
			if (ms > 30000) {
				fprintf(stderr, "bench-wake: %s busy for 30 s\n",
					o->dev);
				exit(2);
			}
			sleep_ms(1);
		}
		if (mount(o->dev, o->mnt, "ext4", 0, NULL))
			die("mount ext4");
	} else {
		if (mount("bench", o->mnt, "tmpfs", 0, NULL))
			die("mount tmpfs");
	}
}

static int is_mounted(const char *mnt)
{
	char line[4096], needle[4096];
	int found = 0;
	FILE *f;

	snprintf(needle, sizeof(needle), " %s ", mnt);
	f = fopen("/proc/mounts", "re");
	if (!f)
		die("/proc/mounts");
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* Has the watch reported IN_UNMOUNT? Reads what is queued, never blocks. */
static int saw_unmount(int ifd, int *seen)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	while (!*seen && (n = read(ifd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_UNMOUNT)
				*seen = 1;
		}
	}
	return *seen;
}

static void write_kib(const char *path, int kib)
{
	static char buf[64 << 10];
	int fd, chunk;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path);
	memset(buf, 'u', sizeof(buf));
	for (; kib > 0; kib -= chunk) {
		chunk = kib < 64 ? kib : 64;
		if (write(fd, buf, chunk << 10) != chunk << 10)
			die("write");
	}
	close(fd);
}

static pid_t spawn(char **argv)
{
	posix_spawn_file_actions_t actions;
	pid_t pid;

	/* The command's stdout is not the console: our lines are. */
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
	errno = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (errno)
		die(argv[0]);
	return pid;
}

/* @argv with ADDR_NO_RANDOMIZE, stdout to /dev/null. */
static pid_t spawn_norandom(char **argv)
{
	pid_t pid = fork();
	int null;

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		null = open("/dev/null", O_WRONLY);
		if (null < 0 || dup2(null, 1) < 0)
			_exit(127);
		personality(ADDR_NO_RANDOMIZE);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void record(const char *strategy, long long latency_us, int early,
		   int status)
{
	if (nsamples == MAX_RUNS * 8)
		return;
	samples[nsamples].strategy = strategy;
	samples[nsamples].latency_us = latency_us;
	samples[nsamples].early = early;
	samples[nsamples].status = status;
	nsamples++;
}

/*
 * The holder: writes, reports ready on @ready, waits for a byte on @go,
 * sleeps @delay_ms, stores the time in @release_us and closes.
 */
static pid_t start_holder(const struct opts *o, long delay_ms,
			  volatile long long *release_us, int *go_fd)
{
	int ready[2], go[2], fd;
	char path[4096], c;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* Written and closed as in the floor runs; the pages stay
		 * dirty and this read-only descriptor holds the mount. */
		snprintf(path, sizeof(path), "%s/hold", o->mnt);
		write_kib(path, o->kib);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(path);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		sleep_ms(delay_ms);
		*release_us = now_us();
		close(fd);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "bench-wake: holder died before ready\n");
		exit(2);
	}
	close(ready[0]);
	*go_fd = go[1];
	return pid;
}

/* Runs the waiter; returns a spawned command's exit status, else 0. */
static int run_waiter(const struct opts *o, int ifd, int *seen)
{
	char *argv[6];
	int busy;

	if (!strcmp(o->strategy, "kernel-syscall")) {
		if (umount2(o->mnt, MNT_DETACH | UMOUNT_WAIT))
			die("umount2(MNT_DETACH | UMOUNT_WAIT)");
		return 0;
	}
	if (!strcmp(o->strategy, "notify-syscall")) {
		struct pollfd pfd = { .events = POLLIN };

		pfd.fd = umount2(o->mnt, MNT_DETACH | UMOUNT_NOTIFY);
		if (pfd.fd < 0)
			die("umount2(MNT_DETACH | UMOUNT_NOTIFY)");
		while (poll(&pfd, 1, -1) < 0)
			if (errno != EINTR)
				die("poll");
		close(pfd.fd);
		return 0;
	}
	if (!strcmp(o->strategy, "kernel-cmd") ||
	    !strcmp(o->strategy, "notify-cmd") ||
	    !strcmp(o->strategy, "fallback-cmd")) {
		argv[0] = (char *)o->cmd;
		argv[1] = "--mode";
		argv[2] = o->strategy[0] == 'k' ? "kernel" :
			  o->strategy[0] == 'n' ? "notify" : "fallback";
		argv[3] = "-l";
		argv[4] = (char *)o->mnt;
		argv[5] = NULL;
		return reap(spawn(argv));
	}
	if (!strcmp(o->strategy, "retry-umount")) {
		while (umount2(o->mnt, 0)) {
			if (errno != EBUSY)
				die("umount2");
			sleep_ms(POLL_MS);
		}
		return 0;
	}
	if (umount2(o->mnt, MNT_DETACH))
		die("umount2(MNT_DETACH)");
	if (!strcmp(o->strategy, "poll-mounts")) {
		while (is_mounted(o->mnt))
			sleep_ms(POLL_MS);
		return 0;
	}
	if (!strcmp(o->strategy, "retry-excl")) {
		for (;;) {
			busy = is_ext4(o) ? dev_busy(o->dev) :
					    !saw_unmount(ifd, seen);
			if (!busy)
				return 0;
			sleep_ms(POLL_MS);
		}
	}
	fprintf(stderr, "bench-wake: unknown strategy %s\n", o->strategy);
	exit(2);
}

static void floor_one(const struct opts *o, const char *strategy);

static void wake(const struct opts *o)
{
	static char paired[64];
	volatile long long *release_us;
	long long returned_us;
	unsigned int seed = 12345;
	int i, go, ifd, seen, early, status;
	long delay_ms;
	pid_t holder;

	release_us = mmap(NULL, sizeof(*release_us), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (release_us == MAP_FAILED)
		die("mmap");
	for (i = 0; i < o->runs; i++) {
		mount_fresh(o);
		seed = seed * 1103515245 + 12345;
		delay_ms = o->window_ms + (seed >> 16) % 101;
		*release_us = 0;
		holder = start_holder(o, delay_ms, release_us, &go);
		ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (ifd < 0 || inotify_add_watch(ifd, o->mnt, IN_UNMOUNT) < 0)
			die("inotify");
		seen = 0;

		if (write(go, "g", 1) != 1)
			die("go");
		status = run_waiter(o, ifd, &seen);
		returned_us = now_us();
		if (is_ext4(o))
			early = dev_busy(o->dev);
		else
			early = !saw_unmount(ifd, &seen);

		close(go);
		reap(holder);
		close(ifd);
		if (is_mounted(o->mnt) && umount2(o->mnt, MNT_DETACH))
			die("cleanup umount2");
		record(o->strategy, returned_us - *release_us, early, status);
		snprintf(paired, sizeof(paired), "floor-%s", o->strategy);
		floor_one(o, paired);
	}
}

/* One floor run: the dirty data written by a child that exits, then a
 * synchronous umount2(MNT, 0), timed. */
static void floor_one(const struct opts *o, const char *strategy)
{
	char path[4096];
	long long t0, t1;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/hold", o->mnt);
	mount_fresh(o);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		write_kib(path, o->kib);
		_exit(0);
	}
	reap(pid);
	t0 = now_us();
	if (umount2(o->mnt, 0))
		die("umount2");
	t1 = now_us();
	record(strategy, t1 - t0, is_ext4(o) && dev_busy(o->dev), 0);
}

static void floor_runs(const struct opts *o)
{
	int i;

	for (i = 0; i < o->runs; i++)
		floor_one(o, "floor");
}

/* One idle unmount, timed: the syscall with @flags, or @argv spawned. */
static void idle_one(const struct opts *o, const char *strategy, int flags,
		     char **argv)
{
	long long t0;
	int status = 0;

	mount_fresh(o);
	t0 = now_us();
	if (argv)
		status = reap(spawn(argv));
	else if (umount2(o->mnt, flags))
		die("umount2");
	record(strategy, now_us() - t0, 0, status);
	if (is_mounted(o->mnt) && umount2(o->mnt, 0))
		die("cleanup umount2");
}

static void idle_runs(const struct opts *o)
{
	char *plain[] = { "umount", (char *)o->mnt, NULL };
	char *waiter[] = { (char *)o->cmd, "--mode", "kernel",
			   (char *)o->mnt, NULL };
	char *notifier[] = { (char *)o->cmd, "--mode", "notify",
			     (char *)o->mnt, NULL };
	char *probe[] = { (char *)o->cmd, "--probe", NULL };
	char *busybox[] = { "busybox", "true", NULL };
	long long t0;
	int i, status;

	for (i = 0; i < o->runs; i++) {
		if (i % 2) {
			idle_one(o, "idle-umount2-wait", UMOUNT_WAIT, NULL);
			idle_one(o, "idle-umount2", 0, NULL);
			idle_one(o, "idle-umount-wait-cmd", 0, waiter);
			if (o->notify)
				idle_one(o, "idle-umount-notify-cmd", 0, notifier);
			idle_one(o, "idle-umount-cmd", 0, plain);
		} else {
			idle_one(o, "idle-umount2", 0, NULL);
			idle_one(o, "idle-umount2-wait", UMOUNT_WAIT, NULL);
			idle_one(o, "idle-umount-cmd", 0, plain);
			if (o->notify)
				idle_one(o, "idle-umount-notify-cmd", 0, notifier);
			idle_one(o, "idle-umount-wait-cmd", 0, waiter);
		}
		/* What a spawn costs without an unmount: the start-up share. */
		t0 = now_us();
		status = reap(spawn(busybox));
		record("idle-busybox-true-cmd", now_us() - t0, 0, status);
		t0 = now_us();
		status = reap(spawn(probe));
		record("idle-probe-cmd", now_us() - t0, 0, status);
		t0 = now_us();
		status = reap(spawn_norandom(probe));
		record("idle-probe-norandom-cmd", now_us() - t0, 0, status);
	}
}

int main(int argc, char **argv)
{
	struct opts o = { .runs = 200, .kib = 1024, .window_ms = 50,
			  .dev = "/dev/vdc",
			  .cmd = "/usr/bin/umount-wait", .strategy = "" };
	int opt, i;

	if (argc < 2)
		usage();
	o.what = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "f:s:n:k:w:d:c:N")) != -1) {
		switch (opt) {
		case 'f':
			o.fs = optarg;
			break;
		case 's':
			o.strategy = optarg;
			break;
		case 'n':
			o.runs = atoi(optarg);
			break;
		case 'k':
			o.kib = atoi(optarg);
			break;
		case 'w':
			o.window_ms = atoi(optarg);
			break;
		case 'd':
			o.dev = optarg;
			break;
		case 'c':
			o.cmd = optarg;
			break;
		case 'N':
			o.notify = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || !o.fs || o.runs < 1 || o.runs > MAX_RUNS ||
	    o.kib < 0 || o.window_ms < 0 || (strcmp(o.fs, "ext4") && strcmp(o.fs, "tmpfs")))
		usage();
	o.mnt = argv[optind];
	mkdir(o.mnt, 0755);
	samples = calloc(MAX_RUNS * 10, sizeof(*samples));
	if (!samples)
		die("calloc");

	if (!strcmp(o.what, "wake"))
		wake(&o);
	else if (!strcmp(o.what, "floor"))
		floor_runs(&o);
	else if (!strcmp(o.what, "idle"))
		idle_runs(&o);
	else
		usage();

	for (i = 0; i < nsamples; i++)
		printf("# UMW-BENCH fs=%s strategy=%s run=%d latency_us=%lld early=%d status=%d\n",
		       o.fs, samples[i].strategy, i, samples[i].latency_us,
		       samples[i].early, samples[i].status);
	return 0;
}
