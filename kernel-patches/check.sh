#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# check.sh [SOURCE_7_3 [SOURCE_6_12]] - apply each series to a pristine
# tree of its base and run that tree's scripts/checkpatch.pl --strict on
# every patch (not the cover letter).
#
#   7.3  (primary):  series        on Debian's linux-source-7.3
#   6.12 (backport): 6.12/series   on Debian's linux-source-6.12
#
# A SOURCE is an extracted tree (hard-linked or copied, never modified)
# or a .tar.xz.
# Default for each base: the bench's pristine extraction under
# ${UMW_CACHE:-$HOME/.cache/umount-wait}/src/linux-source-VERSION if it
# exists, else /usr/src/linux-source-VERSION.tar.xz (ci/setup installs
# both). The patches are applied by apply.sh itself, run from a copy of
# the series directory.
#
# Prints one line per patch with its verdict and exits non-zero if a
# source is missing, a patch does not apply, or checkpatch reports an
# error or a warning.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${UMW_CACHE:-$HOME/.cache/umount-wait}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/umw-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail=0

# default_source VERSION: where the pristine tree of VERSION is found
default_source() {
	if [ -f "$cache/src/linux-source-$1/Makefile" ]; then
		echo "$cache/src/linux-source-$1"
	else
		echo "/usr/src/linux-source-$1.tar.xz"
	fi
}

# checkpatch_line TREE LABEL PATCH: one verdict line for PATCH
checkpatch_line() {
	out=$("$1/scripts/checkpatch.pl" --strict --root="$1" "$3" 2>&1) || true
	total=$(printf '%s\n' "$out" | grep '^total:' | tail -n 1)
	errors=$(printf '%s\n' "$total" | sed -n 's/^total: \([0-9]*\) errors.*/\1/p')
	warnings=$(printf '%s\n' "$total" | sed -n 's/.* \([0-9]*\) warnings.*/\1/p')
	checks=$(printf '%s\n' "$total" | sed -n 's/.* \([0-9]*\) checks.*/\1/p')
	if [ -z "$errors" ] || [ -z "$warnings" ]; then
		printf '%s\n' "$out"
		echo "FAIL $2: applies; no checkpatch summary"
		fail=1
	elif [ "$errors" -ne 0 ] || [ "$warnings" -ne 0 ]; then
		printf '%s\n' "$out"
		echo "FAIL $2: applies; $errors errors, $warnings warnings, $checks checks"
		fail=1
	else
		echo "ok   $2: applies; $errors errors, $warnings warnings, $checks checks"
	fi
}

# check_series VERSION SERIES_DIR SOURCE
check_series() {
	version=$1
	dir=$2
	src=$3
	tree=$tmp/$version/linux
	copy=$tmp/$version/series
	mkdir -p "$tree" "$copy"

	if [ -d "$src" ]; then
		# Hard links where the file system allows (seconds, not a copy of
		# 1.5 GB): `git apply` writes a new file for every file it
		# patches and checkpatch only reads, so the source stays pristine.
		rmdir "$tree"
		cp -al "$src" "$tree" 2>/dev/null || {
			rm -rf "$tree"
			cp -a "$src" "$tree"
		}
	elif [ -f "$src" ]; then
		tar -xf "$src" -C "$tree" --strip-components=1
	else
		echo "FAIL $version: no Linux $version source: $src is missing (run ci/setup)"
		fail=1
		return
	fi
	base=$(sed -n 's/^VERSION = //p; s/^PATCHLEVEL = //p; s/^SUBLEVEL = //p' \
		"$tree/Makefile" | paste -sd.)
	case "$base" in
	"$version" | "$version".*) ;;
	*)
		echo "FAIL $version: $src is Linux $base, not $version"
		fail=1
		return
		;;
	esac
	echo "check.sh: $version: pristine Linux $base from $src"

	# apply.sh applies the series next to it: give it a copy of this one
	cp "$here/apply.sh" "$dir/series" "$copy/"
	while read -r patch rest; do
		case "$patch" in '' | '#'*) continue ;; esac
		[ -f "$dir/$patch" ] && cp "$dir/$patch" "$copy/"
	done <"$dir/series"
	if ! out=$("$copy/apply.sh" "$tree" 2>&1); then
		printf '%s\n' "$out"
		echo "FAIL $version: the series does not apply (see above)"
		fail=1
		return
	fi

	while read -r patch rest; do
		case "$patch" in '' | '#'*) continue ;; esac
		checkpatch_line "$tree" "$(printf '%-4s %s' "$version" "$patch")" "$dir/$patch"
	done <"$dir/series"
}

check_series 7.3 "$here" "${1:-$(default_source 7.3)}"
check_series 6.12 "$here/6.12" "${2:-$(default_source 6.12)}"

if [ "$fail" -ne 0 ]; then
	echo "check.sh: FAILED" >&2
	exit 1
fi
echo "check.sh: both series apply and pass checkpatch --strict"
