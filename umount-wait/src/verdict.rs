//! The shutdown's verdict, kept for the next boot: what `--all` left of
//! each filesystem (shut down, read-only, read-write and what held it),
//! written once at the end of the run where a reboot does not erase it,
//! and read back by `--last-shutdown`.
//!
//! Where: pstore's pmsg (`/dev/pmsg0`, `CONFIG_PSTORE_PMSG`), a buffer in
//! memory that the kernel keeps across a warm reboot (ramoops, in RAM
//! reserved on the kernel command line or by the firmware) and shows
//! after it as `/sys/fs/pstore/pmsg-ramoops-0`. Nothing is written to a
//! disk that is being shut down, and no filesystem must be mounted.
//!
//! The record is one line among other writers' bytes (Android's logd
//! writes binary records to pmsg too):
//!
//! ```text
//! UMW-VERDICT/1 <length> <crc32> <json>\n
//! ```
//!
//! `1` is the format's version, `<length>` the JSON's length in bytes
//! (decimal), `<crc32>` its CRC-32 (IEEE, 8 hex digits), then the JSON
//! object ([`Verdict`]). The length and the checksum tell a record that
//! a wrapped ring buffer cut, or that memory without ECC damaged, from a
//! good one; the prefix finds it among foreign bytes. This module never
//! prints: [`scan`] gives what it found, [`Verdict::lines`] the text.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

/// What begins a record, before the version.
pub const MAGIC: &[u8] = b"UMW-VERDICT/";

/// The version of the format this build writes and reads.
pub const VERSION: u32 = 1;

/// Where `--all` writes the verdict.
pub const PMSG_DEVICE: &str = "/dev/pmsg0";

/// Where `--last-shutdown` looks for it by default: pstore's files,
/// `pmsg-*`.
pub const PSTORE_DIR: &str = "/sys/fs/pstore";

/// The most of a file read: pstore's files are the size of their
/// buffer, tens of KiB.
const MOST_READ: u64 = 16 << 20;

/// The most holders kept for one filesystem.
const MOST_HOLDERS: usize = 5;

/// A name (a path, a mount source) as the `--json` output has it: the
/// string when it is UTF-8, else the array of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Name {
    Text(String),
    Bytes(Vec<u8>),
}

impl Name {
    pub fn of(name: impl AsRef<OsStr>) -> Name {
        let bytes = name.as_ref().as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(text) => Name::Text(text.to_owned()),
            Err(_) => Name::Bytes(bytes.to_vec()),
        }
    }

    /// As messages show names ([`crate::mountinfo::display_bytes`]).
    pub fn display(&self) -> String {
        match self {
            Name::Text(t) => show(t.as_bytes()),
            Name::Bytes(b) => show(b),
        }
    }
}

/// What a filesystem was left as, the word the next boot cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Left {
    /// Shut down: clean.
    ShutDown,
    /// This mount gone, its filesystem still mounted elsewhere (shut down
    /// with that mount, or not).
    Unmounted,
    /// Still mounted, read-only: clean.
    ReadOnly,
    /// Still mounted, shut down in place by `FS_IOC_SHUTDOWN`: clean.
    ShutDownByIoctl,
    /// Still mounted read-write (busy, read-only refused), or this mount
    /// made read-only while the filesystem stays writable elsewhere.
    ReadWrite,
    /// Detached, its shutdown not confirmed: it may still run, writable,
    /// in another mount namespace or with files open.
    Detached,
    /// Still mounted, state unknown (a step given up asleep in the kernel).
    Unknown,
}

impl Left {
    pub fn describe(self) -> &'static str {
        match self {
            Left::ShutDown => "shut down",
            Left::Unmounted => "unmounted, its filesystem still mounted elsewhere",
            Left::ReadOnly => "left read-only",
            Left::ShutDownByIoctl => "shut down in place by FS_IOC_SHUTDOWN",
            Left::ReadWrite => "left read-write",
            Left::Detached => "detached, shutdown not confirmed (it may have run on)",
            Left::Unknown => "left mounted, state unknown",
        }
    }

    /// Whether the next boot may find it unclean.
    pub fn clean(self) -> bool {
        matches!(
            self,
            Left::ShutDown | Left::Unmounted | Left::ReadOnly | Left::ShutDownByIoctl
        )
    }
}

/// What held a filesystem: the line the report printed for it, and the
/// process's id and name when it was one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: Option<i32>,
    pub command: Option<String>,
    pub what: String,
}

/// One filesystem of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Filesystem {
    pub mount_point: Name,
    pub source: Option<Name>,
    pub fstype: Option<String>,
    /// The `outcome` of `--json`.
    pub outcome: String,
    pub left: Left,
    /// Why it did not shut down, in the report's words; or `null`.
    pub reason: Option<String>,
    /// What held it when it did not shut down (at most 5).
    pub held_by: Vec<Holder>,
    /// Holders left out beyond those.
    pub more_holders: usize,
}

/// The verdict of one `--all` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub version: u32,
    /// `/proc/sys/kernel/random/boot_id` of the boot that wrote it.
    pub boot_id: Option<String>,
    /// When it was written, seconds since the epoch (UTC).
    pub time: Option<u64>,
    /// `uname -r` of the kernel that ran it.
    pub kernel: Option<String>,
    /// The run's exit code.
    pub exit: i32,
    /// `null`, `"deadline"` or the signal's name.
    pub stopped: Option<String>,
    pub passes: u32,
    pub elapsed_ms: f64,
    pub filesystems: Vec<Filesystem>,
    /// Filesystems that shut down, left out so that the record fits the
    /// buffer ([`Verdict::fit`]).
    pub omitted_shut_down: usize,
    /// Other filesystems left out for the same reason.
    pub omitted_other: usize,
}

impl Verdict {
    /// The record: one line, [`MAGIC`], the version, the JSON's length and
    /// checksum, the JSON, a newline.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("JSON of plain structs");
        let mut line = format!(
            "{}{VERSION} {} {:08x} ",
            String::from_utf8_lossy(MAGIC),
            json.len(),
            crc32(&json)
        )
        .into_bytes();
        line.extend_from_slice(&json);
        line.push(b'\n');
        line
    }

    /// The record at most `max` bytes long: the holders of each
    /// filesystem cut to 5 (the rest counted), then, if it is still too
    /// long, the filesystems that shut down left out (counted), then the
    /// others from the end (counted). A buffer too small for even that
    /// gets the counts alone. Each filesystem is measured once: the cost
    /// grows with their number, not with its square.
    pub fn fit(mut self, max: usize) -> Verdict {
        for fs in &mut self.filesystems {
            if fs.held_by.len() > MOST_HOLDERS {
                fs.more_holders += fs.held_by.len() - MOST_HOLDERS;
                fs.held_by.truncate(MOST_HOLDERS);
            }
        }
        if self.encode().len() <= max {
            return self;
        }
        let before = self.filesystems.len();
        self.filesystems.retain(|fs| fs.left != Left::ShutDown);
        self.omitted_shut_down += before - self.filesystems.len();
        // Each one's JSON and its comma; the rest of the record with room
        // for the counts' digits to grow.
        let mut sizes: Vec<usize> = self
            .filesystems
            .iter()
            .map(|fs| serde_json::to_vec(fs).map_or(0, |j| j.len()) + 1)
            .collect();
        let listed = std::mem::take(&mut self.filesystems);
        let bare = self.encode().len() + 2 * 20;
        self.filesystems = listed;
        let mut total = bare + sizes.iter().sum::<usize>();
        while total > max {
            let Some(size) = sizes.pop() else { break };
            total -= size;
            self.filesystems.pop();
            self.omitted_other += 1;
        }
        self
    }

    /// How many filesystems were left each way, in [`Left`]'s order,
    /// zeros left out (the omitted ones counted where they belong).
    pub fn counts(&self) -> Vec<(Left, usize)> {
        let all = [
            Left::ShutDown,
            Left::Unmounted,
            Left::ReadOnly,
            Left::ShutDownByIoctl,
            Left::ReadWrite,
            Left::Detached,
            Left::Unknown,
        ];
        all.iter()
            .map(|l| {
                let listed = self.filesystems.iter().filter(|f| f.left == *l).count();
                let omitted = if *l == Left::ShutDown {
                    self.omitted_shut_down
                } else {
                    0
                };
                (*l, listed + omitted)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The text `--last-shutdown` prints: a heading, a line per
    /// filesystem (those that did not shut down first), and its holders.
    pub fn lines(&self) -> Vec<String> {
        let total = self.filesystems.len() + self.omitted_shut_down + self.omitted_other;
        let mut head = String::from("the last shutdown");
        let mut about = Vec::new();
        if let Some(t) = self.time {
            about.push(utc(t));
        }
        if let Some(k) = &self.kernel {
            about.push(format!("kernel {}", show_text(k)));
        }
        if let Some(b) = &self.boot_id {
            about.push(format!("boot {}", show_text(b)));
        }
        if !about.is_empty() {
            head += &format!(" ({})", about.join(", "));
        }
        head += &format!(
            ": umount-wait --all, exit {}, {total} filesystem(s)",
            self.exit
        );
        for (left, n) in self.counts() {
            head += &format!(", {n} {}", left.describe().split(',').next().unwrap_or(""));
        }
        if self.omitted_other > 0 {
            head += &format!(", {} not recorded (no room)", self.omitted_other);
        }
        head += &format!("; {} pass(es), {:.1} ms", self.passes, self.elapsed_ms);
        match self.stopped.as_deref() {
            None => {}
            Some("deadline") => head += "; deadline reached",
            Some(other) => head += &format!("; stopped by {}", show_text(other)),
        }
        let mut out = vec![head];
        let mut order: Vec<&Filesystem> = self.filesystems.iter().collect();
        order.sort_by_key(|f| f.left.clean());
        for fs in order {
            out.push(fs.line());
            for h in &fs.held_by {
                out.push(format!("  held by: {}", show_text(&h.what)));
            }
            if fs.more_holders > 0 {
                out.push(format!("  held by: {} more", fs.more_holders));
            }
        }
        if self.omitted_shut_down > 0 {
            out.push(format!(
                "{} more filesystem(s) shut down (not listed: no room in the record)",
                self.omitted_shut_down
            ));
        }
        out
    }
}

impl Filesystem {
    /// `/mnt/x (ext4 on /dev/vdb): left read-write: held by pid 7 (sleep); target is busy`
    fn line(&self) -> String {
        let mut line = self.mount_point.display();
        match (&self.fstype, &self.source) {
            (Some(t), Some(s)) => line += &format!(" ({} on {})", show(t.as_bytes()), s.display()),
            (Some(t), None) => line += &format!(" ({})", show(t.as_bytes())),
            _ => {}
        }
        line += ": ";
        line += self.left.describe();
        if let Some(first) = self.held_by.first() {
            line += ": held by ";
            line += &match (first.pid, &first.command) {
                (Some(pid), Some(c)) => {
                    format!("pid {pid} ({})", show(c.as_bytes()))
                }
                _ => show_text(&first.what),
            };
        }
        if let Some(r) = &self.reason {
            line += "; ";
            line += &show_text(r);
        }
        line
    }
}

/// What a record in the bytes read was.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// An intact record of this version.
    Verdict(Box<Verdict>),
    /// A record of a version this build does not read.
    Newer(u32),
    /// A record whose length, checksum or JSON is wrong (cut by the
    /// ring buffer, damaged in memory).
    Damaged(&'static str),
}

/// Every record in `data`, in order: the bytes after each [`MAGIC`]
/// (anywhere, not only at the start of a line: another writer's record
/// may end without a newline). Never fails: what is not a record is
/// skipped, what looks like one and is not whole is [`Found::Damaged`].
pub fn scan(data: &[u8]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = find(&data[at..], MAGIC) {
        let start = at + i + MAGIC.len();
        let (record, next) = record(&data[start..]);
        found.push(record);
        // A damaged record consumed its magic alone: a record that begins
        // right after it is found.
        at = start + next;
    }
    found
}

/// One record after the magic: what it is, and how far it went (the
/// bytes consumed, so that the scan goes on after it; a damaged one
/// consumes only its header, so that a good record inside it is found).
fn record(rest: &[u8]) -> (Found, usize) {
    let mut fields = rest.splitn(4, |b| *b == b' ');
    let (Some(version), Some(length), Some(sum), Some(body)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return (Found::Damaged("its header is cut"), 0);
    };
    let Some(version) = number(version) else {
        return (Found::Damaged("its version is not a number"), 0);
    };
    if version != VERSION {
        return (Found::Newer(version), 0);
    }
    let header = rest.len() - body.len();
    let Some(length) = number(length).map(|n| n as usize) else {
        return (Found::Damaged("its length is not a number"), 0);
    };
    let Some(sum) = hex32(sum) else {
        return (Found::Damaged("its checksum is not 8 hex digits"), 0);
    };
    if body.len() < length + 1 {
        return (Found::Damaged("it is cut short"), 0);
    }
    let json = &body[..length];
    if body[length] != b'\n' {
        return (Found::Damaged("its length does not match"), 0);
    }
    if crc32(json) != sum {
        return (Found::Damaged("its checksum does not match"), 0);
    }
    match serde_json::from_slice::<Verdict>(json) {
        Ok(v) if v.version == VERSION => (Found::Verdict(Box::new(v)), header + length + 1),
        Ok(v) => (Found::Newer(v.version), header + length + 1),
        Err(_) => (Found::Damaged("its JSON is not a verdict"), 0),
    }
}

/// A decimal number of at most 9 digits.
fn number(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn hex32(text: &[u8]) -> Option<u32> {
    if text.len() != 8 || !text.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32()`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// What `--last-shutdown` found where it looked.
#[derive(Debug)]
pub enum Search {
    /// The latest intact verdict, and the file it was in.
    Found(Box<Verdict>, PathBuf),
    /// Records were there, none intact: the first file with one, and why.
    Damaged(PathBuf, String),
    /// No record: why, in words ("/sys/fs/pstore holds no pmsg file").
    Nothing(String),
}

/// Looks for the latest verdict at `path`: a file, or a directory whose
/// `pmsg-*` files are read (pstore's, or a copy of them). The latest is
/// the one written last (its `time`); among equals, the last one read.
/// Err: a file or directory that could not be read (not "absent").
pub fn search(path: &Path) -> std::io::Result<Search> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Search::Nothing(format!(
                "{} does not exist",
                crate::mountinfo::display(path)
            )))
        }
        Err(e) => return Err(e),
    };
    let files = if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().as_bytes().starts_with(b"pmsg-"))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        files.sort();
        if files.is_empty() {
            return Ok(Search::Nothing(empty_dir_reason(path)));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut best: Option<(Box<Verdict>, PathBuf)> = None;
    let mut damaged: Option<(PathBuf, String)> = None;
    for file in files {
        let data = read_at_most(&file)?;
        for found in scan(&data) {
            match found {
                Found::Verdict(v) => {
                    if best.as_ref().is_none_or(|(b, _)| v.time >= b.time) {
                        best = Some((v, file.clone()));
                    }
                }
                Found::Newer(version) => {
                    damaged.get_or_insert((
                        file.clone(),
                        format!(
                            "written in format {version}, which this umount-wait does not read"
                        ),
                    ));
                }
                Found::Damaged(why) => {
                    damaged.get_or_insert((file.clone(), why.to_string()));
                }
            }
        }
    }
    Ok(match (best, damaged) {
        (Some((v, file)), _) => Search::Found(v, file),
        (None, Some((file, why))) => Search::Damaged(file, why),
        (None, None) => Search::Nothing(format!(
            "{} holds no record of umount-wait --all",
            crate::mountinfo::display(path)
        )),
    })
}

/// Why a directory without `pmsg-*` files holds no verdict: pstore is
/// not mounted there, or the last boot wrote nothing to pmsg.
fn empty_dir_reason(dir: &Path) -> String {
    const PSTORE_MAGIC: i64 = 0x6165_676C;
    let shown = crate::mountinfo::display(dir);
    // f_type is i64 here, i32 or u32 on other targets.
    #[allow(clippy::unnecessary_cast)]
    match rustix::fs::statfs(dir) {
        Ok(fs) if fs.f_type as i64 != PSTORE_MAGIC && dir == Path::new(PSTORE_DIR) => format!(
            "pstore is not mounted at {shown} (mount -t pstore pstore {shown}), or this kernel \
             has no pstore"
        ),
        _ => format!(
            "{shown} holds no pmsg file: the last boot wrote nothing there, or this \
             kernel keeps no pmsg buffer (ramoops with pmsg_size)"
        ),
    }
}

fn read_at_most(file: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(file)?
        .take(MOST_READ)
        .read_to_end(&mut data)?;
    Ok(data)
}

/// Why the verdict was not written.
#[derive(Debug, PartialEq, Eq)]
pub enum NotWritten {
    /// No such device: this kernel keeps no pmsg (not an error).
    Absent,
    /// Something other than pstore's pmsg character device is there (a
    /// symbolic link, a file, another device): left alone.
    NotPmsg(&'static str),
    /// Opening or writing failed.
    Failed(Errno),
    /// The write took less than the record.
    Short(usize),
}

/// Writes the record `record` makes to the pmsg device at `device` in one
/// `write(2)`: opened without following a symbolic link, without
/// blocking, and checked to be a character device of pstore's pmsg major
/// (`/proc/devices`) before anything is written. The record is made only
/// then: where there is no pmsg (most machines), its JSON over thousands
/// of filesystems is not built for nothing.
pub fn write_pmsg(device: &Path, record: impl FnOnce() -> Vec<u8>) -> Result<(), NotWritten> {
    let flags =
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match rustix::fs::open(device, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Err(NotWritten::Absent),
        Err(Errno::LOOP) => return Err(NotWritten::NotPmsg("a symbolic link")),
        Err(e) => return Err(NotWritten::Failed(e)),
    };
    let stat = rustix::fs::fstat(fd.as_fd()).map_err(NotWritten::Failed)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::CharacterDevice {
        return Err(NotWritten::NotPmsg("not a character device"));
    }
    let major = rustix::fs::major(stat.st_rdev);
    match std::fs::read("/proc/devices") {
        Ok(devices) if pmsg_major(&devices) == Some(major) => {}
        Ok(_) => {
            return Err(NotWritten::NotPmsg(
                "not pstore's pmsg device (/proc/devices)",
            ))
        }
        Err(_) => {
            return Err(NotWritten::NotPmsg(
                "/proc/devices cannot be read to check it",
            ))
        }
    }
    let record = record();
    match rustix::io::write(fd.as_fd(), &record) {
        Ok(n) if n == record.len() => Ok(()),
        Ok(n) => Err(NotWritten::Short(n)),
        Err(e) => Err(NotWritten::Failed(e)),
    }
}

/// The major of the character device `pmsg` in `/proc/devices`.
pub fn pmsg_major(devices: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(devices);
    let chars = text.split("Block devices:").next()?;
    chars.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        let major = words.next()?.parse().ok()?;
        (words.next()? == "pmsg" && words.next().is_none()).then_some(major)
    })
}

/// The size of ramoops's pmsg buffer, where ramoops says it.
pub fn pmsg_size() -> Option<usize> {
    let text = std::fs::read_to_string("/sys/module/ramoops/parameters/pmsg_size").ok()?;
    text.trim().parse().ok().filter(|n| *n > 0)
}

/// Bytes as messages show names ([`crate::mountinfo::display_bytes`]):
/// the record is outside input, and its text may hold anything.
fn show(bytes: &[u8]) -> String {
    crate::mountinfo::display_bytes(OsStr::from_bytes(bytes))
}

/// A message read back (a reason, a holder's line): its names were shown
/// as messages show them when it was written; a record made by someone
/// else may hold anything, so control and invisible characters are
/// escaped, without quotes around the whole.
fn show_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || crate::mountinfo::is_hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `2026-12-05 08:10:00 UTC`, from seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Verdict {
        Verdict {
            version: VERSION,
            boot_id: Some("0b5e1c7e-0000-4000-8000-000000000001".into()),
            time: Some(1_764_921_600),
            kernel: Some("7.3.0-umw".into()),
            exit: 64,
            stopped: None,
            passes: 2,
            elapsed_ms: 123.4,
            filesystems: vec![
                Filesystem {
                    mount_point: Name::Text("/mnt/ok".into()),
                    source: Some(Name::Text("/dev/vdb".into())),
                    fstype: Some("ext4".into()),
                    outcome: "shut_down".into(),
                    left: Left::ShutDown,
                    reason: None,
                    held_by: vec![],
                    more_holders: 0,
                },
                Filesystem {
                    mount_point: Name::Bytes(b"/mnt/held\xff".to_vec()),
                    source: Some(Name::Text("tmpfs".into())),
                    fstype: Some("tmpfs".into()),
                    outcome: "untouched".into(),
                    left: Left::ReadWrite,
                    reason: Some("target is busy".into()),
                    held_by: vec![Holder {
                        pid: Some(42),
                        command: Some("sleep".into()),
                        what: "pid 42 (sleep): fd 3 /mnt/held/f".into(),
                    }],
                    more_holders: 0,
                },
            ],
            omitted_shut_down: 0,
            omitted_other: 0,
        }
    }

    #[test]
    fn a_record_is_found_among_foreign_bytes() {
        let v = sample();
        let mut data = b"\x00\x01logd\xffbinary".to_vec();
        data.extend(v.encode());
        data.extend(b"\x07more foreign bytes without a newline");
        assert_eq!(scan(&data), vec![Found::Verdict(Box::new(v))]);
    }

    #[test]
    fn a_damaged_record_is_said_so_and_a_good_one_after_it_found() {
        let v = sample();
        let mut bad = v.encode();
        let n = bad.len();
        bad[n - 10] ^= 1;
        assert_eq!(
            scan(&bad),
            vec![Found::Damaged("its checksum does not match")]
        );
        let cut = &v.encode()[..n - 20];
        assert_eq!(scan(cut), vec![Found::Damaged("it is cut short")]);
        let mut both = cut.to_vec();
        both.extend(v.encode());
        let found = scan(&both);
        assert_eq!(
            found.last(),
            Some(&Found::Verdict(Box::new(v))),
            "{found:?}"
        );
    }

    #[test]
    fn a_record_right_after_a_bare_magic_is_found() {
        let v = sample();
        let mut data = MAGIC.to_vec();
        data.extend(v.encode());
        assert_eq!(scan(&data).last(), Some(&Found::Verdict(Box::new(v))));
    }

    #[test]
    fn a_newer_format_is_not_read_as_this_one() {
        assert_eq!(
            scan(b"UMW-VERDICT/2 2 00000000 {}\n"),
            vec![Found::Newer(2)]
        );
        assert!(scan(b"UMW-VERDICT/")
            .iter()
            .all(|f| matches!(f, Found::Damaged(_))));
        assert!(scan(b"no record here").is_empty());
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn the_text_names_what_was_left_read_write_and_its_holder() {
        let lines = sample().lines();
        assert!(
            lines[0].contains("exit 64, 2 filesystem(s), 1 shut down, 1 left read-write"),
            "{lines:?}"
        );
        assert!(lines[0].contains("2025-12-05 08:00:00 UTC"), "{lines:?}");
        assert_eq!(
            lines[1],
            "'/mnt/held\\xff' (tmpfs on tmpfs): left read-write: held by pid 42 (sleep); target is busy"
        );
        assert_eq!(lines[2], "  held by: pid 42 (sleep): fd 3 /mnt/held/f");
        assert_eq!(lines[3], "/mnt/ok (ext4 on /dev/vdb): shut down");
    }

    #[test]
    fn fit_leaves_out_what_shut_down_first() {
        let mut v = sample();
        for i in 0..200 {
            let mut fs = v.filesystems[0].clone();
            fs.mount_point = Name::Text(format!("/mnt/ok{i}"));
            v.filesystems.push(fs);
        }
        let whole = v.encode().len();
        let fitted = v.clone().fit(whole);
        assert_eq!(fitted, v);
        let fitted = v.clone().fit(1024);
        assert!(fitted.encode().len() <= 1024);
        assert_eq!(fitted.omitted_shut_down, 201);
        assert_eq!(fitted.filesystems.len(), 1);
        assert_eq!(fitted.filesystems[0].left, Left::ReadWrite);
        let tiny = v.fit(10);
        assert!(tiny.filesystems.is_empty());
        assert_eq!((tiny.omitted_shut_down, tiny.omitted_other), (201, 1));
    }

    /// Filesystems left read-write, each with 7 holders, into pmsg's
    /// 64 KiB: what fits is kept, in order, the rest counted; 8 times as
    /// many cost about 8 times as much, not 64 (each measured once;
    /// before, the record was encoded again after each one left out:
    /// minutes for 8000).
    #[test]
    fn fit_costs_grow_with_the_filesystems_not_their_square() {
        let held = sample().filesystems[1].clone();
        let many = |n: usize| {
            let mut v = sample();
            v.filesystems = (0..n)
                .map(|i| {
                    let mut fs = held.clone();
                    fs.mount_point = Name::Text(format!("/mnt/held{i}"));
                    fs.held_by = vec![fs.held_by[0].clone(); 7];
                    fs
                })
                .collect();
            v
        };
        let timed = |v: Verdict| {
            let start = std::time::Instant::now();
            let fitted = v.fit(64 << 10);
            (fitted, start.elapsed())
        };
        let (_, small) = timed(many(1000));
        let (fitted, large) = timed(many(8000));
        let len = fitted.encode().len();
        assert!(len <= 64 << 10 && len > 60 << 10, "{len} bytes");
        assert_eq!(fitted.filesystems.len() + fitted.omitted_other, 8000);
        assert_eq!(fitted.filesystems[0].more_holders, 2);
        assert_eq!(
            fitted.filesystems[0].mount_point,
            Name::Text("/mnt/held0".into())
        );
        assert!(
            large < small * 24,
            "1000 filesystems {small:?}, 8000 {large:?}: not linear"
        );
    }

    #[test]
    fn pmsg_major_from_proc_devices() {
        let devices =
            b"Character devices:\n  1 mem\n248 pmsg\n249 hidraw\n\nBlock devices:\n248 pmsgx\n";
        assert_eq!(pmsg_major(devices), Some(248));
        assert_eq!(pmsg_major(b"Character devices:\n  1 mem\n"), None);
    }

    #[test]
    fn what_is_not_pmsg_is_not_written() {
        let dir = std::env::temp_dir().join(format!("umw-verdict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(
            write_pmsg(&dir.join("absent"), || unreachable!("nothing to write to")),
            Err(NotWritten::Absent)
        );
        assert_eq!(
            write_pmsg(&link, || unreachable!("nothing to write to")),
            Err(NotWritten::NotPmsg("a symbolic link"))
        );
        assert_eq!(
            write_pmsg(&file, || unreachable!("nothing to write to")),
            Err(NotWritten::NotPmsg("not a character device"))
        );
        assert_eq!(
            write_pmsg(Path::new("/dev/null"), || unreachable!(
                "nothing to write to"
            )),
            Err(NotWritten::NotPmsg(
                "not pstore's pmsg device (/proc/devices)"
            ))
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_764_921_600 + 3661), "2025-12-05 09:01:01 UTC");
    }
}
