//! Signals that end a wait: SIGINT and SIGTERM (the user or a supervisor).
//!
//! The handlers only record what arrived; the waiting code reads it. Waits
//! keep the signals blocked and take them inside `ppoll` ([`Blocked`]), so
//! none is lost between a check and the sleep. The kernel path's
//! `umount2(.., UMOUNT_WAIT)` runs in a child that inherits that mask, and is
//! ended with SIGKILL (`crate::child`), not by a signal handler.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;
use std::time::Instant;

use nix::errno::Errno as NixErrno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{
    pthread_sigmask, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::time::TimeSpec;

/// The last SIGINT or SIGTERM received, 0 if none. Sticky: once the user
/// asked to stop, the remaining targets are not touched.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

extern "C" fn record(sig: nix::libc::c_int) {
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
}

fn waking_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Installs the handlers once per process.
pub fn install() {
    INSTALL.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(record),
            SaFlags::empty(),
            SigSet::empty(),
        );
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only stores into atomics.
            unsafe { sigaction(sig, &action) }.expect("sigaction with a valid signal");
        }
    });
}

/// Why a wait ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    Timeout,
    Signal(i32),
}

/// The SIGINT/SIGTERM received so far, if any.
pub fn stop_signal() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Why [`Blocked::wait_readable`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Readable,
    Deadline,
    /// SIGINT or SIGTERM.
    Signal(i32),
    /// `ppoll` itself failed.
    Failed(rustix::io::Errno),
}

/// Keeps SIGINT and SIGTERM blocked in this thread while it lives. Used
/// around [`Blocked::wait_readable`] (which unblocks them atomically inside
/// `ppoll`, so none is lost between a check and the sleep), and around the
/// fork of the kernel path's child, which keeps them blocked.
pub struct Blocked {
    previous: SigSet,
}

impl Blocked {
    pub fn new() -> Self {
        install();
        let mut previous = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&waking_signals()),
            Some(&mut previous),
        )
        .expect("pthread_sigmask with valid arguments");
        Blocked { previous }
    }

    /// Sleeps until `fd` is readable (None: just sleeps), `deadline` passes, or
    /// SIGINT/SIGTERM arrives.
    pub fn wait_readable(&self, fd: Option<BorrowedFd<'_>>, deadline: Instant) -> Wake {
        loop {
            if let Some(sig) = stop_signal() {
                return Wake::Signal(sig);
            }
            let now = Instant::now();
            if now >= deadline {
                return Wake::Deadline;
            }
            let timeout = TimeSpec::from_duration(deadline - now);
            let mut unblocked = self.previous;
            unblocked.remove(Signal::SIGINT);
            unblocked.remove(Signal::SIGTERM);
            let mut fds: Vec<PollFd<'_>> = fd
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .into_iter()
                .collect();
            match nix::poll::ppoll(&mut fds, Some(timeout), Some(unblocked)) {
                Ok(0) => return Wake::Deadline,
                Ok(_) => return Wake::Readable,
                Err(NixErrno::EINTR) => continue,
                Err(e) => return Wake::Failed(rustix::io::Errno::from_raw_os_error(e as i32)),
            }
        }
    }
}

impl Default for Blocked {
    fn default() -> Self {
        Blocked::new()
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}
