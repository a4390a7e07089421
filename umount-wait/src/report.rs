//! Everything the command prints: messages and the status line on stderr,
//! JSON on stdout.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use umount_wait::blockers::{Blocker, Use};
use umount_wait::loopdev::LoopOutcome;
use umount_wait::mountinfo::display;
use umount_wait::outcome::{
    signal_name, Error, ErrorKind, Outcome, Report, State, Unconfirmed, WaitPath,
};
use umount_wait::shutdown::{Entry, Stop, Summary};
use umount_wait::Progress;

/// `println!` and `eprintln!` without the panic on a closed pipe: output
/// that cannot be written must not stop an unmount half-way.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
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
                self.blockers("held by", blockers);
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
        let target = display(&report.target);
        let timing = format!(
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
        );
        match &report.outcome {
            Outcome::ShutDown => {
                if always {
                    err!("umount-wait: {target}: shut down ({timing})");
                    self.blockers("held until then by", &report.blockers);
                }
            }
            Outcome::DetachedUnconfirmed(why) => {
                let why = reason(why);
                err!("umount-wait: {target}: detached, shutdown not confirmed: {why} ({timing})");
                self.blockers("held by", &report.blockers);
                if let Some(b) = &report.read_only_through {
                    err!("  made read-only where it stays: {b}");
                }
            }
            Outcome::RemountedReadOnly(errno) => {
                err!(
                    "umount-wait: {target}: {}; remounted read-only",
                    std::io::Error::from_raw_os_error(errno.raw_os_error())
                );
                self.blockers("held by", &report.blockers);
            }
            Outcome::RootReadOnly => {
                if always {
                    err!(
                        "umount-wait: {target}: the root, kept mounted, remounted read-only ({})",
                        ms(report.umount_time)
                    );
                }
            }
            // Said even when all went well: no shutdown was confirmed.
            Outcome::Unmounted { still_mounted_at } => {
                err!(
                    "umount-wait: {target}: unmounted; its filesystem stays mounted at {} ({timing})",
                    display(still_mounted_at)
                );
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
        match &entry.result {
            Ok(report) => self.report_text(report, !self.quiet),
            Err(error) => self.error_text(error),
        }
        if let Some(d) = &entry.loop_detach {
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
                let _ = write!(line, "; {}", cancelled_by());
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
        self.blockers("held by", &error.blockers);
    }

    fn blockers(&self, label: &str, blockers: &[Blocker]) {
        for b in blockers {
            err!("  {label}: {b}");
        }
    }
}

/// Why a wait was not confirmed, in words: the library's cancellation is
/// this binary's SIGINT or SIGTERM.
fn reason(why: &Unconfirmed) -> String {
    match why {
        Unconfirmed::Cancelled => cancelled_by(),
        other => other.to_string(),
    }
}

/// "interrupted by SIGINT": the signal that cancelled the run.
fn cancelled_by() -> String {
    match crate::stop::received() {
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

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A JSON string. Paths that are not UTF-8 keep their valid parts; each
/// invalid byte becomes U+FFFD.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_path(out: &mut String, path: &Path) {
    json_string(out, &String::from_utf8_lossy(path.as_os_str().as_bytes()));
}

fn json_ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn json_blockers(out: &mut String, blockers: &[Blocker]) {
    out.push('[');
    for (i, b) in blockers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_blocker(out, b);
    }
    out.push(']');
}

fn json_blocker(out: &mut String, blocker: &Blocker) {
    match blocker {
        Blocker::Mount {
            mnt_ns,
            pid,
            mount_point,
            ..
        } => {
            let _ = write!(
                out,
                "{{\"kind\":\"mount\",\"mnt_ns\":{mnt_ns},\"pid\":{pid},\"mount_point\":"
            );
            json_path(out, mount_point);
            out.push('}');
        }
        Blocker::Process { pid, command, uses } => {
            let _ = write!(out, "{{\"kind\":\"process\",\"pid\":{pid},\"command\":");
            json_string(out, command);
            out.push_str(",\"uses\":[");
            for (j, u) in uses.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                match u {
                    Use::Fd(n, path) => {
                        let _ = write!(out, "{{\"fd\":{n},\"path\":");
                        json_path(out, path);
                        out.push('}');
                    }
                    Use::Cwd => out.push_str("\"cwd\""),
                    Use::Root => out.push_str("\"root\""),
                    Use::Mapped(path) => {
                        out.push_str("{\"mapped\":");
                        json_path(out, path);
                        out.push('}');
                    }
                }
            }
            out.push_str("]}");
        }
        Blocker::Swap { path } => {
            out.push_str("{\"kind\":\"swap\",\"path\":");
            json_path(out, path);
            out.push('}');
        }
        Blocker::Loop {
            device,
            backing_file,
        } => {
            out.push_str("{\"kind\":\"loop\",\"device\":");
            json_path(out, device);
            out.push_str(",\"backing_file\":");
            json_path(out, backing_file);
            out.push('}');
        }
    }
}

/// `{"target":..., "source":..., "path":..., "outcome":..., ...}`
pub fn json_report(r: &Report) -> String {
    let mut out = String::from("{\"target\":");
    json_path(&mut out, &r.target);
    out.push_str(",\"mount_point\":");
    json_path(&mut out, &r.mount.mount_point);
    out.push_str(",\"source\":");
    json_path(&mut out, Path::new(&r.mount.source));
    out.push_str(",\"fstype\":");
    json_string(&mut out, &r.mount.fstype);
    let _ = write!(out, ",\"device\":\"{}\",\"device_node\":", r.mount.dev);
    match r.device_nodes.first() {
        Some(node) => json_path(&mut out, node),
        None => out.push_str("null"),
    }
    out.push_str(",\"device_nodes\":[");
    for (i, node) in r.device_nodes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_path(&mut out, node);
    }
    out.push(']');
    let _ = write!(
        out,
        ",\"path\":\"{}\",\"outcome\":\"{}\",\"reason\":",
        r.path.name(),
        r.outcome.name()
    );
    match &r.outcome {
        Outcome::ShutDown => out.push_str("null"),
        Outcome::DetachedUnconfirmed(why) => json_string(&mut out, &reason(why)),
        Outcome::RemountedReadOnly(errno) => json_string(
            &mut out,
            &std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string(),
        ),
        Outcome::RootReadOnly => json_string(&mut out, "the root of this process, never unmounted"),
        Outcome::Unmounted { still_mounted_at } => {
            json_string(
                &mut out,
                &format!(
                    "its filesystem stays mounted at {}",
                    String::from_utf8_lossy(still_mounted_at.as_os_str().as_bytes())
                ),
            );
        }
    }
    let _ = write!(
        out,
        ",\"umount_ms\":{},\"wait_ms\":{},\"total_ms\":{},\"claim_attempts\":{},\"blockers\":",
        json_ms(r.umount_time),
        json_ms(r.wait_time),
        json_ms(r.umount_time + r.wait_time),
        r.claim_attempts
    );
    json_blockers(&mut out, &r.blockers);
    out.push_str(",\"read_only_through\":");
    match &r.read_only_through {
        Some(b) => json_blocker(&mut out, b),
        None => out.push_str("null"),
    }
    out.push_str(",\"error\":null,\"errno\":null}");
    out
}

/// The JSON object for a target that failed.
pub fn json_error(e: &Error, path: Option<WaitPath>) -> String {
    let mut out = String::from("{\"target\":");
    json_path(&mut out, &e.target);
    out.push_str(",\"mount_point\":null,\"source\":null,\"fstype\":null,\"device\":null,\"device_node\":null,\"path\":");
    match path {
        Some(p) => {
            let _ = write!(out, "\"{}\"", p.name());
        }
        None => out.push_str("null"),
    }
    let outcome = state_name(e.state);
    let _ = write!(
        out,
        ",\"outcome\":\"{outcome}\",\"reason\":null,\"umount_ms\":null,\"wait_ms\":null,\"total_ms\":null,\"claim_attempts\":0,\"blockers\":"
    );
    json_blockers(&mut out, &e.blockers);
    out.push_str(",\"error\":");
    json_string(&mut out, &e.to_string());
    match e.errno {
        Some(errno) => {
            let _ = write!(out, ",\"errno\":{}", errno.raw_os_error());
        }
        None => out.push_str(",\"errno\":null"),
    }
    out.push('}');
    out
}

/// The `outcome` name for an error's state.
fn state_name(state: State) -> &'static str {
    match state {
        State::Detached => "detached_unconfirmed",
        State::ReadOnly => "remounted_read_only",
        State::ShutDown => "shut_down",
        State::Unmounted => "unmounted",
        State::Untouched => "untouched",
    }
}

/// `--all`: the object of one filesystem, as for a single target, with
/// `pass` and `loop_device` added.
pub fn json_entry(entry: &Entry, path: WaitPath) -> String {
    let mut out = match &entry.result {
        Ok(report) => json_report(report),
        Err(error) => json_error(error, Some(path)),
    };
    out.pop(); // the closing brace
    let _ = write!(out, ",\"pass\":{},\"loop_device\":", entry.pass);
    match &entry.loop_detach {
        None => out.push_str("null"),
        Some(d) => {
            out.push_str("{\"device\":");
            json_path(&mut out, &d.device.node);
            out.push_str(",\"backing_file\":");
            json_path(&mut out, &d.device.backing_file);
            let _ = write!(
                out,
                ",\"outcome\":\"{}\",\"autoclear\":{},\"errno\":",
                d.outcome.name(),
                matches!(d.outcome, LoopOutcome::Detached { autoclear: true })
            );
            match d.outcome {
                LoopOutcome::Failed(errno) => {
                    let _ = write!(out, "{}", errno.raw_os_error());
                }
                _ => out.push_str("null"),
            }
            let _ = write!(out, ",\"detach_ms\":{}}}", json_ms(d.time));
        }
    }
    out.push('}');
    out
}

/// `--all`: how many filesystems ended each way.
struct Counts {
    total: usize,
    /// `(outcome name, count)`, in a fixed order, zeros left out.
    outcomes: Vec<(&'static str, usize)>,
    loops_detached: usize,
    loops_left: usize,
}

const OUTCOME_NAMES: [&str; 5] = [
    "shut_down",
    "unmounted",
    "remounted_read_only",
    "detached_unconfirmed",
    "untouched",
];

impl Counts {
    fn of(summary: &Summary) -> Counts {
        let name = |e: &Entry| match &e.result {
            Ok(r) => r.outcome.name(),
            Err(e) => state_name(e.state),
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
    let mut out = format!("{{\"summary\":{{\"filesystems\":{}", counts.total);
    for name in OUTCOME_NAMES {
        let n = counts
            .outcomes
            .iter()
            .find(|(o, _)| *o == name)
            .map_or(0, |(_, n)| *n);
        let _ = write!(out, ",\"{name}\":{n}");
    }
    let _ = write!(
        out,
        ",\"loop_devices_detached\":{},\"loop_devices_not_detached\":{},\"passes\":{},\"elapsed_ms\":{},\"stopped\":",
        counts.loops_detached,
        counts.loops_left,
        summary.passes,
        json_ms(summary.elapsed)
    );
    match summary.stopped {
        None => out.push_str("null"),
        Some(Stop::Deadline) => out.push_str("\"deadline\""),
        Some(Stop::Cancelled) => match crate::stop::received() {
            Some(sig) => json_string(&mut out, &signal_name(sig)),
            None => out.push_str("\"cancelled\""),
        },
    }
    let _ = write!(out, ",\"exit\":{exit}}}}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use umount_wait::outcome::ErrorKind;

    #[test]
    fn consoles_get_no_status_line() {
        assert!(is_console(Path::new("/dev/console")));
        assert!(is_console(Path::new("/dev/ttyS0")));
        assert!(!is_console(Path::new("/dev/pts/3")));
        assert!(!is_console(Path::new("/dev/tty1")));
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn json_error_object() {
        let e = Error::new("/mnt/a b", ErrorKind::NotMountPoint, None);
        let j = json_error(&e, Some(WaitPath::Fallback));
        assert!(j.starts_with("{\"target\":\"/mnt/a b\","), "{j}");
        assert!(j.contains("\"outcome\":\"untouched\""), "{j}");
        assert!(j.contains("\"path\":\"fallback\""), "{j}");
        assert!(j.contains("\"blockers\":[]"), "{j}");
        assert!(
            j.contains("\"error\":\"'/mnt/a b': not a mount point (untouched)\""),
            "{j}"
        );
    }

    #[test]
    fn json_entry_and_summary() {
        use umount_wait::loopdev::{LoopDetach, LoopDevice};
        use umount_wait::mountinfo::{DevId, Mount};
        let mount = Mount {
            id: 30,
            parent_id: 1,
            dev: DevId { major: 7, minor: 0 },
            root: "/".into(),
            mount_point: "/data".into(),
            fstype: "ext4".into(),
            source: "/dev/loop0".into(),
        };
        let target = umount_wait::Target {
            given: "/data".into(),
            path: "/data".into(),
            mount: mount.clone(),
            follow: false,
        };
        let report = umount_wait::wait::new_report(&target, WaitPath::Kernel);
        let entry = Entry {
            pass: 2,
            result: Ok(report),
            loop_detach: Some(LoopDetach {
                device: LoopDevice {
                    dev: mount.dev,
                    node: "/dev/loop0".into(),
                    backing_file: "/img".into(),
                },
                outcome: LoopOutcome::Detached { autoclear: false },
                time: Duration::from_micros(1500),
            }),
        };
        let j = json_entry(&entry, WaitPath::Kernel);
        assert!(j.starts_with("{\"target\":\"/data\","), "{j}");
        assert!(j.contains("\"outcome\":\"shut_down\""), "{j}");
        assert!(
            j.ends_with(
                ",\"pass\":2,\"loop_device\":{\"device\":\"/dev/loop0\",\"backing_file\":\"/img\",\
                 \"outcome\":\"detached\",\"autoclear\":false,\"errno\":null,\"detach_ms\":1.500}}"
            ),
            "{j}"
        );
        let untouched = Entry {
            pass: 1,
            result: Err(Error::new("/mnt", ErrorKind::DeadlineReached, None)),
            loop_detach: None,
        };
        let j = json_entry(&untouched, WaitPath::Kernel);
        assert!(j.contains("\"outcome\":\"untouched\""), "{j}");
        assert!(j.ends_with(",\"pass\":1,\"loop_device\":null}"), "{j}");
        let summary = Summary {
            entries: vec![entry, untouched],
            passes: 2,
            elapsed: Duration::from_millis(3),
            stopped: Some(Stop::Deadline),
        };
        let j = json_summary(&summary, &Counts::of(&summary), 64);
        assert_eq!(
            j,
            "{\"summary\":{\"filesystems\":2,\"shut_down\":1,\"unmounted\":0,\
             \"remounted_read_only\":0,\"detached_unconfirmed\":0,\"untouched\":1,\
             \"loop_devices_detached\":1,\"loop_devices_not_detached\":0,\"passes\":2,\
             \"elapsed_ms\":3.000,\"stopped\":\"deadline\",\"exit\":64}}"
        );
    }

    #[test]
    fn json_blocker_objects() {
        let mut s = String::new();
        json_blockers(
            &mut s,
            &[
                Blocker::Mount {
                    mnt_ns: 5,
                    pid: 6,
                    mount_id: 7,
                    mount_point: "/m".into(),
                },
                Blocker::Process {
                    pid: 7,
                    command: "sh".into(),
                    uses: vec![Use::Cwd, Use::Fd(3, "/m/f".into())],
                },
            ],
        );
        assert_eq!(
            s,
            "[{\"kind\":\"mount\",\"mnt_ns\":5,\"pid\":6,\"mount_point\":\"/m\"},\
             {\"kind\":\"process\",\"pid\":7,\"command\":\"sh\",\"uses\":[\"cwd\",{\"fd\":3,\"path\":\"/m/f\"}]}]"
        );
    }
}
