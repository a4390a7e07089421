//! The block devices behind a superblock: found from its `major:minor`,
//! or, for a superblock with an anonymous one that holds block devices
//! (btrfs), from the mount source and sysfs.
//!
//! Where the node lives differs: udev makes `/dev/block/M:m`, a busybox
//! initramfs with devtmpfs has `/dev/NAME` (NAME from sysfs `uevent`), and
//! the mount source usually names it too. Each candidate is checked to be
//! a block device with the same `st_rdev`, and looked up only inside `/dev`
//! ([`sys::block_device_in_dev`]): a mount source is whatever its mounter
//! chose (a FUSE `fsname`), and a path that leads into a filesystem whose
//! daemon does not answer would hang the lookup for ever.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::mountinfo::{DevId, Mount};
use crate::sys;

/// Where btrfs lists each filesystem's member devices:
/// `/sys/fs/btrfs/<fsid>/devices/<name>/dev` holds `major:minor`.
pub const BTRFS_SYSFS: &str = "/sys/fs/btrfs";

/// The block device nodes whose exclusive claims go only when `mount`'s
/// filesystem has let go, found before it is unmounted (btrfs removes its
/// sysfs directory when it closes):
///
/// - a superblock on a block device: that device;
/// - btrfs, whose `s_dev` is anonymous: every member device, from
///   [`BTRFS_SYSFS`], the filesystem being the one whose members include
///   the mount source. `IN_UNMOUNT` comes before btrfs's `->put_super()`
///   (`close_ctree()`: the last commit, the devices closed), so the claims
///   are what says it is done;
/// - any other anonymous superblock whose mount source is a block device
///   node: that device.
///
/// Empty for filesystems without block devices (tmpfs, proc, NFS).
pub fn nodes_for(mount: &Mount) -> Vec<PathBuf> {
    let source = Path::new(&mount.source);
    if !mount.dev.is_anonymous() {
        return node_for(mount.dev, source).into_iter().collect();
    }
    let Some(source_dev) = block_device_of(source) else {
        return Vec::new();
    };
    let members = match mount.fstype.as_str() {
        "btrfs" => btrfs_members(Path::new(BTRFS_SYSFS), source_dev),
        _ => None,
    }
    .unwrap_or_else(|| vec![source_dev]);
    members
        .into_iter()
        .filter_map(|dev| node_for(dev, source))
        .collect()
}

/// The device a block device node under `/dev` names
/// ([`sys::block_device_in_dev`]); None for any other path, which is not
/// looked up.
pub fn block_device_of(node: &Path) -> Option<DevId> {
    sys::block_device_in_dev(node)
}

/// The member devices of the btrfs filesystem that has `member` among
/// them, from a tree laid out as `/sys/fs/btrfs` (`sysfs`): one directory
/// per fsid, `devices/<name>/dev` in each. None when no filesystem there
/// has it.
pub fn btrfs_members(sysfs: &Path, member: DevId) -> Option<Vec<DevId>> {
    let filesystems = std::fs::read_dir(sysfs).ok()?;
    for fs in filesystems.flatten() {
        let Ok(devices) = std::fs::read_dir(fs.path().join("devices")) else {
            continue;
        };
        let mut members: Vec<DevId> = devices
            .flatten()
            .filter_map(|d| std::fs::read_to_string(d.path().join("dev")).ok())
            .filter_map(|text| parse_dev(&text))
            .collect();
        if members.contains(&member) {
            members.sort_by_key(|d| (d.major, d.minor));
            return Some(members);
        }
    }
    None
}

/// `major:minor` as sysfs writes it (`7:0\n`).
pub fn parse_dev(text: &str) -> Option<DevId> {
    let (major, minor) = text.trim().split_once(':')?;
    Some(DevId {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

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
        source.starts_with("/dev").then(|| source.to_path_buf()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|node| block_device_of(node) == Some(dev))
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("umw-device-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn member(sysfs: &Path, fsid: &str, name: &str, dev: &str) {
        let dir = sysfs.join(fsid).join("devices").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
    }

    #[test]
    fn btrfs_members_of_the_filesystem_that_has_the_source() {
        let sysfs = scratch("btrfs");
        member(&sysfs, "aaaa-1", "loop0", "7:0");
        member(&sysfs, "bbbb-2", "sdb", "8:16");
        member(&sysfs, "bbbb-2", "sdc", "8:32");
        member(&sysfs, "bbbb-2", "loop3", "7:3");
        // An fsid directory without devices/ (features, ...) is skipped.
        std::fs::create_dir_all(sysfs.join("features")).unwrap();
        let dev = |major, minor| DevId { major, minor };
        assert_eq!(
            btrfs_members(&sysfs, dev(8, 32)),
            Some(vec![dev(7, 3), dev(8, 16), dev(8, 32)])
        );
        assert_eq!(btrfs_members(&sysfs, dev(7, 0)), Some(vec![dev(7, 0)]));
        assert_eq!(btrfs_members(&sysfs, dev(9, 9)), None);
        assert_eq!(btrfs_members(&sysfs.join("absent"), dev(7, 0)), None);
        std::fs::remove_dir_all(&sysfs).unwrap();
        assert_eq!(parse_dev("259:3\n"), Some(dev(259, 3)));
        assert_eq!(parse_dev("x:3"), None);
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
