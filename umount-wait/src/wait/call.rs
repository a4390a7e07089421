//! The steps that a filesystem can hold up, made in a child process
//! ([`CallChild`]) and waited for until the deadline or the caller's
//! cancellation, when the child is killed: the kernel path's
//! `umount2(UMOUNT_WAIT)`, whose wait only the caller's death ends; and,
//! when the caller bounds the wait, the fallback's watch (the permission
//! check of `inotify_add_watch` asks the filesystem: a FUSE daemon that
//! does not answer would hold it for ever) and its `umount2`.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::report::{detached_held_by, timed_out, unmount_failed};
use super::{Attempt, Options, STATUS_INTERVAL};
use crate::blockers::Blocker;
use crate::cancel::{self, Wake};
use crate::child::{CallChild, Ended, KILL_GRACE};
use crate::helper::{Helper, Ran};
use crate::mountinfo::{self, Mount};
use crate::outcome::{Error, ErrorKind, Report, State, Unconfirmed};
use crate::sys::{PreparedUnmount, UnmountOptions};
use crate::target::Target;

/// Why the wait for a child stopped before the child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stopped {
    Deadline,
    /// The caller's cancellation handle.
    Cancelled,
    /// No holder visible for the grace ([`super::OUT_OF_VIEW_GRACE`]).
    OutOfView,
    /// Waiting itself failed (`poll`, `waitid`).
    Failed(&'static str, Errno),
}

/// How a call made in a child ended.
pub(super) struct Call {
    /// How the child ended (killed, when the wait stopped first), or why
    /// it could not be killed and reaped.
    pub ended: Result<Ended, Errno>,
    /// Why the wait stopped before the child ended, if it did.
    pub stopped: Option<Stopped>,
}

/// Makes `call` in a child ([`CallChild`], which blocks every signal in
/// it but SIGKILL: Ctrl-C reaches the whole process group) and waits for
/// its end (`poll` on its pidfd) until `deadline` or the caller's
/// cancellation, telling the observer at each status tick (from `start`);
/// whichever comes first, the child is killed with SIGKILL and reaped.
/// Err: the child could not be started.
///
/// `call` runs in the child: raw system calls on memory prepared before,
/// nothing else ([`CallChild::spawn`]).
pub(super) fn in_child(
    attempt: &Attempt<'_>,
    report: &mut Report,
    start: Instant,
    deadline: Option<Instant>,
    call: impl FnOnce() -> Result<(), Errno>,
) -> Result<Call, Errno> {
    // SAFETY: every caller passes a call of raw system calls on arguments
    // prepared before (this function's contract).
    let child = unsafe { CallChild::spawn(call) }?;
    Ok(wait_child(attempt, report, start, deadline, child))
}

/// Makes `call` in a child, as [`in_child`] does, for a step with no
/// status to tell (a read-only remount): waits for its end until
/// `deadline` or `cancel`, then kills it and gives it up when it does not
/// end ([`ended`]). Err: the child could not be started.
pub(super) fn bounded(
    deadline: Instant,
    cancel: cancel::Cancel<'_>,
    call: impl FnOnce() -> Result<(), Errno>,
) -> Result<Call, Errno> {
    // SAFETY: every caller passes a call of raw system calls on arguments
    // prepared before (this function's contract).
    let mut child = unsafe { CallChild::spawn(call) }?;
    let stopped = loop {
        match cancel::wait_readable(Some(child.fd()), cancel, deadline) {
            Wake::Readable => match child.try_wait() {
                Ok(Some(_)) => break None,
                Ok(None) => continue,
                Err(e) => break Some(Stopped::Failed("reaping the child process", e)),
            },
            Wake::Deadline if Instant::now() >= deadline => break Some(Stopped::Deadline),
            Wake::Deadline => continue,
            Wake::Cancelled => break Some(Stopped::Cancelled),
            Wake::Failed(e) => break Some(Stopped::Failed("waiting for the child process", e)),
        }
    };
    Ok(ended(child, stopped))
}

/// The wait of [`in_child`] for a child that runs.
fn wait_child(
    attempt: &Attempt<'_>,
    report: &mut Report,
    start: Instant,
    deadline: Option<Instant>,
    mut child: CallChild,
) -> Call {
    let mut tick = start + STATUS_INTERVAL;
    let stopped = loop {
        let wake = deadline.map_or(tick, |d| d.min(tick));
        match cancel::wait_readable(Some(child.fd()), attempt.options.cancel, wake) {
            Wake::Readable => match child.try_wait() {
                Ok(Some(_)) => break None,
                Ok(None) => continue,
                Err(e) => break Some(Stopped::Failed("reaping the child process", e)),
            },
            Wake::Deadline if deadline.is_some_and(|d| Instant::now() >= d) => {
                break Some(Stopped::Deadline)
            }
            Wake::Deadline => {
                attempt.still_waiting(report, start, deadline);
                if attempt.held_out_of_view() {
                    break Some(Stopped::OutOfView);
                }
                tick += STATUS_INTERVAL;
            }
            Wake::Cancelled => break Some(Stopped::Cancelled),
            Wake::Failed(e) => break Some(Stopped::Failed("waiting for the child process", e)),
        }
    };
    ended(child, stopped)
}

/// How `child` ended, killed first unless it has ended: returns at once
/// when it has; else kills it and waits until it has, or until
/// [`KILL_GRACE`] is over: then it is given up ([`Ended::GivenUp`]), and
/// the caller's deadline holds though the child sleeps on in the kernel
/// (a device or a daemon that does not answer). Only a child that has
/// ended leaves a final mount table: one still inside umount2 might yet
/// detach.
pub(super) fn ended(mut child: CallChild, stopped: Option<Stopped>) -> Call {
    Call {
        ended: child.end_within(KILL_GRACE),
        stopped,
    }
}

/// `umount2(target, flags)` in a child ([`in_child`]), after checking that
/// the path still leads to the mount resolved. Continue: the call returned
/// 0 (detached; with `UMOUNT_WAIT`, the superblock dead too). Break: the
/// target's result, when it failed, or when the deadline or the
/// cancellation came first (untouched, or detached and not confirmed: the
/// mount table says which).
pub(super) fn unmount_in_child(
    attempt: &Attempt<'_>,
    mut report: Report,
    flags: UnmountOptions,
    start: Instant,
    deadline: Option<Instant>,
) -> ControlFlow<Result<Report, Error>, Report> {
    let prepared = match prepare_unmount(attempt.target, flags) {
        Ok(p) => p,
        Err(e) => return ControlFlow::Break(Err(e)),
    };
    let umount_start = Instant::now();
    let call = in_child(attempt, &mut report, start, deadline, || prepared.call());
    report.umount_time = umount_start.elapsed();
    unmount_ended(attempt.target, attempt.options, report, call, None)
}

/// The unmount helper run in place of `umount2` ([`Helper::run`]), with
/// umount(8)'s arguments, bounded by `deadline` and the cancellation.
/// Continue: it exited 0 and the mount is gone. Break: its failure, with
/// the state it left (its status is the command's, 126 when it could not
/// be started); or the deadline or the cancellation came first and the
/// mount is still there (untouched). One stopped after the mount went
/// continues: the wait then ends at once, unconfirmed.
pub(super) fn unmount_by_helper(
    target: &Target,
    options: &Options<'_>,
    mut report: Report,
    helper: &Helper,
    deadline: Option<Instant>,
) -> ControlFlow<Result<Report, Error>, Report> {
    let args = helper.args(
        &target.path,
        options.lazy,
        options.force,
        options.read_only_on_failure,
    );
    let start = Instant::now();
    let ran = helper.run(&args, deadline, options.cancel);
    report.umount_time = start.elapsed();
    let program = || helper.program.clone();
    let failed = |status: i32| {
        let state = match still_mounted(&target.mount) {
            true => State::Untouched,
            false => State::Detached,
        };
        let kind = ErrorKind::HelperFailed {
            program: program(),
            status,
        };
        ControlFlow::Break(Err(Error::new(&target.given, kind, None).with_state(state)))
    };
    match ran {
        Err(e) => {
            let errno = Errno::from_io_error(&e);
            let kind = ErrorKind::HelperNotRun { program: program() };
            ControlFlow::Break(Err(Error::new(&target.given, kind, errno)))
        }
        Ok(Ran::Exited(0)) if !still_mounted(&target.mount) => ControlFlow::Continue(report),
        Ok(Ran::Exited(status)) => failed(status),
        Ok(Ran::Signalled(signal)) => failed(128 + signal),
        Ok(Ran::Stopped(_) | Ran::GivenUp) if !still_mounted(&target.mount) => {
            ControlFlow::Continue(report)
        }
        Ok(Ran::GivenUp) => {
            let kind = ErrorKind::GivenUp("running the unmount helper");
            let error = Error::new(&target.given, kind, None).with_state(State::Unknown);
            ControlFlow::Break(Err(error))
        }
        Ok(Ran::Stopped(wake)) => {
            let kind = match wake {
                Wake::Cancelled => ErrorKind::Interrupted,
                _ => ErrorKind::DeadlineReached,
            };
            ControlFlow::Break(Err(Error::new(&target.given, kind, None)))
        }
    }
}

/// The `umount2` of [`unmount_in_child`], ready to be called in a child,
/// once the path is checked to lead to the mount resolved.
fn prepare_unmount(target: &Target, flags: UnmountOptions) -> Result<PreparedUnmount, Error> {
    super::still_there(target)?
        .prepare(flags)
        .map_err(|e| Error::from_errno(&target.given, "unmounting", e))
}

/// [`unmount_in_child`]'s child, started and left running: for waits side
/// by side, ended by [`ended`] and [`unmount_ended`].
pub(super) fn spawn_unmount(target: &Target, flags: UnmountOptions) -> Result<CallChild, Error> {
    let prepared = prepare_unmount(target, flags)?;
    // SAFETY: the call is one raw system call on arguments prepared here.
    unsafe { CallChild::spawn(|| prepared.call()) }
        .map_err(|e| Error::from_errno(&target.given, "starting the unmount process", e))
}

/// What an `umount2` child's `call` left: Continue, the call returned 0;
/// Break, the target's result ([`unmount_in_child`]). A target detached
/// but not confirmed is reported with `held`, its holders found already,
/// or where None, with a scan of its own.
pub(super) fn unmount_ended(
    target: &Target,
    options: &Options<'_>,
    report: Report,
    call: Result<Call, Errno>,
    held: Option<Vec<Blocker>>,
) -> ControlFlow<Result<Report, Error>, Report> {
    let Call { ended, stopped } = match call {
        Ok(call) => call,
        Err(e) => {
            let e = Error::from_errno(&target.given, "starting the unmount process", e);
            return ControlFlow::Break(Err(e));
        }
    };
    let ended = match ended {
        Ok(ended) => ended,
        // The child may still be running and may detach the mount later:
        // nothing can be promised.
        Err(e) => {
            let e = Error::from_errno(&target.given, "ending the unmount process", e);
            return ControlFlow::Break(Err(e.with_state(State::Detached)));
        }
    };
    let end = call_end(ended, stopped, options.timeout, || {
        still_mounted(&target.mount)
    });
    ControlFlow::Break(match end {
        CallEnd::Done => return ControlFlow::Continue(report),
        CallEnd::Failed(errno) => unmount_failed(target, options, report, errno),
        CallEnd::Detached(why) => Ok(detached_held_by(options, report, why, held)),
        CallEnd::Untouched(kind, errno) => Err(Error::new(&target.given, kind, errno)),
        CallEnd::DetachedError(step, errno) => {
            Err(Error::from_errno(&target.given, step, errno).with_state(State::Detached))
        }
        CallEnd::Unknown => Err(
            Error::new(&target.given, ErrorKind::GivenUp("unmounting"), None)
                .with_state(State::Unknown),
        ),
    })
}

/// Why a child that made no unmount ended early, as the error of a target
/// left untouched: the deadline, the cancellation, or a failure (`step`).
pub(super) fn untouched(target: &Target, call: Call, step: &'static str) -> Error {
    let (kind, errno) = match (call.stopped, call.ended) {
        (Some(Stopped::Deadline | Stopped::OutOfView), _) => (ErrorKind::DeadlineReached, None),
        (Some(Stopped::Cancelled), _) => (ErrorKind::Interrupted, None),
        (Some(Stopped::Failed(step, e)), _) => (ErrorKind::System(step), Some(e)),
        (None, Err(e)) => (ErrorKind::System(step), Some(e)),
        (None, Ok(_)) => (ErrorKind::System(step), None),
    };
    Error::new(&target.given, kind, errno)
}

/// What an `umount2` made in a child left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CallEnd {
    /// The call returned 0: detached (with `UMOUNT_WAIT`: and the
    /// superblock dead).
    Done,
    /// The call failed before changing anything.
    Failed(Errno),
    /// The mount is gone, the wait for the superblock did not finish.
    Detached(Unconfirmed),
    /// The child ended before the mount was detached.
    Untouched(ErrorKind, Option<Errno>),
    /// Waiting for the child failed, and the mount is gone.
    DetachedError(&'static str, Errno),
    /// The child was given up still inside umount2, the mount still
    /// there: it may yet be detached.
    Unknown,
}

/// Decides what an `umount2` child left behind, from how it `ended`,
/// why the parent stopped waiting (if it did), and, when the call did not
/// report a result, whether the mount is still `mounted`.
///
/// The kernel detaches (and with `UMOUNT_WAIT` waits) in one system call,
/// so the child cannot say "detached" in between. A child that was killed (by us at the
/// deadline or on cancellation, or by anyone else) reported nothing; so
/// did one whose call returned EINTR (a kernel whose wait is interruptible,
/// or an interruption before the detach). Then the mount table decides,
/// read after the child is reaped, when nothing can change any more: the
/// mount still there means the call ended before the detach (untouched);
/// gone means detached, shutdown not confirmed.
fn call_end(
    ended: Ended,
    stopped: Option<Stopped>,
    timeout: Option<Duration>,
    mounted: impl FnOnce() -> bool,
) -> CallEnd {
    // A result that came before the kill counts, whatever woke us.
    let errno = match ended {
        Ended::Returned(Ok(())) => return CallEnd::Done,
        Ended::Returned(Err(Errno::INTR)) => Some(Errno::INTR),
        Ended::Returned(Err(errno)) => return CallEnd::Failed(errno),
        Ended::Killed(_) => None,
        // Asleep in the kernel past SIGKILL: detached already (the wait
        // after the detach, or the shutdown's I/O, holds it), or not yet,
        // and then it may still detach when its sleep ends.
        Ended::GivenUp => {
            return match mounted() {
                true => CallEnd::Unknown,
                false => CallEnd::Detached(Unconfirmed::GivenUp),
            }
        }
    };
    if mounted() {
        return match (stopped, errno) {
            (Some(Stopped::Deadline | Stopped::OutOfView), _) => {
                CallEnd::Untouched(ErrorKind::DeadlineReached, None)
            }
            (Some(Stopped::Cancelled), _) => CallEnd::Untouched(ErrorKind::Interrupted, None),
            (_, Some(errno)) => CallEnd::Failed(errno),
            (Some(Stopped::Failed(step, e)), None) => {
                CallEnd::Untouched(ErrorKind::System(step), Some(e))
            }
            (None, None) => {
                CallEnd::Untouched(ErrorKind::System("the unmount process was killed"), None)
            }
        };
    }
    let killed_by = match ended {
        Ended::Killed(sig) => sig,
        Ended::Returned(_) | Ended::GivenUp => 0,
    };
    match stopped {
        Some(Stopped::Deadline) => CallEnd::Detached(timed_out(timeout)),
        Some(Stopped::OutOfView) => CallEnd::Detached(super::out_of_view_reason()),
        Some(Stopped::Cancelled) => CallEnd::Detached(Unconfirmed::Cancelled),
        Some(Stopped::Failed(step, e)) => CallEnd::DetachedError(step, e),
        None => CallEnd::Detached(Unconfirmed::Signal(killed_by)),
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
        Ok(mounts) => mounts
            .by_id(mount.id)
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
    fn call_end_a_reported_result_counts_whatever_woke_the_parent() {
        for stopped in [None, Some(Stopped::Deadline), Some(Stopped::Cancelled)] {
            let end = |ended| call_end(ended, stopped, T, unread);
            assert_eq!(end(Ended::Returned(Ok(()))), CallEnd::Done);
            assert_eq!(
                end(Ended::Returned(Err(Errno::BUSY))),
                CallEnd::Failed(Errno::BUSY)
            );
        }
    }

    #[test]
    fn call_end_killed_with_the_mount_gone_is_detached() {
        let gone = || false;
        assert_eq!(
            call_end(Ended::Killed(KILL), Some(Stopped::Deadline), T, gone),
            CallEnd::Detached(Unconfirmed::Timeout(Duration::from_secs(2)))
        );
        assert_eq!(
            call_end(Ended::Killed(KILL), Some(Stopped::Cancelled), T, gone),
            CallEnd::Detached(Unconfirmed::Cancelled)
        );
        // Killed by someone else while we still waited.
        assert_eq!(
            call_end(Ended::Killed(KILL), None, None, gone),
            CallEnd::Detached(Unconfirmed::Signal(KILL))
        );
        // A kernel whose wait returns EINTR after the detach.
        assert_eq!(
            call_end(Ended::Returned(Err(Errno::INTR)), None, T, gone),
            CallEnd::Detached(Unconfirmed::Signal(0))
        );
        assert_eq!(
            call_end(
                Ended::Killed(KILL),
                Some(Stopped::Failed("waiting", Errno::NOMEM)),
                T,
                gone
            ),
            CallEnd::DetachedError("waiting", Errno::NOMEM)
        );
    }

    #[test]
    fn call_end_killed_with_the_mount_still_there_is_untouched() {
        let there = || true;
        assert_eq!(
            call_end(Ended::Killed(KILL), Some(Stopped::Deadline), T, there),
            CallEnd::Untouched(ErrorKind::DeadlineReached, None)
        );
        assert_eq!(
            call_end(Ended::Killed(KILL), Some(Stopped::Cancelled), T, there),
            CallEnd::Untouched(ErrorKind::Interrupted, None)
        );
        assert_eq!(
            call_end(Ended::Returned(Err(Errno::INTR)), None, T, there),
            CallEnd::Failed(Errno::INTR)
        );
        assert!(matches!(
            call_end(Ended::Killed(KILL), None, T, there),
            CallEnd::Untouched(ErrorKind::System(_), None)
        ));
    }

    /// A child given up past SIGKILL: detached, not confirmed, when the
    /// mount is gone; when it is still there, nothing is claimed (the
    /// child may yet detach it), never "untouched".
    #[test]
    fn call_end_a_child_given_up_claims_nothing_it_cannot_see() {
        for stopped in [Some(Stopped::Deadline), Some(Stopped::Cancelled), None] {
            assert_eq!(
                call_end(Ended::GivenUp, stopped, T, || false),
                CallEnd::Detached(Unconfirmed::GivenUp)
            );
            assert_eq!(
                call_end(Ended::GivenUp, stopped, T, || true),
                CallEnd::Unknown
            );
        }
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
