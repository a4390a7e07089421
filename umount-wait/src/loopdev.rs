//! Loop devices left behind by filesystems that `--all` shut down: detached
//! with `LOOP_CLR_FD`, and the detach confirmed.
//!
//! A loop device is recognised by sysfs: `/sys/dev/block/M:m/loop/` exists
//! while it is bound to a backing file (the kernel removes that directory in
//! `__loop_clr_fd()`). It is looked up *before* the unmount, because a loop
//! device set up with autoclear (`mount -o loop`) unbinds itself when the
//! filesystem lets go, and then nothing says it was one.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::backoff::{self, Attempt, Stopped};
use crate::cancel::{self, Cancel, Wake};
use crate::child::CallChild;
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

/// The file behind a bound loop device, told without looking its path up:
/// the device and inode the loop driver has open (`LOOP_GET_STATUS64`).
/// The path in sysfs is only what the file was called: it may lead
/// elsewhere since (a directory renamed, a mount over it), and a lookup
/// through a FUSE mount whose daemon does not answer never ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackingFile {
    pub dev: DevId,
    pub ino: u64,
    /// For a file with an anonymous device of its own (a btrfs
    /// subvolume's, which no mount table shows), the mount that its sysfs
    /// path leads to, when that path leads to this very file.
    pub mount_id: Option<u64>,
}

/// What [`backing_files`] told of one loop device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Told {
    /// Its backing file.
    File(BackingFile),
    /// Nothing: the driver refused (the device no longer bound, say).
    Failed,
    /// Nothing: the deadline came first.
    Late,
}

/// One result written by the child of [`backing_files`] into memory it
/// shares with its parent.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Slot {
    /// [`SLOT_TOLD`] once the rest is written, [`SLOT_FAILED`] when the
    /// driver refused; 0 (as mapped) until then.
    done: u32,
    major: u32,
    minor: u32,
    has_mount_id: u32,
    ino: u64,
    mount_id: u64,
}

const SLOT_TOLD: u32 = 1;
const SLOT_FAILED: u32 = 2;

/// An anonymous shared mapping of `len` slots: what a child writes there,
/// its parent reads.
struct SharedSlots {
    ptr: *mut Slot,
    len: usize,
}

impl SharedSlots {
    fn new(len: usize) -> Result<SharedSlots, Errno> {
        let bytes = len.max(1) * std::mem::size_of::<Slot>();
        // SAFETY: a fresh anonymous mapping, zero-filled, owned by the result.
        let ptr = unsafe {
            nix::libc::mmap(
                std::ptr::null_mut(),
                bytes,
                nix::libc::PROT_READ | nix::libc::PROT_WRITE,
                nix::libc::MAP_SHARED | nix::libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == nix::libc::MAP_FAILED {
            return Err(
                Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::NOMEM)
            );
        }
        Ok(SharedSlots {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Writes slot `i` (in the child: no allocation, no lock).
    fn set(&self, i: usize, slot: Slot) {
        assert!(i < self.len);
        // SAFETY: in bounds of the mapping; the parent reads only after the
        // child has ended.
        unsafe { self.ptr.add(i).write_volatile(slot) }
    }

    fn get(&self, i: usize) -> Slot {
        assert!(i < self.len);
        // SAFETY: in bounds of the mapping, zero-filled or written by set.
        unsafe { self.ptr.add(i).read_volatile() }
    }
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        let bytes = self.len.max(1) * std::mem::size_of::<Slot>();
        // SAFETY: the mapping made in new, unmapped once.
        unsafe { nix::libc::munmap(self.ptr.cast(), bytes) };
    }
}

/// How long a killed child of [`backing_files`] is waited for before it
/// is given up.
const ABANDON_GRACE: Duration = Duration::from_millis(100);

/// The backing file of each of `loops` ([`BackingFile`]), in order, or why
/// it could not be told ([`Told`]). The driver asks the
/// backing file's own filesystem (`vfs_getattr()`), and the path of a
/// file with an anonymous device that no superblock in `mounted` has (a
/// btrfs subvolume's) is looked up to find its mount: both can wait for
/// ever on a FUSE daemon that does not answer, so they are made in one
/// child process ([`CallChild`]), killed at `deadline`.
pub fn backing_files(
    loops: &[LoopDevice],
    mounted: &HashSet<DevId>,
    deadline: Instant,
) -> Vec<Told> {
    if loops.is_empty() {
        return Vec::new();
    }
    let Ok(slots) = SharedSlots::new(loops.len()) else {
        return vec![Told::Late; loops.len()];
    };
    let c_path = |p: &Path| CString::new(p.as_os_str().as_bytes()).ok();
    let paths: Vec<(Option<CString>, Option<CString>)> = loops
        .iter()
        .map(|lo| (c_path(&lo.node), c_path(&lo.backing_file)))
        .collect();
    // SAFETY: the child makes raw system calls on the C strings prepared
    // above and writes into the shared mapping; nothing is allocated.
    let child = unsafe {
        CallChild::spawn(|| {
            for (i, (node, backing)) in paths.iter().enumerate() {
                let Some(node) = node else { continue };
                let Ok((dev, ino)) = sys::loop_backing_file(node) else {
                    slots.set(
                        i,
                        Slot {
                            done: SLOT_FAILED,
                            ..Slot::default()
                        },
                    );
                    continue;
                };
                let mount_id = match backing {
                    Some(path) if dev.is_anonymous() && !mounted.contains(&dev) => {
                        match sys::stat_file_id(path) {
                            Ok((d, i, mount_id)) if d == dev && i == ino => Some(mount_id),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                slots.set(
                    i,
                    Slot {
                        done: SLOT_TOLD,
                        major: dev.major,
                        minor: dev.minor,
                        has_mount_id: u32::from(mount_id.is_some()),
                        ino,
                        mount_id: mount_id.unwrap_or(0),
                    },
                );
            }
            Ok(())
        })
    };
    let Ok(mut child) = child else {
        return vec![Told::Late; loops.len()];
    };
    while !matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
        match cancel::wait_readable(Some(child.fd()), Cancel::never(), deadline) {
            Wake::Readable => {}
            Wake::Deadline | Wake::Cancelled | Wake::Failed(_) => break,
        }
    }
    // Only once it has ended (killed, if it still runs) are the slots
    // final. A child asleep on a FUSE request that its daemon has read
    // cannot be killed until the daemon answers: it is given up, and the
    // slots it wrote are read all the same (it can write no more: a
    // fatal signal is pending, it dies as soon as it wakes).
    let _ = child.abandon(ABANDON_GRACE);
    (0..loops.len())
        .map(|i| {
            let slot = slots.get(i);
            match slot.done {
                SLOT_TOLD => Told::File(BackingFile {
                    dev: DevId {
                        major: slot.major,
                        minor: slot.minor,
                    },
                    ino: slot.ino,
                    mount_id: (slot.has_mount_id == 1).then_some(slot.mount_id),
                }),
                SLOT_FAILED => Told::Failed,
                _ => Told::Late,
            }
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
