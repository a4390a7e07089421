//! One system call made in a child process, so that the caller can end it.
//!
//! `umount2(.., UMOUNT_WAIT)` sleeps killable: once the mount is detached,
//! only the caller's death ends the wait; a caught signal or a timer does
//! not. To bound it, the call is made in a child, as systemd-shutdown's
//! `umount_with_timeout()` does, and the parent kills the child with SIGKILL
//! when its deadline or a stop request comes first.
//!
//! The child reports through its exit status: 0 when the call returned 0,
//! else the errno (every errno fits in the 8 bits of a status). Nothing else
//! runs in the child, so a status always means a returned call. A child that
//! dies of a signal reported nothing: the call may have done its work or
//! not, and only the caller can find out which (the kernel path looks
//! whether the mount is still there).
//!
//! The parent holds a pidfd: it is readable once the child has ended, so the
//! wait for the child joins any `poll(2)` with a deadline, and no signal
//! (SIGCHLD) or thread is needed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::unistd::ForkResult;
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, WaitIdStatus};

/// How a call made in a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The call returned, with this result.
    Returned(Result<(), Errno>),
    /// The child died of this signal without reporting: SIGKILL from
    /// [`CallChild::kill`] or from someone else (it blocks every other
    /// signal).
    Killed(i32),
    /// Sent SIGKILL, the child had not ended when its grace was over
    /// ([`CallChild::end_within`]): asleep uninterruptibly in the kernel
    /// (an answer a FUSE daemon has read and not given, I/O to a device
    /// that does not complete). Given up: it ends when that sleep does,
    /// and whoever inherits it reaps it. Its call may still do its work.
    GivenUp,
}

/// How long a child killed at its caller's deadline has to end before it
/// is given up ([`CallChild::end_within`]): a killable sleep ends at once,
/// so this is for the report's sake, not the child's.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// The exit status of a child that panicked (which [`CallChild::spawn`]'s
/// contract rules out): no errno is this large.
const PANICKED: i32 = 255;

/// A child process making one call; killed and reaped when dropped, so that
/// none outlives its owner.
#[derive(Debug)]
pub struct CallChild {
    pid: Pid,
    pidfd: OwnedFd,
    ended: Option<Ended>,
    /// Given up by [`CallChild::abandon`]: not waited for when dropped.
    abandoned: bool,
}

impl CallChild {
    /// Forks a child that makes `call` and exits with its result.
    ///
    /// The child shares the caller's mount namespace, working directory and
    /// root, but not its standard input, output and error (closed). Every signal that can be blocked is blocked in it from its
    /// first instruction (the calling thread's mask is changed around the
    /// fork and restored at once): a Ctrl-C sent to the process group, a
    /// SIGTERM, a SIGALRM cannot interrupt or end the call; only SIGKILL
    /// ([`CallChild::kill`]) can. SIGCHLD must not be ignored
    /// (`SIG_IGN`): the kernel would then reap the child itself, and its
    /// result would be lost ([`CallChild::try_wait`] fails with ECHILD).
    ///
    /// # Safety
    ///
    /// `call` runs in a child forked from a process that may have other
    /// threads. It may only make async-signal-safe calls (raw system calls on
    /// memory prepared before the fork): no allocation, no locks, no
    /// printing, no panic.
    pub unsafe fn spawn(call: impl FnOnce() -> Result<(), Errno>) -> Result<CallChild, Errno> {
        let mut previous = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&SigSet::all()),
            Some(&mut previous),
        )
        .expect("pthread_sigmask with valid arguments");
        // SAFETY: the child only runs `call` (async-signal-safe by this
        // function's contract) and `_exit`.
        let forked = unsafe { nix::unistd::fork() };
        if !matches!(forked, Ok(ForkResult::Child)) {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
        }
        match forked {
            Ok(ForkResult::Child) => {
                // Should `call` panic after all, the child must not unwind
                // into the caller's code and go on as a second copy of it.
                let _exit_on_unwind = ExitOnUnwind;
                // The child's result is its exit status; it has nothing to
                // read or say. A child that outlives its owner (stuck
                // where SIGKILL cannot reach it: a FUSE request its daemon
                // read and never answers) must not keep the caller's
                // standard streams open, or a script reading the command's
                // output (`$(umount-wait ...)`, a pipe) would wait for it
                // past every deadline.
                for fd in 0..=2 {
                    // SAFETY: close(2) is async-signal-safe; these
                    // descriptors are not used by `call`.
                    unsafe { nix::libc::close(fd) };
                }
                let status = match call() {
                    Ok(()) => 0,
                    Err(errno) => errno.raw_os_error(),
                };
                // SAFETY: `_exit` is async-signal-safe and ends the child
                // without running the parent's exit handlers.
                unsafe { nix::libc::_exit(status) }
            }
            Ok(ForkResult::Parent { child }) => {
                let pid = Pid::from_raw(child.as_raw()).expect("fork returns a positive pid");
                // The child is not reaped before we wait for it, so its pid
                // cannot name another process yet.
                match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
                    Ok(pidfd) => Ok(CallChild {
                        pid,
                        pidfd,
                        ended: None,
                        abandoned: false,
                    }),
                    Err(errno) => {
                        let _ = rustix::process::kill_process(pid, Signal::KILL);
                        let _ = rustix::process::waitpid(
                            Some(pid),
                            rustix::process::WaitOptions::empty(),
                        );
                        Err(errno)
                    }
                }
            }
            Err(errno) => Err(Errno::from_raw_os_error(errno as i32)),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// A descriptor that polls readable once the child has ended.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// How the child ended, reaping it; `None` while it runs. Does not block.
    pub fn try_wait(&mut self) -> Result<Option<Ended>, Errno> {
        if self.ended.is_none() {
            self.ended = self.reap(WaitIdOptions::NOHANG)?;
        }
        Ok(self.ended)
    }

    /// Ends the child with SIGKILL, unless it has ended already, and reaps
    /// it. Blocks until the child is gone: SIGKILL ends a killable or
    /// interruptible sleep at once, but a child in an uninterruptible one
    /// inside the kernel (waiting for a lock, writing back) first finishes
    /// it. A call that returned before the signal arrived is reported as
    /// [`Ended::Returned`].
    pub fn kill(&mut self) -> Result<Ended, Errno> {
        if let Some(ended) = self.ended {
            return Ok(ended);
        }
        // ESRCH cannot happen (the child is not reaped); any failure shows
        // below as a wait that never ends, so it is returned instead.
        rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL)?;
        let ended = self
            .reap(WaitIdOptions::empty())?
            .expect("a blocking waitid returns the child's end");
        self.ended = Some(ended);
        Ok(ended)
    }

    /// Ends the child with SIGKILL, unless it has ended already, waits
    /// until `grace` for it to be gone, and gives it up if it is not
    /// ([`Ended::GivenUp`]). SIGKILL does not end every sleep: a FUSE
    /// request that the daemon has read is waited for uninterruptibly
    /// until it is answered, and so is I/O to a device that does not
    /// complete; [`CallChild::kill`] would wait that out, for ever if the
    /// daemon never answers. A child given up ends when its sleep does,
    /// and is reaped by whoever inherits it once the caller has exited.
    pub fn end_within(&mut self, grace: Duration) -> Result<Ended, Errno> {
        if let Some(ended) = self.ended {
            return Ok(ended);
        }
        rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL)?;
        let deadline = Instant::now() + grace;
        let _ = crate::cancel::wait_readable(
            Some(self.pidfd.as_fd()),
            crate::cancel::Cancel::never(),
            deadline,
        );
        match self.try_wait()? {
            Some(ended) => Ok(ended),
            None => {
                self.abandoned = true;
                Ok(Ended::GivenUp)
            }
        }
    }

    /// [`CallChild::end_within`], for a child whose end does not matter
    /// beyond its result: how it ended, or None.
    pub fn abandon(mut self, grace: Duration) -> Option<Ended> {
        match self.end_within(grace) {
            Ok(Ended::GivenUp) | Err(_) => {
                self.abandoned = self.ended.is_none();
                None
            }
            Ok(ended) => Some(ended),
        }
    }

    fn reap(&self, options: WaitIdOptions) -> Result<Option<Ended>, Errno> {
        loop {
            match rustix::process::waitid(
                WaitId::PidFd(self.pidfd.as_fd()),
                WaitIdOptions::EXITED | options,
            ) {
                Ok(status) => return Ok(status.map(ended_as)),
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(errno),
            }
        }
    }
}

/// How a program started by the caller ended ([`wait_for_program`]).
#[derive(Debug)]
pub enum ProgramEnd {
    /// It exited (or died) before the deadline: its status, reaped.
    Ended(std::process::ExitStatus),
    /// The deadline or the cancellation came first (the reason): killed
    /// and reaped.
    Stopped(crate::cancel::Wake),
    /// As [`ProgramEnd::Stopped`], but asleep in the kernel past SIGKILL
    /// for [`KILL_GRACE`]: given up, reaped by whoever inherits it.
    GivenUp(crate::cancel::Wake),
}

/// Waits for `child`, a program the caller started (an unmount helper,
/// blkid), until `deadline` or `cancel`; then kills it and, as
/// [`CallChild::end_within`] does, gives it up if it has not ended
/// [`KILL_GRACE`] later. Without a pidfd (a kernel older than 5.3) it is
/// waited for without a bound. Err: waiting for it failed.
pub fn wait_for_program(
    child: &mut std::process::Child,
    deadline: Instant,
    cancel: crate::cancel::Cancel<'_>,
) -> std::io::Result<ProgramEnd> {
    use crate::cancel::{wait_readable, Cancel, Wake};
    let pid = Pid::from_raw(child.id() as i32).expect("a child's pid is positive");
    let Ok(pidfd) = rustix::process::pidfd_open(pid, PidfdFlags::empty()) else {
        return child.wait().map(ProgramEnd::Ended);
    };
    let wake = wait_readable(Some(pidfd.as_fd()), cancel, deadline);
    if wake == Wake::Readable {
        return child.wait().map(ProgramEnd::Ended);
    }
    let _ = child.kill();
    let grace = crate::duration::deadline(Instant::now(), KILL_GRACE);
    let _ = wait_readable(Some(pidfd.as_fd()), Cancel::never(), grace);
    Ok(match child.try_wait()? {
        Some(_) => ProgramEnd::Stopped(wake),
        None => ProgramEnd::GivenUp(wake),
    })
}

fn ended_as(status: WaitIdStatus) -> Ended {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(0), _) => Ended::Returned(Ok(())),
        (Some(code), _) => Ended::Returned(Err(Errno::from_raw_os_error(code))),
        (None, Some(sig)) => Ended::Killed(sig),
        // waitid(WEXITED) reports only exits and deaths by signal.
        (None, None) => Ended::Killed(0),
    }
}

impl Drop for CallChild {
    fn drop(&mut self) {
        if !self.abandoned {
            let _ = self.kill();
        }
    }
}

struct ExitOnUnwind;

impl Drop for ExitOnUnwind {
    fn drop(&mut self) {
        // SAFETY: see `CallChild::spawn`; only reached while unwinding.
        unsafe { nix::libc::_exit(PANICKED) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use rustix::fs::Access;

    /// Whether `fd` polls readable within `timeout`.
    fn readable_within(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        nix::poll::poll(&mut fds, PollTimeout::try_from(timeout).unwrap()).unwrap() == 1
    }

    /// Whether no process has this pid any more (killed and reaped).
    fn gone(pid: Pid) -> bool {
        rustix::process::test_kill_process(pid) == Err(Errno::SRCH)
    }

    /// A child blocked in `read(2)` on a socket that nobody writes to.
    fn blocked_child() -> (CallChild, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        // SAFETY: a raw read(2) into a buffer on the stack.
        let child = unsafe {
            CallChild::spawn(|| {
                let mut byte = [0u8; 1];
                rustix::io::read(&theirs, &mut byte).map(drop)
            })
        }
        .unwrap();
        (child, ours)
    }

    /// A child that outlives its owner keeps none of the caller's standard
    /// streams open: a script reading the command's output would otherwise
    /// wait for the child, past every deadline. Before, fds 0 to 2 were the
    /// caller's.
    #[test]
    fn the_child_keeps_no_standard_stream_open() {
        let (mut child, _peer) = blocked_child();
        let open = || -> Vec<i32> {
            (0..=2)
                .filter(|fd| std::fs::read_link(format!("/proc/{}/fd/{fd}", child.pid())).is_ok())
                .collect()
        };
        // The child closes them first thing, at its own pace.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !open().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let open = open();
        child.kill().unwrap();
        assert_eq!(open, Vec::<i32>::new(), "standard streams still open");
    }

    #[test]
    fn a_returned_errno_is_reported_as_it_was() {
        // SAFETY: a raw access(2) on a C string made before the fork.
        let mut child = unsafe {
            CallChild::spawn(|| rustix::fs::access(c"/nonexistent/umw-child", Access::EXISTS))
        }
        .unwrap();
        let pid = child.pid();
        assert!(readable_within(child.fd(), Duration::from_secs(60)));
        assert_eq!(
            child.try_wait().unwrap(),
            Some(Ended::Returned(Err(Errno::NOENT)))
        );
        // Reaped: a kill now sends nothing and changes nothing.
        assert_eq!(child.kill().unwrap(), Ended::Returned(Err(Errno::NOENT)));
        drop(child);
        assert!(gone(pid));
    }

    #[test]
    fn a_call_that_returns_zero_is_reported_so() {
        // SAFETY: a raw access(2) on a C string made before the fork.
        let mut child =
            unsafe { CallChild::spawn(|| rustix::fs::access(c"/", Access::EXISTS)) }.unwrap();
        assert!(readable_within(child.fd(), Duration::from_secs(60)));
        assert_eq!(child.try_wait().unwrap(), Some(Ended::Returned(Ok(()))));
    }

    /// The deadline comes while the call blocks: the child is still
    /// running, and kill ends it with SIGKILL and reaps it.
    #[test]
    fn a_blocked_call_is_killed_at_the_deadline() {
        let (mut child, _peer) = blocked_child();
        let pid = child.pid();
        assert!(!readable_within(child.fd(), Duration::from_millis(50)));
        assert_eq!(child.try_wait().unwrap(), None);
        let killed = Ended::Killed(Signal::KILL.as_raw());
        assert_eq!(child.kill().unwrap(), killed);
        assert_eq!(child.try_wait().unwrap(), Some(killed));
        assert!(gone(pid));
    }

    /// Signals whose default action ends a process (SIGINT, SIGTERM,
    /// SIGALRM) neither interrupt the child's call nor end it, though the
    /// caller blocks none of them; the caller's mask is as it was.
    #[test]
    fn signals_but_sigkill_leave_the_call_alone() {
        let mask_before = SigSet::thread_get_mask().unwrap();
        let (mut child, _peer) = blocked_child();
        assert_eq!(SigSet::thread_get_mask().unwrap(), mask_before);
        for sig in [Signal::INT, Signal::TERM, Signal::ALARM] {
            rustix::process::kill_process(child.pid(), sig).unwrap();
        }
        assert!(!readable_within(child.fd(), Duration::from_millis(50)));
        assert_eq!(child.try_wait().unwrap(), None);
        assert_eq!(child.kill().unwrap(), Ended::Killed(Signal::KILL.as_raw()));
    }

    #[test]
    fn a_child_killed_by_someone_else_reported_nothing() {
        let (mut child, _peer) = blocked_child();
        rustix::process::kill_process(child.pid(), Signal::KILL).unwrap();
        assert!(readable_within(child.fd(), Duration::from_secs(60)));
        assert_eq!(
            child.try_wait().unwrap(),
            Some(Ended::Killed(Signal::KILL.as_raw()))
        );
    }

    #[test]
    fn an_abandoned_child_that_dies_is_reaped_and_reported() {
        let (child, _peer) = blocked_child();
        let pid = child.pid();
        assert_eq!(
            child.abandon(Duration::from_secs(60)),
            Some(Ended::Killed(Signal::KILL.as_raw()))
        );
        assert!(gone(pid));
    }

    #[test]
    fn dropping_a_running_child_kills_and_reaps_it() {
        let (child, _peer) = blocked_child();
        let pid = child.pid();
        drop(child);
        assert!(gone(pid));
    }
}
