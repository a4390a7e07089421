//! What `-r` (and `--all`) do when a filesystem cannot be shut down: make
//! it read-only, here when the unmount is refused, or in a holder's mount
//! namespace when the wait ends unconfirmed.

use std::os::fd::AsFd;
use std::path::Path;

use rustix::io::Errno;

use crate::blockers::Blocker;
use crate::outcome::{Error, Outcome, Report};
use crate::sys;
use crate::target::Target;

/// The unmount failed with `errno` (EBUSY): remounts the target read-only.
pub(super) fn remount_busy(
    target: &Target,
    mut report: Report,
    errno: Errno,
) -> Result<Report, Error> {
    match sys::remount_read_only(&target.path) {
        Ok(()) => {
            report.outcome = Outcome::RemountedReadOnly(errno);
            Ok(report)
        }
        Err(e) => Err(Error::from_errno(&target.given, "remounting read-only", e)),
    }
}

/// A filesystem that outlived its wait is detached here but still mounted
/// in some holder's mount namespace: makes it read-only there, through
/// `/proc/PID/root/MOUNT_POINT` (`fspick(2)`, which unlike `MS_REMOUNT`
/// reaches another namespace's mount). A reboot then finds it clean, its
/// journal committed, though it never shut down. Tries each holder in turn;
/// returns the one it worked through.
///
/// The path is opened once (`O_PATH`) and must lead to the root of that
/// very mount (its mount id): a mount the holder stacked on the mount
/// point would be reached instead, and it must not be made read-only by
/// mistake. The reconfiguration goes through the handle checked.
pub(super) fn elsewhere(blockers: &[Blocker]) -> Option<Blocker> {
    blockers.iter().find_map(|blocker| match blocker {
        Blocker::Mount {
            pid,
            mount_id,
            mount_point,
            ..
        } => {
            let inside = mount_point.strip_prefix("/").unwrap_or(mount_point);
            let path = Path::new("/proc")
                .join(pid.to_string())
                .join("root")
                .join(inside);
            let mount = sys::open_path(&path, false).ok()?;
            let st = sys::stat_fd(mount.as_fd()).ok()?;
            if st.mount_id != *mount_id || !st.is_mount_root {
                return None;
            }
            sys::reconfigure_read_only(mount.as_fd())
                .ok()
                .map(|()| blocker.clone())
        }
        _ => None,
    })
}
