//! What `-r` (and `--all`) do when a filesystem cannot be shut down: make
//! it read-only, here when the unmount is refused, or in a holder's mount
//! namespace when the wait ends unconfirmed. Under `--all`, where
//! read-only is refused too, the last resort: `FS_IOC_SHUTDOWN` with a
//! log flush ([`sys::shut_down_filesystem`]).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::io::Errno;

use super::Options;
use crate::blockers::{self, Blocker};
use crate::outcome::{Error, Outcome, Report};
use crate::sys;
use crate::target::Target;

/// The unmount failed with `errno` (EBUSY): remounts the target read-only;
/// when that is refused and `options` ask for it, shuts it down in place,
/// unless a swap file in use lives on it (its pages could no longer be
/// read back).
pub(super) fn remount_busy(
    target: &Target,
    options: &Options<'_>,
    mut report: Report,
    errno: Errno,
) -> Result<Report, Error> {
    let refused = match sys::remount_read_only(&target.path) {
        Ok(()) => {
            report.outcome = Outcome::RemountedReadOnly(errno);
            return Ok(report);
        }
        Err(e) => e,
    };
    let error = Error::from_errno(&target.given, "remounting read-only", refused);
    if !options.shut_down_if_read_only_fails || blockers::swap_file_on(&target.mount) {
        return Err(error);
    }
    let Ok(mount) = checked_root(&target.path, target.follow, target.mount.id) else {
        return Err(error);
    };
    match sys::shut_down_filesystem(mount.as_fd()) {
        Ok(()) => {
            report.outcome = Outcome::ShutDownByIoctl(refused);
            Ok(report)
        }
        Err(_) => Err(error),
    }
}

/// An `O_PATH` handle on `path`, if it leads to the root of the mount
/// `mount_id`: a mount stacked on the mount point since must not be acted
/// on in its place.
fn checked_root(path: &Path, follow: bool, mount_id: u64) -> Result<OwnedFd, Errno> {
    let mount = sys::open_path(path, follow)?;
    let st = sys::stat_fd(mount.as_fd())?;
    if st.mount_id != mount_id || !st.is_mount_root {
        return Err(Errno::STALE);
    }
    Ok(mount)
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
        let Ok(mount) = checked_root(&path, false, *mount_id) else {
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
