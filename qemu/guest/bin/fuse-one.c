// SPDX-License-Identifier: GPL-2.0
/*
 * fuse-one: a FUSE filesystem with one file, for the fault suite: a daemon
 * that can be killed or stopped while umount-wait waits. No libfuse (not
 * static here): the protocol straight on /dev/fuse.
 *
 *   fuse-one [-w] [-d DELAY_MS] [-l LOG] MOUNTPOINT
 *
 * Mounts at MOUNTPOINT (root only) a directory holding one regular file,
 * `f`, that accepts writes (and forgets them) and reads as empty; prints the
 * daemon's pid once mounted and serves in the background until the
 * connection ends (unmounted: FUSE_DESTROY, or the read fails). Every name
 * looked up in the directory is that file (a holder may call it `f.0`).
 *
 *   -w  writeback cache (FUSE_WRITEBACK_CACHE, when the kernel offers it):
 *       writes stay dirty in the page cache until the kernel writes them
 *       back (at the last close of the file, at the latest).
 *   -d  each WRITE is answered DELAY_MS after it arrived.
 *   -l  each request's name and arrival time (CLOCK_MONOTONIC, in µs) is
 *       appended to LOG, one line each: `WRITE 1234567`.
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
#include <time.h>
#include <unistd.h>

#define FILE_ID 2

static int dev;
static int writeback_cache;
static int write_delay_ms;
static int log_fd = -1;
/* The file's size: the end of the furthest write. */
static uint64_t file_size;

static void log_request(uint32_t opcode)
{
	static const char * const names[] = {
		[FUSE_WRITE] = "WRITE", [FUSE_FLUSH] = "FLUSH",
		[FUSE_RELEASE] = "RELEASE", [FUSE_FSYNC] = "FSYNC",
		[FUSE_FORGET] = "FORGET", [FUSE_BATCH_FORGET] = "BATCH_FORGET",
		[FUSE_DESTROY] = "DESTROY", [FUSE_SETATTR] = "SETATTR",
		[FUSE_GETATTR] = "GETATTR", [FUSE_LOOKUP] = "LOOKUP",
		[FUSE_OPEN] = "OPEN", [FUSE_READ] = "READ",
	};
	const char *name = opcode < sizeof(names) / sizeof(names[0]) && names[opcode] ?
				   names[opcode] : "OTHER";
	struct timespec ts;
	char line[64];
	int n;

	if (log_fd < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "%s %lld\n", name,
		     (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	(void)write(log_fd, line, n);
}

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
	if (node == FILE_ID) {
		attr->size = file_size;
		attr->blocks = (file_size + 511) / 512;
	}
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
		log_request(in->opcode);
		switch (in->opcode) {
		case FUSE_INIT: {
			const struct fuse_init_in *init = arg;
			struct fuse_init_out out = {
				.major = FUSE_KERNEL_VERSION,
				.minor = FUSE_KERNEL_MINOR_VERSION,
				.max_readahead = 1 << 16,
				.max_write = 1 << 16,
				.max_background = 16,
				.congestion_threshold = 12,
			};

			if (writeback_cache && (init->flags & FUSE_WRITEBACK_CACHE))
				out.flags |= FUSE_WRITEBACK_CACHE;
			reply(in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_LOOKUP: {
			struct fuse_entry_out out = { .nodeid = FILE_ID, .generation = 1 };

			attr_of(FILE_ID, &out.attr);
			reply(in->unique, 0, &out, sizeof(out));
			break;
		}
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
			const struct fuse_write_in *write_in = arg;
			struct fuse_write_out out = { .size = write_in->size };

			if (write_in->offset + write_in->size > file_size)
				file_size = write_in->offset + write_in->size;
			if (write_delay_ms)
				usleep(write_delay_ms * 1000);
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
	int opt;

	while ((opt = getopt(argc, argv, "wd:l:")) != -1) {
		switch (opt) {
		case 'w':
			writeback_cache = 1;
			break;
		case 'd':
			write_delay_ms = atoi(optarg);
			break;
		case 'l':
			log_fd = open(optarg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (log_fd < 0) {
				fprintf(stderr, "fuse-one: %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1) {
usage:
		fprintf(stderr, "usage: fuse-one [-w] [-d DELAY_MS] [-l LOG] MOUNTPOINT\n");
		return 1;
	}
	argv += optind - 1;
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
