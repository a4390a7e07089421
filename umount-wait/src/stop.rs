//! SIGINT and SIGTERM end the command's waits: the binary's business, not
//! the library's. Both are blocked (the process has one thread) and a
//! `signalfd(2)` for them is the library's cancellation handle. Nobody
//! reads it: a signal stays pending, the descriptor stays readable, and
//! every wait after it ends at once, so the targets after a Ctrl-C are left
//! untouched. Which signal came is read from the pending set when a
//! message names it.
//!
//! One the caller left ignored (`trap '' TERM` in an init script, SIGINT in
//! a shell's background job) is neither blocked nor watched: the kernel
//! queues a blocked signal even when it is ignored, and the signalfd would
//! turn the caller's "ignore" into "stop".

use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use umount_wait::Cancel;

/// SIGINT and SIGTERM, but those the caller ignores.
fn stop_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        if !is_ignored(sig)? {
            set.add(sig);
        }
    }
    Ok(set)
}

/// Whether `sig` is ignored (SIG_IGN) in this process, as it was at exec:
/// nothing here has changed a disposition before this is asked.
fn is_ignored(sig: Signal) -> nix::Result<bool> {
    let mut old = std::mem::MaybeUninit::<nix::libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`.
    let rc = unsafe { nix::libc::sigaction(sig as i32, std::ptr::null(), old.as_mut_ptr()) };
    nix::errno::Errno::result(rc)?;
    // SAFETY: filled by the successful call above.
    Ok(unsafe { old.assume_init() }.sa_sigaction == nix::libc::SIG_IGN)
}

/// SIGINT and SIGTERM, blocked and turned into a cancellation handle.
pub struct StopSignals {
    /// None: the caller ignores both, nothing cancels.
    fd: Option<SignalFd>,
}

impl StopSignals {
    /// Blocks SIGINT and SIGTERM from now on, but one the caller ignores,
    /// which stays ignored. Before this, they end the process as usual
    /// (nothing has been touched yet).
    pub fn block() -> nix::Result<StopSignals> {
        let set = stop_signals()?;
        if set.iter().next().is_none() {
            return Ok(StopSignals { fd: None });
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(StopSignals { fd: Some(fd) })
    }

    /// The library's cancellation handle: readable once a signal it
    /// watches came.
    pub fn cancel(&self) -> Cancel<'_> {
        match &self.fd {
            Some(fd) => Cancel::on_readable(fd.as_fd()),
            None => Cancel::never(),
        }
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
