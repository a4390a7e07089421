//! What keeps a superblock alive: mounts of it in any mount namespace,
//! processes with open files, a working directory, a root or mappings on
//! it, swap files on it, and loop devices over files on it.
//!
//! One `/proc/PID/mountinfo` is read per mount namespace (namespaces are told
//! apart by the inode of `/proc/PID/ns/mnt`). A file is on the superblock
//! when `statx(2)` says so through `/proc/PID/fd/*`, `cwd` and `root` (magic
//! links to the open file itself: this works for detached mounts too),
//! `/proc/swaps` and `/sys/block/loop*/loop/backing_file`: by its device,
//! or by its mount, for filesystems whose files have a device of their own
//! (a btrfs subvolume's). `statx` is asked not to sync
//! (`AT_STATX_DONT_SYNC`), so that a file on a network or FUSE filesystem
//! that does not answer does not stop the scan. Mappings are read from
//! `/proc/PID/maps`, which gives the superblock's device. A loop device's
//! backing file is told by the device and inode the loop driver has open
//! ([`loopdev::backing_files`]), never by looking its path up.
//!
//! Every thread is looked at (`/proc/PID/task/TID`), not only the thread
//! group's leader: a leader that has exited (`pthread_exit()` in `main`)
//! has no files, working directory, mappings or mount namespace left to
//! show, while its other threads keep theirs. Threads that share them with
//! one already looked at (`kcmp(2)`) are skipped ([`distinct_tasks`]).
//!
//! A scan costs what it reads, once: sets, never a search of a list, for
//! what was seen, and one scan serves several superblocks ([`find_each`]:
//! `--all` ends many waits at its deadline). It ends at its deadline, and
//! then says that the list is incomplete ([`Blocker::Incomplete`]): a user
//! with many processes, many mappings or many mount namespaces must not
//! stretch a shutdown. Among 10 000 sleeping processes a whole scan takes
//! about a second on the 2-core host (bench/holder-scan).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::loopdev::{self, Told};
use crate::mountinfo::{self, DevId, Mount, Table};
use crate::sys;

/// Something that holds the filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// A mount of the same superblock, in the mount namespace `mnt_ns`
    /// (the inode of `/proc/PID/ns/mnt`), seen through process `pid`.
    Mount {
        mnt_ns: u64,
        pid: i32,
        /// Its id (`/proc/PID/mountinfo`; unique across namespaces).
        mount_id: u64,
        mount_point: PathBuf,
    },
    /// A process using a file there.
    Process {
        pid: i32,
        command: String,
        uses: Vec<Use>,
    },
    /// A swap file there (`/proc/swaps`).
    Swap { path: PathBuf },
    /// A loop device over a file there.
    Loop {
        device: PathBuf,
        backing_file: PathBuf,
    },
    /// Not a holder: the scan reached its deadline before it had looked
    /// everywhere, and there may be more than those listed.
    Incomplete,
}

/// How a process uses the filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Use {
    Fd(u32, PathBuf),
    Cwd,
    Root,
    /// A file mapped into its memory (its program, a library, an `mmap`)
    /// with no descriptor open for it.
    Mapped(PathBuf),
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Use::Fd(n, path) => write!(f, "fd {n} {}", mountinfo::display(path)),
            Use::Cwd => write!(f, "cwd"),
            Use::Root => write!(f, "root"),
            Use::Mapped(path) => write!(f, "mapped {}", mountinfo::display(path)),
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Mount {
                mnt_ns,
                pid,
                mount_point,
                ..
            } => write!(
                f,
                "mounted on {} in mount namespace {mnt_ns} (pid {pid})",
                mountinfo::display(mount_point)
            ),
            Blocker::Process { pid, command, uses } => {
                // Its name is its user's to choose (prctl(PR_SET_NAME)).
                let command = mountinfo::display_bytes(command.as_ref());
                write!(f, "pid {pid} ({command}):")?;
                for (i, u) in uses.iter().enumerate() {
                    write!(f, "{}{u}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Blocker::Swap { path } => write!(f, "swap file {}", mountinfo::display(path)),
            Blocker::Loop {
                device,
                backing_file,
            } => write!(
                f,
                "loop device {} over {}",
                mountinfo::display(device),
                mountinfo::display(backing_file)
            ),
            Blocker::Incomplete => write!(f, "maybe more: the scan stopped at its deadline"),
        }
    }
}

/// The mount to leave out of the list: the target itself, in this process's
/// namespace, when the unmount has not happened (a busy target).
#[derive(Clone, Copy, Debug)]
pub struct Exclude {
    pub mount_id: u64,
}

fn pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    pids.sort_unstable();
    pids
}

/// The threads of `pid` (`/proc/PID/task`), the leader first, that can
/// show something no thread before them does ([`distinct_tasks`]); the
/// leader alone when they cannot be listed.
fn tasks_of(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .filter(|&tid| tid != pid)
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    tids.insert(0, pid);
    distinct_tasks(tids)
}

/// Of the tasks `tids`, those that do not share their descriptor table,
/// their `fs_struct` (root and working directory) and their address
/// space with one kept before them (`kcmp(2)`): of most processes, the
/// leader alone. A kept task covers the mount namespace of those it
/// stands for too: a thread changes its namespace only with an
/// `fs_struct` of its own (`unshare(CLONE_NEWNS)` implies `CLONE_FS`,
/// `setns()` requires it). Where kcmp cannot tell (a task without one
/// of them, as an exited leader, or no kcmp), the task is kept.
fn distinct_tasks(tids: Vec<i32>) -> Vec<i32> {
    let mut kept: Vec<i32> = Vec::new();
    for tid in tids {
        let shares_all = |&other: &i32| {
            [sys::Shared::Files, sys::Shared::Fs, sys::Shared::Vm]
                .into_iter()
                .all(|what| sys::tasks_share(other, tid, what))
        };
        if !kept.iter().any(shares_all) {
            kept.push(tid);
        }
    }
    kept
}

/// Where the proc files of thread `tid` of process `pid` are.
fn task_dir(pid: i32, tid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/task/{tid}"))
}

fn namespace_of(pid: &str) -> Option<u64> {
    namespace_in(Path::new(&format!("/proc/{pid}")))
}

/// The mount namespace of the task whose proc directory is `dir`.
fn namespace_in(dir: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir.join("ns/mnt")).ok().map(|m| m.ino())
}

/// The superblock looked for: its device, and the ids of the mounts of
/// it that are known (the target's, those found in any namespace).
pub(crate) struct Superblock {
    dev: DevId,
    mount_ids: HashSet<u64>,
}

impl Superblock {
    /// `mount`'s superblock, with its mounts in `mounts`.
    pub(crate) fn in_table(mount: &Mount, mounts: &Table) -> Superblock {
        let mount_ids = mounts
            .of_dev(mount.dev)
            .map(|m| m.id)
            .chain([mount.id])
            .collect();
        Superblock {
            dev: mount.dev,
            mount_ids,
        }
    }

    /// Whether the file `path` leads to is on this superblock: the same
    /// device, or, for a file with an anonymous device of its own (a btrfs
    /// subvolume's, never the one mountinfo shows), one of its mounts.
    pub(crate) fn holds(&self, path: &Path) -> bool {
        match sys::stat_file(path) {
            Ok((dev, mount_id)) => self.holds_file(dev, Some(mount_id)),
            Err(_) => false,
        }
    }

    /// [`Superblock::holds`] for a loop device's backing file.
    pub(crate) fn holds_backing(&self, file: &loopdev::BackingFile) -> bool {
        self.holds_file(file.dev, file.mount_id)
    }

    fn holds_file(&self, dev: DevId, mount_id: Option<u64>) -> bool {
        dev == self.dev
            || (dev.is_anonymous() && mount_id.is_some_and(|id| self.mount_ids.contains(&id)))
    }
}

/// Lists what holds the superblock of `mount` (best effort: processes
/// that exit or that this process may not inspect are skipped), looking
/// until `deadline`: a scan that reaches it ends with
/// [`Blocker::Incomplete`].
pub fn find(mount: &Mount, exclude: Option<Exclude>, deadline: Instant) -> Vec<Blocker> {
    find_each(&[mount], exclude, deadline)
        .pop()
        .unwrap_or_default()
}

/// [`find`] for the superblocks of several mounts with one look through
/// `/proc`: what holds each, in the order of `mounts`. A scan costs what it
/// reads, once, whatever the number of superblocks it looks for: `--all`
/// ends many waits at its deadline, and a scan each would cost that many
/// times the time one takes among many processes.
///
/// The scan runs in a thread of its own, waited for until `deadline` and
/// [`SCAN_OVERRUN`] more: it looks at its deadline between reads, but one
/// read can sleep in the kernel without end. On 6.12 (not on 7.3, whose
/// maps reads take no such lock), reading a process's `/proc/PID/maps`
/// waits for its address space's lock, which a
/// page fault on a FUSE file whose daemon does not answer holds (reached
/// through `/proc/PID/mem`, or any access that cannot drop the lock and
/// retry), once a writer queues behind it: any user can stall their own
/// address space that way. A scan not back in time is left to end on its
/// own (its sleep is killable: it ends with the process at the latest),
/// the lists are [`Blocker::Incomplete`], and while it sleeps no other
/// scan starts: each call says "incomplete" at once. Where no thread can
/// be started, the scan runs in the caller's. The thread reads absolute
/// paths only, so a caller's working directory ([`sys::Cwd`]) is not its
/// concern.
pub fn find_each(
    mounts: &[&Mount],
    exclude: Option<Exclude>,
    deadline: Instant,
) -> Vec<Vec<Blocker>> {
    use std::sync::atomic::Ordering::AcqRel;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;
    const RUNNING: u8 = 0;
    const DONE: u8 = 1;
    const ABANDONED: u8 = 2;
    let incomplete = || vec![vec![Blocker::Incomplete]; mounts.len()];
    if SCANS_ASLEEP.load(Ordering::Acquire) > 0 {
        return incomplete();
    }
    let owned: Vec<Mount> = mounts.iter().map(|m| (*m).clone()).collect();
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let scan_state = Arc::clone(&state);
    let spawned = std::thread::Builder::new()
        .name("umw-scan".into())
        .spawn(move || {
            let mounts: Vec<&Mount> = owned.iter().collect();
            let found = scan_each(&mounts, exclude, deadline);
            if scan_state.compare_exchange(RUNNING, DONE, AcqRel, Ordering::Acquire)
                == Err(ABANDONED)
            {
                SCANS_ASLEEP.fetch_sub(1, AcqRel);
            }
            let _ = tx.send(found);
        });
    if spawned.is_err() {
        return scan_each(mounts, exclude, deadline);
    }
    let wait = deadline.saturating_duration_since(Instant::now()) + SCAN_OVERRUN;
    if let Ok(found) = rx.recv_timeout(wait) {
        return found;
    }
    // Counted before it is marked, so that its end (which counts it out
    // once it sees the mark) never comes first.
    SCANS_ASLEEP.fetch_add(1, AcqRel);
    match state.compare_exchange(RUNNING, ABANDONED, AcqRel, Ordering::Acquire) {
        Ok(_) => incomplete(),
        // Done in between: its lists are sent, or about to be.
        Err(_) => {
            SCANS_ASLEEP.fetch_sub(1, AcqRel);
            rx.recv().unwrap_or_else(|_| incomplete())
        }
    }
}

/// How long past its deadline a scan is waited for before it is left
/// asleep ([`find_each`]): more than any read of a process's files takes
/// on a loaded machine, little against a deadline.
pub const SCAN_OVERRUN: Duration = Duration::from_millis(250);

/// The scans left asleep in a read ([`find_each`]): while any is, no other
/// starts.
static SCANS_ASLEEP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// [`find_each`] in the caller's thread.
fn scan_each(mounts: &[&Mount], exclude: Option<Exclude>, deadline: Instant) -> Vec<Vec<Blocker>> {
    let mut scan = Scan::new(mounts, deadline);
    let processes = scan.processes_and_tasks();
    let mut found = scan.mounts(&processes, exclude);
    for (each, more) in found.iter_mut().zip(scan.processes(&processes)) {
        each.extend(more);
    }
    for (each, more) in found.iter_mut().zip(scan.swaps()) {
        each.extend(more);
    }
    for (each, more) in found.iter_mut().zip(scan.loops()) {
        each.extend(more);
    }
    if scan.stopped {
        found
            .iter_mut()
            .for_each(|each| each.push(Blocker::Incomplete));
    }
    found
}

/// The deadline of a scan for a caller whose own deadline is `timeout`
/// from now (None: it has none): no later than that, nor than
/// [`SCAN_LIMIT`] from now.
pub fn deadline_in(timeout: Option<Duration>) -> Instant {
    let budget = timeout.map_or(SCAN_LIMIT, |t| t.min(SCAN_LIMIT));
    let now = Instant::now();
    now.checked_add(budget).unwrap_or(now)
}

/// The longest a scan may take: its list is a report, never worth more of
/// a shutdown than this.
pub const SCAN_LIMIT: Duration = Duration::from_secs(5);

/// One scan for the holders of some superblocks, until its deadline.
struct Scan {
    /// How many superblocks are looked for.
    count: usize,
    /// The superblocks of each device, and of each mount id known (for
    /// files whose anonymous device is their own, a btrfs subvolume's):
    /// what a file's device and mount say is a lookup, not a search
    /// ([`Superblock::holds`] for one).
    by_dev: HashMap<DevId, Vec<usize>>,
    by_mount: HashMap<u64, Vec<usize>>,
    deadline: Instant,
    /// The deadline came before the scan had looked everywhere.
    stopped: bool,
}

impl Scan {
    fn new(mounts: &[&Mount], deadline: Instant) -> Scan {
        let mut scan = Scan {
            count: mounts.len(),
            by_dev: HashMap::new(),
            by_mount: HashMap::new(),
            deadline,
            stopped: false,
        };
        for (i, mount) in mounts.iter().enumerate() {
            scan.by_dev.entry(mount.dev).or_default().push(i);
            scan.add_mount(mount.id, i);
        }
        scan
    }

    /// The mount `id` is one of superblock `i`'s.
    fn add_mount(&mut self, id: u64, i: usize) {
        let of = self.by_mount.entry(id).or_default();
        if !of.contains(&i) {
            of.push(i);
        }
    }

    /// Whether the deadline has come (and the scan must stop).
    fn expired(&mut self) -> bool {
        self.stopped = self.stopped || Instant::now() >= self.deadline;
        self.stopped
    }

    /// One list per superblock.
    fn lists<T>(&self) -> Vec<Vec<T>> {
        (0..self.count).map(|_| Vec::new()).collect()
    }

    /// The superblocks that a file on `dev` (through the mount
    /// `mount_id`, if known) is on ([`Superblock::holds_file`]).
    fn holding(&self, dev: DevId, mount_id: Option<u64>) -> Vec<usize> {
        let mut on: Vec<usize> = self.by_dev.get(&dev).cloned().unwrap_or_default();
        if dev.is_anonymous() {
            let by_mount = mount_id.and_then(|id| self.by_mount.get(&id));
            for &i in by_mount.into_iter().flatten() {
                if !on.contains(&i) {
                    on.push(i);
                }
            }
        }
        on
    }

    /// The superblocks that the file `path` leads to is on.
    fn holding_path(&self, path: &Path) -> Vec<usize> {
        match sys::stat_file(path) {
            Ok((dev, mount_id)) => self.holding(dev, Some(mount_id)),
            Err(_) => Vec::new(),
        }
    }

    /// Every process, with the threads to look at ([`tasks_of`]).
    fn processes_and_tasks(&mut self) -> Vec<(i32, Vec<i32>)> {
        let mut processes = Vec::new();
        for pid in pids() {
            if self.expired() {
                break;
            }
            processes.push((pid, tasks_of(pid)));
        }
        processes
    }

    /// The mounts of the superblocks in every mount namespace, one
    /// `mountinfo` read per namespace (told apart by the inode of
    /// `ns/mnt`, of any thread: a thread may have a namespace of its own,
    /// and an exited leader has none). Their ids join their superblock's.
    fn mounts(
        &mut self,
        processes: &[(i32, Vec<i32>)],
        exclude: Option<Exclude>,
    ) -> Vec<Vec<Blocker>> {
        let fields: HashSet<String> = self.by_dev.keys().map(DevId::to_string).collect();
        let my_ns = namespace_of("self");
        let mut blockers = self.lists();
        let mut seen_ns = HashSet::new();
        for (pid, tids) in processes {
            if self.expired() {
                break;
            }
            for &tid in tids {
                let dir = task_dir(*pid, tid);
                let Some(ns) = namespace_in(&dir) else {
                    continue;
                };
                if seen_ns.contains(&ns) {
                    continue;
                }
                let Ok(text) = fs::read(dir.join("mountinfo")) else {
                    continue;
                };
                seen_ns.insert(ns);
                for m in mounts_on(&text, &fields) {
                    let of: Vec<usize> = self.by_dev.get(&m.dev).cloned().unwrap_or_default();
                    for i in of {
                        self.add_mount(m.id, i);
                        if Some(ns) == my_ns && exclude.is_some_and(|x| x.mount_id == m.id) {
                            continue;
                        }
                        blockers[i].push(Blocker::Mount {
                            mnt_ns: ns,
                            pid: *pid,
                            mount_id: m.id,
                            mount_point: m.mount_point.clone(),
                        });
                    }
                }
            }
        }
        blockers
    }

    /// The processes that use a file there, through any of their threads.
    fn processes(&mut self, processes: &[(i32, Vec<i32>)]) -> Vec<Vec<Blocker>> {
        let me = std::process::id() as i32;
        let mut blockers = self.lists();
        for (pid, tids) in processes.iter().filter(|(p, _)| *p != me) {
            if self.expired() {
                break;
            }
            let uses = self.uses_of(*pid, tids);
            if uses.iter().all(Vec::is_empty) {
                continue;
            }
            let command = fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end().to_string())
                .unwrap_or_default();
            for (i, uses) in uses.into_iter().enumerate() {
                if !uses.is_empty() {
                    blockers[i].push(Blocker::Process {
                        pid: *pid,
                        command: command.clone(),
                        uses,
                    });
                }
            }
        }
        blockers
    }

    /// What the threads `tids` of `pid` use on each superblock, each use
    /// once.
    fn uses_of(&mut self, pid: i32, tids: &[i32]) -> Vec<Vec<Use>> {
        let mut uses = self.lists();
        let mut seen = HashSet::new();
        for &tid in tids {
            if self.expired() {
                break;
            }
            for (i, u) in self.uses_of_task(&task_dir(pid, tid)) {
                if seen.insert((i, u.clone())) {
                    uses[i].push(u);
                }
            }
        }
        uses
    }

    /// What the task whose proc directory is `base` uses, and on which
    /// superblock.
    fn uses_of_task(&mut self, base: &Path) -> Vec<(usize, Use)> {
        let mut uses = Vec::new();
        for i in self.holding_path(&base.join("cwd")) {
            uses.push((i, Use::Cwd));
        }
        for i in self.holding_path(&base.join("root")) {
            uses.push((i, Use::Root));
        }
        let mut open = HashSet::new();
        if let Ok(fds) = fs::read_dir(base.join("fd")) {
            let mut numbered: Vec<(u32, PathBuf)> = fds
                .flatten()
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
                .collect();
            numbered.sort();
            for (n, link) in numbered {
                if Instant::now() >= self.deadline {
                    self.stopped = true;
                    return uses;
                }
                let on = self.holding_path(&link);
                if on.is_empty() {
                    continue;
                }
                let shown = fs::read_link(&link).unwrap_or_default();
                for i in on {
                    open.insert((i, shown.clone()));
                    uses.push((i, Use::Fd(n, shown.clone())));
                }
            }
        }
        if let Ok(maps) = fs::read(base.join("maps")) {
            for (dev, path) in mapped(&maps, |dev| self.by_dev.contains_key(&dev)) {
                for &i in self.by_dev.get(&dev).into_iter().flatten() {
                    if !open.contains(&(i, path.clone())) {
                        uses.push((i, Use::Mapped(path.clone())));
                    }
                }
            }
        }
        uses
    }

    /// The swap files there.
    fn swaps(&mut self) -> Vec<Vec<Blocker>> {
        let mut blockers = self.lists();
        if self.expired() {
            return blockers;
        }
        for path in swap_files() {
            for i in self.holding_path(&path) {
                blockers[i].push(Blocker::Swap { path: path.clone() });
            }
        }
        blockers
    }

    /// The loop devices over files there, told by the files the loop
    /// driver has open ([`loopdev::backing_files`], until the deadline);
    /// one not told in time makes the scan incomplete.
    fn loops(&mut self) -> Vec<Vec<Blocker>> {
        let mut blockers = self.lists();
        if self.expired() {
            return blockers;
        }
        let loops = loopdev::bound();
        let mounted: HashSet<DevId> = mountinfo::read(None)
            .unwrap_or_default()
            .iter()
            .map(|m| m.dev)
            .collect();
        let files = loopdev::backing_files(&loops, &mounted, self.deadline);
        for (lo, file) in loops.into_iter().zip(files) {
            match file {
                Told::File(file) => {
                    for i in self.holding(file.dev, file.mount_id) {
                        blockers[i].push(Blocker::Loop {
                            device: lo.node.clone(),
                            backing_file: lo.backing_file.clone(),
                        });
                    }
                }
                Told::Failed => {}
                Told::Late => self.stopped = true,
            }
        }
        blockers
    }
}

/// The mounts in a `mountinfo` text whose device field (`major:minor`) is
/// one of `devs`: only those lines are parsed, so that a namespace of
/// many mounts costs a split of each line, not a parse.
fn mounts_on<'a>(text: &'a [u8], devs: &'a HashSet<String>) -> impl Iterator<Item = Mount> + 'a {
    text.split(|b| *b == b'\n')
        .filter(move |line| {
            let field = line.split(|b| *b == b' ').nth(2).unwrap_or_default();
            std::str::from_utf8(field).is_ok_and(|f| devs.contains(f))
        })
        .filter_map(|line| mountinfo::parse_line(line).ok())
}

/// The files of `dev` that a `/proc/PID/maps` maps, each once, in order.
/// A line is `start-end perms offset MM:mm inode   path` (the device in
/// hex: the superblock's, even where `stat(2)` gives a file another).
pub fn mapped_files(maps: &[u8], dev: DevId) -> Vec<PathBuf> {
    mapped(maps, |d| d == dev)
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

/// [`mapped_files`] of every device that `wanted` picks, each file with
/// its device, each once, in order.
fn mapped(maps: &[u8], wanted: impl Fn(DevId) -> bool) -> Vec<(DevId, PathBuf)> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for line in maps.split(|b| *b == b'\n') {
        let mut fields = line.splitn(6, |b| *b == b' ');
        let Some(device) = fields.nth(3) else {
            continue;
        };
        let path = fields.nth(1).unwrap_or_default().trim_ascii_start();
        let dev = std::str::from_utf8(device)
            .ok()
            .and_then(|d| d.split_once(':'))
            .and_then(|(major, minor)| {
                Some(DevId {
                    major: u32::from_str_radix(major, 16).ok()?,
                    minor: u32::from_str_radix(minor, 16).ok()?,
                })
            });
        let Some(dev) = dev.filter(|&d| wanted(d)) else {
            continue;
        };
        if path.starts_with(b"/") {
            let path = PathBuf::from(OsString::from_vec(mountinfo::unescape(path)));
            if seen.insert((dev, path.clone())) {
                files.push((dev, path));
            }
        }
    }
    files
}

/// The swap files in use; swap partitions are block devices, on no
/// filesystem.
fn swap_files() -> Vec<PathBuf> {
    swaps()
        .into_iter()
        .filter_map(|(path, file)| file.then_some(path))
        .collect()
}

/// The swap areas in use (`/proc/swaps`, names escaped as in mountinfo),
/// each with whether it is a file (else a block device).
pub(crate) fn swaps() -> Vec<(PathBuf, bool)> {
    let Ok(text) = fs::read("/proc/swaps") else {
        return Vec::new();
    };
    text.split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let mut fields = line
                .split(|b| b.is_ascii_whitespace())
                .filter(|f| !f.is_empty());
            let (name, kind) = (fields.next()?, fields.next()?);
            let path = PathBuf::from(OsString::from_vec(mountinfo::unescape(name)));
            Some((path, kind == b"file"))
        })
        .collect()
}

/// Whether a swap file in use lives on `mount`'s filesystem: shut down
/// under it, its pages could no longer be read back.
pub(crate) fn swap_file_on(mount: &Mount) -> bool {
    let sb = Superblock::in_table(mount, &Table::default());
    swap_files().iter().any(|path| sb.holds(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_files_of_a_device_once_each() {
        let maps = b"\
55d0c0a00000-55d0c0a02000 r--p 00000000 07:02 12   /mnt/x/bin/prog
55d0c0a02000-55d0c0a06000 r-xp 00002000 07:02 12   /mnt/x/bin/prog
7f00a0000000-7f00a0100000 rw-s 00000000 07:02 13   /mnt/x/with\\040space (deleted)
7f00a0200000-7f00a0300000 r--p 00000000 fe:01 99   /usr/lib/libc.so.6
7f00a0400000-7f00a0500000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
";
        let dev = DevId { major: 7, minor: 2 };
        assert_eq!(
            mapped_files(maps, dev),
            [
                PathBuf::from("/mnt/x/bin/prog"),
                PathBuf::from("/mnt/x/with space (deleted)")
            ]
        );
        let anonymous = DevId { major: 0, minor: 0 };
        assert!(mapped_files(maps, anonymous).is_empty());
        let hex = DevId {
            major: 0xfe,
            minor: 1,
        };
        assert_eq!(
            mapped_files(maps, hex),
            [PathBuf::from("/usr/lib/libc.so.6")]
        );
    }

    /// 10 000 files mapped twice each (hard links of one file, say), among
    /// mappings of another device: each named once, in the order of the
    /// maps. A search of the list for each line made this quadratic.
    #[test]
    fn ten_thousand_mappings_each_once() {
        let mut maps = Vec::new();
        for round in 0..2 {
            for i in 0..10_000u64 {
                let start = (round * 10_000 + i) << 12;
                maps.extend_from_slice(
                    format!(
                        "{start:x}-{:x} r--s 00000000 07:02 12   /m/link{i}\n",
                        start + 0x1000
                    )
                    .as_bytes(),
                );
                maps.extend_from_slice(
                    b"7f0000000000-7f0000001000 r--p 00000000 fe:01 9   /usr/lib/x\n",
                );
            }
        }
        let files = mapped_files(&maps, DevId { major: 7, minor: 2 });
        assert_eq!(files.len(), 10_000);
        assert!(files
            .iter()
            .enumerate()
            .all(|(i, f)| f.as_os_str() == format!("/m/link{i}").as_str()));
    }

    #[test]
    fn mount_lines_of_one_device() {
        let text = b"\
22 1 0:21 / /proc rw - proc proc rw
30 22 7:2 / /m rw - ext4 /dev/loop2 rw
31 22 7:20 / /n rw - ext4 /dev/loop20 rw
32 30 7:2 /sub /m2 rw - ext4 /dev/loop2 rw
";
        let devs = HashSet::from(["7:2".to_string()]);
        let ids: Vec<u64> = mounts_on(text, &devs).map(|m| m.id).collect();
        assert_eq!(ids, [30, 32]);
    }

    #[test]
    fn display() {
        let b = Blocker::Process {
            pid: 12,
            command: "sleep".into(),
            uses: vec![Use::Cwd, Use::Fd(3, "/mnt/x/f".into())],
        };
        assert_eq!(b.to_string(), "pid 12 (sleep): cwd, fd 3 /mnt/x/f");
        let b = Blocker::Mount {
            mnt_ns: 4026532,
            pid: 7,
            mount_id: 40,
            mount_point: "/mnt/x".into(),
        };
        assert_eq!(
            b.to_string(),
            "mounted on /mnt/x in mount namespace 4026532 (pid 7)"
        );
        let b = Blocker::Process {
            pid: 12,
            command: "app".into(),
            uses: vec![Use::Mapped("/data/app.apk".into())],
        };
        assert_eq!(b.to_string(), "pid 12 (app): mapped /data/app.apk");
        let b = Blocker::Swap {
            path: "/data/swap".into(),
        };
        assert_eq!(b.to_string(), "swap file /data/swap");
        let b = Blocker::Loop {
            device: "/dev/loop3".into(),
            backing_file: "/data/img".into(),
        };
        assert_eq!(b.to_string(), "loop device /dev/loop3 over /data/img");
    }
}
