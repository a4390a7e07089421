//! Everything the command prints: messages and the status line on stderr,
//! JSON on stdout.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use umount_wait::blockers::Blocker;
use umount_wait::loopdev::{LoopDetach, LoopOutcome};
use umount_wait::mountinfo::display;
use umount_wait::outcome::{
    signal_name, Error, ErrorKind, Outcome, Report, State, Unconfirmed, WaitPath,
};
use umount_wait::release::Released;
use umount_wait::shutdown::{Entry, Stop, Summary};
use umount_wait::Progress;

use crate::json;

/// `println!` and `eprintln!` without the panic on a closed pipe: output
/// that cannot be written must not stop an unmount half-way.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        stderr_line(format_args!($($arg)*));
    }};
}

/// One line on stderr in one write(2). Where stderr is /dev/kmsg (the
/// systemd-shutdown hook, `>/dev/kmsg`), each write is a record of the
/// kernel log: a line written in pieces (stderr is unbuffered) would be
/// several records, "umount-wait: " and the rest apart.
pub fn stderr_line(args: std::fmt::Arguments) {
    let mut line = args.to_string();
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Prints what happens to the targets.
pub struct Printer {
    json: bool,
    quiet: bool,
    verbose: bool,
    /// stderr is a terminal: show a status line during long waits.
    terminal: bool,
    status_shown: Mutex<bool>,
    /// The waiting line of the current target has been printed as a log
    /// line (no terminal, no -v): once is enough.
    waiting_logged: Mutex<bool>,
    /// `/proc` is not mounted here: no holder can be looked for, and an
    /// empty list of holders says nothing.
    no_proc: bool,
}

impl Printer {
    pub fn new(json: bool, quiet: bool, verbose: bool) -> Self {
        Printer {
            json,
            quiet,
            verbose,
            terminal: status_line_terminal(),
            status_shown: Mutex::new(false),
            waiting_logged: Mutex::new(false),
            no_proc: !umount_wait::sys::proc_fd_usable(),
        }
    }

    /// Whether blockers are worth looking for during a wait: always, since
    /// a wait that lasts names them at least once.
    pub fn wants_blockers(&self) -> bool {
        true
    }

    /// Called while a wait lasts (once a second, after the first second).
    /// On a terminal: a status line, rewritten. With -v: a line a second.
    /// Otherwise (a script's log), even with -q: one line with every
    /// holder, so that the log says why the wait lasts.
    pub fn progress(&self, progress: Progress<'_>) {
        let Progress::Waiting {
            target,
            elapsed,
            blockers,
        } = progress;
        if !self.verbose && (!self.terminal || self.quiet) {
            let mut logged = self
                .waiting_logged
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !*logged {
                *logged = true;
                let why = match blockers {
                    [] => "; nothing that holds it is visible from /proc",
                    _ => ", still held",
                };
                err!(
                    "umount-wait: {}: waiting {:.1}s{why}",
                    display(target),
                    elapsed.as_secs_f64()
                );
                self.held_by(blockers);
            }
            return;
        }
        let mut line = format!("{}: waiting {:.1}s", display(target), elapsed.as_secs_f64());
        if let Some(first) = blockers.first() {
            let _ = write!(line, ", held by {first}");
            if blockers.len() > 1 {
                let _ = write!(line, " (+{} more)", blockers.len() - 1);
            }
        }
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        if self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[2Kumount-wait: {line}");
            let _ = std::io::stderr().flush();
            *shown = true;
        } else if self.verbose {
            err!("umount-wait: {line}");
        }
    }

    fn clear_status(&self) {
        *self
            .waiting_logged
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = false;
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        if *shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            *shown = false;
        }
    }

    pub fn probe(&self, line: &str) {
        out!("{line}");
    }

    /// `-v`: whether notes are printed ([`Printer::verbose_note`]), so
    /// that a note costs nothing where it is not.
    pub fn is_verbose(&self) -> bool {
        self.verbose
    }

    /// A note from `-v` before a target is unmounted.
    pub fn verbose_note(&self, text: &str) {
        if self.verbose {
            err!("umount-wait: {text}");
        }
    }

    pub fn report(&self, report: &Report) {
        self.clear_status();
        if self.json {
            out!("{}", json_report(report));
        }
        self.report_text(report, self.verbose);
    }

    /// `always`: say it even when all went well (`-v`, or `--all`).
    fn report_text(&self, report: &Report, always: bool) {
        // Made when printed: most reports of a quiet run print nothing.
        let target = Later(|| display(&report.target));
        let timing = Later(|| {
            format!(
                "{} path, umount {}, wait {}{}",
                report.path.name(),
                ms(report.umount_time),
                ms(report.wait_time),
                if report.claim_attempts > 0 {
                    format!(
                        ", device free after {} O_EXCL attempt(s)",
                        report.claim_attempts
                    )
                } else {
                    String::new()
                }
            )
        });
        match &report.outcome {
            Outcome::ShutDown => {
                if always {
                    // umount(8) -v says "umount: /mnt unmounted".
                    err!("umount-wait: {target} unmounted; shut down ({timing})");
                    self.blockers("held until then by", &report.blockers);
                }
                if report.thawed {
                    err!("umount-wait: {target}: it was frozen (fsfreeze): thawed so that it could shut down");
                }
                // Said even when all else went well: the final writeback
                // may have failed.
                if report.device_removed {
                    let names = report.device_names.join(", ");
                    err!(
                        "umount-wait: {target}: shut down, with errors: its device ({names}) went away during the run; what the filesystem had not written is lost"
                    );
                }
                if !report.device_still_open.is_empty() {
                    let nodes: Vec<String> = report
                        .device_still_open
                        .iter()
                        .map(|n| crate::mountinfo::display(n))
                        .collect();
                    let grace = crate::wait::DEVICE_CLOSE_GRACE.as_secs();
                    err!(
                        "umount-wait: {target}: shut down, but its device ({}) was still open when the wait ended ({grace} s at most after the filesystem let go of it): another opener; removing it now (dmsetup remove, cryptsetup close) would fail",
                        nodes.join(", ")
                    );
                }
                if !report.kernel_errors.is_empty() {
                    err!(
                        "umount-wait: {target}: shut down, with errors in the kernel log about its device during the run:"
                    );
                    for line in &report.kernel_errors {
                        err!("umount-wait:   {line}");
                    }
                }
            }
            Outcome::DetachedUnconfirmed(why) => {
                let why = reason(why);
                err!("umount-wait: {target}: detached, shutdown not confirmed: {why} ({timing})");
                self.held_by(&report.blockers);
                if let Some(b) = &report.read_only_through {
                    err!("  made read-only where it stays: {b}");
                }
            }
            Outcome::RemountedReadOnly(errno) => {
                err!(
                    "umount-wait: {target}: {}; remounted read-only",
                    unmount_refused(*errno)
                );
                self.held_by(&report.blockers);
            }
            Outcome::MountReadOnly {
                errno,
                still_mounted_at,
            } => {
                err!(
                    "umount-wait: {target}: {}",
                    mount_read_only(*errno, still_mounted_at.as_deref())
                );
                self.held_by(&report.blockers);
            }
            Outcome::ShutDownByIoctl(errno) => {
                err!(
                    "umount-wait: {target}: read-only refused: {}; shut down by FS_IOC_SHUTDOWN, log flushed ({timing})",
                    std::io::Error::from_raw_os_error(errno.raw_os_error())
                );
                self.held_by(&report.blockers);
                if let Some(b) = &report.read_only_through {
                    err!("  shut down where it stays: {b}");
                }
            }
            Outcome::RootReadOnly => {
                if always {
                    err!(
                        "umount-wait: {target}: the root, kept mounted, remounted read-only ({})",
                        ms(report.umount_time)
                    );
                }
            }
            // Said even when all went well (no shutdown was confirmed), but
            // not with -q.
            Outcome::Unmounted { still_mounted_at } => {
                if !self.quiet {
                    // `-A` (and a device named) unmounts mounts that are
                    // not the target's path: the line names the one gone.
                    let gone = display(&report.mount.mount_point);
                    err!(
                        "umount-wait: {gone}: unmounted; its filesystem stays mounted at {} ({timing})",
                        display(still_mounted_at)
                    );
                }
            }
        }
    }

    /// `--all`: the start of a pass (with `-v`).
    pub fn pass(&self, number: u32, last: bool, candidates: usize, force: bool) {
        let kind = match (last, force) {
            (false, _) => "",
            (true, false) => " (last: read-only if busy)",
            (true, true) => " (last: MNT_FORCE, then read-only if busy)",
        };
        self.verbose_note(&format!(
            "--all: pass {number}{kind}, {candidates} mount(s)"
        ));
    }

    /// `--all`: a mount that failed in a pass and will be tried again (`-v`).
    pub fn retry(&self, pass: u32, error: &Error) {
        self.verbose_note(&format!("pass {pass}: {error}; trying again later"));
    }

    /// `--all`: the final word on one filesystem.
    pub fn entry(&self, entry: &Entry, path: WaitPath) {
        self.clear_status();
        if self.json {
            out!("{}", json_entry(entry, path));
        }
        self.released(&entry.released);
        match &entry.result {
            Ok(report) => self.report_text(report, !self.quiet),
            Err(error) => self.error_text(error),
        }
        if let Some(d) = &entry.loop_detach {
            self.loop_detach(d);
        }
    }

    /// `--all`: what backed onto a filesystem, released before its
    /// unmount; said before the filesystem's own line would be, but known
    /// only with it.
    fn released(&self, released: &[Released]) {
        for r in released {
            match r {
                Released::Swap { path, outcome } => match outcome {
                    Ok(()) if self.quiet => {}
                    Ok(()) => err!("umount-wait: {}: swap turned off", display(path)),
                    Err(rustix::io::Errno::TIMEDOUT) => err!(
                        "umount-wait: {}: turning swap off: not done by the deadline (its \
                         disk does not answer, or reading its pages back takes longer): the \
                         swap area stays on, or a swapoff given up past SIGKILL still reads \
                         it back",
                        display(path)
                    ),
                    Err(e) => err!(
                        "umount-wait: {}: turning swap off: {}",
                        display(path),
                        std::io::Error::from_raw_os_error(e.raw_os_error())
                    ),
                },
                Released::Loop(d) => self.loop_detach(d),
            }
        }
    }

    /// `--all` and `-d`: what happened to a loop device.
    pub fn loop_detach(&self, d: &LoopDetach) {
        let node = display(&d.device.node);
        match &d.outcome {
            LoopOutcome::Detached { autoclear } => {
                if !self.quiet {
                    err!(
                        "umount-wait: {node}: loop device detached{} ({})",
                        if *autoclear { " (autoclear)" } else { "" },
                        ms(d.time)
                    );
                }
            }
            LoopOutcome::StillBound => err!(
                "umount-wait: {node}: loop device still bound after LOOP_CLR_FD: still open elsewhere ({})",
                ms(d.time)
            ),
            LoopOutcome::Failed(errno) => err!(
                "umount-wait: {node}: detaching the loop device: {}",
                std::io::Error::from_raw_os_error(errno.raw_os_error())
            ),
        }
    }

    /// `--fake`: one line of the plan, on stdout.
    pub fn plan(&self, line: &str) {
        out!("{line}");
    }

    /// `--all`: the last line (a JSON object with `--json`).
    pub fn summary(&self, summary: &Summary, exit: i32) {
        self.clear_status();
        let counts = Counts::of(summary);
        if self.json {
            out!("{}", json_summary(summary, &counts, exit));
        }
        if self.quiet && exit == 0 {
            return;
        }
        let mut line = format!("umount-wait: --all: {} filesystem(s)", counts.total);
        for (name, n) in &counts.outcomes {
            let _ = write!(line, ", {n} {}", name.replace('_', " "));
        }
        if counts.loops_detached + counts.loops_left > 0 {
            let _ = write!(
                line,
                ", {} loop device(s) detached, {} not",
                counts.loops_detached, counts.loops_left
            );
        }
        let _ = write!(
            line,
            "; {} pass(es), {}",
            summary.passes,
            ms(summary.elapsed)
        );
        match summary.stopped {
            Some(Stop::Deadline) => line.push_str("; deadline reached"),
            Some(Stop::Cancelled) => {
                let _ = write!(line, "; {}", cancelled_by(crate::stop::received()));
            }
            None => {}
        }
        err!("{line}");
    }

    pub fn error(&self, error: &Error, path: Option<WaitPath>) {
        self.clear_status();
        if self.json {
            out!("{}", json_error(error, path));
        }
        let not_mounted = matches!(error.kind, ErrorKind::NotMountPoint | ErrorKind::NotFound);
        if self.quiet && not_mounted && error.state == State::Untouched {
            return;
        }
        self.error_text(error);
    }

    fn error_text(&self, error: &Error) {
        err!("umount-wait: {error}");
        match error.kind == ErrorKind::Busy || error.state == State::Detached {
            true => self.held_by(&error.blockers),
            false => self.blockers("held by", &error.blockers),
        }
    }

    fn blockers(&self, label: &str, blockers: &[Blocker]) {
        for b in blockers {
            err!("  {label}: {b}");
        }
    }

    /// What holds a filesystem that did not go, or, without `/proc`, that
    /// nothing could be looked for.
    fn held_by(&self, blockers: &[Blocker]) {
        if self.no_proc && blockers.is_empty() {
            err!(
                "  held by: not known: /proc is not mounted, so no process or mount namespace \
                 that holds it could be looked for"
            );
        }
        self.blockers("held by", blockers);
    }
}

/// Why a wait was not confirmed, in words: the library's cancellation is
/// this binary's SIGINT or SIGTERM.
fn reason(why: &Unconfirmed) -> String {
    reason_after(why, crate::stop::received())
}

/// [`reason`] where `received` came (None: no signal). A child given up
/// past SIGKILL after a signal stopped the run says the signal first: it
/// is why the run stopped, and why it dies by it.
fn reason_after(why: &Unconfirmed, received: Option<i32>) -> String {
    match (why, received) {
        (Unconfirmed::Cancelled, _) => cancelled_by(received),
        (Unconfirmed::GivenUp, Some(_)) => format!("{}; {why}", cancelled_by(received)),
        (other, _) => other.to_string(),
    }
}

/// "interrupted by SIGINT": the signal that cancelled the run.
fn cancelled_by(received: Option<i32>) -> String {
    match received {
        Some(sig) => format!("interrupted by {}", signal_name(sig)),
        None => "cancelled".into(),
    }
}

/// Whether stderr is a terminal a person watches, where a status line that
/// rewrites itself helps. Serial and system consoles are terminals too, but
/// they are read as logs (a VM's console, a boot log), where a line without
/// its newline would glue itself to the next one; so are `TERM=dumb` ones.
fn status_line_terminal() -> bool {
    if !std::io::stderr().is_terminal() {
        return false;
    }
    if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        return false;
    }
    match std::fs::read_link("/proc/self/fd/2") {
        Ok(tty) => !is_console(&tty),
        Err(_) => true,
    }
}

/// `/dev/console` and serial or hypervisor consoles.
fn is_console(tty: &Path) -> bool {
    let name = tty.to_string_lossy();
    name == "/dev/console"
        || ["/dev/ttyS", "/dev/hvc", "/dev/ttyAMA", "/dev/ttyprintk"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// Text made only when it is printed.
struct Later<F>(F);

impl<F: Fn() -> String> std::fmt::Display for Later<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&(self.0)())
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `--all`: how many filesystems ended each way.
struct Counts {
    total: usize,
    /// `(outcome name, count)`, in a fixed order, zeros left out.
    outcomes: Vec<(&'static str, usize)>,
    loops_detached: usize,
    loops_left: usize,
}

const OUTCOME_NAMES: [&str; 6] = [
    "shut_down",
    "unmounted",
    "remounted_read_only",
    "shut_down_by_ioctl",
    "detached_unconfirmed",
    "untouched",
];

impl Counts {
    fn of(summary: &Summary) -> Counts {
        let name = |e: &Entry| match &e.result {
            Ok(r) => r.outcome.name(),
            Err(e) => json::state_name(e.state),
        };
        let outcomes = OUTCOME_NAMES
            .iter()
            .map(|n| (*n, summary.entries.iter().filter(|e| name(e) == *n).count()))
            .filter(|(_, c)| *c > 0)
            .collect();
        let loops: Vec<&LoopOutcome> = summary
            .entries
            .iter()
            .filter_map(|e| e.loop_detach.as_ref().map(|d| &d.outcome))
            .collect();
        let loops_detached = loops
            .iter()
            .filter(|o| matches!(o, LoopOutcome::Detached { .. }))
            .count();
        Counts {
            total: summary.entries.len(),
            outcomes,
            loops_detached,
            loops_left: loops.len() - loops_detached,
        }
    }
}

/// `{"summary":{...}}`, the last line of `--all --json`.
fn json_summary(summary: &Summary, counts: &Counts, exit: i32) -> String {
    let count = |name: &str| {
        counts
            .outcomes
            .iter()
            .find(|(o, _)| *o == name)
            .map_or(0, |(_, n)| *n)
    };
    json::line(&json::SummaryLine {
        summary: json::Summary {
            filesystems: counts.total,
            shut_down: count("shut_down"),
            unmounted: count("unmounted"),
            remounted_read_only: count("remounted_read_only"),
            shut_down_by_ioctl: count("shut_down_by_ioctl"),
            detached_unconfirmed: count("detached_unconfirmed"),
            untouched: count("untouched"),
            loop_devices_detached: counts.loops_detached,
            loop_devices_not_detached: counts.loops_left,
            passes: summary.passes,
            elapsed_ms: json::ms(summary.elapsed),
            stopped: stopped_name(summary.stopped),
            exit,
        },
    })
}

/// `--all`'s `stopped`: `null`, `"deadline"`, or the signal's name.
pub fn stopped_name(stopped: Option<Stop>) -> Option<String> {
    match stopped {
        None => None,
        Some(Stop::Deadline) => Some("deadline".into()),
        Some(Stop::Cancelled) => Some(match crate::stop::received() {
            Some(sig) => signal_name(sig),
            None => "cancelled".into(),
        }),
    }
}

/// The object of an unmounted target.
pub fn json_report(r: &Report) -> String {
    json::line(&json::report(r, outcome_reason(&r.outcome)))
}

/// The object of a target that failed.
pub fn json_error(e: &Error, path: Option<WaitPath>) -> String {
    json::line(&json::error(e, path))
}

/// `--all`: the object of one filesystem, as for a single target, with
/// `pass` and `loop_device` added.
pub fn json_entry(entry: &Entry, path: WaitPath) -> String {
    let target = match &entry.result {
        Ok(report) => json::report(report, outcome_reason(&report.outcome)),
        Err(error) => json::error(error, Some(path)),
    };
    json::line(&json::entry(entry, target))
}

/// Why an unmount that was remounted read-only instead did not go: its
/// errno, or `ETIMEDOUT` for `--all`'s deadline
/// ([`umount_wait::wait::remount_read_only`]).
fn unmount_refused(errno: rustix::io::Errno) -> String {
    if errno == rustix::io::Errno::TIMEDOUT {
        return "deadline reached before the unmount".into();
    }
    std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string()
}

/// What [`Outcome::MountReadOnly`] says: why the unmount did not go, and
/// why the filesystem was left as it is.
fn mount_read_only(errno: rustix::io::Errno, still_mounted_at: Option<&Path>) -> String {
    let why = match still_mounted_at {
        Some(at) => format!("it stays mounted at {}", display(at)),
        None => "a daemon or a server answers for it, and its sync could hang".into(),
    };
    format!(
        "{}; this mount made read-only, its filesystem left as it is: {why}",
        unmount_refused(errno)
    )
}

/// The `reason` of a report: why its filesystem was not confirmed shut
/// down, or `None`.
pub fn outcome_reason(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::ShutDown => None,
        Outcome::DetachedUnconfirmed(why) => Some(reason(why)),
        Outcome::RemountedReadOnly(errno) => Some(unmount_refused(*errno)),
        Outcome::MountReadOnly {
            errno,
            still_mounted_at,
        } => Some(mount_read_only(*errno, still_mounted_at.as_deref())),
        Outcome::ShutDownByIoctl(errno) => Some(format!(
            "read-only refused: {}; shut down by FS_IOC_SHUTDOWN, log flushed",
            std::io::Error::from_raw_os_error(errno.raw_os_error())
        )),
        Outcome::RootReadOnly => Some("the root of this process, never unmounted".into()),
        Outcome::Unmounted { still_mounted_at } => Some(format!(
            "its filesystem stays mounted at {}",
            display(still_mounted_at)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use umount_wait::blockers::Use;
    use umount_wait::mountinfo::{DevId, Mount};
    use umount_wait::outcome::ErrorKind;

    /// A run stopped by SIGTERM says so, also when the unmount's child
    /// was given up past SIGKILL after it (a loaded machine where it did
    /// not end within the grace): the signal first, then the child.
    #[test]
    fn a_signal_is_named_before_a_child_given_up() {
        let term = Some(nix::libc::SIGTERM);
        assert_eq!(
            reason_after(&Unconfirmed::Cancelled, term),
            "interrupted by SIGTERM"
        );
        let given_up = reason_after(&Unconfirmed::GivenUp, term);
        assert!(given_up.starts_with("interrupted by SIGTERM; the unmount did not end"));
        assert_eq!(
            reason_after(&Unconfirmed::GivenUp, None),
            Unconfirmed::GivenUp.to_string()
        );
        assert_eq!(reason_after(&Unconfirmed::Cancelled, None), "cancelled");
    }

    #[test]
    fn consoles_get_no_status_line() {
        assert!(is_console(Path::new("/dev/console")));
        assert!(is_console(Path::new("/dev/ttyS0")));
        assert!(!is_console(Path::new("/dev/pts/3")));
        assert!(!is_console(Path::new("/dev/tty1")));
    }

    /// Every field a target's object has (README.md, "JSON").
    const TARGET_FIELDS: [&str; 22] = [
        "target",
        "mount_point",
        "source",
        "fstype",
        "device",
        "device_node",
        "device_nodes",
        "path",
        "outcome",
        "reason",
        "umount_ms",
        "wait_ms",
        "total_ms",
        "claim_attempts",
        "blockers",
        "read_only_through",
        "kernel_errors",
        "device_removed",
        "device_still_open",
        "thawed",
        "error",
        "errno",
    ];

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "one line: {line:?}");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// The object's keys, sorted.
    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    /// `TARGET_FIELDS` and `more`, sorted as `keys` gives them.
    fn fields(more: &[&'static str]) -> Vec<&'static str> {
        let mut fields = [&TARGET_FIELDS[..], more].concat();
        fields.sort_unstable();
        fields
    }

    fn mount() -> Mount {
        Mount {
            id: 30,
            parent_id: 1,
            dev: DevId { major: 7, minor: 0 },
            root: "/".into(),
            mount_point: "/data".into(),
            fstype: "ext4".into(),
            source: "/dev/loop0".into(),
            options: "rw".into(),
        }
    }

    fn report(outcome: Outcome) -> Report {
        let target = umount_wait::Target {
            given: "/data/".into(),
            path: "/data".into(),
            mount: mount(),
            follow: false,
        };
        Report {
            device_nodes: vec!["/dev/loop0".into(), "/dev/loop1".into()],
            outcome,
            umount_time: Duration::from_micros(1500),
            wait_time: Duration::from_nanos(2_000_400),
            claim_attempts: 3,
            ..umount_wait::wait::new_report(&target, WaitPath::Fallback)
        }
    }

    fn blockers() -> Vec<Blocker> {
        vec![
            Blocker::Mount {
                mnt_ns: 4026531841,
                pid: 6,
                mount_id: 40,
                mount_point: "/m".into(),
            },
            Blocker::Process {
                pid: 7,
                command: "sh \"x\"".into(),
                uses: vec![
                    Use::Cwd,
                    Use::Root,
                    Use::Fd(3, "/m/f\n".into()),
                    Use::Mapped("/m/prog".into()),
                ],
            },
            Blocker::Swap {
                path: "/m/swap".into(),
            },
            Blocker::Loop {
                device: "/dev/loop3".into(),
                backing_file: "/m/img".into(),
            },
        ]
    }

    #[test]
    fn json_report_object() {
        let mut r = report(Outcome::DetachedUnconfirmed(Unconfirmed::Timeout(
            Duration::from_secs(2),
        )));
        r.blockers = blockers();
        r.read_only_through = Some(r.blockers[0].clone());
        let j = parse(&json_report(&r));
        assert_eq!(keys(&j), fields(&[]));
        assert_eq!(j["target"], "/data/");
        assert_eq!(j["mount_point"], "/data");
        assert_eq!(j["source"], "/dev/loop0");
        assert_eq!(j["fstype"], "ext4");
        assert_eq!(j["device"], "7:0");
        assert_eq!(j["device_node"], "/dev/loop0");
        assert_eq!(j["device_nodes"], json!(["/dev/loop0", "/dev/loop1"]));
        assert_eq!(j["path"], "fallback");
        assert_eq!(j["outcome"], "detached_unconfirmed");
        assert_eq!(j["reason"], "timed out after 2s");
        assert_eq!(j["umount_ms"], 1.5);
        assert_eq!(j["wait_ms"], 2.0);
        assert_eq!(j["total_ms"], 3.5);
        assert_eq!(j["claim_attempts"], 3);
        assert_eq!(
            j["blockers"],
            json!([
                {"kind": "mount", "mnt_ns": 4026531841u64, "pid": 6, "mount_point": "/m"},
                {"kind": "process", "pid": 7, "command": "sh \"x\"",
                 "uses": ["cwd", "root", {"fd": 3, "path": "/m/f\n"}, {"mapped": "/m/prog"}]},
                {"kind": "swap", "path": "/m/swap"},
                {"kind": "loop", "device": "/dev/loop3", "backing_file": "/m/img"}
            ])
        );
        assert_eq!(j["read_only_through"], j["blockers"][0]);
        assert_eq!(j["error"], Value::Null);
        assert_eq!(j["errno"], Value::Null);
    }

    #[test]
    fn json_reasons() {
        let reason = |outcome| parse(&json_report(&report(outcome)))["reason"].clone();
        assert_eq!(reason(Outcome::ShutDown), Value::Null);
        assert_eq!(
            reason(Outcome::Unmounted {
                still_mounted_at: "/elsewhere".into()
            }),
            "its filesystem stays mounted at /elsewhere"
        );
        assert_eq!(
            reason(Outcome::RemountedReadOnly(rustix::io::Errno::BUSY)),
            "Device or resource busy (os error 16)"
        );
        assert_eq!(
            reason(Outcome::RootReadOnly),
            "the root of this process, never unmounted"
        );
    }

    /// A name that is not UTF-8 is the array of its bytes, wherever it is:
    /// two that differ only there never print the same (README.md, "JSON").
    #[test]
    fn json_non_utf8_names_are_their_bytes() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let raw =
            |bytes: &[u8]| -> std::path::PathBuf { OsString::from_vec(bytes.to_vec()).into() };
        let object = |name: &[u8]| {
            let mut r = report(Outcome::ShutDown);
            r.target = raw(name);
            r.mount.mount_point = raw(name);
            r.mount.source = raw(name).into_os_string();
            r.device_nodes = vec![raw(name)];
            r.blockers = vec![
                Blocker::Swap { path: raw(name) },
                Blocker::Process {
                    pid: 7,
                    command: "sh".into(),
                    uses: vec![Use::Fd(3, raw(name)), Use::Mapped(raw(name))],
                },
            ];
            parse(&json_report(&r))
        };
        let (ff, fe) = (object(b"/mnt/\xff"), object(b"/mnt/\xfe"));
        assert_ne!(ff, fe);
        let bytes = json!([47, 109, 110, 116, 47, 255]);
        for name in [
            &ff["target"],
            &ff["mount_point"],
            &ff["source"],
            &ff["device_node"],
            &ff["device_nodes"][0],
            &ff["blockers"][0]["path"],
            &ff["blockers"][1]["uses"][0]["path"],
            &ff["blockers"][1]["uses"][1]["mapped"],
        ] {
            assert_eq!(name, &bytes, "{ff}");
        }
        // UTF-8, whatever it holds: a string, as it is.
        let odd = object("/mnt/a\u{202e}b\\xff".as_bytes());
        assert_eq!(odd["target"], "/mnt/a\u{202e}b\\xff");
        let e = Error::new(raw(b"/mnt/\xff"), ErrorKind::NotFound, None);
        let j = parse(&json_error(&e, None));
        assert_eq!(j["target"], bytes);
        assert_eq!(
            j["error"],
            "'/mnt/\\xff': no such file or directory (untouched)"
        );
    }

    #[test]
    fn json_error_object() {
        let mut e = Error::new("/mnt/a b", ErrorKind::Busy, Some(rustix::io::Errno::BUSY));
        e.blockers = blockers();
        let j = parse(&json_error(&e, Some(WaitPath::Fallback)));
        assert_eq!(keys(&j), fields(&[]));
        assert_eq!(j["target"], "/mnt/a b");
        assert_eq!(j["outcome"], "untouched");
        assert_eq!(j["path"], "fallback");
        assert_eq!(j["blockers"].as_array().unwrap().len(), 4);
        assert_eq!(j["device_nodes"], json!([]));
        assert_eq!(j["claim_attempts"], 0);
        for null in [
            "mount_point",
            "source",
            "fstype",
            "device",
            "device_node",
            "reason",
            "umount_ms",
            "wait_ms",
            "total_ms",
            "read_only_through",
        ] {
            assert_eq!(j[null], Value::Null, "{null}");
        }
        assert_eq!(j["error"], e.to_string());
        assert_eq!(j["errno"], 16);
        let j = parse(&json_error(&e.with_state(State::Detached), None));
        assert_eq!(j["outcome"], "detached_unconfirmed");
        assert_eq!(j["path"], Value::Null);
    }

    #[test]
    fn json_entry_and_summary() {
        use umount_wait::loopdev::{LoopDetach, LoopDevice};
        let entry = Entry {
            pass: 2,
            result: Ok(report(Outcome::ShutDown)),
            loop_detach: Some(LoopDetach {
                device: LoopDevice {
                    dev: mount().dev,
                    node: "/dev/loop0".into(),
                    backing_file: "/img".into(),
                },
                outcome: LoopOutcome::Detached { autoclear: true },
                time: Duration::from_micros(1500),
            }),
            released: vec![Released::Swap {
                path: "/data/swapfile".into(),
                outcome: Ok(()),
            }],
        };
        let j = parse(&json_entry(&entry, WaitPath::Kernel));
        let fields = fields(&["pass", "loop_device", "released"]);
        assert_eq!(keys(&j), fields);
        assert_eq!(j["outcome"], "shut_down");
        assert_eq!(j["pass"], 2);
        assert_eq!(
            j["loop_device"],
            json!({"device": "/dev/loop0", "backing_file": "/img", "outcome": "detached",
                   "autoclear": true, "errno": null, "detach_ms": 1.5})
        );
        assert_eq!(
            j["released"],
            json!([{"kind": "swap", "path": "/data/swapfile", "outcome": "off", "errno": null}])
        );
        let failed = Entry {
            pass: 1,
            result: Ok(report(Outcome::ShutDown)),
            loop_detach: Some(LoopDetach {
                outcome: LoopOutcome::Failed(rustix::io::Errno::NXIO),
                ..entry.loop_detach.clone().unwrap()
            }),
            released: Vec::new(),
        };
        let j = parse(&json_entry(&failed, WaitPath::Kernel));
        assert_eq!(j["loop_device"]["outcome"], "failed");
        assert_eq!(j["loop_device"]["errno"], 6);
        let untouched = Entry {
            pass: 1,
            result: Err(Error::new("/mnt", ErrorKind::DeadlineReached, None)),
            loop_detach: None,
            released: Vec::new(),
        };
        let j = parse(&json_entry(&untouched, WaitPath::Kernel));
        assert_eq!(keys(&j), fields);
        assert_eq!(j["outcome"], "untouched");
        assert_eq!(j["path"], "kernel");
        assert_eq!(j["loop_device"], Value::Null);
        let summary = Summary {
            entries: vec![entry, untouched],
            passes: 2,
            elapsed: Duration::from_millis(3),
            stopped: Some(Stop::Deadline),
        };
        let j = parse(&json_summary(&summary, &Counts::of(&summary), 64));
        assert_eq!(
            j,
            json!({"summary": {"filesystems": 2, "shut_down": 1, "unmounted": 0,
                "remounted_read_only": 0, "shut_down_by_ioctl": 0,
                "detached_unconfirmed": 0, "untouched": 1,
                "loop_devices_detached": 1, "loop_devices_not_detached": 0, "passes": 2,
                "elapsed_ms": 3.0, "stopped": "deadline", "exit": 64}})
        );
        let summary = Summary {
            stopped: None,
            ..summary
        };
        let j = parse(&json_summary(&summary, &Counts::of(&summary), 64));
        assert_eq!(j["summary"]["stopped"], Value::Null);
    }
}
