//! Every system call the tool makes on filesystems, wrapped once. The rest of
//! the crate speaks of targets and outcomes, not of flag bits.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{inotify, AtFlags, FileType, Mode, OFlags, StatxAttributes, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

use crate::mountinfo::DevId;

/// `UMOUNT_WAIT`, the flag this project proposes: return only when the
/// superblock is dead. Not in any released kernel's headers yet.
pub const UMOUNT_WAIT: u32 = 0x10;

/// What `umount2("", UMOUNT_WAIT)` says about this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// ENOENT: the flags passed the check and the empty path was looked up.
    Kernel,
    /// EINVAL: the flag is unknown (flags are checked before the lookup).
    Fallback,
    /// Anything else: the fallback path is used, the errno is shown.
    Unexpected(Option<Errno>),
}

/// Asks the kernel whether it knows `UMOUNT_WAIT`, without side effects: the
/// empty path can never name a mount.
pub fn probe() -> Probe {
    match rustix::mount::unmount("", UnmountFlags::from_bits_retain(UMOUNT_WAIT)) {
        Err(Errno::NOENT) => Probe::Kernel,
        Err(Errno::INVAL) => Probe::Fallback,
        Err(e) => Probe::Unexpected(Some(e)),
        Ok(()) => Probe::Unexpected(None),
    }
}

/// The `umount2(2)` flags this tool passes on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnmountOptions {
    /// `MNT_FORCE`
    pub force: bool,
    /// `MNT_DETACH`
    pub lazy: bool,
    /// `UMOUNT_NOFOLLOW`
    pub no_follow: bool,
    /// `UMOUNT_WAIT`
    pub wait: bool,
}

impl UnmountOptions {
    pub fn bits(self) -> u32 {
        let mut flags = UnmountFlags::empty();
        flags.set(UnmountFlags::FORCE, self.force);
        flags.set(UnmountFlags::DETACH, self.lazy);
        flags.set(UnmountFlags::NOFOLLOW, self.no_follow);
        let mut bits = flags.bits();
        if self.wait {
            bits |= UMOUNT_WAIT;
        }
        bits
    }
}

/// `umount2(path, flags)`.
pub fn unmount(path: &Path, options: UnmountOptions) -> Result<(), Errno> {
    rustix::mount::unmount(path, UnmountFlags::from_bits_retain(options.bits()))
}

/// `mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY, NULL)`.
pub fn remount_read_only(path: &Path) -> Result<(), Errno> {
    rustix::mount::mount_remount(path, MountFlags::RDONLY, "")
}

/// `LOOP_CLR_FD` (linux/loop.h): unbind a loop device from its backing file.
const LOOP_CLR_FD: rustix::ioctl::Opcode = 0x4C01;

/// `ioctl(open(node), LOOP_CLR_FD)`. The kernel unbinds the device when its
/// last opener closes it (here, at once, if nobody else has it open); ENXIO
/// when it is not bound any more.
pub fn loop_clear(node: &Path) -> Result<(), Errno> {
    let fd = rustix::fs::open(
        node,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    // SAFETY: LOOP_CLR_FD takes no argument and writes no memory.
    unsafe { rustix::ioctl::ioctl(&fd, rustix::ioctl::NoArg::<LOOP_CLR_FD>::new()) }
}

/// What `statx(2)` says about a target before anything is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetStat {
    pub mount_id: u64,
    /// `STATX_ATTR_MOUNT_ROOT`: the path is the root of its mount.
    pub is_mount_root: bool,
    pub is_symlink: bool,
    pub dev: DevId,
}

/// `statx(path)`, following a final symbolic link only when `follow`.
/// ENOSYS on kernels older than 5.8, which cannot tell a mount root.
pub fn stat_target(path: &Path, follow: bool) -> Result<TargetStat, Errno> {
    let flags = if follow {
        AtFlags::empty()
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    let st = rustix::fs::statx(
        CWD,
        path,
        flags | AtFlags::NO_AUTOMOUNT,
        StatxFlags::TYPE | StatxFlags::MNT_ID,
    )?;
    // STATX_MNT_ID and STATX_ATTR_MOUNT_ROOT came in Linux 5.8.
    if st.stx_mask & StatxFlags::MNT_ID.bits() == 0
        || !st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
    {
        return Err(Errno::NOSYS);
    }
    let is_symlink = FileType::from_raw_mode(u32::from(st.stx_mode)) == FileType::Symlink;
    Ok(TargetStat {
        mount_id: st.stx_mnt_id,
        is_mount_root: st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT),
        is_symlink,
        dev: DevId {
            major: st.stx_dev_major,
            minor: st.stx_dev_minor,
        },
    })
}

/// `stat(path)`: the device a file lives on and, for a device node, the
/// device it names (`st_rdev`) and whether it is a block device.
pub fn stat_dev(path: &Path) -> Result<(DevId, Option<DevId>), Errno> {
    let st = rustix::fs::stat(path)?;
    let is_block = FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice;
    Ok((
        DevId::from_dev_t(st.st_dev),
        is_block.then(|| DevId::from_dev_t(st.st_rdev)),
    ))
}

/// Tries to claim a block device exclusively (`open(dev, O_RDONLY|O_EXCL)`),
/// and gives the claim back at once. EBUSY while a filesystem (or anything
/// else) still holds it.
pub fn try_claim(device: &Path) -> Result<(), Errno> {
    let fd = rustix::fs::open(
        device,
        OFlags::RDONLY | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    drop(fd);
    Ok(())
}

/// An inotify watch on a mount's root. It pins neither the mount nor the
/// superblock; `generic_shutdown_super()` reports `IN_UNMOUNT` and then
/// `IN_IGNORED` on it when the superblock shuts down.
pub struct RootWatch {
    fd: OwnedFd,
    wd: i32,
}

/// What a [`RootWatch`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchEvents {
    /// `IN_UNMOUNT`: the superblock is shutting down.
    pub unmounted: bool,
    /// `IN_IGNORED`: the watch is gone (after `IN_UNMOUNT`, or on its own).
    pub ignored: bool,
    /// `IN_Q_OVERFLOW`: events were lost.
    pub overflow: bool,
}

impl RootWatch {
    /// Watches `path` (a mount root). The mask needs at least one event;
    /// `IN_UNMOUNT` and `IN_IGNORED` are delivered whatever it is.
    pub fn add(path: &Path, follow: bool) -> Result<Self, Errno> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let mut mask = inotify::WatchFlags::DELETE_SELF | inotify::WatchFlags::MOVE_SELF;
        if !follow {
            mask |= inotify::WatchFlags::DONT_FOLLOW;
        }
        let wd = inotify::add_watch(&fd, path, mask)?;
        Ok(RootWatch { fd, wd })
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads the events queued so far without blocking, adding them to `seen`.
    pub fn read_events(&self, seen: &mut WatchEvents) -> Result<(), Errno> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut reader = inotify::Reader::new(self.fd.as_fd(), &mut buf);
        loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    if flags.contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
                        seen.overflow = true;
                    }
                    if event.wd() != self.wd {
                        continue;
                    }
                    if flags.contains(inotify::ReadFlags::UNMOUNT) {
                        seen.unmounted = true;
                    }
                    if flags.contains(inotify::ReadFlags::IGNORED) {
                        seen.ignored = true;
                    }
                }
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
