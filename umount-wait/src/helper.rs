//! External unmount helpers, `/sbin/umount.TYPE`: found and run as
//! umount(8) (libmount) finds and runs them, for the filesystems whose
//! unmount is more than `umount2(2)` (`umount.nfs`, `umount.davfs`,
//! `umount.udisks2`). The helper unmounts; the wait for the filesystem's
//! shutdown comes after it, as after `umount2`.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags};

use crate::cancel::{self, Cancel, Wake};

/// Where libmount looks for `umount.TYPE` (its `FS_SEARCH_PATH`), in order.
pub const SEARCH_PATH: [&str; 3] = ["/sbin", "/sbin/fs.d", "/sbin/fs"];

/// A helper found for a filesystem type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helper {
    /// `/sbin/umount.TYPE`.
    pub program: PathBuf,
    /// The mount's type, `TYPE` or `TYPE.SUBTYPE`.
    pub fstype: String,
    /// `-v`, passed on.
    pub verbose: bool,
}

/// That unmount helpers run, as umount(8) runs them unless `-i`, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Helpers {
    /// `-v`, passed on to them.
    pub verbose: bool,
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
}

impl Helper {
    /// The helper for `fstype` in [`SEARCH_PATH`], if one is installed,
    /// to be run as `helpers` say.
    pub fn find(fstype: &str, helpers: Helpers) -> Option<Helper> {
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
                })
            })
        })
    }

    /// Its arguments, as umount(8) gives them: the mount point, `-n` (no
    /// mtab is written), then `-l`, `-f`, `-v`, `-r` as asked, and `-t
    /// TYPE.SUBTYPE` to a helper whose name does not say the subtype.
    pub fn args(
        &self,
        mount_point: &Path,
        lazy: bool,
        force: bool,
        read_only: bool,
    ) -> Vec<OsString> {
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
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .spawn()?;
        let pid = Pid::from_raw(child.id() as i32).expect("a child's pid is positive");
        let wake = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(pidfd) => {
                let until = deadline
                    .unwrap_or_else(|| crate::duration::deadline(Instant::now(), Duration::MAX));
                cancel::wait_readable(Some(pidfd.as_fd()), cancel, until)
            }
            // No pidfd (a kernel older than 5.3): the helper is waited for
            // without a bound.
            Err(_) => Wake::Readable,
        };
        if wake != Wake::Readable {
            let _ = child.kill();
        }
        let status = child.wait()?;
        Ok(match (wake, status.code(), status.signal()) {
            (Wake::Readable, Some(code), _) => Ran::Exited(code),
            (Wake::Readable, None, Some(signal)) => Ran::Signalled(signal),
            (Wake::Readable, None, None) => Ran::Signalled(0),
            (stopped, _, _) => Ran::Stopped(stopped),
        })
    }
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

    #[test]
    fn arguments_as_umount8_gives_them() {
        let helper = |program: &str, fstype: &str, verbose| Helper {
            program: program.into(),
            fstype: fstype.into(),
            verbose,
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
    }
}
