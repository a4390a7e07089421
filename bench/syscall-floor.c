// SPDX-License-Identifier: GPL-2.0
/*
 * syscall-floor: the fallback path's system calls for N targets, replayed
 * in a C loop with nothing else (no parsing, no table, no report), to tell
 * what the mechanism costs from what the command adds (bench/README.md,
 * "Time against the number of mounts").
 *
 *   syscall-floor DIR N MASK
 *
 * Unmounts DIR/p{N-1} ... DIR/p0 (mounts of their own), each as
 * umount-wait's fallback does, bit by bit of MASK left out:
 *   1   the resolution's statx(2) of the path (its mount id)
 *   2   the resolution's openat2(RESOLVE_NO_SYMLINKS) of the path
 *   4   the statx(2) of the root handle (the mount checked)
 *   8   the statx(2) of the name in the parent right before umount2
 *   16  the fchdir(2)s (paths instead)
 *   32  the poll(2) of the mount table
 *   64  the inotify watch itself
 *   128 the handles too: umount2 by path alone (with 64: what umount(2)
 *       costs; without: that plus the watch, the mechanism's floor)
 * Prints the CPU time it used (getrusage). Root only; build with
 * `gcc -O2 -o syscall-floor bench/syscall-floor.c`.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <poll.h>
#include <unistd.h>
#include <fcntl.h>
static long o2(int dfd, const char *p, int flags, int res) {
	struct open_how how = { .flags = flags, .resolve = res };
	return syscall(SYS_openat2, dfd, p, &how, sizeof(how));
}
int main(int argc, char **argv)
{
	int n = atoi(argv[2]), mask = atoi(argv[3]), in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char path[4096], buf[4096];
	struct statx sx; struct rusage ru;
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct pollfd pfd = { .fd = in, .events = POLLIN };
	for (int i = n - 1; i >= 0; i--) {
		char name[32];
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(path, sizeof(path), "%s/%s", argv[1], name);
		if (mask & 128) {
			if (!(mask & 64))
				inotify_add_watch(in, path, IN_UNMOUNT | IN_ONLYDIR);
			if (umount2(path, 0))
				perror("umount2");
			while (read(in, buf, sizeof(buf)) > 0)
				;
			continue;
		}
		if (!(mask & 1)) statx(AT_FDCWD, path, AT_STATX_DONT_SYNC|AT_NO_AUTOMOUNT, STATX_TYPE|STATX_MNT_ID, &sx);
		if (!(mask & 2)) { int f = o2(AT_FDCWD, path, O_PATH|O_CLOEXEC, RESOLVE_NO_SYMLINKS); close(f); }
		int parent = o2(AT_FDCWD, argv[1], O_PATH|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY, RESOLVE_NO_SYMLINKS);
		int root = openat(parent, name, O_PATH|O_NOFOLLOW|O_CLOEXEC);
		if (!(mask & 4)) statx(root, "", AT_STATX_DONT_SYNC|AT_NO_AUTOMOUNT|AT_EMPTY_PATH, STATX_TYPE|STATX_MNT_ID, &sx);
		if (mask & 64)
			;
		else if (!(mask & 16)) { fchdir(root); inotify_add_watch(in, ".", IN_UNMOUNT|IN_ONLYDIR); fchdir(cwd); }
		else inotify_add_watch(in, path, IN_UNMOUNT|IN_ONLYDIR);
		close(root);
		if (!(mask & 8)) statx(parent, name, AT_STATX_DONT_SYNC|AT_SYMLINK_NOFOLLOW|AT_NO_AUTOMOUNT, STATX_TYPE|STATX_MNT_ID, &sx);
		if (!(mask & 16)) { fchdir(parent); if (umount2(name, 0)) perror("umount2"); fchdir(cwd); }
		else if (umount2(path, 0)) perror("umount2");
		close(parent);
		while (read(in, buf, sizeof(buf)) > 0);
		if (!(mask & 32)) poll(&pfd, 1, 0);
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("mask=%d cpu %.1f ms\n", mask,
	       (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
	return 0;
}
