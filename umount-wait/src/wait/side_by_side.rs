//! Waits side by side, for `--all`: [`detach`] unmounts a target and,
//! where the filesystem's end is still to come, returns a [`Pending`] wait
//! that goes on while the next targets are unmounted: on the kernel path
//! its `umount2(UMOUNT_WAIT)` child keeps running, one per superblock; on
//! the fallback path its watch stays in the run's one inotify instance.
//! [`wait_any`] sleeps until one of them may have ended, the mount table
//! changed, the deadline came or the caller cancelled;
//! [`Pending::try_finish`] settles those that ended, [`Pending::stop`]
//! those left at the deadline. A filesystem that never dies costs the
//! others nothing.

use std::os::fd::BorrowedFd;
use std::time::Instant;

use rustix::io::Errno;

use super::call::{self, Stopped};
use super::fallback::{self, Watcher};
use super::report::{detached_unconfirmed, timed_out};
use super::{plain_flags, settled, Attempt, Options, Progress};
use crate::cancel::{self, Cancel, Wake};
use crate::child::CallChild;
use crate::mountinfo::Mount;
use crate::outcome::{Error, ErrorKind, Report, State, Unconfirmed, WaitPath};
use crate::sys::UnmountOptions;
use crate::target::Target;

/// How far [`detach`] went.
pub enum Detached {
    /// Settled already: shut down at once, refused, failed.
    Done(Box<Report>),
    /// Unmounted (or, on the kernel path, being unmounted); its end is to
    /// come.
    Pending(Pending),
}

/// A wait that goes on beside others.
pub struct Pending(Box<Inner>);

struct Inner {
    target: Target,
    /// The caller's options but the cancellation, which [`wait_any`] takes.
    options: Options<'static>,
    report: Report,
    wait: Wait,
}

enum Wait {
    /// The fallback: the watch `wd` in the run's instance.
    Watch {
        wd: i32,
        wait_start: Instant,
        deadline: Option<Instant>,
    },
    /// The kernel path: the child in `umount2(UMOUNT_WAIT)`.
    Child {
        child: CallChild,
        umount_start: Instant,
    },
}

/// Why waits are ended before they are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Deadline,
    Cancelled,
}

/// Unmounts `target` as [`super::unmount_with`] does, but returns as soon
/// as the wait would block, with the wait [`Pending`].
pub fn detach(
    target: &Target,
    path: WaitPath,
    options: &Options<'_>,
    observer: &dyn Fn(Progress<'_>),
    watcher: &mut Watcher,
) -> Result<Detached, Error> {
    if options.cancel.is_cancelled() {
        return Err(Error::new(&target.given, ErrorKind::Interrupted, None));
    }
    let attempt = Attempt {
        target,
        flags: plain_flags(target, options),
        options,
        observer,
    };
    let report = super::new_report(target, path);
    let kept = Options {
        force: options.force,
        lazy: options.lazy,
        read_only_on_failure: options.read_only_on_failure,
        read_only_if_unconfirmed: options.read_only_if_unconfirmed,
        shut_down_if_read_only_fails: options.shut_down_if_read_only_fails,
        timeout: options.timeout,
        watch_blockers: options.watch_blockers,
        cancel: Cancel::never(),
    };
    let wait = match path {
        WaitPath::Kernel => {
            let flags = UnmountOptions {
                wait: true,
                ..attempt.flags
            };
            Wait::Child {
                child: call::spawn_unmount(target, flags)?,
                umount_start: Instant::now(),
            }
        }
        WaitPath::Fallback => match fallback::detach(&attempt, report.clone(), watcher)? {
            fallback::Detached::Done(report) => {
                return Ok(Detached::Done(Box::new(settled(options, report))))
            }
            fallback::Detached::Watching(watching) => {
                let wait = Wait::Watch {
                    wd: watching.watch.keep(),
                    wait_start: watching.wait_start,
                    deadline: watching.deadline,
                };
                return Ok(Detached::Pending(Pending(Box::new(Inner {
                    target: target.clone(),
                    options: kept,
                    report: watching.report,
                    wait,
                }))));
            }
        },
    };
    Ok(Detached::Pending(Pending(Box::new(Inner {
        target: target.clone(),
        options: kept,
        report,
        wait,
    }))))
}

impl Pending {
    /// The mount it unmounted.
    pub fn mount(&self) -> &Mount {
        &self.0.target.mount
    }

    /// The target's result if its wait has ended; else the wait, given back.
    pub fn try_finish(self, watcher: &Watcher) -> Result<Result<Report, Error>, Pending> {
        let Inner {
            target,
            options,
            mut report,
            wait,
        } = *self.0;
        match wait {
            Wait::Watch {
                wd,
                wait_start,
                deadline,
            } => {
                let seen = match watcher.instance() {
                    Some(inotify) => inotify.take_events(wd),
                    None => Err(Errno::BADF),
                };
                match seen {
                    Ok(seen) if seen.ignored || seen.overflow => Ok(fallback::watch_ended(
                        &target, &options, report, seen, deadline, wait_start,
                    )
                    .map(|r| settled(&options, r))),
                    Ok(_) => Err(Pending(Box::new(Inner {
                        target,
                        options,
                        report,
                        wait: Wait::Watch {
                            wd,
                            wait_start,
                            deadline,
                        },
                    }))),
                    Err(e) => Ok(Err(Error::from_errno(
                        &target.given,
                        "reading inotify events",
                        e,
                    )
                    .with_state(State::Detached))),
                }
            }
            Wait::Child {
                mut child,
                umount_start,
            } => {
                let stopped = match child.try_wait() {
                    Ok(None) => {
                        return Err(Pending(Box::new(Inner {
                            target,
                            options,
                            report,
                            wait: Wait::Child {
                                child,
                                umount_start,
                            },
                        })))
                    }
                    Ok(Some(_)) => None,
                    Err(e) => Some(Stopped::Failed("reaping the child process", e)),
                };
                report.umount_time = umount_start.elapsed();
                let call = call::ended(child, stopped);
                Ok(child_ended(&target, &options, report, call))
            }
        }
    }

    /// Ends the wait now: the deadline passed, or the caller cancelled.
    /// A wait that has ended meanwhile is settled as such.
    pub fn stop(self, watcher: &Watcher, why: End) -> Result<Report, Error> {
        match self.try_finish(watcher) {
            Ok(result) => result,
            Err(pending) => pending.end(watcher, why),
        }
    }

    fn end(self, watcher: &Watcher, why: End) -> Result<Report, Error> {
        let Inner {
            target,
            options,
            mut report,
            wait,
        } = *self.0;
        match wait {
            Wait::Watch { wd, wait_start, .. } => {
                if let Some(inotify) = watcher.instance() {
                    inotify.end_watch(wd);
                }
                report.wait_time = wait_start.elapsed();
                let why = match why {
                    End::Deadline => timed_out(options.timeout),
                    End::Cancelled => Unconfirmed::Cancelled,
                };
                Ok(settled(&options, detached_unconfirmed(report, why)))
            }
            Wait::Child {
                child,
                umount_start,
            } => {
                let stopped = match why {
                    End::Deadline => Stopped::Deadline,
                    End::Cancelled => Stopped::Cancelled,
                };
                let call = call::ended(child, Some(stopped));
                report.umount_time = umount_start.elapsed();
                child_ended(&target, &options, report, call)
            }
        }
    }
}

/// The result of a kernel path child that ended.
fn child_ended(
    target: &Target,
    options: &Options<'_>,
    report: Report,
    call: call::Call,
) -> Result<Report, Error> {
    match call::unmount_ended(target, options, report, Ok(call)) {
        std::ops::ControlFlow::Continue(report) => Ok(report),
        std::ops::ControlFlow::Break(result) => result.map(|r| settled(options, r)),
    }
}

/// Sleeps until one of `pending` may have ended, `mount_table` (an open
/// `/proc/self/mountinfo`, if given) reports a change of the mount table,
/// `until` comes or `cancel` fires. The bool: the mount table changed.
pub fn wait_any(
    pending: &[&Pending],
    watcher: &Watcher,
    mount_table: Option<BorrowedFd<'_>>,
    cancel: Cancel<'_>,
    until: Instant,
) -> (Wake, bool) {
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
    if pending
        .iter()
        .any(|p| matches!(p.0.wait, Wait::Watch { .. }))
    {
        fds.extend(watcher.instance().map(|i| i.fd()));
    }
    fds.extend(pending.iter().filter_map(|p| match &p.0.wait {
        Wait::Child { child, .. } => Some(child.fd()),
        Wait::Watch { .. } => None,
    }));
    cancel::wait_any(&fds, mount_table, cancel, until)
}
