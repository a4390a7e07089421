//! Waits side by side, for `--all`: [`detach`] unmounts a target and,
//! where the filesystem's end is still to come, returns a [`Pending`] wait
//! that goes on while the next targets are unmounted: on the kernel path
//! with `UMOUNT_NOTIFY` its descriptor is polled with the others, in this
//! process; on the kernel path its `umount2(UMOUNT_WAIT)` child keeps
//! running, one per superblock; on the fallback path its watch stays in
//! the run's one inotify instance.
//! [`wait_any`] sleeps until one of them may have ended, the mount table
//! changed, the deadline came or the caller cancelled;
//! [`Pending::try_finish`] settles those that ended, [`stop_all`] those
//! left at the deadline, with one scan for what holds them all. A
//! filesystem that never dies costs the others nothing.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::io::Errno;

use super::call::{self, Stopped};
use super::fallback::{self, Watcher};
use super::notify;
use super::report::{detached_held_by, timed_out};
use super::{settled, Attempt, Options, Progress};
use crate::blockers::{self, Blocker};
use crate::cancel::{self, Cancel, Wake};
use crate::child::CallChild;
use crate::mountinfo::Mount;
use crate::outcome::{Error, Report, State, Unconfirmed, WaitPath};
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
    /// `UMOUNT_NOTIFY`: the descriptor that polls readable once the
    /// superblock is dead.
    Notify { dead: OwnedFd, wait_start: Instant },
    /// The kernel path: the child in `umount2(UMOUNT_WAIT)`.
    Child {
        child: CallChild,
        umount_start: Instant,
    },
    /// A wait that the host which made it answers for ([`Pending::kept`]):
    /// nothing here to poll, and it never ends by itself.
    Kept { wait_start: Instant },
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
    let attempt = Attempt::start(target, options, observer)?;
    let path = super::path_for(target, path, options);
    let (made_read_only, opened) = match options.read_only_first {
        true => super::read_only::before_unmount(target, options)?,
        false => (false, None),
    };
    // The root's handle pins the mount: kept only for the fallback path,
    // which watches it and closes it before its unmount.
    let opened = opened.filter(|_| path == WaitPath::Fallback);
    let detached = detach_started(&attempt, path, watcher, opened).map_err(|mut e| {
        e.made_read_only |= made_read_only && e.state == State::Untouched;
        e
    });
    super::forget_what_it_changed(options, &target.mount);
    detached
}

/// [`detach`], once the attempt has started.
fn detach_started(
    attempt: &Attempt<'_>,
    path: WaitPath,
    watcher: &mut Watcher,
    opened: Option<fallback::Opened>,
) -> Result<Detached, Error> {
    let Attempt {
        target, options, ..
    } = *attempt;
    let mut report = super::new_report(target, path);
    report.thawed = attempt.thawed;
    let kept = Options {
        force: options.force,
        lazy: options.lazy,
        read_only_on_failure: options.read_only_on_failure,
        read_only_if_unconfirmed: options.read_only_if_unconfirmed,
        shut_down_if_read_only_fails: options.shut_down_if_read_only_fails,
        // Only a refused unmount reads it, and that is settled at once.
        this_mount_only: None,
        read_only_first: options.read_only_first,
        timeout: options.timeout,
        watch_blockers: options.watch_blockers,
        cancel: Cancel::never(),
        caller: options.caller,
        // `--all` runs no unmount helper.
        helpers: None,
        // A wait that goes on unmounts nothing more.
        proc_fd: None,
        // A dry run has no wait to keep.
        dry_run: None,
        path_asked: options.path_asked,
    };
    let wait = match path {
        WaitPath::Notify => {
            let called = match notify::call(attempt, report) {
                Ok(called) => called,
                Err(result) => {
                    return (*result).map(|r| Detached::Done(Box::new(settled(options, r))))
                }
            };
            return Ok(Detached::Pending(Pending(Box::new(Inner {
                target: target.clone(),
                options: kept,
                report: called.report,
                wait: Wait::Notify {
                    dead: called.dead,
                    wait_start: Instant::now(),
                },
            }))));
        }
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
        WaitPath::Fallback => match fallback::detach(attempt, report.clone(), watcher, opened)? {
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
    /// A wait that goes on until the host that made it says it ended: a
    /// host that does not unmount through [`detach`] (the `--all`
    /// engine's test host, with waits that end in any order or at the
    /// deadline). `report` is the target's so far. Stopped
    /// ([`stop_all`]), it is detached, shutdown not confirmed.
    pub fn kept(target: Target, report: Report) -> Pending {
        Pending(Box::new(Inner {
            target,
            options: Options::default(),
            report,
            wait: Wait::Kept {
                wait_start: Instant::now(),
            },
        }))
    }

    /// The mount it unmounted.
    pub fn mount(&self) -> &Mount {
        &self.0.target.mount
    }

    /// The target's result if its wait has ended; else the wait, given back.
    pub fn try_finish(self, watcher: &Watcher) -> Result<Result<Report, Error>, Pending> {
        self.finish(watcher, None, None)
    }

    /// Ends the wait now: the deadline passed, or the caller cancelled
    /// ([`stop_all`]). A wait that has ended meanwhile is settled as such;
    /// one that has not is reported with `held`, what holds its
    /// filesystem.
    fn stop(self, watcher: &Watcher, why: End, held: Vec<Blocker>) -> Result<Report, Error> {
        match self.finish(watcher, Some(why), Some(held)) {
            Ok(result) => result,
            Err(_) => unreachable!("a wait that is stopped ends"),
        }
    }

    /// The result, if the wait has ended or is to end (`stop`, with the
    /// holders found if they are); else the wait, given back.
    fn finish(
        mut self,
        watcher: &Watcher,
        stop: Option<End>,
        held: Option<Vec<Blocker>>,
    ) -> Result<Result<Report, Error>, Pending> {
        let seen = match &mut self.0.wait {
            Wait::Watch { wd, .. } => {
                let seen = watcher
                    .instance()
                    .map_or(Err(Errno::BADF), |i| i.take_events(*wd));
                match seen {
                    Ok(s) if !s.ignored && !s.overflow && stop.is_none() => return Err(self),
                    seen => Some(seen),
                }
            }
            Wait::Notify { dead, .. } => match cancel::readable_now(dead.as_fd()) {
                Ok(false) if stop.is_none() => return Err(self),
                Ok(dead) => return Ok(self.end_notify(dead, stop, held)),
                Err(e) => {
                    let e = Error::from_errno(
                        &self.0.target.given,
                        "polling the shutdown descriptor",
                        e,
                    );
                    return Ok(Err(e.with_state(State::Detached)));
                }
            },
            Wait::Kept { .. } if stop.is_none() => return Err(self),
            Wait::Kept { .. } => return Ok(Ok(self.end_kept(stop, held))),
            Wait::Child { child, .. } => match child.try_wait() {
                Ok(None) if stop.is_none() => return Err(self),
                Ok(_) => None,
                Err(e) => {
                    let failed = Stopped::Failed("reaping the child process", e);
                    return Ok(self.end_child(Some(failed), held));
                }
            },
        };
        let ended_child = || match stop {
            None => None,
            Some(End::Deadline) => Some(Stopped::Deadline),
            Some(End::Cancelled) => Some(Stopped::Cancelled),
        };
        let Some(seen) = seen else {
            return Ok(self.end_child(ended_child(), held));
        };
        let Inner {
            target,
            options,
            mut report,
            wait,
        } = *self.0;
        let Wait::Watch {
            wd,
            wait_start,
            deadline,
        } = wait
        else {
            unreachable!("a watch's wait")
        };
        Ok(match seen {
            Ok(seen) if seen.ignored || seen.overflow => {
                fallback::watch_ended(&target, &options, report, seen, deadline, wait_start)
                    .map(|r| settled(&options, r))
            }
            // Stopped before its end.
            Ok(_) => {
                if let Some(inotify) = watcher.instance() {
                    inotify.end_watch(wd);
                }
                report.wait_time = wait_start.elapsed();
                let why = why_stopped(stop, &options);
                Ok(settled(
                    &options,
                    detached_held_by(&options, report, why, held),
                ))
            }
            Err(e) => Err(
                Error::from_errno(&target.given, "reading inotify events", e)
                    .with_state(State::Detached),
            ),
        })
    }

    /// The result of a `UMOUNT_NOTIFY` wait: shut down if its descriptor
    /// was readable (`dead`), else detached, shutdown not confirmed (the
    /// wait was stopped: `stop`).
    fn end_notify(
        self,
        dead: bool,
        stop: Option<End>,
        held: Option<Vec<Blocker>>,
    ) -> Result<Report, Error> {
        let Inner {
            options,
            mut report,
            wait,
            ..
        } = *self.0;
        let Wait::Notify { wait_start, .. } = wait else {
            unreachable!("a notification's wait")
        };
        report.wait_time = wait_start.elapsed();
        if !dead {
            let why = why_stopped(stop, &options);
            report = detached_held_by(&options, report, why, held);
        }
        Ok(settled(&options, report))
    }

    /// The result of a [`Pending::kept`] wait that was stopped: detached,
    /// shutdown not confirmed.
    fn end_kept(self, stop: Option<End>, held: Option<Vec<Blocker>>) -> Report {
        let Inner {
            options,
            mut report,
            wait,
            ..
        } = *self.0;
        let Wait::Kept { wait_start } = wait else {
            unreachable!("a kept wait")
        };
        report.wait_time = wait_start.elapsed();
        let why = why_stopped(stop, &options);
        detached_held_by(&options, report, why, held)
    }

    /// The result of the kernel path's child, killed first unless it has
    /// ended (`stopped`: why the wait did not go on; `held`: what holds the
    /// filesystem, where it is found already).
    fn end_child(
        self,
        stopped: Option<Stopped>,
        held: Option<Vec<Blocker>>,
    ) -> Result<Report, Error> {
        let mut inner = *self.0;
        let Wait::Child {
            child,
            umount_start,
        } = inner.wait
        else {
            unreachable!("a child's wait")
        };
        inner.report.umount_time = umount_start.elapsed();
        let call = call::ended(child, stopped);
        let options = &inner.options;
        match call::unmount_ended(&inner.target, options, inner.report, Ok(call), held) {
            std::ops::ControlFlow::Continue(report) => Ok(report),
            std::ops::ControlFlow::Break(result) => result.map(|r| settled(options, r)),
        }
    }
}

/// Ends the waits `pending` now (`why`: the deadline, or the caller
/// cancelled), in their order: those that ended meanwhile as they ended,
/// the others detached and not confirmed, with what holds their
/// filesystems found by one scan for all of them
/// ([`blockers::find_each`], until `scan_until`), not one each: among
/// many processes a scan takes long, and the deadline is past or near.
pub fn stop_all(
    pending: Vec<Pending>,
    watcher: &Watcher,
    why: End,
    scan_until: Instant,
) -> Vec<Result<Report, Error>> {
    let mut results: Vec<Option<Result<Report, Error>>> = Vec::with_capacity(pending.len());
    let mut going_on = Vec::new();
    for (i, p) in pending.into_iter().enumerate() {
        match p.try_finish(watcher) {
            Ok(result) => results.push(Some(result)),
            Err(p) => {
                results.push(None);
                going_on.push((i, p));
            }
        }
    }
    let held = {
        let mounts: Vec<&Mount> = going_on.iter().map(|(_, p)| p.mount()).collect();
        blockers::find_each(&mounts, None, scan_until)
    };
    for ((i, p), held) in going_on.into_iter().zip(held) {
        results[i] = Some(p.stop(watcher, why, held));
    }
    results
        .into_iter()
        .map(|r| r.expect("every wait ended"))
        .collect()
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
    // Events already read for a watch (by another's read of the shared
    // instance) wake nobody through the descriptor: such a wait has ended.
    let ended = pending.iter().any(|p| match &p.0.wait {
        Wait::Watch { wd, .. } => watcher.instance().is_none_or(|i| i.ended_already(*wd)),
        Wait::Child { .. } | Wait::Notify { .. } | Wait::Kept { .. } => false,
    });
    if ended {
        return (Wake::Readable, false);
    }
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
    if pending
        .iter()
        .any(|p| matches!(p.0.wait, Wait::Watch { .. }))
    {
        fds.extend(watcher.instance().map(|i| i.fd()));
    }
    fds.extend(pending.iter().filter_map(|p| match &p.0.wait {
        Wait::Child { child, .. } => Some(child.fd()),
        Wait::Notify { dead, .. } => Some(dead.as_fd()),
        Wait::Watch { .. } | Wait::Kept { .. } => None,
    }));
    cancel::wait_any(&fds, mount_table, cancel, until)
}

/// Why a wait that was stopped before its end is not confirmed: the
/// caller's cancellation, else the deadline.
fn why_stopped(stop: Option<End>, options: &Options<'_>) -> Unconfirmed {
    match stop {
        Some(End::Cancelled) => Unconfirmed::Cancelled,
        _ => timed_out(options.timeout),
    }
}
