//! The report a target ends with, and the error of an unmount that failed.

use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::read_only;
use super::{Options, LATE_SCAN};
use crate::blockers::{self, Blocker, Exclude};
use crate::helper;
use crate::mountinfo::Mount;
use crate::outcome::{Error, ErrorKind, Outcome, Report, Unconfirmed, WaitPath};
use crate::target::Target;

/// A report for `target` before anything is done: shut down, no times.
pub fn new_report(target: &Target, path: WaitPath) -> Report {
    Report {
        target: target.given.clone(),
        mount: target.mount.clone(),
        device_nodes: Vec::new(),
        path,
        outcome: Outcome::ShutDown,
        umount_time: Duration::ZERO,
        wait_time: Duration::ZERO,
        claim_attempts: 0,
        blockers: Vec::new(),
        read_only_through: None,
        kernel_errors: Vec::new(),
        thawed: false,
        device_names: match target.mount.dev.major {
            0 => Vec::new(),
            _ => crate::kmsg::names_of(target.mount.dev),
        },
        device_removed: false,
        device_still_open: Vec::new(),
    }
}

/// The unmount failed and nothing changed: with `-r` and EBUSY (or the
/// EDEADLK of a filesystem this process holds), remount read-only;
/// otherwise an error that lists the blockers of a busy target.
pub(super) fn unmount_failed(
    target: &Target,
    options: &Options<'_>,
    mut report: Report,
    errno: Errno,
) -> Result<Report, Error> {
    let busy_blockers = || {
        blockers::find(
            &target.mount,
            Some(Exclude {
                mount_id: target.mount.id,
            }),
            blockers::deadline_in(options.timeout),
        )
    };
    let held = errno == Errno::BUSY || errno == Errno::DEADLK;
    if held && options.read_only_on_failure {
        let scan_start = Instant::now();
        report.blockers = busy_blockers();
        // The remount has what the scan left of the deadline.
        let options = Options {
            timeout: options
                .timeout
                .map(|t| t.saturating_sub(scan_start.elapsed())),
            ..*options
        };
        return read_only::remount_busy(target, &options, report, errno);
    }
    let mut error = Error::from_unmount(&target.given, errno);
    if errno == Errno::BUSY {
        error.blockers = busy_blockers();
    }
    if errno == Errno::PERM {
        error.kind = refused_to_a_user(&target.mount);
    }
    Err(error)
}

/// Why the kernel refused this process `mount` (EPERM): a mount that a
/// user may unmount through a setuid program says which one.
fn refused_to_a_user(mount: &Mount) -> ErrorKind {
    let uid = rustix::process::geteuid();
    if !uid.is_root() && helper::is_own_fuse(mount, uid.as_raw()) {
        ErrorKind::OwnFuse
    } else if helper::listed_for_users(&mount.mount_point) {
        ErrorKind::UserMount
    } else {
        ErrorKind::NotSuperuser
    }
}

/// The mount is gone and the wait ended before the shutdown was seen:
/// says why, and what holds the filesystem now, by a scan of its own. The
/// scan comes after the caller's deadline (`--timeout`) or cancellation,
/// if there was one: then it takes [`LATE_SCAN`] at most, so that the
/// deadline holds but for that grace; else [`blockers::SCAN_LIMIT`].
pub(super) fn detached_unconfirmed(
    options: &Options<'_>,
    report: Report,
    why: Unconfirmed,
) -> Report {
    detached_held_by(options, report, why, None)
}

/// [`detached_unconfirmed`], with the holders found already (`held`: by
/// one scan for the filesystems of many waits ended together) or, where
/// None, by a scan of its own.
pub(super) fn detached_held_by(
    options: &Options<'_>,
    mut report: Report,
    why: Unconfirmed,
    held: Option<Vec<Blocker>>,
) -> Report {
    let late = options.timeout.is_some() || matches!(why, Unconfirmed::Cancelled);
    report.blockers = held.unwrap_or_else(|| {
        let until = blockers::deadline_in(late.then_some(LATE_SCAN));
        blockers::find(&report.mount, None, until)
    });
    report.outcome = Outcome::DetachedUnconfirmed(why);
    report
}

/// The reason for a wait that reached its deadline: the timeout the
/// caller gave (without one, a deadline can only be the claim grace
/// period of the fallback path).
pub(super) fn timed_out(timeout: Option<Duration>) -> Unconfirmed {
    match timeout {
        Some(t) => Unconfirmed::Timeout(t),
        None => Unconfirmed::DeviceClaimed,
    }
}
