//! The kernel path: `umount2(target, flags | UMOUNT_WAIT)`, made in a
//! child process that is killed when the deadline or a cancellation comes
//! first.

use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::report::{detached_unconfirmed, timed_out, unmount_failed};
use super::{Attempt, STATUS_INTERVAL};
use crate::cancel::{self, Wake};
use crate::child::{CallChild, Ended};
use crate::mountinfo::{self, Mount};
use crate::outcome::{Error, ErrorKind, Report, State, Unconfirmed};
use crate::sys::{self, UnmountOptions};

/// Why the kernel path stopped waiting for its child before the child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopped {
    Deadline,
    /// The caller's cancellation handle.
    Cancelled,
    /// Waiting itself failed (`poll`, `waitid`).
    Failed(&'static str, Errno),
}

/// `umount2(target, flags | UMOUNT_WAIT)`, made in a child process.
///
/// The kernel's wait is killable, not interruptible: once the mount is
/// detached the call returns only when the superblock is dead, and only the
/// caller's death ends it early; a timer or a caught signal leaves it
/// waiting. So a child makes the call ([`CallChild`], which blocks every
/// signal in it: Ctrl-C reaches the whole process group, and only our
/// SIGKILL may end the call early) and this thread waits for the child's
/// end (`poll` on its pidfd) until the deadline or the caller's
/// cancellation, sending progress meanwhile; whichever comes first, the
/// child is killed with SIGKILL and reaped.
pub(super) fn unmount(attempt: &Attempt<'_>, mut report: Report) -> Result<Report, Error> {
    let Attempt {
        target, options, ..
    } = *attempt;
    let flags = UnmountOptions {
        wait: true,
        ..attempt.flags
    };
    let call = sys::PreparedUnmount::new(&target.path, flags)
        .map_err(|e| Error::from_errno(&target.given, "unmounting", e))?;
    super::still_there(target)?;
    let start = Instant::now();
    let deadline = options.timeout.map(|t| start + t);
    // SAFETY: the child makes one umount2(2) with arguments prepared above.
    let mut child = unsafe { CallChild::spawn(|| call.call()) }
        .map_err(|e| Error::from_errno(&target.given, "starting the unmount process", e))?;
    let mut tick = start + STATUS_INTERVAL;
    let stopped = loop {
        let wake = deadline.map_or(tick, |d| d.min(tick));
        match cancel::wait_readable(Some(child.fd()), options.cancel, wake) {
            Wake::Readable => match child.try_wait() {
                Ok(Some(_)) => break None,
                Ok(None) => continue,
                Err(e) => break Some(Stopped::Failed("reaping the unmount process", e)),
            },
            Wake::Deadline if deadline.is_some_and(|d| Instant::now() >= d) => {
                break Some(Stopped::Deadline)
            }
            Wake::Deadline => {
                attempt.still_waiting(&mut report, start);
                tick += STATUS_INTERVAL;
            }
            Wake::Cancelled => break Some(Stopped::Cancelled),
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
/// deadline or on cancellation, or by anyone else) reported nothing; so
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
            (Some(Stopped::Cancelled), _) => KernelEnd::Untouched(ErrorKind::Interrupted, None),
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
        Some(Stopped::Deadline) => KernelEnd::Detached(timed_out(timeout)),
        Some(Stopped::Cancelled) => KernelEnd::Detached(Unconfirmed::Cancelled),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const KILL: i32 = 9;
    const T: Option<Duration> = Some(Duration::from_secs(2));

    /// The mount table must not be read when the call reported a result.
    fn unread() -> bool {
        panic!("the mount table was read")
    }

    #[test]
    fn kernel_end_a_reported_result_counts_whatever_woke_the_parent() {
        for stopped in [None, Some(Stopped::Deadline), Some(Stopped::Cancelled)] {
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
            kernel_end(Ended::Killed(KILL), Some(Stopped::Cancelled), T, gone),
            KernelEnd::Detached(Unconfirmed::Cancelled)
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
            kernel_end(Ended::Killed(KILL), Some(Stopped::Cancelled), T, there),
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
}
