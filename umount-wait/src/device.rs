//! The block device behind a superblock, found from its `major:minor`.
//!
//! Where the node lives differs: udev makes `/dev/block/M:m`, a busybox
//! initramfs with devtmpfs has `/dev/NAME` (NAME from sysfs `uevent`), and
//! the mount source usually names it too. Each candidate is checked with
//! `stat(2)`: it must be a block device with the same `st_rdev`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::mountinfo::DevId;
use crate::sys;

/// The device name in a sysfs `uevent` file (`DEVNAME=loop0`).
pub fn devname_from_uevent(uevent: &[u8]) -> Option<PathBuf> {
    uevent
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(b"DEVNAME="))
        .filter(|name| !name.is_empty())
        .map(|name| Path::new("/dev").join(OsString::from_vec(name.to_vec())))
}

/// A block device node for `dev`, or None when the superblock has no block
/// device (anonymous `major` 0) or no node for it can be found.
pub fn node_for(dev: DevId, source: &Path) -> Option<PathBuf> {
    if dev.is_anonymous() {
        return None;
    }
    let sysfs = PathBuf::from(format!("/sys/dev/block/{dev}/uevent"));
    let candidates = [
        Some(PathBuf::from(format!("/dev/block/{dev}"))),
        std::fs::read(sysfs)
            .ok()
            .and_then(|u| devname_from_uevent(&u)),
        source.is_absolute().then(|| source.to_path_buf()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|node| matches!(sys::stat_dev(node), Ok((_, Some(rdev))) if rdev == dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devname() {
        let uevent = b"MAJOR=7\nMINOR=0\nDEVNAME=loop0\nDEVTYPE=disk\n";
        assert_eq!(
            devname_from_uevent(uevent),
            Some(PathBuf::from("/dev/loop0"))
        );
        assert_eq!(devname_from_uevent(b"MAJOR=7\n"), None);
        assert_eq!(devname_from_uevent(b"DEVNAME=\n"), None);
        assert_eq!(
            devname_from_uevent(b"DEVNAME=mapper/x"),
            Some(PathBuf::from("/dev/mapper/x"))
        );
    }

    #[test]
    fn anonymous_superblocks_have_no_node() {
        assert_eq!(
            node_for(
                DevId {
                    major: 0,
                    minor: 40
                },
                Path::new("tmpfs")
            ),
            None
        );
    }
}
