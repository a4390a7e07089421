//! Unmounting one target and waiting until its filesystem is shut down, on
//! the kernel path or the fallback path.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::blockers::{self, Blocker, Exclude};
use crate::device;
use crate::outcome::{Error, ErrorKind, Outcome, Report, State, Unconfirmed, WaitPath};
use crate::signals::{self, Alarm, Blocked, Interruption, Wake};
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
/// `observer` is called from another thread on the kernel path (the calling
/// thread is inside `umount2`), so it must be `Sync`.
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

/// `umount2(target, flags | UMOUNT_WAIT)`. A SIGALRM timer bounds it; a
/// helper thread (with the signals blocked, so that they reach this thread's
/// system call) reports progress while it lasts.
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
    signals::clear_timer();
    let alarm = match options.timeout {
        Some(t) => Some(Alarm::arm(t).map_err(|e| {
            Error::from_errno(
                &target.given,
                "arming the timeout",
                Errno::from_raw_os_error(e as i32),
            )
        })?),
        None => None,
    };
    let start = Instant::now();
    let caller = signals::current_thread();
    let (result, seen) = std::thread::scope(|scope| {
        let (done, finished) = mpsc::channel::<()>();
        let watchdog = {
            // The helper thread must not take the signals meant to
            // interrupt this thread's umount2.
            let _blocked = Blocked::new();
            scope.spawn(move || {
                let over = |until: Instant| {
                    !matches!(
                        finished.recv_timeout(until.saturating_duration_since(Instant::now())),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    )
                };
                kernel_watchdog(
                    caller,
                    target,
                    start,
                    options.watch_blockers,
                    observer,
                    over,
                )
            })
        };
        let result = sys::unmount(&target.path, flags);
        drop(done);
        (result, watchdog.join().unwrap_or_default())
    });
    report.umount_time = start.elapsed();
    let interruption = signals::interruption();
    drop(alarm);
    report.blockers = seen;
    match result {
        Ok(()) => Ok(report),
        // The detach has happened; the kernel returns EINTR, never restarts.
        Err(Errno::INTR) => Ok(detached_unconfirmed(
            report,
            unconfirmed_by(interruption, options.timeout),
        )),
        Err(errno) => unmount_failed(target, options, report, errno),
    }
}

/// How often the kernel path's helper makes sure a timeout or Ctrl-C that
/// has been recorded reaches the waiting thread.
const REKICK_INTERVAL: Duration = Duration::from_millis(100);

/// Runs beside `umount2(.., UMOUNT_WAIT)` until `over` says it returned:
/// sends progress every [`STATUS_INTERVAL`], and signals the caller again
/// (SIGALRM, every [`REKICK_INTERVAL`]) once a timeout or a SIGINT/SIGTERM
/// has been recorded. A signal that lands just before the caller enters the
/// system call runs its handler in userspace and would otherwise leave the
/// kernel sleeping; the repeat closes that window. Returns the last blockers
/// seen.
fn kernel_watchdog(
    caller: signals::Thread,
    target: &Target,
    start: Instant,
    watch_blockers: bool,
    observer: &(dyn Fn(Progress<'_>) + Sync),
    over: impl Fn(Instant) -> bool,
) -> Vec<Blocker> {
    let mut last = Vec::new();
    let mut tick = start + STATUS_INTERVAL;
    loop {
        let until = tick.min(Instant::now() + REKICK_INTERVAL);
        if over(until) {
            return last;
        }
        if signals::interruption().is_some() {
            signals::rekick(caller);
        }
        if Instant::now() >= tick {
            if watch_blockers {
                last = blockers::find(target.mount.dev, None);
            }
            observer(Progress::Waiting {
                target: &target.given,
                elapsed: start.elapsed(),
                blockers: &last,
            });
            tick += STATUS_INTERVAL;
        }
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
