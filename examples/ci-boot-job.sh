#!/usr/bin/env bash
# A CI job step: boot a VM image, run its tests, and check that the image
# is clean before the next step uses it (caches it, boots it again, reads
# results out of it).
#
#   ci-boot-job.sh KERNEL INITRD IMAGE OUT
#
# Boots KERNEL and INITRD under QEMU with IMAGE (a raw ext4 image) as the
# VM's first virtio disk, the serial console logged to OUT/console.log. The
# VM runs its tests, prints `CI-TESTS status=N`, and ends with
# ci-vm-shutdown.sh (umount-wait --all, then poweroff), which prints
# `CI-VM-SHUTDOWN status=N`. Then, on the host, with the VM gone:
#   1. the tests' status, from the console;
#   2. the shutdown: umount-wait's status must be 0, or 64 (something was
#      left read-only, and the report on the console names it);
#   3. the image, read only: no journal to replay, state "clean",
#      `e2fsck -fn` finds nothing;
#   4. the files named in CI_RESULTS copied out of the image into OUT
#      (debugfs, read only), for the job's artifacts.
#
# Exit status, the highest that applies:
#   0  tests passed, image clean, results in OUT
#   1  usage, or a tool or QEMU could not start: nothing booted, nothing
#      checked
#   2  the tests failed or did not finish (no CI-TESTS line), or a file of
#      CI_RESULTS is missing from the image
#   3  the VM did not shut down as it should: QEMU failed or hit the time
#      limit, no CI-VM-SHUTDOWN line, or umount-wait's status not 0 or 64
#   4  the image is not clean: do not cache it or boot it again (the
#      results in OUT were read without a journal replay: they may be
#      stale)
# umount-wait's 64 is accepted here because step 3 decides: with --all it
# means the filesystems did not all end alike (each one's outcome is in the
# report on the console), and what did not shut down was made read-only
# where umount-wait could; an image left dirty fails step 3.
#
# Environment (defaults in brackets):
#   QEMU        [qemu-system-x86_64]
#   QEMU_ACCEL  [tcg] (kvm where KVM guests work)
#   QEMU_MEM    [512M]
#   APPEND      more kernel command line []
#   TIMEOUT     seconds the VM may run [600]
#   CI_RESULTS  space-separated files in the image to copy out [/ci/results]

set -uo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 KERNEL INITRD IMAGE OUT" >&2
	exit 1
fi
kernel=$1 initrd=$2 image=$3 out=$4
for file in "$kernel" "$initrd" "$image"; do
	[ -f "$file" ] || {
		echo "ci-boot-job: $file: no such file; nothing was booted" >&2
		exit 1
	}
done
for tool in "${QEMU:-qemu-system-x86_64}" timeout dumpe2fs e2fsck debugfs; do
	command -v "$tool" >/dev/null || {
		echo "ci-boot-job: $tool not found; nothing was booted" >&2
		exit 1
	}
done
mkdir -p "$out" || exit 1
console=$out/console.log
# An earlier run's console must not answer for this one.
rm -f "$console"

# The VM. -no-reboot: the VM's reboot or poweroff ends QEMU.
timeout -s KILL "${TIMEOUT:-600}" "${QEMU:-qemu-system-x86_64}" \
	-accel "${QEMU_ACCEL:-tcg}" -m "${QEMU_MEM:-512M}" -smp 2 \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 ${APPEND:-}" \
	-drive "file=$image,format=raw,if=virtio" \
	-nographic -no-reboot -serial "file:$console" -monitor none \
	</dev/null >"$out/qemu.log" 2>&1
qemu_rc=$?
[ -f "$console" ] || {
	echo "ci-boot-job: QEMU did not start (exit $qemu_rc, $out/qemu.log); the image was not booted" >&2
	exit 1
}

rc=0
worst() { [ "$1" -gt $rc ] && rc=$1; }
# The status=N of the console's last line starting with PREFIX (-a: a
# serial console can carry stray bytes).
status_of() {
	tr -d '\r' <"$console" | grep -a "^$1 " | tail -n 1 | sed -n 's/.*status=\([0-9]*\).*/\1/p'
}

# 1. The tests.
tests=$(status_of CI-TESTS)
case $tests in
0) echo "ci-boot-job: tests passed" ;;
'') echo "ci-boot-job: no CI-TESTS line: the tests did not finish" && worst 2 ;;
*) echo "ci-boot-job: tests failed (status $tests)" && worst 2 ;;
esac

# 2. The shutdown.
case $qemu_rc in
0) ;;
137)
	echo "ci-boot-job: the VM hit the time limit of ${TIMEOUT:-600} s"
	worst 3
	;;
*)
	echo "ci-boot-job: QEMU exited $qemu_rc ($out/qemu.log)"
	worst 3
	;;
esac
shutdown=$(status_of CI-VM-SHUTDOWN)
case $shutdown in
0) echo "ci-boot-job: every filesystem shut down" ;;
64) echo "ci-boot-job: not every filesystem shut down, those left read-only where possible (the report is in $console)" ;;
'') echo "ci-boot-job: no CI-VM-SHUTDOWN line: the VM did not shut down through umount-wait" && worst 3 ;;
*) echo "ci-boot-job: umount-wait exited $shutdown: shutdown not confirmed" && worst 3 ;;
esac

# 3. The image, read only.
header=$(dumpe2fs -h "$image" 2>/dev/null)
unclean=
grep -q '^Filesystem features:.*needs_recovery' <<<"$header" && unclean="$unclean, journal needs recovery"
state=$(sed -n 's/^Filesystem state: *//p' <<<"$header")
[ "$state" = clean ] || unclean="$unclean, state \"$state\""
e2fsck -fn "$image" >"$out/e2fsck.log" 2>&1
fsck_rc=$?
[ $fsck_rc -eq 0 ] || unclean="$unclean, e2fsck -fn exit $fsck_rc ($out/e2fsck.log)"
if [ -n "$unclean" ]; then
	echo "ci-boot-job: IMAGE NOT CLEAN: ${unclean#, }; do not cache or reuse it"
	worst 4
else
	echo "ci-boot-job: image clean"
fi

# 4. The results, out of the image (debugfs reads without replaying).
set -f
for file in ${CI_RESULTS:-/ci/results}; do
	copy=$out/$(basename "$file")
	rm -f "$copy"
	debugfs -R "dump $file $copy" "$image" >/dev/null 2>&1
	if [ -s "$copy" ]; then
		echo "ci-boot-job: $file copied to $copy"
	else
		echo "ci-boot-job: $file not in the image"
		worst 2
	fi
done
exit $rc
