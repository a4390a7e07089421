//! How a caller ends a wait early: a descriptor of its own that becomes
//! readable when it wants the wait to stop.
//!
//! The library installs no signal handlers and keeps no global flag. The
//! caller decides what cancels: the `umount-wait` binary blocks SIGINT and
//! SIGTERM and passes a `signalfd(2)` for them; a daemon can pass an
//! `eventfd(2)` or the read end of a pipe that it writes to. The library only
//! polls the descriptor, never reads it: once readable it must stay so, and
//! then every wait that follows ends at once (the targets after a Ctrl-C
//! are left untouched).

use std::os::fd::BorrowedFd;
use std::time::Instant;

use nix::errno::Errno as NixErrno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use rustix::io::Errno;

/// A caller's cancellation handle, or none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cancel<'a> {
    fd: Option<BorrowedFd<'a>>,
}

impl<'a> Cancel<'a> {
    /// Nothing cancels: waits end at their deadline or when done.
    pub fn never() -> Cancel<'static> {
        Cancel { fd: None }
    }

    /// Cancelled once `fd` polls readable.
    pub fn on_readable(fd: BorrowedFd<'a>) -> Cancel<'a> {
        Cancel { fd: Some(fd) }
    }

    /// Whether the caller can cancel at all (it gave a descriptor).
    pub fn may_cancel(&self) -> bool {
        self.fd.is_some()
    }

    /// Whether the caller has cancelled; does not block.
    pub fn is_cancelled(&self) -> bool {
        self.fd.is_some_and(|fd| readable_now(fd) == Ok(true))
    }
}

/// Whether `fd` polls readable (or hung up) now; does not block.
pub fn readable_now(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    loop {
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) => return Ok(n > 0),
            Err(NixErrno::EINTR) => continue,
            Err(e) => return Err(Errno::from_raw_os_error(e as i32)),
        }
    }
}

/// Why [`wait_readable`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The descriptor waited on is readable.
    Readable,
    Deadline,
    Cancelled,
    /// `poll(2)` itself failed.
    Failed(Errno),
}

/// Sleeps until `fd` is readable (None: just sleeps), `deadline` passes, or
/// `cancel` says stop. A cancellation seen at the same time as the
/// descriptor counts first.
pub fn wait_readable(fd: Option<BorrowedFd<'_>>, cancel: Cancel<'_>, deadline: Instant) -> Wake {
    let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
    wait_any(&fds, None, cancel, deadline).0
}

/// [`wait_readable`] over several descriptors, and over `changed` for
/// POLLPRI (an open `/proc/self/mountinfo` reports a change of the mount
/// table so). The bool: `changed` was ready.
pub fn wait_any(
    readable: &[BorrowedFd<'_>],
    changed: Option<BorrowedFd<'_>>,
    cancel: Cancel<'_>,
    deadline: Instant,
) -> (Wake, bool) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return (Wake::Deadline, false);
        }
        let mut fds: Vec<PollFd<'_>> = cancel
            .fd
            .into_iter()
            .chain(readable.iter().copied())
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .chain(changed.map(|fd| PollFd::new(fd, PollFlags::POLLPRI)))
            .collect();
        // Rounded up, so that a wake before the deadline is not taken for it.
        let left = deadline - now;
        let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
        let timeout = PollTimeout::try_from(ms.min(i32::MAX as u128) as i32)
            .expect("a non-negative timeout below i32::MAX");
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => {
                let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
                if cancel.fd.is_some() && ready(0) {
                    return (Wake::Cancelled, false);
                }
                let changed = changed.is_some() && ready(fds.len() - 1);
                return (Wake::Readable, changed);
            }
            // A handler of the caller's ran: go on until a real wake.
            Err(NixErrno::EINTR) => continue,
            Err(e) => return (Wake::Failed(Errno::from_raw_os_error(e as i32)), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn never_cancelled_waits_until_the_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(20);
        assert_eq!(
            wait_readable(None, Cancel::never(), deadline),
            Wake::Deadline
        );
        assert!(Instant::now() >= deadline);
        assert!(!Cancel::never().is_cancelled());
    }

    #[test]
    fn a_readable_handle_cancels_and_stays_cancelled() {
        let (mut writer, reader) = UnixStream::pair().unwrap();
        let cancel = Cancel::on_readable(reader.as_fd());
        assert!(!cancel.is_cancelled());
        writer.write_all(b"x").unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(wait_readable(None, cancel, far), Wake::Cancelled);
        // Not consumed: the next wait ends at once too.
        assert!(cancel.is_cancelled());
        assert_eq!(wait_readable(None, cancel, far), Wake::Cancelled);
    }

    #[test]
    fn the_watched_descriptor_wakes_and_cancellation_counts_first() {
        let (mut data_w, data_r) = UnixStream::pair().unwrap();
        let (mut stop_w, stop_r) = UnixStream::pair().unwrap();
        let cancel = Cancel::on_readable(stop_r.as_fd());
        let far = Instant::now() + Duration::from_secs(60);
        data_w.write_all(b"x").unwrap();
        assert_eq!(
            wait_readable(Some(data_r.as_fd()), cancel, far),
            Wake::Readable
        );
        stop_w.write_all(b"x").unwrap();
        assert_eq!(
            wait_readable(Some(data_r.as_fd()), cancel, far),
            Wake::Cancelled
        );
    }
}
