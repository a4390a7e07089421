//! SIGINT and SIGTERM end the command's waits: the binary's business, not
//! the library's. Both are blocked (the process has one thread) and a
//! `signalfd(2)` for them is the library's cancellation handle. Nobody
//! reads it: a signal stays pending, the descriptor stays readable, and
//! every wait after it ends at once, so the targets after a Ctrl-C are left
//! untouched. Which signal came is read from the pending set when a
//! message names it.

use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use umount_wait::Cancel;

fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// SIGINT and SIGTERM, blocked and turned into a cancellation handle.
pub struct StopSignals {
    fd: SignalFd,
}

impl StopSignals {
    /// Blocks SIGINT and SIGTERM from now on. Before this, they end the
    /// process as usual (nothing has been touched yet).
    pub fn block() -> nix::Result<StopSignals> {
        let set = stop_signals();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(StopSignals { fd })
    }

    /// The library's cancellation handle: readable once either signal came.
    pub fn cancel(&self) -> Cancel<'_> {
        Cancel::on_readable(self.fd.as_fd())
    }
}

/// The stop signal received so far, if any (SIGINT first when both came).
pub fn received() -> Option<i32> {
    let mut pending = std::mem::MaybeUninit::<nix::libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is given.
    if unsafe { nix::libc::sigpending(pending.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialized by the successful sigpending above.
    let pending = unsafe { pending.assume_init() };
    [Signal::SIGINT, Signal::SIGTERM]
        .into_iter()
        // SAFETY: a valid set and signal number.
        .find(|sig| unsafe { nix::libc::sigismember(&pending, *sig as i32) } == 1)
        .map(|sig| sig as i32)
}
