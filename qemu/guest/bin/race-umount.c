// SPDX-License-Identifier: GPL-2.0
/*
 * race-umount: unmount, then check at once whether the filesystem is alive.
 *
 *   race-umount [-k PID]... [-g PID]... [-t SEC] [-e] DEV PROG [ARG]...
 *
 * First sends SIGKILL to every -k PID and SIGUSR1 ("go") to every -g PID, so
 * that holders start letting go at the moment of the unmount, not a fork and
 * an exec earlier. Then runs PROG (umount, umount -l or umount-wait) and
 * waits for it: the baseline and the command under test go through the same
 * spawn, so they meet the holders at the same point of their teardown. With
 * -t, PROG gets SIGINT after SEC seconds (umount-wait then reports "detached,
 * shutdown not confirmed"), so a hung wait fails the run, not the boot.
 *
 * Right after PROG exits, DEV is opened with O_EXCL: EBUSY means the
 * superblock is still alive (its block device claim is held until
 * kill_block_super() ends), which is the bug the scenarios count. No shell
 * sits between the return and the check.
 *
 * Prints one line:  status=<S> busy=<0|1> us=<PROG's wall time in us>
 * where S is PROG's exit status (128+signal if a signal ended it); with -e,
 * then end_us=<CLOCK_MONOTONIC when PROG was reaped, in us>, to compare
 * with other clocks of the boot without a shell in between.
 * Exit: 0 when the line was printed, 2 on any other error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 64

extern char **environ;

static void usage(void)
{
	fprintf(stderr,
		"usage: race-umount [-k PID]... [-g PID]... [-t SEC] [-e] DEV PROG [ARG]...\n");
	exit(2);
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static volatile pid_t child;

static void interrupt_child(int sig)
{
	(void)sig;
	kill(child, SIGINT);
}

static int run(char **argv, unsigned int timeout_sec)
{
	posix_spawn_file_actions_t actions;
	struct sigaction sa;
	int status;
	pid_t pid;

	/* PROG's stdout goes to stderr: ours carries only the result line. */
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, 2, 1);
	errno = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (errno) {
		fprintf(stderr, "race-umount: spawn %s: %s\n", argv[0],
			strerror(errno));
		exit(2);
	}
	if (timeout_sec) {
		child = pid;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = interrupt_child;
		sigaction(SIGALRM, &sa, NULL);
		alarm(timeout_sec);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("race-umount: waitpid");
			exit(2);
		}
	}
	alarm(0);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	pid_t kill_pids[MAX_PIDS], go_pids[MAX_PIDS];
	int nkill = 0, ngo = 0, timeout_sec = 0, end = 0;
	int opt, i, status, busy, fd;
	char **prog;
	const char *dev;
	long long t0, t1;

	/* '+': stop at the first non-option so PROG's own options stay its. */
	while ((opt = getopt(argc, argv, "+k:g:t:e")) != -1) {
		switch (opt) {
		case 'k':
			if (nkill == MAX_PIDS)
				usage();
			kill_pids[nkill++] = atoi(optarg);
			break;
		case 'g':
			if (ngo == MAX_PIDS)
				usage();
			go_pids[ngo++] = atoi(optarg);
			break;
		case 't':
			timeout_sec = atoi(optarg);
			break;
		case 'e':
			end = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 2)
		usage();
	dev = argv[optind];
	prog = &argv[optind + 1];

	for (i = 0; i < nkill; i++)
		if (kill(kill_pids[i], SIGKILL) < 0)
			fprintf(stderr, "race-umount: kill %d: %s\n",
				kill_pids[i], strerror(errno));
	for (i = 0; i < ngo; i++)
		if (kill(go_pids[i], SIGUSR1) < 0)
			fprintf(stderr, "race-umount: signal %d: %s\n",
				go_pids[i], strerror(errno));

	t0 = now_us();
	status = run(prog, timeout_sec);
	t1 = now_us();

	fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd >= 0) {
		busy = 0;
		close(fd);
	} else if (errno == EBUSY) {
		busy = 1;
	} else {
		fprintf(stderr, "race-umount: open %s: %s\n", dev,
			strerror(errno));
		return 2;
	}

	if (end)
		printf("status=%d busy=%d us=%lld end_us=%lld\n", status, busy, t1 - t0, t1);
	else
		printf("status=%d busy=%d us=%lld\n", status, busy, t1 - t0);
	return 0;
}
