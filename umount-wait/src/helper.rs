//! External unmount helpers, `/sbin/umount.TYPE`: found and run as
//! umount(8) (libmount) finds and runs them, for the filesystems whose
//! unmount is more than `umount2(2)` (`umount.nfs`, `umount.davfs`,
//! `umount.udisks2`); and for a user who is not root, `fusermount -u` on
//! the user's own FUSE mount, which umount(8) (setuid) unmounts for its
//! owner. The helper unmounts; the wait for the filesystem's shutdown
//! comes after it, as after `umount2`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cancel::{Cancel, Wake};
use crate::child::{wait_for_program, ProgramEnd};
use crate::mountinfo::Mount;

/// Where libmount looks for `umount.TYPE` (its `FS_SEARCH_PATH`), in order.
pub const SEARCH_PATH: [&str; 3] = ["/sbin", "/sbin/fs.d", "/sbin/fs"];

/// FUSE's setuid unmounter, libfuse 3's then libfuse 2's.
pub const FUSERMOUNT: [&str; 4] = [
    "/usr/bin/fusermount3",
    "/usr/bin/fusermount",
    "/bin/fusermount3",
    "/bin/fusermount",
];

/// How a helper takes its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `/sbin/umount.TYPE MOUNTPOINT -n ...`, as umount(8) runs it.
    Umount,
    /// `fusermount -u [-z] MOUNTPOINT`.
    Fusermount,
}

/// A helper found for a filesystem type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helper {
    /// `/sbin/umount.TYPE`.
    pub program: PathBuf,
    /// The mount's type, `TYPE` or `TYPE.SUBTYPE`.
    pub fstype: String,
    /// `-v`, passed on.
    pub verbose: bool,
    pub kind: Kind,
}

/// That unmount helpers run, as umount(8) runs them unless `-i`, and how.
#[derive(Clone, Copy, Debug, Default)]
pub struct Helpers<'a> {
    /// `-v`, passed on to them.
    pub verbose: bool,
    /// What the run found so far, kept for the mounts that follow
    /// ([`Found`]); None: looked for again for each mount.
    pub found: Option<&'a Found>,
}

/// The helpers found in one run, by type: a run over many mounts of one
/// type looks for `umount.TYPE` once, where it made three failing
/// `statx(2)` calls a mount, and asks for the effective user id once.
///
/// What was found is forgotten when the run unmounts a mount that the
/// search path leads through (`/sbin`, or `/usr` where `/sbin` is a link
/// to `usr/sbin`), one on a search directory, or one on a file in it
/// ([`Found::unmounted`]): a helper there may be gone or revealed then, as
/// umount(8) would see it for its next target. A helper installed or
/// removed by another program during the run is seen from the next run,
/// as one installed while umount(8) unmounts its last target.
#[derive(Debug)]
pub struct Found {
    /// Where helpers are looked for: [`SEARCH_PATH`].
    search: Vec<PathBuf>,
    by_type: RefCell<HashMap<String, Option<Helper>>>,
    /// `search` as given and with its links resolved, taken when the
    /// first answer is kept.
    dirs: RefCell<Vec<PathBuf>>,
    euid: std::cell::OnceCell<rustix::process::Uid>,
}

impl Default for Found {
    fn default() -> Self {
        Found::in_dirs(SEARCH_PATH.iter().map(PathBuf::from).collect())
    }
}

impl Found {
    /// Helpers looked for in `search` ([`Helper::find_in`]).
    pub fn in_dirs(search: Vec<PathBuf>) -> Found {
        Found {
            search,
            by_type: RefCell::default(),
            dirs: RefCell::default(),
            euid: std::cell::OnceCell::new(),
        }
    }

    /// [`Helper::find`], answered from what was found before for `fstype`.
    pub fn find(&self, fstype: &str, helpers: Helpers<'_>) -> Option<Helper> {
        let known = self.by_type.borrow().get(fstype).cloned();
        let helper = match known {
            Some(helper) => helper,
            None => {
                let search: Vec<&Path> = self.search.iter().map(PathBuf::as_path).collect();
                let helper = Helper::find_in(&search, fstype);
                if self.dirs.borrow().is_empty() {
                    *self.dirs.borrow_mut() = search_dirs(&search);
                }
                self.by_type
                    .borrow_mut()
                    .insert(fstype.to_string(), helper.clone());
                helper
            }
        }?;
        Some(Helper {
            verbose: helpers.verbose,
            ..helper
        })
    }

    /// This process's effective user id, asked once: it never changes it.
    fn euid(&self) -> rustix::process::Uid {
        *self.euid.get_or_init(rustix::process::geteuid)
    }

    /// The run has unmounted (or tried to) the mount at `mount_point`,
    /// with what a lazy unmount takes along below it: what was found is
    /// forgotten if that can have changed it.
    pub fn unmounted(&self, mount_point: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let dirs = self.dirs.borrow();
        fn bytes(p: &Path) -> &[u8] {
            p.as_os_str().as_bytes()
        }
        let changes = dirs.iter().any(|dir| {
            // Compared by component only where one path begins with the
            // other at all: most mount points are nowhere near.
            (bytes(dir).starts_with(bytes(mount_point)) && dir.starts_with(mount_point))
                || (bytes(mount_point).starts_with(bytes(dir)) && mount_point.parent() == Some(dir))
        });
        drop(dirs);
        if changes {
            self.by_type.borrow_mut().clear();
            self.dirs.borrow_mut().clear();
        }
    }
}

/// The directories of `search` as given, and each with its symbolic links
/// resolved (where it does not exist, its nearest ancestor that does,
/// then the rest as given): the paths whose mounts can change what a
/// search finds.
fn search_dirs(search: &[&Path]) -> Vec<PathBuf> {
    let resolved = |dir: &Path| {
        let mut rest = Vec::new();
        let mut at = dir;
        loop {
            if let Ok(real) = std::fs::canonicalize(at) {
                return rest.iter().rev().fold(real, |p: PathBuf, c| p.join(c));
            }
            match (at.parent(), at.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name);
                    at = parent;
                }
                _ => return dir.to_path_buf(),
            }
        }
    };
    search
        .iter()
        .flat_map(|dir| [dir.to_path_buf(), resolved(dir)])
        .collect()
}

/// How a helper ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// It exited with this status.
    Exited(i32),
    /// It died of this signal.
    Signalled(i32),
    /// The deadline or the caller's cancellation came first: it was killed.
    Stopped(Wake),
    /// Killed as [`Ran::Stopped`], it had not ended after
    /// [`crate::child::KILL_GRACE`]: asleep in the kernel, given up. It
    /// may still unmount.
    GivenUp,
}

impl Helper {
    /// The helper for `fstype` in [`SEARCH_PATH`], if one is installed,
    /// to be run as `helpers` say.
    pub fn find(fstype: &str, helpers: Helpers<'_>) -> Option<Helper> {
        if let Some(found) = helpers.found {
            return found.find(fstype, helpers);
        }
        let helper = Helper::find_in(&SEARCH_PATH.map(Path::new), fstype)?;
        Some(Helper {
            verbose: helpers.verbose,
            ..helper
        })
    }

    /// The helper for `fstype` in `dirs`: `umount.TYPE.SUBTYPE`, then
    /// `umount.TYPE`, in each directory in turn, as libmount looks. None
    /// for a type that names no helper (none, a list, a path).
    pub fn find_in(dirs: &[&Path], fstype: &str) -> Option<Helper> {
        if fstype.is_empty() || fstype == "none" || fstype.contains([',', '/']) {
            return None;
        }
        let names = std::iter::once(fstype).chain(fstype.rsplit_once('.').map(|(t, _)| t));
        let names: Vec<&str> = names.collect();
        dirs.iter().find_map(|dir| {
            names.iter().find_map(|name| {
                let program = dir.join(format!("umount.{name}"));
                program.symlink_metadata().is_ok().then(|| Helper {
                    program,
                    fstype: fstype.to_string(),
                    verbose: false,
                    kind: Kind::Umount,
                })
            })
        })
    }

    /// The helper that unmounts `mount` for this process, as `helpers`
    /// say: for root, the `umount.TYPE` of its type ([`Helper::find`]);
    /// for another user, `fusermount` on a FUSE mount of that user's own
    /// (its `user_id=`), and nothing else (the kernel refuses the rest).
    pub fn for_mount(mount: &Mount, helpers: Helpers<'_>) -> Option<Helper> {
        let uid = match helpers.found {
            Some(found) => found.euid(),
            None => rustix::process::geteuid(),
        };
        if uid.is_root() {
            return Helper::find(&mount.fstype, helpers);
        }
        if !is_own_fuse(mount, uid.as_raw()) {
            return None;
        }
        let program = FUSERMOUNT.iter().map(Path::new).find(|p| p.exists())?;
        Some(Helper {
            program: program.to_path_buf(),
            fstype: mount.fstype.clone(),
            verbose: helpers.verbose,
            kind: Kind::Fusermount,
        })
    }

    /// Its arguments: for `umount.TYPE`, as umount(8) gives them: the
    /// mount point, `-n` (no mtab is written), then `-l`, `-f`, `-v`, `-r`
    /// as asked, and `-t TYPE.SUBTYPE` to a helper whose name does not say
    /// the subtype; for `fusermount`, `-u`, `-z` for a lazy unmount, the
    /// mount point.
    pub fn args(
        &self,
        mount_point: &Path,
        lazy: bool,
        force: bool,
        read_only: bool,
    ) -> Vec<OsString> {
        if self.kind == Kind::Fusermount {
            let lazy = lazy.then_some(OsString::from("-z"));
            let args = std::iter::once("-u".into()).chain(lazy);
            return args.chain([mount_point.into()]).collect();
        }
        let mut args: Vec<OsString> = vec![mount_point.into(), "-n".into()];
        for (given, flag) in [
            (lazy, "-l"),
            (force, "-f"),
            (self.verbose, "-v"),
            (read_only, "-r"),
        ] {
            if given {
                args.push(flag.into());
            }
        }
        let named = self.program.to_string_lossy().ends_with(&self.fstype);
        if self.fstype.contains('.') && !named {
            args.extend(["-t".into(), OsString::from(&self.fstype)]);
        }
        args
    }

    /// Runs it with `args` and waits until it ends, `deadline` passes or
    /// `cancel` says stop (then it is killed and reaped). Err: it could not
    /// be started (umount(8)'s exit status 126).
    pub fn run(
        &self,
        args: &[OsString],
        deadline: Option<Instant>,
        cancel: Cancel<'_>,
    ) -> Result<Ran, std::io::Error> {
        // Its output goes to the command's standard error: standard output
        // is the command's report (`--json`).
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .spawn()?;
        let until =
            deadline.unwrap_or_else(|| crate::duration::deadline(Instant::now(), Duration::MAX));
        // A helper asleep in the kernel past SIGKILL (its umount2 in the
        // writeback of a disk or a server that does not answer) is given
        // up after a grace, left to end on its own: the deadline holds.
        Ok(match wait_for_program(&mut child, until, cancel)? {
            ProgramEnd::Ended(status) => match (status.code(), status.signal()) {
                (Some(code), _) => Ran::Exited(code),
                (None, signal) => Ran::Signalled(signal.unwrap_or(0)),
            },
            ProgramEnd::Stopped(wake) => Ran::Stopped(wake),
            ProgramEnd::GivenUp(_) => Ran::GivenUp,
        })
    }
}

/// Whether `/etc/fstab` lists `mount_point` with an option that lets
/// users unmount it (`user`, `users`, `owner`, `group`), which umount(8),
/// setuid, honours and umount-wait, not setuid, cannot.
pub fn listed_for_users(mount_point: &Path) -> bool {
    std::fs::read("/etc/fstab").is_ok_and(|text| fstab_lets_users(&text, mount_point))
}

/// [`listed_for_users`] on the text of an fstab.
pub fn fstab_lets_users(fstab: &[u8], mount_point: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    fstab.split(|&b| b == b'\n').any(|line| {
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let (Some(source), Some(target), Some(_), Some(options)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        !source.starts_with(b"#")
            && crate::mountinfo::unescape(target) == mount_point.as_os_str().as_bytes()
            && options
                .split(|&b| b == b',')
                .any(|o| matches!(o, b"user" | b"users" | b"owner" | b"group"))
    })
}

/// A FUSE mount that user `uid` mounted (its `user_id=` option), which
/// `fusermount -u` unmounts for that user.
pub fn is_own_fuse(mount: &Mount, uid: u32) -> bool {
    let fuse = mount.fstype == "fuse" || mount.fstype.starts_with("fuse.");
    let own = format!("user_id={uid}");
    fuse && mount.options.split(',').any(|o| o == own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_type_then_without_its_subtype() {
        let dir = std::env::temp_dir().join(format!("umw-helper-{}", std::process::id()));
        let (first, second) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("umount.nfs"), "").unwrap();
        std::fs::write(second.join("umount.fuse"), "").unwrap();
        std::fs::write(first.join("umount.fuse.sshfs"), "").unwrap();
        let dirs = [first.as_path(), second.as_path()];
        let found = |t: &str| Helper::find_in(&dirs, t).map(|h| h.program);
        assert_eq!(found("nfs"), Some(second.join("umount.nfs")));
        assert_eq!(found("nfs4"), None);
        assert_eq!(found("fuse.sshfs"), Some(first.join("umount.fuse.sshfs")));
        assert_eq!(found("fuse.bindfs"), Some(second.join("umount.fuse")));
        for refused in ["", "none", "nfs,tmpfs", "../nfs"] {
            assert_eq!(found(refused), None, "{refused:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 25: a run looks for a type's helper once, not once a mount;
    /// what it found is forgotten where an unmount of the run can change
    /// it (a mount on the search directory, above it through a link, or
    /// on a file in it), and kept for any other.
    #[test]
    fn a_run_looks_for_a_type_once_until_an_unmount_there() {
        let dir = std::env::temp_dir().join(format!("umw-found-{}", std::process::id()));
        let real = dir.join("usr/sbin");
        std::fs::create_dir_all(&real).unwrap();
        let _ = std::fs::remove_file(dir.join("sbin"));
        std::os::unix::fs::symlink("usr/sbin", dir.join("sbin")).unwrap();
        let found = Found::in_dirs(vec![dir.join("sbin"), dir.join("sbin/fs.d")]);
        let helpers = Helpers {
            verbose: true,
            found: Some(&found),
        };
        let program = |t: &str| found.find(t, helpers).map(|h| (h.program, h.verbose));
        assert_eq!(program("umwtest"), None);
        std::fs::write(real.join("umount.umwtest"), "").unwrap();
        assert_eq!(program("umwtest"), None, "looked for once");
        for elsewhere in [
            PathBuf::from("/mnt"),
            dir.join("usr/sbinx"),
            real.join("sub/deeper"),
        ] {
            found.unmounted(&elsewhere);
            assert_eq!(program("umwtest"), None, "{elsewhere:?}");
        }
        found.unmounted(&dir.join("usr"));
        let helper = Some((dir.join("sbin/umount.umwtest"), true));
        assert_eq!(program("umwtest"), helper, "looked for again");
        std::fs::remove_file(real.join("umount.umwtest")).unwrap();
        assert_eq!(program("umwtest"), helper);
        found.unmounted(&real.join("fs.d"));
        assert_eq!(program("umwtest"), None, "a mount on a search directory");
        std::fs::write(real.join("umount.umwtest"), "").unwrap();
        found.unmounted(&real.join("umount.umwtest"));
        assert_eq!(program("umwtest"), helper, "a mount on the helper itself");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn arguments_as_umount8_gives_them() {
        let helper = |program: &str, fstype: &str, verbose| Helper {
            program: program.into(),
            fstype: fstype.into(),
            verbose,
            kind: Kind::Umount,
        };
        let args = |h: Helper, l, f, r| -> Vec<String> {
            h.args(Path::new("/mnt/x"), l, f, r)
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            args(
                helper("/sbin/umount.nfs", "nfs", false),
                false,
                false,
                false
            ),
            ["/mnt/x", "-n"]
        );
        assert_eq!(
            args(helper("/sbin/umount.nfs", "nfs", true), true, true, true),
            ["/mnt/x", "-n", "-l", "-f", "-v", "-r"]
        );
        assert_eq!(
            args(
                helper("/sbin/umount.fuse", "fuse.sshfs", false),
                false,
                false,
                false
            ),
            ["/mnt/x", "-n", "-t", "fuse.sshfs"]
        );
        assert_eq!(
            args(
                helper("/sbin/umount.fuse.sshfs", "fuse.sshfs", false),
                false,
                false,
                false
            ),
            ["/mnt/x", "-n"]
        );
        let fusermount = Helper {
            kind: Kind::Fusermount,
            ..helper("/usr/bin/fusermount3", "fuse.sshfs", true)
        };
        assert_eq!(
            args(fusermount.clone(), false, true, true),
            ["-u", "/mnt/x"]
        );
        assert_eq!(args(fusermount, true, false, false), ["-u", "-z", "/mnt/x"]);
    }

    #[test]
    fn fstab_entries_that_let_users_unmount() {
        let fstab = b"# /mnt/a none tmpfs users 0 0\n\
            /dev/sdb1 /mnt/b ext4 defaults 0 2\n\
            /dev/sdc1\t/mnt/with\\040space  vfat  noauto,user  0 0\n\
            host:/x /mnt/n nfs rw,users\n\
            short /mnt/s\n";
        let lets = |p: &str| fstab_lets_users(fstab, Path::new(p));
        assert!(lets("/mnt/with space"));
        assert!(lets("/mnt/n"));
        assert!(!lets("/mnt/a"), "a comment");
        assert!(!lets("/mnt/b"));
        assert!(!lets("/mnt/s"), "no options field");
        assert!(!lets("/mnt/c"));
    }

    #[test]
    fn own_fuse_mounts_by_user_id() {
        let mount = |fstype: &str, options: &str| {
            crate::mountinfo::parse(
                format!("40 1 0:40 / /m rw - {fstype} src rw,{options}\n").as_bytes(),
            )
            .unwrap()
            .remove(0)
        };
        let ids = "user_id=1000,group_id=1000";
        assert!(is_own_fuse(&mount("fuse.sshfs", ids), 1000));
        assert!(is_own_fuse(&mount("fuse", ids), 1000));
        assert!(!is_own_fuse(&mount("fuse.sshfs", ids), 1001));
        assert!(!is_own_fuse(&mount("fuse.sshfs", "user_id=10000"), 1000));
        assert!(!is_own_fuse(&mount("tmpfs", ids), 1000));
    }
}
