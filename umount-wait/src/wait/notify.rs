//! The notification path: `umount2(target, flags | UMOUNT_NOTIFY)` returns
//! a descriptor that polls readable once the superblock is dead; it is
//! polled with the deadline and the caller's cancellation, in this
//! process: no child, nothing to kill.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use super::report::{detached_unconfirmed, timed_out, unmount_failed};
use super::{fallback, still_there, Attempt, STATUS_INTERVAL};
use crate::cancel::{self, Wake};
use crate::duration;
use crate::outcome::{Error, Report, State, Unconfirmed};

/// The call made: the descriptor that polls readable at the superblock's
/// death, when the call began, and the report so far.
pub(super) struct Called {
    pub dead: OwnedFd,
    pub start: Instant,
    pub report: Report,
}

/// The target's result when it is settled without a wait (refused,
/// failed).
pub(super) type Settled = Box<Result<Report, Error>>;

/// `umount2(target, flags | UMOUNT_NOTIFY)`; Err: [`Settled`].
///
/// The kernel does not refuse a target that this process's own root or
/// working directory holds (the call does not sleep); the wait could
/// never end, so it is refused here first, as the other paths do
/// (EDEADLK, untouched).
pub(super) fn call(attempt: &Attempt<'_>, mut report: Report) -> Result<Called, Settled> {
    let target = attempt.target;
    let options = attempt.options;
    if let Some(errno) = fallback::refusal_if_pinned(target, options) {
        return Err(Box::new(unmount_failed(target, options, report, errno)));
    }
    let prepared = still_there(target)
        .map_err(|e| Box::new(Err(e)))?
        .prepare(attempt.flags)
        .map_err(|e| Box::new(Err(Error::from_errno(&target.given, "unmounting", e))))?;
    let start = Instant::now();
    let dead = match prepared.call_notify() {
        Ok(fd) => fd,
        Err(errno) => return Err(Box::new(unmount_failed(target, options, report, errno))),
    };
    report.umount_time = start.elapsed();
    Ok(Called {
        dead,
        start,
        report,
    })
}

/// `umount2(target, flags | UMOUNT_NOTIFY)`, then a poll of the descriptor
/// it returns until the superblock is dead, the deadline, or the caller's
/// cancellation.
pub(super) fn unmount(attempt: &Attempt<'_>, report: Report) -> Result<Report, Error> {
    let options = attempt.options;
    let Called {
        dead,
        start,
        mut report,
    } = match call(attempt, report) {
        Ok(called) => called,
        Err(settled) => return *settled,
    };
    let deadline = options.timeout.map(|t| duration::deadline(start, t));
    let wait_start = Instant::now();
    let mut tick = start + STATUS_INTERVAL;
    loop {
        let wake = deadline.map_or(tick, |d| d.min(tick));
        let woke = cancel::wait_readable(Some(dead.as_fd()), options.cancel, wake);
        report.wait_time = wait_start.elapsed();
        match woke {
            Wake::Readable => return Ok(report),
            Wake::Deadline if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(detached_unconfirmed(
                    options,
                    report,
                    timed_out(options.timeout),
                ));
            }
            Wake::Deadline => {
                attempt.still_waiting(&mut report, start, deadline);
                if attempt.held_out_of_view() {
                    return Ok(detached_unconfirmed(
                        options,
                        report,
                        super::out_of_view_reason(),
                    ));
                }
                tick += STATUS_INTERVAL;
            }
            Wake::Cancelled => {
                return Ok(detached_unconfirmed(
                    options,
                    report,
                    Unconfirmed::Cancelled,
                ))
            }
            Wake::Failed(e) => {
                let e =
                    Error::from_errno(&attempt.target.given, "polling the shutdown descriptor", e);
                return Err(e.with_state(State::Detached));
            }
        }
    }
}
