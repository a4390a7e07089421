#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# build-selftest.sh TREE OUT - build the UMOUNT_WAIT kselftest from a
# patched TREE as one static binary, for a busybox initramfs.
#
# OUT is the binary's path, or an existing directory to put
# umount_wait_test in. Needs only gcc and the host's libc headers: the
# test defines UMOUNT_WAIT itself where <sys/mount.h> lacks it, so no
# `make headers` is needed. CC and EXTRA_CFLAGS may be set.
set -eu

die() {
	echo "build-selftest.sh: ERROR: $*" >&2
	exit 1
}

[ $# -eq 2 ] || die "usage: build-selftest.sh TREE OUT"
tree=$1
out=$2
src=$tree/tools/testing/selftests/filesystems/umount_wait/umount_wait_test.c
[ -f "$src" ] || die "$src not found: is the series applied to $tree?"
[ -d "$out" ] && out=${out%/}/umount_wait_test

${CC:-gcc} -static -O2 -g -Wall -Werror ${EXTRA_CFLAGS:-} \
	-I "$tree/tools/testing/selftests" \
	-o "$out" "$src" ||
	die "compiling $src failed"
echo "build-selftest.sh: built $out"
