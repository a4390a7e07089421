#!/bin/sh
# What Android init does at reboot today, in busybox sh: the baseline that
# examples/android-reboot.sh is compared with (suite shutdown-reboot).
#
#   android-init-reboot.sh
#
# DoReboot() in system/core/init/reboot.cpp, step by step:
#   0. /data not mounted at all: sync and reboot at once;
#   1. SIGTERM to the services, then wait up to min((timeout + 1) / 2, 3) s
#      for them to exit, re-counting every 50 ms;
#   2. SIGKILL to what is left (Service::Stop), no wait;
#   3. sync;
#   4. UmountPartitions(): every block-device mount (newest first) and the
#      emulated storage under /storage, umount2() each, re-read /proc/mounts
#      every 100 ms until no block-device mount is left or the shutdown
#      timeout (ro.build.shutdown_timeout, 6 s) has passed; after a
#      timeout, SysRq-i (SIGKILL to every process but init) and one last
#      pass with MNT_FORCE;
#   5. sync; sleep 100 ms ("follow what linux shutdown is doing");
#   6. when /data is still in init's own mount table (its /proc/mounts),
#      the shutdown ioctl on /data: F2FS_IOC_SHUTDOWN with
#      F2FS_GOING_DOWN_FULLSYNC on f2fs, EXT4_IOC_SHUTDOWN with
#      EXT4_GOING_FLAGS_DEFAULT on ext4 (fs-shutdown, qemu/guest/bin),
#      its failure only logged;
#   7. reboot, whether or not the filesystems have shut down: "if umount
#      fails, fsck after reboot will fix it".
# Nothing here knows whether a filesystem has shut down: a mount gone from
# /proc/mounts is taken for a filesystem gone.
#
# Steps 0 and 6 test the same thing, IsDataMounted(), which reads init's
# own /proc/mounts and answers for the first entry on /data. In
# aosp-mirror/platform_system_core, init/reboot.cpp at a3b721a (main,
# March 26 2025; the f2fs branch since 3e595d5 "Shutdown f2fs to avoid
# fsck", 2022, the ext4 one since 2a9a6b5, 2025):
#
#   static bool IsDataMounted(const std::string& fstype) {
#       std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(setmntent("/proc/mounts", "re"), endmntent);
#       ...
#       while ((mentry = getmntent(fp.get())) != nullptr) {
#           if (mentry->mnt_dir == "/data"s) {
#               return fstype == "*" || mentry->mnt_type == fstype;
#
#   // If /data isn't mounted then we can skip the extra reboot steps below, since we don't need to
#   // worry about unmounting it.
#   if (!IsDataMounted("*")) {
#       sync();
#       RebootSystem(cmd, reboot_target, reason);
#
# and at the very end of DoReboot(), after TryUmountAndFsck() (step 4),
# the sync and the 100 ms (step 5):
#
#   // Reboot regardless of umount status. If umount fails, fsck after reboot will fix it.
#   if (IsDataMounted("f2fs")) {
#       uint32_t flag = F2FS_GOING_DOWN_FULLSYNC;
#       unique_fd fd(TEMP_FAILURE_RETRY(open("/data", O_RDONLY)));
#       LOG(INFO) << "Invoking F2FS_IOC_SHUTDOWN during shutdown";
#       int ret = ioctl(fd.get(), F2FS_IOC_SHUTDOWN, &flag);
#       ...
#   } else if (IsDataMounted("ext4")) {
#       uint32_t flag = EXT4_GOING_FLAGS_DEFAULT;
#       unique_fd fd(TEMP_FAILURE_RETRY(open("/data", O_RDONLY)));
#       int ret = ioctl(fd.get(), EXT4_IOC_SHUTDOWN, &flag);
#       ...
#   }
#   RebootSystem(cmd, reboot_target, reason);
#
# So a /data that left init's table but lives on in an app's mount
# namespace (the unmount there succeeded, the superblock did not die) is
# neither unmounted nor shut down: it is alive at the reboot. The ioctl
# only reaches a /data whose unmount failed in init's own namespace.
#
# Left out: the services kept for the shutdown (vold, watchdogd), fsck.
# SysRq-i would kill this script too (init does it from PID 1): it is
# SIGKILL to every process but PID 1, this script and its parent.
#
# Environment, as examples/android-reboot.sh reads it:
#   APP_PIDS   the processes to stop (required: no kill -1 here)
#   APP_GRACE  the longest wait in step 1, in seconds [3]
#   REBOOT     the last command [reboot -n -f: the reboot syscall, no sync]
# The last command runs with UMW_STATUS=0 when step 4 ended with nothing
# left mounted, 1 after a timeout.

set -u
: "${APP_PIDS:?APP_PIDS must list the processes to stop}"
grace=${APP_GRACE:-3}
final=${REBOOT:-reboot -n -f}
timeout_ms=6000

now_ms() { monotime-ms; }
start=$(now_ms)

# IsDataMounted(): the type of the first entry on /data in this process's
# mount table (init's, not an app's), empty when there is none.
data_type() {
	awk '$2 == "/data" { print $3; exit }' /proc/mounts
}
log() { echo "android-init-reboot: $*" >&2; }

# 0.
if [ -z "$(data_type)" ]; then
	sync
	export UMW_STATUS=0
	exec $final
fi

# 1. Terminate, wait for the processes to be gone (50 ms steps).
# shellcheck disable=SC2086 # a list of pids
kill -TERM $APP_PIDS 2>/dev/null
end=$((start + grace * 1000))
while [ "$(now_ms)" -lt $end ]; do
	alive=0
	for p in $APP_PIDS; do
		[ -d /proc/"$p" ] && [ "$(cut -d' ' -f3 /proc/"$p"/stat 2>/dev/null)" != Z ] && alive=1
	done
	[ $alive -eq 0 ] && break
	usleep 50000
done

# 2. Kill the rest.
# shellcheck disable=SC2086
kill -KILL $APP_PIDS 2>/dev/null

# 3.
sync

# 4. Block-device mounts (source /dev/..., a block device) newest first,
#    and the emulated storage under /storage.
block_mounts() {
	awk '{ print $1, $2 }' /proc/self/mounts | while read -r src dir; do
		[ -b "$src" ] && echo "$dir"
	done | sed -n '1!G;h;$p'
}
emulated_mounts() {
	awk '$2 ~ "^/storage/" { print $2 }' /proc/self/mounts | sed -n '1!G;h;$p'
}
status=0
umount_start=$(now_ms)
retry=0
while :; do
	blocks=$(block_mounts)
	[ -n "$blocks" ] || break
	if [ $((umount_start + timeout_ms)) -lt "$(now_ms)" ] && [ $retry -gt 0 ]; then
		status=1
		break
	fi
	emulated=$(emulated_mounts)
	if [ -n "$emulated" ]; then
		all=1
		for m in $emulated; do umount "$m" 2>/dev/null || all=0; done
		[ $all -eq 1 ] && sync
	fi
	for m in $blocks; do umount "$m" 2>/dev/null; done
	retry=$((retry + 1))
	usleep 100000
done
if [ $status -ne 0 ]; then
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		case $p in 1 | $$ | $PPID) continue ;; esac
		kill -KILL "$p" 2>/dev/null
	done
	for m in $(emulated_mounts) $(block_mounts); do umount -f "$m" 2>/dev/null; done
fi

# 5.
sync
usleep 100000

# 6. The shutdown ioctl, only on a /data still in this mount table. The
#    log lines are init's; the one for "not mounted here" is the bench's.
case $(data_type) in
f2fs)
	log "Invoking F2FS_IOC_SHUTDOWN during shutdown"
	fs-shutdown /data f2fs fullsync && log "Shutdown /data"
	;;
ext4)
	fs-shutdown /data ext4 default && log "Shutdown /data"
	;;
*)
	log "/data not in init's mount table: no shutdown ioctl"
	;;
esac

# 7.
export UMW_STATUS=$status
exec $final
