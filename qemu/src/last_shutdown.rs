//! The shutdown's verdict across a real reboot: one QEMU run, two boots.
//!
//!   fresh disks -> QEMU without -no-reboot, ramoops in reserved memory
//!   (kernel command line), suite `last-shutdown` alone
//!   -> boot 1: `umount-wait --all` leaves a tmpfs read-write (held) and
//!      shuts an ext4 down, writes its verdict to /dev/pmsg0, `reboot -f`
//!   -> the warm reset keeps RAM: boot 2 reads the verdict with
//!      `umount-wait --last-shutdown` and checks it names what boot 1 left
//!   -> the console cut at boot 2's `UMW-KERNEL` line: boot 1's part must
//!      reach `UMW-LAST-SHUTDOWN-REBOOT` with no `not ok` and no kernel
//!      report; boot 2's part is read as any boot (console::parse).
//!
//! A guest that reboots again (a panic with panic=-1 resets the VM now)
//! is stopped at its third `UMW-KERNEL` line, and at the first kernel
//! report, instead of looping until the time limit.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::boot::{self, Boot};
use crate::console::{self, KERNEL_REPORTS};
use crate::context::Bench;
use crate::disks;
use crate::initramfs::Initramfs;
use crate::kernel::KernelImage;
use crate::summary::KernelResult;

pub const SUITE: &str = "last-shutdown";

/// What boot 1 prints right before `reboot -f`.
const REBOOTING: &str = "UMW-LAST-SHUTDOWN-REBOOT";

/// ramoops in 1 MiB of the guest's RAM (512 MiB: [`KernelImage::memory_mb`]),
/// reserved from the kernel (memmap=...$...), at 256 MiB: far from the
/// kernel image (loaded at 16 MiB) and from the initramfs, which QEMU puts
/// at the top of RAM on every boot. 64 KiB of it for pmsg, the rest unused
/// (no console, oops or ftrace records: nothing the test reads).
pub const RAMOOPS: &str = "memmap=1M$0x10000000 ramoops.mem_address=0x10000000 \
     ramoops.mem_size=0x100000 ramoops.pmsg_size=0x10000 ramoops.ecc=0";

/// Takes the suite out of `names` (it needs a boot of its own); whether
/// it was there.
pub fn take_from(names: &mut Vec<String>) -> bool {
    let before = names.len();
    names.retain(|n| n != SUITE);
    names.len() != before
}

/// The double boot on `image`; its tests go into `result` under
/// `last-shutdown/`.
pub fn run(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    result: &mut KernelResult,
) -> Result<()> {
    let disks = disks::fresh(bench, SUITE)?;
    let log = bench.log(&format!("console-{}-{SUITE}.log", image.name));
    let mut boot = Boot::suites(vec![SUITE.into()], 1, image.name);
    boot.warm_reset = true;
    boot.append = RAMOOPS.into();
    boot.suite_timeout = Duration::from_secs(60);
    boot.timeout = Duration::from_secs(150);
    let what = format!(
        "{} kernel: boot, suite {SUITE}, reboot, boot again",
        image.name
    );
    let mut boots = 0;
    let outcome = bench.progress.stage(&what, Some(&log), || {
        boot::run_watched(
            bench,
            image,
            initramfs,
            &disks.images,
            &boot,
            &log,
            |line| {
                if line.starts_with("UMW-KERNEL ") {
                    boots += 1;
                    if boots > 2 {
                        return Some("a third boot: the guest rebooted again".into());
                    }
                }
                KERNEL_REPORTS
                    .iter()
                    .find(|(needle, _)| line.contains(needle))
                    .map(|(_, kind)| format!("{kind}: {}", line.trim()))
            },
        )
    })?;
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let text = String::from_utf8_lossy(&text);
    let mut checked = judge(&text);
    if let Some(what) = outcome.stopped {
        checked.problems.insert(0, format!("stopped: {what}"));
    }
    if outcome.timed_out {
        checked.problems.insert(
            0,
            format!(
                "the boot hit its time limit of {} s",
                boot.timeout.as_secs()
            ),
        );
    }
    for (test, verdict) in &checked.tests {
        result.tests.insert(test.clone(), verdict.clone());
    }
    let console_test = format!("{SUITE}/both-boots-clean");
    if checked.problems.is_empty() {
        result.tests.insert(console_test, "pass".into());
        bench.progress.note(&format!(
            "{} kernel: {SUITE}: both boots clean, {} results",
            image.name,
            checked.tests.len()
        ));
    } else {
        result.tests.insert(console_test, "fail".into());
        bench
            .progress
            .note(&format!("{} kernel: {SUITE} FAILED:", image.name));
        for problem in &checked.problems {
            eprintln!("  - {problem}");
        }
        eprintln!("  last console lines ({}):", log.display());
        for line in console::last_lines(&text, 25) {
            eprintln!("  | {line}");
        }
    }
    Ok(())
}

/// What the two boots showed.
#[derive(Debug, Default)]
pub struct Checked {
    /// `last-shutdown/<test>` -> pass | fail | skip, both boots'.
    pub tests: std::collections::BTreeMap<String, String>,
    pub problems: Vec<String>,
}

/// Reads the console of the double boot.
pub fn judge(text: &str) -> Checked {
    let mut checked = Checked::default();
    let starts: Vec<usize> = text.match_indices("UMW-KERNEL ").map(|(i, _)| i).collect();
    let Some(&second) = starts.get(1) else {
        checked.problems.push(format!(
            "no second boot on the console ({} UMW-KERNEL line(s)): the guest did not reboot",
            starts.len()
        ));
        let mut problems = Vec::new();
        console::lines(text, &mut problems);
        checked.problems.extend(problems);
        return checked;
    };
    let (first, rest) = text.split_at(second);
    let lines = console::lines(first, &mut checked.problems);
    let mut rebooted = false;
    for line in lines {
        if let Some(name) = line.strip_prefix("not ok ") {
            let name = name.split_whitespace().nth(1).unwrap_or("?");
            checked
                .tests
                .insert(format!("{SUITE}/boot1-{name}"), "fail".into());
            checked.problems.push(format!("boot 1: not ok {name}"));
        } else if let Some(name) = line.strip_prefix("ok ") {
            let name = name.split_whitespace().nth(1).unwrap_or("?");
            checked
                .tests
                .insert(format!("{SUITE}/boot1-{name}"), "pass".into());
        }
        rebooted |= line.starts_with(REBOOTING);
    }
    if !rebooted {
        checked
            .problems
            .push(format!("boot 1 did not reach {REBOOTING}"));
    }
    let verdict = console::parse(rest, &[SUITE.to_string()]);
    checked.problems.extend(verdict.problems);
    checked.tests.extend(verdict.tests);
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT1: &str = "UMW-KERNEL release=7.3.0 umount_wait=notify\n\
        UMW-SUITE-BEGIN last-shutdown\nKTAP version 1\n1..4\nok 1 pstore_empty_on_first_boot\n\
        ok 2 pmsg_device\nok 3 mark_written\nok 4 all_exits_64\n\
        UMW-LAST-SHUTDOWN-REBOOT pid=77\n[   12.0] reboot: Restarting system\n";

    const BOOT2: &str = "UMW-KERNEL release=7.3.0 umount_wait=notify\n\
        UMW-SUITE-BEGIN last-shutdown\nKTAP version 1\n1..2\nok 1 last_shutdown_exits_0\n\
        ok 2 names_the_held_tmpfs_left_read_write_and_its_holder\n\
        UMW-SUITE-END last-shutdown rc=0\nUMW-END\n";

    #[test]
    fn the_suite_is_patched_73s_and_taken_out_of_its_normal_boot() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/suites");
        let mut names =
            crate::suites::for_kernel(&dir, crate::kernel::KernelName::Patched73, &[]).unwrap();
        assert!(take_from(&mut names), "{names:?}");
        assert!(!names.contains(&SUITE.to_string()) && !names.is_empty());
        assert!(!take_from(&mut names));
    }

    #[test]
    fn two_clean_boots_pass() {
        let checked = judge(&format!("{BOOT1}{BOOT2}"));
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert_eq!(
            checked.tests.get("last-shutdown/boot1-all_exits_64"),
            Some(&"pass".to_string())
        );
        assert_eq!(
            checked
                .tests
                .get("last-shutdown/names_the_held_tmpfs_left_read_write_and_its_holder"),
            Some(&"pass".to_string())
        );
    }

    #[test]
    fn a_missing_second_boot_a_failure_or_a_report_fails() {
        assert!(!judge(BOOT1).problems.is_empty());
        let failed = BOOT2.replace(
            "ok 1 last_shutdown_exits_0",
            "not ok 1 last_shutdown_exits_0",
        );
        let checked = judge(&format!("{BOOT1}{failed}"));
        assert_eq!(
            checked.tests.get("last-shutdown/last_shutdown_exits_0"),
            Some(&"fail".to_string())
        );
        let no_reboot = BOOT1.replace("UMW-LAST-SHUTDOWN-REBOOT pid=77\n", "");
        assert!(!judge(&format!("{no_reboot}{BOOT2}")).problems.is_empty());
        let oops = BOOT1.replace("ok 3 mark_written", "Oops: general protection fault");
        assert!(!judge(&format!("{oops}{BOOT2}")).problems.is_empty());
        let failed1 = BOOT1.replace("ok 4 all_exits_64", "not ok 4 all_exits_64");
        let checked = judge(&format!("{failed1}{BOOT2}"));
        assert_eq!(
            checked.tests.get("last-shutdown/boot1-all_exits_64"),
            Some(&"fail".to_string())
        );
    }
}
