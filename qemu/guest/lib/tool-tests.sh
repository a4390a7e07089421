#!/bin/sh
# umount-wait's own tests in the VM, in one mode: tool-tests.sh kernel|fallback
# (the suites tool-kernel and tool-fallback). On a kernel without UMOUNT_WAIT,
# --mode kernel must refuse clearly and leave the target mounted; the other
# kernel-mode tests skip there.
. /usr/lib/umw/lib/ktap.sh

mode=$1
dev=${UMW_DISK_TOOL:-/dev/vdb}
mnt=/mnt/tool
cmd=/usr/bin/umount-wait

is_mounted() {
	grep -q " $1 " /proc/mounts
}

# Leave no mount and no claim behind between tests.
cleanup() {
	while is_mounted $mnt; do umount -l $mnt 2>/dev/null || break; done
	race-excl -w 20000 "$dev" || ktap_note "cleanup: $dev still busy after 20 s"
}

mount_ext4() {
	mkdir -p $mnt && mount -t ext4 "$dev" $mnt
}

# ns_holder SECONDS: a copy of the mount table in a new mount namespace,
# kept SECONDS; returns once the copy exists, its pid in $nsholder. (A
# fixed `sleep 0.5` after starting it was not always enough on a loaded
# TCG host: the unmount then ran before the copy and nothing waited.)
ns_holder() {
	rm -f /tmp/ns-ready
	unshare -m sh -c "touch /tmp/ns-ready; exec sleep $1" &
	nsholder=$!
	i=0
	while [ ! -e /tmp/ns-ready ] && [ $i -lt 600 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	[ -e /tmp/ns-ready ] || ktap_note "the namespace holder did not start within 30 s"
}

# --probe's first word: the path a run takes by default. The series'
# kernels have UMOUNT_NOTIFY (and UMOUNT_WAIT): notify.
case $UMW_KERNEL in
patched | patched-7.3 | debug) expected=notify ;;
*) expected=fallback ;;
esac

ktap_plan 12
if [ ! -x $cmd ]; then
	for t in probe probe_notify tmpfs ext4_excl_after_return lazy_holder_waits busy_refused namespace_copy_timeout sigterm_detached_unconfirmed dying_namespace_waits all_children address_space_stalled_deadline held_out_of_view; do
		ktap_fail "${mode}_$t" "umount-wait is not in the initramfs"
	done
	ktap_done
fi

probe=$($cmd --probe | cut -d' ' -f1)
ktap_check "${mode}_probe_says_$expected" "--probe said '$probe' on the $UMW_KERNEL kernel" [ "$probe" = "$expected" ]
# The series' kernels have UMOUNT_NOTIFY too, and --probe says so.
notify=no
$cmd --probe | grep -q "UMOUNT_NOTIFY supported" && notify=yes
case $expected in notify) want_notify=yes ;; *) want_notify=no ;; esac
ktap_check "${mode}_probe_notify_$want_notify" "--probe on the $UMW_KERNEL kernel: UMOUNT_NOTIFY $notify" [ "$notify" = "$want_notify" ]

if [ "$mode" != fallback ] && [ "$expected" = fallback ]; then
	mkdir -p /tmp/refuse && mount -t tmpfs none /tmp/refuse
	err=$($cmd --mode kernel /tmp/refuse 2>&1)
	rc=$?
	ktap_note "--mode kernel without UMOUNT_WAIT: exit $rc: $err"
	if [ $rc -ne 0 ] && [ -n "$err" ] && is_mounted /tmp/refuse; then
		ktap_ok "kernel_mode_refused_without_flag"
	else
		ktap_fail "kernel_mode_refused_without_flag" "exit $rc, still mounted: $(is_mounted /tmp/refuse && echo yes || echo no)"
	fi
	umount /tmp/refuse
	for t in ext4_excl_after_return lazy_holder_waits busy_refused namespace_copy_timeout sigterm_detached_unconfirmed dying_namespace_waits all_children address_space_stalled_deadline held_out_of_view; do
		ktap_skip "kernel_$t" "no UMOUNT_WAIT in this kernel"
	done
	ktap_done
fi

# tmpfs: unmounted, exit 0.
mkdir -p /tmp/t && mount -t tmpfs none /tmp/t && echo x >/tmp/t/f
$cmd --mode "$mode" /tmp/t
rc=$?
if [ $rc -eq 0 ] && ! is_mounted /tmp/t; then
	ktap_ok "${mode}_tmpfs"
else
	ktap_fail "${mode}_tmpfs" "exit $rc"
fi

# ext4 with dirty data: the device opens O_EXCL right after the return.
cleanup
mount_ext4 && dd if=/dev/zero of=$mnt/data bs=1M count=8 2>/dev/null
$cmd --mode "$mode" $mnt
rc=$?
race-excl "$dev"
excl=$?
if [ $rc -eq 0 ] && [ $excl -eq 0 ]; then
	ktap_ok "${mode}_ext4_excl_after_return"
else
	ktap_fail "${mode}_ext4_excl_after_return" "exit $rc, O_EXCL open right after: $excl (1 = busy)"
fi

# Lazy unmount, a holder closes its file 2 s later: returns after the close,
# the device is free right after.
cleanup
mount_ext4 && echo data >$mnt/f
exec 3<$mnt/f
sleep 2 3<&3 &
holder=$!
exec 3<&-
t0=$(now_ms)
json=$($cmd --mode "$mode" -l --json $mnt)
rc=$?
race-excl "$dev"
excl=$?
waited=$(($(now_ms) - t0))
ktap_note "lazy unmount, holder closing after 2 s: returned after $waited ms: $json"
wait $holder
# The report counts the wait too: total_ms, whole milliseconds.
total=$(echo "$json" | sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p')
if [ $rc -eq 0 ] && [ $excl -eq 0 ] && [ $waited -ge 1500 ] && [ "${total:-0}" -ge 1500 ]; then
	ktap_ok "${mode}_lazy_holder_waits"
else
	ktap_fail "${mode}_lazy_holder_waits" "exit $rc, O_EXCL right after: $excl, returned after $waited ms, total_ms in the report: $total"
fi

# Busy without -l: refused (exit 32), still mounted. On the notify run
# also without --mode: an ext4 (which can stall) then takes the kernel
# path, and the error's JSON must say so (it said the run's "notify").
cleanup
mount_ext4 && echo data >$mnt/f
exec 3<$mnt/f
$cmd --mode "$mode" --timeout 2s $mnt 2>/dev/null
rc=$?
named=kernel
[ "$mode" = notify ] && named=$($cmd --json --timeout 2s $mnt 2>/dev/null | sed -n 's/.*"path":"\([a-z]*\)".*/\1/p')
exec 3<&-
if [ $rc -eq 32 ] && is_mounted $mnt && [ "$named" = kernel ]; then
	ktap_ok "${mode}_busy_refused"
else
	ktap_fail "${mode}_busy_refused" "exit $rc (want 32), mounted: $(is_mounted $mnt && echo yes || echo no), the path an unasked run's error names: $named (want kernel)"
fi

# A copy of the mount in another mount namespace outlives the time limit:
# exit 3 (detached, shutdown not confirmed); freed once the namespace dies.
cleanup
mount_ext4
ns_holder 60
$cmd --mode "$mode" --timeout 1s $mnt 2>/dev/null
rc=$?
kill $nsholder
wait $nsholder 2>/dev/null
race-excl -w 10000 "$dev"
excl=$?
if [ $rc -eq 3 ] && [ $excl -eq 0 ]; then
	ktap_ok "${mode}_namespace_copy_timeout"
else
	ktap_fail "${mode}_namespace_copy_timeout" "exit $rc (want 3), O_EXCL after the namespace died: $excl"
fi

# A stop request during the wait (SIGTERM, as a supervisor sends; a shell
# starts background jobs with SIGINT ignored, so Ctrl-C's SIGINT cannot be
# sent here; the binary handles both the same way): reported detached,
# shutdown not confirmed, then dead by the signal (143), as umount(8).
# On the kernel path the call is in a child that the command kills: the
# mount must be gone and the command must not hang. While it waits, its
# children are counted: one on the kernel path, none on the notify path
# (the descriptor is polled in the process) nor on the fallback's (ext4).
# The log is emptied first: the command's redirection happens in the
# background job, and the loop below could read the last suite's log
# (another mode's ": waiting" line) before it does; the stop then came
# before the kernel path's child existed.
cleanup
mount_ext4
ns_holder 60
: >/tmp/tool-stop.log
$cmd --mode "$mode" -v $mnt 2>/tmp/tool-stop.log &
waiter=$!
i=0
while ! grep -q ": waiting " /tmp/tool-stop.log && [ $i -lt 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
children=$(grep -l "^PPid:[[:space:]]*$waiter\$" /proc/[0-9]*/status 2>/dev/null | wc -l)
kill -TERM $waiter
wait $waiter
rc=$?
mounted=$(is_mounted $mnt && echo yes || echo no)
case $mode in kernel) want_children=1 ;; *) want_children=0 ;; esac
kill $nsholder
wait $nsholder 2>/dev/null
race-excl -w 10000 "$dev"
excl=$?
if [ $rc -eq 143 ] && [ "$mounted" = no ] && [ $excl -eq 0 ] &&
	[ "$children" -eq $want_children ] &&
	grep -q "interrupted by SIGTERM" /tmp/tool-stop.log; then
	ktap_ok "${mode}_sigterm_detached_unconfirmed"
else
	ktap_note "$(tail -n 5 /tmp/tool-stop.log)"
	ktap_fail "${mode}_sigterm_detached_unconfirmed" "exit $rc (want 143, dead by SIGTERM, after saying so), still mounted here: $mounted, O_EXCL after the namespace died: $excl, children while waiting: $children (want $want_children)"
fi

# A dying namespace (it exits 2 s later): waits for it, then the device is free.
cleanup
mount_ext4
ns_holder 2
t0=$(now_ms)
$cmd --mode "$mode" --timeout 30s $mnt
rc=$?
race-excl "$dev"
excl=$?
waited=$(($(now_ms) - t0))
wait $nsholder
ktap_note "namespace exiting after 2 s: returned after $waited ms"
if [ $rc -eq 0 ] && [ $excl -eq 0 ]; then
	ktap_ok "${mode}_dying_namespace_waits"
else
	ktap_fail "${mode}_dying_namespace_waits" "exit $rc, O_EXCL right after: $excl, after $waited ms"
fi

# --all over three filesystems that a namespace's copy holds: while the
# waits go on, the command's children are counted. The notify path polls
# one descriptor per filesystem in the process: none. The kernel path has
# one umount2(UMOUNT_WAIT) child per superblock (so the count can fail);
# the fallback's watches need none for tmpfs. Side by side, not nested:
# on the kernel path a parent mount found busy while a child was still
# detaching its submount is tried again only on the next change of the
# mount table, which may not come before the waits end.
cleanup
for d in a b c; do
	mkdir -p /tmp/all/$d && mount -t tmpfs none /tmp/all/$d
done
ns_holder 60
$cmd --mode "$mode" --all --include /tmp/all 2>/tmp/tool-all.log &
waiter=$!
i=0
while grep -q " /tmp/all" /proc/mounts && [ $i -lt 400 ]; do
	sleep 0.05
	i=$((i + 1))
done
children=$(grep -l "^PPid:[[:space:]]*$waiter\$" /proc/[0-9]*/status 2>/dev/null | wc -l)
left=$(grep -c " /tmp/all" /proc/mounts)
kill $nsholder
wait $nsholder 2>/dev/null
wait $waiter
rc=$?
case $mode in kernel) want="-eq 3" ;; *) want="-eq 0" ;; esac
ktap_note "--all --mode $mode over 3 held filesystems: $children child process(es) while waiting, exit $rc"
if [ $rc -eq 0 ] && [ "$left" -eq 0 ] && [ "$children" $want ]; then
	ktap_ok "${mode}_all_children"
else
	ktap_note "$(tail -n 5 /tmp/tool-all.log)"
	ktap_fail "${mode}_all_children" "exit $rc, children while waiting: $children (want $want), still mounted: $left"
fi

# A process whose address space's lock stays held (mm-stall: a page fault
# on a FUSE file, reached through /proc/PID/mem, waits for a stopped daemon
# while a writer queues behind it) while the wait looks for holders: on a
# kernel whose /proc/PID/maps takes that lock (6.12; 7.3 does not), the scan's
# read of its maps sleeps until the daemon answers, and any user can set
# this up. --timeout 2s must hold all the same: exit 3 (detached, not
# confirmed) within 3.5 s. Before the scan had a thread of its own, the
# command slept with it: killed at 20 s. Skips where maps reads do not
# wait for the lock (nothing to stall), or without FUSE.
cleanup
stall=
reader=
stalls=no
mkdir -p /tmp/mmf
if daemon=$(fuse-one /tmp/mmf 2>/dev/null) &&
	dd if=/dev/zero of=/tmp/mmf/f bs=4096 count=2 2>/dev/null; then
	echo 3 >/proc/sys/vm/drop_caches
	# Emptied first, as /tmp/tool-stop.log above: another mode's log
	# would say "ready" before this mm-stall has its handler.
	: >/tmp/mm.log
	mm-stall /tmp/mmf/f >/tmp/mm.log 2>&1 &
	stall=$!
	i=0
	while ! grep -q ready /tmp/mm.log && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	kill -STOP "$daemon"
	kill -USR1 $stall
	i=0
	while ! grep -q stalled /tmp/mm.log && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	rm -f /tmp/maps.done
	(cat /proc/$stall/maps >/dev/null; touch /tmp/maps.done) &
	reader=$!
	sleep 1
	[ -e /tmp/maps.done ] || stalls=yes
fi
if [ -z "$stall" ]; then
	ktap_skip "${mode}_address_space_stalled_deadline" "no FUSE mount here (fuse-one failed)"
elif [ $stalls = no ]; then
	ktap_skip "${mode}_address_space_stalled_deadline" "this kernel ($UMW_KERNEL) reads /proc/PID/maps without waiting for the address space's lock: nothing stalls"
else
	mount_ext4
	ns_holder 60
	t0=$(now_ms)
	timeout -s KILL 20 $cmd --mode "$mode" --timeout 2s $mnt 2>/tmp/mm-cmd.err
	rc=$?
	took=$(($(now_ms) - t0))
	ktap_note "--timeout 2s beside a stalled address space: exit $rc after $took ms: $(tail -n 3 /tmp/mm-cmd.err)"
	kill $nsholder
	wait $nsholder 2>/dev/null
	if [ $rc -eq 3 ] && [ $took -lt 3500 ]; then
		ktap_ok "${mode}_address_space_stalled_deadline"
	else
		ktap_fail "${mode}_address_space_stalled_deadline" "exit $rc (want 3) after $took ms (want < 3500)"
	fi
fi
if [ -n "$stall" ]; then
	kill -KILL $stall
	kill -CONT "$daemon"
	wait $stall $reader 2>/dev/null
fi
umount /tmp/mmf 2>/dev/null || umount -l /tmp/mmf 2>/dev/null

# A container (new mount and pid namespaces, /proc remounted) unmounts a
# volume whose filesystem stays mounted outside: what holds the superblock
# cannot be seen from where the command runs, and here, unlike on the
# host, the kernel path's superblock truly stays alive. Without --timeout
# the wait ends after its grace (5 s): detached, not confirmed (exit 3),
# the mount outside untouched. Killed at 30 s: before the grace existed,
# the wait never ended. Each path once (7 s a run): kernel and notify on
# patched-7.3, fallback on unpatched.
case "$mode:$UMW_KERNEL" in
kernel:patched-7.3 | notify:patched-7.3 | fallback:unpatched) ;;
*)
	ktap_skip "${mode}_held_out_of_view" "the $mode path runs it on one kernel (7 s a run): not $UMW_KERNEL"
	cleanup
	ktap_done
	;;
esac
cleanup
mkdir -p /tmp/vol && mount -t tmpfs none /tmp/vol
t0=$(now_ms)
out=$(timeout -s KILL 30 unshare -m -p -f --mount-proc --propagation private \
	sh -c "$cmd --mode $mode /tmp/vol 2>&1; echo rc=\$?")
took=$(($(now_ms) - t0))
outside=$(is_mounted /tmp/vol && echo yes || echo no)
ktap_note "--mode $mode in a container, the volume held outside: $took ms: $out"
if echo "$out" | grep -q "rc=3" && echo "$out" | grep -q "held where this process cannot see" &&
	[ "$outside" = yes ]; then
	ktap_ok "${mode}_held_out_of_view"
else
	ktap_fail "${mode}_held_out_of_view" "after $took ms, still mounted outside: $outside: $out"
fi
umount /tmp/vol 2>/dev/null
cleanup
ktap_done
