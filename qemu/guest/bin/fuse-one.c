// SPDX-License-Identifier: GPL-2.0
/*
 * fuse-one: a FUSE filesystem with one file, for the fault suite: a daemon
 * that can be killed or stopped while umount-wait waits. No libfuse (not
 * static here): the protocol straight on /dev/fuse.
 *
 *   fuse-one MOUNTPOINT
 *
 * Mounts at MOUNTPOINT (root only) a directory holding one regular file,
 * `f`, that accepts writes (and forgets them) and reads as empty; prints the
 * daemon's pid once mounted and serves in the background until the
 * connection ends (unmounted: FUSE_DESTROY, or the read fails).
 *
 * Exit: 0 mounted (the daemon goes on), 1 failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FILE_ID 2

static int dev;

static void reply(uint64_t unique, int error, const void *body, size_t size)
{
	struct fuse_out_header out = {
		.len = sizeof(out) + (error ? 0 : size),
		.error = -error,
		.unique = unique,
	};
	struct iovec iov[2] = {
		{ &out, sizeof(out) },
		{ (void *)body, error ? 0 : size },
	};

	/* ENOENT: the request was interrupted meanwhile; nothing to do. */
	(void)writev(dev, iov, body && !error ? 2 : 1);
}

static void attr_of(uint64_t node, struct fuse_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->ino = node;
	attr->nlink = 1;
	attr->blksize = 4096;
	attr->mode = node == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0666;
}

static void serve(void)
{
	static char buffer[1 << 20 | 4096];

	for (;;) {
		ssize_t n = read(dev, buffer, sizeof(buffer));
		struct fuse_in_header *in = (struct fuse_in_header *)buffer;
		void *arg = buffer + sizeof(*in);

		if (n < 0 && (errno == EINTR || errno == ENOENT || errno == EAGAIN))
			continue;
		if (n < (ssize_t)sizeof(*in))
			exit(0);
		switch (in->opcode) {
		case FUSE_INIT: {
			struct fuse_init_out out = {
				.major = FUSE_KERNEL_VERSION,
				.minor = FUSE_KERNEL_MINOR_VERSION,
				.max_readahead = 1 << 16,
				.max_write = 1 << 16,
				.max_background = 16,
				.congestion_threshold = 12,
			};

			reply(in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_LOOKUP:
			if (strcmp(arg, "f") == 0) {
				struct fuse_entry_out out = { .nodeid = FILE_ID, .generation = 1 };

				attr_of(FILE_ID, &out.attr);
				reply(in->unique, 0, &out, sizeof(out));
			} else {
				reply(in->unique, ENOENT, NULL, 0);
			}
			break;
		case FUSE_GETATTR:
		case FUSE_SETATTR: {
			struct fuse_attr_out out = { 0 };

			attr_of(in->nodeid, &out.attr);
			reply(in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_OPEN:
		case FUSE_OPENDIR: {
			struct fuse_open_out out = { .fh = 1 };

			reply(in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_WRITE: {
			struct fuse_write_out out = { .size = ((struct fuse_write_in *)arg)->size };

			reply(in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_READ:
		case FUSE_READDIR:
			reply(in->unique, 0, "", 0);
			break;
		case FUSE_STATFS: {
			struct fuse_statfs_out out = { 0 };

			out.st.bsize = 4096;
			out.st.namelen = 255;
			reply(in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_FLUSH:
		case FUSE_RELEASE:
		case FUSE_RELEASEDIR:
		case FUSE_FSYNC:
		case FUSE_ACCESS:
			reply(in->unique, 0, NULL, 0);
			break;
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break;
		case FUSE_DESTROY:
			reply(in->unique, 0, NULL, 0);
			exit(0);
		default:
			reply(in->unique, ENOSYS, NULL, 0);
		}
	}
}

int main(int argc, char **argv)
{
	char options[128];
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: fuse-one MOUNTPOINT\n");
		return 1;
	}
	dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		fprintf(stderr, "fuse-one: /dev/fuse: %s\n", strerror(errno));
		return 1;
	}
	snprintf(options, sizeof(options), "fd=%d,rootmode=40000,user_id=0,group_id=0", dev);
	/* The mount sends FUSE_INIT without waiting for its answer: the child
	 * reads it once the connection exists. */
	if (mount("fuse-one", argv[1], "fuse", MS_NOSUID | MS_NODEV, options) < 0) {
		fprintf(stderr, "fuse-one: mount %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		umount2(argv[1], MNT_DETACH);
		return 1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		serve();
	}
	printf("%d\n", pid);
	return 0;
}
