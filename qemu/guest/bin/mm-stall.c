// SPDX-License-Identifier: GPL-2.0
/*
 * mm-stall: a process whose address space lock stays held, so that reading
 * its /proc/PID/maps (or cmdline, environ) sleeps in the kernel for as long
 * as a FUSE daemon does not answer: what a holder scan meets on a machine
 * where a daemon hangs.
 *
 *   mm-stall FILE
 *
 * FILE: a file of at least one page on a FUSE filesystem, not in the page
 * cache (drop the caches after writing it). mm-stall maps its first page
 * (nothing read yet), prints its pid and "ready", then waits for SIGUSR1.
 * Stop the daemon (SIGSTOP), then send SIGUSR1. mm-stall then:
 *
 *   1. forks a reader that reads that page through /proc/PID/mem: the
 *      kernel holds the address space's lock for reading across the page
 *      fault (a remote access cannot drop it and retry), and the fault
 *      waits for the daemon's answer to its READ;
 *   2. 200 ms later, has a thread (started before) map anonymous memory:
 *      it queues for the lock for writing, behind the reader;
 *   3. prints "stalled" and sleeps.
 *
 * From then on, a reader of this process's /proc/PID/maps queues behind
 * the writer (on kernels whose maps reads take the lock: 6.12 does, 7.3
 * does not), until the daemon answers or is killed. Kill mm-stall with
 * SIGKILL (its sleeps are killable), then resume or kill the daemon.
 *
 * Exit: 1 on a failed step before "ready"; otherwise it runs until killed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static int start[2];

/* Started before the go (its stack is mapped then): on a byte from the
 * pipe, maps anonymous memory, sleeping on the lock for writing. */
static void *map_anonymous(void *arg)
{
	char byte;

	(void)arg;
	if (read(start[0], &byte, 1) == 1)
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return NULL;
}

static void say(const char *line)
{
	/* write(2) of a static string: nothing allocated, no page to fault. */
	ssize_t n = write(1, line, strlen(line));

	(void)n;
}

int main(int argc, char **argv)
{
	char path[64];
	pthread_t writer;
	sigset_t usr1, old;
	uint8_t byte;
	void *page;
	pid_t self;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: mm-stall FILE\n");
		return 1;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (pipe(start) != 0 || pthread_create(&writer, NULL, map_anonymous, NULL) != 0) {
		fprintf(stderr, "mm-stall: the writer thread could not start\n");
		return 1;
	}
	signal(SIGUSR1, on_usr1);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	self = getpid();
	printf("%d ready\n", (int)self);
	fflush(stdout);
	while (!go)
		sigsuspend(&old);
	if (fork() == 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)self);
		fd = open(path, O_RDONLY);
		if (fd < 0 || pread(fd, &byte, 1, (off_t)(uintptr_t)page) < 0)
			perror(path);
		_exit(0);
	}
	usleep(200 * 1000);
	if (write(start[1], "", 1) != 1)
		return 1;
	usleep(100 * 1000);
	say("stalled\n");
	for (;;)
		pause();
}
