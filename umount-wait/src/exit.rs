//! The exit codes the command promises, in one place.

use umount_wait::loopdev::LoopOutcome;
use umount_wait::outcome::{Error, ErrorKind, Outcome, Report, State};
use umount_wait::shutdown::Entry;

/// The exit codes, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    Usage,
    System,
    Unconfirmed,
    Failure,
    SomeFailed,
    /// `--last-shutdown`: no verdict recorded where it looked.
    NoVerdict,
    /// `--last-shutdown`: records there, none intact (damaged, cut, or
    /// of a newer format).
    BadVerdict,
    /// An unmount helper's own status, as umount(8) returns it (126: it
    /// could not be started).
    Helper(u8),
}

impl Exit {
    /// The process's exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Usage => 1,
            Exit::System => 2,
            Exit::Unconfirmed => 3,
            Exit::Failure => 32,
            Exit::SomeFailed => 64,
            Exit::NoVerdict => 4,
            Exit::BadVerdict => 5,
            Exit::Helper(code) => code,
        }
    }

    pub fn for_report(report: &Report) -> Exit {
        match report.outcome {
            Outcome::ShutDown | Outcome::RootReadOnly | Outcome::Unmounted { .. } => Exit::Success,
            Outcome::DetachedUnconfirmed(_) => Exit::Unconfirmed,
            Outcome::RemountedReadOnly(_)
            | Outcome::MountReadOnly { .. }
            | Outcome::ShutDownByIoctl(_) => Exit::Failure,
        }
    }

    pub fn for_error(error: &Error) -> Exit {
        if matches!(error.state, State::Detached | State::Unknown) {
            return Exit::Unconfirmed;
        }
        match error.kind {
            ErrorKind::Empty
            | ErrorKind::NotAbsolute
            | ErrorKind::Duplicate { .. }
            | ErrorKind::InsideTree { .. }
            | ErrorKind::PermissionDenied
            | ErrorKind::TagInNamespace
            | ErrorKind::NotSuperuser
            | ErrorKind::UserMount
            | ErrorKind::OwnFuse => Exit::Usage,
            ErrorKind::NoKernelSupport | ErrorKind::NoNotifySupport | ErrorKind::System(_) => {
                Exit::System
            }
            ErrorKind::NotFound
            | ErrorKind::NotMountPoint
            | ErrorKind::Symlink
            | ErrorKind::Busy
            | ErrorKind::PinnedByCaller
            | ErrorKind::SubmountFailed { .. }
            | ErrorKind::Covered
            | ErrorKind::Moved
            | ErrorKind::DeadlineReached
            | ErrorKind::AmbiguousTag { .. }
            | ErrorKind::GivenUp(_)
            | ErrorKind::Interrupted => Exit::Failure,
            ErrorKind::HelperFailed { status, .. } => Exit::Helper(status.clamp(0, 255) as u8),
            ErrorKind::HelperNotRun { .. } => Exit::Helper(126),
        }
    }

    /// `--all`: one filesystem, and the loop device under it.
    pub fn for_entry(entry: &Entry) -> Exit {
        let fs = match &entry.result {
            Ok(report) => Exit::for_report(report),
            Err(error) => Exit::for_error(error),
        };
        let loop_left = entry
            .loop_detach
            .as_ref()
            .is_some_and(|d| !matches!(d.outcome, LoopOutcome::Detached { .. }));
        let not_released = entry.released.iter().any(|r| !r.done());
        match fs {
            Exit::Success if loop_left || not_released => Exit::Failure,
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
pub fn for_parse_error(kind: clap::error::ErrorKind) -> Exit {
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
    use std::time::Duration;
    use umount_wait::outcome::Unconfirmed;

    #[test]
    fn parse_errors_exit_1_help_exits_0() {
        use clap::Parser;
        use umount_wait::cli::Cli;
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("umount-wait").chain(args.iter().copied()))
                .unwrap_err()
                .kind()
        };
        for args in [
            &["--bogus", "/x"][..],
            &[][..],
            &["--timeout", "5x", "/x"][..],
        ] {
            assert_eq!(for_parse_error(parse(args)), Exit::Usage, "{args:?}");
        }
        for args in [&["--help"][..], &["-h"][..], &["--version"][..]] {
            assert_eq!(for_parse_error(parse(args)), Exit::Success, "{args:?}");
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
                options: "rw".into(),
            },
            device_nodes: vec![],
            path: umount_wait::WaitPath::Fallback,
            outcome,
            umount_time: Duration::ZERO,
            wait_time: Duration::ZERO,
            claim_attempts: 0,
            blockers: vec![],
            read_only_through: None,
            kernel_errors: Vec::new(),
            thawed: false,
            device_names: Vec::new(),
            device_removed: false,
            device_still_open: Vec::new(),
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
