//! Validating targets before anything is changed: every check here leaves
//! the system untouched.
//!
//! A target names a mount as umount(8) takes it: a mount point (a relative
//! path is taken from the working directory), or the source of a mount (a
//! block device node, or a name such as a tmpfs's `none`), which names its
//! most recent mount. Trailing slashes and `.` components are dropped. A
//! final symbolic link is followed unless `--no-follow` is given, in which
//! case it is refused (the kernel would otherwise follow it when a trailing
//! slash is left). The same mount may not be named twice, even through
//! different paths.

use std::collections::hash_map::{Entry, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::mountinfo::{self, Mount, Table};
use crate::outcome::{Error, ErrorKind};
use crate::sys;

/// A mount ready to be unmounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As given on the command line.
    pub given: PathBuf,
    /// The path passed to `umount2(2)`: normalized, and with symbolic links
    /// resolved unless `--no-follow`.
    pub path: PathBuf,
    /// The mount as `/proc/self/mountinfo` shows it now.
    pub mount: Mount,
    /// Whether `path` may be followed if it is a symbolic link.
    pub follow: bool,
}

impl Target {
    /// A mount taken from the mount table (a submount under `-R`, a mount
    /// under `--all`), named by its mount point. Mount points from
    /// mountinfo have no symbolic links: never followed. Whether the path
    /// still leads to this mount is checked right before the unmount.
    /// `-R`'s target: the first mount of the stack at this one's mount
    /// point (those on top of it are among its submounts, unmounted
    /// first), as umount(8) 2.39 and later take it.
    pub fn bottom_of_stack(self, mounts: &Table) -> Target {
        match mounts.bottom_of_stack(self.mount.id) {
            Some(bottom) if bottom.id != self.mount.id => Target {
                mount: bottom.clone(),
                ..self
            },
            _ => self,
        }
    }

    pub fn of_mount(mount: &Mount) -> Target {
        Target {
            given: mount.mount_point.clone(),
            path: mount.mount_point.clone(),
            mount: mount.clone(),
            follow: false,
        }
    }
}

/// Checks what can be checked without looking at the filesystem, and
/// normalizes: absolute, not empty, no trailing slash or `.` components.
pub fn normalize(given: &Path) -> Result<PathBuf, Error> {
    if given.as_os_str().is_empty() {
        return Err(Error::new(given, ErrorKind::Empty, None));
    }
    if !given.is_absolute() {
        return Err(Error::new(given, ErrorKind::NotAbsolute, None));
    }
    // components() drops repeated and trailing slashes and inner `.`.
    let mut normal = PathBuf::new();
    for c in given.components() {
        match c {
            Component::CurDir => {}
            other => normal.push(other.as_os_str()),
        }
    }
    Ok(normal)
}

/// A target as the command line gives it, made absolute against the
/// working directory and normalized: what is looked up.
pub fn absolute(given: &Path) -> Result<PathBuf, Error> {
    if given.as_os_str().is_empty() || given.is_absolute() {
        return normalize(given);
    }
    let cwd = std::env::current_dir().map_err(|e| {
        Error::from_errno(
            given,
            "reading the working directory for a relative target",
            rustix::io::Errno::from_raw_os_error(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    normalize(&cwd.join(given))
}

/// How [`resolve`] looks a target up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Follow a final symbolic link (else refuse it): not `--no-follow`.
    pub follow: bool,
    /// Resolve the symbolic links in the path (not umount(8)'s `-c`).
    pub canonicalize: bool,
    /// Look tags (`LABEL=`...) up: udev's links, `blkid(8)`. Not in a
    /// mount namespace someone else made (`-N`): its `/dev` and its
    /// `PATH` are theirs (refused, [`ErrorKind::TagInNamespace`]).
    pub probe_tags: bool,
}

impl Default for Lookup {
    fn default() -> Self {
        Lookup {
            follow: true,
            canonicalize: true,
            probe_tags: true,
        }
    }
}

/// Looks up one target: the root of a mount in this process's mount
/// namespace, or the source of one (its most recent mount).
pub fn resolve(given: &Path, follow: bool, mounts: &Table) -> Result<Target, Error> {
    resolve_with(
        given,
        Lookup {
            follow,
            ..Lookup::default()
        },
        mounts,
    )
}

/// [`resolve`], with umount(8)'s `-c` among the choices.
pub fn resolve_with(given: &Path, lookup: Lookup, mounts: &Table) -> Result<Target, Error> {
    if let Some(tag) = Tag::parse(given) {
        return by_tag(given, &tag, lookup.probe_tags, mounts);
    }
    let follow = lookup.follow;
    let normal = absolute(given)?;
    let fail = |errno| Error::from_errno(given, "inspecting the target", errno);
    let st = match sys::stat_target(&normal, follow) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => {
            if let Some(on_link) = mounted_on_link(given, &normal, follow, mounts) {
                return on_link;
            }
            // Not a path: the source of a mount (`umount none`), if one has it.
            return by_source(given, mounts, |m| m.source == given.as_os_str())
                .ok_or_else(|| fail(rustix::io::Errno::NOENT));
        }
        Err(e) => return Err(fail(e)),
    };
    if st.is_symlink {
        return Err(Error::new(given, ErrorKind::Symlink, None));
    }
    if !st.is_mount_root {
        if let Some(on_link) = mounted_on_link(given, &normal, follow, mounts) {
            return on_link;
        }
        // A block device: its most recent mount.
        if let Ok((_, Some(rdev))) = sys::stat_dev(&normal) {
            return by_source(given, mounts, |m| on_device(m, rdev))
                .ok_or_else(|| Error::new(given, ErrorKind::NotMountPoint, None));
        }
        // A loop image's file: the most recent mount of a loop device
        // backed by that very file.
        if let Ok(Some(file)) = sys::regular_file_id(&normal) {
            let over = loops_over(file, mounts);
            return by_source(given, mounts, |m| over.contains(&m.dev))
                .ok_or_else(|| Error::new(given, ErrorKind::NotMountPoint, None));
        }
        return Err(Error::new(given, ErrorKind::NotMountPoint, None));
    }
    let mount = mounts
        .by_id(st.mount_id)
        .cloned()
        .ok_or_else(|| Error::new(given, ErrorKind::NotMountPoint, None))?;
    // The path the kernel itself gives for the mount point has no
    // symbolic link on it: the lookup that would tell is saved (one per
    // target, most of them given as the table names them). One that a
    // user has put on it since is refused later, by the walk that does
    // not follow them ([`sys::MountPoint`]).
    let path = if follow && lookup.canonicalize && normal != mount.mount_point {
        canonical(normal).map_err(|e| {
            fail(rustix::io::Errno::from_raw_os_error(
                e.raw_os_error().unwrap_or(0),
            ))
        })?
    } else {
        normal
    };
    // The mount table and the filesystem must agree on the device: a
    // table that says otherwise is not the kernel's (`-N` into a
    // namespace whose /proc someone else mounted), or no longer the
    // mount's (its id reused since the table was read).
    if !same_filesystem(st.dev, &mount) {
        return Err(Error::new(given, ErrorKind::Moved, None));
    }
    Ok(Target {
        given: given.to_path_buf(),
        path,
        mount,
        // A canonical path has no symbolic link left to follow: from here
        // on (`UMOUNT_NOFOLLOW`, `O_NOFOLLOW`), one that a user puts
        // there is refused, not followed.
        follow: follow && !lookup.canonicalize,
    })
}

/// A mount on the symbolic link `normal` itself, not on what it leads to
/// (a bind mount of a link made with the new mount API, `open_tree(2)`
/// with `AT_SYMLINK_NOFOLLOW`), when `normal` is a link and what it leads
/// to is no mount: the mount of the link, never followed from here on
/// (`UMOUNT_NOFOLLOW`), as umount(8) 2.42 unmounts it. Without `follow`
/// (`--no-follow`) a link stays refused.
fn mounted_on_link(
    given: &Path,
    normal: &Path,
    follow: bool,
    mounts: &Table,
) -> Option<Result<Target, Error>> {
    let link = sys::stat_target(normal, false)
        .ok()
        .filter(|st| follow && st.is_symlink && st.is_mount_root)?;
    let path = canonical(normal.parent()?.to_path_buf())
        .ok()?
        .join(normal.file_name()?);
    let mount = mounts.by_id(link.mount_id)?.clone();
    if !same_filesystem(link.dev, &mount) {
        return Some(Err(Error::new(given, ErrorKind::Moved, None)));
    }
    Some(Ok(Target {
        given: given.to_path_buf(),
        path,
        mount,
        follow: false,
    }))
}

/// An absolute, normalized path with its symbolic links resolved
/// (`realpath(3)`): the path itself when it has none and no `..` (one
/// lookup, [`sys::has_no_symlinks`], where `realpath` looks up every
/// prefix of it again: many targets pay that many times).
fn canonical(normal: PathBuf) -> std::io::Result<PathBuf> {
    let plain = !normal.components().any(|c| c == Component::ParentDir);
    if plain && sys::has_no_symlinks(&normal) {
        return Ok(normal);
    }
    std::fs::canonicalize(&normal)
}

/// A filesystem named as umount(8) takes it by a tag: `LABEL=`, `UUID=`,
/// `PARTLABEL=`, `PARTUUID=`.
#[derive(Debug, PartialEq, Eq)]
pub struct Tag<'a> {
    /// `LABEL`, `UUID`, `PARTLABEL` or `PARTUUID`.
    pub name: &'static str,
    pub value: &'a [u8],
}

impl<'a> Tag<'a> {
    /// The tag `given` is, if it is one (with a value).
    pub fn parse(given: &'a Path) -> Option<Tag<'a>> {
        let bytes = given.as_os_str().as_bytes();
        ["LABEL", "UUID", "PARTLABEL", "PARTUUID"]
            .into_iter()
            .find_map(|name| {
                let value = bytes.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
                (!value.is_empty()).then_some(Tag { name, value })
            })
    }

    /// The device node udev's link names for the tag
    /// (`/dev/disk/by-label/...` and so on), if there is one.
    pub fn udev_device(&self) -> Option<std::path::PathBuf> {
        let dir = format!("/dev/disk/by-{}", self.name.to_ascii_lowercase());
        let link = Path::new(&dir).join(OsStr::from_bytes(&udev_encode(self.value)));
        std::fs::canonicalize(link).ok()
    }

    /// Every device `blkid(8)` finds with the tag (probed, not from its
    /// cache): the only way where udev made no link (an initramfs, a
    /// container), and the way to see a second device with the same tag (a
    /// cloned disk or image). blkid reads every block device, and one that
    /// does not answer (a dead disk, a loop device over a file of a FUSE
    /// daemon that does not answer) would hold it for ever: it is given up
    /// at `deadline` (None, then).
    pub fn probed_devices(&self, deadline: std::time::Instant) -> Option<Vec<std::path::PathBuf>> {
        let mut tag = format!("{}=", self.name).into_bytes();
        tag.extend_from_slice(self.value);
        let mut child = std::process::Command::new("blkid")
            .args(["-c", "/dev/null", "-o", "device", "-t"])
            .arg(OsStr::from_bytes(&tag))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let never = crate::cancel::Cancel::never();
        match crate::child::wait_for_program(&mut child, deadline, never).ok()? {
            crate::child::ProgramEnd::Ended(_) => {}
            // Given up, asleep or not: reaped by whoever inherits it.
            _ => return None,
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut child.stdout.take()?, &mut out).ok()?;
        Some(
            out.split(|&b| b == b'\n')
                .map(|node| std::path::PathBuf::from(OsStr::from_bytes(node)))
                .filter(|node| node.starts_with("/dev/"))
                .collect(),
        )
    }
}

/// How long `blkid(8)` may look for a tag's devices ([`Tag::probed_devices`]).
pub const TAG_PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// udev's encoding of a tag's value in a `/dev/disk/by-*` link name
/// (`udev_util_encode_string`): bytes outside `[A-Za-z0-9#+-.:=@_]` and
/// UTF-8 become `\xNN`.
fn udev_encode(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(&b) = rest.first() {
        let len = match std::str::from_utf8(&rest[..rest.len().min(4)]) {
            _ if b < 0x80 => 1,
            Ok(s) => s.chars().next().map_or(1, char::len_utf8),
            Err(e) if e.valid_up_to() > 0 => std::str::from_utf8(&rest[..e.valid_up_to()])
                .ok()
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8),
            Err(_) => 1,
        };
        if len > 1 {
            out.extend_from_slice(&rest[..len]);
        } else if b.is_ascii_alphanumeric() || b"#+-.:=@_".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
        rest = &rest[len..];
    }
    out
}

/// How long telling the loop devices' backing files may take
/// ([`loopdev::backing_files`]: a backing file on a FUSE mount whose
/// daemon does not answer never tells).
const LOOP_LOOKUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The loop devices backed by the file `(device, inode)`, as umount(8)
/// takes a loop image's path: told by the driver (`LOOP_GET_STATUS64`),
/// not by the path sysfs shows, which may lead elsewhere since.
fn loops_over(file: (mountinfo::DevId, u64), mounts: &[Mount]) -> Vec<mountinfo::DevId> {
    let loops = crate::loopdev::bound();
    let mounted = mounts.iter().map(|m| m.dev).collect();
    let deadline = crate::duration::deadline(std::time::Instant::now(), LOOP_LOOKUP_LIMIT);
    let told = crate::loopdev::backing_files(&loops, &mounted, deadline);
    loops
        .iter()
        .zip(told)
        .filter(|(_, told)| matches!(told, crate::loopdev::Told::File(f) if (f.dev, f.ino) == file))
        .map(|(lo, _)| lo.dev)
        .collect()
}

/// Whether `statx(2)`'s device of a mount root is that of `mount`'s
/// filesystem (its `major:minor` in the mount table). btrfs and bcachefs
/// give each subvolume a device of its own, which the mount table does not
/// show: for them an anonymous device passes, and the mount id alone
/// identifies the mount.
pub fn same_filesystem(dev: mountinfo::DevId, mount: &Mount) -> bool {
    dev == mount.dev
        || (matches!(mount.fstype.as_str(), "btrfs" | "bcachefs") && dev.is_anonymous())
}

/// Whether `mount` is on the block device `rdev`: by its `major:minor`,
/// or, for a filesystem with an anonymous one (btrfs), by the device its
/// source names, looked up only under `/dev` (a FUSE mount's source is
/// its user's choice, and may lead into a filesystem that does not answer).
fn on_device(mount: &Mount, rdev: mountinfo::DevId) -> bool {
    mount.dev == rdev
        || (mount.dev.is_anonymous()
            && crate::device::block_device_of(Path::new(&mount.source)) == Some(rdev))
}

/// The most recent mount that `is_it` picks (the last in the table), as a
/// target named by its source.
/// The mounted filesystem that `tag` names: of the devices that carry it
/// ([`Tag::devices`]), the one mounted here. Two devices can carry one
/// tag (a cloned disk, a copied image); the one mounted is the one meant,
/// as umount(8) 2.38 takes it. Where more than one of them is mounted, the
/// tag does not say which: refused, untouched.
fn by_tag(given: &Path, tag: &Tag<'_>, probe: bool, mounts: &Table) -> Result<Target, Error> {
    // Not in a mount namespace someone else made (-N): its /dev, its udev
    // links and its PATH are theirs, and the tag would name what they
    // chose (a locked mount they could not remove themselves).
    if !probe {
        return Err(Error::new(given, ErrorKind::TagInNamespace, None));
    }
    let mounted = |node: &Path| match sys::stat_dev(node) {
        Ok((_, Some(rdev))) => by_source(given, mounts, |m| on_device(m, rdev)),
        _ => None,
    };
    // udev's link, when it names a mounted device: taken as umount(8)
    // takes it, with no probe.
    let linked = tag.udev_device();
    if let Some(target) = linked.as_deref().and_then(mounted) {
        return Ok(target);
    }
    let deadline = crate::duration::deadline(std::time::Instant::now(), TAG_PROBE_LIMIT);
    let Some(mut nodes) = tag.probed_devices(deadline) else {
        let step = "looking for the tag's devices: blkid did not finish within 5 s";
        return Err(Error::new(given, ErrorKind::System(step), None));
    };
    nodes.extend(linked);
    if nodes.is_empty() {
        return Err(Error::new(given, ErrorKind::NotFound, None));
    }
    let mut found: Vec<Target> = Vec::new();
    for node in &nodes {
        if let Some(t) = mounted(node) {
            if !found.iter().any(|f| f.mount.dev == t.mount.dev) {
                found.push(t);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::new(given, ErrorKind::NotMountPoint, None)),
        count => Err(Error::new(given, ErrorKind::AmbiguousTag { count }, None)),
    }
}

fn by_source(given: &Path, mounts: &[Mount], is_it: impl Fn(&Mount) -> bool) -> Option<Target> {
    let mount = mounts.iter().rev().find(|m| is_it(m))?;
    Some(Target {
        given: given.to_path_buf(),
        path: mount.mount_point.clone(),
        mount: mount.clone(),
        follow: false,
    })
}

/// umount(8)'s `-A`: every mount of `target`'s filesystem (same
/// `major:minor`) in this namespace, the newest first; `target` is one
/// of them.
pub fn all_mounts_of(target: &Target, mounts: &Table) -> Vec<Target> {
    mounts
        .of_dev(target.mount.dev)
        .rev()
        .map(|m| Target {
            given: target.given.clone(),
            path: m.mount_point.clone(),
            mount: m.clone(),
            follow: false,
        })
        .collect()
}

/// Resolves every target; refuses a mount named twice. Returns, in order, a
/// target or the error that keeps it untouched.
pub fn resolve_all(given: &[PathBuf], follow: bool, mounts: &Table) -> Vec<Result<Target, Error>> {
    resolve_all_with(
        given,
        Lookup {
            follow,
            ..Lookup::default()
        },
        mounts,
    )
}

/// [`resolve_all`], with umount(8)'s `-c` among the choices.
pub fn resolve_all_with(
    given: &[PathBuf],
    lookup: Lookup,
    mounts: &Table,
) -> Vec<Result<Target, Error>> {
    // The first target that named each mount, by mount id.
    let mut first: HashMap<u64, &PathBuf> = HashMap::with_capacity(given.len());
    given
        .iter()
        .map(|g| {
            let t = resolve_with(g, lookup, mounts)?;
            match first.entry(t.mount.id) {
                Entry::Occupied(earlier) => Err(Error::new(
                    g,
                    ErrorKind::Duplicate {
                        first: earlier.get().to_path_buf(),
                    },
                    None,
                )),
                Entry::Vacant(slot) => {
                    slot.insert(g);
                    Ok(t)
                }
            }
        })
        .collect()
}

/// With `-R`: the targets whose mount lies in the tree below another
/// target, which would unmount it with that tree (and then find it gone).
/// A mistake in the call, as a mount named twice.
pub fn inside_trees(resolved: &[Result<Target, Error>], mounts: &Table) -> Vec<Error> {
    let targets: Vec<&Target> = resolved.iter().flatten().collect();
    // Each mount id with the targets that name it, in order.
    let mut named: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        named.entry(t.mount.id).or_default().push(i);
    }
    let mut errors = Vec::new();
    for tree in &targets {
        let mut inner: Vec<usize> = Vec::new();
        for m in mounts.submounts_deepest_first(tree.mount.id) {
            let named = named.get(&m.id).map_or(&[][..], Vec::as_slice);
            inner.extend(named.iter().filter(|&&i| targets[i].mount == *m));
        }
        inner.sort_unstable();
        for i in inner {
            let kind = ErrorKind::InsideTree {
                tree: tree.given.clone(),
            };
            errors.push(Error::new(&targets[i].given, kind, None));
        }
    }
    errors
}

/// Whether an error is a mistake in how the command was called (exit 1,
/// nothing done) rather than a property of the target.
pub fn is_usage_error(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Empty
            | ErrorKind::NotAbsolute
            | ErrorKind::Duplicate { .. }
            | ErrorKind::InsideTree { .. }
    )
}

/// Paths given twice, compared once made absolute and normalized (before
/// looking at the filesystem): the first of each pair is kept.
pub fn textual_duplicates(given: &[PathBuf]) -> Vec<(usize, usize)> {
    let mut first: HashMap<PathBuf, usize> = HashMap::with_capacity(given.len());
    let mut pairs = Vec::new();
    for (i, g) in given.iter().enumerate() {
        let Ok(normal) = absolute(g) else { continue };
        match first.entry(normal) {
            Entry::Occupied(j) => pairs.push((*j.get(), i)),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_as_umount8_takes_them() {
        let tag = |s: &'static str| Tag::parse(Path::new(s)).map(|t| (t.name, t.value));
        assert_eq!(tag("LABEL=data"), Some(("LABEL", &b"data"[..])));
        assert_eq!(tag("PARTUUID=1-2"), Some(("PARTUUID", &b"1-2"[..])));
        assert_eq!(tag("PARTLABEL=x=y"), Some(("PARTLABEL", &b"x=y"[..])));
        assert_eq!(tag("UUID=ab"), Some(("UUID", &b"ab"[..])));
        assert_eq!(tag("LABEL="), None);
        assert_eq!(tag("LABELS=x"), None);
        assert_eq!(tag("/mnt/LABEL=x"), None);
        assert_eq!(tag("label=x"), None);
    }

    #[test]
    fn tag_values_encoded_as_udev_names_its_links() {
        assert_eq!(udev_encode(b"my data/1"), b"my\\x20data\\x2f1".to_vec());
        assert_eq!(
            udev_encode(b"a#b+c-d.e:f=g@h_i"),
            b"a#b+c-d.e:f=g@h_i".to_vec()
        );
        assert_eq!(
            udev_encode("d\u{e9}j\u{e0}".as_bytes()),
            "d\u{e9}j\u{e0}".as_bytes().to_vec()
        );
        assert_eq!(udev_encode(b"\xff!"), b"\\xff\\x21".to_vec());
    }

    #[test]
    fn normalizes_slashes_and_dots() {
        assert_eq!(
            normalize(Path::new("/mnt/x/")).unwrap(),
            PathBuf::from("/mnt/x")
        );
        assert_eq!(
            normalize(Path::new("//mnt//x/./")).unwrap(),
            PathBuf::from("/mnt/x")
        );
        assert_eq!(normalize(Path::new("/")).unwrap(), PathBuf::from("/"));
        assert_eq!(
            normalize(Path::new("/a/../b")).unwrap(),
            PathBuf::from("/a/../b")
        );
    }

    #[test]
    fn prefixes_must_be_absolute() {
        assert_eq!(
            normalize(Path::new("mnt/x")).unwrap_err().kind,
            ErrorKind::NotAbsolute
        );
        assert_eq!(
            normalize(Path::new("./x")).unwrap_err().kind,
            ErrorKind::NotAbsolute
        );
        assert_eq!(normalize(Path::new("")).unwrap_err().kind, ErrorKind::Empty);
    }

    #[test]
    fn relative_targets_are_taken_from_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(Path::new("mnt/x/")).unwrap(), cwd.join("mnt/x"));
        assert_eq!(absolute(Path::new("./x")).unwrap(), cwd.join("x"));
        assert_eq!(
            absolute(Path::new("/a/./b")).unwrap(),
            PathBuf::from("/a/b")
        );
        assert_eq!(absolute(Path::new("")).unwrap_err().kind, ErrorKind::Empty);
        let given: Vec<PathBuf> = vec!["x".into(), cwd.join("x")];
        assert_eq!(textual_duplicates(&given), vec![(0, 1)]);
    }

    #[test]
    fn a_source_names_its_most_recent_mount() {
        let mounts = Table::from(
            mountinfo::parse(
                b"20 1 8:2 / / rw - ext4 /dev/sda2 rw
30 20 0:25 / /a rw - tmpfs umw-src rw
31 20 0:26 / /b rw - tmpfs umw-src rw
32 20 0:25 / /c rw - tmpfs other rw
",
            )
            .unwrap(),
        );
        let t = resolve(Path::new("umw-src"), true, &mounts).unwrap();
        assert_eq!((t.mount.id, t.path.as_path()), (31, Path::new("/b")));
        assert_eq!(t.given, PathBuf::from("umw-src"));
        let e = resolve(Path::new("umw-nothing"), true, &mounts).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.errno, Some(rustix::io::Errno::NOENT));
        // -A: every mount of that filesystem, the newest first.
        let a = resolve(Path::new("umw-src"), true, &mounts).unwrap();
        let first = Target {
            mount: mounts[1].clone(),
            ..a
        };
        let all: Vec<u64> = all_mounts_of(&first, &mounts)
            .iter()
            .map(|t| t.mount.id)
            .collect();
        assert_eq!(all, [32, 30]);
    }

    /// A path with no symbolic link on it is its own canonical form; one
    /// with a link, or with `..`, is what realpath(3) makes of it.
    #[test]
    fn canonical_paths_as_realpath_gives_them() {
        let tree = crate::sys::tests::LinkTree::new("canonical");
        let dir = &tree.0;
        let real = std::fs::canonicalize(dir.join("real/m")).unwrap();
        for given in ["real/m", "link/m", "real/../real/m", "link/../real/m"] {
            let normal = normalize(&dir.join(given)).unwrap();
            let expected = std::fs::canonicalize(&normal).unwrap();
            assert_eq!(canonical(normal).unwrap(), expected, "{given}");
        }
        assert_eq!(canonical(real.clone()).unwrap(), real);
        assert!(canonical(dir.join("absent")).is_err());
    }

    #[test]
    fn finds_textual_duplicates() {
        let given: Vec<PathBuf> = ["/mnt/a", "/mnt/b", "/mnt/a/", "//mnt/b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(textual_duplicates(&given), vec![(0, 2), (1, 3)]);
    }

    #[test]
    fn root_of_this_process_is_a_mount_point() {
        // Needs no privilege: "/" is the root of a mount in any namespace.
        let mounts = mountinfo::read(None).unwrap();
        let t = resolve(Path::new("/"), true, &mounts).unwrap();
        assert_eq!(t.path, PathBuf::from("/"));
        let e = resolve(Path::new("/proc/self"), false, &mounts).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Symlink);
        let e = resolve(Path::new("/nonexistent-umw-target"), true, &mounts).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }
}
