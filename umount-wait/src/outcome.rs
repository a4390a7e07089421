//! What happened to a target: a [`Report`] when the unmount went through, an
//! [`Error`] when it did not, each saying the state the filesystem was left in.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rustix::io::Errno;

use crate::blockers::Blocker;
use crate::mountinfo::{self, Mount};

/// How the wait for shutdown is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitPath {
    /// `umount2(target, flags | UMOUNT_WAIT)`: the kernel waits.
    Kernel,
    /// `umount2(target, flags | UMOUNT_NOTIFY)`: the kernel returns a
    /// descriptor that polls readable once the superblock is dead.
    Notify,
    /// inotify `IN_UNMOUNT` on the mount root, then the block device claim.
    Fallback,
}

impl WaitPath {
    pub fn name(self) -> &'static str {
        match self {
            WaitPath::Kernel => "kernel",
            WaitPath::Notify => "notify",
            WaitPath::Fallback => "fallback",
        }
    }
}

/// The state a target was left in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing was changed.
    Untouched,
    /// The mount is gone, but the filesystem may still be running.
    Detached,
    /// The unmount failed and the filesystem was remounted read-only.
    ReadOnly,
    /// The filesystem is shut down.
    ShutDown,
    /// This mount is gone; the filesystem is still mounted elsewhere.
    Unmounted,
    /// Neither unmounted nor made read-only: shut down in place with
    /// `FS_IOC_SHUTDOWN`, its log flushed; every later write fails.
    ShutDownByIoctl,
    /// Still mounted when the step that unmounts it was given up, asleep
    /// in the kernel past SIGKILL: it may still be detached when that
    /// sleep ends.
    Unknown,
}

impl State {
    pub fn describe(self) -> &'static str {
        match self {
            State::Untouched => "untouched",
            State::Detached => "detached, shutdown not confirmed",
            State::ReadOnly => "still mounted, remounted read-only",
            State::ShutDown => "shut down",
            State::Unmounted => "unmounted, filesystem still mounted elsewhere",
            State::ShutDownByIoctl => "still mounted, shut down by FS_IOC_SHUTDOWN, log flushed",
            State::Unknown => "still mounted for now, state unknown: the unmount may still happen",
        }
    }
}

/// Why a detached filesystem's shutdown was not confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unconfirmed {
    /// `--timeout` expired.
    Timeout(Duration),
    /// The caller cancelled the wait (its [`crate::Cancel`] handle: the
    /// binary's SIGINT or SIGTERM).
    Cancelled,
    /// The kernel path's child was killed by this signal, not by us (0: its
    /// call was interrupted, EINTR).
    Signal(i32),
    /// The superblock shut down, but the block device stayed claimed by
    /// someone else until the deadline.
    DeviceClaimed,
    /// The fallback could not watch the mount root (inotify missing, its
    /// instance or watch limit reached: the errno), so the shutdown could
    /// not be seen, and no block device's claim confirmed it (there is
    /// none, or it stayed claimed).
    NoWatch(Errno),
    /// The fallback's watch ended without `IN_UNMOUNT`: the mount's root had
    /// been deleted, and the filesystem stays mounted in another namespace,
    /// whose end nothing is left to report.
    RootDeleted,
    /// The fallback's watch ended without `IN_UNMOUNT` (the mount's root
    /// had been deleted), no mount of the filesystem is in view, and there
    /// is no block device whose claim could confirm the shutdown: a
    /// holder out of view (a mount namespace this process cannot see, a
    /// mount covered by another) may keep it alive, and nothing says
    /// which.
    RootDeletedUnseen,
    /// No `--timeout`, and for [`crate::wait::OUT_OF_VIEW_GRACE`] nothing
    /// that holds the filesystem was visible from here: another pid
    /// namespace (a container's host), a mount namespace out of reach, or
    /// the kernel itself keeps it.
    HeldOutOfView,
    /// The step that unmounted it (in a child process) did not end within
    /// [`crate::child::KILL_GRACE`] of SIGKILL: asleep in the kernel on a
    /// device or a daemon that does not answer. Given up, left to end on
    /// its own.
    GivenUp,
    /// As [`Unconfirmed::HeldOutOfView`], where `/proc` is not mounted:
    /// no holder could be looked for at all.
    HeldWithoutProc,
    /// The fallback saw `IN_UNMOUNT` of a network filesystem
    /// ([`crate::mountinfo::NETWORK_TYPES`]) on a kernel that sends it
    /// before the filesystem's final writeback (Linux 7.0 and later): the
    /// last writes to the server may still have been to come, and nothing
    /// later can be seen.
    BeforeWriteback,
}

impl fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unconfirmed::Timeout(d) => write!(f, "timed out after {}", crate::duration::show(*d)),
            Unconfirmed::Cancelled => write!(f, "cancelled"),
            Unconfirmed::Signal(sig) => write!(f, "interrupted by {}", signal_name(*sig)),
            Unconfirmed::NoWatch(errno) => write!(
                f,
                "no inotify watch on the mount root ({}), so its shutdown could not be seen, \
                 and no block device claim confirmed it",
                std::io::Error::from_raw_os_error(errno.raw_os_error())
            ),
            Unconfirmed::RootDeleted => write!(
                f,
                "the mount's root was deleted, so the watch on it ended with it; \
                 the filesystem stays mounted in another mount namespace"
            ),
            Unconfirmed::RootDeletedUnseen => write!(
                f,
                "the mount's root was deleted, so the watch on it ended without IN_UNMOUNT; \
                 no mount of the filesystem is in view and no block device claim can confirm \
                 its shutdown"
            ),
            Unconfirmed::HeldOutOfView => write!(
                f,
                "held where this process cannot see (another pid namespace, the host of a \
                 container, or the kernel): nothing that holds it was visible for {}; \
                 --timeout waits longer",
                crate::duration::show(crate::wait::OUT_OF_VIEW_GRACE)
            ),
            Unconfirmed::GivenUp => write!(
                f,
                "the unmount did not end: it sleeps in the kernel past SIGKILL (a device or a \
                 daemon that does not answer), and was left to end on its own"
            ),
            Unconfirmed::BeforeWriteback => write!(
                f,
                "this kernel (Linux 7.0 and later) sends a network filesystem's IN_UNMOUNT \
                 before its final writeback: its last writes to the server may still be under \
                 way, and nothing later shows their end"
            ),
            Unconfirmed::HeldWithoutProc => write!(
                f,
                "held where this process cannot see: /proc is not mounted, so what holds it \
                 could not be looked for, and it was still held after {}; --timeout waits longer",
                crate::duration::show(crate::wait::OUT_OF_VIEW_GRACE)
            ),
            Unconfirmed::DeviceClaimed => {
                write!(
                    f,
                    "the filesystem shut down but its block device is still claimed"
                )
            }
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

/// How an unmount that went through ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Unmounted and the filesystem is shut down.
    ShutDown,
    /// Detached; the filesystem may still be running.
    DetachedUnconfirmed(Unconfirmed),
    /// The unmount failed (the errno says why) and `--read-only` remounted the
    /// filesystem read-only instead.
    RemountedReadOnly(Errno),
    /// The unmount failed (the errno says why) and `--read-only` made this
    /// mount read-only, this mount alone: its filesystem stays writable,
    /// mounted at `still_mounted_at`, a mount that was not selected; or
    /// (`None`) a daemon or a server answers for the filesystem, whose
    /// sync on a read-only reconfiguration could hang the run.
    MountReadOnly {
        errno: Errno,
        still_mounted_at: Option<PathBuf>,
    },
    /// `--all`: the mount that holds this process's root, never unmounted,
    /// remounted read-only.
    RootReadOnly,
    /// `--all`: the filesystem could not be made read-only (the errno says
    /// why), here or where it lives on, and was shut down in place with
    /// `FS_IOC_SHUTDOWN` after a log flush, the last resort.
    ShutDownByIoctl(Errno),
    /// `--all`: this mount is gone, but its filesystem stays mounted at
    /// `still_mounted_at` (a bind mount, or a mount `--all` did not select),
    /// so there is no shutdown to wait for; it comes with that last mount.
    Unmounted { still_mounted_at: PathBuf },
}

impl Outcome {
    /// The name scripts see in `--json`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::ShutDown => "shut_down",
            Outcome::DetachedUnconfirmed(_) => "detached_unconfirmed",
            Outcome::RemountedReadOnly(_) | Outcome::RootReadOnly => "remounted_read_only",
            Outcome::MountReadOnly { .. } => "mount_read_only",
            Outcome::Unmounted { .. } => "unmounted",
            Outcome::ShutDownByIoctl(_) => "shut_down_by_ioctl",
        }
    }

    pub fn state(&self) -> State {
        match self {
            Outcome::ShutDown => State::ShutDown,
            Outcome::DetachedUnconfirmed(_) => State::Detached,
            Outcome::RemountedReadOnly(_)
            | Outcome::RootReadOnly
            | Outcome::MountReadOnly { .. } => State::ReadOnly,
            Outcome::Unmounted { .. } => State::Unmounted,
            Outcome::ShutDownByIoctl(_) => State::ShutDownByIoctl,
        }
    }
}

/// One unmounted target.
#[derive(Clone, Debug)]
pub struct Report {
    /// The target as given on the command line.
    pub target: PathBuf,
    /// The mount as it was before unmounting.
    pub mount: Mount,
    /// The block device nodes checked for their claims: the one a block
    /// filesystem is on, or every member device of a btrfs; none for a
    /// filesystem without block devices.
    pub device_nodes: Vec<PathBuf>,
    pub path: WaitPath,
    pub outcome: Outcome,
    /// Time spent in `umount2(2)` (on the kernel path this includes the wait).
    pub umount_time: Duration,
    /// Time spent waiting after `umount2(2)` returned (fallback path).
    pub wait_time: Duration,
    /// Attempts to open the block device with `O_EXCL` before it was free.
    pub claim_attempts: u32,
    /// What kept the filesystem alive, when the wait lasted or failed.
    pub blockers: Vec<Blocker>,
    /// Detached but not confirmed, then made read-only through this holder's
    /// mount of it (`-r`, `--all`): alive, but with nothing left to write.
    /// Under `--all`, when that failed, shut down through it instead
    /// ([`Outcome::ShutDownByIoctl`]).
    pub read_only_through: Option<Blocker>,
    /// Records of the kernel log during the run that name the filesystem's
    /// block device and say "error" ([`crate::kmsg`]): a filesystem shut
    /// down after its final writeback failed.
    pub kernel_errors: Vec<String>,
    /// The filesystem was frozen from userspace (`fsfreeze -f`) and was
    /// thawed before the unmount: a frozen filesystem holds itself alive,
    /// and its unmount would only have detached it.
    pub thawed: bool,
    /// The kernel's names of the filesystem's block device, read before
    /// the unmount ([`crate::kmsg::names_of`]); empty for a filesystem
    /// without one.
    pub device_names: Vec<String>,
    /// The block device went away during the run (a disk removed): the
    /// filesystem shut down without it, and what it had not written is
    /// lost.
    pub device_removed: bool,
    /// Device-mapper devices of the filesystem that something still had
    /// open when the wait ended, [`crate::wait::DEVICE_CLOSE_GRACE`] past
    /// the claim (fallback path): `dmsetup remove` and `cryptsetup close`
    /// would fail with EBUSY now.
    pub device_still_open: Vec<PathBuf>,
}

/// What went wrong with a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An empty argument.
    Empty,
    /// A relative path: refused, so that what is unmounted does not depend on
    /// the working directory.
    NotAbsolute,
    /// The same mount named twice (possibly through different paths).
    Duplicate {
        first: PathBuf,
    },
    /// With `-R`: a target inside the tree of another target, which
    /// unmounts it with that tree.
    InsideTree {
        tree: PathBuf,
    },
    NotFound,
    NotMountPoint,
    /// A symbolic link with `--no-follow`.
    Symlink,
    PermissionDenied,
    /// `umount2(2)` refused the caller (EPERM): umount(8)'s "must be
    /// superuser to unmount".
    NotSuperuser,
    /// `umount2(2)` refused a user a mount that `/etc/fstab` lets users
    /// unmount (`user`, `users`): umount(8), setuid, does it for them.
    UserMount,
    /// `umount2(2)` refused a user that user's own FUSE mount, and no
    /// `fusermount` is installed to unmount it with.
    OwnFuse,
    /// The kernel refused to unmount: still in use.
    Busy,
    /// This process's root or working directory is on the target's
    /// filesystem, which therefore could not shut down while it waits:
    /// refused before anything changes (`UMOUNT_WAIT`'s EDEADLK, and the
    /// same refusal on the fallback path).
    PinnedByCaller,
    /// `--mode kernel` on a kernel without `UMOUNT_WAIT`.
    NoKernelSupport,
    /// `--mode notify` on a kernel without `UMOUNT_NOTIFY`.
    NoNotifySupport,
    /// A submount (with `--recursive`) could not be unmounted.
    SubmountFailed {
        submount: PathBuf,
    },
    /// The caller cancelled before this target was touched.
    Interrupted,
    /// `--all`: the mount point shows another mount on top: this mount
    /// cannot be reached by its path.
    Covered,
    /// The path leads to another mount than the one resolved (moved,
    /// unmounted or covered since): not unmounted, so as not to act on a
    /// mount nobody named.
    Moved,
    /// `--all`: the deadline (`--timeout`) came before this mount's turn.
    DeadlineReached,
    /// A tag (`LABEL=`, `UUID=`...) carried by `count` mounted
    /// filesystems (cloned disks): it does not say which to unmount.
    AmbiguousTag {
        count: usize,
    },
    /// A tag with `-N`: the entered namespace's `/dev` and `PATH` are its
    /// maker's, and would decide what the tag names.
    TagInNamespace,
    /// A step made in a child process (the unmount, before the mount was
    /// detached; a read-only remount) was still asleep in the kernel past
    /// SIGKILL at the deadline: given up, it may yet do its work (an
    /// unmount: [`State::Unknown`]). The text names the step.
    GivenUp(&'static str),
    /// A system call failed; the text says which step.
    System(&'static str),
    /// The unmount helper (`/sbin/umount.TYPE`) failed: its exit status
    /// (or 128 + the signal that killed it) is the command's, as
    /// umount(8)'s.
    HelperFailed {
        program: PathBuf,
        status: i32,
    },
    /// The unmount helper could not be started (umount(8)'s 126).
    HelperNotRun {
        program: PathBuf,
    },
}

/// A target that could not be unmounted and shut down.
#[derive(Clone, Debug)]
pub struct Error {
    pub target: PathBuf,
    pub kind: ErrorKind,
    pub errno: Option<Errno>,
    pub state: State,
    /// What held the filesystem, when that is known (a busy unmount).
    pub blockers: Vec<Blocker>,
    /// `--all`: the filesystem was made read-only before this unmount was
    /// tried ([`crate::Options::read_only_first`]); "untouched" then means
    /// still mounted, read-only.
    pub made_read_only: bool,
}

impl Error {
    pub fn new(target: impl Into<PathBuf>, kind: ErrorKind, errno: Option<Errno>) -> Self {
        Error {
            target: target.into(),
            kind,
            errno,
            state: State::Untouched,
            blockers: Vec::new(),
            made_read_only: false,
        }
    }

    /// Classifies a failed step (`step` says which, for the message). Only
    /// the errnos that mean the same thing at every step get their own kind.
    pub fn from_errno(target: impl Into<PathBuf>, step: &'static str, errno: Errno) -> Self {
        let kind = match errno {
            Errno::NOENT => ErrorKind::NotFound,
            Errno::PERM | Errno::ACCESS => ErrorKind::PermissionDenied,
            _ => ErrorKind::System(step),
        };
        Error::new(target, kind, Some(errno))
    }

    /// Classifies a failed `umount2(2)`: nothing was changed.
    pub fn from_unmount(target: impl Into<PathBuf>, errno: Errno) -> Self {
        let kind = match errno {
            Errno::BUSY => ErrorKind::Busy,
            Errno::DEADLK => ErrorKind::PinnedByCaller,
            Errno::PERM => ErrorKind::NotSuperuser,
            // The path is not (any more) a mount point.
            Errno::INVAL => ErrorKind::NotMountPoint,
            _ => return Error::from_errno(target, "unmounting", errno),
        };
        Error::new(target, kind, Some(errno))
    }

    pub fn with_state(mut self, state: State) -> Self {
        self.state = state;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", mountinfo::display(&self.target))?;
        match &self.kind {
            ErrorKind::Empty => write!(f, "empty target")?,
            ErrorKind::NotAbsolute => write!(f, "not an absolute path")?,
            ErrorKind::Duplicate { first } => write!(
                f,
                "same mount as {}, given twice",
                mountinfo::display(first)
            )?,
            ErrorKind::InsideTree { tree } => write!(
                f,
                "inside the tree of {}, which -R unmounts with it (given twice)",
                mountinfo::display(tree)
            )?,
            ErrorKind::NotFound => write!(f, "no such file or directory")?,
            // umount(8)'s words, which scripts look for.
            ErrorKind::NotMountPoint => write!(f, "not mounted")?,
            ErrorKind::Symlink => write!(f, "is a symbolic link, not followed (--no-follow)")?,
            ErrorKind::PermissionDenied => write!(f, "permission denied")?,
            ErrorKind::NotSuperuser => write!(f, "must be superuser to unmount")?,
            ErrorKind::UserMount => write!(
                f,
                "must be superuser to unmount: /etc/fstab lets users unmount it, \
                 which umount(8) does for them as it is setuid; umount-wait is not \
                 (run umount(8), or umount-wait as root)"
            )?,
            ErrorKind::OwnFuse => write!(
                f,
                "must be superuser to unmount: it is your own FUSE mount, and no \
                 fusermount is installed to unmount it with (fusermount -u, from \
                 the fuse3 package; umount-wait is not setuid)"
            )?,
            ErrorKind::Busy => write!(f, "target is busy")?,
            ErrorKind::PinnedByCaller => write!(
                f,
                "this process's root or working directory is on this filesystem: \
                 it could not shut down while we wait"
            )?,
            ErrorKind::NoKernelSupport => {
                write!(f, "--mode kernel: this kernel has no UMOUNT_WAIT")?
            }
            ErrorKind::NoNotifySupport => {
                write!(f, "--mode notify: this kernel has no UMOUNT_NOTIFY")?
            }
            ErrorKind::SubmountFailed { submount } => write!(
                f,
                "submount {} could not be unmounted",
                mountinfo::display(submount)
            )?,
            ErrorKind::Interrupted => write!(f, "interrupted before unmounting")?,
            ErrorKind::Covered => write!(f, "covered by another mount, not reachable")?,
            ErrorKind::Moved => write!(
                f,
                "the path leads to another mount than the one looked up (moved or replaced)"
            )?,
            ErrorKind::DeadlineReached => write!(f, "deadline reached before unmounting")?,
            ErrorKind::TagInNamespace => write!(
                f,
                "a tag is not looked up in another mount namespace (-N), whose /dev is its \
                 maker's: name the mount point"
            )?,
            ErrorKind::AmbiguousTag { count } => write!(
                f,
                "{count} mounted filesystems carry this tag (cloned disks or images): \
                 name the mount point instead"
            )?,
            ErrorKind::GivenUp(step) => write!(
                f,
                "deadline reached while {step}: it sleeps in the kernel past SIGKILL (a \
                 device or a daemon that does not answer), and was left to end on its own"
            )?,
            ErrorKind::HelperFailed { program, status } => write!(
                f,
                "{} failed with exit status {status}",
                mountinfo::display(program)
            )?,
            ErrorKind::HelperNotRun { program } => {
                write!(f, "failed to execute {}", mountinfo::display(program))?;
                if let Some(errno) = self.errno {
                    write!(
                        f,
                        ": {}",
                        std::io::Error::from_raw_os_error(errno.raw_os_error())
                    )?;
                }
            }
            ErrorKind::System(step) => {
                write!(f, "{step}")?;
                if let Some(errno) = self.errno {
                    write!(
                        f,
                        ": {}",
                        std::io::Error::from_raw_os_error(errno.raw_os_error())
                    )?;
                }
            }
        }
        match self.state {
            State::Untouched if self.made_read_only => write!(
                f,
                " (still mounted, made read-only before the unmount was tried)"
            ),
            state => write!(f, " ({})", state.describe()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_target_and_state() {
        let e = Error::new("/mnt/a\nb", ErrorKind::NotMountPoint, Some(Errno::INVAL));
        assert_eq!(e.to_string(), "'/mnt/a\\nb': not mounted (untouched)");
        let e = Error::from_errno("/mnt/x", "reading the inotify watch", Errno::IO)
            .with_state(State::Detached);
        assert!(e
            .to_string()
            .starts_with("/mnt/x: reading the inotify watch: "));
        assert!(e
            .to_string()
            .ends_with("(detached, shutdown not confirmed)"));
    }

    #[test]
    fn errno_classification() {
        let kind = |errno| Error::from_unmount("/x", errno).kind;
        assert_eq!(kind(Errno::PERM), ErrorKind::NotSuperuser);
        assert_eq!(kind(Errno::BUSY), ErrorKind::Busy);
        assert_eq!(kind(Errno::DEADLK), ErrorKind::PinnedByCaller);
        assert_eq!(kind(Errno::INVAL), ErrorKind::NotMountPoint);
        assert_eq!(kind(Errno::NOENT), ErrorKind::NotFound);
        assert_eq!(kind(Errno::NOMEM), ErrorKind::System("unmounting"));
        let kind = |errno| Error::from_errno("/x", "adding an inotify watch", errno).kind;
        assert_eq!(
            kind(Errno::INVAL),
            ErrorKind::System("adding an inotify watch")
        );
        assert_eq!(
            kind(Errno::BUSY),
            ErrorKind::System("adding an inotify watch")
        );
    }
}
