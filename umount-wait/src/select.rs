//! Which mounts `--all` unmounts: the real filesystems of the mount table.
//!
//! API filesystems (proc, sysfs, devtmpfs, devpts, cgroup, tracefs...) and
//! whatever is mounted at or below `/proc`, `/sys`, `/dev` and `/run` are
//! skipped unless `--include-api`, but for filesystems on a block device
//! (USB media that udisks mounts under `/run/media`: data, not the
//! system's), and for what an `--include` prefix inside a skipped tree (or
//! naming the mount point) asks for. `--include` and `--exclude` select by
//! path prefix (whole components: `/mnt` covers `/mnt/a`, not `/mnt2`),
//! `--types` by filesystem type with umount(8)'s syntax.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::mountinfo::Mount;

/// Filesystem types the kernel or the init system provides, never data.
pub const API_TYPES: &[&str] = &[
    "autofs",
    "binder",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
];

/// Trees the system itself needs until the very end (systemd keeps them too).
pub const API_TREES: &[&str] = &["/proc", "/sys", "/dev", "/run"];

/// `--types`: umount(8)'s list. `ext4,vfat` selects those types;
/// `noext4,vfat` (a leading `no`) selects every type but those; an item
/// `noX` inside a list excludes X.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeList {
    negated: bool,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl TypeList {
    pub fn parse(text: &str) -> Result<TypeList, String> {
        let (negated, rest) = match text.strip_prefix("no") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut list = TypeList {
            negated,
            ..TypeList::default()
        };
        for item in rest.split(',') {
            if item.is_empty() {
                return Err(format!("empty filesystem type in {text:?}"));
            }
            match item.strip_prefix("no") {
                Some(name) if !name.is_empty() => list.exclude.push(name.to_string()),
                _ => list.include.push(item.to_string()),
            }
        }
        Ok(list)
    }

    pub fn matches(&self, fstype: &str) -> bool {
        if self.exclude.iter().any(|t| t.eq_ignore_ascii_case(fstype)) {
            return false;
        }
        let listed = self.include.iter().any(|t| t.eq_ignore_ascii_case(fstype));
        listed != self.negated
    }

    /// Whether the list names this type as one to select (an API type
    /// named in `--types` is selected even without `--include-api`).
    fn names(&self, fstype: &str) -> bool {
        !self.negated && self.include.iter().any(|t| t == fstype)
    }
}

/// `-O`/`--test-opts`: umount(8)'s option pattern (libmount's
/// `mnt_match_options()`). Every option listed must be set (`name` or
/// `name=value`); one with a `no` prefix must not be (`noro`: not
/// read-only); a `+` prefix takes the name as it is (`+noexec` needs
/// `noexec`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionList {
    /// `(name, value, wanted)`: the option must be there (`wanted`) or not.
    items: Vec<(String, Option<String>, bool)>,
}

impl OptionList {
    pub fn parse(text: &str) -> Result<OptionList, String> {
        let mut list = OptionList::default();
        for item in text.split(',') {
            let (item, wanted) = match (item.strip_prefix('+'), item.strip_prefix("no")) {
                (Some(literal), _) => (literal, true),
                (None, Some(negated)) => (negated, false),
                (None, None) => (item, true),
            };
            let (name, value) = match item.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (item, None),
            };
            if name.is_empty() {
                return Err(format!("empty mount option in {text:?}"));
            }
            list.items.push((name.to_string(), value, wanted));
        }
        Ok(list)
    }

    /// Whether a mount with these options (comma-separated) matches.
    pub fn matches(&self, options: &str) -> bool {
        self.items.iter().all(|(name, value, wanted)| {
            let set = options.split(',').any(|option| {
                let (n, v) = match option.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (option, None),
                };
                n == name && value.as_deref().is_none_or(|value| v == Some(value))
            });
            set == *wanted
        })
    }
}

/// What `--all` selects.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `--include PREFIX`: only mounts at or below one of these (all if empty).
    pub include: Vec<PathBuf>,
    /// `--exclude PREFIX`: never mounts at or below one of these.
    pub exclude: Vec<PathBuf>,
    /// `--types LIST`.
    pub types: Option<TypeList>,
    /// `--test-opts LIST`.
    pub options: Option<OptionList>,
    /// `--include-api`: do not skip API filesystems.
    pub include_api: bool,
}

/// `path` is `prefix` or below it, compared by whole components.
pub fn under(path: &Path, prefix: &Path) -> bool {
    path.starts_with(prefix)
}

/// An API filesystem, by type or by where it is mounted: a filesystem on
/// a block device is data wherever it is mounted.
pub fn is_api(mount: &Mount) -> bool {
    API_TYPES.contains(&mount.fstype.as_str())
        || (in_api_tree(&mount.mount_point) && !on_block_device(mount))
}

fn in_api_tree(path: &Path) -> bool {
    API_TREES.iter().any(|tree| under(path, Path::new(tree)))
}

/// A block device's number, or a device node as the source (btrfs shows
/// an anonymous device number in the mount table).
fn on_block_device(mount: &Mount) -> bool {
    mount.dev.major != 0 || mount.source.as_bytes().starts_with(b"/dev/")
}

impl Filter {
    /// Whether `--all` should take care of this mount.
    pub fn selects(&self, mount: &Mount) -> bool {
        let mp = &mount.mount_point;
        if !self.include.is_empty() && !self.include.iter().any(|p| under(mp, p)) {
            return false;
        }
        if self.exclude.iter().any(|p| under(mp, p)) {
            return false;
        }
        if let Some(types) = &self.types {
            if !types.matches(&mount.fstype) {
                return false;
            }
        }
        if let Some(options) = &self.options {
            if !options.matches(&mount.options) {
                return false;
            }
        }
        let api_type_asked_for = API_TYPES.contains(&mount.fstype.as_str())
            && self.types.as_ref().is_some_and(|t| t.names(&mount.fstype));
        self.include_api || api_type_asked_for || self.asked_for(mp) || !is_api(mount)
    }

    /// An `--include` prefix inside a skipped tree (`/run/user`), or that
    /// names the mount point itself, overrides the skip: it can only mean
    /// this mount. A prefix above the trees (`/`) overrides nothing.
    fn asked_for(&self, mount_point: &Path) -> bool {
        self.include
            .iter()
            .any(|p| under(mount_point, p) && (in_api_tree(p) || p == mount_point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::parse;

    const TABLE: &[u8] = b"\
20 1 8:2 / / rw - ext4 /dev/sda2 rw,errors=remount-ro
21 20 0:20 / /proc rw - proc proc rw
22 20 0:21 / /sys rw - sysfs sysfs rw
23 22 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
24 20 0:5 / /dev rw - devtmpfs devtmpfs rw
25 24 0:23 / /dev/shm rw - tmpfs tmpfs rw
26 20 0:24 / /run rw - tmpfs tmpfs rw
27 20 8:3 / /data rw - ext4 /dev/sda3 rw
28 27 7:0 / /data/img rw - ext4 /dev/loop0 rw
29 20 8:3 /media /mnt/media rw - ext4 /dev/sda3 rw
30 20 0:25 / /mnt2 ro,noexec - tmpfs none ro,size=8k
31 20 8:4 / /boot/efi rw - vfat /dev/sda4 rw
32 26 8:17 / /run/media/u/USB rw - vfat /dev/sdb1 rw
33 26 0:26 / /run/user/1000 rw - tmpfs tmpfs rw
34 33 0:27 / /run/user/1000/doc rw - fuse.portal portal rw
35 26 0:40 / /run/media/u/B rw - btrfs /dev/sdc1 rw
";

    fn selected(filter: &Filter) -> Vec<String> {
        parse(TABLE)
            .unwrap()
            .iter()
            .filter(|m| filter.selects(m))
            .map(|m| m.mount_point.display().to_string())
            .collect()
    }

    #[test]
    fn api_filesystems_are_skipped_by_default() {
        assert_eq!(
            selected(&Filter::default()),
            [
                "/",
                "/data",
                "/data/img",
                "/mnt/media",
                "/mnt2",
                "/boot/efi",
                // On block devices: data, though under /run (udisks).
                "/run/media/u/USB",
                "/run/media/u/B"
            ]
        );
        let all = Filter {
            include_api: true,
            ..Filter::default()
        };
        assert_eq!(selected(&all).len(), 16);
    }

    #[test]
    fn include_inside_a_skipped_tree_or_naming_an_api_mount_selects_it() {
        let f = |prefixes: &[&str]| Filter {
            include: prefixes.iter().map(PathBuf::from).collect(),
            ..Filter::default()
        };
        assert_eq!(
            selected(&f(&["/run/user"])),
            ["/run/user/1000", "/run/user/1000/doc"]
        );
        assert_eq!(selected(&f(&["/sys/fs/cgroup"])), ["/sys/fs/cgroup"]);
        assert_eq!(selected(&f(&["/dev/shm"])), ["/dev/shm"]);
        // A prefix above the skipped trees overrides nothing.
        assert_eq!(selected(&f(&["/"])), selected(&Filter::default()));
        // --exclude still wins.
        let g = Filter {
            exclude: vec!["/run/user/1000/doc".into()],
            ..f(&["/run/user"])
        };
        assert_eq!(selected(&g), ["/run/user/1000"]);
    }

    #[test]
    fn prefixes_match_whole_components() {
        let f = Filter {
            include: vec!["/mnt".into(), "/data".into()],
            exclude: vec!["/data/img".into()],
            ..Filter::default()
        };
        assert_eq!(selected(&f), ["/data", "/mnt/media"]);
        let f = Filter {
            include: vec!["/".into()],
            exclude: vec!["/".into()],
            ..Filter::default()
        };
        assert!(selected(&f).is_empty());
    }

    #[test]
    fn types_like_umount() {
        let f = |t: &str| Filter {
            types: Some(TypeList::parse(t).unwrap()),
            ..Filter::default()
        };
        assert_eq!(selected(&f("vfat")), ["/boot/efi", "/run/media/u/USB"]);
        assert_eq!(
            selected(&f("noext4")),
            ["/mnt2", "/boot/efi", "/run/media/u/USB", "/run/media/u/B"]
        );
        assert_eq!(selected(&f("noext4,vfat")), ["/mnt2", "/run/media/u/B"]);
        assert_eq!(selected(&f("tmpfs,novfat")), ["/mnt2"]);
        // Naming an API type selects it, wherever it is mounted; tmpfs is
        // not one, so /dev/shm and /run stay.
        assert_eq!(selected(&f("proc,cgroup2")), ["/proc", "/sys/fs/cgroup"]);
        assert!(TypeList::parse("ext4,").is_err());
        assert!(TypeList::parse("").is_err());
        assert!(TypeList::parse("EXT4").unwrap().matches("ext4"));
    }

    #[test]
    fn test_opts_like_umount() {
        let by = |pattern: &str| {
            selected(&Filter {
                options: Some(OptionList::parse(pattern).unwrap()),
                ..Filter::default()
            })
        };
        assert_eq!(by("ro"), ["/mnt2"]);
        assert_eq!(
            by("noro"),
            [
                "/",
                "/data",
                "/data/img",
                "/mnt/media",
                "/boot/efi",
                "/run/media/u/USB",
                "/run/media/u/B"
            ]
        );
        // "noexec" in a pattern means "exec" must not be listed, as in
        // libmount: it says nothing of a "noexec" option.
        assert_eq!(by("ro,noexec"), ["/mnt2"]);
        assert_eq!(by("ro,nosize"), Vec::<String>::new());
        assert_eq!(by("+noexec"), ["/mnt2"]);
        assert_eq!(by("size=8k"), ["/mnt2"]);
        assert_eq!(by("size=9k"), Vec::<String>::new());
        assert_eq!(by("errors=remount-ro"), ["/"]);
        let both = Filter {
            types: Some(TypeList::parse("ext4").unwrap()),
            options: Some(OptionList::parse("noerrors").unwrap()),
            ..Filter::default()
        };
        assert_eq!(selected(&both), ["/data", "/data/img", "/mnt/media"]);
        assert!(OptionList::parse("ro,").is_err());
        assert!(OptionList::parse("no").is_err());
    }
}
