// SPDX-License-Identifier: GPL-2.0
/*
 * race-hold: processes that keep a filesystem alive, for the race suites.
 *
 *   race-hold [-n COUNT] [-m MIB] [-a MIB] [-u] [-r] [-T] [-c MIN_MS[-MAX_MS]] FILE
 *
 * Starts COUNT holder processes (default 1). Holder i creates FILE.i, writes
 * MIB MiB to it without fsync (dirty page cache that the filesystem must
 * write back when its superblock shuts down), and keeps it open. Once every
 * holder is ready, prints their PIDs on one line and exits 0; the holders
 * stay behind, detached from stdin and stdout.
 *
 *   -a  each holder also touches MIB MiB of anonymous memory, like an app's
 *       heap: a killed task frees its memory (exit_mm()) before it drops its
 *       files and its namespace, so the teardown takes as long as a real
 *       app's does.
 *   -u  each holder first unshares its mount namespace (mounts made private).
 *       It is that namespace's only task, so when it is killed the namespace
 *       and its copy of the mount die with it, asynchronously to whoever
 *       sent the signal. (A surviving child would keep the namespace, and the
 *       filesystem, alive: no race left to measure.)
 *   -r  the file is held by an io_uring ring instead: registered as a fixed
 *       file (IORING_REGISTER_FILES), then the holder closes its own
 *       descriptor. Closing the ring frees its file table from io_uring's
 *       exit worker, a kernel thread, so the final fput() and mntput() go
 *       through delayed_fput_work and delayed_mntput_work.
 *   -T  each holder ignores SIGTERM, like an app that does not stop when
 *       asked: a reboot script's grace period passes and SIGKILL ends it,
 *       right before the unmount.
 *   -c  on SIGUSR1 ("go", sent by race-umount -g right before the unmount),
 *       wait a random MIN..MAX ms, close the file (or the ring) and exit.
 *       Without -c a holder holds until it is killed.
 *
 * Raw syscalls for io_uring (no liburing); build: gcc -static -O2 -Wall.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

#define MAX_HOLDERS 64

struct opts {
	int count;
	int mib;
	int heap_mib;
	int unshare_ns;
	int ring;
	int close_after_go;
	int ignore_term;
	long close_min_ms, close_max_ms;
	const char *file;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: race-hold [-n COUNT] [-m MIB] [-a MIB] [-u] [-r] [-T] [-c MIN_MS[-MAX_MS]] FILE\n");
	exit(2);
}

static void die(int i, const char *what)
{
	fprintf(stderr, "race-hold[%d]: %s: %s\n", i, what, strerror(errno));
	_exit(2);
}

static void write_mib(int i, int fd, int mib)
{
	static char buf[1 << 20];
	size_t done;
	ssize_t n;

	memset(buf, 'a' + i % 26, sizeof(buf));
	while (mib-- > 0) {
		for (done = 0; done < sizeof(buf); done += n) {
			n = write(fd, buf + done, sizeof(buf) - done);
			if (n < 0)
				die(i, "write");
		}
	}
}

static void touch_heap(int i, int mib)
{
	size_t len = (size_t)mib << 20;
	char *heap;

	if (!len)
		return;
	heap = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap == MAP_FAILED)
		die(i, "mmap heap");
	memset(heap, 1, len);
}

/* Hands @fd to a new io_uring ring and returns the ring: the ring's fixed
 * file table then holds the only reference to the file. */
static int hand_to_ring(int i, int fd)
{
	struct io_uring_params p;
	int ring;

	memset(&p, 0, sizeof(p));
	ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		die(i, "io_uring_setup");
	if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_FILES,
		    &fd, 1) < 0)
		die(i, "io_uring_register(IORING_REGISTER_FILES)");
	close(fd);
	return ring;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void holder(int i, const struct opts *o, int ready)
{
	char path[4096];
	sigset_t go;
	int fd, null, sig;
	long delay;

	null = open("/dev/null", O_RDWR);
	if (null < 0)
		die(i, "open /dev/null");
	dup2(null, 0);
	dup2(null, 1);
	close(null);

	/* Blocked before "ready", so an early go stays pending. */
	sigemptyset(&go);
	sigaddset(&go, SIGUSR1);
	sigprocmask(SIG_BLOCK, &go, NULL);
	if (o->ignore_term)
		signal(SIGTERM, SIG_IGN);

	if (o->unshare_ns) {
		if (unshare(CLONE_NEWNS) < 0)
			die(i, "unshare(CLONE_NEWNS)");
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			die(i, "make mounts private");
	}

	snprintf(path, sizeof(path), "%s.%d", o->file, i);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(i, path);
	write_mib(i, fd, o->mib);
	touch_heap(i, o->heap_mib);
	if (o->ring)
		fd = hand_to_ring(i, fd);

	if (write(ready, "r", 1) != 1)
		die(i, "report ready");
	close(ready);

	if (!o->close_after_go) {
		for (;;)
			pause();
	}
	while (sigwait(&go, &sig) != 0)
		;
	srand(getpid() ^ (unsigned int)time(NULL));
	delay = o->close_min_ms;
	if (o->close_max_ms > o->close_min_ms)
		delay += rand() % (o->close_max_ms - o->close_min_ms + 1);
	sleep_ms(delay);
	close(fd);
	_exit(0);
}

static void parse(int argc, char **argv, struct opts *o)
{
	char *end;
	int opt;

	memset(o, 0, sizeof(*o));
	o->count = 1;
	while ((opt = getopt(argc, argv, "n:m:a:urTc:")) != -1) {
		switch (opt) {
		case 'n':
			o->count = atoi(optarg);
			break;
		case 'm':
			o->mib = atoi(optarg);
			break;
		case 'a':
			o->heap_mib = atoi(optarg);
			break;
		case 'u':
			o->unshare_ns = 1;
			break;
		case 'r':
			o->ring = 1;
			break;
		case 'T':
			o->ignore_term = 1;
			break;
		case 'c':
			o->close_after_go = 1;
			o->close_min_ms = strtol(optarg, &end, 10);
			o->close_max_ms = *end == '-' ?
				strtol(end + 1, NULL, 10) : o->close_min_ms;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || o->count < 1 || o->count > MAX_HOLDERS ||
	    o->mib < 0 || o->heap_mib < 0 || o->close_min_ms < 0)
		usage();
	o->file = argv[optind];
}

int main(int argc, char **argv)
{
	pid_t pids[MAX_HOLDERS];
	struct opts o;
	int pipefd[2], i, got;
	char c;

	parse(argc, argv, &o);
	if (pipe(pipefd) < 0) {
		perror("race-hold: pipe");
		return 2;
	}
	for (i = 0; i < o.count; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("race-hold: fork");
			break;
		}
		if (pids[i] == 0) {
			close(pipefd[0]);
			holder(i, &o, pipefd[1]);
		}
	}
	close(pipefd[1]);

	/* Each holder writes one byte when ready; EOF early means one died. */
	for (got = 0; got < o.count; got++)
		if (read(pipefd[0], &c, 1) != 1)
			break;
	if (got < o.count) {
		fprintf(stderr, "race-hold: only %d of %d holders ready\n",
			got, o.count);
		for (i = 0; i < o.count && pids[i] > 0; i++)
			kill(pids[i], SIGKILL);
		return 2;
	}

	for (i = 0; i < o.count; i++)
		printf("%s%d", i ? " " : "", pids[i]);
	printf("\n");
	return 0;
}
