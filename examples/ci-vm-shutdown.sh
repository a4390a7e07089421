#!/bin/sh
# The last step of a CI test VM, before the job reuses its disk image
# (busybox sh or any POSIX sh).
#
#   ci-vm-shutdown.sh [poweroff|reboot]
#
# A test job boots a VM image, runs its tests in it, powers the VM off and
# then uses the image again: it caches it, runs the next step on it, or
# reads the results out of it. A plain `umount -a; poweroff -f` does not
# make that safe: a process the tests left (a test server, a sandbox in a
# mount namespace of its own) keeps the filesystem alive after its mount is
# gone, and the kernel tears killed namespaces down asynchronously, after
# umount(2) has returned. The image then has a journal to replay, or worse.
# Here the VM powers off only when every filesystem is shut down, or
# read-only where something still holds it.
#
# Environment (defaults in brackets):
#   UMW          the umount-wait binary [umount-wait from PATH]
#   UMW_DEADLINE the deadline for the whole unmount [30s]
#   UMW_ARGS     more arguments for umount-wait --all, for example
#                "--exclude /scratch" []
#   STOP_PIDS    the processes to stop first; empty: every process but init
#                and this script (kill -1) []
#   STOP_GRACE   seconds between SIGTERM and SIGKILL [2]
#   POWEROFF     the last command [poweroff -f, or reboot -f for reboot]
# It prints one line for the job to read on the serial console:
#   CI-VM-SHUTDOWN status=<umount-wait's exit code>
# 0: every filesystem shut down; 64: not all did (the report before it
# says what happened to each: those left were made read-only where
# possible); anything else: the image must not be trusted.
# Run it from the VM's init or its console, not through ssh or a pipe:
# without STOP_PIDS it signals every process but init and itself.

set -u
umw=${UMW:-umount-wait}
deadline=${UMW_DEADLINE:-30s}
grace=${STOP_GRACE:-2}
case ${1:-poweroff} in
poweroff) final=${POWEROFF:-poweroff -f} ;;
reboot) final=${POWEROFF:-reboot -f} ;;
*)
	echo "usage: $0 [poweroff|reboot]" >&2
	exit 1
	;;
esac

# 1. Stop what the tests left running. The script itself ignores what the
#    stop may bring it (a hangup when its session goes, SIGTERM passed on by
#    a parent, a broken pipe), and gives the defaults back before
#    umount-wait, which handles SIGINT and SIGTERM itself.
trap '' HUP INT TERM PIPE
if [ -n "${STOP_PIDS:-}" ]; then
	# shellcheck disable=SC2086 # a list of pids
	kill -TERM $STOP_PIDS 2>/dev/null
	sleep "$grace"
	# shellcheck disable=SC2086
	kill -KILL $STOP_PIDS 2>/dev/null
else
	kill -TERM -1 2>/dev/null
	sleep "$grace"
	kill -KILL -1 2>/dev/null
fi

trap - HUP INT TERM PIPE

# 2. Unmount everything but the API filesystems, confirmed, under one
#    deadline; what cannot go is made read-only, the root last. The report
#    goes to the console, where the job keeps it with the test log.
# shellcheck disable=SC2086 # UMW_ARGS is a list of arguments
"$umw" --all --timeout "$deadline" ${UMW_ARGS:-}
rc=$?
echo "CI-VM-SHUTDOWN status=$rc"

# 3. Power off: the job checks the image next (ci-boot-job.sh).
exec $final
