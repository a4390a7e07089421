//! What keeps a superblock alive: mounts of it in any mount namespace, and
//! processes with open files, a working directory or a root on it.
//!
//! One `/proc/PID/mountinfo` is read per mount namespace (namespaces are told
//! apart by the inode of `/proc/PID/ns/mnt`). Processes are found by
//! `stat(2)` on `/proc/PID/fd/*`, `cwd` and `root`, which follows the magic
//! links to the open file itself: this works for detached mounts too.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::path::PathBuf;

use crate::mountinfo::{self, DevId};
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
}

/// How a process uses the filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Use {
    Fd(u32, PathBuf),
    Cwd,
    Root,
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Use::Fd(n, path) => write!(f, "fd {n} {}", mountinfo::display(path)),
            Use::Cwd => write!(f, "cwd"),
            Use::Root => write!(f, "root"),
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
                write!(f, "pid {pid} ({command}):")?;
                for (i, u) in uses.iter().enumerate() {
                    write!(f, "{}{u}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
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

fn namespace_of(pid: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|m| m.ino())
}

/// Lists what holds the superblock `dev` (best effort: processes that exit
/// or that this process may not inspect are skipped).
pub fn find(dev: DevId, exclude: Option<Exclude>) -> Vec<Blocker> {
    let me = std::process::id() as i32;
    let my_ns = namespace_of("self");
    let mut blockers = Vec::new();
    let mut seen_ns = HashSet::new();
    let all = pids();
    for &pid in &all {
        let Some(ns) = namespace_of(&pid.to_string()) else {
            continue;
        };
        if !seen_ns.insert(ns) {
            continue;
        }
        let Ok(mounts) = mountinfo::read(Some(pid)) else {
            seen_ns.remove(&ns);
            continue;
        };
        for m in mounts.iter().filter(|m| m.dev == dev) {
            if Some(ns) == my_ns && exclude.is_some_and(|x| x.mount_id == m.id) {
                continue;
            }
            blockers.push(Blocker::Mount {
                mnt_ns: ns,
                pid,
                mount_id: m.id,
                mount_point: m.mount_point.clone(),
            });
        }
    }
    for &pid in all.iter().filter(|&&p| p != me) {
        let uses = uses_of(pid, dev);
        if !uses.is_empty() {
            let command = fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end().to_string())
                .unwrap_or_default();
            blockers.push(Blocker::Process { pid, command, uses });
        }
    }
    blockers
}

fn on_dev(path: &std::path::Path, dev: DevId) -> bool {
    matches!(sys::stat_dev(path), Ok((d, _)) if d == dev)
}

fn uses_of(pid: i32, dev: DevId) -> Vec<Use> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let mut uses = Vec::new();
    if on_dev(&base.join("cwd"), dev) {
        uses.push(Use::Cwd);
    }
    if on_dev(&base.join("root"), dev) {
        uses.push(Use::Root);
    }
    if let Ok(fds) = fs::read_dir(base.join("fd")) {
        let mut numbered: Vec<(u32, PathBuf)> = fds
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
            .collect();
        numbered.sort();
        for (n, link) in numbered {
            if on_dev(&link, dev) {
                let shown = fs::read_link(&link).unwrap_or_default();
                uses.push(Use::Fd(n, shown));
            }
        }
    }
    uses
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
