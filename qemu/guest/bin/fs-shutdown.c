// SPDX-License-Identifier: GPL-2.0
/*
 * fs-shutdown: the shutdown ioctl Android init sends to /data before the
 * reboot (qemu/guest/lib/android-init-reboot.sh, step 7).
 *
 *   fs-shutdown DIR f2fs|ext4 FLAG
 *
 * Opens DIR read-only and issues F2FS_IOC_SHUTDOWN or EXT4_IOC_SHUTDOWN on
 * it. FLAG, by the names of the kernel's headers:
 *   f2fs: fullsync, metasync, nosync, metaflush, need-fsck
 *         (F2FS_GOING_DOWN_*; reboot.cpp passes fullsync)
 *   ext4: default, logflush, nologflush
 *         (EXT4_GOING_FLAGS_*; reboot.cpp passes default)
 * Both ioctls have the same number, _IOR('X', 125, __u32), XFS's
 * GOINGDOWN; the filesystem under DIR decides what it means, so the type
 * named here only chooses the flag's table.
 *
 * Exit: 0 the ioctl succeeded, 1 it failed (errno printed), 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/types.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define FS_SHUTDOWN_IOC _IOR('X', 125, __u32)

struct flag {
	const char *name;
	__u32 value;
};

static const struct flag f2fs_flags[] = {
	{ "fullsync", 0x0 },	/* F2FS_GOING_DOWN_FULLSYNC */
	{ "metasync", 0x1 },	/* F2FS_GOING_DOWN_METASYNC */
	{ "nosync", 0x2 },	/* F2FS_GOING_DOWN_NOSYNC */
	{ "metaflush", 0x3 },	/* F2FS_GOING_DOWN_METAFLUSH */
	{ "need-fsck", 0x4 },	/* F2FS_GOING_DOWN_NEED_FSCK */
	{ NULL, 0 },
};

static const struct flag ext4_flags[] = {
	{ "default", 0x0 },	/* EXT4_GOING_FLAGS_DEFAULT */
	{ "logflush", 0x1 },	/* EXT4_GOING_FLAGS_LOGFLUSH */
	{ "nologflush", 0x2 },	/* EXT4_GOING_FLAGS_NOLOGFLUSH */
	{ NULL, 0 },
};

static int usage(void)
{
	fprintf(stderr, "usage: fs-shutdown DIR f2fs|ext4 FLAG\n");
	return 2;
}

static const struct flag *find_flag(const struct flag *table, const char *name)
{
	for (; table->name; table++)
		if (!strcmp(table->name, name))
			return table;
	return NULL;
}

int main(int argc, char **argv)
{
	const struct flag *table, *flag;
	__u32 value;
	int fd;

	if (argc != 4)
		return usage();
	if (!strcmp(argv[2], "f2fs"))
		table = f2fs_flags;
	else if (!strcmp(argv[2], "ext4"))
		table = ext4_flags;
	else
		return usage();
	flag = find_flag(table, argv[3]);
	if (!flag)
		return usage();

	do
		fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		fprintf(stderr, "fs-shutdown: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	value = flag->value;
	if (ioctl(fd, FS_SHUTDOWN_IOC, &value)) {
		fprintf(stderr, "fs-shutdown: %s shutdown %s (%s): %s\n", argv[2],
			argv[1], flag->name, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}
