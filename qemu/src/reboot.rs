//! Scenario S4: reboot right after the unmount returned, checked on the host.
//!
//! One run is one boot, as the data flows:
//!
//!   fresh disks -> boot with suite race-s4-<mode>: the S1 workload with a
//!     known pattern per file, the unmount, `reboot -n -f` at once
//!   -> console: UMW-S4-WORKLOAD, UMW-S4-UNMOUNTED, no kernel report
//!   -> the race image (/dev/vdc): `e2fsck -fn` and `dumpe2fs -h` decide
//!     "unclean"; `e2fsck -fy` (journal replay, as the next mount would do),
//!     then `debugfs` dumps every file to compare with its pattern:
//!     "incomplete"
//!   -> counts per mode -> races["s4-reboot"] and one test per mode.
//!
//! The guest suite cannot end with /init's UMW-END (it reboots the VM), so
//! its console is read here, not by console::parse; the kernel reports are
//! the same list (console::KERNEL_REPORTS).
//!
//! Unclean: after an unmount that returned 0, the filesystem on the disk
//! must be one that was shut down: `e2fsck -fn` exits 0 and the superblock
//! has no `needs_recovery` (ext4 clears it in ->put_super, when the journal
//! is destroyed). A journal that still needs recovery is the bug itself: the
//! superblock was alive when the machine went down.
//! Incomplete: after the journal replay, some holder's file (synced or not)
//! is missing, short, or holds other bytes than its pattern. The unmount
//! returned 0, so every byte written before it must be there.

use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::boot;
use crate::console::{self, field, RaceCount};
use crate::context::Bench;
use crate::diskcheck;
use crate::disks;
use crate::initramfs::Initramfs;
use crate::kernel::{KernelImage, KernelName};
use crate::summary::KernelResult;

/// The scenario's name under `races` in summary.json.
pub const SCENARIO: &str = "s4-reboot";
/// The suite that runs the scenario (it also runs as race-s4-<mode>).
const SUITE: &str = "race-s4";
/// Boots per mode and kernel in `umw-vm s4` unless told otherwise.
pub const DEFAULT_BOOTS: u32 = 8;

/// The kernels `umw-vm test` runs S4 on: the mechanism on the tree with and
/// without the series. The debug and stock kernels get it from `umw-vm s4`
/// and `umw-vm campaign`.
pub fn runs_in_test(kernel: KernelName) -> bool {
    matches!(kernel, KernelName::Unpatched | KernelName::Patched)
}

/// What the console of one S4 boot showed.
#[derive(Debug, Default, PartialEq)]
struct Console {
    /// `umount-wait --probe` in the guest: kernel (true) or fallback (false).
    umount_wait: Option<bool>,
    workload: Option<Workload>,
    /// The unmount command's exit status and the O_EXCL check right after it.
    status: Option<i32>,
    busy: bool,
    /// Kernel reports, a missing or malformed marker, the guest's own errors.
    problems: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Workload {
    holders: u32,
    synced_kib: u64,
    dirty_mib: u64,
}

/// What the host found on the race image after one boot.
#[derive(Debug, Default)]
struct DiskCheck {
    unclean: bool,
    incomplete: bool,
    /// Why, for the log: e2fsck's status, the files that came out wrong.
    notes: Vec<String>,
}

/// Runs S4 on one kernel: `boots` boots per mode, then puts the counts and
/// the verdicts into `result`. Plain first: its first boot also says what
/// `umount-wait --probe` answers, which decides whether the kernel mode runs.
/// Returns that answer (true: kernel).
pub fn run(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    boots: u32,
    result: &mut KernelResult,
) -> Result<Option<bool>> {
    let mut probe = None;
    for mode in ["plain", "kernel", "fallback"] {
        let test = format!("{SUITE}/{}", test_name(mode));
        if mode == "kernel" && probe != Some(true) {
            let why = match probe {
                Some(false) => "the kernel has no UMOUNT_WAIT (umount-wait --probe)",
                _ => "umount-wait --probe did not answer in the plain boots",
            };
            bench.progress.note(&format!(
                "{} kernel: S4 kernel mode skipped: {why}",
                image.name
            ));
            result.tests.insert(test, "skip".into());
            continue;
        }
        let mut count = RaceCount::default();
        let (mut unclean, mut incomplete, mut damaged) = (0, 0, 0);
        let mut problems = Vec::new();
        // A baseline that has not shown the bug yet gets more boots, up to
        // three times as many and at least 6 in all, ending at the first
        // damaged disk: the race depends on the host's load, and it is
        // reproduction that is asked of it here.
        let most = if mode == "plain" {
            (boots * 3).max(6)
        } else {
            boots
        };
        let mut n = 0;
        while n < boots || (mode == "plain" && damaged == 0 && n < most) {
            n += 1;
            let label = format!("s4-{}-{mode}-{n}", image.name);
            let what = format!(
                "{} kernel: S4 {mode}, boot {n} of {}",
                image.name,
                boots.max(n)
            );
            let run = boot::reboot_run(
                bench,
                image,
                initramfs,
                &format!("{SUITE}-{mode}"),
                disks::Format::Ext4,
                &label,
                &what,
            )?;
            let log = &run.log;
            let mut console = parse(&run.text);
            if let Some(why) = run.timed_out.clone() {
                console.problems.insert(0, why);
            }
            probe = probe.or(console.umount_wait);
            if mode != "plain" && console.status.is_some_and(|s| s != 0) {
                console.problems.push(format!(
                    "umount-wait --mode {mode} exited {}",
                    console.status.unwrap_or_default()
                ));
            }
            // parse() reports a missing workload line as a problem.
            let workload = match console.workload {
                Some(workload) if console.problems.is_empty() => workload,
                _ => {
                    for problem in &console.problems {
                        problems.push(format!("boot {n}: {problem} ({})", log.display()));
                    }
                    bench.progress.note(&format!(
                        "{} kernel: S4 {mode} boot {n} FAILED: {}",
                        image.name,
                        console.problems.join("; ")
                    ));
                    continue;
                }
            };
            let race_disk = &run.disks.images[disks::index("race")];
            let check = match check_disk(bench, race_disk, workload) {
                Ok(check) => check,
                Err(err) => {
                    problems.push(format!("boot {n}: the host's disk check failed: {err:#}"));
                    continue;
                }
            };
            count.runs += 1;
            count.busy_after_return += u64::from(console.busy);
            unclean += u64::from(check.unclean);
            incomplete += u64::from(check.incomplete);
            damaged += u64::from(check.unclean || check.incomplete);
            bench.sample(&serde_json::json!({
                "scenario": SCENARIO,
                "kernel": image.name.as_str(),
                "mode": mode,
                "boot": n,
                "busy_after_return": console.busy,
                "unclean": check.unclean,
                "incomplete": check.incomplete,
            }))?;
            bench.progress.note(&format!(
                "{} kernel: S4 {mode} boot {n}: busy after return {}, {}, {}{}",
                image.name,
                yes_no(console.busy),
                if check.unclean { "UNCLEAN" } else { "clean" },
                if check.incomplete {
                    "INCOMPLETE"
                } else {
                    "complete"
                },
                if check.notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", check.notes.join("; "))
                }
            ));
        }
        count.unclean = Some(unclean);
        count.incomplete = Some(incomplete);
        count.damaged = Some(damaged);
        result
            .races
            .entry(SCENARIO.to_string())
            .or_default()
            .insert(mode.to_string(), count);
        let failure = verdict(mode, &count, n, &problems);
        if let Some(why) = &failure {
            eprintln!("  # {test}: {why}");
            for problem in &problems {
                eprintln!("  - {problem}");
            }
        }
        result
            .tests
            .insert(test, if failure.is_none() { "pass" } else { "fail" }.into());
    }
    Ok(probe)
}

/// The test of each mode, as it appears in summary.json.
fn test_name(mode: &str) -> String {
    match mode {
        "plain" => "baseline_plain_umount_damages".into(),
        _ => format!("{mode}_clean_and_complete"),
    }
}

/// None when the mode passed; why it failed otherwise. A boot that failed
/// (kernel report, no marker, a non-zero umount-wait) fails every mode.
fn verdict(mode: &str, count: &RaceCount, boots: u32, problems: &[String]) -> Option<String> {
    let damaged = count.damaged.unwrap_or(0);
    if !problems.is_empty() {
        Some(format!(
            "{} of {boots} boots failed (console or host check), see below",
            u64::from(boots) - count.runs
        ))
    } else if mode == "plain" && damaged == 0 {
        Some(format!(
            "baseline did not reproduce: clean and complete in all {} boots, so a zero for umount-wait proves nothing",
            count.runs
        ))
    } else if mode != "plain" && damaged != 0 {
        Some(format!(
            "unclean in {}, incomplete in {} of {} boots",
            count.unclean.unwrap_or(0),
            count.incomplete.unwrap_or(0),
            count.runs
        ))
    } else {
        None
    }
}

/// Reads the console of one S4 boot.
fn parse(text: &str) -> Console {
    let mut console = Console::default();
    let mut unmounted = false;
    for line in console::lines(text, &mut console.problems) {
        if let Some(rest) = line.strip_prefix("UMW-KERNEL ") {
            console.umount_wait = console::probe(rest);
        } else if let Some(rest) = line.strip_prefix("UMW-S4-WORKLOAD ") {
            let number = |name| field(rest, name).and_then(|v| v.parse::<u64>().ok());
            match (
                number("holders="),
                number("synced_kib="),
                number("dirty_mib="),
            ) {
                (Some(holders), Some(synced_kib), Some(dirty_mib)) if holders > 0 => {
                    console.workload = Some(Workload {
                        holders: holders as u32,
                        synced_kib,
                        dirty_mib,
                    })
                }
                _ => console.problems.push(format!("malformed line: {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("UMW-S4-UNMOUNTED ") {
            let status = field(rest, "status=").and_then(|v| v.parse().ok());
            let busy = field(rest, "busy=");
            match (status, busy) {
                (Some(status), Some(busy @ ("0" | "1"))) => {
                    unmounted = true;
                    console.status = Some(status);
                    console.busy = busy == "1";
                }
                _ => console.problems.push(format!("malformed line: {line}")),
            }
        } else if let Some(why) = line.strip_prefix("UMW-S4-ERROR ") {
            console
                .problems
                .push(format!("the guest could not run S4: {why}"));
        }
    }
    if !unmounted && console.problems.is_empty() {
        console.problems.push(
            "no UMW-S4-UNMOUNTED on the console: the boot was cut short (crash, time limit or truncated log)"
                .into(),
        );
    }
    if unmounted && console.workload.is_none() {
        console
            .problems
            .push("no UMW-S4-WORKLOAD on the console".into());
    }
    console
}

/// The host's checks of the race image, in that order: read-only first
/// (unclean?), then the journal replay and the files (incomplete?).
fn check_disk(bench: &Bench, image: &Path, workload: Workload) -> Result<DiskCheck> {
    let log = diskcheck::Log(bench.log("s4-disk-checks.log"));
    let mut check = DiskCheck {
        notes: diskcheck::unclean(image, &log)?,
        ..DiskCheck::default()
    };
    check.unclean = !check.notes.is_empty();
    // What the next mount would see: the journal replayed, then the files.
    check.notes.extend(diskcheck::replay(image, &log)?);

    let dumps = image.with_extension("dump");
    let files = expected_files(workload);
    let paths: Vec<String> = files.iter().map(|f| format!("/{}", f.name)).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let copies = diskcheck::dump(image, &paths, &dumps, &log)?;
    let mut wrong = Vec::new();
    for (file, copy) in files.iter().zip(&copies) {
        let data = copy.as_ref().and_then(|c| fs::read(c).ok());
        if let Some(what) = compare(file, data.as_deref()) {
            wrong.push(format!("{} {what}", file.name));
        }
    }
    let _ = fs::remove_dir_all(&dumps);
    log.append(&format!(
        "files: {}\n",
        if wrong.is_empty() {
            "complete".into()
        } else {
            wrong.join(", ")
        }
    ));
    if !wrong.is_empty() {
        check.incomplete = true;
        check
            .notes
            .push(diskcheck::wrong_files_note(&wrong, files.len()));
    }
    Ok(check)
}

/// A file the guest wrote: its name on the filesystem, its length, its byte.
#[derive(Debug, PartialEq)]
struct ExpectedFile {
    name: String,
    len: u64,
    byte: u8,
}

/// synced.<i>: 'A'+i, fsynced (race-s4); dirty.<i>: 'a'+i, not (race-hold).
fn expected_files(workload: Workload) -> Vec<ExpectedFile> {
    let mut files = Vec::new();
    for i in 0..workload.holders {
        files.push(ExpectedFile {
            name: format!("synced.{i}"),
            len: workload.synced_kib * 1024,
            byte: b'A' + (i % 26) as u8,
        });
        files.push(ExpectedFile {
            name: format!("dirty.{i}"),
            len: workload.dirty_mib << 20,
            byte: b'a' + (i % 26) as u8,
        });
    }
    files
}

/// None when the file is complete; what is wrong otherwise.
fn compare(file: &ExpectedFile, data: Option<&[u8]>) -> Option<String> {
    let data = match data {
        None => return Some("missing".into()),
        Some(data) => data,
    };
    if data.len() as u64 != file.len {
        return Some(format!("{} of {} bytes", data.len(), file.len));
    }
    data.iter()
        .position(|b| *b != file.byte)
        .map(|at| format!("wrong byte at {at}"))
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_that_unmounted_and_rebooted_is_read() {
        let console = parse(include_str!("../testdata/s4/unmounted.log"));
        assert_eq!(console.problems, Vec::<String>::new());
        assert_eq!(console.umount_wait, Some(false));
        assert_eq!(
            console.workload,
            Some(Workload {
                holders: 8,
                synced_kib: 256,
                dirty_mib: 4
            })
        );
        assert_eq!(console.status, Some(0));
        assert!(console.busy);
    }

    #[test]
    fn a_boot_without_the_marker_fails() {
        let console = parse(include_str!("../testdata/s4/cut-short.log"));
        assert!(console.problems[0].contains("no UMW-S4-UNMOUNTED"));
    }

    #[test]
    fn a_kernel_report_fails_the_boot_even_with_the_marker() {
        let console = parse(include_str!("../testdata/s4/warning.log"));
        assert!(console.status.is_some());
        assert!(console.problems.iter().any(|p| p.starts_with("WARNING")));
    }

    #[test]
    fn a_guest_error_is_reported() {
        let console = parse("UMW-KERNEL release=6.12 umount_wait=kernel\nUMW-S4-ERROR mount /dev/vdc /tmp/umw-s4 failed\n");
        assert!(console.problems[0].contains("mount /dev/vdc"));
    }

    #[test]
    fn files_are_compared_with_their_pattern() {
        let files = expected_files(Workload {
            holders: 2,
            synced_kib: 1,
            dirty_mib: 1,
        });
        assert_eq!(files.len(), 4);
        let synced = &files[0];
        assert_eq!(
            (synced.name.as_str(), synced.len, synced.byte),
            ("synced.0", 1024, b'A')
        );
        assert_eq!(files[3].byte, b'b');
        assert_eq!(compare(synced, Some(&[b'A'; 1024])), None);
        assert_eq!(compare(synced, None).as_deref(), Some("missing"));
        assert_eq!(
            compare(synced, Some(&[b'A'; 10])).as_deref(),
            Some("10 of 1024 bytes")
        );
        let mut zeros = vec![b'A'; 1024];
        zeros[512] = 0;
        assert_eq!(
            compare(synced, Some(&zeros)).as_deref(),
            Some("wrong byte at 512")
        );
    }

    #[test]
    fn the_baseline_must_damage_and_umount_wait_must_not() {
        let count = |runs, damaged| RaceCount {
            runs,
            damaged: Some(damaged),
            ..RaceCount::default()
        };
        assert!(verdict("plain", &count(8, 0), 8, &[])
            .unwrap()
            .contains("baseline did not reproduce"));
        assert_eq!(verdict("plain", &count(8, 3), 8, &[]), None);
        assert_eq!(verdict("kernel", &count(8, 0), 8, &[]), None);
        assert!(verdict("fallback", &count(8, 1), 8, &[]).is_some());
        assert!(verdict("kernel", &count(7, 0), 8, &["boot 3: oops".into()]).is_some());
    }
}
