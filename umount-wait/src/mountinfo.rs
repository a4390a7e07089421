//! `/proc/PID/mountinfo`: parsing (with the kernel's octal escapes), and
//! the table indexed ([`Table`]): a mount by id, the mounts of a
//! superblock, the submounts below a mount.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::sys;

/// A device number as mountinfo shows it (`major:minor`); for a superblock
/// this is `s_dev`, the identity shared by every mount of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevId {
    pub major: u32,
    pub minor: u32,
}

impl DevId {
    /// From a `dev_t` as `stat(2)` returns it.
    pub fn from_dev_t(dev: u64) -> Self {
        DevId {
            major: rustix::fs::major(dev),
            minor: rustix::fs::minor(dev),
        }
    }

    /// Anonymous superblocks (tmpfs, proc, overlay...) have major 0 and no
    /// block device behind them.
    pub fn is_anonymous(self) -> bool {
        self.major == 0
    }
}

impl fmt::Display for DevId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    pub parent_id: u64,
    pub dev: DevId,
    /// The path inside the filesystem that is the root of this mount.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: OsString,
    /// The mount's options, then the superblock's (`rw,relatime,rw,size=8k`),
    /// for umount(8)'s `-O`.
    pub options: String,
}

/// Filesystem types whose operations a daemon or a server answers, which
/// may never answer (a FUSE daemon stopped or hung, a server gone); every
/// `fuse` and `fuse.*` type too.
pub const SERVED_TYPES: &[&str] = &[
    "9p",
    "afs",
    "ceph",
    "cifs",
    "coda",
    "fuseblk",
    "gfs2",
    "glusterfs",
    "lustre",
    "nfs",
    "nfs4",
    "ocfs2",
    "orangefs",
    "smb3",
    "smbfs",
    "virtiofs",
];

/// Network filesystems: their last writes go to a server during the
/// superblock's shutdown (`sync_filesystem()` in `generic_shutdown_super()`,
/// or their `->kill_sb()`), and no block device claim follows to confirm
/// its end. FUSE and virtiofs are not here: their connection is aborted in
/// `->kill_sb()` before `IN_UNMOUNT` (umount-wait/README.md, "What the
/// fallback's "shut down" rests on"); gfs2 and ocfs2 have a device.
pub const NETWORK_TYPES: &[&str] = &[
    "9p", "afs", "ceph", "cifs", "coda", "lustre", "nfs", "nfs4", "orangefs", "smb3", "smbfs",
];

/// Filesystem types that keep data in memory: with the kernel's and the
/// init system's own ([`crate::select::API_TYPES`]), the types with no
/// device and no daemon, so that neither their unmount nor their read-only
/// remount waits for I/O.
pub const MEMORY_TYPES: &[&str] = &["ramfs", "tmpfs"];

impl Mount {
    /// Whether this is a network filesystem ([`NETWORK_TYPES`]).
    pub fn network(&self) -> bool {
        NETWORK_TYPES.contains(&self.fstype.as_str())
    }

    /// Whether this filesystem's unmount or read-only remount may sleep
    /// in the kernel for as long as something outside answers: a device
    /// (its I/O), a daemon or a server; every type but those
    /// [`Mount::in_memory`]. Such a step is made in a child process where
    /// a deadline bounds it.
    pub fn may_stall(&self) -> bool {
        !self.in_memory()
    }

    /// Whether this filesystem lives in memory alone ([`MEMORY_TYPES`] and
    /// the API types: proc, sysfs, ...): nothing of it is written anywhere,
    /// so nothing of it outlives a reboot, read-only or not.
    pub fn in_memory(&self) -> bool {
        let fstype = self.fstype.as_str();
        MEMORY_TYPES.contains(&fstype) || crate::select::API_TYPES.contains(&fstype)
    }

    /// Whether a daemon or a server answers for this filesystem
    /// ([`SERVED_TYPES`], FUSE): then even a lookup, a permission check
    /// or `umount2` may wait for an answer that does not come.
    pub fn may_not_answer(&self) -> bool {
        self.fstype == "fuse"
            || self.fstype.starts_with("fuse.")
            || SERVED_TYPES.contains(&self.fstype.as_str())
    }
}

/// Why a mountinfo line could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: String,
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad mountinfo line ({}): {:?}", self.reason, self.line)
    }
}

impl std::error::Error for ParseError {}

/// Undoes the kernel's `mangle()`: space, tab, newline and backslash appear
/// as `\040`, `\011`, `\012` and `\134`. Any `\ooo` is decoded; a backslash
/// not followed by three octal digits is kept as it is.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Parses one mountinfo line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Mount, ParseError> {
    let bad = |reason| ParseError {
        line: String::from_utf8_lossy(line).into_owned(),
        reason,
    };
    let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let separator = fields
        .iter()
        .position(|f| *f == b"-")
        .ok_or_else(|| bad("no '-' separator"))?;
    // After the separator: the type, the source and the superblock's options.
    if separator < 6 || fields.len() < separator + 4 {
        return Err(bad("too few fields"));
    }
    let number = |field: &[u8], what| -> Result<u64, ParseError> {
        std::str::from_utf8(field)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(what))
    };
    let id = number(fields[0], "mount id")?;
    let parent_id = number(fields[1], "parent id")?;
    let (major, minor) = {
        let text = std::str::from_utf8(fields[2]).map_err(|_| bad("major:minor"))?;
        let (major, minor) = text.split_once(':').ok_or_else(|| bad("major:minor"))?;
        (
            major.parse().map_err(|_| bad("major"))?,
            minor.parse().map_err(|_| bad("minor"))?,
        )
    };
    let path = |field: &[u8]| PathBuf::from(OsString::from_vec(unescape(field)));
    Ok(Mount {
        id,
        parent_id,
        dev: DevId { major, minor },
        root: path(fields[3]),
        mount_point: path(fields[4]),
        fstype: String::from_utf8_lossy(&unescape(fields[separator + 1])).into_owned(),
        source: OsString::from_vec(unescape(fields[separator + 2])),
        options: format!(
            "{},{}",
            String::from_utf8_lossy(&unescape(fields[5])),
            String::from_utf8_lossy(&unescape(fields[separator + 3]))
        ),
    })
}

/// Parses a whole mountinfo file.
pub fn parse(text: &[u8]) -> Result<Vec<Mount>, ParseError> {
    text.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(parse_line)
        .collect()
}

/// Reads `/proc/PID/mountinfo` (`pid` None: this process), indexed.
/// This process's, where `/proc` is not mounted (an initramfs, a chroot,
/// a container), is asked of the kernel instead ([`read_listed`]).
pub fn read(pid: Option<i32>) -> io::Result<Table> {
    let path = match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/mountinfo")),
        None => PathBuf::from("/proc/self/mountinfo"),
    };
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if pid.is_none() && e.kind() == io::ErrorKind::NotFound => {
            return read_listed().map_err(|errno| match errno {
                rustix::io::Errno::NOSYS => io::Error::new(
                    io::ErrorKind::NotFound,
                    "no /proc/self/mountinfo (/proc is not mounted), \
                     and no listmount(2) on this kernel (Linux 6.8) to ask instead",
                ),
                errno => io::Error::from(errno),
            });
        }
        Err(e) => return Err(e),
    };
    parse(&text)
        .map(Table::new)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `STATMOUNT_*` (linux/mount.h): what [`read_listed`] asks of each mount.
/// The first five are Linux 6.8's; a kernel that does not know one of the
/// others leaves it out of the answer's mask.
const STATMOUNT_SB_BASIC: u64 = 0x1;
const STATMOUNT_MNT_BASIC: u64 = 0x2;
const STATMOUNT_MNT_ROOT: u64 = 0x8;
const STATMOUNT_MNT_POINT: u64 = 0x10;
const STATMOUNT_FS_TYPE: u64 = 0x20;
const STATMOUNT_MNT_OPTS: u64 = 0x80;
const STATMOUNT_FS_SUBTYPE: u64 = 0x100;
const STATMOUNT_SB_SOURCE: u64 = 0x200;
const STATMOUNT_BASIC: u64 = STATMOUNT_SB_BASIC
    | STATMOUNT_MNT_BASIC
    | STATMOUNT_MNT_ROOT
    | STATMOUNT_MNT_POINT
    | STATMOUNT_FS_TYPE;

/// This process's mount table as `listmount(2)` and `statmount(2)` give
/// it (Linux 6.8), without `/proc`: the same mounts, in the same order,
/// with the same ids as `/proc/self/mountinfo` (the ids `statx(2)` gives
/// too). The source (`STATMOUNT_SB_SOURCE`) and the superblock's options
/// (`STATMOUNT_MNT_OPTS`), which came after 6.8, are left empty where the
/// kernel does not give them. ENOSYS before 6.8.
pub fn read_listed() -> Result<Table, rustix::io::Errno> {
    let mut mounts = Vec::new();
    let mut mask =
        STATMOUNT_BASIC | STATMOUNT_MNT_OPTS | STATMOUNT_FS_SUBTYPE | STATMOUNT_SB_SOURCE;
    for id in sys::list_mounts()? {
        let answer = match sys::stat_mount(id, mask) {
            // A kernel that refuses a flag it does not know.
            Err(rustix::io::Errno::INVAL) if mask != STATMOUNT_BASIC => {
                mask = STATMOUNT_BASIC;
                sys::stat_mount(id, mask)
            }
            answer => answer,
        };
        match answer {
            Ok(buf) => mounts.extend(from_statmount(&buf)),
            // Unmounted since it was listed.
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Table::new(mounts))
}

/// One mount from `struct statmount` (linux/mount.h) and its strings;
/// None for an answer too short or without the basic fields.
fn from_statmount(buf: &[u8]) -> Option<Mount> {
    /// `sizeof(struct statmount)`: the strings follow.
    const STRINGS: usize = 512;
    let u32_at = |at: usize| Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_ne_bytes(buf.get(at..at + 8)?.try_into().ok()?));
    let mask = u64_at(8)?;
    let string = |flag: u64, at: usize| -> Option<&[u8]> {
        if mask & flag == 0 {
            return None;
        }
        let rest = buf.get(STRINGS + u32_at(at)? as usize..)?;
        rest.split(|&b| b == 0).next()
    };
    if mask & STATMOUNT_BASIC != STATMOUNT_BASIC {
        return None;
    }
    let mut fstype = String::from_utf8_lossy(string(STATMOUNT_FS_TYPE, 36)?).into_owned();
    if let Some(sub) = string(STATMOUNT_FS_SUBTYPE, 120).filter(|s| !s.is_empty()) {
        fstype.push('.');
        fstype.push_str(&String::from_utf8_lossy(sub));
    }
    Some(Mount {
        id: u64::from(u32_at(56)?),
        parent_id: u64::from(u32_at(60)?),
        dev: DevId {
            major: u32_at(16)?,
            minor: u32_at(20)?,
        },
        root: PathBuf::from(OsStr::from_bytes(string(STATMOUNT_MNT_ROOT, 104)?)),
        mount_point: PathBuf::from(OsStr::from_bytes(string(STATMOUNT_MNT_POINT, 108)?)),
        fstype,
        source: OsStr::from_bytes(string(STATMOUNT_SB_SOURCE, 124).unwrap_or_default()).into(),
        options: statmount_options(u64_at(64)?, u32_at(32)?, string(STATMOUNT_MNT_OPTS, 4)),
    })
}

/// The options as mountinfo shows them (the mount's, then the
/// superblock's: `rw,nosuid,relatime,rw,size=8k`) from `statmount(2)`'s
/// `mnt_attr` (`MOUNT_ATTR_*`), `sb_flags` (`SB_RDONLY`) and `mnt_opts`.
fn statmount_options(attr: u64, sb_flags: u32, sb_opts: Option<&[u8]>) -> String {
    const RDONLY: u64 = 0x1;
    const NOSUID: u64 = 0x2;
    const NODEV: u64 = 0x4;
    const NOEXEC: u64 = 0x8;
    const ATIME: u64 = 0x70;
    const NOATIME: u64 = 0x10;
    const STRICTATIME: u64 = 0x20;
    const NODIRATIME: u64 = 0x80;
    let mut opts = vec![if attr & RDONLY != 0 { "ro" } else { "rw" }];
    for (bit, name) in [(NOSUID, "nosuid"), (NODEV, "nodev"), (NOEXEC, "noexec")] {
        if attr & bit != 0 {
            opts.push(name);
        }
    }
    match attr & ATIME {
        NOATIME => opts.push("noatime"),
        STRICTATIME => {}
        _ => opts.push("relatime"),
    }
    if attr & NODIRATIME != 0 {
        opts.push("nodiratime");
    }
    opts.push(if sb_flags & 0x1 != 0 { "ro" } else { "rw" });
    let mut text = opts.join(",");
    if let Some(more) = sb_opts.filter(|o| !o.is_empty()) {
        text.push(',');
        text.push_str(&String::from_utf8_lossy(more));
    }
    text
}

/// A mount table read once and indexed by mount id, by device and by
/// parent, so that each question about one mount costs what its answer
/// holds, not a search of the table: a pass over N mounts stays linear in
/// N. It reads as the slice of its mounts, in the table's order (the
/// order they were mounted in).
#[derive(Clone, Debug, Default)]
pub struct Table {
    mounts: Vec<Mount>,
    /// The first mount with each id (ids are unique in the kernel's table).
    by_id: HashMap<u64, usize>,
    /// The mounts of each device, in table order.
    by_dev: HashMap<DevId, Vec<usize>>,
    /// The mounts on each parent, in table order.
    children: HashMap<u64, Vec<usize>>,
}

impl Table {
    pub fn new(mounts: Vec<Mount>) -> Table {
        let mut table = Table {
            by_id: HashMap::with_capacity(mounts.len()),
            by_dev: HashMap::new(),
            children: HashMap::new(),
            mounts,
        };
        for (i, m) in table.mounts.iter().enumerate() {
            table.by_id.entry(m.id).or_insert(i);
            table.by_dev.entry(m.dev).or_default().push(i);
            table.children.entry(m.parent_id).or_default().push(i);
        }
        table
    }

    /// The mount with this id.
    pub fn by_id(&self, id: u64) -> Option<&Mount> {
        self.by_id.get(&id).map(|&i| &self.mounts[i])
    }

    /// The mounts of the superblock `dev`, in table order.
    pub fn of_dev(&self, dev: DevId) -> impl DoubleEndedIterator<Item = &Mount> + '_ {
        self.by_dev
            .get(&dev)
            .into_iter()
            .flatten()
            .map(|&i| &self.mounts[i])
    }

    /// Whether some mount of the table is of the superblock `dev`.
    pub fn has_dev(&self, dev: DevId) -> bool {
        self.by_dev.contains_key(&dev)
    }

    /// The mounts whose parent is `id` (not `id` itself), in table order.
    fn children(&self, id: u64) -> impl DoubleEndedIterator<Item = (usize, &Mount)> + '_ {
        self.children
            .get(&id)
            .into_iter()
            .flatten()
            .map(|&i| (i, &self.mounts[i]))
            .filter(move |(_, m)| m.id != id)
    }

    /// Whether a mount sits on `id`'s own mount point above it (mounted on
    /// its root, at the same path): the path then leads there, not to `id`.
    pub fn covered(&self, id: u64) -> bool {
        let Some(mount) = self.by_id(id) else {
            return false;
        };
        self.children(id)
            .any(|(_, c)| c.mount_point == mount.mount_point)
    }

    /// The first mount of the stack that `id` is part of: the mount under
    /// it for as long as it sits on that mount's own root, at the same
    /// path (`mount --bind m m`); `id`'s own mount when nothing is under it.
    pub fn bottom_of_stack(&self, id: u64) -> Option<&Mount> {
        let mut mount = self.by_id(id)?;
        // A loop in the parent chain cannot make this loop.
        let mut seen = HashSet::from([id]);
        while let Some(under) = self
            .by_id(mount.parent_id)
            .filter(|p| p.mount_point == mount.mount_point && seen.insert(p.id))
        {
            mount = under;
        }
        Some(mount)
    }

    /// The children of `id` in the order to unmount them, reversed (a
    /// stack to pop): first those stacked on its own mount point, the most
    /// recent first, since they hide every other; then the others in
    /// mount order.
    fn children_to_pop(&self, id: u64) -> Vec<&Mount> {
        let at = self.by_id(id).map(|m| &m.mount_point);
        let (stacked, others): (Vec<&Mount>, Vec<&Mount>) = self
            .children(id)
            .map(|(_, m)| m)
            .partition(|m| Some(&m.mount_point) == at);
        others.into_iter().rev().chain(stacked).collect()
    }

    /// All mounts below `id` (not `id` itself) in the order umount(8) -R
    /// takes them: each child in mount order (the table's), the mounts
    /// below it before it; a mount stacked on its parent's mount point,
    /// which hides the parent's other children, before them. Stopping at
    /// the first failure then leaves what umount(8) 2.38.1 leaves.
    pub fn submounts_children_first(&self, id: u64) -> Vec<&Mount> {
        // Depth first without recursion (a chain of mounts may be deep):
        // each frame is a mount and the children of it still to visit.
        let mut order = Vec::new();
        // A loop in the parent chain (impossible in a well-formed file)
        // cannot visit a mount twice.
        let mut seen = HashSet::from([id]);
        let mut stack: Vec<(Option<&Mount>, Vec<&Mount>)> = vec![(None, self.children_to_pop(id))];
        while let Some((mount, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(child) if seen.insert(child.id) => {
                    let below = self.children_to_pop(child.id);
                    stack.push((Some(child), below));
                }
                Some(_) => {}
                None => {
                    order.extend(mount.take());
                    stack.pop();
                }
            }
        }
        order
    }

    /// All mounts below `id` (not `id` itself), in the order to unmount
    /// them: deepest first, and among mounts of equal depth the most
    /// recent first.
    pub fn submounts_deepest_first(&self, id: u64) -> Vec<&Mount> {
        // Breadth first from `id`: each mount is reached once, at its
        // depth, even if a malformed table loops.
        let mut below: Vec<(usize, usize)> = Vec::new();
        let mut seen = HashSet::new();
        let mut level = vec![id];
        let mut depth = 0;
        while !level.is_empty() {
            depth += 1;
            let mut next = Vec::new();
            for parent in level {
                for (i, m) in self.children(parent) {
                    if m.id != id && seen.insert(i) {
                        below.push((depth, i));
                        next.push(m.id);
                    }
                }
            }
            level = next;
        }
        below.sort_by(|a, b| b.cmp(a));
        below.into_iter().map(|(_, i)| &self.mounts[i]).collect()
    }
}

impl From<Vec<Mount>> for Table {
    fn from(mounts: Vec<Mount>) -> Table {
        Table::new(mounts)
    }
}

impl std::ops::Deref for Table {
    type Target = [Mount];
    fn deref(&self) -> &[Mount] {
        &self.mounts
    }
}

impl IntoIterator for Table {
    type Item = Mount;
    type IntoIter = std::vec::IntoIter<Mount>;
    fn into_iter(self) -> Self::IntoIter {
        self.mounts.into_iter()
    }
}

/// The mount table as last read, with an open `/proc/self/mountinfo`
/// that tells whether it changed since ([`sys::mount_table_changed`]):
/// many targets in a row read the table once, and again only when an
/// answer depends on a change. Our own unmounts change it too, so it is
/// read again only for answers that a mount gone could make wrong (a
/// mount named, not "none").
pub struct Snapshot {
    table: Table,
    /// Polled for changes, with the id of the mount it is open on; None
    /// where it could not be opened or was let go of
    /// ([`Snapshot::let_go_of`]): then every table is taken as changed.
    changes: Option<(std::fs::File, u64)>,
    /// A poll has seen a change that no read has taken in yet.
    stale: bool,
}

impl Snapshot {
    /// The table now.
    pub fn read() -> io::Result<Snapshot> {
        let changes = std::fs::File::open("/proc/self/mountinfo")
            .ok()
            .and_then(|f| {
                let on = sys::stat_fd(f.as_fd()).ok()?.mount_id;
                Some((f, on))
            });
        let mut snapshot = Snapshot {
            table: Table::default(),
            changes,
            stale: true,
        };
        snapshot.reread()?;
        Ok(snapshot)
    }

    /// Before `mount` is unmounted: the open table must not keep it busy
    /// (`umount-wait /proc`). When it is open on that mount it is closed,
    /// and from then on every answer that depends on a change reads the
    /// table again.
    pub fn let_go_of(&mut self, mount: &Mount) {
        if self.changes.as_ref().is_some_and(|(_, id)| *id == mount.id) {
            self.changes = None;
        }
    }

    /// The table as last read.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Whether the table may have changed since it was read.
    pub fn changed(&mut self) -> bool {
        self.stale = self.stale
            || self
                .changes
                .as_ref()
                .is_none_or(|(f, _)| sys::mount_table_changed(f.as_fd()));
        self.stale
    }

    /// The table, read again first if it changed since.
    pub fn current(&mut self) -> io::Result<&Table> {
        if self.changed() {
            self.reread()?;
        }
        Ok(&self.table)
    }

    /// Reads the table again. A change seen before the read is in it; one
    /// during it is seen again at the next look, and costs a read more,
    /// never a change missed.
    fn reread(&mut self) -> io::Result<()> {
        if let Some((f, _)) = &self.changes {
            sys::mount_table_changed(f.as_fd());
        }
        self.table = read(None)?;
        self.stale = false;
        Ok(())
    }
}

/// Shows a path for a person: as it is when printable, otherwise quoted with
/// control characters and bytes that are not UTF-8 escaped (`\n`, `\xff`),
/// and the characters that would make it show as another name (bidi
/// overrides, zero-width characters: [`is_hidden`]) named by their code
/// point (`\u{202e}`), as rustc's lint against Trojan Source shows them.
/// Every path a message prints goes through it; two names never show the
/// same.
pub fn display(path: &Path) -> String {
    display_bytes(path.as_os_str())
}

/// [`display`] for any OS string (a mount source, for example).
pub fn display_bytes(text: &OsStr) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for chunk in text.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || is_hidden(c) || c == '\'' || c == '\\' {
                escaped = true;
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            escaped = true;
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    if escaped || out.contains(' ') {
        format!("'{out}'")
    } else {
        out
    }
}

/// Characters a terminal does not show as themselves: Unicode's format
/// characters (category Cf: the bidirectional embeddings, overrides and
/// isolates U+202A..U+202E and U+2066..U+2069, the marks U+200E, U+200F
/// and U+061C, the zero-width U+200B..U+200D, U+2060 and U+FEFF, the soft
/// hyphen, the tags U+E0020..U+E007F) and the line and paragraph
/// separators U+2028, U+2029. With them a name can read as another's.
pub(crate) fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs no privilege: where the kernel has listmount(2), the table it
    /// gives is `/proc/self/mountinfo`'s (the layout of `struct
    /// statmount` read right), options aside.
    #[test]
    fn the_listed_table_is_the_mountinfo_table() {
        let listed = match read_listed() {
            Err(rustix::io::Errno::NOSYS) => {
                eprintln!("SKIPPED: no listmount(2) on this kernel");
                return;
            }
            listed => listed.unwrap(),
        };
        let text = std::fs::read("/proc/self/mountinfo").unwrap();
        let shown = parse(&text).unwrap();
        let key = |m: &Mount| {
            (
                m.id,
                m.parent_id,
                m.dev,
                m.root.clone(),
                m.mount_point.clone(),
                m.fstype.clone(),
            )
        };
        let listed_keys: Vec<_> = listed.iter().map(key).collect();
        let shown_keys: Vec<_> = shown.iter().map(key).collect();
        assert_eq!(listed_keys, shown_keys);
        for (l, m) in listed.iter().zip(&shown) {
            assert!(l.source.is_empty() || l.source == m.source, "{l:?} {m:?}");
            let first = |o: &str| o.split(',').next().map(str::to_owned);
            assert_eq!(first(&l.options), first(&m.options), "{l:?} {m:?}");
        }
    }

    const SAMPLE: &[u8] = b"\
22 1 0:21 / /proc rw,nosuid - proc proc rw
25 22 0:22 / /proc/sys/fs/binfmt_misc rw shared:5 - autofs systemd-1 rw
30 1 7:0 / /mnt/with\\040space rw,relatime shared:9 master:2 - ext4 /dev/loop0 ro,errors=remount-ro
31 30 0:40 /sub /mnt/with\\040space/a\\012b rw - tmpfs tmp\\134fs rw
32 31 0:41 / /mnt/with\\040space/a\\012b/c rw - tmpfs none rw
33 30 0:42 / /mnt/with\\040space/d rw - tmpfs none rw
";

    #[test]
    fn parses_fields_and_escapes() {
        let mounts = parse(SAMPLE).unwrap();
        assert_eq!(mounts.len(), 6);
        let m = &mounts[2];
        assert_eq!(m.id, 30);
        assert_eq!(m.parent_id, 1);
        assert_eq!(m.dev, DevId { major: 7, minor: 0 });
        assert_eq!(m.mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m.fstype, "ext4");
        assert_eq!(m.source, OsString::from("/dev/loop0"));
        assert_eq!(m.options, "rw,relatime,ro,errors=remount-ro");
        let m = &mounts[3];
        assert_eq!(m.root, PathBuf::from("/sub"));
        assert_eq!(m.mount_point, PathBuf::from("/mnt/with space/a\nb"));
        assert_eq!(m.source, OsString::from("tmp\\fs"));
        // Optional fields (shared:, master:) do not shift the fields after '-'.
        assert_eq!(mounts[1].fstype, "autofs");
    }

    #[test]
    fn filesystems_served_by_a_daemon_or_a_server() {
        let mounts = parse(SAMPLE).unwrap();
        assert!(!mounts[2].may_not_answer(), "ext4");
        assert!(!mounts[3].may_not_answer(), "tmpfs");
        for fstype in ["fuse", "fuse.sshfs", "fuseblk", "nfs4", "cifs"] {
            let m = Mount {
                fstype: fstype.into(),
                ..mounts[2].clone()
            };
            assert!(m.may_not_answer(), "{fstype}");
        }
        let m = Mount {
            fstype: "fusectl".into(),
            ..mounts[2].clone()
        };
        assert!(!m.may_not_answer(), "fusectl");
    }

    #[test]
    fn unescape_edge_cases() {
        assert_eq!(unescape(b"a\\011b"), b"a\tb");
        assert_eq!(unescape(b"tail\\04"), b"tail\\04");
        assert_eq!(unescape(b"\\"), b"\\");
        assert_eq!(unescape(b"\\999"), b"\\999");
        assert_eq!(unescape(b"\\377"), vec![0xff]);
        assert_eq!(unescape(b"\\400"), b"\\400");
    }

    #[test]
    fn refuses_malformed_lines() {
        assert!(parse_line(b"").is_err());
        assert!(parse_line(b"1 2 3:4 / /x rw ext4 /dev/x rw").is_err());
        assert!(parse_line(b"x 2 3:4 / /x rw - ext4 /dev/x rw").is_err());
        assert!(parse_line(b"1 2 34 / /x rw - ext4 /dev/x rw").is_err());
        assert!(parse_line(b"1 2 3:4 / /x rw - ext4").is_err());
        // No superblock options: refused, not an index out of bounds.
        assert!(parse_line(b"1 2 3:4 / /x rw - ext4 /dev/x").is_err());
        assert!(parse(b"2 1 0:2  2  -  ").is_err());
    }

    /// `mount -t tmpfs x m; mount -t tmpfs x m/a; mount --bind m m`: the
    /// bind on top hides m/a, so it goes first; its stack's bottom is the
    /// first tmpfs.
    #[test]
    fn stacked_mounts_before_the_children_they_hide() {
        let mounts = Table::new(
            parse(
                b"89 1 0:43 / /m rw - tmpfs x rw\n\
                  90 89 0:44 / /m/a rw - tmpfs x rw\n\
                  91 89 0:43 / /m rw - tmpfs x rw\n\
                  92 91 0:45 / /m rw - tmpfs x rw\n",
            )
            .unwrap(),
        );
        assert_eq!(mounts.bottom_of_stack(92).map(|m| m.id), Some(89));
        assert_eq!(mounts.bottom_of_stack(90).map(|m| m.id), Some(90));
        let order: Vec<u64> = mounts
            .submounts_children_first(89)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(order, vec![92, 91, 90]);
        // What sits on a mount's own mount point covers it; a mount below
        // it elsewhere, or none, does not.
        assert!(mounts.covered(89));
        assert!(mounts.covered(91));
        assert!(!mounts.covered(92));
        assert!(!mounts.covered(90));
        assert!(!mounts.covered(7));
    }

    #[test]
    fn submounts_children_first_in_mount_order() {
        let mounts = Table::new(parse(SAMPLE).unwrap());
        let order: Vec<u64> = mounts
            .submounts_children_first(30)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(order, vec![32, 31, 33]);
        assert!(mounts.submounts_children_first(32).is_empty());
    }

    #[test]
    fn submounts_deepest_first_then_newest() {
        let mounts = Table::new(parse(SAMPLE).unwrap());
        let order: Vec<u64> = mounts
            .submounts_deepest_first(30)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(order, vec![32, 33, 31]);
        assert!(mounts.submounts_deepest_first(32).is_empty());
    }

    #[test]
    fn the_index_finds_mounts_by_id_and_by_superblock() {
        let mounts = Table::new(parse(SAMPLE).unwrap());
        assert_eq!(mounts.by_id(31).map(|m| m.id), Some(31));
        assert!(mounts.by_id(99).is_none());
        let tmpfs = DevId {
            major: 0,
            minor: 40,
        };
        let of: Vec<u64> = mounts.of_dev(tmpfs).map(|m| m.id).collect();
        assert_eq!(of, [31]);
        assert!(mounts.has_dev(tmpfs));
        assert!(!mounts.has_dev(DevId { major: 9, minor: 9 }));
        assert_eq!(mounts.len(), 6, "reads as the slice of its mounts");
    }

    /// 10 000 mounts on one another (a chain) and 10 000 side by side:
    /// every order takes each mount once. Walking the parent chain of
    /// each mount with a search of the table for each step made this
    /// cubic for the chain, and a search of the table for each mount's
    /// children quadratic side by side.
    #[test]
    fn ten_thousand_submounts_deep_and_wide() {
        const N: u64 = 10_000;
        let line =
            |id: u64, parent: u64| format!("{id} {parent} 0:{id} / /m/{id} rw - tmpfs none rw\n");
        let mut chain = String::new();
        let mut wide = String::new();
        for id in 2..N + 2 {
            chain.push_str(&line(id, id - 1));
            wide.push_str(&line(id, 1));
        }
        let chain = Table::new(parse(chain.as_bytes()).unwrap());
        let deepest: Vec<u64> = chain
            .submounts_deepest_first(1)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(deepest, (2..N + 2).rev().collect::<Vec<_>>());
        let children: Vec<u64> = chain
            .submounts_children_first(1)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(children, deepest);
        let wide = Table::new(parse(wide.as_bytes()).unwrap());
        assert_eq!(wide.submounts_deepest_first(1).len(), N as usize);
        let children: Vec<u64> = wide
            .submounts_children_first(1)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(children, (2..N + 2).collect::<Vec<_>>());
    }

    #[test]
    fn display_escapes_what_a_terminal_would_garble() {
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(display(Path::new("/mnt/x")), "/mnt/x");
        assert_eq!(display(Path::new("/mnt/a b")), "'/mnt/a b'");
        assert_eq!(display(Path::new("/mnt/a\nb")), "'/mnt/a\\nb'");
        let raw = Path::new(OsStr::from_bytes(b"/mnt/\xffz"));
        assert_eq!(display(raw), "'/mnt/\\xffz'");
    }

    /// A name that would show as another's (Trojan Source, CVE-2021-42574):
    /// bidirectional overrides and isolates, zero-width and other invisible
    /// format characters, line separators. Each is named by its code point.
    #[test]
    fn display_escapes_what_would_show_as_another_name() {
        assert_eq!(display(Path::new("/mnt/a\u{202e}b")), "'/mnt/a\\u{202e}b'");
        let hidden = [
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{feff}',
            '\u{61c}',
            '\u{ad}',
            '\u{2028}',
            '\u{2029}',
            '\u{2060}',
            '\u{e0041}',
            '\u{85}',
        ];
        for c in hidden {
            let shown = display(Path::new(&format!("/mnt/x{c}y")));
            assert_eq!(
                shown,
                format!("'/mnt/x\\u{{{:x}}}y'", c as u32),
                "U+{:04X}",
                c as u32
            );
        }
        // Letters of any script are printed as they are.
        assert_eq!(
            display(Path::new("/mnt/été/日本/Ωμέγα")),
            "/mnt/été/日本/Ωμέγα"
        );
        // Distinct names stay distinct, the escape's own text included.
        let names: [&[u8]; 5] = [
            "/mnt/a\u{202e}".as_bytes(),
            b"/mnt/a\\u{202e}",
            b"/mnt/a\xff",
            b"/mnt/a\\xff",
            b"/mnt/a\xfe",
        ];
        let shown: std::collections::HashSet<String> = names
            .iter()
            .map(|n| display(Path::new(OsStr::from_bytes(n))))
            .collect();
        assert_eq!(shown.len(), names.len(), "{shown:?}");
    }
}
