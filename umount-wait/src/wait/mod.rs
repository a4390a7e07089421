//! Unmounting one target and waiting until its filesystem is shut down:
//! which path to take, and the entry points. Each path has its own module
//! ([`kernel`], [`fallback`]); what `-r` does is in [`read_only`]; the
//! report a target ends with is built in [`report`].

mod call;
mod fallback;
mod kernel;
mod notify;
mod read_only;
mod recursive;
mod report;
mod side_by_side;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::blockers::Blocker;
use crate::cancel::Cancel;
use crate::helper::{Helper, Helpers};
use crate::mountinfo::{self, Mount, Snapshot, Table};
use crate::outcome::{Error, ErrorKind, Outcome, Report, WaitPath};
use crate::sys::{self, Probe, UnmountOptions};
use crate::target::Target;

pub use fallback::{Watcher, CLAIM_GRACE, DEVICE_CLOSE_GRACE};
pub use recursive::unmount_recursive;
pub use report::new_report;
pub use side_by_side::{detach, stop_all, wait_any, Detached, End, Pending};

/// Which path to use, from `--mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `UMOUNT_NOTIFY` where the kernel has it, else the kernel path where
    /// it has `UMOUNT_WAIT`, else the fallback.
    #[default]
    Auto,
    /// The kernel path, or fail (untouched) where the flag is missing.
    Kernel,
    /// The fallback path, whatever the kernel offers.
    Fallback,
    /// The kernel's `UMOUNT_NOTIFY`: one descriptor polled with the
    /// deadline, no child process; or fail (untouched) where it is missing.
    Notify,
}

impl Mode {
    /// The path for this mode on a kernel that probed as `probe`, and
    /// has `UMOUNT_NOTIFY` too if `notify`.
    pub fn choose(self, probe: Probe, notify: bool) -> Result<WaitPath, ErrorKind> {
        match (self, probe) {
            (Mode::Notify | Mode::Auto, Probe::Kernel) if notify => Ok(WaitPath::Notify),
            (Mode::Notify, _) => Err(ErrorKind::NoNotifySupport),
            (Mode::Fallback, _) => Ok(WaitPath::Fallback),
            (_, Probe::Kernel) => Ok(WaitPath::Kernel),
            (Mode::Kernel, _) => Err(ErrorKind::NoKernelSupport),
            (Mode::Auto, _) => Ok(WaitPath::Fallback),
        }
    }
}

/// How to unmount and wait.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// `-f` (`MNT_FORCE`) and `-l` (`MNT_DETACH`).
    pub force: bool,
    pub lazy: bool,
    /// `-r`: remount read-only when the unmount fails with EBUSY.
    pub read_only_on_failure: bool,
    /// `-r` and `--all`: when the wait ends unconfirmed (timeout,
    /// cancellation), make the filesystem read-only through a mount of it
    /// that a holder's mount namespace still has
    /// ([`read_only::elsewhere`]).
    pub read_only_if_unconfirmed: bool,
    /// `--all`: where read-only is refused (here or in a holder's
    /// namespace), the last resort: `FS_IOC_SHUTDOWN` with a log flush.
    pub shut_down_if_read_only_fails: bool,
    /// Another mount of the filesystem stays, there: it was not selected
    /// (a bind mount of it, or the mount it was bound from). Then a mount
    /// that is made read-only is made so alone, never its filesystem, and
    /// never shut down ([`read_only::remount_busy`]).
    pub this_mount_only: Option<&'a Path>,
    /// `--all`, for a filesystem's last mount in view: make the
    /// filesystem read-only through a checked handle before the unmount
    /// ([`read_only::before_unmount`]), so that a holder out of view (a
    /// covered mount in a namespace of its own, a thread the scan cannot
    /// reach) cannot keep it read-write past the run.
    pub read_only_first: bool,
    /// `--timeout`: bounds the whole operation on one target. One too long
    /// for the clock ends at the farthest instant it can count to
    /// ([`crate::duration::deadline`]).
    pub timeout: Option<Duration>,
    /// Look for blockers during the wait (every [`STATUS_INTERVAL`]).
    pub watch_blockers: bool,
    /// The caller's cancellation handle: the wait ends, "detached, shutdown
    /// not confirmed", when it becomes readable; a target not touched yet
    /// is left untouched.
    pub cancel: Cancel<'a>,
    /// This process's root and working directory ([`Caller::find`]), found
    /// once for many targets; None: looked up for each.
    pub caller: Option<Caller>,
    /// Unmount helpers: where one is installed for a mount's type
    /// (`/sbin/umount.TYPE`), it unmounts in place of `umount2(2)`, as
    /// umount(8) runs it unless `-i`; the wait follows on the fallback path
    /// (a helper cannot pass `UMOUNT_WAIT`). None: never (`-i`, `--all`).
    pub helpers: Option<Helpers<'a>>,
    /// Whether `/proc/self/fd` names handles, asked once for many targets
    /// and again after an unmount that can change it ([`sys::ProcFd`]);
    /// None: asked before each call that needs it.
    pub proc_fd: Option<&'a sys::ProcFd>,
    /// `--fake`: every decision taken as for a real run, every action
    /// recorded there instead of made ([`DryRun`]).
    pub dry_run: Option<&'a DryRun>,
    /// The path was asked for (`--mode kernel|notify|fallback`), not chosen
    /// (`--mode auto`): every target takes it, even where the notification
    /// path would otherwise give way to the kernel path ([`path_for`]).
    pub path_asked: bool,
}

/// A dry run (`--fake`): the plan, a line per action that a real run
/// would make, in its order, and the mounts it would have unmounted, so
/// that later decisions see the table as it would be. The paths check
/// [`Options::dry_run`] right before their system calls, as libmount's
/// `do_umount()` does under `mnt_context_is_fake()`.
#[derive(Debug, Default)]
pub struct DryRun {
    lines: std::cell::RefCell<Vec<String>>,
    gone: std::cell::RefCell<HashSet<u64>>,
}

impl DryRun {
    /// A step of the plan.
    pub fn record(&self, line: String) {
        self.lines.borrow_mut().push(line);
    }

    /// What follows the last step at once (`, then detach /dev/loop0`).
    pub fn then(&self, more: &str) {
        if let Some(last) = self.lines.borrow_mut().last_mut() {
            last.push_str(more);
        }
    }

    /// `mount` would be unmounted by now.
    pub fn unmounted(&self, mount: &Mount) {
        self.gone.borrow_mut().insert(mount.id);
    }

    /// The mounts that would be unmounted by now.
    pub fn gone(&self) -> HashSet<u64> {
        self.gone.borrow().clone()
    }

    /// The plan so far, taken.
    pub fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut self.lines.borrow_mut())
    }

    /// A mount as the plan names it: `/mnt (/dev/loop0 on 7:0, ext4)`.
    pub fn describe(m: &Mount) -> String {
        format!(
            "{} ({} on {}, {})",
            mountinfo::display(&m.mount_point),
            mountinfo::display_bytes(&m.source),
            m.dev,
            mountinfo::display_bytes(m.fstype.as_ref())
        )
    }
}

/// The mounts of this process's root and working directory, and their
/// filesystems: what the caller pins. Neither changes while the process
/// unmounts (it never changes its root or directory, and a mount keeps
/// its filesystem), so many targets ask once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The mount ids of the root and of the working directory.
    pub root: u64,
    pub cwd: u64,
    /// Their filesystems' devices in the mount table, where it lists them.
    devs: [Option<mountinfo::DevId>; 2],
}

impl Caller {
    /// This process's, with the devices from `mounts`.
    pub fn find(mounts: &Table) -> Result<Caller, rustix::io::Errno> {
        let (root, cwd) = sys::caller_mount_ids()?;
        let dev = |id| mounts.by_id(id).map(|m| m.dev);
        Ok(Caller {
            root,
            cwd,
            devs: [dev(root), dev(cwd)],
        })
    }

    /// Whether the root or the working directory is on `mount`'s
    /// filesystem: by mount id, or by the device of their mounts in the
    /// table (a btrfs subvolume's own `st_dev` must not hide its
    /// filesystem).
    pub fn pins(&self, mount: &Mount) -> bool {
        self.root == mount.id || self.cwd == mount.id || self.devs.contains(&Some(mount.dev))
    }
}

/// How often a lasting wait reports progress; the first report comes after
/// one interval.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Progress of a wait that lasts, sent to the observer.
#[derive(Debug)]
pub enum Progress<'a> {
    Waiting {
        target: &'a Path,
        elapsed: Duration,
        blockers: &'a [Blocker],
    },
}

/// Unmounts `target` and waits until its filesystem is shut down, bounded by
/// `options.timeout` and ended early by `options.cancel`.
///
/// `observer` is called from the calling thread on both paths (the kernel
/// path's `umount2` runs in a child process).
pub fn unmount(
    target: &Target,
    path: WaitPath,
    options: &Options<'_>,
    observer: &dyn Fn(Progress<'_>),
) -> Result<Report, Error> {
    unmount_with(target, path, options, observer, &mut Watcher::default())
}

/// [`unmount`], with the fallback path's watch in `watcher`'s instance: for
/// many targets in a row.
pub fn unmount_with(
    target: &Target,
    path: WaitPath,
    options: &Options<'_>,
    observer: &dyn Fn(Progress<'_>),
    watcher: &mut Watcher,
) -> Result<Report, Error> {
    let result = unmount_once(target, path, options, observer, watcher);
    forget_what_it_changed(options, &target.mount);
    result
}

/// What the run keeps knowing across targets (the unmount helpers found,
/// whether `/proc/self/fd` names handles) is forgotten where an unmount
/// of `mount`, made or tried, can have changed it. Every unmount of a run
/// goes through here: [`unmount_with`], [`unmount_shared`] and
/// [`side_by_side::detach`].
pub(super) fn forget_what_it_changed(options: &Options<'_>, mount: &Mount) {
    if let Some(found) = options.helpers.and_then(|h| h.found) {
        found.unmounted(&mount.mount_point);
    }
    if let Some(proc_fd) = options.proc_fd {
        proc_fd.unmounted(&mount.mount_point);
    }
}

/// [`unmount_with`] but for what it forgets.
fn unmount_once(
    target: &Target,
    path: WaitPath,
    options: &Options<'_>,
    observer: &dyn Fn(Progress<'_>),
    watcher: &mut Watcher,
) -> Result<Report, Error> {
    let attempt = Attempt::start(target, options, observer)?;
    let path = match attempt.helper {
        Some(_) => WaitPath::Fallback,
        None => path_for(target, path, options),
    };
    let mut report = new_report(target, path);
    report.thawed = attempt.thawed;
    if let Some(dry) = options.dry_run {
        let how = match &attempt.helper {
            Some(helper) => format!(
                "by its helper {}, then wait by the fallback path",
                mountinfo::display(&helper.program)
            ),
            None => format!("by the {} path", path.name()),
        };
        dry.record(format!(
            "would unmount {} {how}",
            DryRun::describe(&target.mount)
        ));
        dry.unmounted(&target.mount);
        report.outcome = Outcome::ShutDown;
        return Ok(report);
    }
    let report = match path {
        WaitPath::Kernel => kernel::unmount(&attempt, report),
        WaitPath::Notify => notify::unmount(&attempt, report),
        WaitPath::Fallback => fallback::unmount(&attempt, report, watcher),
    }?;
    Ok(settled(options, report))
}

/// The path `target` takes when the run's is `path`. The notification
/// path's `umount2(UMOUNT_NOTIFY)` is made in this process, and when it
/// drops the filesystem's last reference, the filesystem's shutdown, its
/// final sync included, runs before the call returns (the mount's cleanup
/// is task work of the caller): a disk that does not answer would hold
/// the process past its deadline, and a signal could not end it. So where
/// that can happen (a filesystem on a device, a daemon or a server,
/// [`Mount::may_stall`]) and the path was not asked for, the kernel path
/// takes it: the same unmount and wait made in a child process
/// (`UMOUNT_WAIT`), which a deadline or a cancellation ends. Whether or
/// not this run has either (the command always can be cancelled), so that
/// a dry run names the path the real run takes. Filesystems in memory
/// keep the notification path (no child: thousands of tmpfs in a row).
pub fn path_for(target: &Target, path: WaitPath, options: &Options<'_>) -> WaitPath {
    match path {
        WaitPath::Notify if !options.path_asked && target.mount.may_stall() => WaitPath::Kernel,
        path => path,
    }
}

/// The last step of a wait that ended: a filesystem detached but not
/// confirmed shut down is made read-only where it lives on, when
/// `options` ask for it ([`read_only::elsewhere`]).
fn settled(options: &Options<'_>, mut report: Report) -> Report {
    if options.read_only_if_unconfirmed && matches!(report.outcome, Outcome::DetachedUnconfirmed(_))
    {
        read_only::elsewhere(options, &mut report);
    }
    if report.outcome == Outcome::ShutDown {
        report.device_removed = crate::kmsg::gone(report.mount.dev, &report.device_names);
        report.kernel_errors = kernel_errors(&report);
    }
    report
}

/// What the kernel log said about the filesystem's block devices during
/// the run ([`crate::kmsg`], read where the caller started it).
fn kernel_errors(report: &Report) -> Vec<String> {
    let nodes = match report.device_nodes.is_empty() {
        // An anonymous device (tmpfs, FUSE): no block device to name.
        true if report.mount.dev.major == 0 => return Vec::new(),
        true => crate::device::nodes_for(&report.mount),
        false => report.device_nodes.clone(),
    };
    let mut names = crate::kmsg::device_names(&nodes);
    names.extend(report.device_names.iter().cloned());
    names.sort();
    names.dedup();
    crate::kmsg::errors_about(&names, report.device_removed)
}

/// Unmounts `target` and waits for its filesystem, unless that filesystem
/// stays mounted elsewhere in this mount namespace (a bind mount of it or
/// the mount it was bound from, the same device mounted twice, a bind of a
/// file that lives on `/`): its shutdown cannot come while that mount
/// stays, and waiting would never end. Then it is unmounted without a wait
/// ([`unmount_shared`]) and the outcome says where the filesystem stays. A
/// mount in another namespace is waited for: that one may go. So is a
/// mount below the target that a lazy unmount takes along (`MNT_DETACH`
/// detaches the whole tree).
///
/// `table` is the mount table as read before, for many targets in a row:
/// read again only when it changed and it named a mount where the
/// filesystem stays ([`still_mounted_here`]).
///
/// Never for this process's root: umount(2) would turn that into a
/// read-only remount; the paths refuse it as busy.
pub fn unmount_target(
    target: &Target,
    path: WaitPath,
    options: &Options<'_>,
    observer: &dyn Fn(Progress<'_>),
    watcher: &mut Watcher,
    table: &mut Snapshot,
) -> Result<Report, Error> {
    let stays = still_mounted_here(target, options, table);
    table.let_go_of(&target.mount);
    match stays {
        Some(at) => unmount_shared(target, path, &at, options),
        None => unmount_with(target, path, options, observer, watcher),
    }
}

/// Where `target`'s filesystem stays mounted in this mount namespace once
/// it is unmounted (`options.lazy`: with the mounts below it), unless
/// `target` is this process's root (or the mount table cannot be read).
///
/// Asked of the table as read before: where it names no mount, none
/// appears as mounts go (ours, or others'; one mounted since is a holder
/// that a wait names). A mount it names may be gone since: then the table
/// is read again, if it changed.
fn still_mounted_here(
    target: &Target,
    options: &Options<'_>,
    table: &mut Snapshot,
) -> Option<std::path::PathBuf> {
    let root = match options.caller {
        Some(caller) => caller.root,
        None => sys::caller_mount_ids().ok()?.0,
    };
    if root == target.mount.id {
        return None;
    }
    let stays = |mounts: &Table| {
        let mut going: HashSet<u64> = match options.lazy {
            true => mounts
                .submounts_deepest_first(target.mount.id)
                .iter()
                .map(|m| m.id)
                .collect(),
            false => HashSet::new(),
        };
        // In a dry run, those it would have unmounted by now.
        going.extend(options.dry_run.map(DryRun::gone).unwrap_or_default());
        stays_mounted_at(mounts, &target.mount, &going).map(|m| m.mount_point.clone())
    };
    stays(table.table())?;
    stays(table.current().ok()?)
}

/// Another mount of `mount`'s filesystem in `mounts` that stays once
/// `mount` is unmounted: not `mount` itself, and not one of `going` (the
/// mounts unmounted since `mounts` was read, or those that go with
/// `mount`). While it stays, the filesystem cannot shut down: `mount` is
/// unmounted without a wait. Single targets, `-R` and `--all` decide so.
pub fn stays_mounted_at<'a>(
    mounts: &'a Table,
    mount: &Mount,
    going: &HashSet<u64>,
) -> Option<&'a Mount> {
    mounts
        .of_dev(mount.dev)
        .find(|o| o.id != mount.id && !going.contains(&o.id))
}

/// Checks, right before `umount2(2)`, that the path still leads to the
/// root of the mount resolved (same mount id, same filesystem): `umount2`
/// takes a path, and a mount moved or replaced since would otherwise be
/// unmounted in its place. (An `O_PATH` descriptor cannot be unmounted
/// through: the descriptor itself keeps the mount busy.) The path is
/// looked up once, into a handle on its parent directory, through which
/// the unmount goes ([`sys::MountPoint`]).
fn still_there(target: &Target) -> Result<sys::MountPoint, Error> {
    let fail = |e| Error::from_errno(&target.given, "inspecting the target", e);
    let mount_point = sys::MountPoint::open(&target.path, target.follow).map_err(fail)?;
    still_leads_there(target, mount_point)
}

/// [`still_there`] through a mount point looked up before (its parent
/// directory's handle kept): the check again, without the lookup.
fn still_leads_there(
    target: &Target,
    mount_point: sys::MountPoint,
) -> Result<sys::MountPoint, Error> {
    let fail = |e| Error::from_errno(&target.given, "inspecting the target", e);
    match mount_point.stat() {
        Ok(st)
            if st.mount_id == target.mount.id
                && st.is_mount_root
                && crate::target::same_filesystem(st.dev, &target.mount) =>
        {
            Ok(mount_point)
        }
        Ok(_) => Err(Error::new(&target.given, ErrorKind::Moved, None)),
        Err(e) => Err(fail(e)),
    }
}

/// How long a wait without `--timeout` goes on while nothing that holds
/// the filesystem is visible from here (held in another pid namespace, by
/// the host of a container, by a mount namespace this process cannot
/// see, or inside the kernel): what cannot be seen cannot be waited out
/// for ever. The wait then ends "detached, not confirmed"
/// ([`Unconfirmed::HeldOutOfView`]); `--timeout` asks for longer.
pub const OUT_OF_VIEW_GRACE: Duration = Duration::from_secs(5);

/// Why a wait that saw no holder for [`OUT_OF_VIEW_GRACE`] ended: held
/// out of view, or, without `/proc`, held where nothing could be looked at.
fn out_of_view_reason() -> crate::outcome::Unconfirmed {
    match sys::proc_fd_usable() {
        true => crate::outcome::Unconfirmed::HeldOutOfView,
        false => crate::outcome::Unconfirmed::HeldWithoutProc,
    }
}

/// How long a scan for holders may look once the caller's deadline has
/// passed or it cancelled (a wait ended unconfirmed, and the report names
/// what holds the filesystem): a short grace, not the scan's own
/// [`crate::blockers::SCAN_LIMIT`]. Among 10 000 processes a whole scan
/// takes about a second; the mount namespaces, which a read-only remount
/// through a holder needs, come first and take a fraction of it.
pub const LATE_SCAN: Duration = Duration::from_secs(1);

/// One target on its way through the kernel or the fallback path.
struct Attempt<'a> {
    target: &'a Target,
    /// Since when the status ticks have seen no holder ([`OUT_OF_VIEW_GRACE`]).
    unseen_since: std::cell::Cell<Option<Instant>>,
    /// The `umount2(2)` flags without `UMOUNT_WAIT`.
    flags: UnmountOptions,
    options: &'a Options<'a>,
    observer: &'a dyn Fn(Progress<'_>),
    /// The unmount helper that unmounts in place of `umount2(2)`, if one runs.
    helper: Option<Helper>,
    /// The filesystem was frozen, and thawed by [`thaw_if_frozen`].
    thawed: bool,
}

/// Thaws `target`'s filesystem if it was frozen from userspace (`fsfreeze
/// -f`), through a handle checked to be the root of its mount: a frozen
/// filesystem holds an active reference to itself (Linux 6.x), so its
/// unmount only detaches it and it never shuts down, hidden and frozen.
/// Only where a device backs it (a daemon's filesystem is not asked); not
/// in a dry run. Whether it thawed one.
fn thaw_if_frozen(target: &Target, options: &Options<'_>) -> bool {
    if options.dry_run.is_some() || !target.mount.may_stall() || target.mount.may_not_answer() {
        return false;
    }
    // The root of that very mount (id, root, device), as a read-only
    // remount checks it.
    use std::os::fd::AsFd;
    read_only::checked_root(&target.path, &target.mount)
        .is_ok_and(|handle| sys::thaw(handle.as_fd()).is_ok())
}

/// The unmount helper for `target`'s type, when `options` run helpers and
/// one is installed.
fn helper_for(target: &Target, options: &Options<'_>) -> Option<Helper> {
    Helper::for_mount(&target.mount, options.helpers?)
}

impl<'a> Attempt<'a> {
    /// An attempt on `target`, unless the caller has cancelled already.
    fn start(
        target: &'a Target,
        options: &'a Options<'a>,
        observer: &'a dyn Fn(Progress<'_>),
    ) -> Result<Attempt<'a>, Error> {
        if options.cancel.is_cancelled() {
            return Err(Error::new(&target.given, ErrorKind::Interrupted, None));
        }
        Ok(Attempt {
            target,
            unseen_since: std::cell::Cell::new(None),
            flags: plain_flags(target, options),
            options,
            observer,
            helper: helper_for(target, options),
            thawed: thaw_if_frozen(target, options),
        })
    }

    /// A wait that lasts, at each status tick: who holds the filesystem
    /// now (when asked to look), told to the observer. Both paths use it.
    fn still_waiting(&self, report: &mut Report, start: Instant, until: Option<Instant>) {
        if self.options.watch_blockers {
            // A scan never delays the wait by more than a tick, nor past
            // its deadline (`until`).
            let tick = crate::blockers::deadline_in(Some(STATUS_INTERVAL));
            let deadline = until.map_or(tick, |until| until.min(tick));
            report.blockers = crate::blockers::find(&self.target.mount, None, deadline);
            let mut unseen = self.unseen_since.get();
            match report.blockers.is_empty() {
                true => unseen = unseen.or(Some(Instant::now())),
                false => unseen = None,
            }
            self.unseen_since.set(unseen);
        }
        (self.observer)(Progress::Waiting {
            target: &self.target.given,
            elapsed: start.elapsed(),
            blockers: &report.blockers,
        });
    }

    /// Whether the wait, without a `--timeout`, has seen no holder for
    /// [`OUT_OF_VIEW_GRACE`]: it is to end, not confirmed.
    fn held_out_of_view(&self) -> bool {
        self.options.timeout.is_none()
            && self
                .unseen_since
                .get()
                .is_some_and(|t| t.elapsed() >= OUT_OF_VIEW_GRACE)
    }
}

/// Unmounts a mount whose filesystem stays mounted at `still_mounted_at` (a
/// bind mount of it, another mount `--all` leaves alone): its superblock
/// cannot shut down now, so this is a plain `umount2(2)` with nothing to
/// wait for; the wait comes with the filesystem's last mount. A failure is
/// handled as by [`unmount`] (`-r`, blockers of a busy mount).
pub fn unmount_shared(
    target: &Target,
    path: WaitPath,
    still_mounted_at: &Path,
    options: &Options<'_>,
) -> Result<Report, Error> {
    let result = unmount_shared_once(target, path, still_mounted_at, options);
    forget_what_it_changed(options, &target.mount);
    result
}

/// [`unmount_shared`] but for what it forgets.
fn unmount_shared_once(
    target: &Target,
    path: WaitPath,
    still_mounted_at: &Path,
    options: &Options<'_>,
) -> Result<Report, Error> {
    if options.cancel.is_cancelled() {
        return Err(Error::new(&target.given, ErrorKind::Interrupted, None));
    }
    let mut report = new_report(target, path);
    let unmounted = Outcome::Unmounted {
        still_mounted_at: still_mounted_at.to_path_buf(),
    };
    if let Some(dry) = options.dry_run {
        let by = match helper_for(target, options) {
            Some(helper) => format!(" by its helper {}", mountinfo::display(&helper.program)),
            None => String::new(),
        };
        dry.record(format!(
            "would unmount {}{by} without a wait: its filesystem stays mounted at {}",
            DryRun::describe(&target.mount),
            mountinfo::display(still_mounted_at)
        ));
        dry.unmounted(&target.mount);
        report.outcome = unmounted;
        return Ok(report);
    }
    let mount_point = still_there(target)?;
    if let Some(helper) = helper_for(target, options) {
        drop(mount_point);
        return match call::unmount_by_helper(target, options, report, &helper, None) {
            std::ops::ControlFlow::Continue(report) => Ok(Report {
                outcome: unmounted,
                ..report
            }),
            std::ops::ControlFlow::Break(result) => result,
        };
    }
    let start = Instant::now();
    let result = mount_point.unmount(plain_flags(target, options), proc_fd_usable(options));
    report.umount_time = start.elapsed();
    match result {
        Ok(()) => {
            report.outcome = unmounted;
            Ok(report)
        }
        Err(errno) => {
            // Its filesystem is another mount's too: never the
            // superblock's to change.
            let options = Options {
                this_mount_only: Some(options.this_mount_only.unwrap_or(still_mounted_at)),
                ..*options
            };
            report::unmount_failed(target, &options, report, errno)
        }
    }
}

/// Remounts `target` read-only without unmounting it, as after a refused
/// unmount (with `options`' last resort): `--all` at its deadline, for a
/// mount the unmount did not reach in time. The outcome is
/// [`Outcome::RemountedReadOnly`] with `ETIMEDOUT`.
pub fn remount_read_only(
    target: &Target,
    path: WaitPath,
    options: &Options<'_>,
) -> Result<Report, Error> {
    let report = new_report(target, path);
    read_only::remount_busy(target, options, report, rustix::io::Errno::TIMEDOUT)
}

/// Makes `step` (one that may sleep in the kernel for as long as a device
/// or a daemon does not answer: a sync, `swapoff(2)`) in a child process,
/// waited for until `deadline` (None: no deadline) or the cancellation;
/// then killed, and given up if it sleeps on past SIGKILL
/// ([`crate::child::KILL_GRACE`]): ETIMEDOUT, the step perhaps still to
/// happen in the kernel. `step` runs in the child: raw system calls on
/// arguments prepared before, nothing else. Without a deadline and a
/// cancellation nothing would end the child early: the step is made in
/// this process.
pub(crate) fn step_in_child(
    deadline: Option<Instant>,
    cancel: Cancel<'_>,
    step: impl FnOnce() -> Result<(), rustix::io::Errno>,
) -> Result<(), rustix::io::Errno> {
    if deadline.is_none() && !cancel.may_cancel() {
        return step();
    }
    let deadline = deadline.unwrap_or_else(|| Instant::now() + FOREVER);
    let call = call::bounded(deadline, cancel, step)?;
    match call.ended? {
        crate::child::Ended::Returned(result) => result,
        crate::child::Ended::Killed(_) | crate::child::Ended::GivenUp => {
            Err(rustix::io::Errno::TIMEDOUT)
        }
    }
}

/// A deadline no run reaches: only the cancellation ends the wait.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Whether `/proc/self/fd` names handles now, as `options` know it.
pub(super) fn proc_fd_usable(options: &Options<'_>) -> bool {
    options
        .proc_fd
        .map_or_else(sys::proc_fd_usable, sys::ProcFd::usable)
}

fn plain_flags(target: &Target, options: &Options<'_>) -> UnmountOptions {
    UnmountOptions {
        force: options.force,
        lazy: options.lazy,
        no_follow: !target.follow,
        wait: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under `--mode auto`, a filesystem that can stall takes the kernel
    /// path's child; one in memory, or a path asked for, keep the
    /// notification path.
    #[test]
    fn the_notification_path_gives_way_where_its_call_could_stall() {
        let target = |fstype: &str| {
            let line = format!("30 1 7:0 / /data rw - {fstype} /dev/loop0 rw");
            Target::of_mount(&mountinfo::parse_line(line.as_bytes()).unwrap())
        };
        let bounded = Options {
            timeout: Some(Duration::from_secs(3)),
            ..Options::default()
        };
        let unbounded = Options::default();
        let asked = Options {
            path_asked: true,
            ..bounded
        };
        for fstype in ["ext4", "xfs", "fuse", "nfs4"] {
            let t = target(fstype);
            assert_eq!(
                path_for(&t, WaitPath::Notify, &bounded),
                WaitPath::Kernel,
                "{fstype}"
            );
            assert_eq!(
                path_for(&t, WaitPath::Notify, &unbounded),
                WaitPath::Kernel,
                "{fstype}, no deadline, no cancellation (a dry run)"
            );
            assert_eq!(
                path_for(&t, WaitPath::Notify, &asked),
                WaitPath::Notify,
                "{fstype}, --mode notify"
            );
            for path in [WaitPath::Kernel, WaitPath::Fallback] {
                assert_eq!(path_for(&t, path, &bounded), path, "{fstype}");
            }
        }
        for fstype in ["tmpfs", "ramfs", "proc"] {
            assert_eq!(
                path_for(&target(fstype), WaitPath::Notify, &bounded),
                WaitPath::Notify,
                "{fstype}"
            );
        }
    }

    #[test]
    fn a_lazy_unmount_takes_the_mounts_below_along() {
        let mounts = Table::new(
            mountinfo::parse(
                b"20 1 8:2 / / rw - ext4 /dev/sda2 rw
30 20 0:25 / /t rw - tmpfs none rw
31 30 0:25 /x /t/b rw - tmpfs none rw
32 20 0:25 /y /u rw - tmpfs none rw
",
            )
            .unwrap(),
        );
        let below: HashSet<u64> = [31].into();
        let stays =
            |going: &HashSet<u64>| stays_mounted_at(&mounts, &mounts[1], going).map(|m| m.id);
        assert_eq!(stays(&HashSet::new()), Some(31));
        assert_eq!(stays(&below), Some(32));
        assert_eq!(stays(&[31, 32].into()), None);
    }

    #[test]
    fn mode_chooses_path() {
        for notify in [false, true] {
            let choose = |mode: Mode, probe| mode.choose(probe, notify);
            assert_eq!(choose(Mode::Auto, Probe::Fallback), Ok(WaitPath::Fallback));
            assert_eq!(
                choose(Mode::Auto, Probe::Unexpected(None)),
                Ok(WaitPath::Fallback)
            );
            assert_eq!(
                choose(Mode::Fallback, Probe::Kernel),
                Ok(WaitPath::Fallback)
            );
            assert_eq!(choose(Mode::Kernel, Probe::Kernel), Ok(WaitPath::Kernel));
            assert_eq!(
                choose(Mode::Kernel, Probe::Fallback),
                Err(ErrorKind::NoKernelSupport)
            );
            assert_eq!(
                choose(Mode::Notify, Probe::Fallback),
                Err(ErrorKind::NoNotifySupport)
            );
        }
        // UMOUNT_NOTIFY where the kernel has it, by default too; the
        // child's UMOUNT_WAIT where it has only that.
        assert_eq!(
            Mode::Notify.choose(Probe::Kernel, true),
            Ok(WaitPath::Notify)
        );
        assert_eq!(Mode::Auto.choose(Probe::Kernel, true), Ok(WaitPath::Notify));
        assert_eq!(
            Mode::Auto.choose(Probe::Kernel, false),
            Ok(WaitPath::Kernel)
        );
        assert_eq!(
            Mode::Notify.choose(Probe::Kernel, false),
            Err(ErrorKind::NoNotifySupport)
        );
    }
}
