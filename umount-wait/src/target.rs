//! Validating targets before anything is changed: every check here leaves
//! the system untouched.
//!
//! A target must be an absolute path that exists and is the root of a mount.
//! Trailing slashes and `.` components are dropped. A final symbolic link is
//! followed unless `--no-follow` is given, in which case it is refused (the
//! kernel would otherwise follow it when a trailing slash is left). The same
//! mount may not be named twice, even through different paths.

use std::path::{Component, Path, PathBuf};

use crate::mountinfo::{self, Mount};
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

/// Looks up one target: it must exist and be the root of a mount in this
/// process's mount namespace.
pub fn resolve(given: &Path, follow: bool, mounts: &[Mount]) -> Result<Target, Error> {
    let normal = normalize(given)?;
    let fail = |errno| Error::from_errno(given, "inspecting the target", errno);
    let st = sys::stat_target(&normal, follow).map_err(fail)?;
    if st.is_symlink {
        return Err(Error::new(given, ErrorKind::Symlink, None));
    }
    if !st.is_mount_root {
        return Err(Error::new(given, ErrorKind::NotMountPoint, None));
    }
    let path = if follow {
        std::fs::canonicalize(&normal).map_err(|e| {
            fail(rustix::io::Errno::from_raw_os_error(
                e.raw_os_error().unwrap_or(0),
            ))
        })?
    } else {
        normal
    };
    let mount = mountinfo::by_id(mounts, st.mount_id)
        .cloned()
        .ok_or_else(|| Error::new(given, ErrorKind::NotMountPoint, None))?;
    Ok(Target {
        given: given.to_path_buf(),
        path,
        mount,
        follow,
    })
}

/// Resolves every target; refuses a mount named twice. Returns, in order, a
/// target or the error that keeps it untouched.
pub fn resolve_all(
    given: &[PathBuf],
    follow: bool,
    mounts: &[Mount],
) -> Vec<Result<Target, Error>> {
    let mut out: Vec<Result<Target, Error>> = Vec::with_capacity(given.len());
    for g in given {
        let resolved = resolve(g, follow, mounts).and_then(|t| {
            let first = out
                .iter()
                .flatten()
                .find(|earlier| earlier.mount.id == t.mount.id);
            match first {
                Some(earlier) => Err(Error::new(
                    g,
                    ErrorKind::Duplicate {
                        first: earlier.given.clone(),
                    },
                    None,
                )),
                None => Ok(t),
            }
        });
        out.push(resolved);
    }
    out
}

/// With `-R`: the targets whose mount lies in the tree below another
/// target, which would unmount it with that tree (and then find it gone).
/// A mistake in the call, as a mount named twice.
pub fn inside_trees(resolved: &[Result<Target, Error>], mounts: &[Mount]) -> Vec<Error> {
    let targets: Vec<&Target> = resolved.iter().flatten().collect();
    let mut errors = Vec::new();
    for tree in &targets {
        let below = mountinfo::submounts_deepest_first(mounts, tree.mount.id);
        for inner in targets.iter().filter(|t| below.contains(&&t.mount)) {
            let kind = ErrorKind::InsideTree {
                tree: tree.given.clone(),
            };
            errors.push(Error::new(&inner.given, kind, None));
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

/// Paths given twice, compared after normalization (before looking at the
/// filesystem): the first of each pair is kept.
pub fn textual_duplicates(given: &[PathBuf]) -> Vec<(usize, usize)> {
    let normal: Vec<Option<PathBuf>> = given.iter().map(|g| normalize(g).ok()).collect();
    let mut pairs = Vec::new();
    for (i, a) in normal.iter().enumerate() {
        let Some(a) = a else { continue };
        if let Some(j) = normal[..i].iter().position(|b| b.as_ref() == Some(a)) {
            pairs.push((j, i));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn refuses_relative_and_empty() {
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
