//! `--json`: one object per target (or per filesystem of `--all`), and the
//! summary of `--all`, serialized by serde_json. The field names and their
//! order are the interface scripts read (README.md, "JSON").

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use serde::Serialize;
use umount_wait::blockers::{Blocker, Use};
use umount_wait::loopdev::{LoopDetach, LoopOutcome};
use umount_wait::outcome::{Error, Report, State, WaitPath};
use umount_wait::release::Released;
use umount_wait::shutdown::Entry;

/// A target's object, whether it was unmounted or failed.
#[derive(Serialize)]
pub struct Target<'a> {
    target: Name,
    mount_point: Option<Name>,
    source: Option<Name>,
    fstype: Option<&'a str>,
    device: Option<String>,
    device_node: Option<Name>,
    device_nodes: Vec<Name>,
    path: Option<&'static str>,
    outcome: &'static str,
    reason: Option<String>,
    umount_ms: Option<f64>,
    wait_ms: Option<f64>,
    total_ms: Option<f64>,
    claim_attempts: u32,
    blockers: Vec<Holder<'a>>,
    read_only_through: Option<Holder<'a>>,
    /// The kernel log's records that name the device and say "error"
    /// (every one about it, when it went away).
    kernel_errors: Vec<&'a str>,
    /// The block device went away during the run.
    device_removed: bool,
    /// Device-mapper devices of the filesystem still open when the wait
    /// ended.
    device_still_open: Vec<Name>,
    /// Frozen (`fsfreeze -f`), thawed before the unmount.
    thawed: bool,
    error: Option<String>,
    errno: Option<i32>,
}

/// `--all`: a filesystem's object, the target's fields and two more.
#[derive(Serialize)]
pub struct AllEntry<'a> {
    #[serde(flatten)]
    target: Target<'a>,
    pass: u32,
    loop_device: Option<LoopDevice>,
    released: Vec<Release>,
}

/// What was released before the unmount: `{"kind":"swap","path",
/// "outcome":"off"|"failed","errno"}` or `{"kind":"loop","device",
/// "backing_file","outcome","autoclear","errno","detach_ms"}`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Release {
    Swap {
        path: Name,
        outcome: &'static str,
        errno: Option<i32>,
    },
    Loop(LoopDevice),
}

#[derive(Serialize)]
struct LoopDevice {
    device: Name,
    backing_file: Name,
    outcome: &'static str,
    autoclear: bool,
    errno: Option<i32>,
    detach_ms: f64,
}

/// A blocker: `{"kind":"mount",...}`, `{"kind":"process",...}`,
/// `{"kind":"swap","path":...}`, `{"kind":"loop","device":...,"backing_file":...}`,
/// or, last, `{"kind":"incomplete"}`: the scan stopped at its deadline.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Holder<'a> {
    Mount {
        mnt_ns: u64,
        pid: i32,
        mount_point: Name,
    },
    Process {
        pid: i32,
        command: &'a str,
        uses: Vec<Using>,
    },
    Swap {
        path: Name,
    },
    Loop {
        device: Name,
        backing_file: Name,
    },
    Incomplete,
}

/// `"cwd"`, `"root"`, `{"fd":N,"path":"..."}` or `{"mapped":"..."}`.
#[derive(Serialize)]
#[serde(untagged)]
enum Using {
    Named(&'static str),
    Fd { fd: u32, path: Name },
    Mapped { mapped: Name },
}

/// `{"summary":{...}}`, the last line of `--all --json`.
#[derive(Serialize)]
pub struct SummaryLine {
    pub summary: Summary,
}

#[derive(Serialize)]
pub struct Summary {
    pub filesystems: usize,
    pub shut_down: usize,
    pub unmounted: usize,
    pub remounted_read_only: usize,
    pub shut_down_by_ioctl: usize,
    pub detached_unconfirmed: usize,
    pub untouched: usize,
    pub loop_devices_detached: usize,
    pub loop_devices_not_detached: usize,
    pub passes: u32,
    pub elapsed_ms: f64,
    /// `null`, `"deadline"`, or the signal's name (`"SIGINT"`).
    pub stopped: Option<String>,
    pub exit: i32,
}

/// One line of JSON. Serializing these types cannot fail (string keys,
/// no maps of other keys, finite numbers).
pub fn line(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("JSON of plain structs")
}

/// A name (a path, a mount source) as JSON: the string when it is UTF-8,
/// else the array of its bytes, as `journalctl -o json` gives a field that
/// is not UTF-8. Never lossy: two names that differ only in bytes that are
/// not UTF-8 (which U+FFFD would make one) stay two.
#[derive(Serialize)]
#[serde(untagged)]
enum Name {
    Text(String),
    Bytes(Vec<u8>),
}

fn name(name: impl AsRef<OsStr>) -> Name {
    let bytes = name.as_ref().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) => Name::Text(text.to_owned()),
        Err(_) => Name::Bytes(bytes.to_vec()),
    }
}

/// Milliseconds, to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn holder(blocker: &Blocker) -> Holder<'_> {
    match blocker {
        Blocker::Mount {
            mnt_ns,
            pid,
            mount_point,
            ..
        } => Holder::Mount {
            mnt_ns: *mnt_ns,
            pid: *pid,
            mount_point: name(mount_point),
        },
        Blocker::Process { pid, command, uses } => Holder::Process {
            pid: *pid,
            command,
            uses: uses
                .iter()
                .map(|u| match u {
                    Use::Fd(fd, path) => Using::Fd {
                        fd: *fd,
                        path: name(path),
                    },
                    Use::Cwd => Using::Named("cwd"),
                    Use::Root => Using::Named("root"),
                    Use::Mapped(path) => Using::Mapped { mapped: name(path) },
                })
                .collect(),
        },
        Blocker::Swap { path } => Holder::Swap { path: name(path) },
        Blocker::Loop {
            device,
            backing_file,
        } => Holder::Loop {
            device: name(device),
            backing_file: name(backing_file),
        },
        Blocker::Incomplete => Holder::Incomplete,
    }
}

fn holders(blockers: &[Blocker]) -> Vec<Holder<'_>> {
    blockers.iter().map(holder).collect()
}

/// The object of a target that was unmounted (or remounted read-only);
/// `reason` is why it was not confirmed, in the words of the text output.
pub fn report<'a>(r: &'a Report, reason: Option<String>) -> Target<'a> {
    Target {
        target: name(&r.target),
        mount_point: Some(name(&r.mount.mount_point)),
        source: Some(name(&r.mount.source)),
        fstype: Some(&r.mount.fstype),
        device: Some(r.mount.dev.to_string()),
        device_node: r.device_nodes.first().map(name),
        device_nodes: r.device_nodes.iter().map(name).collect(),
        path: Some(r.path.name()),
        outcome: r.outcome.name(),
        reason,
        umount_ms: Some(ms(r.umount_time)),
        wait_ms: Some(ms(r.wait_time)),
        total_ms: Some(ms(r.umount_time + r.wait_time)),
        claim_attempts: r.claim_attempts,
        blockers: holders(&r.blockers),
        read_only_through: r.read_only_through.as_ref().map(holder),
        kernel_errors: r.kernel_errors.iter().map(String::as_str).collect(),
        device_removed: r.device_removed,
        device_still_open: r.device_still_open.iter().map(name).collect(),
        thawed: r.thawed,
        error: None,
        errno: None,
    }
}

/// The object of a target that failed: no mount fields, no times.
pub fn error(e: &Error, path: Option<WaitPath>) -> Target<'_> {
    Target {
        target: name(&e.target),
        mount_point: None,
        source: None,
        fstype: None,
        device: None,
        device_node: None,
        device_nodes: vec![],
        path: path.map(WaitPath::name),
        outcome: state_name(e.state),
        reason: None,
        umount_ms: None,
        wait_ms: None,
        total_ms: None,
        claim_attempts: 0,
        blockers: holders(&e.blockers),
        read_only_through: None,
        kernel_errors: Vec::new(),
        device_removed: false,
        device_still_open: Vec::new(),
        thawed: false,
        error: Some(e.to_string()),
        errno: e.errno.map(|errno| errno.raw_os_error()),
    }
}

/// `--all`: one filesystem, given its target object.
pub fn entry<'a>(entry: &'a Entry, target: Target<'a>) -> AllEntry<'a> {
    AllEntry {
        target,
        pass: entry.pass,
        loop_device: entry.loop_detach.as_ref().map(loop_device),
        released: entry
            .released
            .iter()
            .map(|r| match r {
                Released::Swap { path, outcome } => Release::Swap {
                    path: name(path),
                    outcome: if outcome.is_ok() { "off" } else { "failed" },
                    errno: outcome.err().map(|e| e.raw_os_error()),
                },
                Released::Loop(d) => Release::Loop(loop_device(d)),
            })
            .collect(),
    }
}

fn loop_device(d: &LoopDetach) -> LoopDevice {
    LoopDevice {
        device: name(&d.device.node),
        backing_file: name(&d.device.backing_file),
        outcome: d.outcome.name(),
        autoclear: matches!(d.outcome, LoopOutcome::Detached { autoclear: true }),
        errno: match d.outcome {
            LoopOutcome::Failed(errno) => Some(errno.raw_os_error()),
            _ => None,
        },
        detach_ms: ms(d.time),
    }
}

/// The `outcome` name for an error's state.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Detached => "detached_unconfirmed",
        State::ReadOnly => "remounted_read_only",
        State::ShutDown => "shut_down",
        State::Unmounted => "unmounted",
        State::Untouched => "untouched",
        State::ShutDownByIoctl => "shut_down_by_ioctl",
        State::Unknown => "unknown",
    }
}
