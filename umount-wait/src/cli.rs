//! The command line, and the exit codes it promises.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use umount_wait::loopdev::LoopOutcome;
use umount_wait::outcome::{Error, ErrorKind, Outcome, Report, State};
use umount_wait::shutdown::Entry;
use umount_wait::Mode;

const AFTER_HELP: &str = "\
Exit codes (compatible with umount(8)):
  0   every target unmounted and its filesystem shut down; or unmounted while
      its filesystem stays mounted elsewhere in this namespace (\"unmounted;
      its filesystem stays mounted at ...\" on stderr, outcome \"unmounted\")
  1   usage error or permission denied (nothing was unmounted on a usage error)
  2   system error
  3   detached, shutdown not confirmed (--timeout expired, or a signal such as
      Ctrl-C interrupted the wait, or no inotify watch could be added and no
      block device claim confirmed the shutdown); the filesystem may still
      be running
  32  failure: the target was left as it was (or, with -r, remounted read-only);
      also a target whose filesystem holds umount-wait's own root or working
      directory (umount-wait /): it could never shut down, so it is refused
      as busy, on both paths
  64  several targets with different results (some failed)
With --all, the same codes over every selected filesystem: 0 when all shut
down (the root, if selected, remounted read-only; bind mounts unmounted) and
their loop devices detached; 32 when none did; 64 when some did.

Examples:
  umount-wait /mnt/data                  unmount, return when shut down
  umount-wait -l -t 30s /mnt/data        lazy detach, wait at most 30 seconds
  umount-wait -R -r /mnt                 submounts first; read-only if busy
  umount-wait --json /mnt/a /mnt/b       one JSON object per target on stdout
  umount-wait --probe                    kernel or fallback path on this kernel
  umount-wait --all -t 20s               shutdown: everything but API
                                         filesystems, deepest first, one deadline
  umount-wait --all --include /data --exclude /data/cache --types noext4";

#[derive(Parser, Debug)]
#[command(
    name = "umount-wait",
    version,
    about = "Unmount filesystems and return only when they are shut down",
    long_about = "Unmount filesystems and return only when they are shut down.\n\n\
        umount(2) can return while the filesystem still runs: copies in other mount\n\
        namespaces, lazy detach with open files, final references dropped by kernel\n\
        threads. umount-wait returns when the superblock is gone. A target whose\n\
        filesystem stays mounted elsewhere in this namespace is unmounted without\n\
        a wait (it cannot shut down), and that is said. On kernels with\n\
        UMOUNT_WAIT the kernel waits, in a child process that is killed when\n\
        --timeout expires or on Ctrl-C/SIGTERM (the kernel's wait ends only when\n\
        its caller dies); elsewhere an inotify watch on the mount root reports\n\
        the shutdown (IN_UNMOUNT), then the block device claim is checked.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Print which path this kernel gets ("kernel" or "fallback") and exit 0
    #[arg(long, exclusive = true)]
    pub probe: bool,

    /// Which way to wait: kernel fails where UMOUNT_WAIT is missing, fallback
    /// forces the userspace path
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,

    /// Lazy unmount: detach now, wait until the last user has gone (MNT_DETACH)
    #[arg(short = 'l', long)]
    pub lazy: bool,

    /// Force the unmount (MNT_FORCE; for unreachable network filesystems);
    /// with --all, on the last pass only
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Do not follow a symbolic link as the last component of TARGET
    #[arg(long)]
    pub no_follow: bool,

    /// Unmount the mounts below each TARGET first, deepest first; a TARGET
    /// inside another TARGET's tree is refused (given twice)
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// If unmounting fails because the target is busy, remount it read-only;
    /// if the wait ends unconfirmed (timeout, signal) while another mount
    /// namespace still has the filesystem, make it read-only there
    #[arg(short = 'r', long = "read-only")]
    pub read_only: bool,

    /// Bound the whole operation on each target, every step of it (500ms,
    /// 30s, 2m, 1h); with --all, one deadline for the whole run
    #[arg(short = 't', long, value_name = "DURATION", value_parser = umount_wait::duration::parse)]
    pub timeout: Option<Duration>,

    /// Print one JSON object per target on stdout, one a line
    #[arg(long)]
    pub json: bool,

    /// Print no "not mounted" errors and no status line (a wait that lasts
    /// still names its holders once)
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say what is done, how long it took, and what held the filesystem
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Shutdown mode: unmount every real filesystem, deepest and newest first,
    /// in passes while a pass makes progress, each confirmed shut down; what
    /// stays busy is remounted read-only, loop devices under them detached.
    /// API filesystems (proc, sysfs, cgroup..., anything under /proc, /sys,
    /// /dev, /run) are skipped; the root is only remounted read-only
    #[arg(short = 'a', long, conflicts_with_all = ["targets", "lazy", "recursive", "no_follow"])]
    pub all: bool,

    /// With --all: only mounts at or below PREFIX (whole path components;
    /// may be repeated)
    #[arg(long, value_name = "PREFIX", conflicts_with = "targets")]
    pub include: Vec<PathBuf>,

    /// With --all: never mounts at or below PREFIX (may be repeated)
    #[arg(long, value_name = "PREFIX", conflicts_with = "targets")]
    pub exclude: Vec<PathBuf>,

    /// With --all: only these filesystem types, as umount(8) -t takes them:
    /// ext4,vfat selects those; a leading "no" (noext4,vfat) selects all
    /// others. Naming an API type (tmpfs is not one) selects it
    #[arg(long, value_name = "LIST", conflicts_with = "targets", value_parser = umount_wait::select::TypeList::parse)]
    pub types: Option<umount_wait::select::TypeList>,

    /// With --all: do not skip API filesystems
    #[arg(long, conflicts_with = "targets")]
    pub include_api: bool,

    /// Mount points to unmount (absolute paths)
    #[arg(value_name = "TARGET", required_unless_present_any = ["probe", "all"])]
    pub targets: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Auto,
    Kernel,
    Fallback,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Kernel => Mode::Kernel,
            ModeArg::Fallback => Mode::Fallback,
        }
    }
}

/// The exit codes, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Usage = 1,
    System = 2,
    Unconfirmed = 3,
    Failure = 32,
    SomeFailed = 64,
}

impl Exit {
    pub fn for_report(report: &Report) -> Exit {
        match report.outcome {
            Outcome::ShutDown | Outcome::RootReadOnly | Outcome::Unmounted { .. } => Exit::Success,
            Outcome::DetachedUnconfirmed(_) => Exit::Unconfirmed,
            Outcome::RemountedReadOnly(_) => Exit::Failure,
        }
    }

    pub fn for_error(error: &Error) -> Exit {
        if error.state == State::Detached {
            return Exit::Unconfirmed;
        }
        match error.kind {
            ErrorKind::Empty
            | ErrorKind::NotAbsolute
            | ErrorKind::Duplicate { .. }
            | ErrorKind::InsideTree { .. }
            | ErrorKind::PermissionDenied => Exit::Usage,
            ErrorKind::NoKernelSupport | ErrorKind::System(_) => Exit::System,
            ErrorKind::NotFound
            | ErrorKind::NotMountPoint
            | ErrorKind::Symlink
            | ErrorKind::Busy
            | ErrorKind::SubmountFailed { .. }
            | ErrorKind::Covered
            | ErrorKind::Moved
            | ErrorKind::DeadlineReached
            | ErrorKind::Interrupted => Exit::Failure,
        }
    }

    /// `--all`: one filesystem, and the loop device under it.
    pub fn for_entry(entry: &Entry) -> Exit {
        let fs = match &entry.result {
            Ok(report) => Exit::for_report(report),
            Err(error) => Exit::for_error(error),
        };
        match &entry.loop_detach {
            Some(d)
                if fs == Exit::Success && !matches!(d.outcome, LoopOutcome::Detached { .. }) =>
            {
                Exit::Failure
            }
            _ => fs,
        }
    }

    /// One code for several targets: theirs when they agree, 64 otherwise.
    pub fn combine(codes: &[Exit]) -> Exit {
        match codes.split_first() {
            None => Exit::Success,
            Some((first, rest)) if rest.iter().all(|c| c == first) => *first,
            Some(_) => Exit::SomeFailed,
        }
    }
}

/// clap's own exits: help and version are successes, any other parse error is
/// a usage error (clap would use 2, which umount(8) gives system errors).
pub fn exit_for_parse_error(kind: clap::error::ErrorKind) -> Exit {
    use clap::error::ErrorKind as K;
    match kind {
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand => {
            Exit::Success
        }
        _ => Exit::Usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    use umount_wait::outcome::Unconfirmed;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("umount-wait").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn umount_compatible_options() {
        let cli = parse(&[
            "-l",
            "-f",
            "-R",
            "-r",
            "-v",
            "--no-follow",
            "-t",
            "2m",
            "/mnt/a",
            "/mnt/b",
        ])
        .unwrap();
        assert!(
            cli.lazy && cli.force && cli.recursive && cli.read_only && cli.verbose && cli.no_follow
        );
        assert_eq!(cli.timeout, Some(Duration::from_secs(120)));
        assert_eq!(
            cli.targets,
            vec![PathBuf::from("/mnt/a"), PathBuf::from("/mnt/b")]
        );
        assert_eq!(cli.mode, ModeArg::Auto);
        let cli = parse(&["--mode", "fallback", "--json", "-q", "/x"]).unwrap();
        assert_eq!(cli.mode, ModeArg::Fallback);
        assert!(cli.json && cli.quiet);
    }

    #[test]
    fn probe_stands_alone() {
        assert!(parse(&["--probe"]).unwrap().probe);
        assert!(parse(&["--probe", "/mnt"]).is_err());
    }

    #[test]
    fn usage_errors_exit_1() {
        for args in [
            &["--bogus", "/x"][..],
            &[][..],
            &["-t", "5x", "/x"][..],
            &["-t", "", "/x"][..],
            &["--mode", "fast", "/x"][..],
            &["-q", "-v", "/x"][..],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(exit_for_parse_error(e.kind()), Exit::Usage, "{args:?}");
        }
        let e = parse(&["--help"]).unwrap_err();
        assert_eq!(exit_for_parse_error(e.kind()), Exit::Success);
    }

    #[test]
    fn all_mode_options() {
        let cli = parse(&[
            "--all",
            "--include",
            "/data",
            "--include",
            "/mnt",
            "--exclude",
            "/mnt/keep",
            "--types",
            "noext4",
            "-f",
            "-t",
            "20s",
        ])
        .unwrap();
        assert!(cli.all && cli.force && cli.targets.is_empty());
        assert_eq!(cli.include, [PathBuf::from("/data"), PathBuf::from("/mnt")]);
        assert_eq!(cli.exclude, [PathBuf::from("/mnt/keep")]);
        assert!(cli.types.unwrap().matches("vfat"));
        assert!(parse(&["-a", "-r", "--include-api"]).unwrap().all);
        for args in [
            &["--all", "/mnt"][..],
            &["--all", "-l"][..],
            &["--all", "-R"][..],
            &["--include", "/mnt", "/mnt"][..],
            &["--types", "ext4", "/mnt"][..],
            &["--all", "--types", "ext4,"][..],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(exit_for_parse_error(e.kind()), Exit::Usage, "{args:?}");
        }
    }

    #[test]
    fn non_utf8_and_odd_targets_are_kept_verbatim() {
        let odd = OsString::from_vec(b"/mnt/\xff x\ny".to_vec());
        let cli = Cli::try_parse_from([OsString::from("umount-wait"), odd.clone()]).unwrap();
        assert_eq!(cli.targets, vec![PathBuf::from(odd)]);
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "  0 ",
            "  1 ",
            "  2 ",
            "  3 ",
            "  32 ",
            "  64 ",
            "--timeout",
            "--probe",
            "--all",
            "--include",
            "--exclude",
            "--types",
        ] {
            assert!(help.contains(needle), "help lacks {needle:?}");
        }
    }

    #[test]
    fn exit_codes() {
        use umount_wait::mountinfo::{DevId, Mount};
        let report = |outcome| Report {
            target: "/x".into(),
            mount: Mount {
                id: 1,
                parent_id: 0,
                dev: DevId { major: 0, minor: 1 },
                root: "/".into(),
                mount_point: "/x".into(),
                fstype: "tmpfs".into(),
                source: "tmpfs".into(),
            },
            device_nodes: vec![],
            path: umount_wait::WaitPath::Fallback,
            outcome,
            umount_time: Duration::ZERO,
            wait_time: Duration::ZERO,
            claim_attempts: 0,
            blockers: vec![],
            read_only_through: None,
        };
        assert_eq!(Exit::for_report(&report(Outcome::ShutDown)), Exit::Success);
        assert_eq!(
            Exit::for_report(&report(Outcome::DetachedUnconfirmed(Unconfirmed::Signal(
                2
            )))),
            Exit::Unconfirmed
        );
        assert_eq!(
            Exit::for_report(&report(Outcome::RemountedReadOnly(rustix::io::Errno::BUSY))),
            Exit::Failure
        );
        let err = |kind| Error::new("/x", kind, None);
        assert_eq!(Exit::for_error(&err(ErrorKind::NotAbsolute)), Exit::Usage);
        assert_eq!(
            Exit::for_error(&err(ErrorKind::PermissionDenied)),
            Exit::Usage
        );
        assert_eq!(
            Exit::for_error(&err(ErrorKind::NotMountPoint)),
            Exit::Failure
        );
        assert_eq!(Exit::for_error(&err(ErrorKind::Busy)), Exit::Failure);
        assert_eq!(
            Exit::for_error(&err(ErrorKind::NoKernelSupport)),
            Exit::System
        );
        assert_eq!(
            Exit::for_error(&err(ErrorKind::System("reading")).with_state(State::Detached)),
            Exit::Unconfirmed
        );
        assert_eq!(Exit::combine(&[]), Exit::Success);
        assert_eq!(
            Exit::combine(&[Exit::Unconfirmed, Exit::Unconfirmed]),
            Exit::Unconfirmed
        );
        assert_eq!(
            Exit::combine(&[Exit::Success, Exit::Failure]),
            Exit::SomeFailed
        );
        assert_eq!(Exit::combine(&[Exit::Failure]), Exit::Failure);
    }
}
