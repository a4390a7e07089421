//! SIGINT and SIGTERM end the command's waits: the binary's business, not
//! the library's. Both are blocked (the process has one thread) and a
//! `signalfd(2)` for them is the library's cancellation handle. Nobody
//! reads it: a signal stays pending, the descriptor stays readable, and
//! every wait after it ends at once, so the targets after a Ctrl-C are left
//! untouched. Which signal came is read from the pending set when a
//! message names it.
//!
//! Once the report is out, a stop signal that came ends the process by that
//! signal ([`die_by_received_signal`]), as it would have ended umount(8):
//! the calling shell sees 128+N and a script stops there instead of
//! carrying on after "exit 3".
//!
//! One the caller left ignored (`trap '' TERM` in an init script, SIGINT in
//! a shell's background job) is neither blocked nor watched: the kernel
//! queues a blocked signal even when it is ignored, and the signalfd would
//! turn the caller's "ignore" into "stop".

use std::os::fd::AsFd;

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
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

/// After the report: when SIGINT or SIGTERM came, ends the process by it
/// (default action, unblocked), as the signal would have ended umount(8),
/// so that a calling script stops too. Returns when none came.
pub fn die_by_received_signal() {
    let Some(sig) = received().and_then(|s| Signal::try_from(s).ok()) else {
        return;
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Only a signal that was not ignored at exec is blocked, so its action
    // is the default one already; set it anyway, then let it in.
    // SAFETY: no handler is installed, only the default action restored.
    let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
}
