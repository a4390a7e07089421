//! What `-r` (and `--all`) do when a filesystem cannot be shut down: make
//! it read-only, here when the unmount is refused, or in a holder's mount
//! namespace when the wait ends unconfirmed. Under `--all`, where
//! read-only is refused too, the last resort: `FS_IOC_SHUTDOWN` with a
//! log flush ([`sys::shut_down_filesystem`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::fallback::Opened;
use super::Options;
use crate::blockers::{self, Blocker};
use crate::mountinfo::Mount;
use crate::outcome::{Error, ErrorKind, Outcome, Report};
use crate::sys;
use crate::target::{self, Target};

/// The unmount failed with `errno` (EBUSY): makes the target read-only
/// through a handle checked to be its mount ([`checked_root`]), never by
/// path.
///
/// - Where another mount of the filesystem stays (`options.this_mount_only`:
///   a bind mount that was not selected), only this mount becomes
///   read-only (`mount_setattr(2)`): the filesystem is not ours to stop,
///   and neither its superblock nor `FS_IOC_SHUTDOWN` is touched.
/// - Otherwise the filesystem becomes read-only (`fspick(2)` and a
///   reconfiguration that changes `SB_RDONLY` alone), then the mount too,
///   its other attributes kept (nosuid, nodev, noexec). When that is
///   refused and `options` ask for it, the filesystem is shut down in
///   place, unless a swap file in use lives on it (its pages could no
///   longer be read back).
pub(super) fn remount_busy(
    target: &Target,
    options: &Options<'_>,
    report: Report,
    errno: Errno,
) -> Result<Report, Error> {
    // What held it: a filesystem left read-write names them as a busy
    // one does.
    let held = report.blockers.clone();
    remount_refused_or(target, options, report, errno).map_err(|mut e| {
        if e.blockers.is_empty() {
            e.blockers = held;
        }
        e
    })
}

/// [`remount_busy`], its errors without the holders.
fn remount_refused_or(
    target: &Target,
    options: &Options<'_>,
    mut report: Report,
    errno: Errno,
) -> Result<Report, Error> {
    let refused = |e| Error::from_errno(&target.given, "remounting read-only", e);
    let mount = match checked_root(&target.path, &target.mount) {
        Ok(mount) => mount,
        Err(Errno::STALE) => return Err(Error::new(&target.given, ErrorKind::Moved, None)),
        Err(e) => return Err(refused(e)),
    };
    let refused = |e| match e {
        Errno::TIMEDOUT => Error::new(
            &target.given,
            ErrorKind::GivenUp("remounting read-only"),
            None,
        ),
        e => refused(e),
    };
    // A filesystem a daemon or a server answers for (FUSE, NFS): its
    // reconfiguration syncs, and a daemon that does not answer would hold
    // the run for ever; this mount alone, which needs no sync.
    if options.this_mount_only.is_some() || target.mount.may_not_answer() {
        sys::make_mount_read_only(mount.as_fd()).map_err(refused)?;
        report.outcome = Outcome::MountReadOnly {
            errno,
            still_mounted_at: options.this_mount_only.map(Path::to_path_buf),
        };
        return Ok(report);
    }
    let refusal = match reconfigure(target, options, mount.as_fd()) {
        Ok(()) => {
            // The filesystem is read-only; the mount says so too. Its
            // refusal changes nothing that matters.
            let _ = sys::make_mount_read_only(mount.as_fd());
            report.outcome = Outcome::RemountedReadOnly(errno);
            return Ok(report);
        }
        Err(e) => e,
    };
    // A remount given up at the deadline sleeps on in the sync that the
    // ioctl's log flush would wait for too.
    if refusal == Errno::TIMEDOUT
        || !options.shut_down_if_read_only_fails
        || blockers::swap_file_on(&target.mount)
    {
        return Err(refused(refusal));
    }
    // Opened here: the child makes the one ioctl.
    let dir = match sys::reopen_dir(mount.as_fd()) {
        Ok(dir) => dir,
        Err(_) => return Err(refused(refusal)),
    };
    match bounded(target, options, || sys::shut_down_dir(dir.as_fd())) {
        Ok(()) => {
            report.outcome = Outcome::ShutDownByIoctl(refusal);
            Ok(report)
        }
        Err(_) => Err(refused(refusal)),
    }
}

/// `--all`, before the unmount of a filesystem's last mount in view:
/// makes the filesystem read-only through a handle checked to be that
/// mount (`SB_RDONLY` alone, as [`remount_busy`]). A holder that keeps it
/// alive where no scan can reach (a copy covered by another mount in a
/// user namespace of its own, a thread whose leader has exited) then keeps
/// a read-only filesystem, which a reboot finds clean. Refused (a file open
/// for writing, a filesystem that cannot be read-only) or not reached:
/// the unmount goes on as before. Never for a filesystem that a daemon or
/// a server answers for, whose sync could hang the run, nor for one in
/// memory alone ([`Mount::in_memory`]: tmpfs, proc): a reboot finds
/// nothing of it, and a holder out of view (a container's service) may
/// still write to it. Whether it was made read-only; Err when the remount was given up at
/// the deadline ([`bounded`]): the filesystem's I/O does not complete,
/// and its unmount would wait the same way. The handles checked are
/// given back for the unmount that follows (the fallback path's), which
/// would otherwise look the mount up again.
pub(super) fn before_unmount(
    target: &Target,
    options: &Options<'_>,
) -> Result<(bool, Option<Opened>), Error> {
    if target.mount.may_not_answer() {
        return Ok((false, None));
    }
    // Checked as [`checked_root`] checks (the same mount id, a mount
    // root, the filesystem's device), its parent's handle kept.
    let Ok(opened) = Opened::open(target) else {
        return Ok((false, None));
    };
    if target.mount.in_memory() {
        return Ok((false, Some(opened)));
    }
    let made = match reconfigure(target, options, opened.root.as_fd()) {
        Ok(()) => true,
        Err(Errno::TIMEDOUT) => {
            return Err(Error::new(
                &target.given,
                ErrorKind::GivenUp("remounting read-only"),
                None,
            ))
        }
        Err(_) => false,
    };
    Ok((made, Some(opened)))
}

/// [`sys::reconfigure_read_only`], which syncs the filesystem first,
/// made as [`bounded`] says.
fn reconfigure(target: &Target, options: &Options<'_>, mount: BorrowedFd<'_>) -> Result<(), Errno> {
    bounded(target, options, || sys::reconfigure_read_only(mount))
}

/// `step` (one that writes back: a read-only reconfiguration, the
/// ioctl's log flush): for a filesystem whose I/O can stall
/// ([`Mount::may_stall`]) and where `options` bound the run, in a child
/// process waited for until `--timeout` (from now) or the cancellation,
/// and given up after that if it sleeps on past SIGKILL: ETIMEDOUT, the
/// step perhaps still to happen. `step` runs in the child: raw system
/// calls on handles opened before, nothing else.
fn bounded(
    target: &Target,
    options: &Options<'_>,
    step: impl FnOnce() -> Result<(), Errno>,
) -> Result<(), Errno> {
    if !target.mount.may_stall() {
        return step();
    }
    let deadline = options
        .timeout
        .map(|t| crate::duration::deadline(Instant::now(), t.max(STEP_MIN)));
    super::step_in_child(deadline, options.cancel, step)
}

/// The least time a bounded step is given, though the run's deadline be
/// nearer (`--all` remounts at its deadline what it could not unmount): a
/// healthy disk's sync takes milliseconds.
const STEP_MIN: Duration = Duration::from_secs(1);

/// An `O_PATH` handle on `path` (a final symbolic link not followed), if
/// it leads to the root of `mount` itself: the same mount id, and a
/// filesystem with `mount`'s device. A mount stacked on the mount point
/// since, or one a user put where the path now leads (a directory
/// exchanged for a symbolic link), must not be acted on in its place; nor
/// a mount that was given the id of `mount` once that one was gone (mount
/// ids are reused). ESTALE when it is not that mount.
pub(super) fn checked_root(path: &Path, mount: &Mount) -> Result<OwnedFd, Errno> {
    let handle = sys::open_path(path, false)?;
    let st = sys::stat_fd(handle.as_fd())?;
    if st.mount_id != mount.id || !st.is_mount_root || !target::same_filesystem(st.dev, mount) {
        return Err(Errno::STALE);
    }
    Ok(handle)
}

/// A filesystem that outlived its wait is detached here but still mounted
/// in some holder's mount namespace: makes it read-only there, through
/// `/proc/PID/root/MOUNT_POINT` (`fspick(2)`, which unlike `MS_REMOUNT`
/// reaches another namespace's mount). A reboot then finds it clean, its
/// journal committed, though it never shut down. Tries each holder in turn;
/// returns the one it worked through. Where no holder's mount can be made
/// read-only and `options` ask for it, shuts the filesystem down through
/// the first holder's mount that can be reached: the outcome then says so.
///
/// The path is opened once (`O_PATH`) and must lead to the root of that
/// very mount (its mount id): a mount the holder stacked on the mount
/// point would be reached instead, and it must not be made read-only by
/// mistake. The reconfiguration goes through the handle checked.
pub(super) fn elsewhere(options: &Options<'_>, report: &mut Report) {
    let mut refused = None;
    for blocker in &report.blockers {
        let Blocker::Mount {
            pid,
            mount_id,
            mount_point,
            ..
        } = blocker
        else {
            continue;
        };
        let inside = mount_point.strip_prefix("/").unwrap_or(mount_point);
        let path = Path::new("/proc")
            .join(pid.to_string())
            .join("root")
            .join(inside);
        let Ok(mount) = checked_root(&path, &holder_mount(&report.mount, *mount_id)) else {
            continue;
        };
        match sys::reconfigure_read_only(mount.as_fd()) {
            Ok(()) => {
                report.read_only_through = Some(blocker.clone());
                return;
            }
            Err(e) => refused = refused.or(Some((blocker.clone(), e, mount))),
        }
    }
    let Some((blocker, errno, mount)) = refused else {
        return;
    };
    if options.shut_down_if_read_only_fails
        && !blockers::swap_file_on(&report.mount)
        && sys::shut_down_filesystem(mount.as_fd()).is_ok()
    {
        report.read_only_through = Some(blocker);
        report.outcome = Outcome::ShutDownByIoctl(errno);
    }
}

/// A holder's mount `mount_id` of the filesystem `mount` describes, as
/// [`checked_root`] checks it: the holder's own mount table listed it with
/// this filesystem's device.
fn holder_mount(mount: &Mount, mount_id: u64) -> Mount {
    Mount {
        id: mount_id,
        ..mount.clone()
    }
}
