//! Loop devices left behind by filesystems that `--all` shut down: detached
//! with `LOOP_CLR_FD`, and the detach confirmed.
//!
//! A loop device is recognised by sysfs: `/sys/dev/block/M:m/loop/` exists
//! while it is bound to a backing file (the kernel removes that directory in
//! `__loop_clr_fd()`). It is looked up *before* the unmount, because a loop
//! device set up with autoclear (`mount -o loop`) unbinds itself when the
//! filesystem lets go, and then nothing says it was one.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::backoff::{self, Attempt, Stopped};
use crate::cancel::Cancel;
use crate::device;
use crate::mountinfo::DevId;
use crate::sys;

/// A bound loop device under a filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopDevice {
    pub dev: DevId,
    pub node: PathBuf,
    pub backing_file: PathBuf,
}

/// How the detach of a loop device ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoopOutcome {
    /// Unbound: by our `LOOP_CLR_FD`, or on its own (autoclear).
    Detached { autoclear: bool },
    /// `LOOP_CLR_FD` was accepted, but someone else still has the device
    /// open: it stays bound until they close it (the deadline came first).
    StillBound,
    /// `LOOP_CLR_FD` failed.
    Failed(Errno),
}

impl LoopOutcome {
    /// The name scripts see in `--json`.
    pub fn name(&self) -> &'static str {
        match self {
            LoopOutcome::Detached { .. } => "detached",
            LoopOutcome::StillBound => "still_bound",
            LoopOutcome::Failed(_) => "failed",
        }
    }
}

/// What happened to one loop device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopDetach {
    pub device: LoopDevice,
    pub outcome: LoopOutcome,
    pub time: Duration,
}

fn sysfs_loop_dir(dev: DevId) -> PathBuf {
    PathBuf::from(format!("/sys/dev/block/{dev}/loop"))
}

/// Whether the loop device `dev` is bound to a backing file.
pub fn is_bound(dev: DevId) -> bool {
    sysfs_loop_dir(dev).exists()
}

/// The backing file of the loop device whose sysfs `loop/` directory is
/// `dir`, while it is bound.
fn backing_file(dir: &Path) -> Option<PathBuf> {
    let backing = std::fs::read(dir.join("backing_file")).ok()?;
    let backing = backing.strip_suffix(b"\n").unwrap_or(&backing);
    Some(PathBuf::from(OsStr::from_bytes(backing)))
}

/// The bound loop device behind a superblock, if it is one.
pub fn of(dev: DevId, source: &Path) -> Option<LoopDevice> {
    if dev.is_anonymous() {
        return None;
    }
    let backing_file = backing_file(&sysfs_loop_dir(dev))?;
    let node = device::node_for(dev, source)?;
    Some(LoopDevice {
        dev,
        node,
        backing_file,
    })
}

/// Every bound loop device (`/sys/block/loop*`), with its node as
/// `/dev/NAME` when no other is found.
pub fn bound() -> Vec<LoopDevice> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(b"loop"))
        .filter_map(|e| {
            let dir = e.path();
            let backing_file = backing_file(&dir.join("loop"))?;
            let dev = std::fs::read_to_string(dir.join("dev"))
                .ok()
                .and_then(|text| device::parse_dev(&text))?;
            let named = Path::new("/dev").join(e.file_name());
            let node = device::node_for(dev, &named).unwrap_or(named);
            Some(LoopDevice {
                dev,
                node,
                backing_file,
            })
        })
        .collect()
}

/// Detaches `lo` (its filesystem is shut down) and waits, until `deadline`,
/// for the kernel to unbind it. There is no event for the unbind: the sysfs
/// directory is checked with the crate's one backoff ([`backoff`], as for
/// the block device claim); normally it is gone at the first look. A
/// cancellation leaves it as it is then.
pub fn detach(lo: &LoopDevice, deadline: Instant, cancel: Cancel<'_>) -> LoopDetach {
    let start = Instant::now();
    let done = |outcome| LoopDetach {
        device: lo.clone(),
        outcome,
        time: start.elapsed(),
    };
    if !is_bound(lo.dev) {
        return done(LoopOutcome::Detached { autoclear: true });
    }
    match sys::loop_clear(&lo.node) {
        Ok(()) => {}
        Err(Errno::NXIO | Errno::NOENT | Errno::NODEV) => {
            return done(LoopOutcome::Detached { autoclear: true })
        }
        Err(e) => return done(LoopOutcome::Failed(e)),
    }
    let unbound = backoff::retry(
        deadline,
        cancel,
        |e| e,
        || match is_bound(lo.dev) {
            false => Attempt::Done(()),
            true => Attempt::<(), Errno>::Again,
        },
    );
    match unbound {
        Ok(()) => done(LoopOutcome::Detached { autoclear: false }),
        Err(Stopped::Expired | Stopped::Cancelled) => done(LoopOutcome::StillBound),
        Err(Stopped::Failed(e)) => done(LoopOutcome::Failed(e)),
    }
}
