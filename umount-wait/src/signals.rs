//! Signals that end a wait: SIGINT and SIGTERM (the user or a supervisor),
//! SIGALRM (the `--timeout` timer on the kernel path).
//!
//! The handlers are installed without `SA_RESTART`, so a blocking
//! `umount2(.., UMOUNT_WAIT)` or `ppoll` returns EINTR instead of being
//! restarted. They only record what arrived; the waiting code reads it.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::errno::Errno as NixErrno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{
    pthread_sigmask, sigaction, SaFlags, SigAction, SigEvent, SigHandler, SigSet, SigevNotify,
    SigmaskHow, Signal,
};
use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
use nix::time::ClockId;

/// The last SIGINT or SIGTERM received, 0 if none. Sticky: once the user
/// asked to stop, the remaining targets are not touched.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Set by SIGALRM, cleared when a timer is armed.
static TIMER_FIRED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

extern "C" fn record(sig: nix::libc::c_int) {
    if sig == Signal::SIGALRM as i32 {
        TIMER_FIRED.store(true, Ordering::SeqCst);
    } else {
        STOP_SIGNAL.store(sig, Ordering::SeqCst);
    }
}

fn waking_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGALRM);
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
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGALRM] {
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

/// What interrupted a system call that returned EINTR.
pub fn interruption() -> Option<Interruption> {
    if let Some(sig) = stop_signal() {
        return Some(Interruption::Signal(sig));
    }
    TIMER_FIRED
        .load(Ordering::SeqCst)
        .then_some(Interruption::Timeout)
}

/// A thread that [`rekick`] can signal.
pub type Thread = nix::sys::pthread::Pthread;

/// The calling thread.
pub fn current_thread() -> Thread {
    nix::sys::pthread::pthread_self()
}

/// Sends SIGALRM to `thread` so that a blocking system call there returns
/// EINTR. The handler only records it; the reason already recorded (timeout
/// or SIGINT/SIGTERM) is what the caller reports.
pub fn rekick(thread: Thread) {
    let _ = nix::sys::pthread::pthread_kill(thread, Signal::SIGALRM);
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

/// Forgets a SIGALRM left from an earlier target.
pub fn clear_timer() {
    TIMER_FIRED.store(false, Ordering::SeqCst);
}

/// A one-shot SIGALRM timer; deleted when dropped.
pub struct Alarm {
    _timer: Timer,
}

impl Alarm {
    /// Arms SIGALRM to fire after `after`.
    pub fn arm(after: Duration) -> nix::Result<Self> {
        install();
        clear_timer();
        let mut timer = Timer::new(
            ClockId::CLOCK_MONOTONIC,
            SigEvent::new(SigevNotify::SigevSignal {
                signal: Signal::SIGALRM,
                si_value: 0,
            }),
        )?;
        timer.set(
            Expiration::OneShot(TimeSpec::from_duration(after.max(Duration::from_nanos(1)))),
            TimerSetTimeFlags::empty(),
        )?;
        Ok(Alarm { _timer: timer })
    }
}

/// Keeps SIGINT, SIGTERM and SIGALRM blocked in this thread while it lives.
/// Used around [`wait_readable`] (which unblocks them atomically inside
/// `ppoll`, so none is lost between a check and the sleep) and for helper
/// threads, which must never take the signal meant to interrupt the main
/// thread's system call.
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
