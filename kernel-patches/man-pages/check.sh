#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# check.sh MAN_PAGES_TREE - apply 0001-umount.2-Document-UMOUNT_WAIT.patch
# to a copy of umount.2 from a pristine man-pages tree (man/man2/umount.2,
# or man2/umount.2 in older trees; the tree is not modified), lint the
# page before and after with
#
#   mandoc -Tlint
#   groff -ww -man -Tutf8                              (the plain check)
#   groff -t -ww -man -Tutf8 -rCHECKSTYLE=3 -rLL=78n   (man-pages' own flags)
#
# and fail on any warning the patched page has and the pristine one has
# not (compared without line numbers). Then extract the EXAMPLES program
# as man-pages' `make build-ex-src` does (sed, mandoc -Tutf8) and compile
# it with gcc -Wall -Wextra -Werror against the host's headers plus the
# UMOUNT_WAIT line of the kernel series' uapi hunk.
#
# Needs git, mandoc, groff, gcc. Exit 0: no new warning, the program
# compiles.
set -eu

die() {
	echo "check.sh: ERROR: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: check.sh MAN_PAGES_TREE"
here=$(cd "$(dirname "$0")" && pwd)
patch=$here/0001-umount.2-Document-UMOUNT_WAIT.patch
tree=$1
if [ -f "$tree/man/man2/umount.2" ]; then
	page=man/man2/umount.2
	strip=1
elif [ -f "$tree/man2/umount.2" ]; then
	page=man2/umount.2
	strip=2
else
	die "no man/man2/umount.2 or man2/umount.2 in $tree"
fi
for tool in git mandoc groff gcc; do
	command -v $tool >/dev/null || die "$tool not found (apt-get install $tool)"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/old/$(dirname $page)" "$tmp/new/$(dirname $page)"
cp "$tree/$page" "$tmp/old/$page"
cp "$tree/$page" "$tmp/new/$page"
(cd "$tmp/new" && git apply -p$strip "$patch") ||
	die "$(basename "$patch") does not apply to $tree/$page"
echo "check.sh: $(basename "$patch") applies to $tree/$page"

# lint NAME STREAMS COMMAND...: run COMMAND (ending with the page) on the
# old and the new page; its messages are on stderr (STREAMS=err: groff,
# whose stdout is the rendered page) or on both (all: mandoc -Tlint);
# print the new page's messages the old one has not.
status=0
lint() {
	name=$1
	streams=$2
	shift 2
	for side in old new; do
		if [ "$streams" = all ]; then
			(cd "$tmp/$side" && "$@" "$page" 2>&1 || true)
		else
			(cd "$tmp/$side" && "$@" "$page" 2>&1 >/dev/null || true)
		fi | sed -E 's/:[0-9]+(:[0-9]+)?: /: /' | sort >"$tmp/$name.$side"
	done
	added=$(comm -13 "$tmp/$name.old" "$tmp/$name.new")
	if [ -n "$added" ]; then
		echo "check.sh: $name: new warnings:"
		echo "$added" | sed 's/^/  /'
		status=1
	else
		echo "check.sh: $name: no new warning ($(wc -l <"$tmp/$name.new") of the pristine page's own)"
	fi
}
lint "mandoc -Tlint" all mandoc -Tlint
lint "groff -ww" err groff -ww -man -Tutf8
lint "groff man-pages flags" err groff -t -ww -man -Tutf8 -rCHECKSTYLE=3 -rLL=78n

# The EXAMPLES program, as man-pages' share/mk/build/examples/src.mk gets it.
src=$(sed -n 's/^\.\\" SRC BEGIN (\(.*\))$/\1/p' "$tmp/new/$page")
[ -n "$src" ] || die "no SRC BEGIN marker in the patched page"
for name in $src; do
	sed -n -e '/^\.TH/,/^\.SH/{/^\.SH/!p}' -e '/^\.SH EXAMPLES/p' \
		-e "/^\... SRC BEGIN ($name)\$/,/^\... SRC END\$/p" "$tmp/new/$page" |
		mandoc -Tutf8 | head -n-2 | sed '/^[^ ]/d' | sed 's/^       //' >"$tmp/$name"
done
mkdir -p "$tmp/include/linux"
define=$(sed -n '/^+++ b\/include\/uapi\/linux\/mount.h/,/^diff/s/^+\(#define UMOUNT_WAIT\b.*\)/\1/p' \
	"$here"/../0*.patch | head -n1)
[ -n "$define" ] || die "no #define UMOUNT_WAIT in the kernel series' uapi hunk"
printf '#include_next <linux/mount.h>\n#ifndef UMOUNT_WAIT\n%s\n#endif\n' "$define" \
	>"$tmp/include/linux/mount.h"
for name in $src; do
	if gcc -Wall -Wextra -Werror -I "$tmp/include" -o "$tmp/a.out" "$tmp/$name" 2>"$tmp/gcc.log"; then
		echo "check.sh: EXAMPLES $name: compiles (gcc -Wall -Wextra -Werror)"
	else
		echo "check.sh: EXAMPLES $name: does not compile:"
		sed 's/^/  /' "$tmp/gcc.log"
		status=1
	fi
done
exit $status
