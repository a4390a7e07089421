//! Every system call the tool makes on filesystems, wrapped once. The rest of
//! the crate speaks of targets and outcomes, not of flag bits.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    inotify, AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxAttributes, StatxFlags, CWD,
};
use rustix::io::Errno;
use rustix::mount::{FsPickFlags, UnmountFlags};

use crate::mountinfo::DevId;

/// `UMOUNT_WAIT`, the flag this project proposes: return only when the
/// superblock is dead. Not in any released kernel's headers yet.
pub const UMOUNT_WAIT: u32 = 0x10;

/// `UMOUNT_NOTIFY`, its pollable form in the same series: `umount2`
/// returns a descriptor that polls readable once the superblock is dead.
pub const UMOUNT_NOTIFY: u32 = 0x20;

/// Whether the kernel knows `UMOUNT_NOTIFY`, asked as [`probe`] asks for
/// `UMOUNT_WAIT`: ENOENT for the empty path means the flag passed.
pub fn notify_supported() -> bool {
    rustix::mount::unmount("", UnmountFlags::from_bits_retain(UMOUNT_NOTIFY)) == Err(Errno::NOENT)
}

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

/// A path as the kernel can take it, whatever its length: the path itself,
/// or, from `PATH_MAX` on, its last component under a handle on its parent
/// directory. A user who renames a directory above a mount point can move
/// the mount deeper than `PATH_MAX`, where every call that takes the
/// whole path fails (ENAMETOOLONG) and the mount would be left as it is.
/// The parent is reached one component at a time (`openat(2)`,
/// `O_PATH | O_NOFOLLOW`): no symbolic link is followed on the way.
pub struct Reach {
    /// The parent directory, for a long path.
    dir: Option<OwnedFd>,
    /// The whole path, or the last component under `dir`.
    name: std::path::PathBuf,
}

impl Reach {
    pub fn new(path: &Path) -> Result<Reach, Errno> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() < nix::libc::PATH_MAX as usize {
            return Ok(Reach {
                dir: None,
                name: path.to_path_buf(),
            });
        }
        Reach::walk(path)
    }

    /// The parent directory reached with no symbolic link followed on the
    /// way, whatever the length: a user who exchanges a directory on the
    /// way for a symbolic link (`renameat2(RENAME_EXCHANGE)`) makes the
    /// walk fail instead of leading it elsewhere. `/` itself is taken as it
    /// is. One `openat2(RESOLVE_NO_SYMLINKS)` where the parent's path fits
    /// in `PATH_MAX` and the kernel has it (5.6), since each step of the
    /// walk costs a system call or two for every target; else one
    /// component at a time.
    pub fn walk(path: &Path) -> Result<Reach, Errno> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(Reach {
                dir: None,
                name: path.to_path_buf(),
            });
        };
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let reach = |dir| Reach {
            dir: Some(dir),
            name: std::path::PathBuf::from(name),
        };
        let fits = parent.as_os_str().len() < nix::libc::PATH_MAX as usize;
        if fits && parent.is_absolute() {
            let no_links = ResolveFlags::NO_SYMLINKS;
            match rustix::fs::openat2(CWD, parent, flags, Mode::empty(), no_links) {
                Ok(dir) => return Ok(reach(dir)),
                // No openat2 here: the walk.
                Err(Errno::NOSYS | Errno::INVAL) => {}
                Err(e) => return Err(e),
            }
        }
        let mut dir = rustix::fs::open("/", flags, Mode::empty())?;
        for part in parent.components() {
            if let std::path::Component::Normal(part) = part {
                dir = rustix::fs::openat(&dir, part, flags, Mode::empty())?;
            } else if part == std::path::Component::ParentDir {
                dir = rustix::fs::openat(&dir, "..", flags, Mode::empty())?;
            }
        }
        Ok(reach(dir))
    }

    /// `O_PATH` on the name, following a final symbolic link only when
    /// `follow` ([`open_path`]).
    fn open(&self, follow: bool) -> Result<OwnedFd, Errno> {
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        rustix::fs::openat(self.dir(), &self.name, flags, Mode::empty())
    }

    /// The directory `name` is looked up in.
    fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_ref().map_or(CWD, AsFd::as_fd)
    }

    /// A path that leads to the same place in one lookup, for calls that
    /// take no directory descriptor (`umount2`), and the directory to make
    /// the call from ([`in_dir`]), if one is needed: through
    /// `/proc/self/fd/N` for a parent directory held open, or, where
    /// there is no `/proc` ([`proc_fd_usable`]), the name alone, from
    /// that directory. Valid while `self` lives.
    /// `proc_fd`: what [`proc_fd_usable`] says now.
    pub fn whole(&self, proc_fd: bool) -> (Option<BorrowedFd<'_>>, std::path::PathBuf) {
        match &self.dir {
            None => (None, self.name.clone()),
            Some(dir) if proc_fd => (
                None,
                Path::new("/proc/self/fd")
                    .join(dir.as_raw_fd().to_string())
                    .join(&self.name),
            ),
            Some(dir) => (Some(dir.as_fd()), self.name.clone()),
        }
    }
}

/// A mount point looked up once: a handle on its parent directory, reached
/// one component at a time without following a symbolic link ([`Reach`];
/// as given, following them, for `follow`: umount(8)'s `-c`), and its
/// name there. It is checked ([`MountPoint::stat`]) and unmounted
/// ([`MountPoint::unmount`], [`MountPoint::prepare`]) through that same
/// handle, so that a directory exchanged on the path in between cannot
/// lead the unmount to another mount. What is left is the last component:
/// `UMOUNT_NOFOLLOW` refuses a symbolic link put there.
pub struct MountPoint {
    reach: Reach,
    follow: bool,
}

impl MountPoint {
    pub fn open(path: &Path, follow: bool) -> Result<MountPoint, Errno> {
        let reach = match follow {
            true => Reach::new(path)?,
            false => Reach::walk(path)?,
        };
        Ok(MountPoint { reach, follow })
    }

    /// An `O_PATH` handle on what the name leads to now, as [`open_path`]
    /// opens it but looked up in the parent directory: one component
    /// instead of the whole path again. It pins the mount: close it
    /// before unmounting.
    pub fn open_root(&self) -> Result<OwnedFd, Errno> {
        self.reach.open(self.follow)
    }

    /// What the name leads to now ([`stat_target`]).
    pub fn stat(&self) -> Result<TargetStat, Errno> {
        let flags = match self.follow {
            true => AtFlags::empty(),
            false => AtFlags::SYMLINK_NOFOLLOW,
        };
        stat_at(self.reach.dir(), &self.reach.name, flags)
    }

    /// `umount2(2)` of the name, in its parent directory; `proc_fd`: what
    /// [`proc_fd_usable`] says now.
    pub fn unmount(&self, options: UnmountOptions, proc_fd: bool) -> Result<(), Errno> {
        let flags = UnmountFlags::from_bits_retain(options.bits());
        match self.reach.whole(proc_fd) {
            (None, path) => rustix::mount::unmount(&path, flags),
            (Some(dir), name) => in_dir(dir, || rustix::mount::unmount(&name, flags)),
        }
    }

    /// [`MountPoint::unmount`] from the parent's directory entered with
    /// `cwd` ([`Cwd::within`]); where it cannot be entered (or the name
    /// has none, a short path followed), as [`MountPoint::unmount`] makes
    /// it, `proc_fd` saying whether `/proc/self/fd` names handles.
    pub fn unmount_within(
        &self,
        cwd: &Cwd,
        options: UnmountOptions,
        proc_fd: impl FnOnce() -> bool,
    ) -> Result<(), Errno> {
        let flags = UnmountFlags::from_bits_retain(options.bits());
        if let Some(dir) = &self.reach.dir {
            let name = &self.reach.name;
            if let Ok(result) = cwd.within(dir.as_fd(), || rustix::mount::unmount(name, flags)) {
                return result;
            }
        }
        self.unmount(options, proc_fd())
    }

    /// [`MountPoint::unmount`], made ready for a child process.
    pub fn prepare(self, options: UnmountOptions) -> Result<PreparedUnmount, Errno> {
        let (dir, whole) = self.reach.whole(proc_fd_usable());
        let path = CString::new(whole.as_os_str().as_bytes()).map_err(|_| Errno::INVAL)?;
        let dir = dir.map(|d| d.as_raw_fd());
        Ok(PreparedUnmount {
            path,
            dir,
            flags: UnmountFlags::from_bits_retain(options.bits()),
            _reach: self.reach,
        })
    }
}

/// `umount2(path, flags)` with its arguments made ready beforehand, so that
/// [`PreparedUnmount::call`] allocates nothing: it can run in a child forked
/// from a threaded process ([`crate::child`]).
pub struct PreparedUnmount {
    path: CString,
    /// The directory to make the call from, without `/proc`
    /// ([`Reach::whole`]): `_reach`'s, open while this lives.
    dir: Option<std::os::fd::RawFd>,
    flags: UnmountFlags,
    /// Keeps the parent directory of a long path open for `path`.
    _reach: Reach,
}

impl std::fmt::Debug for PreparedUnmount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedUnmount")
            .field("path", &self.path)
            .field("flags", &self.flags)
            .finish()
    }
}

impl PreparedUnmount {
    /// The system call itself; async-signal-safe.
    pub fn call(&self) -> Result<(), Errno> {
        self.in_its_dir(|| rustix::mount::unmount(self.path.as_c_str(), self.flags))
    }

    /// `call` made from the directory of the path, where it needs one.
    fn in_its_dir<T>(&self, call: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
        match self.dir {
            // SAFETY: `_reach` keeps the descriptor open while self lives.
            Some(dir) => in_dir(unsafe { BorrowedFd::borrow_raw(dir) }, call),
            None => call(),
        }
    }

    /// The system call with `UMOUNT_NOTIFY` added: the descriptor it
    /// returns polls readable once the superblock is dead.
    pub fn call_notify(&self) -> Result<OwnedFd, Errno> {
        let flags = self.flags.bits() | UMOUNT_NOTIFY;
        // SAFETY: a valid C string and plain flags; the kernel returns a
        // new descriptor of ours or -1.
        let fd = self.in_its_dir(|| {
            match unsafe { nix::libc::umount2(self.path.as_ptr(), flags as nix::libc::c_int) } {
                fd if fd < 0 => Err(Errno::from_raw_os_error(
                    std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                )),
                fd => Ok(fd),
            }
        })?;
        // SAFETY: the kernel just gave us this descriptor, ours alone.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `struct mount_attr` (linux/mount.h), the argument of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` (linux/mount.h).
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// `mount_setattr(mount, "", AT_EMPTY_PATH, {.attr_set = MOUNT_ATTR_RDONLY})`:
/// the one mount that `mount` (an [`open_path`] handle on its root,
/// checked by the caller) refers to becomes read-only. Its other
/// attributes (nosuid, nodev, noexec, the atime mode, nosymfollow, an
/// idmapping) stay as they are, and so does the filesystem: other mounts
/// of it stay writable. EBUSY while a file is open for writing through
/// this mount; EINVAL for a mount of another mount namespace.
///
/// There is deliberately no read-only remount by path here:
/// `mount(2)` with `MS_REMOUNT | MS_RDONLY` resets the mount's nosuid,
/// nodev and noexec and the superblock's other flags (a user's nosuid
/// stick with a setuid binary on it would hand out root), and it acts on
/// whatever the path leads to when it is looked up again.
pub fn make_mount_read_only(mount: BorrowedFd<'_>) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a NUL-terminated empty path and a mount_attr of the size
    // given, both alive for the call; the kernel only reads them.
    let ret = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            nix::libc::AT_EMPTY_PATH,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    match ret {
        0 => Ok(()),
        _ => Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)),
    }
}

/// `fspick(mount)`, `fsconfig(FSCONFIG_SET_FLAG, "ro")`,
/// `fsconfig(FSCONFIG_CMD_RECONFIGURE)`: the filesystem of the mount that
/// `mount` (an [`open_path`] handle on its root) refers to becomes
/// read-only, every mount of it with it. Only `SB_RDONLY` changes: the
/// superblock's other flags (`sync`, ...) and options, and every mount's
/// own attributes (nosuid, nodev, noexec), stay as they are. Unlike
/// `mount(2)` with `MS_REMOUNT`, this works on a mount of another mount
/// namespace, opened through `/proc/PID/root`; and through the handle it
/// acts on the mount checked, not on whatever a path leads to when it is
/// looked up again.
pub fn reconfigure_read_only(mount: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = FsPickFlags::FSPICK_CLOEXEC | FsPickFlags::FSPICK_EMPTY_PATH;
    let fs = rustix::mount::fspick(mount, "", flags)?;
    rustix::mount::fsconfig_set_flag(&fs, "ro")?;
    rustix::mount::fsconfig_reconfigure(&fs)
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

/// `swapoff(2)`: returns once every page of the swap area is read back
/// into memory (ENOMEM when they do not fit). Nothing is allocated (safe
/// in a child process).
pub fn swap_off(path: &std::ffi::CStr) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path that outlives the call.
    match unsafe { nix::libc::swapoff(path.as_ptr()) } {
        0 => Ok(()),
        _ => Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)),
    }
}

/// `FS_IOC_SHUTDOWN` (linux/fs.h): `_IOR('X', 125, __u32)`, the flag
/// read from the pointer given.
const FS_IOC_SHUTDOWN: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<u32>(b'X', 125);

/// `FS_GOING_FLAGS_LOGFLUSH`: commit the log, then shut down.
const FS_GOING_FLAGS_LOGFLUSH: u32 = 1;

/// The directory that `mount` (an [`open_path`] handle on a mount's root,
/// checked by the caller) refers to, reopened for reading through
/// `/proc/self/fd` (or `.` under the handle without /proc): an `O_PATH`
/// handle takes no ioctl.
pub fn reopen_dir(mount: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    match proc_fd_usable() {
        true => {
            let link = format!("/proc/self/fd/{}", mount.as_raw_fd());
            rustix::fs::open(link.as_str(), flags, Mode::empty())
        }
        false => rustix::fs::openat(mount, ".", flags, Mode::empty()),
    }
}

/// `ioctl(FS_IOC_SHUTDOWN, FS_GOING_FLAGS_LOGFLUSH)` on the filesystem that
/// `mount` (an [`open_path`] handle on a mount's root, checked by the
/// caller) refers to ([`reopen_dir`]): the journal is committed and every
/// later write fails, though it stays mounted. ext4, xfs and f2fs have it;
/// EOPNOTSUPP or ENOTTY elsewhere.
pub fn shut_down_filesystem(mount: BorrowedFd<'_>) -> Result<(), Errno> {
    shut_down_dir(reopen_dir(mount)?.as_fd())
}

/// [`shut_down_filesystem`] on a directory opened for reading: one system
/// call, for a child process.
pub fn shut_down_dir(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: FS_IOC_SHUTDOWN reads one u32 from the pointer, which the
    // Setter keeps alive for the call.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            rustix::ioctl::Setter::<FS_IOC_SHUTDOWN, u32>::new(FS_GOING_FLAGS_LOGFLUSH),
        )
    }
}

/// `FITHAW` (linux/fs.h): `_IOWR('X', 120, int)`.
const FITHAW: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<i32>(b'X', 120);

/// `ioctl(FITHAW)` on the filesystem that `mount` (a checked [`open_path`]
/// handle on its root) refers to: Ok when it was frozen from userspace
/// (`fsfreeze -f`, FIFREEZE) and is thawed now; EINVAL when it was not
/// frozen; a freeze the kernel holds (suspend, a device mapper snapshot)
/// is not undone.
pub fn thaw(mount: BorrowedFd<'_>) -> Result<(), Errno> {
    let fd = reopen_dir(mount)?;
    // SAFETY: FITHAW takes no argument the kernel reads (its int is
    // ignored); the Updater keeps the int alive for the call.
    unsafe { rustix::ioctl::ioctl(&fd, rustix::ioctl::Updater::<FITHAW, i32>::new(&mut 0)) }
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
    let reach = Reach::new(path)?;
    stat_at(reach.dir(), &reach.name, flags)
}

/// [`stat_target`] of what an `O_PATH` descriptor ([`open_path`]) refers to.
pub fn stat_fd(fd: BorrowedFd<'_>) -> Result<TargetStat, Errno> {
    stat_at(fd, Path::new(""), AtFlags::EMPTY_PATH)
}

fn stat_at(dir: BorrowedFd<'_>, path: &Path, flags: AtFlags) -> Result<TargetStat, Errno> {
    let flags = flags | AtFlags::NO_AUTOMOUNT | AtFlags::STATX_DONT_SYNC;
    let st = match rustix::fs::statx(dir, path, flags, StatxFlags::TYPE | StatxFlags::MNT_ID) {
        // A FUSE filesystem mounted without allow_other refuses every
        // other user, root too, unless nothing is asked for: with an
        // empty mask it still gives the device, and the mount id and the
        // mount-root flag come from the VFS. The type is then unknown
        // (not a symbolic link: a mount root is none).
        Err(Errno::ACCESS) => rustix::fs::statx(dir, path, flags, StatxFlags::empty())?,
        other => other?,
    };
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

/// umount(8)'s `-N NS`: the namespace file it names, `/proc/NS/ns/mnt` for
/// a process id, else NS itself.
pub fn mount_namespace_file(ns: &Path) -> std::path::PathBuf {
    let text = ns.as_os_str().as_bytes();
    if !text.is_empty() && text.iter().all(u8::is_ascii_digit) {
        Path::new("/proc").join(ns).join("ns/mnt")
    } else {
        ns.to_path_buf()
    }
}

/// Moves this process into the mount namespace of `file` (`setns(2)`).
/// The kernel refuses it (EINVAL) to a process with other threads, so the
/// command does it first, single-threaded; afterwards its root and working
/// directory are the namespace's root.
pub fn enter_mount_namespace(file: &Path) -> Result<(), Errno> {
    let fd = rustix::fs::open(file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::thread::move_into_link_name_space(
        fd.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Mount),
    )
}

/// The kernel's own views a run reads its facts from: `/proc/self/mountinfo`
/// on procfs and, where `/sys` is there, `/sys/dev/block` on sysfs. In a
/// mount namespace entered with `-N`, whoever made it may have mounted
/// something else there (a tmpfs with a mount table of their own
/// writing), and the run would act on their word. Err names the path and
/// the filesystem found there instead.
pub fn check_kernel_views() -> Result<(), (&'static str, String)> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let views: [(&str, i64, bool); 2] = [
        ("/proc/self/mountinfo", PROC_SUPER_MAGIC, true),
        ("/sys/dev/block", SYSFS_MAGIC, false),
    ];
    for (path, magic, required) in views {
        let st = match rustix::fs::statfs(path) {
            Ok(st) => st,
            Err(Errno::NOENT) if !required => continue,
            Err(e) => return Err((path, std::io::Error::from(e).to_string())),
        };
        #[allow(clippy::unnecessary_cast)]
        let found = st.f_type as i64;
        if found != magic {
            return Err((path, format!("a filesystem of type {found:#x}")));
        }
    }
    Ok(())
}

/// `listmount(2)` and `statmount(2)` (Linux 6.8): their numbers are the
/// same on every architecture (the tables were unified before them).
const SYS_STATMOUNT: nix::libc::c_long = 457;
const SYS_LISTMOUNT: nix::libc::c_long = 458;
/// `LSMT_ROOT`: list from the caller's root.
const LSMT_ROOT: u64 = u64::MAX;

/// `struct mnt_id_req` (linux/mount.h), in its first version
/// (`MNT_ID_REQ_SIZE_VER0`): 6.8 knows no other.
#[repr(C)]
struct MountIdRequest {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

impl MountIdRequest {
    fn new(mnt_id: u64, param: u64) -> MountIdRequest {
        MountIdRequest {
            size: std::mem::size_of::<MountIdRequest>() as u32,
            spare: 0,
            mnt_id,
            param,
        }
    }
}

fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// `listmount(2)` from the caller's root: the unique (64-bit) ids of
/// every mount of this mount namespace reachable from it, in the order
/// they were mounted. ENOSYS before Linux 6.8. It needs no `/proc`.
pub fn list_mounts() -> Result<Vec<u64>, Errno> {
    let mut ids = Vec::new();
    let mut chunk = vec![0u64; 1024];
    let mut after = 0;
    loop {
        let request = MountIdRequest::new(LSMT_ROOT, after);
        // SAFETY: a request of the size it says and a buffer of
        // `chunk.len()` ids, both alive for the call.
        let n = unsafe {
            nix::libc::syscall(
                SYS_LISTMOUNT,
                &request as *const MountIdRequest,
                chunk.as_mut_ptr(),
                chunk.len(),
                0u32,
            )
        };
        let n = usize::try_from(n).map_err(|_| last_errno())?;
        ids.extend_from_slice(&chunk[..n]);
        match chunk[..n].last() {
            Some(&last) if n == chunk.len() => after = last,
            _ => return Ok(ids),
        }
    }
}

/// `statmount(2)` of the mount with the unique id `mnt_id`, asking for
/// `mask` (`STATMOUNT_*`): `struct statmount` and its strings, as the
/// kernel wrote them. ENOENT for a mount gone since it was listed.
pub fn stat_mount(mnt_id: u64, mask: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u64; 4096 / 8];
    loop {
        let request = MountIdRequest::new(mnt_id, mask);
        let len = buf.len() * 8;
        // SAFETY: a request of the size it says and a buffer of `len`
        // bytes (u64-aligned, as `struct statmount` needs), both alive
        // for the call.
        let n = unsafe {
            nix::libc::syscall(
                SYS_STATMOUNT,
                &request as *const MountIdRequest,
                buf.as_mut_ptr(),
                len,
                0u32,
            )
        };
        match n {
            0 => {
                let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
                return Ok(bytes);
            }
            _ => match last_errno() {
                Errno::OVERFLOW if len < 1 << 24 => buf.resize(buf.len() * 4, 0),
                e => return Err(e),
            },
        }
    }
}

/// Whether `/proc/self/fd` is procfs's here: then a handle can be named
/// by a path (`/proc/self/fd/N`) for the calls that take one. In a chroot
/// or an initramfs without `/proc`, or with something else mounted there,
/// it is not, and such a call is made from the handle's directory
/// instead ([`in_dir`]).
pub fn proc_fd_usable() -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs("/proc/self/fd").is_ok_and(|st| st.f_type as i64 == PROC_SUPER_MAGIC)
}

/// [`proc_fd_usable`], asked once for many targets: a `statfs(2)` of
/// `/proc/self/fd` walks four components and a link, and the fallback
/// path asked it twice a target.
///
/// What it says changes only when a mount at `/proc`, above it or below
/// it comes or goes. Another program that can do that is root, and what
/// it does between the answer and its use is a race that asking every
/// time would not close either (the answer is only as old as the last
/// call). The run itself can, unmounting `/proc`, a mount below it, or
/// one above it (`/` lazily, with everything below): each unmount it makes
/// or tries is told here ([`ProcFd::unmounted`]), and one that can have
/// changed it has the question asked again. A stale answer could not
/// lead a call elsewhere in any case: without procfs at `/proc`, the
/// path `/proc/self/fd/N` is looked up in the directory under it, root's
/// own, and fails.
#[derive(Debug, Default)]
pub struct ProcFd {
    usable: std::cell::Cell<Option<bool>>,
}

impl ProcFd {
    /// [`proc_fd_usable`], asked if not known.
    pub fn usable(&self) -> bool {
        match self.usable.get() {
            Some(usable) => usable,
            None => {
                let usable = proc_fd_usable();
                self.usable.set(Some(usable));
                usable
            }
        }
    }

    /// The run has unmounted (or tried to) the mount at `mount_point`,
    /// with what a lazy unmount takes along below it: the answer is
    /// forgotten if that mount is `/proc`, below it or above it.
    pub fn unmounted(&self, mount_point: &Path) {
        let proc = Path::new("/proc");
        let (a, b) = (
            proc.as_os_str().as_bytes(),
            mount_point.as_os_str().as_bytes(),
        );
        // By component only where one begins with the other at all.
        let near = a.starts_with(b) || b.starts_with(a);
        if near && (proc.starts_with(mount_point) || mount_point.starts_with(proc)) {
            self.usable.set(None);
        }
    }
}

/// Makes `call` with the working directory at `dir` (an `O_PATH` handle
/// on a directory), then puts it back (`fchdir(2)` both ways): for the
/// calls that take a path and no directory handle (`umount2`,
/// `inotify_add_watch`) where no `/proc` can name the handle. Nothing is
/// allocated (safe in a child process); the working directory is another
/// only for the length of `call`, and no other thread of the process
/// may use a relative path meanwhile (the holder scan's reads absolute
/// ones, [`crate::blockers::find_each`]).
/// Err: the working directory could not be reached or put back (then
/// `call` was not made, or made and its result lost: EIO).
pub fn in_dir<T>(dir: BorrowedFd<'_>, call: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let back = rustix::fs::open(".", flags, Mode::empty())?;
    rustix::process::fchdir(dir)?;
    let result = call();
    match rustix::process::fchdir(&back) {
        Ok(()) => result,
        Err(_) => Err(Errno::IO),
    }
}

/// The working directory, held for many [`Cwd::within`] calls: [`in_dir`]
/// without its `open(2)` and `close(2)` of `.` each time.
///
/// For the fallback path's two calls a target that take a path and no
/// directory handle (`inotify_add_watch` on the checked root, `umount2` of
/// the name in the checked parent), two `fchdir(2)` around a lookup of
/// `.` or of one name cost about half of the walk through
/// `/proc/self/fd/N` (procfs's `self` link, the pid and fd directories,
/// the fd's magic link): measured on 6.18, 2.3 against 4.2 µs a call. It
/// needs no `/proc` either. The same handles are acted on: the
/// directory entered is the handle's, and nothing is looked up on the
/// way back. As with [`in_dir`], the working directory is another for
/// the length of a call: for a process whose other threads use no
/// relative path (the holder scan's uses none).
#[derive(Debug)]
pub struct Cwd {
    back: OwnedFd,
}

impl Cwd {
    pub fn open() -> Result<Cwd, Errno> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Cwd {
            back: rustix::fs::open(".", flags, Mode::empty())?,
        })
    }

    /// Makes `call` with the working directory at `dir` (an `O_PATH`
    /// handle on a directory), then puts it back, as [`in_dir`] does.
    /// Err: `dir` could not be entered (EACCES where this process may
    /// not search it), `call` not made: the caller may take another way.
    /// Ok(Err(EIO)): made, but the working directory could not be put
    /// back, its result lost.
    pub fn within<T>(
        &self,
        dir: BorrowedFd<'_>,
        call: impl FnOnce() -> Result<T, Errno>,
    ) -> Result<Result<T, Errno>, Errno> {
        rustix::process::fchdir(dir)?;
        let result = call();
        Ok(match rustix::process::fchdir(&self.back) {
            Ok(()) => result,
            Err(_) => Err(Errno::IO),
        })
    }
}

/// `open(path, O_PATH)`, following a final symbolic link only when
/// `follow`: a handle on the mount root that a target resolves to, which
/// later steps can check against. It pins the mount (a plain `umount2`
/// would fail with EBUSY while it is open): close it before unmounting.
pub fn open_path(path: &Path, follow: bool) -> Result<OwnedFd, Errno> {
    Reach::new(path)?.open(follow)
}

/// Whether no symbolic link is on `path`, the last component included
/// (`openat2(2)` with `RESOLVE_NO_SYMLINKS`): then `realpath(3)` would
/// give `path` itself, if it is absolute and normalized without `..`.
/// False where it cannot be told (no openat2, before 5.6).
pub fn has_no_symlinks(path: &Path) -> bool {
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    rustix::fs::openat2(CWD, path, flags, Mode::empty(), ResolveFlags::NO_SYMLINKS).is_ok()
}

/// The mount ids of this process's root and working directory
/// (`statx(2)` with `STATX_MNT_ID`, as `/proc/self/mountinfo` numbers them).
pub fn caller_mount_ids() -> Result<(u64, u64), Errno> {
    let mount_id = |path: &str, flags: AtFlags| {
        rustix::fs::statx(
            CWD,
            path,
            flags | AtFlags::NO_AUTOMOUNT | AtFlags::STATX_DONT_SYNC,
            StatxFlags::MNT_ID,
        )
        .and_then(|st| match st.stx_mask & StatxFlags::MNT_ID.bits() {
            0 => Err(Errno::NOSYS),
            _ => Ok(st.stx_mnt_id),
        })
    };
    Ok((
        mount_id("/", AtFlags::empty())?,
        mount_id("", AtFlags::EMPTY_PATH)?,
    ))
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

/// The device and inode of `path` when it is a regular file (a final
/// symbolic link followed); `None` for anything else.
pub fn regular_file_id(path: &Path) -> Result<Option<(DevId, u64)>, Errno> {
    let st = rustix::fs::stat(path)?;
    Ok(
        (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
            .then(|| (DevId::from_dev_t(st.st_dev), st.st_ino)),
    )
}

/// `statx(path)` without syncing (`AT_STATX_DONT_SYNC`: a network or FUSE
/// filesystem answers from its cache, or not at all, instead of asking a
/// server or daemon that may not answer), a final link followed: the
/// device the file says it is on, and the id of the mount it was reached
/// through (through `/proc/PID/fd/N`, that of the open file).
pub fn stat_file(path: &Path) -> Result<(DevId, u64), Errno> {
    let st = rustix::fs::statx(
        CWD,
        path,
        AtFlags::STATX_DONT_SYNC | AtFlags::NO_AUTOMOUNT,
        StatxFlags::MNT_ID,
    )?;
    let dev = DevId {
        major: st.stx_dev_major,
        minor: st.stx_dev_minor,
    };
    Ok((dev, st.stx_mnt_id))
}

/// The block device that the node `path` names, looked up only inside
/// `/dev` and only on the mount of `/dev` itself (`openat2(2)` with
/// `RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS`, relative
/// symbolic links such as udev's followed): a path that leaves it, or
/// crosses into a mount below it (a user's FUSE mount in `/dev/shm`, whose
/// daemon might never answer the lookup), is not looked up at all (None).
/// None too for a file that is no block device, or on a kernel without
/// `openat2` (before 5.6).
pub fn block_device_in_dev(path: &Path) -> Option<DevId> {
    let relative = path.strip_prefix("/dev").ok()?;
    if relative.as_os_str().is_empty() {
        return None;
    }
    let dev = rustix::fs::open(
        "/dev",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let node = rustix::fs::openat2(
        &dev,
        relative,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_XDEV | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstat(&node).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice)
        .then(|| DevId::from_dev_t(st.st_rdev))
}

/// `LOOP_GET_STATUS64` (linux/loop.h).
const LOOP_GET_STATUS64: rustix::ioctl::Opcode = 0x4C05;

/// `struct loop_info64` (linux/loop.h).
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// The backing file of the bound loop device `node`, as the loop driver
/// has it open: its device and inode (`LOOP_GET_STATUS64`), with no path
/// looked up. The driver asks the backing file's filesystem for them
/// (`vfs_getattr()`): on a FUSE or network filesystem that does not answer
/// this sleeps, killably, so a caller that must not hang makes it in a
/// child process. Nothing is allocated (safe to call there).
pub fn loop_backing_file(node: &std::ffi::CStr) -> Result<(DevId, u64), Errno> {
    let fd = rustix::fs::open(
        node,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    // SAFETY: LOOP_GET_STATUS64 fills a struct loop_info64.
    let info = unsafe {
        rustix::ioctl::ioctl(
            &fd,
            rustix::ioctl::Getter::<LOOP_GET_STATUS64, LoopInfo64>::new(),
        )
    }?;
    Ok((DevId::from_dev_t(info.lo_device), info.lo_inode))
}

/// `statx(path)` as [`stat_file`], for a path prepared before a fork: the
/// device, inode and mount id of the file it leads to. Nothing is
/// allocated (safe to call in a child process).
pub fn stat_file_id(path: &std::ffi::CStr) -> Result<(DevId, u64, u64), Errno> {
    let st = rustix::fs::statx(
        CWD,
        path,
        AtFlags::STATX_DONT_SYNC | AtFlags::NO_AUTOMOUNT,
        StatxFlags::INO | StatxFlags::MNT_ID,
    )?;
    let dev = DevId {
        major: st.stx_dev_major,
        minor: st.stx_dev_minor,
    };
    Ok((dev, st.stx_ino, st.stx_mnt_id))
}

/// What `kcmp(2)` compares between two tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// The descriptor table (`KCMP_FILES`).
    Files = 2,
    /// The root and working directory (`KCMP_FS`).
    Fs = 3,
    /// The address space (`KCMP_VM`).
    Vm = 1,
}

/// Whether the tasks `a` and `b` share `what` (`kcmp(2)`): false when they
/// do not, or when this cannot be told (no kcmp in the kernel, a task gone
/// or without it, as a thread-group leader that has exited).
pub fn tasks_share(a: i32, b: i32, what: Shared) -> bool {
    // SAFETY: kcmp with integer arguments only; it reads no memory of ours.
    let r = unsafe { nix::libc::syscall(nix::libc::SYS_kcmp, a, b, what as i32, 0, 0) };
    r == 0
}

/// Whether the mount table changed since this open `/proc/self/mountinfo`
/// (`table`) was opened or last polled: it polls `POLLPRI` then (the
/// kernel's `mounts_poll()`), and the poll itself takes the change as
/// seen. Does not block. A poll that fails says it changed.
pub fn mount_table_changed(table: BorrowedFd<'_>) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(table, PollFlags::POLLPRI)];
    match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .is_none_or(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR)),
        Err(_) => true,
    }
}

/// `struct dm_ioctl` (linux/dm-ioctl.h): the header of every
/// device-mapper ioctl, the whole of `DM_DEV_STATUS`'s argument.
#[repr(C)]
struct DmIoctl {
    version: [u32; 3],
    data_size: u32,
    data_start: u32,
    target_count: u32,
    open_count: i32,
    flags: u32,
    event_nr: u32,
    padding: u32,
    dev: u64,
    name: [u8; 128],
    uuid: [u8; 129],
    data: [u8; 7],
}

/// `_IOWR(DM_IOCTL, DM_DEV_STATUS_CMD, struct dm_ioctl)`, as this
/// architecture encodes it.
const DM_DEV_STATUS: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<DmIoctl>(0xfd, 7);

/// The device mapper's control device: misc 10:236
/// (`MAPPER_CTRL_MINOR`).
const DM_CONTROL: (u32, u32) = (10, 236);

/// How many openers the device-mapper device `dev` has now (its
/// `open_count`, as `dmsetup info` shows it, the count that makes
/// `dmsetup remove` and `cryptsetup close` fail with EBUSY). None where
/// `dev` is no device-mapper device, or the count cannot be asked here
/// (no device mapper, not root).
pub fn dm_open_count(dev: DevId) -> Option<u32> {
    let dm = format!("/sys/dev/block/{}:{}/dm", dev.major, dev.minor);
    rustix::fs::access(dm.as_str(), rustix::fs::Access::EXISTS).ok()?;
    // A namespace's /dev may be anybody's: no link followed, no terminal
    // taken, no open that waits, and the request made only to the
    // device mapper's own control device.
    let control = rustix::fs::open(
        "/dev/mapper/control",
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&control).ok()?;
    let rdev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice || rdev != DM_CONTROL {
        return None;
    }
    // SAFETY: all-zero bytes are a valid `DmIoctl` (integers and arrays).
    let mut io: DmIoctl = unsafe { std::mem::zeroed() };
    io.version = [4, 0, 0];
    io.data_size = std::mem::size_of::<DmIoctl>() as u32;
    io.data_start = io.data_size;
    // The kernel's `huge_encode_dev()`: `makedev(3)`'s encoding for its
    // 12-bit majors.
    io.dev = rustix::fs::makedev(dev.major, dev.minor);
    // SAFETY: the request's argument is a `struct dm_ioctl` of the size
    // its number says, which the kernel reads and writes back.
    unsafe {
        rustix::ioctl::ioctl(
            &control,
            rustix::ioctl::Updater::<DM_DEV_STATUS, DmIoctl>::new(&mut io),
        )
    }
    .ok()?;
    Some(io.open_count.max(0) as u32)
}

/// The device-mapper devices of `nodes` (the device nodes of a
/// filesystem) that something still has open.
pub fn dm_still_open(nodes: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    nodes
        .iter()
        .filter(|node| {
            matches!(stat_dev(node), Ok((_, Some(dev))) if dm_open_count(dev).is_some_and(|n| n > 0))
        })
        .cloned()
        .collect()
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

/// The watch that [`Inotify::read_queued`] reads for: one with its guard,
/// its events gathered in `seen`, or one kept in the instance.
enum Waited<'s> {
    Own(i32, &'s mut WatchEvents),
    Kept(i32),
}

/// An inotify instance for watches on mount roots, one at a time.
///
/// Closing an instance waits for the kernel to free the marks it had:
/// `fsnotify_destroy_group()` flushes the mark reaper, which waits for an
/// SRCU grace period (4 ms a close on the host). An instance is therefore
/// kept for many watches, one after another or side by side (`--all`):
/// the events read for one watch are kept for the others that live
/// ([`Inotify::keep`]), those of ended watches dropped.
pub struct Inotify {
    fd: OwnedFd,
    /// The watches kept beyond their [`RootWatch`], and what was read for
    /// them so far.
    kept: RefCell<HashMap<i32, WatchEvents>>,
}

impl Inotify {
    pub fn new() -> Result<Self, Errno> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        Ok(Inotify {
            fd,
            kept: RefCell::new(HashMap::new()),
        })
    }

    /// The instance's descriptor, readable when events are queued.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Keeps `watch` beyond its guard: its events are gathered by every
    /// read of the instance until [`Inotify::take_events`] says it ended
    /// or [`Inotify::end_watch`] removes it.
    pub fn keep(&self, watch: RootWatch<'_>) -> i32 {
        let wd = watch.wd;
        let mut seen = WatchEvents::default();
        if watch.ended {
            seen.ignored = true;
        }
        self.kept.borrow_mut().insert(wd, seen);
        std::mem::forget(watch);
        wd
    }

    /// What a kept watch saw so far, reading the events queued without
    /// blocking; once it has ended (`ignored` or `overflow`), it is no
    /// longer kept.
    pub fn take_events(&self, wd: i32) -> Result<WatchEvents, Errno> {
        self.read_queued(Waited::Kept(wd))?;
        let mut kept = self.kept.borrow_mut();
        let seen = kept.get(&wd).copied().unwrap_or(WatchEvents {
            ignored: true,
            ..WatchEvents::default()
        });
        if seen.ignored || seen.overflow {
            kept.remove(&wd);
        }
        Ok(seen)
    }

    /// Whether a kept watch has ended by what was read so far, without
    /// reading: events read for another watch are kept here, and the
    /// descriptor no longer polls readable for them. A watch no longer
    /// kept has ended.
    pub fn ended_already(&self, wd: i32) -> bool {
        self.kept
            .borrow()
            .get(&wd)
            .is_none_or(|s| s.ignored || s.overflow)
    }

    /// Removes a kept watch that is given up.
    pub fn end_watch(&self, wd: i32) {
        let ended = self
            .kept
            .borrow_mut()
            .remove(&wd)
            .is_some_and(|s| s.ignored);
        if !ended {
            // EINVAL when the kernel removed it already.
            let _ = inotify::remove_watch(&self.fd, wd);
        }
    }

    /// Reads the events queued without blocking: those of the watch
    /// waited for, if it is [`Waited::Own`], into its `seen`; those of
    /// kept watches kept; the rest dropped (watches that have ended). Once
    /// the watch waited for has ended and every event read so far is
    /// handled, it stops without another `read(2)`: what may be queued
    /// behind belongs to kept watches, whose readers read it (the
    /// descriptor still polls readable for it).
    fn read_queued(&self, waited: Waited<'_>) -> Result<(), Errno> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut reader = inotify::Reader::new(self.fd.as_fd(), &mut buf);
        let mut kept = self.kept.borrow_mut();
        let (mut own, kept_wd) = match waited {
            Waited::Own(wd, seen) => (Some((wd, seen)), None),
            Waited::Kept(wd) => (None, Some(wd)),
        };
        let ended = |s: &WatchEvents| s.ignored || s.overflow;
        loop {
            let waited_ended = match (&own, kept_wd) {
                (Some((_, seen)), _) => ended(seen),
                // No longer kept: ended already.
                (None, Some(wd)) => kept.get(&wd).is_none_or(ended),
                (None, None) => false,
            };
            if waited_ended && reader.is_buffer_empty() {
                return Ok(());
            }
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    let overflow = flags.contains(inotify::ReadFlags::QUEUE_OVERFLOW);
                    if overflow {
                        if let Some((_, seen)) = own.as_mut() {
                            seen.overflow = true;
                        }
                        kept.values_mut().for_each(|s| s.overflow = true);
                    }
                    let seen = match own.as_mut() {
                        Some((wd, seen)) if *wd == event.wd() => &mut **seen,
                        _ => match kept.get_mut(&event.wd()) {
                            Some(seen) => seen,
                            None => continue,
                        },
                    };
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

    /// Watches the inode `root` refers to (a mount root, through its
    /// `O_PATH` descriptor: `/proc/self/fd/N`, a link the watch follows,
    /// so that the path is not looked up again). The mask needs at least
    /// one event; `IN_UNMOUNT` and `IN_IGNORED` are delivered whatever it
    /// is. The watch borrows the instance: while it lives there is no
    /// other, so every event for another watch descriptor belongs to a
    /// watch that has ended.
    pub fn watch_root(
        &mut self,
        root: BorrowedFd<'_>,
        proc_fd: bool,
    ) -> Result<RootWatch<'_>, Errno> {
        let wd = self.prepare_watch(root, proc_fd)?.call()?;
        Ok(self.adopt(wd))
    }

    /// [`Inotify::watch_root`] in two steps, so that the system call can be
    /// made in a child process ([`crate::child`]; the instance is shared
    /// with it): its arguments, made ready here, and then
    /// [`PreparedWatch::call`] there. `inotify_add_watch` checks that the
    /// caller may read the inode, and a FUSE filesystem may ask its daemon
    /// for that: one that does not answer would hold the caller for ever.
    ///
    /// Without `/proc` (`proc_fd`: what [`proc_fd_usable`] says now), the
    /// watch is added on `.` from the root itself ([`in_dir`]): the same
    /// inode, still without a lookup by path. `root` must then outlive the
    /// watch's call.
    pub fn prepare_watch<'a>(
        &'a self,
        root: BorrowedFd<'a>,
        proc_fd: bool,
    ) -> Result<PreparedWatch<'a>, Errno> {
        let (dir, link) = match proc_fd {
            true => (None, format!("/proc/self/fd/{}", root.as_raw_fd())),
            false => (Some(root), ".".to_owned()),
        };
        Ok(PreparedWatch {
            inotify: self.fd.as_fd(),
            dir,
            link: CString::new(link).map_err(|_| Errno::INVAL)?,
        })
    }

    /// [`Inotify::watch_root`] from the root itself entered with `cwd`
    /// ([`Cwd::within`]: `inotify_add_watch(".")`, the same inode, no
    /// lookup by path); where it cannot be entered (searching it is
    /// refused, where reading it may not be), through
    /// [`Inotify::prepare_watch`], `proc_fd` saying whether
    /// `/proc/self/fd` names handles.
    pub fn watch_root_within(
        &mut self,
        root: BorrowedFd<'_>,
        cwd: &Cwd,
        proc_fd: impl FnOnce() -> bool,
    ) -> Result<RootWatch<'_>, Errno> {
        let mask = inotify::WatchFlags::DELETE_SELF | inotify::WatchFlags::MOVE_SELF;
        let added = cwd.within(root, || inotify::add_watch(&self.fd, ".", mask));
        let wd = match added {
            Ok(wd) => wd?,
            Err(_) => self.prepare_watch(root, proc_fd())?.call()?,
        };
        Ok(self.adopt(wd))
    }

    /// The watch `wd` that [`PreparedWatch::call`] added to this instance.
    pub fn adopt(&mut self, wd: i32) -> RootWatch<'_> {
        RootWatch {
            inotify: self,
            wd,
            ended: false,
        }
    }
}

/// `inotify_add_watch(2)` on a mount root with its arguments made ready
/// ([`Inotify::prepare_watch`]).
pub struct PreparedWatch<'a> {
    inotify: BorrowedFd<'a>,
    /// The root to add the watch from, without `/proc`.
    dir: Option<BorrowedFd<'a>>,
    link: CString,
}

impl PreparedWatch<'_> {
    /// The system call itself; async-signal-safe. The watch descriptor.
    pub fn call(&self) -> Result<i32, Errno> {
        let mask = inotify::WatchFlags::DELETE_SELF | inotify::WatchFlags::MOVE_SELF;
        let add = || inotify::add_watch(self.inotify, self.link.as_c_str(), mask);
        match self.dir {
            Some(dir) => in_dir(dir, add),
            None => add(),
        }
    }
}

/// An inotify watch on a mount's root. It pins neither the mount nor the
/// superblock; `generic_shutdown_super()` reports `IN_UNMOUNT` and then
/// `IN_IGNORED` on it when the superblock shuts down. Dropped before that
/// (the unmount failed, the wait gave up), it removes itself from the
/// instance, so that nothing of it is left for the next watch.
pub struct RootWatch<'a> {
    inotify: &'a Inotify,
    wd: i32,
    /// `IN_IGNORED` was read: the kernel has removed the watch.
    ended: bool,
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

/// `uname -r`: the running kernel's release ("" if uname(2) failed).
pub fn kernel_release() -> String {
    // SAFETY: uname(2) fills the structure it is given, which a zeroed
    // utsname (arrays of chars) is; nothing else is read or written.
    let mut uts: nix::libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid, writable utsname.
    if unsafe { nix::libc::uname(&mut uts) } != 0 {
        return String::new();
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&release).into_owned()
}

impl RootWatch<'_> {
    /// Keeps the watch in its instance beyond this guard
    /// ([`Inotify::keep`]): its watch descriptor.
    pub fn keep(self) -> i32 {
        let inotify = self.inotify;
        inotify.keep(self)
    }

    /// The instance's descriptor, readable when events are queued.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inotify.fd.as_fd()
    }

    /// Reads the events queued so far without blocking, adding this watch's
    /// to `seen`; those of kept watches are kept ([`Inotify::keep`]), those
    /// of ended watches dropped.
    pub fn read_events(&mut self, seen: &mut WatchEvents) -> Result<(), Errno> {
        self.inotify.read_queued(Waited::Own(self.wd, seen))?;
        self.ended |= seen.ignored;
        Ok(())
    }
}

impl Drop for RootWatch<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // EINVAL when the kernel removed it already (IN_IGNORED queued
            // but not read): either way it is gone.
            let _ = inotify::remove_watch(&self.inotify.fd, self.wd);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `struct dm_ioctl` is 312 bytes, and `DM_DEV_STATUS` is the number
    /// `dmsetup` uses (linux/dm-ioctl.h on x86-64).
    #[test]
    fn the_device_mapper_status_request_is_the_kernels() {
        assert_eq!(std::mem::size_of::<DmIoctl>(), 312);
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        assert_eq!(DM_DEV_STATUS, 0xC138_FD07);
        // `huge_encode_dev()` of 253:300, as the kernel decodes it.
        let (major, minor) = (253u64, 300u64);
        let huge = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
        assert_eq!(rustix::fs::makedev(253, 300), huge);
        // Not a device-mapper device: no count asked.
        assert_eq!(dm_open_count(DevId { major: 1, minor: 3 }), None);
    }

    #[test]
    fn namespace_by_pid_or_file() {
        assert_eq!(
            mount_namespace_file(Path::new("42")),
            Path::new("/proc/42/ns/mnt")
        );
        assert_eq!(
            mount_namespace_file(Path::new("/run/netns/x")),
            Path::new("/run/netns/x")
        );
        assert_eq!(mount_namespace_file(Path::new("4x")), Path::new("4x"));
    }

    /// The walk to a mount point's parent follows no symbolic link on the
    /// way (in one `openat2` call where the kernel has it): a directory
    /// on the path exchanged for a link to elsewhere makes it fail, and
    /// the name is looked up in the directory reached.
    /// Issue 25: whether `/proc/self/fd` names handles is asked once for
    /// a run's targets, and again after an unmount at `/proc`, below it
    /// or above it (`/` lazily), which can change the answer.
    #[test]
    fn the_proc_answer_is_kept_until_an_unmount_there() {
        let known = ProcFd::default();
        let usable = known.usable();
        assert_eq!(known.usable.get(), Some(usable));
        for elsewhere in ["/mnt", "/procx", "/run/proc"] {
            known.unmounted(Path::new(elsewhere));
            assert_eq!(known.usable.get(), Some(usable), "{elsewhere}");
        }
        for there in ["/proc", "/proc/sys/fs/binfmt_misc", "/"] {
            known.unmounted(Path::new(there));
            assert_eq!(known.usable.get(), None, "{there}");
            assert_eq!(known.usable(), usable);
        }
    }

    #[test]
    fn the_walk_to_the_parent_follows_no_symbolic_link() {
        let tree = LinkTree::new("walk");
        let reach = Reach::walk(&tree.0.join("real/m")).unwrap();
        assert_eq!(reach.name, Path::new("m"));
        assert!(reach.open(false).is_ok());
        assert!(Reach::walk(&tree.0.join("link/m")).is_err());
    }

    /// A scratch directory for one test, removed when dropped: `real/m`
    /// in it, and `link`, a symbolic link to `real`.
    pub(crate) struct LinkTree(pub PathBuf);

    impl LinkTree {
        pub(crate) fn new(name: &str) -> LinkTree {
            let dir = std::env::temp_dir().join(format!("umw-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("real/m")).unwrap();
            std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
            LinkTree(dir)
        }
    }

    impl Drop for LinkTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;

    /// The watches of the instance on `fd`, as `/proc/self/fdinfo` lists
    /// them.
    fn watches(fd: i32) -> usize {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        info.lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count()
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("umw-sys-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    /// Events read for one kept watch end another: that one is seen to
    /// have ended without a read, though the descriptor polls nothing any
    /// more. Before, a wait for it polled the descriptor and slept to its
    /// deadline (`--all`: a tmpfs settled only at the reserve).
    #[test]
    fn a_watch_ended_by_events_read_for_another_is_seen_so() {
        let first = scratch_dir("kept-first");
        let second = scratch_dir("kept-second");
        let mut inotify = Inotify::new().unwrap();
        let first_fd = open_path(&first, false).unwrap();
        let first_wd = inotify.watch_root(first_fd.as_fd(), true).unwrap().keep();
        let second_fd = open_path(&second, false).unwrap();
        let second_wd = inotify.watch_root(second_fd.as_fd(), true).unwrap().keep();
        drop((first_fd, second_fd));
        std::fs::remove_dir(&second).unwrap();
        // The first watch's read takes the second's IN_IGNORED along.
        assert!(!inotify.take_events(first_wd).unwrap().ignored);
        let mut fds = [nix::poll::PollFd::new(
            inotify.fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        assert_eq!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap(),
            0
        );
        assert!(inotify.ended_already(second_wd));
        assert!(!inotify.ended_already(first_wd));
        inotify.end_watch(first_wd);
        std::fs::remove_dir(&first).unwrap();
    }

    #[test]
    fn one_instance_serves_root_watches_one_after_another() {
        let first = scratch_dir("first");
        let second = scratch_dir("second");
        let mut inotify = Inotify::new().unwrap();
        let fd = inotify.fd.as_raw_fd();

        // Given up before IN_IGNORED (a failed unmount, a timeout): the
        // watch is removed with it.
        let first_fd = open_path(&first, false).unwrap();
        let watch = inotify.watch_root(first_fd.as_fd(), true).unwrap();
        assert_eq!(watches(fd), 1);
        drop(watch);
        assert_eq!(watches(fd), 0);

        // The removal queued IN_IGNORED for the first watch; the next one
        // does not take it for its own.
        let second_fd = open_path(&second, false).unwrap();
        let mut watch = inotify.watch_root(second_fd.as_fd(), true).unwrap();
        drop(second_fd);
        let mut seen = WatchEvents::default();
        watch.read_events(&mut seen).unwrap();
        assert_eq!(seen, WatchEvents::default());

        // Its own end is seen, and the kernel has removed it already.
        std::fs::remove_dir(&second).unwrap();
        watch.read_events(&mut seen).unwrap();
        assert!(seen.ignored && !seen.unmounted && !seen.overflow);
        drop(watch);
        assert_eq!(watches(fd), 0);
        std::fs::remove_dir(&first).unwrap();
    }
}
