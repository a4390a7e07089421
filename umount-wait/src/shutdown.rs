//! `--all`: unmount every selected filesystem, each confirmed shut down,
//! under one deadline. What reboot scripts and init systems do at the end.
//!
//! - The mount table is read again at each pass; the mounts below this
//!   process's root that the [`Filter`] selects are unmounted deepest first,
//!   the newest first among equals ([`mountinfo::submounts_deepest_first`]).
//! - Each one is detached through [`wait::detach`], the same kernel or
//!   fallback path as a single target, and its wait goes on beside the
//!   others ([`wait::Pending`]): one `umount2(UMOUNT_WAIT)` child per
//!   superblock on the kernel path; on the fallback path the root watches
//!   share one inotify instance for the whole run (a [`Watcher`]), since
//!   closing one waits for an SRCU grace period. After a pass has detached
//!   what it can, the run sleeps until a wait ends ([`wait::wait_any`]);
//!   a filesystem that never dies costs the others nothing. A mount whose filesystem
//!   is also mounted somewhere that stays (a bind mount) is unmounted
//!   without a wait ([`wait::unmount_shared`]): the shutdown comes with the
//!   last mount ([`wait::stays_mounted_at`], as for single targets and
//!   `-R`).
//! - Passes repeat while a pass unmounts something (a busy parent may be
//!   free once its children are gone; a mount may have been moved or
//!   uncovered), and, while waits go on, when the mount table changes
//!   (`/proc/self/mountinfo` polls POLLPRI) and some mount is busy: never
//!   on a timer. When a pass makes no progress, one last pass remounts
//!   read-only what stays busy, with `MNT_FORCE` first if asked; where
//!   read-only is refused, `FS_IOC_SHUTDOWN` with a log flush is the last
//!   resort ([`Outcome::ShutDownByIoctl`]).
//! - A loop device under a filesystem that shut down is detached and the
//!   detach confirmed ([`loopdev`]).
//! - The mount that holds this process's root is never unmounted: when it
//!   is selected, it is remounted read-only at the end, deadline or not.
//! - One deadline bounds the whole run, and its end is kept in [`reserve`]:
//!   the waits end there (what holds their filesystems found by one scan
//!   for all of them, with half the reserve: [`wait::stop_all`]), and the
//!   last pass then takes every mount left, each with its share of the
//!   reserve, so that nothing is read-write at the deadline. A cancelled
//!   run leaves the mounts not reached untouched.
//!
//! The engine talks to the system through [`Host`], so that the pass logic
//! can be tested on a mount table in memory.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::blockers;
use crate::cancel::Cancel;
use crate::cancel::Wake;
use crate::duration;
use crate::loopdev::{self, LoopDetach, LoopDevice};
use crate::mountinfo::{self, Mount, Table};
use crate::outcome::{Error, ErrorKind, Outcome, Report, State, WaitPath};
use crate::release::{self, Backers, Released};
use crate::select::Filter;
use crate::sys;
use crate::target::{self, Target};
use crate::wait::{self, Caller, Detached, DryRun, End, Options, Pending, Progress, Watcher};

/// What `--all` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct Plan<'a> {
    pub filter: Filter,
    /// `-f`: `MNT_FORCE` on the last pass, for what plain passes left.
    pub force_last_pass: bool,
    /// `-t`: the deadline for the whole run.
    pub timeout: Option<Duration>,
    /// Look for blockers during long waits.
    pub watch_blockers: bool,
    /// The caller's cancellation handle: the mount being waited for is
    /// reported detached, shutdown not confirmed; the rest untouched.
    pub cancel: Cancel<'a>,
    /// The caller has one thread: the run's watcher is
    /// [`Watcher::one_thread`]'s.
    pub one_thread: bool,
}

/// The final word on one filesystem (one mount).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The pass (from 1) that settled it.
    pub pass: u32,
    pub result: Result<Report, Error>,
    /// The loop device under it, detached after the shutdown.
    pub loop_detach: Option<LoopDetach>,
    /// What backed onto it, released before its unmount ([`release`]).
    pub released: Vec<Released>,
}

/// Why a run ended before its work was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The deadline (`--timeout`) passed.
    Deadline,
    /// The caller cancelled ([`Plan::cancel`]).
    Cancelled,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub entries: Vec<Entry>,
    pub passes: u32,
    pub elapsed: Duration,
    pub stopped: Option<Stop>,
}

/// What happens, as it happens, for the one place that prints.
#[derive(Debug)]
pub enum Event<'a> {
    /// A pass begins over `candidates` mounts.
    Pass {
        number: u32,
        last: bool,
        candidates: usize,
    },
    /// A mount could not be unmounted in this pass; it will be tried again.
    Retry { pass: u32, error: &'a Error },
    /// A mount is settled.
    Done(&'a Entry),
}

/// The system as the engine sees it.
pub trait Host {
    /// The mount id of this process's root.
    fn root_mount_id(&mut self) -> io::Result<u64>;
    /// The mount table now: read once per pass, and indexed, so that
    /// a pass over N mounts costs N lookups, not N searches.
    fn mounts(&mut self) -> io::Result<Table>;
    /// The mount as a target, if its mount point still leads to it.
    fn reach(&mut self, mount: &Mount, mounts: &Table) -> Result<Target, Error>;
    /// [`wait::detach`]; `watcher` is the run's.
    fn detach(
        &mut self,
        target: &Target,
        options: &Options<'_>,
        watcher: &mut Watcher,
    ) -> Result<Detached, Error>;
    /// [`wait::wait_any`], over the mount table's changes too when
    /// `table_changes`: the bool says it changed.
    fn wait(
        &mut self,
        pending: &[&Pending],
        watcher: &Watcher,
        table_changes: bool,
        cancel: Cancel<'_>,
        until: Instant,
    ) -> (Wake, bool);
    /// [`Pending::try_finish`]: the wait's result if it has ended, else
    /// the wait, given back. A host that makes its own waits
    /// ([`Pending::kept`]) answers for them.
    fn try_finish(
        &mut self,
        pending: Pending,
        watcher: &Watcher,
    ) -> Result<Result<Report, Error>, Pending> {
        pending.try_finish(watcher)
    }
    /// [`wait::stop_all`]: the waits ended now, in their order.
    fn stop_all(
        &mut self,
        pending: Vec<Pending>,
        watcher: &Watcher,
        end: End,
        scan_until: Instant,
    ) -> Vec<Result<Report, Error>> {
        wait::stop_all(pending, watcher, end, scan_until)
    }
    /// [`wait::unmount_shared`]
    fn unmount_shared(
        &mut self,
        target: &Target,
        still_mounted_at: &Path,
        options: &Options<'_>,
    ) -> Result<Report, Error>;
    /// [`wait::remount_read_only`]: a mount the reserve pass could not
    /// unmount in time.
    fn remount_read_only(
        &mut self,
        target: &Target,
        options: &Options<'_>,
    ) -> Result<Report, Error>;
    /// Remounts the root read-only.
    fn remount_root(&mut self, root: &Mount) -> Result<Report, Error>;
    /// [`release::release`], over what backs onto the filesystems of
    /// `mounts` ([`release::Backers`]). Err: something backs onto it, and
    /// its mount point does not lead to it now (nothing released; tried
    /// again with the mount).
    fn release(
        &mut self,
        mount: &Mount,
        mounts: &Table,
        deadline: Option<Instant>,
        cancel: Cancel<'_>,
    ) -> Result<Vec<Released>, Error>;
    /// The bound loop device under a filesystem, if any.
    fn loop_device(&mut self, mount: &Mount) -> Option<LoopDevice>;
    fn detach_loop(&mut self, lo: &LoopDevice, deadline: Instant, cancel: Cancel<'_>)
        -> LoopDetach;
}

/// The mounts `--all` takes care of, in the order of a pass: below the
/// root (which is not among them), selected by `filter`, deepest first.
pub fn candidates<'a>(mounts: &'a Table, root_id: u64, filter: &Filter) -> Vec<&'a Mount> {
    mounts
        .submounts_deepest_first(root_id)
        .into_iter()
        .filter(|m| filter.selects(m))
        .collect()
}

/// A mount of `mount`'s filesystem that `--all` does not take care of
/// (not in `selected`: not selected, outside the tree, or the root): the
/// filesystem is not the run's to stop. A busy `mount` is then made
/// read-only alone, never its filesystem, and never shut down by ioctl: a
/// bind of another filesystem (or of a directory of the root) under the
/// selection must not stop that filesystem.
pub fn unselected_mount_of<'a>(
    mounts: &'a Table,
    mount: &Mount,
    selected: &HashSet<u64>,
) -> Option<&'a Mount> {
    // Another mount of it that stays, when every selected one goes.
    wait::stays_mounted_at(mounts, mount, selected)
}

/// The part of a deadline kept at its end for what survives the waits
/// (made read-only, or shut down by ioctl): a tenth of it, at least a
/// second, never more than the whole.
pub fn reserve(timeout: Duration) -> Duration {
    (timeout / 10).max(RESERVE_MIN).min(timeout)
}

/// The least [`reserve`].
pub const RESERVE_MIN: Duration = Duration::from_secs(1);

/// A wait going on beside the others, with what comes after it.
struct Waiting {
    pending: Pending,
    /// The loop device under the filesystem, detached once it shut down.
    lo: Option<LoopDevice>,
    /// The pass that started it.
    pass: u32,
}

/// Ends every wait of `waiting` now (`end`), with one scan for the
/// holders of those that go on ([`wait::stop_all`]): each wait's mount,
/// the pass that started it, its loop device and its result. The scan
/// has half of what is left before the run's `deadline` (the last pass
/// has the other half), or, once it has passed or the caller cancelled,
/// [`wait::LATE_SCAN`].
fn stop_waits(
    host: &mut dyn Host,
    waiting: Vec<Waiting>,
    watcher: &Watcher,
    end: End,
    deadline: Option<Instant>,
) -> Vec<Ended> {
    let left = match (end, deadline) {
        (End::Deadline, Some(d)) => d.saturating_duration_since(Instant::now()),
        _ => Duration::ZERO,
    };
    let budget = match left {
        Duration::ZERO => wait::LATE_SCAN,
        left => left / 2,
    };
    let scan_until = blockers::deadline_in(Some(budget));
    let (pending, meta): (Vec<Pending>, Vec<_>) = waiting
        .into_iter()
        .map(|w| {
            let mount = w.pending.mount().clone();
            (w.pending, (mount, w.pass, w.lo))
        })
        .unzip();
    let results = host.stop_all(pending, watcher, end, scan_until);
    meta.into_iter()
        .zip(results)
        .map(|((mount, pass, lo), result)| Ended {
            mount,
            pass,
            lo,
            result,
        })
        .collect()
}

/// A wait that has ended, with its result.
struct Ended {
    mount: Mount,
    /// The pass that started it.
    pass: u32,
    lo: Option<LoopDevice>,
    result: Result<Report, Error>,
}

/// How long to sleep when nothing bounds a wait.
const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365);

/// Runs `--all`. Errors are only those that stop everything (the mount
/// table cannot be read); what happens to each mount is in the [`Summary`].
///
/// The driver: passes while they make progress, each one taking its
/// mounts ([`Run::take_mounts`]) and then waiting side by side
/// ([`Run::wait_side_by_side`]); the rules that end the loop sit here.
pub fn run(
    plan: &Plan<'_>,
    host: &mut dyn Host,
    events: &mut dyn FnMut(Event<'_>),
) -> io::Result<Summary> {
    let mut run = Run::new(plan, host, events)?;
    loop {
        let mut pass = run.start_pass()?;
        match run.take_mounts(&mut pass) {
            Step::Go => {}
            Step::NextPass => continue,
            Step::Stop => break,
        }
        match run.wait_side_by_side(&mut pass) {
            Step::Go => {}
            Step::NextPass => continue,
            Step::Stop => break,
        }
        if run.last || run.failures.is_empty() {
            break;
        }
        if !pass.progress && pass.gone.is_empty() {
            run.last = true;
        }
    }
    run.end()
}

/// What the driver does next, once a step is over.
enum Step {
    /// On with this pass.
    Go,
    /// A new pass, now.
    NextPass,
    /// No more passes: the end ([`Run::end`]).
    Stop,
}

/// One `--all` run under way: its deadlines, its entries, what it waits
/// for and what stays to be tried.
struct Run<'r, 'c> {
    plan: &'r Plan<'c>,
    host: &'r mut dyn Host,
    events: &'r mut dyn FnMut(Event<'_>),
    start: Instant,
    /// The end of the whole run (`--timeout`).
    deadline: Option<Instant>,
    /// The waits end at the reserve; then one last pass over what is left.
    waits_end: Option<Instant>,
    root_id: u64,
    entries: Vec<Entry>,
    /// What was released for each filesystem (by mount id), until its
    /// entry takes it.
    released: HashMap<u64, Vec<Released>>,
    /// The mounts the current pass could not unmount, with why.
    failures: Vec<(Mount, Error)>,
    waiting: Vec<Waiting>,
    pass: u32,
    /// The last pass: what stays busy is made read-only.
    last: bool,
    stopped: Option<Stop>,
    /// The run's one inotify instance.
    watcher: Watcher,
    /// Whether `/proc/self/fd` names handles, asked once for the run's
    /// unmounts and again after one that can change it.
    proc_fd: sys::ProcFd,
    /// The mount table as the current pass read it.
    mounts: Table,
    /// Mounts a step was given up on, asleep in the kernel past SIGKILL:
    /// their filesystem does not answer, and a later pass would only wait
    /// for it again.
    given_up: HashSet<u64>,
}

/// One pass's work and what it did.
struct Pass {
    /// The candidates not waited for nor given up on, in order.
    todo: Vec<Mount>,
    /// What `--all` may take care of: every candidate, those waited for
    /// and those settled in earlier passes too.
    selected: HashSet<u64>,
    /// Unmounted in this pass (or being waited for).
    gone: HashSet<u64>,
    /// Something went or shut down in this pass: a busy mount may be
    /// free now.
    progress: bool,
}

impl<'r, 'c> Run<'r, 'c> {
    fn new(
        plan: &'r Plan<'c>,
        host: &'r mut dyn Host,
        events: &'r mut dyn FnMut(Event<'_>),
    ) -> io::Result<Run<'r, 'c>> {
        let start = Instant::now();
        let root_id = host.root_mount_id()?;
        Ok(Run {
            plan,
            host,
            events,
            start,
            deadline: plan.timeout.map(|t| duration::deadline(start, t)),
            waits_end: plan
                .timeout
                .map(|t| duration::deadline(start, t - reserve(t))),
            root_id,
            entries: Vec::new(),
            released: HashMap::new(),
            failures: Vec::new(),
            waiting: Vec::new(),
            pass: 0,
            last: false,
            stopped: None,
            watcher: match plan.one_thread {
                true => Watcher::one_thread(),
                false => Watcher::default(),
            },
            proc_fd: sys::ProcFd::default(),
            mounts: Table::default(),
            given_up: HashSet::new(),
        })
    }

    /// Whether the waits' end (the reserve) has come.
    fn in_reserve(&self) -> bool {
        self.waits_end.is_some_and(|e| Instant::now() >= e)
    }

    /// A new pass: at the reserve, the waits ended first and this pass
    /// made the last; then the table read, the pass's mounts chosen and
    /// told.
    fn start_pass(&mut self) -> io::Result<Pass> {
        self.pass += 1;
        if !self.last && self.in_reserve() {
            self.stopped = Some(Stop::Deadline);
            self.last = true;
            let waits = std::mem::take(&mut self.waiting);
            let ended = stop_waits(
                &mut *self.host,
                waits,
                &self.watcher,
                End::Deadline,
                self.deadline,
            );
            for w in ended {
                self.settle(w.pass, w.mount.id, w.result, w.lo);
            }
        }
        self.mounts = self.host.mounts()?;
        let waited: HashSet<u64> = self.waiting.iter().map(|w| w.pending.mount().id).collect();
        let chosen = candidates(&self.mounts, self.root_id, &self.plan.filter);
        let selected: HashSet<u64> = chosen
            .iter()
            .map(|m| m.id)
            .chain(waited.iter().copied())
            .collect();
        let todo: Vec<Mount> = chosen
            .into_iter()
            .filter(|m| !waited.contains(&m.id) && !self.given_up.contains(&m.id))
            .cloned()
            .collect();
        (self.events)(Event::Pass {
            number: self.pass,
            last: self.last,
            candidates: todo.len(),
        });
        self.failures.clear();
        Ok(Pass {
            todo,
            selected,
            gone: HashSet::new(),
            progress: false,
        })
    }

    /// The pass's mounts, in order, each taken once ([`Run::take`]),
    /// until the caller cancels or the reserve comes.
    fn take_mounts(&mut self, pass: &mut Pass) -> Step {
        let todo = std::mem::take(&mut pass.todo);
        for (done, m) in todo.iter().enumerate() {
            if self.plan.cancel.is_cancelled() {
                self.stopped = Some(Stop::Cancelled);
                return Step::Stop;
            }
            if !self.last && self.in_reserve() {
                // The reserve: the last pass, over what is left, now.
                return Step::NextPass;
            }
            if let Step::Stop = self.take(pass, m, todo.len() - done) {
                return Step::Stop;
            }
        }
        Step::Go
    }

    /// How long the unmount of one of `left` mounts may take: before the
    /// reserve, until it; in the reserve, a share of what remains.
    fn timeout_for(&self, left: usize) -> Option<Duration> {
        let now = Instant::now();
        match (self.waits_end, self.deadline) {
            (Some(end), Some(deadline)) if now >= end => {
                let left = u32::try_from(left).unwrap_or(u32::MAX);
                Some(deadline.saturating_duration_since(now) / left)
            }
            (Some(end), _) => Some(end - now),
            _ => None,
        }
    }

    /// One mount (`left` counts it and those after it in the pass):
    /// released, unmounted (without a wait where its filesystem stays
    /// mounted), settled at once or left waiting, or kept for a retry.
    fn take(&mut self, pass: &mut Pass, m: &Mount, left: usize) -> Step {
        let unselected = unselected_mount_of(&self.mounts, m, &pass.selected);
        let elsewhere =
            wait::stays_mounted_at(&self.mounts, m, &pass.gone).map(|o| o.mount_point.clone());
        let options = Options {
            force: self.last && self.plan.force_last_pass,
            lazy: false,
            read_only_on_failure: self.last,
            read_only_if_unconfirmed: true,
            shut_down_if_read_only_fails: unselected.is_none(),
            this_mount_only: unselected.map(|o| o.mount_point.as_path()),
            read_only_first: elsewhere.is_none() && unselected.is_none(),
            timeout: self.timeout_for(left),
            watch_blockers: self.plan.watch_blockers,
            cancel: self.plan.cancel,
            caller: None,
            helpers: None,
            proc_fd: Some(&self.proc_fd),
            dry_run: None,
            // The host's to say ([`System::path_asked`]).
            path_asked: false,
        };
        let target = match self.host.reach(m, &self.mounts) {
            Ok(t) => t,
            Err(e) => {
                self.retry_later(m.clone(), e);
                return Step::Go;
            }
        };
        let lo = match elsewhere {
            None => self.host.loop_device(m),
            Some(_) => None,
        };
        // Its last mount: first what backs onto it (swap, loop
        // devices), once.
        if elsewhere.is_none() && !self.released.contains_key(&m.id) {
            let released = self
                .host
                .release(m, &self.mounts, self.deadline, self.plan.cancel);
            match released {
                Ok(released) => {
                    self.released.insert(m.id, released);
                }
                Err(e) => {
                    self.retry_later(m.clone(), e);
                    return Step::Go;
                }
            }
        }
        let detached = match &elsewhere {
            Some(at) => self
                .host
                .unmount_shared(&target, at, &options)
                .map(|r| Detached::Done(Box::new(r))),
            None => self.host.detach(&target, &options, &mut self.watcher),
        };
        let mut result = match detached {
            // Most filesystems are gone by the time umount2 returns:
            // those are settled now, in order, the rest waited for.
            Ok(Detached::Pending(pending)) => match self.host.try_finish(pending, &self.watcher) {
                Ok(result) => result,
                Err(pending) => {
                    pass.gone.insert(m.id);
                    let pass = self.pass;
                    self.waiting.push(Waiting { pending, lo, pass });
                    return Step::Go;
                }
            },
            Ok(Detached::Done(report)) => Ok(*report),
            Err(e) => Err(e),
        };
        // Its share of the reserve ended before the unmount did.
        if self.last
            && matches!(&result, Err(e) if e.kind == ErrorKind::DeadlineReached && e.state == State::Untouched)
        {
            result = self.host.remount_read_only(&target, &options);
        }
        match result {
            Err(e) if e.kind == ErrorKind::Interrupted => {
                self.stopped = Some(Stop::Cancelled);
                return Step::Stop;
            }
            Err(e) if matches!(e.kind, ErrorKind::GivenUp(_)) => {
                self.given_up.insert(m.id);
                self.settle(self.pass, m.id, Err(e), lo);
            }
            Err(e) if e.state == State::Untouched => self.retry_later(m.clone(), e),
            result => {
                if self.settle(self.pass, m.id, result, lo) {
                    pass.gone.insert(m.id);
                }
            }
        }
        Step::Go
    }

    /// `m` was not unmounted in this pass: told (but in the last pass,
    /// where it is the end) and kept among the failures.
    fn retry_later(&mut self, m: Mount, e: Error) {
        if !self.last {
            (self.events)(Event::Retry {
                pass: self.pass,
                error: &e,
            });
        }
        self.failures.push((m, e));
    }

    /// The waits, side by side, until each has ended; a change of the
    /// mount table while some mount is busy starts the next pass (a
    /// mount below it may be gone), the others' waits going on.
    fn wait_side_by_side(&mut self, pass: &mut Pass) -> Step {
        while !self.waiting.is_empty() {
            let until = match self.in_reserve() {
                true => self.deadline,
                false => self.waits_end,
            };
            let until = until.unwrap_or_else(|| duration::deadline(Instant::now(), FOREVER));
            let pending: Vec<&Pending> = self.waiting.iter().map(|w| &w.pending).collect();
            let retry = !self.last && !self.failures.is_empty();
            let (wake, changed) =
                self.host
                    .wait(&pending, &self.watcher, retry, self.plan.cancel, until);
            let end = match wake {
                Wake::Readable => None,
                Wake::Deadline | Wake::Failed(_) => Some(End::Deadline),
                Wake::Cancelled => Some(End::Cancelled),
            };
            let ended = match end {
                None => self.finished_waits(),
                Some(end) => stop_waits(
                    &mut *self.host,
                    std::mem::take(&mut self.waiting),
                    &self.watcher,
                    end,
                    self.deadline,
                ),
            };
            for w in ended {
                match w.result {
                    // The kernel path's unmount refused (busy): again later.
                    Err(e) if e.state == State::Untouched => self.retry_later(w.mount, e),
                    result => {
                        self.settle(w.pass, w.mount.id, result, w.lo);
                        pass.progress = true;
                    }
                }
            }
            match end {
                Some(End::Cancelled) => {
                    self.stopped = Some(Stop::Cancelled);
                    return Step::Stop;
                }
                Some(End::Deadline) if !self.last => {
                    self.stopped = Some(Stop::Deadline);
                    self.last = true;
                    return Step::NextPass;
                }
                _ if changed && retry => return Step::NextPass,
                _ => {}
            }
        }
        Step::Go
    }

    /// The waits that have ended, taken out of those going on.
    fn finished_waits(&mut self) -> Vec<Ended> {
        let mut ended = Vec::new();
        for w in std::mem::take(&mut self.waiting) {
            let mount = w.pending.mount().clone();
            match self.host.try_finish(w.pending, &self.watcher) {
                Ok(result) => ended.push(Ended {
                    mount,
                    pass: w.pass,
                    lo: w.lo,
                    result,
                }),
                Err(pending) => self.waiting.push(Waiting { pending, ..w }),
            }
        }
        ended
    }

    /// The final word on a filesystem, with its loop device detached when
    /// it shut down; told as it comes. Whether its mount is gone (not
    /// still mounted, read-only or shut down by ioctl).
    fn settle(
        &mut self,
        pass: u32,
        mount_id: u64,
        result: Result<Report, Error>,
        lo: Option<LoopDevice>,
    ) -> bool {
        let stays = matches!(&result, Ok(r) if matches!(r.outcome.state(), State::ReadOnly | State::ShutDownByIoctl));
        let shut_down = matches!(&result, Ok(r) if r.outcome == Outcome::ShutDown);
        let loop_detach = match lo {
            Some(lo) if shut_down => {
                let until = release::loop_deadline(self.deadline);
                Some(self.host.detach_loop(&lo, until, self.plan.cancel))
            }
            _ => None,
        };
        let released = self.released.remove(&mount_id).unwrap_or_default();
        self.push(Entry {
            pass,
            result,
            loop_detach,
            released,
        });
        !stays
    }

    /// An entry, kept and told.
    fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
        (self.events)(Event::Done(self.entries.last().expect("just pushed")));
    }

    /// The end: what is left reported (the failures of the last pass,
    /// and, when the run was stopped, the mounts it did not reach), then
    /// the root.
    fn end(mut self) -> io::Result<Summary> {
        let settled: HashSet<u64> = self
            .entries
            .iter()
            .map(|e| match &e.result {
                Ok(r) => r.mount.id,
                Err(_) => u64::MAX,
            })
            .collect();
        let left: Vec<Mount> = match self.stopped {
            None => self.failures.iter().map(|(m, _)| m.clone()).collect(),
            Some(_) => {
                let now = self
                    .host
                    .mounts()
                    .unwrap_or_else(|_| std::mem::take(&mut self.mounts));
                candidates(&now, self.root_id, &self.plan.filter)
                    .into_iter()
                    .filter(|m| !settled.contains(&m.id))
                    .cloned()
                    .collect()
            }
        };
        // The first error of each mount left.
        let mut failed: HashMap<u64, Error> = HashMap::with_capacity(self.failures.len());
        for (m, e) in std::mem::take(&mut self.failures) {
            failed.entry(m.id).or_insert(e);
        }
        for m in left {
            let error = failed.remove(&m.id).unwrap_or_else(|| {
                let kind = match self.stopped {
                    Some(Stop::Cancelled) => ErrorKind::Interrupted,
                    _ => ErrorKind::DeadlineReached,
                };
                Error::new(&m.mount_point, kind, None)
            });
            let released = self.released.remove(&m.id).unwrap_or_default();
            self.push(Entry {
                pass: self.pass,
                result: Err(error),
                loop_detach: None,
                released,
            });
        }
        self.root_read_only()?;
        Ok(Summary {
            entries: self.entries,
            passes: self.pass,
            elapsed: self.start.elapsed(),
            stopped: self.stopped,
        })
    }

    /// The root last: never unmounted, remounted read-only when selected,
    /// deadline or not.
    fn root_read_only(&mut self) -> io::Result<()> {
        let mounts = self.host.mounts()?;
        if let Some(root) = mounts
            .by_id(self.root_id)
            .filter(|r| self.plan.filter.selects(r))
        {
            let result = match self.stopped {
                None | Some(Stop::Deadline) => self.host.remount_root(root),
                Some(Stop::Cancelled) => {
                    Err(Error::new(&root.mount_point, ErrorKind::Interrupted, None))
                }
            };
            self.push(Entry {
                pass: self.pass,
                result,
                loop_detach: None,
                released: Vec::new(),
            });
        }
        Ok(())
    }
}

/// The real system: [`wait`], [`loopdev`], `/proc/self/mountinfo`.
pub struct System<'a> {
    path: WaitPath,
    /// The path was asked for, not chosen ([`Options::path_asked`]).
    path_asked: bool,
    observer: &'a dyn Fn(Progress<'_>),
    /// `/proc/self/mountinfo`, open from the first read of the table on:
    /// it polls POLLPRI when the table changed since.
    table: Option<std::fs::File>,
    /// This process's root and working directory, found with the first
    /// table and given to every unmount ([`Options::caller`]).
    caller: Option<Caller>,
    /// What backs onto the filesystems of the pass's table, read at the
    /// pass's first release ([`release::Backers`]).
    backers: Option<Backers>,
}

impl<'a> System<'a> {
    pub fn new(path: WaitPath, observer: &'a dyn Fn(Progress<'_>)) -> System<'a> {
        System {
            path,
            path_asked: false,
            observer,
            table: None,
            caller: None,
            backers: None,
        }
    }

    /// `path` was asked for (`--mode`), not chosen: every filesystem takes
    /// it ([`Options::path_asked`]).
    pub fn path_asked(self, asked: bool) -> System<'a> {
        System {
            path_asked: asked,
            ..self
        }
    }
}

/// Why `target`'s mount point does not lead to its mount, as a lookup of
/// the path tells it (what [`Host::reach`] would have said before
/// [`System::reach`] took the table's word): the lookup's error, a
/// symbolic link, no mount root there, another mount on top of it
/// (covered), another filesystem. None when it does lead there (the refusal was another's).
fn unreachable_why(target: &Target) -> Option<Error> {
    let path = &target.mount.mount_point;
    match sys::stat_target(path, false) {
        Err(e) => Some(Error::from_errno(path, "inspecting the target", e)),
        Ok(st) if st.is_symlink => Some(Error::new(path, ErrorKind::Symlink, None)),
        Ok(st) if !st.is_mount_root => Some(Error::new(path, ErrorKind::NotMountPoint, None)),
        Ok(st) if st.mount_id != target.mount.id => {
            Some(Error::new(path, ErrorKind::Covered, None))
        }
        Ok(st) if !target::same_filesystem(st.dev, &target.mount) => {
            Some(Error::new(path, ErrorKind::Moved, None))
        }
        Ok(_) => None,
    }
}

/// `result`, where a step's own check refused the target untouched because
/// its mount point no longer leads to its mount (moved, not found, its
/// lookup failed), with the reason a lookup of the path gives
/// ([`unreachable_why`]), as [`Host::reach`] gave it before
/// [`System::reach`] took the table's word; what else was known (made
/// read-only first, its holders) kept. Any other error as it is.
fn said_as_reached<T>(target: &Target, result: Result<T, Error>) -> Result<T, Error> {
    result.map_err(|e| {
        let refused_by_a_check = e.state == State::Untouched
            && match e.kind {
                ErrorKind::Moved | ErrorKind::NotFound => true,
                ErrorKind::System(step) => matches!(
                    step,
                    "opening the mount root"
                        | "inspecting the mount root"
                        | "inspecting the target"
                ),
                _ => false,
            };
        match refused_by_a_check
            .then(|| unreachable_why(target))
            .flatten()
        {
            Some(why) => Error {
                blockers: e.blockers,
                made_read_only: e.made_read_only,
                ..why
            },
            None => e,
        }
    })
}

impl Host for System<'_> {
    fn root_mount_id(&mut self) -> io::Result<u64> {
        sys::stat_target(Path::new("/"), true)
            .map(|st| st.mount_id)
            .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))
    }

    fn mounts(&mut self) -> io::Result<Table> {
        if self.table.is_none() {
            // Without /proc the table is listed instead (`listmount(2)`),
            // and nothing polls for its changes: a pass then comes when a
            // wait ends or the deadline does.
            self.table = match std::fs::File::open("/proc/self/mountinfo") {
                Ok(file) => Some(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
        }
        let mounts = mountinfo::read(None)?;
        if self.caller.is_none() {
            self.caller = Caller::find(&mounts).ok();
        }
        // A new pass: what backs onto its filesystems is read anew.
        self.backers = None;
        Ok(mounts)
    }

    fn reach(&mut self, mount: &Mount, mounts: &Table) -> Result<Target, Error> {
        if mounts.covered(mount.id) {
            return Err(Error::new(&mount.mount_point, ErrorKind::Covered, None));
        }
        // Taken as the table names it, not looked up here: each step that
        // acts on a target first checks, through handles, that its mount
        // point leads to that mount (`wait::still_there`, the fallback's
        // handles, the read-only step's), and refuses it untouched where
        // it does not; [`System::detach`] then says why, as a lookup here
        // would have. One walk of the path less for every mount.
        // Mount points from mountinfo have no symbolic links: never follow.
        Ok(Target::of_mount(mount))
    }

    fn detach(
        &mut self,
        target: &Target,
        options: &Options<'_>,
        watcher: &mut Watcher,
    ) -> Result<Detached, Error> {
        let options = Options {
            caller: self.caller,
            path_asked: self.path_asked,
            ..*options
        };
        said_as_reached(
            target,
            wait::detach(target, self.path, &options, self.observer, watcher),
        )
    }

    fn wait(
        &mut self,
        pending: &[&Pending],
        watcher: &Watcher,
        table_changes: bool,
        cancel: Cancel<'_>,
        until: Instant,
    ) -> (Wake, bool) {
        let table = self.table.as_ref().filter(|_| table_changes);
        wait::wait_any(
            pending,
            watcher,
            table.map(std::os::fd::AsFd::as_fd),
            cancel,
            until,
        )
    }

    fn unmount_shared(
        &mut self,
        target: &Target,
        still_mounted_at: &Path,
        options: &Options<'_>,
    ) -> Result<Report, Error> {
        said_as_reached(
            target,
            wait::unmount_shared(target, self.path, still_mounted_at, options),
        )
    }

    fn remount_read_only(
        &mut self,
        target: &Target,
        options: &Options<'_>,
    ) -> Result<Report, Error> {
        said_as_reached(target, wait::remount_read_only(target, self.path, options))
    }

    fn remount_root(&mut self, root: &Mount) -> Result<Report, Error> {
        let start = Instant::now();
        // The root's filesystem, through a handle: its mount keeps its
        // own attributes, the superblock its other flags.
        sys::open_path(Path::new("/"), true)
            .and_then(|root| sys::reconfigure_read_only(std::os::fd::AsFd::as_fd(&root)))
            .map_err(|e| Error::from_errno("/", "remounting the root read-only", e))?;
        let target = Target {
            given: PathBuf::from("/"),
            path: PathBuf::from("/"),
            ..Target::of_mount(root)
        };
        let mut report = wait::new_report(&target, self.path);
        report.outcome = Outcome::RootReadOnly;
        report.umount_time = start.elapsed();
        Ok(report)
    }

    fn release(
        &mut self,
        mount: &Mount,
        mounts: &Table,
        deadline: Option<Instant>,
        cancel: Cancel<'_>,
    ) -> Result<Vec<Released>, Error> {
        let backers = self
            .backers
            .get_or_insert_with(|| Backers::read(mounts, release::loop_deadline(deadline)));
        // [`System::reach`] took the table's word: before swap is turned
        // off or a loop device detached, the mount point must lead to the
        // mount, as a lookup there said before.
        if !backers.of(mount, mounts).is_empty() {
            if let Some(e) = unreachable_why(&Target::of_mount(mount)) {
                return Err(e);
            }
        }
        Ok(release::release(mount, mounts, backers, deadline, cancel))
    }

    fn loop_device(&mut self, mount: &Mount) -> Option<LoopDevice> {
        loopdev::of(mount.dev, Path::new(&mount.source))
    }

    fn detach_loop(
        &mut self,
        lo: &LoopDevice,
        deadline: Instant,
        cancel: Cancel<'_>,
    ) -> LoopDetach {
        loopdev::detach(lo, deadline, cancel)
    }
}

/// `--fake --all`: the system as a real run would find it, every action
/// recorded in a [`DryRun`] instead of made, and answered as the kernel
/// would: a mount with a mount on it (one the run leaves) is busy, any
/// other unmount ends at once, shut down. The engine's decisions are the
/// real run's: the order, the passes, the mounts without a wait, the
/// retries and the last pass's read-only remounts.
pub struct Recording<'a> {
    path: WaitPath,
    /// The path was asked for, not chosen ([`Options::path_asked`]).
    path_asked: bool,
    dry: &'a DryRun,
    /// The table as first read (or given); those unmounted since are
    /// left out of each pass's ([`DryRun::gone`]).
    table: Option<Table>,
    root_id: Option<u64>,
    /// What backs onto the filesystems of the pass's table.
    backers: Option<Backers>,
}

impl<'a> Recording<'a> {
    /// Over the system's mount table, read at the first pass.
    pub fn new(path: WaitPath, dry: &'a DryRun) -> Recording<'a> {
        Recording {
            path,
            path_asked: false,
            dry,
            table: None,
            root_id: None,
            backers: None,
        }
    }

    /// `path` was asked for (`--mode`), not chosen ([`System::path_asked`]).
    pub fn path_asked(self, asked: bool) -> Recording<'a> {
        Recording {
            path_asked: asked,
            ..self
        }
    }

    /// Over `table`, whose root is the mount `root_id` (tests).
    pub fn over(table: Table, root_id: u64, path: WaitPath, dry: &'a DryRun) -> Recording<'a> {
        Recording {
            table: Some(table),
            root_id: Some(root_id),
            ..Recording::new(path, dry)
        }
    }

    fn report(&self, target: &Target, outcome: Outcome) -> Report {
        let mut report = wait::new_report(target, self.path);
        report.outcome = outcome;
        report
    }

    /// A mount on `mount`, in the table as it would be: the kernel's
    /// EBUSY.
    fn mounted_on(&mut self, mount: &Mount) -> Option<PathBuf> {
        let gone = self.dry.gone();
        self.table
            .as_ref()?
            .iter()
            .find(|c| c.parent_id == mount.id && c.id != mount.id && !gone.contains(&c.id))
            .map(|c| c.mount_point.clone())
    }

    /// An unmount that would end `outcome`, or busy: refused (a later
    /// pass tries again) or, in the last pass, made read-only.
    fn unmount(
        &mut self,
        target: &Target,
        options: &Options<'_>,
        line: String,
        outcome: Outcome,
    ) -> Result<Report, Error> {
        let Some(on_it) = self.mounted_on(&target.mount) else {
            self.dry.record(line);
            self.dry.unmounted(&target.mount);
            return Ok(self.report(target, outcome));
        };
        if !options.read_only_on_failure {
            return Err(Error::from_unmount(&target.given, rustix::io::Errno::BUSY));
        }
        self.dry.record(format!(
            "would remount {} read-only: busy, {} is mounted on it",
            DryRun::describe(&target.mount),
            mountinfo::display(&on_it)
        ));
        Ok(self.report(target, Outcome::RemountedReadOnly(rustix::io::Errno::BUSY)))
    }
}

impl Host for Recording<'_> {
    fn root_mount_id(&mut self) -> io::Result<u64> {
        if let Some(id) = self.root_id {
            return Ok(id);
        }
        let id = System::new(self.path, &|_| {}).root_mount_id()?;
        self.root_id = Some(id);
        Ok(id)
    }

    fn mounts(&mut self) -> io::Result<Table> {
        if self.table.is_none() {
            self.table = Some(mountinfo::read(None)?);
        }
        self.backers = None;
        let gone = self.dry.gone();
        let table = self.table.as_ref().expect("just read");
        Ok(Table::new(
            table
                .iter()
                .filter(|m| !gone.contains(&m.id))
                .cloned()
                .collect(),
        ))
    }

    fn reach(&mut self, mount: &Mount, mounts: &Table) -> Result<Target, Error> {
        // A mount stacked on it, still there, covers its mount point.
        if mounts.covered(mount.id) {
            return Err(Error::new(&mount.mount_point, ErrorKind::Covered, None));
        }
        Ok(Target::of_mount(mount))
    }

    fn detach(
        &mut self,
        target: &Target,
        options: &Options<'_>,
        _: &mut Watcher,
    ) -> Result<Detached, Error> {
        let options_here = Options {
            path_asked: self.path_asked,
            ..*options
        };
        let path = wait::path_for(target, self.path, &options_here);
        let line = format!(
            "would unmount {} by the {} path",
            DryRun::describe(&target.mount),
            path.name()
        );
        self.unmount(target, options, line, Outcome::ShutDown)
            .map(|r| Detached::Done(Box::new(r)))
    }

    fn wait(
        &mut self,
        _: &[&Pending],
        _: &Watcher,
        _: bool,
        _: Cancel<'_>,
        _: Instant,
    ) -> (Wake, bool) {
        // Every unmount of a dry run has ended at once: no wait is kept.
        (Wake::Readable, false)
    }

    fn unmount_shared(
        &mut self,
        target: &Target,
        still_mounted_at: &Path,
        options: &Options<'_>,
    ) -> Result<Report, Error> {
        let line = format!(
            "would unmount {} without a wait: its filesystem stays mounted at {}",
            DryRun::describe(&target.mount),
            mountinfo::display(still_mounted_at)
        );
        let outcome = Outcome::Unmounted {
            still_mounted_at: still_mounted_at.to_path_buf(),
        };
        self.unmount(target, options, line, outcome)
    }

    fn remount_read_only(&mut self, target: &Target, _: &Options<'_>) -> Result<Report, Error> {
        self.dry.record(format!(
            "would remount {} read-only",
            DryRun::describe(&target.mount)
        ));
        Ok(self.report(
            target,
            Outcome::RemountedReadOnly(rustix::io::Errno::TIMEDOUT),
        ))
    }

    fn remount_root(&mut self, root: &Mount) -> Result<Report, Error> {
        self.dry.record(format!(
            "would remount {} read-only",
            DryRun::describe(root)
        ));
        Ok(self.report(&Target::of_mount(root), Outcome::RootReadOnly))
    }

    fn release(
        &mut self,
        mount: &Mount,
        mounts: &Table,
        deadline: Option<Instant>,
        _: Cancel<'_>,
    ) -> Result<Vec<Released>, Error> {
        let backers = self
            .backers
            .get_or_insert_with(|| Backers::read(mounts, release::loop_deadline(deadline)));
        let backing = backers.of(mount, mounts);
        for swap in &backing.swaps {
            self.dry.record(format!(
                "would turn swap off on {}",
                mountinfo::display(swap)
            ));
        }
        for lo in &backing.loops {
            self.dry.record(format!(
                "would detach {} (backing {})",
                mountinfo::display(&lo.node),
                mountinfo::display(&lo.backing_file)
            ));
        }
        Ok(Vec::new())
    }

    fn loop_device(&mut self, mount: &Mount) -> Option<LoopDevice> {
        loopdev::of(mount.dev, Path::new(&mount.source))
    }

    fn detach_loop(&mut self, lo: &LoopDevice, _: Instant, _: Cancel<'_>) -> LoopDetach {
        self.dry
            .then(&format!(", then detach {}", mountinfo::display(&lo.node)));
        LoopDetach {
            device: lo.clone(),
            outcome: loopdev::LoopOutcome::Detached { autoclear: false },
            time: Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loopdev::LoopOutcome;
    use crate::mountinfo::parse;
    use crate::select::TypeList;
    use std::collections::HashMap;

    /// A mount table in memory: unmounting removes a line. `busy` mounts
    /// fail with EBUSY until the mount named as their blocker is gone (or
    /// for ever, blocker 0); `covered` mounts cannot be reached.
    /// `pending` mounts are detached with their wait still to end: each
    /// wake ends the next of `ends` that is waited for, and when none is
    /// left the deadline comes; a wait over the table's changes first
    /// sees `table_change` unmounted by someone else.
    struct Fake {
        pending: HashSet<u64>,
        ends: std::collections::VecDeque<u64>,
        ended: HashSet<u64>,
        table_change: Option<u64>,
        mounts: Vec<Mount>,
        busy: HashMap<u64, u64>,
        covered: HashSet<u64>,
        loops: HashSet<u64>,
        /// Mounts whose every step is given up, asleep past SIGKILL.
        stalled: HashSet<u64>,
        /// The watchers the waits were given (their addresses).
        watchers: HashSet<usize>,
        /// Every call, in order: "wait 30", "shared 31", "ro 30", "force 30",
        /// "root-ro", "loop 30".
        log: Vec<String>,
    }

    impl Fake {
        fn new(table: &[u8]) -> Fake {
            Fake {
                pending: HashSet::new(),
                ends: Default::default(),
                ended: HashSet::new(),
                table_change: None,
                mounts: parse(table).unwrap(),
                busy: HashMap::new(),
                covered: HashSet::new(),
                loops: HashSet::new(),
                stalled: HashSet::new(),
                watchers: HashSet::new(),
                log: Vec::new(),
            }
        }

        fn report(target: &Target, outcome: Outcome) -> Report {
            let mut r = wait::new_report(target, WaitPath::Fallback);
            r.outcome = outcome;
            r
        }

        fn attempt(
            &mut self,
            target: &Target,
            options: &Options<'_>,
            outcome: Outcome,
        ) -> Result<Report, Error> {
            let id = target.mount.id;
            if options.force {
                self.log.push(format!("force {id}"));
            }
            if self.stalled.contains(&id) {
                return Err(Error::new(
                    &target.given,
                    ErrorKind::GivenUp("remounting read-only"),
                    None,
                ));
            }
            // As in the kernel: a mount with a mount on it is busy.
            let has_child = self.mounts.iter().any(|m| m.parent_id == id);
            let blocked = has_child
                || match self.busy.get(&id) {
                    Some(0) => true,
                    Some(by) => self.mounts.iter().any(|m| m.id == *by),
                    None => false,
                };
            if blocked {
                if options.read_only_on_failure {
                    self.log.push(format!("ro {id}"));
                    return Ok(Fake::report(
                        target,
                        Outcome::RemountedReadOnly(rustix::io::Errno::BUSY),
                    ));
                }
                return Err(Error::from_unmount(&target.given, rustix::io::Errno::BUSY));
            }
            self.mounts.retain(|m| m.id != id);
            Ok(Fake::report(target, outcome))
        }
    }

    impl Host for Fake {
        fn root_mount_id(&mut self) -> io::Result<u64> {
            Ok(self
                .mounts
                .iter()
                .find(|m| m.mount_point == Path::new("/"))
                .unwrap()
                .id)
        }
        fn mounts(&mut self) -> io::Result<Table> {
            Ok(Table::new(self.mounts.clone()))
        }
        fn reach(&mut self, mount: &Mount, _: &Table) -> Result<Target, Error> {
            if self.covered.contains(&mount.id) {
                return Err(Error::new(&mount.mount_point, ErrorKind::Covered, None));
            }
            Ok(Target::of_mount(mount))
        }
        fn detach(
            &mut self,
            t: &Target,
            o: &Options<'_>,
            w: &mut Watcher,
        ) -> Result<Detached, Error> {
            self.watchers.insert(w as *mut Watcher as usize);
            self.log.push(format!("wait {}", t.mount.id));
            let report = self.attempt(t, o, Outcome::ShutDown)?;
            Ok(match self.pending.contains(&t.mount.id) {
                true => Detached::Pending(Pending::kept(t.clone(), report)),
                false => Detached::Done(Box::new(report)),
            })
        }
        fn wait(
            &mut self,
            pending: &[&Pending],
            _: &Watcher,
            table_changes: bool,
            _: Cancel<'_>,
            _: Instant,
        ) -> (Wake, bool) {
            if let Some(id) = self.table_change.filter(|_| table_changes) {
                self.table_change = None;
                self.log.push(format!("change {id}"));
                self.mounts.retain(|m| m.id != id);
                return (Wake::Readable, true);
            }
            let waited: HashSet<u64> = pending.iter().map(|p| p.mount().id).collect();
            match self.ends.iter().position(|id| waited.contains(id)) {
                Some(i) => {
                    let id = self.ends.remove(i).unwrap();
                    self.log.push(format!("end {id}"));
                    self.ended.insert(id);
                    (Wake::Readable, false)
                }
                None => (Wake::Deadline, false),
            }
        }
        fn try_finish(
            &mut self,
            pending: Pending,
            _: &Watcher,
        ) -> Result<Result<Report, Error>, Pending> {
            match self.ended.contains(&pending.mount().id) {
                true => Ok(Ok(Fake::report(
                    &Target::of_mount(pending.mount()),
                    Outcome::ShutDown,
                ))),
                false => Err(pending),
            }
        }
        fn stop_all(
            &mut self,
            pending: Vec<Pending>,
            watcher: &Watcher,
            end: End,
            _: Instant,
        ) -> Vec<Result<Report, Error>> {
            pending
                .into_iter()
                .map(|p| {
                    self.log.push(format!("stop {}", p.mount().id));
                    match self.try_finish(p, watcher) {
                        Ok(result) => result,
                        // No holder to look for: no scan.
                        Err(p) => wait::stop_all(vec![p], watcher, end, Instant::now())
                            .pop()
                            .unwrap(),
                    }
                })
                .collect()
        }
        fn unmount_shared(
            &mut self,
            target: &Target,
            at: &Path,
            options: &Options<'_>,
        ) -> Result<Report, Error> {
            self.log.push(format!("shared {}", target.mount.id));
            let outcome = Outcome::Unmounted {
                still_mounted_at: at.to_path_buf(),
            };
            self.attempt(target, options, outcome)
        }
        fn remount_read_only(&mut self, t: &Target, _: &Options<'_>) -> Result<Report, Error> {
            self.log.push(format!("ro {}", t.mount.id));
            Ok(Fake::report(
                t,
                Outcome::RemountedReadOnly(rustix::io::Errno::TIMEDOUT),
            ))
        }
        fn remount_root(&mut self, root: &Mount) -> Result<Report, Error> {
            self.log.push("root-ro".into());
            let t = self.reach(root, &Table::default())?;
            Ok(Fake::report(&t, Outcome::RootReadOnly))
        }
        fn release(
            &mut self,
            _: &Mount,
            _: &Table,
            _: Option<Instant>,
            _: Cancel<'_>,
        ) -> Result<Vec<Released>, Error> {
            Ok(Vec::new())
        }
        fn loop_device(&mut self, mount: &Mount) -> Option<LoopDevice> {
            self.loops.contains(&mount.id).then(|| LoopDevice {
                dev: mount.dev,
                node: PathBuf::from(&mount.source),
                backing_file: "/img".into(),
            })
        }
        fn detach_loop(&mut self, lo: &LoopDevice, _: Instant, _: Cancel<'_>) -> LoopDetach {
            self.log.push(format!("loop {}", lo.node.display()));
            LoopDetach {
                device: lo.clone(),
                outcome: LoopOutcome::Detached { autoclear: false },
                time: Duration::ZERO,
            }
        }
    }

    const TABLE: &[u8] = b"\
20 1 8:2 / / rw - ext4 /dev/sda2 rw
21 20 0:20 / /proc rw - proc proc rw
27 20 8:3 / /data rw - ext4 /dev/sda3 rw
28 27 7:0 / /data/img rw - ext4 /dev/loop0 rw
29 20 8:3 /media /mnt/media rw - ext4 /dev/sda3 rw
30 20 0:25 / /mnt/t rw - tmpfs none rw
31 30 0:26 / /mnt/t/a rw - tmpfs none rw
32 20 8:2 /home /mnt/home rw - ext4 /dev/sda2 rw
";

    fn run_fake(fake: &mut Fake, plan: &Plan) -> (Summary, Vec<String>) {
        let mut events = Vec::new();
        let summary = run(plan, fake, &mut |e| {
            events.push(match e {
                Event::Pass { number, last, .. } => {
                    format!("pass {number}{}", if last { " last" } else { "" })
                }
                Event::Retry { error, .. } => format!("retry {}", error.target.display()),
                Event::Done(entry) => format!(
                    "done {}",
                    match &entry.result {
                        Ok(r) => format!("{} {}", r.mount.mount_point.display(), r.outcome.name()),
                        Err(e) => format!("{} {:?}", e.target.display(), e.kind),
                    }
                ),
            })
        })
        .unwrap();
        (summary, events)
    }

    fn ids(mounts: &[&Mount]) -> Vec<u64> {
        mounts.iter().map(|m| m.id).collect()
    }

    #[test]
    fn candidates_deepest_then_newest_root_and_api_left_out() {
        let mounts = Table::new(parse(TABLE).unwrap());
        assert_eq!(
            ids(&candidates(&mounts, 20, &Filter::default())),
            [31, 28, 32, 30, 29, 27]
        );
        let only_mnt = Filter {
            include: vec!["/mnt".into()],
            types: Some(TypeList::parse("tmpfs").unwrap()),
            ..Filter::default()
        };
        assert_eq!(ids(&candidates(&mounts, 20, &only_mnt)), [31, 30]);
    }

    #[test]
    fn bind_mounts_go_without_a_wait_and_the_last_one_waits() {
        let mounts = Table::new(parse(TABLE).unwrap());
        let none = HashSet::new();
        let media = &mounts[4];
        assert_eq!(
            wait::stays_mounted_at(&mounts, media, &none).unwrap().id,
            27
        );
        let gone: HashSet<u64> = [29].into();
        assert!(wait::stays_mounted_at(&mounts, &mounts[2], &gone).is_none());
    }

    #[test]
    fn one_pass_when_nothing_is_busy_root_read_only_last() {
        let mut fake = Fake::new(TABLE);
        fake.loops.insert(28);
        let (summary, _) = run_fake(&mut fake, &Plan::default());
        assert_eq!(summary.passes, 1);
        assert_eq!(
            fake.log,
            [
                "wait 31",
                "wait 28",
                "loop /dev/loop0",
                // /mnt/home: the root's filesystem stays mounted at /.
                "shared 32",
                "wait 30",
                // /mnt/media first: /data still holds the filesystem...
                "shared 29",
                // ...and /data is its last mount: the wait.
                "wait 27",
                "root-ro"
            ]
        );
        let names: Vec<&str> = summary
            .entries
            .iter()
            .map(|e| e.result.as_ref().unwrap().outcome.name())
            .collect();
        assert_eq!(
            names,
            [
                "shut_down",
                "shut_down",
                "unmounted",
                "shut_down",
                "unmounted",
                "shut_down",
                "remounted_read_only"
            ]
        );
        assert!(summary.entries[1].loop_detach.is_some());
        // One inotify instance for every wait of the run.
        assert_eq!(fake.watchers.len(), 1);
        // /proc is still there: API filesystems are left alone.
        assert!(fake.mounts.iter().any(|m| m.id == 21));
    }

    #[test]
    fn passes_repeat_while_they_make_progress() {
        let mut fake = Fake::new(TABLE);
        // /mnt/t/a is busy until /data/img is gone, which comes later in
        // the same pass: the second pass takes it, then /mnt/t.
        fake.busy.insert(31, 28);
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into(), "/data/img".into()],
                ..Filter::default()
            },
            ..Plan::default()
        };
        let (summary, events) = run_fake(&mut fake, &plan);
        assert_eq!(
            events,
            [
                "pass 1",
                "retry /mnt/t/a",
                "done /data/img shut_down",
                "retry /mnt/t",
                "pass 2",
                "done /mnt/t/a shut_down",
                "done /mnt/t shut_down"
            ]
        );
        assert_eq!(summary.passes, 2);
        assert_eq!(fake.watchers.len(), 1, "one watcher across passes");
        assert!(fake
            .log
            .iter()
            .all(|l| !l.starts_with("ro") && !l.starts_with("force")));
    }

    /// A filesystem a step was given up on (its I/O does not complete) is
    /// reported once, and no later pass tries it again: each try would
    /// wait until the deadline once more. Before, the reserve pass
    /// remounted it again, and `--all --timeout 3s` took 9.1 s.
    #[test]
    fn a_mount_given_up_on_is_not_tried_again() {
        let mut fake = Fake::new(TABLE);
        fake.stalled.insert(30);
        // A busy mount keeps the passes going.
        fake.busy.insert(31, 0);
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into()],
                ..Filter::default()
            },
            ..Plan::default()
        };
        let (summary, events) = run_fake(&mut fake, &plan);
        let tries = fake.log.iter().filter(|l| *l == "wait 30").count();
        assert_eq!(tries, 1, "{:?} {events:?}", fake.log);
        assert_eq!(
            summary
                .entries
                .iter()
                .filter(|e| e
                    .result
                    .as_ref()
                    .is_err_and(|e| e.target == Path::new("/mnt/t")))
                .count(),
            1,
            "{events:?}"
        );
    }

    #[test]
    fn without_progress_a_last_pass_forces_and_remounts_read_only() {
        let mut fake = Fake::new(TABLE);
        fake.busy.insert(31, 0);
        fake.covered.insert(28);
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into(), "/data/img".into()],
                ..Filter::default()
            },
            force_last_pass: true,
            ..Plan::default()
        };
        let (summary, events) = run_fake(&mut fake, &plan);
        assert_eq!(summary.passes, 2);
        assert_eq!(
            events,
            [
                "pass 1",
                "retry /mnt/t/a",
                "retry /data/img",
                "retry /mnt/t",
                "pass 2 last",
                "done /mnt/t/a remounted_read_only",
                "done /mnt/t remounted_read_only",
                "done /data/img Covered"
            ]
        );
        assert_eq!(
            fake.log,
            [
                "wait 31", "wait 30", "wait 31", "force 31", "ro 31", "wait 30", "force 30",
                "ro 30"
            ]
        );
    }

    /// A deadline that has passed still leaves nothing read-write: the
    /// reserve pass takes every mount (a busy one made read-only), and the
    /// root is remounted read-only last.
    #[test]
    fn a_passed_deadline_leaves_nothing_read_write() {
        let mut fake = Fake::new(TABLE);
        fake.busy.insert(31, 0);
        let plan = Plan {
            timeout: Some(Duration::ZERO),
            ..Plan::default()
        };
        let (summary, events) = run_fake(&mut fake, &plan);
        assert_eq!(summary.stopped, Some(Stop::Deadline));
        assert_eq!(
            events,
            [
                "pass 1 last",
                "done /mnt/t/a remounted_read_only",
                "done /data/img shut_down",
                "done /mnt/home unmounted",
                "done /mnt/t remounted_read_only",
                "done /mnt/media unmounted",
                "done /data shut_down",
                "done / remounted_read_only"
            ]
        );
        assert_eq!(fake.log.last().map(String::as_str), Some("root-ro"));
    }

    /// `--fake --all` is the engine over a host that records: a mount
    /// with a mount on it that the run leaves is busy, retried, then made
    /// read-only in the last pass, as by the real run; what it leaves is
    /// never said to be unmounted.
    #[test]
    fn a_dry_run_plans_what_the_run_does() {
        let dry = DryRun::default();
        let mut host = Recording::over(
            Table::new(parse(TABLE).unwrap()),
            20,
            WaitPath::Fallback,
            &dry,
        );
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into()],
                exclude: vec!["/mnt/t/a".into()],
                ..Filter::default()
            },
            ..Plan::default()
        };
        let mut events = Vec::new();
        let summary = run(&plan, &mut host, &mut |e| {
            if let Event::Pass { number, last, .. } = e {
                events.push((number, last));
            }
        })
        .unwrap();
        assert_eq!(events, [(1, false), (2, true)]);
        assert_eq!(
            dry.take_lines(),
            ["would remount /mnt/t (none on 0:25, tmpfs) read-only: busy, /mnt/t/a is mounted on it"]
        );
        assert_eq!(summary.entries.len(), 1);

        // With /mnt/t/a selected too, both go, the deepest first.
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into()],
                ..Filter::default()
            },
            ..Plan::default()
        };
        let mut host = Recording::over(
            Table::new(parse(TABLE).unwrap()),
            20,
            WaitPath::Kernel,
            &dry,
        );
        run(&plan, &mut host, &mut |_| {}).unwrap();
        assert_eq!(
            dry.take_lines(),
            [
                "would unmount /mnt/t/a (none on 0:26, tmpfs) by the kernel path",
                "would unmount /mnt/t (none on 0:25, tmpfs) by the kernel path"
            ]
        );
    }

    /// Waits go on side by side: every mount is detached before any wait
    /// ends, and each is settled as its wait ends, in any order.
    #[test]
    fn waits_side_by_side_end_in_any_order() {
        let mut fake = Fake::new(TABLE);
        fake.pending.extend([31, 28, 30]);
        fake.ends.extend([30, 28, 31]);
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into(), "/data/img".into()],
                ..Filter::default()
            },
            ..Plan::default()
        };
        let (summary, events) = run_fake(&mut fake, &plan);
        assert_eq!(
            fake.log,
            ["wait 31", "wait 28", "wait 30", "end 30", "end 28", "end 31"]
        );
        assert_eq!(
            events,
            [
                "pass 1",
                "done /mnt/t shut_down",
                "done /data/img shut_down",
                "done /mnt/t/a shut_down"
            ]
        );
        assert_eq!((summary.passes, summary.stopped), (1, None));
    }

    /// At the reserve, the waits that go on are stopped (detached,
    /// shutdown not confirmed), and the last pass makes what stays busy
    /// read-only.
    #[test]
    fn at_the_deadline_the_waits_stop_and_the_reserve_pass_takes_the_rest() {
        let mut fake = Fake::new(TABLE);
        // /data/img's wait never ends; /mnt/t/a's does; /mnt/t is busy.
        fake.pending.extend([28, 31]);
        fake.ends.push_back(31);
        fake.busy.insert(30, 0);
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into(), "/data/img".into()],
                ..Filter::default()
            },
            timeout: Some(Duration::from_secs(60)),
            ..Plan::default()
        };
        let (summary, events) = run_fake(&mut fake, &plan);
        assert_eq!(
            events,
            [
                "pass 1",
                "retry /mnt/t",
                "done /mnt/t/a shut_down",
                "done /data/img detached_unconfirmed",
                "pass 2 last",
                "done /mnt/t remounted_read_only"
            ]
        );
        assert_eq!(
            fake.log,
            ["wait 31", "wait 28", "wait 30", "end 31", "stop 28", "wait 30", "ro 30"]
        );
        assert_eq!(summary.stopped, Some(Stop::Deadline));
    }

    /// A busy mount is tried again when the mount table changes while
    /// waits go on (what kept it busy may be gone), the waits going on.
    #[test]
    fn a_busy_mount_is_retried_when_the_table_changes_during_the_waits() {
        let mut fake = Fake::new(TABLE);
        fake.pending.insert(31);
        fake.ends.push_back(31);
        // /mnt/t is busy while /mnt/home, which the run leaves, is
        // mounted; someone else unmounts it during the wait.
        fake.busy.insert(30, 32);
        fake.table_change = Some(32);
        let plan = Plan {
            filter: Filter {
                include: vec!["/mnt/t".into()],
                ..Filter::default()
            },
            ..Plan::default()
        };
        let (summary, events) = run_fake(&mut fake, &plan);
        assert_eq!(
            events,
            [
                "pass 1",
                "retry /mnt/t",
                "pass 2",
                "done /mnt/t shut_down",
                "done /mnt/t/a shut_down"
            ]
        );
        assert_eq!(
            fake.log,
            ["wait 31", "wait 30", "change 32", "wait 30", "end 31"]
        );
        assert_eq!(summary.passes, 2);
    }

    #[test]
    fn the_reserve_is_a_tenth_of_the_deadline_at_least_a_second() {
        let s = Duration::from_secs;
        assert_eq!(reserve(s(30)), s(3));
        assert_eq!(reserve(s(5)), s(1));
        assert_eq!(
            reserve(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
        assert_eq!(reserve(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_cancelled_run_leaves_everything_untouched_and_says_so() {
        use std::io::Write;
        use std::os::fd::AsFd;
        let (mut stop, handle) = std::os::unix::net::UnixStream::pair().unwrap();
        stop.write_all(b"x").unwrap();
        let mut fake = Fake::new(TABLE);
        let plan = Plan {
            cancel: Cancel::on_readable(handle.as_fd()),
            ..Plan::default()
        };
        let (summary, _) = run_fake(&mut fake, &plan);
        assert_eq!(summary.stopped, Some(Stop::Cancelled));
        assert!(fake.log.is_empty(), "{:?}", fake.log);
        assert!(summary
            .entries
            .iter()
            .all(|e| matches!(&e.result, Err(e) if e.kind == ErrorKind::Interrupted && e.state == State::Untouched)));
    }
}
