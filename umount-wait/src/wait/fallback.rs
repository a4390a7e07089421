//! The fallback path, for kernels without `UMOUNT_WAIT`: an inotify watch
//! on the mount root, added before unmounting, reports `IN_UNMOUNT` when
//! the superblock itself shuts down; for a block device the exclusive
//! claim is then checked with `open(dev, O_EXCL)`.

use std::io::Read;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::report::{detached_unconfirmed, timed_out, unmount_failed};
use super::{call, Attempt, STATUS_INTERVAL};
use crate::backoff::{self, Attempt as Try, Stopped};
use crate::blockers::{self, Blocker};
use crate::cancel::{self, Cancel, Wake};
use crate::child::Ended;
use crate::device;
use crate::duration;
use crate::mountinfo;
use crate::outcome::{Error, ErrorKind, Outcome, Report, State, Unconfirmed};
use crate::sys::{self, Cwd, Inotify, RootWatch, WatchEvents};
use crate::target::Target;

/// After `IN_UNMOUNT`, how long the block device claim may take to go when no
/// `--timeout` bounds it. `IN_UNMOUNT` is sent by `generic_shutdown_super()`
/// before `->put_super()` (ext4 commits its journal there) and before the
/// device is released: a millisecond to tens of milliseconds. Seconds mean
/// that something else holds the device.
pub const CLAIM_GRACE: Duration = Duration::from_secs(5);

/// How long the fallback waits, once the claim is given back, for the
/// filesystem's device-mapper devices to be closed
/// ([`wait_for_device_close`]): the late close comes a jiffy or a few
/// after; longer means another opener.
pub const DEVICE_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The inotify instance the fallback path watches mount roots in, opened at
/// the first watch and kept for the targets that follow. Closing an instance
/// waits for an SRCU grace period ([`Inotify`]): with an instance per target,
/// `--all` over 100 tmpfs spent 470 of its 500 ms in `close(2)`.
///
/// [`Watcher::one_thread`]'s also holds a handle on the working directory,
/// from which the watch and the unmount are made in the checked handles'
/// directories ([`sys::Cwd`]); the default's go through `/proc/self/fd`.
#[derive(Default)]
pub struct Watcher {
    inotify: Option<Inotify>,
    /// [`Watcher::one_thread`].
    from_dirs: bool,
    /// The working directory's handle, opened at the first watch (None
    /// inside: it could not be).
    cwd: Option<Option<Cwd>>,
}

impl Watcher {
    /// For a process with one thread (the command): the watch and the
    /// unmount are made from the checked handles' own directories
    /// (`fchdir(2)` there and back, [`sys::Cwd`]), which costs about half
    /// of a walk through `/proc/self/fd`. The working directory is then
    /// another for the length of a call: a library caller with other
    /// threads, whose relative paths would meet it, keeps the default.
    pub fn one_thread() -> Watcher {
        Watcher {
            from_dirs: true,
            ..Watcher::default()
        }
    }

    /// The instance, once a watch has opened it.
    pub(super) fn instance(&self) -> Option<&Inotify> {
        self.inotify.as_ref()
    }

    /// The instance, opened at the first watch, and the working
    /// directory's handle, if it could be held.
    fn parts(&mut self) -> (Result<&mut Inotify, Errno>, Option<&Cwd>) {
        let Watcher {
            inotify,
            from_dirs,
            cwd,
        } = self;
        let cwd = match from_dirs {
            true => cwd.get_or_insert_with(|| Cwd::open().ok()).as_ref(),
            false => None,
        };
        if inotify.is_none() {
            match Inotify::new() {
                Ok(opened) => *inotify = Some(opened),
                Err(errno) => return (Err(errno), cwd),
            }
        }
        (Ok(inotify.as_mut().expect("just opened")), cwd)
    }
}

/// inotify watch on the mount root, `umount2(target, flags)`, wait for
/// `IN_UNMOUNT` and `IN_IGNORED`, then the block device claim.
pub(super) fn unmount(
    attempt: &Attempt<'_>,
    report: Report,
    watcher: &mut Watcher,
) -> Result<Report, Error> {
    match detach(attempt, report, watcher, None)? {
        Detached::Done(report) => Ok(report),
        Detached::Watching(watching) => wait(attempt, watching),
    }
}

/// A fallback unmount after the detach: the filesystem's end is still to
/// be seen on `watch`.
pub(super) struct Watching<'w> {
    pub report: Report,
    pub watch: RootWatch<'w>,
    /// When the attempt started, and the wait after the unmount.
    pub start: Instant,
    pub wait_start: Instant,
    pub deadline: Option<Instant>,
}

/// How far [`detach`] went.
pub(super) enum Detached<'w> {
    /// Settled already (shut down, refused, confirmed by the claim alone).
    Done(Report),
    /// Unmounted; the wait for `IN_UNMOUNT` is to come.
    Watching(Watching<'w>),
}

/// The wait on the mount root's watch, told to the observer at each
/// status tick, until the watch ends or the deadline or the cancellation.
fn wait(attempt: &Attempt<'_>, watching: Watching<'_>) -> Result<Report, Error> {
    let Watching {
        mut report,
        mut watch,
        start,
        wait_start,
        deadline,
    } = watching;
    let Attempt {
        target, options, ..
    } = *attempt;
    let detached = |e: Error| e.with_state(State::Detached);
    let mut seen = WatchEvents::default();
    let mut tick = start + STATUS_INTERVAL;
    loop {
        watch.read_events(&mut seen).map_err(|e| {
            detached(Error::from_errno(
                &target.given,
                "reading inotify events",
                e,
            ))
        })?;
        if seen.ignored || seen.overflow {
            break;
        }
        let wake = deadline.map_or(tick, |d| d.min(tick));
        match cancel::wait_readable(Some(watch.fd()), options.cancel, wake) {
            Wake::Readable => continue,
            Wake::Deadline if deadline.is_some_and(|d| Instant::now() >= d) => {
                report.wait_time = wait_start.elapsed();
                return Ok(detached_unconfirmed(
                    options,
                    report,
                    timed_out(options.timeout),
                ));
            }
            Wake::Deadline => {
                attempt.still_waiting(&mut report, start, deadline);
                if attempt.held_out_of_view() {
                    report.wait_time = wait_start.elapsed();
                    return Ok(detached_unconfirmed(
                        options,
                        report,
                        super::out_of_view_reason(),
                    ));
                }
                tick += STATUS_INTERVAL;
            }
            Wake::Cancelled => {
                report.wait_time = wait_start.elapsed();
                return Ok(detached_unconfirmed(
                    options,
                    report,
                    Unconfirmed::Cancelled,
                ));
            }
            Wake::Failed(e) => {
                return Err(detached(Error::from_errno(
                    &target.given,
                    "waiting on the inotify watch",
                    e,
                )))
            }
        }
    }
    drop(watch);
    watch_ended(target, options, report, seen, deadline, wait_start)
}

/// The watch on the mount root ended (`seen`): what that means for the
/// filesystem (shut down, or its root evicted), then the block device
/// claim.
pub(super) fn watch_ended(
    target: &Target,
    options: &super::Options<'_>,
    mut report: Report,
    seen: WatchEvents,
    deadline: Option<Instant>,
    wait_start: Instant,
) -> Result<Report, Error> {
    let detached = |e: Error| e.with_state(State::Detached);
    if seen.ignored && !seen.unmounted {
        match after_root_evicted(target) {
            RootEvicted::MountedHere(at) => {
                report.wait_time = wait_start.elapsed();
                report.outcome = Outcome::Unmounted {
                    still_mounted_at: at,
                };
                return Ok(report);
            }
            RootEvicted::MountedElsewhere => {
                report.wait_time = wait_start.elapsed();
                return Ok(detached_unconfirmed(
                    options,
                    report,
                    Unconfirmed::RootDeleted,
                ));
            }
            // No event says the superblock shut down, only that its
            // root's inode went; a holder the scan cannot see (a covered
            // mount, a namespace out of view) may keep the filesystem
            // alive. Only a released block device claim confirms it.
            RootEvicted::NotMounted if report.device_nodes.is_empty() => {
                report.wait_time = wait_start.elapsed();
                return Ok(detached_unconfirmed(
                    options,
                    report,
                    Unconfirmed::RootDeletedUnseen,
                ));
            }
            // Confirmed below by the claims, as after IN_UNMOUNT.
            RootEvicted::NotMounted => {}
        }
    } else if !seen.unmounted {
        return Err(detached(Error::new(
            &target.given,
            ErrorKind::System("the watch on the mount root ended without IN_UNMOUNT"),
            None,
        )));
    }
    if report.device_nodes.is_empty() {
        report.wait_time = wait_start.elapsed();
        if seen.unmounted && !unmount_event_confirms(&target.mount, sys::kernel_release) {
            return Ok(detached_unconfirmed(
                options,
                report,
                Unconfirmed::BeforeWriteback,
            ));
        }
        return Ok(report);
    }
    confirm_by_claims(target, options, report, deadline, wait_start, || {
        timed_out(options.timeout)
    })
}

/// Whether `IN_UNMOUNT` confirms that `mount`'s filesystem (no block
/// device) has shut down, on the kernel whose release `release` gives
/// (asked for a network filesystem only: no uname(2) for the others).
/// Not for a network filesystem ([`Mount::network`]: its last writes go to the server
/// during the shutdown, and no device claim follows) on a kernel that
/// sends the event before the final writeback
/// ([`release_sends_unmount_early`]). Not even when the unmount's own
/// cleanup sent it: the event cannot tell that from another task's (a
/// lazy unmount's last holder, a mount namespace that goes at the same
/// moment), whose writeback would still be under way.
fn unmount_event_confirms(
    mount: &crate::mountinfo::Mount,
    release: impl FnOnce() -> String,
) -> bool {
    !mount.network() || !release_sends_unmount_early(&release())
}

/// Whether the kernel of this release sends `IN_UNMOUNT` before the final
/// writeback of the filesystem: `generic_shutdown_super()` calls
/// `fsnotify_sb_delete()` before `sync_filesystem()` since the fsnotify
/// changes merged for Linux 7.0 ("fsnotify: Shutdown fsnotify before
/// destroying sb's dcache"), after it before (read in 6.12.118 and 7.3.4).
/// A release that cannot be read counts as new.
fn release_sends_unmount_early(release: &str) -> bool {
    let major = release
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    major.is_none_or(|m| m >= 7)
}

/// A target's mount point looked up once more, into a handle on its
/// parent and one on the root, checked to be the mount resolved: the
/// watch goes on what the root's refers to, the unmount through the
/// parent's. The root's pins the mount: it is closed before the unmount.
pub(super) struct Opened {
    pub mount_point: sys::MountPoint,
    pub root: OwnedFd,
}

impl Opened {
    /// Err: not looked up, or not the mount resolved (moved or replaced:
    /// another mount id, not a mount root, or another filesystem).
    pub(super) fn open(target: &Target) -> Result<Opened, Error> {
        let open_failed = |e| Error::from_errno(&target.given, "opening the mount root", e);
        let mount_point =
            sys::MountPoint::open(&target.path, target.follow).map_err(open_failed)?;
        let root = mount_point.open_root().map_err(open_failed)?;
        match sys::stat_fd(root.as_fd()) {
            Ok(st)
                if st.mount_id == target.mount.id
                    && st.is_mount_root
                    && crate::target::same_filesystem(st.dev, &target.mount) =>
            {
                Ok(Opened { mount_point, root })
            }
            Ok(_) => Err(Error::new(&target.given, ErrorKind::Moved, None)),
            Err(e) => Err(Error::from_errno(
                &target.given,
                "inspecting the mount root",
                e,
            )),
        }
    }
}

/// The steps of [`unmount`] up to the wait for `IN_UNMOUNT`: the watch,
/// the unmount. When there is no watch to wait on (none could be added),
/// or the steps were made in a child (a filesystem that may not answer),
/// the whole unmount.
/// `opened`: the target's handles, opened and checked already
/// ([`Opened::open`]), else opened here.
pub(super) fn detach<'w>(
    attempt: &Attempt<'_>,
    mut report: Report,
    watcher: &'w mut Watcher,
    opened: Option<Opened>,
) -> Result<Detached<'w>, Error> {
    let Attempt {
        target,
        flags,
        options,
        ..
    } = *attempt;
    report.device_nodes = device::nodes_for(&target.mount);
    // What the kernel path refuses, refused here too, before anything
    // changes, with its errno: EDEADLK.
    if let Some(errno) = refusal_if_pinned(target, options) {
        return unmount_failed(target, options, report, errno).map(Detached::Done);
    }
    let Opened { mount_point, root } = match opened {
        Some(opened) => opened,
        None => Opened::open(target)?,
    };
    let start = Instant::now();
    let deadline = options.timeout.map(|t| duration::deadline(start, t));
    // For a filesystem that a device, a daemon or a server can hold up,
    // and where the caller can end the wait, the steps that it can hold
    // up are made in a child process that the deadline or the
    // cancellation ends: a FUSE daemon or a server that does not answer,
    // a disk whose I/O does not complete, must not keep this process past
    // them (a sleep that SIGKILL does not end is given up). Filesystems in
    // memory are unmounted here: a child per step costs a millisecond or
    // more on a busy machine, which `--all` over thousands of tmpfs would
    // pay thousands of times.
    let bounded = (deadline.is_some() || options.cancel.may_cancel()) && target.mount.may_stall();
    // Without a watch (no inotify in this kernel, the instance or watch
    // limit reached) the unmount goes on all the same: a filesystem left
    // mounted because of it would be worse (under `--all`, read-write at
    // reboot).
    // The watch's permission check asks only a daemon or a server.
    let watch_bounded = bounded && target.mount.may_not_answer();
    // Whether /proc/self/fd names handles, where a call needs it: asked
    // once for the watch and the unmount (nothing between the two
    // unmounts anything).
    let proc_fd = std::cell::OnceCell::new();
    let proc_fd = || *proc_fd.get_or_init(|| super::proc_fd_usable(options));
    let (inotify, cwd) = watcher.parts();
    let watch = watch_root(
        attempt,
        &mut report,
        (inotify, cwd),
        (root.as_fd(), &proc_fd),
        start,
        watch_bounded,
    )?;
    // The handle would keep the mount busy; the watch does not.
    drop(root);
    if let Some(helper) = &attempt.helper {
        super::still_leads_there(target, mount_point)?;
        report = match call::unmount_by_helper(target, options, report, helper, deadline) {
            ControlFlow::Continue(report) => report,
            ControlFlow::Break(result) => return result.map(Detached::Done),
        };
    } else if bounded {
        report = match call::unmount_in_child(attempt, report, flags, start, deadline) {
            ControlFlow::Continue(report) => report,
            ControlFlow::Break(result) => return result.map(Detached::Done),
        };
    } else {
        let mount_point = super::still_leads_there(target, mount_point)?;
        let umount_start = Instant::now();
        let unmounted = match cwd {
            Some(cwd) => mount_point.unmount_within(cwd, flags, proc_fd),
            None => mount_point.unmount(flags, proc_fd()),
        };
        if let Err(errno) = unmounted {
            return unmount_failed(target, options, report, errno).map(Detached::Done);
        }
        report.umount_time = umount_start.elapsed();
    }
    let wait_start = Instant::now();
    let watch = match watch {
        Ok(watch) => watch,
        Err(errno) => {
            return confirm_by_claims(target, options, report, deadline, wait_start, || {
                Unconfirmed::NoWatch(errno)
            })
            .map(Detached::Done)
        }
    };
    let watching = Watching {
        report,
        watch,
        start,
        wait_start,
        deadline,
    };
    if bounded {
        // Made in a child so far: the wait too, with its status ticks.
        return wait(attempt, watching).map(Detached::Done);
    }
    Ok(Detached::Watching(watching))
}

/// The last step of the fallback: waits until no block device of the
/// filesystem is claimed any more, which is its shutdown's end
/// (`kill_block_super()` gives the claim up after `->put_super()`). After
/// `IN_UNMOUNT` this takes a millisecond or so; without a watch it is the
/// whole wait, and the only sign of the shutdown there is. It lasts until
/// `deadline`, or [`CLAIM_GRACE`] without one; `expired` says why the
/// shutdown was not confirmed when that comes first, or when there is no
/// block device to confirm it with.
fn confirm_by_claims(
    target: &Target,
    options: &super::Options<'_>,
    mut report: Report,
    deadline: Option<Instant>,
    wait_start: Instant,
    expired: impl Fn() -> Unconfirmed,
) -> Result<Report, Error> {
    if report.device_nodes.is_empty() {
        report.wait_time = wait_start.elapsed();
        return Ok(detached_unconfirmed(options, report, expired()));
    }
    let claim_deadline =
        deadline.unwrap_or_else(|| duration::deadline(Instant::now(), CLAIM_GRACE));
    let claim = wait_for_claims(
        &report.device_nodes,
        options.cancel,
        claim_deadline,
        &mut report.claim_attempts,
    );
    if claim.is_ok() {
        report.device_still_open = wait_for_device_close(
            &report.device_nodes,
            options.cancel,
            duration::deadline(Instant::now(), DEVICE_CLOSE_GRACE).min(claim_deadline),
        );
    }
    report.wait_time = wait_start.elapsed();
    match claim {
        Ok(()) => Ok(report),
        Err(Stopped::Expired) => Ok(detached_unconfirmed(options, report, expired())),
        Err(Stopped::Cancelled) => Ok(detached_unconfirmed(
            options,
            report,
            Unconfirmed::Cancelled,
        )),
        Err(Stopped::Failed(e)) => {
            Err(
                Error::from_errno(&target.given, "checking the block device claim", e)
                    .with_state(State::Detached),
            )
        }
    }
}

/// The watch on the mount root, added before the unmount (afterwards the
/// path no longer leads there) through its `O_PATH` handle `root`, in
/// the run's instance, from the root itself entered with `cwd`
/// ([`Inotify::watch_root_within`]) or through `/proc/self/fd` where
/// `proc_fd` says it names handles. When
/// the wait is `bounded`, in a child process ([`call::in_child`], sharing
/// the instance), since `inotify_add_watch` checks that the caller may
/// read the root, which a FUSE filesystem may ask its daemon. Ok(Err): no
/// watch could be added (the errno); Err: the deadline or the caller's
/// cancellation came first, or the child failed: the target untouched.
fn watch_root<'w>(
    attempt: &Attempt<'_>,
    report: &mut Report,
    (inotify, cwd): (Result<&'w mut Inotify, Errno>, Option<&Cwd>),
    (root, proc_fd): (BorrowedFd<'_>, &dyn Fn() -> bool),
    start: Instant,
    bounded: bool,
) -> Result<Result<RootWatch<'w>, Errno>, Error> {
    let inotify = match inotify {
        Ok(inotify) => inotify,
        Err(errno) => return Ok(Err(errno)),
    };
    if !bounded {
        return Ok(match cwd {
            Some(cwd) => inotify.watch_root_within(root, cwd, proc_fd),
            None => inotify.watch_root(root, proc_fd()),
        });
    }
    let given = &attempt.target.given;
    let step = "adding the watch in a child process";
    let fail = |e| Error::from_errno(given, step, e);
    let io_fail = |e: std::io::Error| fail(Errno::from_io_error(&e).unwrap_or(Errno::IO));
    // The child tells the watch descriptor through a socket.
    let (ours, theirs) = UnixStream::pair().map_err(io_fail)?;
    let prepared = inotify.prepare_watch(root, proc_fd()).map_err(fail)?;
    let deadline = attempt
        .options
        .timeout
        .map(|t| duration::deadline(start, t));
    let call = call::in_child(attempt, report, start, deadline, || {
        let wd = prepared.call()?;
        rustix::io::write(&theirs, &wd.to_ne_bytes()).map(|_| ())
    })
    .map_err(fail)?;
    match call.ended {
        Ok(Ended::Returned(Ok(()))) => {
            let mut wd = [0u8; 4];
            (&ours).read_exact(&mut wd).map_err(io_fail)?;
            Ok(Ok(inotify.adopt(i32::from_ne_bytes(wd))))
        }
        Ok(Ended::Returned(Err(errno))) => Ok(Err(errno)),
        _ => Err(call::untouched(attempt.target, call, step)),
    }
}

/// Where a filesystem is after the watch on its mount's root ended with
/// `IN_IGNORED` but without `IN_UNMOUNT`.
enum RootEvicted {
    /// Still mounted in this mount namespace, here.
    MountedHere(PathBuf),
    /// Still mounted in another mount namespace.
    MountedElsewhere,
    /// Mounted nowhere that can be seen.
    NotMounted,
}

/// `IN_IGNORED` alone means that the watched inode, the mount's root, was
/// evicted, not that the superblock shut down: the root had been deleted
/// (a bind mount of a directory or a file removed since), and the final
/// `dput()` of this mount let it go. That is no error, and no shutdown
/// either: `cleanup_mnt()` drops the root before it deactivates the
/// superblock, and the filesystem may live on in other mounts. So the
/// mount tables decide:
///
/// - another mount of the superblock in this namespace: this mount is
///   gone, the filesystem stays mounted there (as for a bind mount under
///   `--all`), nothing to wait for;
/// - a mount of it in another namespace only: the wait would have gone on
///   until that one goes, but nothing is left to report its end:
///   detached, shutdown not confirmed, the holders named;
/// - no mount anywhere in view: the last mount was this one (or went with
///   the holder that let go), and `deactivate_super()` follows the
///   `dput()` in the same `cleanup_mnt()`; or a holder out of view (a
///   mount covered by another, a namespace the scan cannot reach) keeps
///   it. Only a block device claim released tells the two apart: without
///   one the outcome is "detached, not confirmed".
fn after_root_evicted(target: &Target) -> RootEvicted {
    let dev = target.mount.dev;
    let here = mountinfo::read(None)
        .ok()
        .and_then(|mounts| mounts.of_dev(dev).next().map(|m| m.mount_point.clone()));
    if let Some(at) = here {
        return RootEvicted::MountedHere(at);
    }
    let elsewhere = blockers::find(&target.mount, None, blockers::deadline_in(None))
        .iter()
        .any(|b| matches!(b, Blocker::Mount { .. }));
    if elsewhere {
        RootEvicted::MountedElsewhere
    } else {
        RootEvicted::NotMounted
    }
}

/// The errno of the kernel's refusal of a target this process pins
/// ([`pinned_by_caller`]): EDEADLK, or EPERM for a caller that umount(2)
/// would refuse first for its privilege. None: not pinned.
pub(super) fn refusal_if_pinned(target: &Target, options: &super::Options<'_>) -> Option<Errno> {
    pinned_by_caller(target, options).then(|| match rustix::process::geteuid().is_root() {
        true => Errno::DEADLK,
        false => Errno::PERM,
    })
}

/// Whether this process's root or working directory is on the target's
/// superblock: then it cannot shut down while we wait for it. The kernel
/// path's `UMOUNT_WAIT` refuses this with EDEADLK before changing anything
/// (`current_fs_pins_super()` in the series), and so does the fallback.
/// It covers `umount-wait /`, which umount(2) would turn into a read-only
/// remount that returns 0, and a lazy unmount of the working directory's
/// filesystem; a bind mount of the root's filesystem is refused too, as
/// on the kernel path ([`super::Caller::pins`]). The caller is found once
/// for many targets (`options.caller`), else here, with a read of the
/// mount table. When this cannot be found out, nothing is refused.
fn pinned_by_caller(target: &Target, options: &super::Options<'_>) -> bool {
    let caller = match options.caller {
        Some(caller) => Ok(caller),
        // A table that cannot be read leaves the mount ids to compare.
        None => super::Caller::find(&mountinfo::read(None).unwrap_or_default()),
    };
    caller.is_ok_and(|caller| caller.pins(&target.mount))
}

/// Once the claim is given back, waits until no device-mapper device of
/// `nodes` is open any more, until `deadline` ([`DEVICE_CLOSE_GRACE`]
/// past the claim, or the run's) or the cancellation: those still open
/// then. The claim does not say that the device is closed: a kernel
/// without the series' patch 0008 gives the claim back first
/// (`bdev_fput()`) and closes the device file later, from a worker when
/// the last reference was put by a kernel thread (io_uring's: S3), a
/// jiffy or more after; `dmsetup remove` or `cryptsetup close` right
/// after the return failed with EBUSY in 6 and 8 of 30 runs on 6.12
/// (bench/results/device-after-2026-12-05.txt). No event says that a
/// device was closed: the one retry loop ([`backoff`]) asks the device
/// mapper for the count. Another opener (a reader of the device) keeps it
/// past the grace: the filesystem is shut down all the same, and the
/// report says the device is still open.
fn wait_for_device_close(nodes: &[PathBuf], cancel: Cancel<'_>, deadline: Instant) -> Vec<PathBuf> {
    let mut open = nodes.to_vec();
    let _ = backoff::retry(
        deadline,
        cancel,
        |e| e,
        || {
            open = sys::dm_still_open(&open);
            match open.is_empty() {
                true => Try::Done(()),
                false => Try::Again::<(), Errno>,
            }
        },
    );
    open
}

/// Retries `open(dev, O_EXCL)` on each of `nodes` until every claim is
/// gone (a device found free is not tried again). This is not a poll
/// loop: it runs only after `IN_UNMOUNT`, when the superblock is already
/// shutting down and only `->put_super()` and the release of the devices
/// remain; there is no event for that release. `attempts` counts rounds.
fn wait_for_claims(
    nodes: &[PathBuf],
    cancel: Cancel<'_>,
    deadline: Instant,
    attempts: &mut u32,
) -> Result<(), Stopped<Errno>> {
    let mut claimed: Vec<&Path> = nodes.iter().map(PathBuf::as_path).collect();
    backoff::retry(
        deadline,
        cancel,
        |e| e,
        || {
            *attempts += 1;
            let mut failed = None;
            claimed.retain(|node| match sys::try_claim(node) {
                Ok(()) => false,
                // The device went away with its last user (a loop device
                // with autoclear, a removed disk): nothing claims it any
                // more.
                Err(Errno::NOENT | Errno::NXIO | Errno::NODEV) => false,
                Err(Errno::BUSY) => true,
                Err(e) => {
                    failed = failed.or(Some(e));
                    true
                }
            });
            match (failed, claimed.is_empty()) {
                (Some(e), _) => Try::Failed(e),
                (None, true) => Try::Done(()),
                (None, false) => Try::Again,
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_order_of_in_unmount_comes_with_linux_7() {
        for old in [
            "6.12.118-amd64",
            "6.18.44-fc-v1272",
            "6.19.0",
            "5.10.0-30-amd64",
        ] {
            assert!(!release_sends_unmount_early(old), "{old}");
        }
        for new in ["7.0.0-rc1", "7.3.4+bpo-amd64", "10.1", "", "unknown"] {
            assert!(release_sends_unmount_early(new), "{new:?}");
        }
    }

    /// A network filesystem's IN_UNMOUNT confirms nothing on 7.x; on 6.x,
    /// or for a filesystem that is not a network one, it does.
    #[test]
    fn in_unmount_confirms_a_network_filesystem_only_where_it_follows_the_writeback() {
        let mount = |fstype: &str| {
            let line = format!("30 1 0:50 / /net rw - {fstype} server:/export rw");
            crate::mountinfo::parse_line(line.as_bytes()).unwrap()
        };
        for fstype in ["nfs", "nfs4", "cifs", "smb3", "9p", "ceph"] {
            let m = mount(fstype);
            assert!(!unmount_event_confirms(&m, || "7.3.4".into()), "{fstype}");
            assert!(
                unmount_event_confirms(&m, || "6.12.118".into()),
                "{fstype} on 6.12"
            );
        }
        for fstype in ["fuse", "fuse.sshfs", "virtiofs", "tmpfs", "overlay"] {
            assert!(
                unmount_event_confirms(&mount(fstype), || "7.3.4".into()),
                "{fstype}"
            );
        }
    }
}
