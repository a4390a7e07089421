#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# apply.sh TREE - apply the UMOUNT_WAIT series to an extracted kernel tree.
#
# Patches are applied in the order of the `series` file next to this
# script, each one checked with `git apply --check` first. The first patch
# that does not apply cleanly stops everything with an error naming it;
# patches applied before it stay applied. TREE does not have to be a git
# repository, and a git repository around TREE is never used.
set -eu

die() {
	printf '\napply.sh: ERROR: %s\n\n' "$*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: apply.sh TREE"
here=$(cd "$(dirname "$0")" && pwd)
tree=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
[ -f "$tree/Makefile" ] && [ -d "$tree/fs" ] ||
	die "$tree does not look like a kernel source tree"
[ -f "$here/series" ] || die "missing $here/series"

# Without this, `git apply` run inside a directory of some other git
# repository would take paths relative to that repository's top.
GIT_CEILING_DIRECTORIES=$(dirname "$tree")
export GIT_CEILING_DIRECTORIES

n=0
while read -r patch rest; do
	case "$patch" in '' | '#'*) continue ;; esac
	[ -f "$here/$patch" ] || die "series names $patch, which does not exist"
	if ! err=$(cd "$tree" && git apply --check "$here/$patch" 2>&1); then
		printf '%s\n' "$err" >&2
		if (cd "$tree" && git apply --check --reverse "$here/$patch" \
			2>/dev/null); then
			die "$patch does not apply to $tree: it looks already applied"
		fi
		die "$patch does not apply to $tree (rejected, see above)"
	fi
	(cd "$tree" && git apply "$here/$patch") ||
		die "$patch failed to apply to $tree"
	n=$((n + 1))
	echo "applied $patch"
done <"$here/series"

[ "$n" -gt 0 ] || die "series lists no patches"
echo "apply.sh: $n patches applied to $tree"
