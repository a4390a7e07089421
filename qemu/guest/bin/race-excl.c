// SPDX-License-Identifier: GPL-2.0
/*
 * race-excl: is a block device still claimed?
 *
 *   race-excl [-w MS] DEV
 *
 * Opens DEV with O_EXCL. A mounted block filesystem keeps its device claimed
 * until its superblock dies (kill_block_super() gives the claim up), so EBUSY
 * means a filesystem on DEV is still alive. With -w, retries every millisecond
 * for up to MS milliseconds: the race suites use it to let one run's
 * superblock die before the next run mounts the device again. The measured
 * check right after an unmount is done by race-umount, without a fork between
 * the return and the check.
 *
 * Exit: 0 the exclusive open succeeded, 1 EBUSY (still busy after -w),
 * 2 anything else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: race-excl [-w MS] DEV\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const struct timespec step = { 0, 1000 * 1000 };
	long wait_ms = 0;
	const char *dev;
	int opt, fd;

	while ((opt = getopt(argc, argv, "w:")) != -1) {
		switch (opt) {
		case 'w':
			wait_ms = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	dev = argv[optind];

	for (;;) {
		fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EBUSY) {
			fprintf(stderr, "race-excl: open %s: %s\n", dev,
				strerror(errno));
			return 2;
		}
		if (wait_ms-- <= 0)
			return 1;
		nanosleep(&step, NULL);
	}
}
