//! The one retry loop of the crate: for a state change that has no event
//! (a block device claim given up, a loop device unbound). The pause
//! doubles from [`START`] up to [`MAX`], which bounds how late the change
//! is noticed; each pause ends early on the caller's cancellation.

use std::time::{Duration, Instant};

use crate::cancel::{self, Cancel, Wake};
use crate::duration;

/// The first pause between two attempts.
pub const START: Duration = Duration::from_micros(500);
/// The longest pause.
pub const MAX: Duration = Duration::from_millis(10);

/// How a retry loop ended without success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped<E> {
    /// The deadline passed.
    Expired,
    Cancelled,
    /// An attempt (or the pause) failed.
    Failed(E),
}

/// What one attempt found.
pub enum Attempt<T, E> {
    Done(T),
    /// Not yet: try again after a pause.
    Again,
    Failed(E),
}

/// Calls `attempt` until it is done, fails, `deadline` passes (after at
/// least one attempt) or `cancel` says stop. `from_poll` turns a failure of
/// the pause itself into the caller's error type.
pub fn retry<T, E>(
    deadline: Instant,
    cancel: Cancel<'_>,
    from_poll: impl Fn(rustix::io::Errno) -> E,
    mut attempt: impl FnMut() -> Attempt<T, E>,
) -> Result<T, Stopped<E>> {
    let mut pause = START;
    loop {
        match attempt() {
            Attempt::Done(value) => return Ok(value),
            Attempt::Failed(e) => return Err(Stopped::Failed(e)),
            Attempt::Again => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Stopped::Expired);
        }
        match cancel::wait_readable(None, cancel, duration::deadline(now, pause).min(deadline)) {
            Wake::Readable | Wake::Deadline => {}
            Wake::Cancelled => return Err(Stopped::Cancelled),
            Wake::Failed(e) => return Err(Stopped::Failed(from_poll(e))),
        }
        pause = (pause * 2).min(MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_until_done_with_growing_pauses() {
        let mut calls = Vec::new();
        let far = Instant::now() + Duration::from_secs(60);
        let result: Result<u32, Stopped<()>> = retry(
            far,
            Cancel::never(),
            |_| (),
            || {
                calls.push(Instant::now());
                if calls.len() == 4 {
                    Attempt::Done(7)
                } else {
                    Attempt::Again
                }
            },
        );
        assert_eq!(result, Ok(7));
        // 0.5 + 1 + 2 ms of pauses at least.
        assert!(calls[3] - calls[0] >= Duration::from_micros(3500));
    }

    #[test]
    fn ends_at_the_deadline_after_one_attempt() {
        let mut n = 0;
        let past = Instant::now();
        let result: Result<(), Stopped<()>> = retry(
            past,
            Cancel::never(),
            |_| (),
            || {
                n += 1;
                Attempt::Again
            },
        );
        assert_eq!(result, Err(Stopped::Expired));
        assert_eq!(n, 1);
    }
}
