//! Unmounting one target and waiting until its filesystem is shut down, on
//! the kernel path or the fallback path.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::blockers::{self, Blocker, Exclude};
use crate::child::{CallChild, Ended};
use crate::device;
use crate::mountinfo::{self, Mount};
use crate::outcome::{Error, ErrorKind, Outcome, Report, State, Unconfirmed, WaitPath};
use crate::signals::{self, Blocked, Interruption, Wake};
use crate::sys::{self, Inotify, Probe, UnmountOptions, WatchEvents};
use crate::target::Target;

/// Which path to use, from `--mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The kernel path where the kernel has `UMOUNT_WAIT`, else the fallback.
    #[default]
    Auto,
    /// The kernel path, or fail (untouched) where the flag is missing.
    Kernel,
    /// The fallback path, whatever the kernel offers.
    Fallback,
}

impl Mode {
    /// The path for this mode on a kernel that probed as `probe`.
    pub fn choose(self, probe: Probe) -> Result<WaitPath, ErrorKind> {
        match (self, probe) {
            (Mode::Fallback, _) => Ok(WaitPath::Fallback),
            (_, Probe::Kernel) => Ok(WaitPath::Kernel),
            (Mode::Kernel, _) => Err(ErrorKind::NoKernelSupport),
            (Mode::Auto, _) => Ok(WaitPath::Fallback),
        }
    }
}

/// How to unmount and wait.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `-f` (`MNT_FORCE`) and `-l` (`MNT_DETACH`).
    pub force: bool,
    pub lazy: bool,
    /// `-r`: remount read-only when the unmount fails with EBUSY.
    pub read_only_on_failure: bool,
    /// `-r` and `--all`: when the wait ends unconfirmed (timeout, signal),
    /// make the filesystem read-only through a mount of it that a holder's
    /// mount namespace still has ([`read_only_elsewhere`]).
    pub read_only_if_unconfirmed: bool,
    /// `-t`: bounds the whole operation on one target.
    pub timeout: Option<Duration>,
    /// Look for blockers during the wait (every [`STATUS_INTERVAL`]).
    pub watch_blockers: bool,
}

/// How often a lasting wait reports progress; the first report comes after
/// one interval.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// After `IN_UNMOUNT`, how long the block device claim may take to go when no
/// `--timeout` bounds it. `IN_UNMOUNT` is sent by `generic_shutdown_super()`
/// before `->put_super()` (ext4 commits its journal there) and before the
/// device is released: a millisecond to tens of milliseconds. Seconds mean
/// that something else holds the device.
pub const CLAIM_GRACE: Duration = Duration::from_secs(5);

/// The first pause between two `O_EXCL` attempts; it doubles up to
/// [`CLAIM_BACKOFF_MAX`], which bounds how late a release is noticed.
pub const CLAIM_BACKOFF_START: Duration = Duration::from_micros(500);
pub const CLAIM_BACKOFF_MAX: Duration = Duration::from_millis(10);

/// Progress of a wait that lasts, sent to the observer.
#[derive(Debug)]
pub enum Progress<'a> {
    Waiting {
        target: &'a Path,
        elapsed: Duration,
        blockers: &'a [Blocker],
    },
}

/// The inotify instance the fallback path watches mount roots in, opened at
/// the first watch and kept for the targets that follow. Closing an instance
/// waits for an SRCU grace period ([`Inotify`]): with an instance per target,
/// `--all` over 100 tmpfs spent 470 of its 500 ms in `close(2)`.
#[derive(Default)]
pub struct Watcher {
    inotify: Option<Inotify>,
}

impl Watcher {
    fn inotify(&mut self) -> Result<&mut Inotify, Errno> {
        if self.inotify.is_none() {
            self.inotify = Some(Inotify::new()?);
        }
        Ok(self.inotify.as_mut().expect("just opened"))
    }
}

/// Unmounts `target` and waits until its filesystem is shut down, bounded by
/// `options.timeout` and interrupted by SIGINT/SIGTERM.
///
/// `observer` is called from the calling thread on both paths (the kernel
/// path's `umount2` runs in a child process).
pub fn unmount(
    target: &Target,
    path: WaitPath,
    options: &Options,
    observer: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Report, Error> {
    unmount_with(target, path, options, observer, &mut Watcher::default())
}

/// [`unmount`], with the fallback path's watch in `watcher`'s instance: for
/// many targets in a row.
pub fn unmount_with(
    target: &Target,
    path: WaitPath,
    options: &Options,
    observer: &(dyn Fn(Progress<'_>) + Sync),
    watcher: &mut Watcher,
) -> Result<Report, Error> {
    signals::install();
    if signals::stop_signal().is_some() {
        return Err(Error::new(&target.given, ErrorKind::Interrupted, None));
    }
    let attempt = Attempt {
        target,
        flags: plain_flags(target, options),
        options,
        observer,
    };
    let mut report = new_report(target, path);
    let mut report = match path {
        WaitPath::Kernel => kernel_path(&attempt, report),
        WaitPath::Fallback => {
            report.device_node =
                device::node_for(target.mount.dev, Path::new(&target.mount.source));
            fallback_path(&attempt, report, watcher)
        }
    }?;
    if options.read_only_if_unconfirmed && matches!(report.outcome, Outcome::DetachedUnconfirmed(_))
    {
        report.read_only_through = read_only_elsewhere(&report.blockers);
    }
    Ok(report)
}

/// A filesystem that outlived its wait is detached here but still mounted
/// in some holder's mount namespace: makes it read-only there, through
/// `/proc/PID/root/MOUNT_POINT` (`fspick(2)`, which unlike `MS_REMOUNT`
/// reaches another namespace's mount). A reboot then finds it clean, its
/// journal committed, though it never shut down. Tries each holder in turn;
/// returns the one it worked through.
fn read_only_elsewhere(blockers: &[Blocker]) -> Option<Blocker> {
    blockers.iter().find_map(|blocker| match blocker {
        Blocker::Mount {
            pid, mount_point, ..
        } => {
            let inside = mount_point.strip_prefix("/").unwrap_or(mount_point);
            let path = Path::new("/proc")
                .join(pid.to_string())
                .join("root")
                .join(inside);
            sys::reconfigure_read_only(&path)
                .ok()
                .map(|()| blocker.clone())
        }
        _ => None,
    })
}

/// One target on its way through the kernel or the fallback path.
struct Attempt<'a> {
    target: &'a Target,
    /// The `umount2(2)` flags without `UMOUNT_WAIT`.
    flags: UnmountOptions,
    options: &'a Options,
    observer: &'a (dyn Fn(Progress<'_>) + Sync),
}

/// Unmounts a mount whose filesystem stays mounted at `still_mounted_at` (a
/// bind mount of it, another mount `--all` leaves alone): its superblock
/// cannot shut down now, so this is a plain `umount2(2)` with nothing to
/// wait for; the wait comes with the filesystem's last mount. A failure is
/// handled as by [`unmount`] (`-r`, blockers of a busy mount).
pub fn unmount_shared(
    target: &Target,
    path: WaitPath,
    still_mounted_at: &Path,
    options: &Options,
) -> Result<Report, Error> {
    signals::install();
    if signals::stop_signal().is_some() {
        return Err(Error::new(&target.given, ErrorKind::Interrupted, None));
    }
    let mut report = new_report(target, path);
    let start = Instant::now();
    let result = sys::unmount(&target.path, plain_flags(target, options));
    report.umount_time = start.elapsed();
    match result {
        Ok(()) => {
            report.outcome = Outcome::Unmounted {
                still_mounted_at: still_mounted_at.to_path_buf(),
            };
            Ok(report)
        }
        Err(errno) => unmount_failed(target, options, report, errno),
    }
}

fn plain_flags(target: &Target, options: &Options) -> UnmountOptions {
    UnmountOptions {
        force: options.force,
        lazy: options.lazy,
        no_follow: !target.follow,
        wait: false,
    }
}

/// A report for `target` before anything is done: shut down, no times.
pub fn new_report(target: &Target, path: WaitPath) -> Report {
    Report {
        target: target.given.clone(),
        mount: target.mount.clone(),
        device_node: None,
        path,
        outcome: Outcome::ShutDown,
        umount_time: Duration::ZERO,
        wait_time: Duration::ZERO,
        claim_attempts: 0,
        blockers: Vec::new(),
        read_only_through: None,
    }
}

/// The unmount failed and nothing changed: with `-r` and EBUSY, remount
/// read-only; otherwise an error that lists the blockers of a busy target.
fn unmount_failed(
    target: &Target,
    options: &Options,
    mut report: Report,
    errno: Errno,
) -> Result<Report, Error> {
    if errno == Errno::BUSY && options.read_only_on_failure {
        report.blockers = blockers::find(
            target.mount.dev,
            Some(Exclude {
                mount_id: target.mount.id,
            }),
        );
        return match sys::remount_read_only(&target.path) {
            Ok(()) => {
                report.outcome = Outcome::RemountedReadOnly(errno);
                Ok(report)
            }
            Err(e) => Err(Error::from_errno(&target.given, "remounting read-only", e)),
        };
    }
    let mut error = Error::from_unmount(&target.given, errno);
    if errno == Errno::BUSY {
        error.blockers = blockers::find(
            target.mount.dev,
            Some(Exclude {
                mount_id: target.mount.id,
            }),
        );
    }
    Err(error)
}

fn detached_unconfirmed(mut report: Report, why: Unconfirmed) -> Report {
    report.blockers = blockers::find(report.mount.dev, None);
    report.outcome = Outcome::DetachedUnconfirmed(why);
    report
}

fn unconfirmed_by(interruption: Option<Interruption>, timeout: Option<Duration>) -> Unconfirmed {
    match (interruption, timeout) {
        (Some(Interruption::Signal(sig)), _) => Unconfirmed::Signal(sig),
        (Some(Interruption::Timeout), Some(t)) => Unconfirmed::Timeout(t),
        (_, Some(t)) => Unconfirmed::Timeout(t),
        (_, None) => Unconfirmed::Signal(0),
    }
}

/// Why the kernel path stopped waiting for its child before the child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopped {
    Deadline,
    Signal(i32),
    /// Waiting itself failed (`ppoll`, `waitid`).
    Failed(&'static str, Errno),
}

/// `umount2(target, flags | UMOUNT_WAIT)`, made in a child process.
///
/// The kernel's wait is killable, not interruptible: once the mount is
/// detached the call returns only when the superblock is dead, and only the
/// caller's death ends it early; a timer or a caught signal leaves it
/// waiting. So a child makes the call ([`CallChild`]) and this thread waits
/// for the child's end (`ppoll` on its pidfd) until the deadline, SIGINT or
/// SIGTERM, sending progress meanwhile; whichever comes first, the child is
/// killed with SIGKILL and reaped.
fn kernel_path(attempt: &Attempt<'_>, mut report: Report) -> Result<Report, Error> {
    let Attempt {
        target,
        options,
        observer,
        ..
    } = *attempt;
    let flags = UnmountOptions {
        wait: true,
        ..attempt.flags
    };
    let call = sys::PreparedUnmount::new(&target.path, flags)
        .map_err(|e| Error::from_errno(&target.given, "unmounting", e))?;
    // Blocked before the fork, so that the child inherits the mask: SIGINT
    // and SIGTERM (Ctrl-C reaches the whole process group) stay pending
    // there and can never end its call, whether the kernel's wait is
    // killable or (an older version of the series) interruptible. Only our
    // SIGKILL ends the child early. This thread takes them inside ppoll.
    let blocked = Blocked::new();
    let start = Instant::now();
    let deadline = options.timeout.map(|t| start + t);
    // SAFETY: the child makes one umount2(2) with arguments prepared above.
    let mut child = unsafe { CallChild::spawn(|| call.call()) }
        .map_err(|e| Error::from_errno(&target.given, "starting the unmount process", e))?;
    let mut tick = start + STATUS_INTERVAL;
    let stopped = loop {
        let wake = deadline.map_or(tick, |d| d.min(tick));
        match blocked.wait_readable(Some(child.fd()), wake) {
            Wake::Readable => match child.try_wait() {
                Ok(Some(_)) => break None,
                Ok(None) => continue,
                Err(e) => break Some(Stopped::Failed("reaping the unmount process", e)),
            },
            Wake::Deadline if deadline.is_some_and(|d| Instant::now() >= d) => {
                break Some(Stopped::Deadline)
            }
            Wake::Deadline => {
                if options.watch_blockers {
                    report.blockers = blockers::find(target.mount.dev, None);
                }
                observer(Progress::Waiting {
                    target: &target.given,
                    elapsed: start.elapsed(),
                    blockers: &report.blockers,
                });
                tick += STATUS_INTERVAL;
            }
            Wake::Signal(sig) => break Some(Stopped::Signal(sig)),
            Wake::Failed(e) => break Some(Stopped::Failed("waiting for the unmount process", e)),
        }
    };
    // Returns at once when the child has ended; else kills it and waits
    // until it has. Only then is the mount table final: a child still
    // inside umount2 might yet detach.
    let ended = child.kill();
    report.umount_time = start.elapsed();
    let ended = ended.map_err(|e| {
        // The child may still be running and may detach the mount later:
        // nothing can be promised.
        Error::from_errno(&target.given, "ending the unmount process", e)
            .with_state(State::Detached)
    })?;
    match kernel_end(ended, stopped, options.timeout, || {
        still_mounted(&target.mount)
    }) {
        KernelEnd::ShutDown => Ok(report),
        KernelEnd::Failed(errno) => unmount_failed(target, options, report, errno),
        KernelEnd::Detached(why) => Ok(detached_unconfirmed(report, why)),
        KernelEnd::Untouched(kind, errno) => Err(Error::new(&target.given, kind, errno)),
        KernelEnd::DetachedError(step, errno) => {
            Err(Error::from_errno(&target.given, step, errno).with_state(State::Detached))
        }
    }
}

/// What a kernel-path unmount left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KernelEnd {
    /// The call returned 0: the superblock is dead.
    ShutDown,
    /// The call failed before changing anything.
    Failed(Errno),
    /// The mount is gone, the wait for the superblock did not finish.
    Detached(Unconfirmed),
    /// The child ended before the mount was detached.
    Untouched(ErrorKind, Option<Errno>),
    /// Waiting for the child failed, and the mount is gone.
    DetachedError(&'static str, Errno),
}

/// Decides what the kernel path's child left behind, from how it `ended`,
/// why the parent stopped waiting (if it did), and, when the call did not
/// report a result, whether the mount is still `mounted`.
///
/// The kernel detaches and waits in one system call, so the child cannot
/// say "detached" in between. A child that was killed (by us at the
/// deadline or on SIGINT/SIGTERM, or by anyone else) reported nothing; so
/// did one whose call returned EINTR (a kernel whose wait is interruptible,
/// or an interruption before the detach). Then the mount table decides,
/// read after the child is reaped, when nothing can change any more: the
/// mount still there means the call ended before the detach (untouched);
/// gone means detached, shutdown not confirmed.
fn kernel_end(
    ended: Ended,
    stopped: Option<Stopped>,
    timeout: Option<Duration>,
    mounted: impl FnOnce() -> bool,
) -> KernelEnd {
    // A result that came before the kill counts, whatever woke us.
    let errno = match ended {
        Ended::Returned(Ok(())) => return KernelEnd::ShutDown,
        Ended::Returned(Err(Errno::INTR)) => Some(Errno::INTR),
        Ended::Returned(Err(errno)) => return KernelEnd::Failed(errno),
        Ended::Killed(_) => None,
    };
    if mounted() {
        return match (stopped, errno) {
            (Some(Stopped::Deadline), _) => KernelEnd::Untouched(ErrorKind::DeadlineReached, None),
            (Some(Stopped::Signal(_)), _) => KernelEnd::Untouched(ErrorKind::Interrupted, None),
            (_, Some(errno)) => KernelEnd::Failed(errno),
            (Some(Stopped::Failed(step, e)), None) => {
                KernelEnd::Untouched(ErrorKind::System(step), Some(e))
            }
            (None, None) => {
                KernelEnd::Untouched(ErrorKind::System("the unmount process was killed"), None)
            }
        };
    }
    let killed_by = match ended {
        Ended::Killed(sig) => sig,
        Ended::Returned(_) => 0,
    };
    match stopped {
        Some(Stopped::Deadline) => {
            KernelEnd::Detached(unconfirmed_by(Some(Interruption::Timeout), timeout))
        }
        Some(Stopped::Signal(sig)) => KernelEnd::Detached(Unconfirmed::Signal(sig)),
        Some(Stopped::Failed(step, e)) => KernelEnd::DetachedError(step, e),
        None => KernelEnd::Detached(Unconfirmed::Signal(killed_by)),
    }
}

/// Whether `mount` is still in this process's mount table (the child's: it
/// shares the mount namespace). The id alone is not enough, since the ids
/// of unmounted mounts are given to new ones: the device and mount point
/// must match too. A table that cannot be read says no: "untouched" is
/// claimed only when seen, and "detached, shutdown not confirmed" promises
/// nothing.
fn still_mounted(mount: &Mount) -> bool {
    match mountinfo::read(None) {
        Ok(mounts) => mountinfo::by_id(&mounts, mount.id)
            .is_some_and(|m| m.dev == mount.dev && m.mount_point == mount.mount_point),
        Err(_) => false,
    }
}

/// inotify watch on the mount root, `umount2(target, flags)`, wait for
/// `IN_UNMOUNT` and `IN_IGNORED`, then the block device claim.
fn fallback_path(
    attempt: &Attempt<'_>,
    mut report: Report,
    watcher: &mut Watcher,
) -> Result<Report, Error> {
    let Attempt {
        target,
        flags,
        options,
        observer,
    } = *attempt;
    // Added before the unmount: afterwards the path no longer leads there.
    let mut watch = watcher
        .inotify()
        .and_then(|inotify| inotify.watch_root(&target.path, target.follow))
        .map_err(|e| {
            Error::from_errno(
                &target.given,
                "adding an inotify watch on the mount root",
                e,
            )
        })?;
    // From here SIGINT/SIGTERM are taken only inside ppoll, so none is lost
    // between checking for it and going to sleep.
    let blocked = Blocked::new();
    let start = Instant::now();
    let deadline = options.timeout.map(|t| start + t);
    if let Err(errno) = sys::unmount(&target.path, flags) {
        return unmount_failed(target, options, report, errno);
    }
    report.umount_time = start.elapsed();
    let wait_start = Instant::now();
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
        match blocked.wait_readable(Some(watch.fd()), wake) {
            Wake::Readable => continue,
            Wake::Deadline if deadline.is_some_and(|d| Instant::now() >= d) => {
                report.wait_time = wait_start.elapsed();
                return Ok(detached_unconfirmed(
                    report,
                    unconfirmed_by(Some(Interruption::Timeout), options.timeout),
                ));
            }
            Wake::Deadline => {
                if options.watch_blockers {
                    report.blockers = blockers::find(target.mount.dev, None);
                }
                observer(Progress::Waiting {
                    target: &target.given,
                    elapsed: start.elapsed(),
                    blockers: &report.blockers,
                });
                tick += STATUS_INTERVAL;
            }
            Wake::Signal(sig) => {
                report.wait_time = wait_start.elapsed();
                return Ok(detached_unconfirmed(report, Unconfirmed::Signal(sig)));
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
    if !seen.unmounted {
        return Err(detached(Error::new(
            &target.given,
            ErrorKind::System("the watch on the mount root ended without IN_UNMOUNT"),
            None,
        )));
    }
    if let Some(node) = report.device_node.clone() {
        let claim_deadline = deadline.unwrap_or_else(|| Instant::now() + CLAIM_GRACE);
        match wait_for_claim(&node, &blocked, claim_deadline, &mut report.claim_attempts) {
            Ok(()) => {}
            Err(ClaimWait::Expired) => {
                report.wait_time = wait_start.elapsed();
                let why = match options.timeout {
                    Some(t) => Unconfirmed::Timeout(t),
                    None => Unconfirmed::DeviceClaimed,
                };
                return Ok(detached_unconfirmed(report, why));
            }
            Err(ClaimWait::Interrupted(i)) => {
                report.wait_time = wait_start.elapsed();
                return Ok(detached_unconfirmed(
                    report,
                    unconfirmed_by(Some(i), options.timeout),
                ));
            }
            Err(ClaimWait::Failed(e)) => {
                return Err(detached(Error::from_errno(
                    &target.given,
                    "checking the block device claim",
                    e,
                )))
            }
        }
    }
    report.wait_time = wait_start.elapsed();
    Ok(report)
}

enum ClaimWait {
    Expired,
    Interrupted(Interruption),
    Failed(Errno),
}

/// Retries `open(dev, O_EXCL)` until the claim is gone. This is the one retry
/// in the tool and not a poll loop: it runs only after `IN_UNMOUNT`, when the
/// superblock is already shutting down and only `->put_super()` and the
/// release of the device remain; there is no event for that release.
fn wait_for_claim(
    node: &Path,
    blocked: &Blocked,
    deadline: Instant,
    attempts: &mut u32,
) -> Result<(), ClaimWait> {
    let mut pause = CLAIM_BACKOFF_START;
    loop {
        *attempts += 1;
        match sys::try_claim(node) {
            Ok(()) => return Ok(()),
            // The device went away with its last user (a loop device with
            // autoclear, a removed disk): nothing claims it any more.
            Err(Errno::NOENT | Errno::NXIO | Errno::NODEV) => return Ok(()),
            Err(Errno::BUSY) => {}
            Err(e) => return Err(ClaimWait::Failed(e)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ClaimWait::Expired);
        }
        match blocked.wait_readable(None, (now + pause).min(deadline)) {
            Wake::Readable | Wake::Deadline => {}
            Wake::Signal(sig) => return Err(ClaimWait::Interrupted(Interruption::Signal(sig))),
            Wake::Failed(e) => return Err(ClaimWait::Failed(e)),
        }
        pause = (pause * 2).min(CLAIM_BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_chooses_path() {
        assert_eq!(Mode::Auto.choose(Probe::Kernel), Ok(WaitPath::Kernel));
        assert_eq!(Mode::Auto.choose(Probe::Fallback), Ok(WaitPath::Fallback));
        assert_eq!(
            Mode::Auto.choose(Probe::Unexpected(None)),
            Ok(WaitPath::Fallback)
        );
        assert_eq!(Mode::Fallback.choose(Probe::Kernel), Ok(WaitPath::Fallback));
        assert_eq!(Mode::Kernel.choose(Probe::Kernel), Ok(WaitPath::Kernel));
        assert_eq!(
            Mode::Kernel.choose(Probe::Fallback),
            Err(ErrorKind::NoKernelSupport)
        );
    }

    const KILL: i32 = 9;
    const T: Option<Duration> = Some(Duration::from_secs(2));

    /// The mount table must not be read when the call reported a result.
    fn unread() -> bool {
        panic!("the mount table was read")
    }

    #[test]
    fn kernel_end_a_reported_result_counts_whatever_woke_the_parent() {
        for stopped in [None, Some(Stopped::Deadline), Some(Stopped::Signal(2))] {
            let end = |ended| kernel_end(ended, stopped, T, unread);
            assert_eq!(end(Ended::Returned(Ok(()))), KernelEnd::ShutDown);
            assert_eq!(
                end(Ended::Returned(Err(Errno::BUSY))),
                KernelEnd::Failed(Errno::BUSY)
            );
        }
    }

    #[test]
    fn kernel_end_killed_with_the_mount_gone_is_detached() {
        let gone = || false;
        assert_eq!(
            kernel_end(Ended::Killed(KILL), Some(Stopped::Deadline), T, gone),
            KernelEnd::Detached(Unconfirmed::Timeout(Duration::from_secs(2)))
        );
        assert_eq!(
            kernel_end(Ended::Killed(KILL), Some(Stopped::Signal(15)), T, gone),
            KernelEnd::Detached(Unconfirmed::Signal(15))
        );
        // Killed by someone else while we still waited.
        assert_eq!(
            kernel_end(Ended::Killed(KILL), None, None, gone),
            KernelEnd::Detached(Unconfirmed::Signal(KILL))
        );
        // A kernel whose wait returns EINTR after the detach.
        assert_eq!(
            kernel_end(Ended::Returned(Err(Errno::INTR)), None, T, gone),
            KernelEnd::Detached(Unconfirmed::Signal(0))
        );
        assert_eq!(
            kernel_end(
                Ended::Killed(KILL),
                Some(Stopped::Failed("waiting", Errno::NOMEM)),
                T,
                gone
            ),
            KernelEnd::DetachedError("waiting", Errno::NOMEM)
        );
    }

    #[test]
    fn kernel_end_killed_with_the_mount_still_there_is_untouched() {
        let there = || true;
        assert_eq!(
            kernel_end(Ended::Killed(KILL), Some(Stopped::Deadline), T, there),
            KernelEnd::Untouched(ErrorKind::DeadlineReached, None)
        );
        assert_eq!(
            kernel_end(Ended::Killed(KILL), Some(Stopped::Signal(2)), T, there),
            KernelEnd::Untouched(ErrorKind::Interrupted, None)
        );
        assert_eq!(
            kernel_end(Ended::Returned(Err(Errno::INTR)), None, T, there),
            KernelEnd::Failed(Errno::INTR)
        );
        assert!(matches!(
            kernel_end(Ended::Killed(KILL), None, T, there),
            KernelEnd::Untouched(ErrorKind::System(_), None)
        ));
    }

    /// The target's mount is found in this process's table, and one that
    /// differs in device or mount point (an id given to a new mount) is not
    /// taken for it.
    #[test]
    fn still_mounted_matches_id_device_and_mount_point() {
        let mounts = mountinfo::read(None).unwrap();
        let root = mounts
            .iter()
            .find(|m| m.mount_point == Path::new("/"))
            .unwrap()
            .clone();
        assert!(still_mounted(&root));
        let moved = Mount {
            mount_point: "/umw-nowhere".into(),
            ..root.clone()
        };
        assert!(!still_mounted(&moved));
        let other_dev = Mount {
            dev: mountinfo::DevId {
                major: root.dev.major + 1,
                minor: root.dev.minor,
            },
            ..root
        };
        assert!(!still_mounted(&other_dev));
    }

    #[test]
    fn unconfirmed_reason() {
        let t = Some(Duration::from_secs(2));
        assert_eq!(
            unconfirmed_by(Some(Interruption::Signal(2)), t),
            Unconfirmed::Signal(2)
        );
        assert_eq!(
            unconfirmed_by(Some(Interruption::Timeout), t),
            Unconfirmed::Timeout(Duration::from_secs(2))
        );
    }
}
