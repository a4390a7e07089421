//! The shutdown's verdict across the reboot: `--all` records it in
//! pstore's pmsg when it ends ([`record`]); `--last-shutdown` prints it on
//! the next boot ([`show`]). The format and the reading are the
//! library's ([`umount_wait::verdict`]); what each filesystem was left as,
//! in the report's own words, is decided here.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use rustix::io::Errno;
use umount_wait::blockers::Blocker;
use umount_wait::mountinfo::Mount;
use umount_wait::outcome::{Outcome, Report, State};
use umount_wait::shutdown::{Entry, Summary};
use umount_wait::verdict::{self, Filesystem, Holder, Left, Name, NotWritten, Search, Verdict};

use crate::exit::Exit;
use crate::report::{outcome_reason, stopped_name, Printer};

/// The record's size where the buffer's is not known (a pmsg backend
/// other than ramoops): a few dozen filesystems fit.
const DEFAULT_ROOM: usize = 16 << 10;

/// The verdict of a `--all` run that ended with `exit`.
pub fn verdict(summary: &Summary, exit: i32) -> Verdict {
    Verdict {
        version: verdict::VERSION,
        boot_id: first_line("/proc/sys/kernel/random/boot_id"),
        time: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs()),
        // uname(2): also where /proc is not mounted any more.
        kernel: Some(umount_wait::sys::kernel_release()).filter(|r| !r.is_empty()),
        exit,
        stopped: stopped_name(summary.stopped),
        passes: summary.passes,
        elapsed_ms: crate::json::ms(summary.elapsed),
        filesystems: {
            // What is left mounted, as it is now: the mounts that failed
            // are named by their path alone in the run's errors.
            // Indexed once (the newest mount at a path wins).
            let now = umount_wait::mountinfo::read(None).ok();
            let at: HashMap<&Path, &Mount> = now
                .iter()
                .flat_map(|t| t.iter())
                .map(|m| (m.mount_point.as_path(), m))
                .collect();
            summary.entries.iter().map(|e| filesystem(e, &at)).collect()
        },
        omitted_shut_down: 0,
        omitted_other: 0,
    }
}

fn first_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().next()?.to_string())
}

/// One filesystem as the next boot should read it; `at`, the mount
/// table at the end of the run by mount point, tells what a failed one
/// was left as.
fn filesystem(entry: &Entry, at: &HashMap<&Path, &Mount>) -> Filesystem {
    match &entry.result {
        Ok(report) => from_report(report),
        Err(error) => {
            let mount = at.get(error.target.as_path()).copied();
            let left = match error.state {
                State::Untouched if mount.is_some_and(superblock_read_only) => Left::ReadOnly,
                State::Untouched if error.made_read_only => Left::ReadOnly,
                State::Untouched => Left::ReadWrite,
                State::Detached => Left::Detached,
                State::ReadOnly => Left::ReadOnly,
                State::ShutDown => Left::ShutDown,
                State::Unmounted => Left::Unmounted,
                State::ShutDownByIoctl => Left::ShutDownByIoctl,
                State::Unknown => Left::Unknown,
            };
            // The message names the target; the line does already.
            let message = error.to_string();
            let target = format!("{}: ", umount_wait::mountinfo::display(&error.target));
            Filesystem {
                mount_point: Name::of(&error.target),
                source: mount.map(|m| Name::of(&m.source)),
                fstype: mount.map(|m| m.fstype.to_string()),
                outcome: crate::json::state_name(error.state).into(),
                left,
                reason: Some(message.strip_prefix(&target).unwrap_or(&message).into()),
                held_by: holders(&error.blockers),
                more_holders: 0,
            }
        }
    }
}

/// The superblock's `ro`: the second `ro` or `rw` among the options (the
/// mount's come first, then the superblock's, each beginning with one).
fn superblock_read_only(mount: &Mount) -> bool {
    mount
        .options
        .split(',')
        .filter(|o| *o == "ro" || *o == "rw")
        .nth(1)
        == Some("ro")
}

fn from_report(report: &Report) -> Filesystem {
    let left = match &report.outcome {
        Outcome::ShutDown => Left::ShutDown,
        Outcome::Unmounted { .. } => Left::Unmounted,
        Outcome::RemountedReadOnly(_) | Outcome::RootReadOnly => Left::ReadOnly,
        // This mount alone: the filesystem stays writable where it is
        // mounted and was not selected.
        Outcome::MountReadOnly { .. } => Left::ReadWrite,
        Outcome::ShutDownByIoctl(_) => Left::ShutDownByIoctl,
        Outcome::DetachedUnconfirmed(_) if report.read_only_through.is_some() => Left::ReadOnly,
        Outcome::DetachedUnconfirmed(_) => Left::Detached,
    };
    let reason = match (left, report.kernel_errors.first()) {
        (Left::ShutDown, Some(first)) => Some(format!(
            "with errors in the kernel log about its device: {first}"
        )),
        _ => outcome_reason(&report.outcome),
    };
    Filesystem {
        mount_point: Name::of(&report.mount.mount_point),
        source: Some(Name::of(&report.mount.source)),
        fstype: Some(report.mount.fstype.to_string()),
        outcome: report.outcome.name().into(),
        left,
        reason,
        // Those of a filesystem that shut down held it until then only.
        held_by: match left {
            Left::ShutDown => Vec::new(),
            _ => holders(&report.blockers),
        },
        more_holders: 0,
    }
}

fn holders(blockers: &[Blocker]) -> Vec<Holder> {
    blockers
        .iter()
        .map(|b| {
            let (pid, command) = match b {
                Blocker::Process { pid, command, .. } => (Some(*pid), Some(command.clone())),
                Blocker::Mount { pid, .. } => (Some(*pid), None),
                _ => (None, None),
            };
            Holder {
                pid,
                command,
                what: b.to_string(),
            }
        })
        .collect()
}

/// `--all`, once it has ended: the verdict written to `/dev/pmsg0`, where
/// there is one, fitted to its buffer. Never an error of the run: the
/// absence of pmsg is said with `-v` only, any other failure in a line.
pub fn record(summary: &Summary, exit: i32, printer: &Printer) {
    let mut len = 0;
    let written = verdict::write_pmsg(Path::new(verdict::PMSG_DEVICE), || {
        let room = verdict::pmsg_size().unwrap_or(DEFAULT_ROOM);
        let record = verdict(summary, exit).fit(room).encode();
        len = record.len();
        record
    });
    match said(&written, len) {
        Said::Verbose(text) => printer.verbose_note(&text),
        Said::Always(text) => {
            crate::report::stderr_line(format_args!("umount-wait: {text}"));
        }
    }
}

/// What [`record`] says of a write: with `-v` only, or always.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Verbose(String),
    Always(String),
}

/// Written, no pmsg here, or pmsg root's (a test run as a user): `-v`
/// says it. Anything else is worth a line: something was in the way.
fn said(written: &Result<(), NotWritten>, len: usize) -> Said {
    let device = verdict::PMSG_DEVICE;
    let lost = "the verdict is not kept for the next boot";
    let why = match written {
        Ok(()) => {
            return Said::Verbose(format!(
                "--all: the verdict recorded in {device} for the next boot ({len} bytes; \
                 umount-wait --last-shutdown)"
            ))
        }
        Err(NotWritten::Absent) => return Said::Verbose(format!("--all: no {device}: {lost}")),
        Err(NotWritten::Failed(Errno::ACCESS | Errno::PERM)) => {
            return Said::Verbose(format!("--all: {device} is root's: {lost}"))
        }
        Err(NotWritten::NotPmsg(what)) => format!("{what}, left alone"),
        Err(NotWritten::Failed(errno)) => {
            std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string()
        }
        Err(NotWritten::Short(n)) => format!("{n} of {len} bytes written"),
    };
    Said::Always(format!(
        "--all: the verdict was not recorded in {device}: {why}"
    ))
}

/// `--last-shutdown[=PATH]`: the latest verdict found at `path` printed
/// (text, or its JSON with `json`) on stdout.
pub fn show(path: &Path, json: bool) -> Exit {
    let err = |text: String| {
        crate::report::stderr_line(format_args!("umount-wait: {text}"));
    };
    let shown = umount_wait::mountinfo::display(path);
    match verdict::search(path) {
        Ok(Search::Found(verdict, file)) => {
            let mut out = std::io::stdout().lock();
            let _ = match json {
                true => writeln!(out, "{}", crate::json::line(&*verdict)),
                false => {
                    let mut text = verdict.lines().join("\n");
                    text += &format!("\n(read from {})", umount_wait::mountinfo::display(&file));
                    writeln!(out, "{text}")
                }
            };
            Exit::Success
        }
        Ok(Search::Nothing(why)) => {
            err(format!("--last-shutdown: no verdict recorded: {why}"));
            Exit::NoVerdict
        }
        Ok(Search::Damaged(file, why)) => {
            err(format!(
                "--last-shutdown: a verdict was recorded in {} but cannot be read: {why}",
                umount_wait::mountinfo::display(&file)
            ));
            Exit::BadVerdict
        }
        Err(e) => {
            err(format!("--last-shutdown: reading {shown}: {e}"));
            Exit::System
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_in_the_way_is_said_without_verbose() {
        let verbose = |r| matches!(said(&r, 10), Said::Verbose(_));
        assert!(verbose(Ok(())));
        assert!(verbose(Err(NotWritten::Absent)));
        assert!(verbose(Err(NotWritten::Failed(Errno::ACCESS))));
        assert!(verbose(Err(NotWritten::Failed(Errno::PERM))));
        assert_eq!(
            said(&Err(NotWritten::NotPmsg("a symbolic link")), 10),
            Said::Always(
                "--all: the verdict was not recorded in /dev/pmsg0: a symbolic link, left alone"
                    .into()
            )
        );
        assert!(!verbose(Err(NotWritten::Failed(Errno::IO))));
        assert!(!verbose(Err(NotWritten::Short(3))));
    }

    /// A filesystem `--all` failed on is named by its path alone: the
    /// mount table at the end gives its source and type, and whether it
    /// was left read-only or read-write; the error's holders stay.
    #[test]
    fn a_failed_filesystem_is_described_from_the_table_at_the_end() {
        use umount_wait::outcome::{Error, ErrorKind};
        let table = umount_wait::mountinfo::parse(
            b"36 35 0:40 / /mnt/rw rw,relatime - tmpfs tmpfs rw,size=8k\n\
              37 35 0:41 / /mnt/ro ro,relatime - tmpfs none ro\n",
        )
        .unwrap();
        let at: HashMap<&Path, &Mount> =
            table.iter().map(|m| (m.mount_point.as_path(), m)).collect();
        let entry = |target: &str| {
            let mut error = Error::new(target, ErrorKind::Busy, Some(Errno::BUSY));
            error.blockers = vec![Blocker::Process {
                pid: 42,
                command: "sleep".into(),
                uses: vec![],
            }];
            Entry {
                pass: 3,
                result: Err(error),
                loop_detach: None,
                released: vec![],
            }
        };
        let rw = filesystem(&entry("/mnt/rw"), &at);
        assert_eq!(rw.left, Left::ReadWrite);
        assert_eq!(rw.source, Some(Name::Text("tmpfs".into())));
        assert_eq!(rw.fstype.as_deref(), Some("tmpfs"));
        assert_eq!(
            (rw.held_by[0].pid, rw.held_by[0].command.as_deref()),
            (Some(42), Some("sleep"))
        );
        assert_eq!(rw.reason.as_deref(), Some("target is busy (untouched)"));
        assert_eq!(filesystem(&entry("/mnt/ro"), &at).left, Left::ReadOnly);
        let gone = filesystem(&entry("/mnt/gone"), &at);
        assert_eq!((gone.left, gone.source), (Left::ReadWrite, None));
    }

    #[test]
    fn the_superblocks_read_only_flag_is_the_second() {
        let line = |opts: &str, sb: &str| {
            format!("36 35 98:0 / /mnt/x {opts} - ext4 /dev/vdb {sb}\n").into_bytes()
        };
        let mount = |opts, sb| umount_wait::mountinfo::parse(&line(opts, sb)).unwrap()[0].clone();
        assert!(superblock_read_only(&mount(
            "rw,relatime",
            "ro,errors=remount-ro"
        )));
        assert!(!superblock_read_only(&mount(
            "ro,relatime",
            "rw,errors=remount-ro"
        )));
        assert!(!superblock_read_only(&mount("rw", "rw")));
    }
}
