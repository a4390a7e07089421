#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# check.sh [SOURCE] - apply the series to a pristine tree and run
# scripts/checkpatch.pl --strict on every patch (not the cover letter).
#
# SOURCE is an extracted tree (copied, never modified) or a .tar.xz.
# Default: the bench's pristine extraction under
# ${UMW_CACHE:-$HOME/.cache/umount-wait}/src/linux-source-6.12 if it
# exists, else /usr/src/linux-source-6.12.tar.xz.
#
# Prints one line per patch with its verdict and exits non-zero if any
# patch fails to apply or checkpatch reports an error or a warning.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${UMW_CACHE:-$HOME/.cache/umount-wait}
src=${1:-}
if [ -z "$src" ]; then
	if [ -f "$cache/src/linux-source-6.12/Makefile" ]; then
		src=$cache/src/linux-source-6.12
	else
		src=/usr/src/linux-source-6.12.tar.xz
	fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/umw-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "check.sh: pristine tree from $src"
if [ -d "$src" ]; then
	cp -a "$src" "$tmp/linux"
elif [ -f "$src" ]; then
	mkdir "$tmp/linux"
	tar -xf "$src" -C "$tmp/linux" --strip-components=1
else
	echo "check.sh: ERROR: no such tree or tarball: $src" >&2
	exit 1
fi

"$here/apply.sh" "$tmp/linux"

fail=0
while read -r patch rest; do
	case "$patch" in '' | '#'*) continue ;; esac
	out=$("$tmp/linux/scripts/checkpatch.pl" --strict --root="$tmp/linux" \
		"$here/$patch" 2>&1) || true
	total=$(printf '%s\n' "$out" | grep '^total:' | tail -n 1)
	errors=$(printf '%s\n' "$total" | sed -n 's/^total: \([0-9]*\) errors.*/\1/p')
	warnings=$(printf '%s\n' "$total" | sed -n 's/.* \([0-9]*\) warnings.*/\1/p')
	checks=$(printf '%s\n' "$total" | sed -n 's/.* \([0-9]*\) checks.*/\1/p')
	if [ -z "$errors" ] || [ -z "$warnings" ]; then
		printf '%s\n' "$out"
		echo "FAIL $patch: no checkpatch summary"
		fail=1
	elif [ "$errors" -ne 0 ] || [ "$warnings" -ne 0 ]; then
		printf '%s\n' "$out"
		echo "FAIL $patch: $errors errors, $warnings warnings, $checks checks"
		fail=1
	else
		echo "ok   $patch: $errors errors, $warnings warnings, $checks checks"
	fi
done <"$here/series"

if [ "$fail" -ne 0 ]; then
	echo "check.sh: FAILED" >&2
	exit 1
fi
echo "check.sh: all patches apply and pass checkpatch --strict"
