//! The kernel path: `umount2(target, flags | UMOUNT_WAIT)`, made in a
//! child process that is killed when the deadline or a cancellation comes
//! first.

use std::ops::ControlFlow;
use std::time::Instant;

use super::{call, Attempt};
use crate::duration;
use crate::outcome::{Error, Report};
use crate::sys::UnmountOptions;

/// `umount2(target, flags | UMOUNT_WAIT)`, made in a child process.
///
/// The kernel's wait is killable, not interruptible: once the mount is
/// detached the call returns only when the superblock is dead, and only the
/// caller's death ends it early; a timer or a caught signal leaves it
/// waiting. So a child makes the call ([`call::in_child`]) and is killed
/// at the deadline or on the caller's cancellation.
pub(super) fn unmount(attempt: &Attempt<'_>, report: Report) -> Result<Report, Error> {
    let flags = UnmountOptions {
        wait: true,
        ..attempt.flags
    };
    let start = Instant::now();
    let deadline = attempt
        .options
        .timeout
        .map(|t| duration::deadline(start, t));
    match call::unmount_in_child(attempt, report, flags, start, deadline) {
        ControlFlow::Continue(report) => Ok(report),
        ControlFlow::Break(result) => result,
    }
}
