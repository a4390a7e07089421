// SPDX-License-Identifier: GPL-2.0
/*
 * dm-table: the few device-mapper steps of the fault suite, without
 * dmsetup (which is not static): straight DM ioctls on /dev/mapper/control.
 *
 *   dm-table create NAME DEV   a linear device over all of DEV; prints
 *                              its node, /dev/dm-MINOR (devtmpfs makes it)
 *   dm-table error NAME        swaps the table for `error` of the same
 *                              length: suspended without flushing and
 *                              without freezing the filesystem on it (what
 *                              is dirty stays dirty), then resumed, so the
 *                              writes that follow fail with EIO
 *   dm-table suspend NAME      suspends it without flushing and without
 *                              freezing the filesystem on it: its I/O is
 *                              queued, and waits, until it is resumed (a
 *                              disk that does not answer)
 *   dm-table resume NAME       resumes it: the queued I/O goes on
 *   dm-table open NAME         prints the device's open count
 *   dm-table remove NAME       removes it: fails with EBUSY while open
 *
 * Exit: 0 done, 1 the kernel refused (the error is printed), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define BUFFER 16384

static int control = -1;

static void usage(void)
{
	fprintf(stderr,
		"usage: dm-table create NAME DEV | error NAME | suspend NAME | resume NAME | open NAME | remove NAME\n");
	exit(2);
}

/* A zeroed request for NAME in `buffer`, with room for a table after it. */
static struct dm_ioctl *request(char *buffer, const char *name, uint32_t flags)
{
	struct dm_ioctl *io = (struct dm_ioctl *)buffer;

	memset(buffer, 0, BUFFER);
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = BUFFER;
	io->data_start = sizeof(*io);
	io->flags = flags;
	snprintf(io->name, sizeof(io->name), "%s", name);
	return io;
}

static void call(unsigned long command, struct dm_ioctl *io, const char *what)
{
	if (ioctl(control, command, io) < 0) {
		fprintf(stderr, "dm-table: %s %s: %s\n", what, io->name, strerror(errno));
		exit(1);
	}
}

/* Loads one target of `type` over `sectors`, with `params`. */
static void load(const char *name, const char *type, uint64_t sectors, const char *params)
{
	char buffer[BUFFER];
	struct dm_ioctl *io = request(buffer, name, 0);
	struct dm_target_spec *spec = (struct dm_target_spec *)(buffer + sizeof(*io));

	io->target_count = 1;
	spec->sector_start = 0;
	spec->length = sectors;
	snprintf(spec->target_type, sizeof(spec->target_type), "%s", type);
	snprintf((char *)(spec + 1), BUFFER - sizeof(*io) - sizeof(*spec), "%s", params);
	call(DM_TABLE_LOAD, io, "load");
}

/* Suspends (the flags say how) and resumes: the loaded table goes live. */
static void swap_in(const char *name, uint32_t suspend_flags)
{
	char buffer[BUFFER];

	call(DM_DEV_SUSPEND, request(buffer, name, DM_SUSPEND_FLAG | suspend_flags), "suspend");
	call(DM_DEV_SUSPEND, request(buffer, name, 0), "resume");
}

static struct dm_ioctl *status(char *buffer, const char *name)
{
	struct dm_ioctl *io = request(buffer, name, 0);

	call(DM_DEV_STATUS, io, "status");
	return io;
}

/* The table's length: the `error` table must keep it. */
static uint64_t length(const char *name)
{
	char buffer[BUFFER];
	struct dm_ioctl *io = request(buffer, name, 0);
	struct dm_target_spec *spec;

	call(DM_TABLE_STATUS, io, "table");
	if (io->target_count != 1) {
		fprintf(stderr, "dm-table: %s has %u targets, not 1\n", name, io->target_count);
		exit(1);
	}
	spec = (struct dm_target_spec *)(buffer + io->data_start);
	return spec->length;
}

int main(int argc, char **argv)
{
	char buffer[BUFFER];

	if (argc < 3)
		usage();
	control = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (control < 0 && errno == ENOENT) {
		/* devtmpfs names it mapper/control; busybox's mdev is not run. */
		mkdir("/dev/mapper", 0755);
		if (mknod("/dev/mapper/control", S_IFCHR | 0600, makedev(10, 236)) == 0)
			control = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	}
	if (control < 0) {
		fprintf(stderr, "dm-table: /dev/mapper/control: %s\n", strerror(errno));
		return 1;
	}
	if (!strcmp(argv[1], "create") && argc == 4) {
		struct stat st;
		uint64_t bytes;
		char params[64];
		int fd = open(argv[3], O_RDONLY | O_CLOEXEC);
		struct dm_ioctl *io;

		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode) ||
		    ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
			fprintf(stderr, "dm-table: %s: not a block device I can size: %s\n", argv[3],
				strerror(errno));
			return 1;
		}
		close(fd);
		call(DM_DEV_CREATE, request(buffer, argv[2], 0), "create");
		snprintf(params, sizeof(params), "%u:%u 0", major(st.st_rdev), minor(st.st_rdev));
		load(argv[2], "linear", bytes >> 9, params);
		swap_in(argv[2], 0);
		io = status(buffer, argv[2]);
		printf("/dev/dm-%u\n", minor(io->dev));
		return 0;
	}
	if (argc != 3)
		usage();
	if (!strcmp(argv[1], "error")) {
		load(argv[2], "error", length(argv[2]), "");
		swap_in(argv[2], DM_NOFLUSH_FLAG | DM_SKIP_LOCKFS_FLAG);
		return 0;
	}
	if (!strcmp(argv[1], "suspend")) {
		call(DM_DEV_SUSPEND,
		     request(buffer, argv[2], DM_SUSPEND_FLAG | DM_NOFLUSH_FLAG | DM_SKIP_LOCKFS_FLAG),
		     "suspend");
		return 0;
	}
	if (!strcmp(argv[1], "resume")) {
		call(DM_DEV_SUSPEND, request(buffer, argv[2], 0), "resume");
		return 0;
	}
	if (!strcmp(argv[1], "open")) {
		printf("%d\n", status(buffer, argv[2])->open_count);
		return 0;
	}
	if (!strcmp(argv[1], "remove")) {
		call(DM_DEV_REMOVE, request(buffer, argv[2], 0), "remove");
		return 0;
	}
	usage();
	return 2;
}
