#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# apply.sh TREE - apply the UMOUNT_WAIT series to an extracted kernel tree.
#
# The series is chosen by the tree's version (VERSION.PATCHLEVEL of its
# Makefile): the `series` file next to this script if its `# base:` line
# names that version (7.3, the primary series), else VERSION/series below
# it (6.12/series, the LTS backport). Any other version is refused.
#
# Patches are applied in the order of that `series` file, each one
# checked with `git apply --check` first. The first patch
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

# base_of SERIES_FILE: the version its `# base:` line names
base_of() {
	sed -n 's/^# base: \([0-9][0-9.]*\).*/\1/p' "$1" | head -n 1
}

version=$(sed -n 's/^VERSION = //p; s/^PATCHLEVEL = //p' "$tree/Makefile" | paste -sd.)
dir=
for candidate in "$here" "$here/$version"; do
	if [ -f "$candidate/series" ] && [ "$(base_of "$candidate/series")" = "$version" ]; then
		dir=$candidate
		break
	fi
done
if [ -z "$dir" ]; then
	have=$(for s in "$here/series" "$here"/*/series; do
		[ -f "$s" ] && base_of "$s"
	done | paste -sd' ')
	die "no series for Linux $version ($tree); series exist for: ${have:-none}"
fi

# Without this, `git apply` run inside a directory of some other git
# repository would take paths relative to that repository's top.
GIT_CEILING_DIRECTORIES=$(dirname "$tree")
export GIT_CEILING_DIRECTORIES

n=0
while read -r patch rest; do
	case "$patch" in '' | '#'*) continue ;; esac
	[ -f "$dir/$patch" ] || die "series names $patch, which does not exist"
	if ! err=$(cd "$tree" && git apply --check "$dir/$patch" 2>&1); then
		printf '%s\n' "$err" >&2
		if (cd "$tree" && git apply --check --reverse "$dir/$patch" \
			2>/dev/null); then
			die "$patch does not apply to $tree: it looks already applied"
		fi
		die "$patch does not apply to $tree (rejected, see above)"
	fi
	(cd "$tree" && git apply "$dir/$patch") ||
		die "$patch failed to apply to $tree"
	n=$((n + 1))
	echo "applied $patch"
done <"$dir/series"

[ "$n" -gt 0 ] || die "series lists no patches"
echo "apply.sh: $n patches of the Linux $version series applied to $tree"
