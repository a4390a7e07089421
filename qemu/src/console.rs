//! Console log -> verdict. Strict: see docs/bench-contract.md, "The guest".
//!
//! What the console must show, in order: `UMW-KERNEL ...`, then for each
//! suite `UMW-SUITE-BEGIN <name>`, its KTAP, `UMW-SUITE-END <name> rc=<n>`,
//! and finally `UMW-END`. Anything else is a failure of the boot, listed in
//! `Verdict::problems`: a kernel report anywhere on the console (panic, oops,
//! BUG, WARNING, hung task, lockdep, KASAN, RCU stall, a stack trace), a
//! suite that never started or never finished, a missing `UMW-END`.

use std::collections::BTreeMap;

/// The names under a suite that are the bench's own checks of it, not the
/// suite's tests (`<suite>/ran`, `<suite>/exit-status`, ...).
pub const SUITE_CHECKS: [&str; 6] = ["ran", "plan", "results", "all", "finished", "exit-status"];

/// What a boot showed.
#[derive(Debug, Default)]
pub struct Verdict {
    /// `uname -r` in the guest.
    pub release: String,
    /// What `umount-wait --probe` said: kernel (true) or fallback (false).
    pub umount_wait: Option<bool>,
    /// "<suite>/<test>" -> "pass" | "fail" | "skip".
    pub tests: BTreeMap<String, String>,
    /// scenario -> mode -> counts, from `# UMW-RACE` lines.
    pub races: BTreeMap<String, BTreeMap<String, RaceCount>>,
    /// Every race run, from `# UMW-RACE-RUN` lines (the campaign's samples).
    pub race_runs: Vec<RaceRun>,
    /// Failures of the boot as a whole; empty when the console is clean.
    pub problems: Vec<String>,
    /// The suites' lines that are not KTAP results (what the demo prints).
    pub suite_output: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RaceCount {
    pub runs: u64,
    pub busy_after_return: u64,
    /// S4 (qemu/src/reboot.rs) only: boots whose disk needed recovery or
    /// failed `e2fsck -fn`, boots with a file missing or wrong after the
    /// journal replay, and boots with either (the bug showed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclean: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<u64>,
    /// shutdown-reboot (qemu/src/shutdown_reboot.rs) only: filesystems
    /// found unclean over all boots (three a boot), and the reboot script's
    /// time to finish, from the first SIGTERM to the reboot call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclean_filesystems: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_median: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_max: Option<u64>,
    /// shutdown-reboot only: block-layer and filesystem errors the kernel
    /// logged after the reboot began, summed over the boots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_errors: Option<u64>,
    /// shutdown-reboot only: boots with at least one such error, and boots
    /// cut short (a kernel report such as a panic or an oops, the time
    /// limit, no verdict line): not in `runs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots_with_console_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots_failed: Option<u64>,
}

/// One run of a race scenario:
/// `# UMW-RACE-RUN <scenario> <mode> <n> status=<exit> busy=<0|1> us=<time>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RaceRun {
    pub scenario: String,
    pub mode: String,
    pub run: u64,
    /// The unmount command's exit status.
    pub status: i64,
    /// The device was still claimed right after the command returned.
    pub busy: bool,
    /// How long the command took, in microseconds.
    pub us: u64,
}

impl RaceRun {
    fn parse(text: &str) -> Option<RaceRun> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [scenario, mode, run, status, busy, us] = words.as_slice() else {
            return None;
        };
        Some(RaceRun {
            scenario: scenario.to_string(),
            mode: mode.to_string(),
            run: run.parse().ok()?,
            status: status.strip_prefix("status=")?.parse().ok()?,
            busy: match busy.strip_prefix("busy=")? {
                "0" => false,
                "1" => true,
                _ => return None,
            },
            us: us.strip_prefix("us=")?.parse().ok()?,
        })
    }
}

/// Kernel reports: any of these on the console fails the boot.
pub const KERNEL_REPORTS: &[(&str, &str)] = &[
    ("Kernel panic - not syncing", "kernel panic"),
    ("Oops:", "oops"),
    ("general protection fault", "oops"),
    ("kernel BUG at", "BUG"),
    ("BUG:", "BUG"),
    ("WARNING:", "WARNING"),
    ("blocked for more than", "hung task"),
    ("detected stalls on CPUs", "RCU stall"),
    ("self-detected stall", "RCU stall"),
    ("UBSAN:", "UBSAN report"),
    ("Call Trace:", "kernel stack trace"),
];

/// The lines of a console log, without a serial line's CRs and trailing
/// blanks. Kernel reports among them are added to `problems`, one per kind
/// (its first line).
pub fn lines<'a>(text: &'a str, problems: &mut Vec<String>) -> Vec<&'a str> {
    let mut reported: Vec<&str> = Vec::new();
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        let line = raw
            .trim_end_matches(['\r', ' ', '\t'])
            .trim_start_matches('\r');
        for (needle, kind) in KERNEL_REPORTS {
            if line.contains(needle) && !reported.contains(kind) {
                reported.push(kind);
                problems.push(format!("{kind}: {}", line.trim()));
            }
        }
        lines.push(line);
    }
    lines
}

/// The value of `name=value` among whitespace-separated fields.
pub fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split_whitespace().find_map(|f| f.strip_prefix(name))
}

/// What a `UMW-KERNEL` line says of the kernel: Some(true) when it has
/// UMOUNT_WAIT, Some(false) when umount-wait falls back.
pub fn probe(umw_kernel_rest: &str) -> Option<bool> {
    match field(umw_kernel_rest, "umount_wait=") {
        // The series' kernels have both flags; --probe names the path a
        // run takes by default, UMOUNT_NOTIFY's first.
        Some("kernel" | "notify") => Some(true),
        Some("fallback") => Some(false),
        _ => None,
    }
}

pub fn parse(text: &str, expected_suites: &[String]) -> Verdict {
    let mut verdict = Verdict::default();
    let mut current: Option<SuiteState> = None;
    let mut finished: Vec<String> = Vec::new();
    let mut ended = false;

    for line in lines(text, &mut verdict.problems) {
        if let Some(rest) = line.strip_prefix("UMW-KERNEL ") {
            verdict.release = field(rest, "release=").unwrap_or_default().to_string();
            verdict.umount_wait = probe(rest);
        } else if let Some(name) = line.strip_prefix("UMW-SUITE-BEGIN ") {
            if let Some(open) = current.take() {
                verdict.problems.push(format!(
                    "suite {} did not finish (no UMW-SUITE-END)",
                    open.name
                ));
                open.close(None, &mut verdict);
            }
            current = Some(SuiteState::new(name.trim()));
        } else if let Some(rest) = line.strip_prefix("UMW-SUITE-END ") {
            let mut fields = rest.split_whitespace();
            let name = fields.next().unwrap_or_default();
            let rc = fields
                .find_map(|f| f.strip_prefix("rc="))
                .and_then(|n| n.parse::<i32>().ok());
            match current.take() {
                Some(open) if open.name == name => {
                    finished.push(open.name.clone());
                    open.close(rc, &mut verdict);
                }
                other => {
                    verdict
                        .problems
                        .push(format!("UMW-SUITE-END {name} without its UMW-SUITE-BEGIN"));
                    current = other;
                }
            }
        } else if line == "UMW-END" {
            ended = true;
        } else if let Some(open) = current.as_mut() {
            open.line(line, &mut verdict);
        }
    }

    if let Some(open) = current.take() {
        verdict.problems.push(format!(
            "suite {} did not finish (no UMW-SUITE-END)",
            open.name
        ));
        open.close(None, &mut verdict);
    }
    for suite in expected_suites {
        if !finished.contains(suite)
            && !verdict
                .tests
                .keys()
                .any(|k| k.starts_with(&format!("{suite}/")))
        {
            verdict.problems.push(format!("suite {suite} did not run"));
            verdict.tests.insert(format!("{suite}/ran"), "fail".into());
        }
    }
    if !ended {
        verdict.problems.push("no UMW-END on the console: the boot was cut short (crash, time limit or truncated log)".into());
    }
    verdict
}

/// The last `count` non-empty lines of a log.
pub fn last_lines(text: &str, count: usize) -> Vec<&str> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..].to_vec()
}

/// One suite's KTAP as it is read.
struct SuiteState {
    name: String,
    results: Vec<(String, &'static str)>,
    plan: Option<usize>,
    skipped_whole: bool,
}

impl SuiteState {
    fn new(name: &str) -> Self {
        SuiteState {
            name: name.to_string(),
            results: Vec::new(),
            plan: None,
            skipped_whole: false,
        }
    }

    fn line(&mut self, line: &str, verdict: &mut Verdict) {
        if let Some(run) = line.strip_prefix("# UMW-RACE-RUN ") {
            match RaceRun::parse(run) {
                Some(run) => verdict.race_runs.push(run),
                None => verdict
                    .problems
                    .push(format!("malformed race line: # UMW-RACE-RUN {run}")),
            }
            return;
        }
        if let Some(race) = line.strip_prefix("# UMW-RACE ") {
            parse_race(race, verdict);
            return;
        }
        if let Some(plan) = line.strip_prefix("1..") {
            let (count, directive) = split_directive(plan);
            self.plan = count.trim().parse().ok();
            self.skipped_whole = self.plan == Some(0) && directive.is_some_and(is_skip);
            return;
        }
        let (failed, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("ok ") {
            (false, rest)
        } else {
            if !line.starts_with("KTAP version") && !line.starts_with("TAP version") {
                verdict.suite_output.push(line.to_string());
            }
            return;
        };
        let (number_and_name, directive) = split_directive(rest);
        let mut parts = number_and_name.trim().splitn(2, ' ');
        let number = parts.next().unwrap_or_default();
        let name = parts
            .next()
            .unwrap_or_default()
            .trim()
            .trim_start_matches("- ")
            .trim();
        let name = if name.is_empty() {
            format!("test-{number}")
        } else {
            name.replace(' ', "_")
        };
        let result = match (failed, directive.is_some_and(is_skip)) {
            (_, true) => "skip",
            (true, false) => "fail",
            (false, false) => "pass",
        };
        self.results.push((name, result));
    }

    fn close(self, rc: Option<i32>, verdict: &mut Verdict) {
        let suite = &self.name;
        let any_failed = self.results.iter().any(|(_, r)| *r == "fail");
        if let Some(plan) = self.plan {
            if plan != self.results.len() {
                let got = self.results.len();
                verdict.tests.insert(format!("{suite}/plan"), "fail".into());
                verdict.problems.push(format!(
                    "suite {suite} planned {plan} tests and reported {got}"
                ));
            }
        }
        if self.results.is_empty() && !self.skipped_whole && rc.is_some() {
            verdict
                .tests
                .insert(format!("{suite}/results"), "fail".into());
            verdict
                .problems
                .push(format!("suite {suite} reported no KTAP results"));
        }
        if self.skipped_whole {
            verdict.tests.insert(format!("{suite}/all"), "skip".into());
        }
        for (name, result) in self.results {
            let mut key = format!("{suite}/{name}");
            let mut n = 2;
            while verdict.tests.contains_key(&key) {
                key = format!("{suite}/{name}#{n}");
                n += 1;
            }
            verdict.tests.insert(key, result.into());
        }
        match rc {
            None => {
                verdict
                    .tests
                    .insert(format!("{suite}/finished"), "fail".into());
            }
            Some(code) if code != 0 && !any_failed => {
                verdict
                    .tests
                    .insert(format!("{suite}/exit-status"), "fail".into());
                verdict.problems.push(format!(
                    "suite {suite} exited with status {code} and no `not ok` line"
                ));
            }
            Some(_) => {}
        }
    }
}

/// "name # SKIP reason" -> ("name", Some("SKIP reason")).
fn split_directive(text: &str) -> (&str, Option<&str>) {
    match text.split_once(" # ") {
        Some((head, directive)) => (head, Some(directive.trim())),
        None => match text.strip_suffix(" #") {
            Some(head) => (head, None),
            None => (text, None),
        },
    }
}

fn is_skip(directive: &str) -> bool {
    directive.to_ascii_uppercase().starts_with("SKIP")
}

/// "<scenario> <mode> runs=<N> busy_after_return=<K>"
fn parse_race(text: &str, verdict: &mut Verdict) {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let value = |name: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (
        fields.first(),
        fields.get(1),
        value("runs="),
        value("busy_after_return="),
    ) {
        (Some(scenario), Some(mode), Some(runs), Some(busy_after_return)) => {
            verdict
                .races
                .entry(scenario.to_string())
                .or_default()
                .insert(
                    mode.to_string(),
                    RaceCount {
                        runs,
                        busy_after_return,
                        ..RaceCount::default()
                    },
                );
        }
        _ => verdict
            .problems
            .push(format!("malformed race line: # UMW-RACE {text}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_race_run_line_is_a_sample() {
        assert_eq!(
            RaceRun::parse("s2-lazy-open-file plain 3 status=0 busy=1 us=4100"),
            Some(RaceRun {
                scenario: "s2-lazy-open-file".into(),
                mode: "plain".into(),
                run: 3,
                status: 0,
                busy: true,
                us: 4100,
            })
        );
        assert_eq!(RaceRun::parse("s2 plain 3 status=0 busy=2 us=1"), None);
        assert_eq!(RaceRun::parse("s2 plain 3 status=0"), None);
    }

    fn suites(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn sample(name: &str) -> &'static str {
        match name {
            "clean" => include_str!("../testdata/console/clean.log"),
            "panic" => include_str!("../testdata/console/panic.log"),
            "oops" => include_str!("../testdata/console/oops.log"),
            "warning" => include_str!("../testdata/console/warning.log"),
            "hung-task" => include_str!("../testdata/console/hung-task.log"),
            "lockdep" => include_str!("../testdata/console/lockdep.log"),
            "kasan" => include_str!("../testdata/console/kasan.log"),
            "truncated" => include_str!("../testdata/console/truncated.log"),
            other => panic!("no sample {other}"),
        }
    }

    fn assert_fails_with(name: &str, expected: &str) {
        let verdict = parse(sample(name), &suites(&["kselftest", "tool-kernel"]));
        assert!(
            verdict.problems.iter().any(|p| p.contains(expected)),
            "{name}: expected a problem containing {expected:?}, got {:?}",
            verdict.problems
        );
    }

    #[test]
    fn a_clean_boot_gives_results_races_and_no_problem() {
        let verdict = parse(
            sample("clean"),
            &suites(&["kselftest", "tool-kernel", "race-s2"]),
        );
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(verdict.release, "6.12.117");
        assert_eq!(verdict.umount_wait, Some(true));
        assert_eq!(verdict.tests["kselftest/umount_wait_tmpfs"], "pass");
        assert_eq!(verdict.tests["kselftest/umount_wait_einval"], "skip");
        assert_eq!(verdict.tests["tool-kernel/lazy_holder_waits"], "pass");
        assert_eq!(
            verdict.races["s2-lazy"]["plain"],
            RaceCount {
                runs: 20,
                busy_after_return: 20,
                ..RaceCount::default()
            }
        );
        assert_eq!(
            verdict.races["s2-lazy"]["umount-wait"],
            RaceCount {
                runs: 20,
                busy_after_return: 0,
                ..RaceCount::default()
            }
        );
        assert!(verdict
            .suite_output
            .iter()
            .any(|l| l.contains("waited 2013 ms")));
    }

    #[test]
    fn a_panic_fails_the_boot() {
        assert_fails_with("panic", "kernel panic: ");
        assert_fails_with("panic", "no UMW-END");
        let verdict = parse(sample("panic"), &suites(&["crash"]));
        assert_eq!(verdict.tests["crash/finished"], "fail");
    }

    #[test]
    fn an_oops_fails_the_boot_even_when_the_suites_finish() {
        assert_fails_with("oops", "oops: ");
        assert_fails_with("oops", "BUG: ");
    }

    #[test]
    fn a_warning_fails_the_boot() {
        assert_fails_with("warning", "WARNING: ");
    }

    #[test]
    fn a_hung_task_fails_the_boot() {
        assert_fails_with("hung-task", "hung task: ");
    }

    #[test]
    fn lockdep_and_kasan_reports_fail_the_boot() {
        assert_fails_with(
            "lockdep",
            "WARNING: possible circular locking dependency detected",
        );
        assert_fails_with("kasan", "BUG: KASAN: slab-use-after-free");
    }

    #[test]
    fn a_truncated_log_fails_and_names_the_unfinished_suite() {
        let verdict = parse(sample("truncated"), &suites(&["kselftest", "tool-kernel"]));
        assert!(verdict
            .problems
            .iter()
            .any(|p| p.contains("suite tool-kernel did not finish")));
        assert!(verdict.problems.iter().any(|p| p.contains("no UMW-END")));
        assert_eq!(verdict.tests["tool-kernel/finished"], "fail");
        assert_eq!(verdict.tests["kselftest/umount_wait_tmpfs"], "pass");
    }

    #[test]
    fn a_suite_that_never_ran_is_a_failure() {
        let verdict = parse(
            "UMW-KERNEL release=6.12.117 umount_wait=fallback\nUMW-END\n",
            &suites(&["kselftest"]),
        );
        assert_eq!(verdict.tests["kselftest/ran"], "fail");
        assert!(verdict.problems.iter().any(|p| p.contains("did not run")));
    }

    #[test]
    fn a_nonzero_exit_without_not_ok_is_a_failure() {
        let log = "UMW-SUITE-BEGIN tool-fallback\nok 1 probe\nUMW-SUITE-END tool-fallback rc=2\nUMW-END\n";
        let verdict = parse(log, &suites(&["tool-fallback"]));
        assert_eq!(verdict.tests["tool-fallback/exit-status"], "fail");
        assert_eq!(verdict.tests["tool-fallback/probe"], "pass");
    }

    #[test]
    fn a_skipped_plan_and_a_short_plan() {
        let log = "UMW-SUITE-BEGIN a\n1..0 # SKIP no flag\nUMW-SUITE-END a rc=0\n\
                   UMW-SUITE-BEGIN b\n1..3\nok 1 x\nnot ok 2 y\nUMW-SUITE-END b rc=1\nUMW-END\n";
        let verdict = parse(log, &suites(&["a", "b"]));
        assert_eq!(verdict.tests["a/all"], "skip");
        assert_eq!(verdict.tests["b/y"], "fail");
        assert_eq!(verdict.tests["b/plan"], "fail");
        assert!(!verdict.tests.contains_key("b/exit-status"));
    }

    #[test]
    fn a_suite_with_no_result_is_a_failure() {
        let log = "UMW-SUITE-BEGIN a\nhello\nUMW-SUITE-END a rc=0\nUMW-END\n";
        let verdict = parse(log, &suites(&["a"]));
        assert_eq!(verdict.tests["a/results"], "fail");
    }

    #[test]
    fn last_lines_skips_blank_lines() {
        assert_eq!(last_lines("a\n\nb\r\nc\n\n", 2), vec!["b", "c"]);
    }
}
