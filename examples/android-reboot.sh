#!/bin/sh
# An Android-style reboot script with umount-wait (busybox sh).
#
#   android-reboot.sh [reboot|poweroff]
#
# What Android init does at shutdown (system/core/init/reboot.cpp), with the
# unmount loop replaced: init kills the apps, then unmounts in a loop that
# re-reads /proc/mounts every 100 ms, with MNT_FORCE on the last tries, and
# reboots whether or not the filesystems have really shut down. Here one
# command unmounts everything, confirms that each filesystem is shut down
# (the kernel's UMOUNT_WAIT, or inotify IN_UNMOUNT and the block device claim
# elsewhere), remounts read-only what cannot go, detaches loop devices, and
# keeps to one deadline.
#
# Environment (defaults in brackets):
#   UMW          the umount-wait binary [umount-wait from PATH]
#   UMW_DEADLINE the deadline for the whole unmount [20s]
#   UMW_ARGS     more arguments for umount-wait --all, for example
#                "--include /data --exclude /data/cache" []
#   APP_PIDS     the processes to stop; empty: every process but init and
#                this script (kill -1), as Android does []
#   APP_GRACE    seconds between SIGTERM and SIGKILL [2]
#   REBOOT       the last command; "true" to stay up (tests) [reboot -f];
#                it runs with UMW_STATUS set to umount-wait's exit code
#   UMW_LOG      where the JSON report goes [/dev/kmsg when writable]

set -u
action=${1:-reboot}
umw=${UMW:-umount-wait}
deadline=${UMW_DEADLINE:-20s}
grace=${APP_GRACE:-2}
case $action in
reboot) final=${REBOOT:-reboot -f} ;;
poweroff) final=${REBOOT:-poweroff -f} ;;
*)
	echo "usage: $0 [reboot|poweroff]" >&2
	exit 1
	;;
esac

log() { echo "android-reboot: $*" >&2; }

# 1. Stop the apps. An app in its own mount namespace keeps a copy of every
#    mount there until the last task of the namespace is gone; the kernel
#    tears killed namespaces down asynchronously, which is exactly what
#    umount-wait waits for below. No polling of the process table here:
#    the grace period is policy, not a way to wait for the filesystems.
stop_apps() {
	if [ -n "${APP_PIDS:-}" ]; then
		# shellcheck disable=SC2086 # a list of pids
		kill -TERM $APP_PIDS 2>/dev/null
		sleep "$grace"
		# shellcheck disable=SC2086
		kill -KILL $APP_PIDS 2>/dev/null
	else
		kill -TERM -1 2>/dev/null
		sleep "$grace"
		kill -KILL -1 2>/dev/null
	fi
}
stop_apps

# 2. Write back what is dirty while nothing is being torn down yet: the
#    unmounts then have less to flush and the deadline is spent waiting,
#    not writing.
sync

# 3. Unmount everything but the API filesystems, confirmed, under one
#    deadline (swap on them turned off first; the waits side by side; its
#    last tenth, at least 1 s, kept to make what survives read-only).
#    -f: MNT_FORCE on the last pass only, as Android init does.
#    The JSON report (one line per filesystem and a summary) goes to the
#    kernel log, where it survives a reboot in pstore/ramoops.
out=${UMW_LOG:-/dev/kmsg}
[ -w "$out" ] || out=/dev/null
start=$(date +%s)
# shellcheck disable=SC2086 # UMW_ARGS is a list of arguments
"$umw" --all -f --timeout "$deadline" --json ${UMW_ARGS:-} >"$out"
rc=$?
log "umount-wait --all exit $rc after $(($(date +%s) - start)) s"

# 4. The exit code says what is safe (umount(8)'s convention):
#    0   every filesystem shut down (or, for the root, remounted read-only)
#    64  some did not: the report names them and what held them; those left
#        mounted are read-only (or, where read-only was refused, shut down
#        by FS_IOC_SHUTDOWN after a log flush), and so are those detached
#        here but kept alive by another mount namespace (made read-only
#        there), so a reboot loses no completed write
#    32  none did; 3 all detached but not confirmed (the deadline passed)
#    1/2 a usage or system error: nothing or not everything was tried
case $rc in
0) ;;
3 | 32 | 64) log "some filesystems did not shut down; see the kernel log" ;;
*) log "umount-wait failed ($rc); rebooting anyway" ;;
esac

# 5. Reboot. Android would also try the f2fs shutdown ioctl on a data
#    partition still alive here; with a confirmed shutdown there is none.
export UMW_STATUS=$rc
exec $final
