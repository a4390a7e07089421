// SPDX-License-Identifier: GPL-2.0
/*
 * measure-umount-wait: the numbers quoted in the cover letter. Not part
 * of the series; runs as root in the QEMU guest.
 *
 *   ns_race     mount ext4 from $UMOUNT_WAIT_TEST_BLKDEV, let a child copy
 *               it into its own mount namespace and write 4 MiB, SIGKILL
 *               the child, unmount at once; count the runs where
 *               open(dev, O_EXCL) is still EBUSY right after umount2()
 *               returned (the filesystem outlived the call).
 *   tmpfs_fast  cost of umount2() on an unused tmpfs mount, with and
 *               without UMOUNT_WAIT (the fast path).
 *
 * Build: gcc -static -O2 -o measure-umount-wait measure-umount-wait.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UMOUNT_WAIT
#define UMOUNT_WAIT	0x00000010
#endif

#define MNT		"/tmp/measure-umount-wait"
#define MAX_RUNS	1000

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static int dev_busy(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_EXCL);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno == EBUSY;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Let the previous run's filesystem go before mounting again. */
static void wait_dev_free(const char *dev)
{
	int i;

	for (i = 0; i < 2000 && dev_busy(dev); i++)
		usleep(5000);
}

static void report(const char *name, int flags, int runs, long long *us,
		   int busy)
{
	qsort(us, runs, sizeof(*us), cmp_ll);
	printf("# MEASURE %s flags=%#x runs=%d", name, flags, runs);
	if (busy >= 0)
		printf(" busy_after_return=%d", busy);
	printf(" umount_us_median=%lld p90=%lld\n", us[runs / 2],
	       us[runs * 9 / 10]);
}

static void ns_race(const char *dev, int flags, int runs)
{
	static long long us[MAX_RUNS];
	static char buf[65536];
	int run, busy = 0;

	memset(buf, 'x', sizeof(buf));
	for (run = 0; run < runs; run++) {
		int ready[2], fd, i;
		long long start;
		pid_t pid;
		char c;

		wait_dev_free(dev);
		if (mount(dev, MNT, "ext4", 0, NULL))
			die("mount");
		if (pipe(ready))
			die("pipe");
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			/* the only task of its namespace */
			if (unshare(CLONE_NEWNS))
				_exit(1);
			fd = open(MNT "/f", O_CREAT | O_WRONLY | O_TRUNC, 0644);
			for (i = 0; i < 64; i++)
				if (write(fd, buf, sizeof(buf)) != sizeof(buf))
					_exit(1);
			close(fd);
			if (write(ready[1], "r", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		close(ready[1]);
		if (read(ready[0], &c, 1) != 1)
			die("child");
		close(ready[0]);
		kill(pid, SIGKILL);
		start = now_us();
		if (umount2(MNT, flags))
			die("umount2");
		us[run] = now_us() - start;
		busy += dev_busy(dev);
		waitpid(pid, NULL, 0);
	}
	report("ns_race", flags, runs, us, busy);
}

static void tmpfs_fast(int flags, int runs)
{
	static long long us[MAX_RUNS];
	int run;

	for (run = 0; run < runs; run++) {
		long long start;

		if (mount("measure", MNT, "tmpfs", 0, NULL))
			die("mount");
		start = now_us();
		if (umount2(MNT, flags))
			die("umount2");
		us[run] = now_us() - start;
	}
	report("tmpfs_fast", flags, runs, us, -1);
}

int main(void)
{
	const char *dev = getenv("UMOUNT_WAIT_TEST_BLKDEV");
	int have_wait = umount2("", UMOUNT_WAIT) == -1 && errno == ENOENT;
	int round;

	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("private mount namespace");
	mkdir(MNT, 0755);
	printf("# MEASURE probe: UMOUNT_WAIT %s\n",
	       have_wait ? "supported" : "not supported");
	for (round = 0; round < 2; round++) {
		tmpfs_fast(0, 200);
		if (have_wait)
			tmpfs_fast(UMOUNT_WAIT, 200);
	}
	if (dev) {
		ns_race(dev, 0, 20);
		if (have_wait)
			ns_race(dev, UMOUNT_WAIT, 20);
	}
	return 0;
}
