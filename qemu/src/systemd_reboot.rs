//! The reboot under a real systemd: the Debian image (debian.rs) booted by
//! its own systemd, its own shutdown, the project's examples installed or
//! not. One run is one boot:
//!
//!   the image, /data a fresh ext4 disk (/dev/vdb, in its fstab)
//!   -> umw-writer.service (qemu/guest/debian/), in a mount namespace of
//!      its own (PrivateMounts=yes): files of known content left dirty on
//!      /data, two holders whose files an io_uring ring holds (race-hold
//!      -r), then `systemctl reboot`
//!   -> systemd stops the service (its holders die; the ring's files are
//!      put from a kernel thread), stops data.mount (umount(2) of /data),
//!      then systemd-shutdown kills what is left, unmounts, syncs, reboots
//!   -> on the host: /data unclean or not (diskcheck::unclean: the journal
//!      still needing recovery means its superblock was alive at the
//!      reboot), then replayed and its files compared.
//!
//! Modes: `stock` (Debian's systemd alone: the baseline), `service`
//! (examples/systemd/umount-wait-data.service enabled), `hook`
//! (examples/systemd/umount-wait.shutdown in
//! /usr/lib/systemd/system-shutdown/), `both`. The stock baseline is
//! measured, not judged; with the data service, /data must be clean and
//! complete in every boot. Counts under races["systemd-reboot"], with the
//! time from `systemctl reboot` to the reset (the guest's uptime then, and
//! the kernel's timestamp of its last line).

use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::boot;
use crate::console::RaceCount;
use crate::context::{run_logged, Bench};
use crate::debian::{self, Install};
use crate::diskcheck::{self, Log};
use crate::kernel::{KernelImage, KernelName};
use crate::summary::KernelResult;

/// The scenario's name under `races` in summary.json.
pub const SCENARIO: &str = "systemd-reboot";
/// The guest's memory: systemd, udev and journald want more than the
/// initramfs does.
const MEMORY_MB: u32 = 512;
/// One boot's limit under TCG (a boot to the reboot takes 20-40 s).
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    pub name: &'static str,
    /// examples/systemd/umount-wait-data.service, enabled.
    service: bool,
    /// examples/systemd/umount-wait.shutdown, installed.
    hook: bool,
    /// /data must be clean and complete in every boot; otherwise measured.
    judged: bool,
}

pub const MODES: [Mode; 4] = [
    Mode {
        name: "stock",
        service: false,
        hook: false,
        judged: false,
    },
    Mode {
        name: "service",
        service: true,
        hook: false,
        judged: true,
    },
    Mode {
        name: "hook",
        service: false,
        hook: true,
        judged: false,
    },
    Mode {
        name: "both",
        service: true,
        hook: true,
        judged: true,
    },
];

/// The kernels it boots: 7.3, with and without the series.
pub fn runs_on(kernel: KernelName) -> bool {
    matches!(kernel, KernelName::Patched73 | KernelName::Unpatched73)
}

/// The modes named in `names` (all when empty).
pub fn select_modes(names: &[String]) -> Result<Vec<Mode>> {
    if names.is_empty() {
        return Ok(MODES.to_vec());
    }
    names
        .iter()
        .map(|n| {
            MODES.iter().copied().find(|m| m.name == n).ok_or_else(|| {
                let all: Vec<&str> = MODES.iter().map(|m| m.name).collect();
                anyhow::anyhow!("no systemd-reboot mode {n} (modes: {})", all.join(", "))
            })
        })
        .collect()
}

/// `boots` boots of each of `modes` on `image`; counts and a test per mode
/// into `result`.
pub fn run(
    bench: &Bench,
    image: &KernelImage,
    boots: u32,
    modes: &[Mode],
    result: &mut KernelResult,
) -> Result<()> {
    let base = debian::base_image(bench)?;
    for mode in modes {
        let mut count = RaceCount {
            unclean: Some(0),
            incomplete: Some(0),
            damaged: Some(0),
            ..RaceCount::default()
        };
        let mut times = Vec::new();
        let mut failures = Vec::new();
        for n in 1..=boots {
            let label = format!("systemd-{}-{}-{n}", image.name, mode.name);
            match one_boot(bench, image, &base, *mode, &label)? {
                Ok(run) => {
                    count.runs += 1;
                    let bad = !run.unclean.is_empty() || !run.wrong.is_empty();
                    // An example that never ran proves nothing, whatever
                    // /data looks like: its report must be there.
                    let unreported = (mode.service || mode.hook) && run.verdicts.is_empty();
                    *count.unclean.get_or_insert(0) += u64::from(!run.unclean.is_empty());
                    *count.incomplete.get_or_insert(0) += u64::from(!run.wrong.is_empty());
                    *count.damaged.get_or_insert(0) += u64::from(bad);
                    times.extend(run.reboot_ms);
                    let said = format!(
                        "{} {} boot {n}: /data {}{}, reboot took {}; umount-wait said: {}",
                        image.name,
                        mode.name,
                        if run.unclean.is_empty() {
                            "clean".to_string()
                        } else {
                            format!("unclean ({})", run.unclean.join(", "))
                        },
                        if run.wrong.is_empty() {
                            String::new()
                        } else {
                            format!(", {}", diskcheck::wrong_files_note(&run.wrong, run.files))
                        },
                        run.reboot_ms
                            .map(|ms| format!("{ms} ms"))
                            .unwrap_or_else(|| "?".into()),
                        if run.verdicts.is_empty() {
                            "nothing".to_string()
                        } else {
                            run.verdicts.join(" / ")
                        }
                    );
                    bench.progress.note(&said);
                    bench.sample(&serde_json::json!({
                        "kernel": image.name.as_str(),
                        "part": SCENARIO,
                        "mode": mode.name,
                        "boot": n,
                        "unclean": run.unclean,
                        "wrong_files": run.wrong,
                        "reboot_ms": run.reboot_ms,
                        "umount_wait_said": run.verdicts,
                    }))?;
                    if (mode.judged && bad) || unreported {
                        failures.push(said);
                    }
                }
                Err(why) => {
                    bench
                        .progress
                        .note(&format!("{} {} boot {n}: {why}", image.name, mode.name));
                    failures.push(why);
                }
            }
        }
        times.sort_unstable();
        count.ms_median = times.get(times.len() / 2).copied();
        count.ms_max = times.last().copied();
        result
            .races
            .entry(SCENARIO.into())
            .or_default()
            .insert(mode.name.into(), count);
        // Every mode must boot and reach its reboot; the judged ones must
        // also leave /data clean and whole.
        result.tests.insert(
            format!("{SCENARIO}/{}", mode.name),
            if failures.is_empty() { "pass" } else { "fail" }.into(),
        );
        for failure in failures {
            eprintln!("  # {SCENARIO}/{}: {failure}", mode.name);
        }
    }
    Ok(())
}

struct Run {
    /// Why /data was not shut down (empty: it was).
    unclean: Vec<String>,
    /// Files missing or wrong after the replay, of `files`.
    wrong: Vec<String>,
    files: usize,
    /// From `systemctl reboot` to the kernel's last line.
    reboot_ms: Option<u64>,
    /// umount-wait's last lines (`--all: N filesystem(s), ...`) on the
    /// console: the journal's (the data service) or the kernel log's (the
    /// shutdown hook).
    verdicts: Vec<String>,
}

/// One boot of `mode`: Ok(Err(why)) when the boot itself went wrong (no
/// reboot reached, time limit, kernel report).
fn one_boot(
    bench: &Bench,
    image: &KernelImage,
    base: &std::path::Path,
    mode: Mode,
    label: &str,
) -> Result<std::result::Result<Run, String>> {
    let dir = bench
        .paths
        .out
        .join("disks")
        .join(format!("{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let log = bench.log(&format!("{label}-disks.log"));
    let root = dir.join("root.img");
    let data = dir.join("data.img");
    let repo = &bench.paths.repo;
    let guest = bench.paths.guest().join("debian");
    let (command, _) = crate::initramfs::static_umount_wait(bench)?;
    let race_hold = crate::initramfs::static_helpers(bench)?
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "race-hold"))
        .ok_or_else(|| anyhow::anyhow!("race-hold was not built"))?;
    let mut install = Install {
        files: vec![
            ("/usr/bin/umount-wait", command, 0o755),
            ("/usr/local/bin/race-hold", race_hold, 0o755),
            (
                "/usr/local/sbin/umw-writer",
                guest.join("umw-writer"),
                0o755,
            ),
            (
                "/etc/systemd/system/umw-writer.service",
                guest.join("umw-writer.service"),
                0o644,
            ),
        ],
        enable: vec![("umw-writer.service", "multi-user.target")],
    };
    if mode.service {
        install.files.push((
            "/etc/systemd/system/umount-wait-data.service",
            repo.join("examples/systemd/umount-wait-data.service"),
            0o644,
        ));
        install
            .enable
            .push(("umount-wait-data.service", "local-fs.target"));
    }
    if mode.hook {
        install.files.push((
            "/usr/lib/systemd/system-shutdown/umount-wait.shutdown",
            repo.join("examples/systemd/umount-wait.shutdown"),
            0o755,
        ));
    }
    debian::install(base, &root, &install, &log)?;
    run_logged(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "umw-data"])
            .arg(&data)
            .arg("64M"),
        &log,
    )?;
    let console = bench.log(&format!("console-{label}.log"));
    let what = format!(
        "{} kernel: Debian under systemd, mode {}",
        image.name, mode.name
    );
    let outcome = bench.progress.stage(&what, Some(&console), || {
        boot::run_own_init(
            bench,
            image,
            &[root.clone(), data.clone()],
            "root=/dev/vda rw init=/lib/systemd/systemd",
            MEMORY_MB,
            TIMEOUT,
            &console,
        )
    })?;
    let text = String::from_utf8_lossy(&fs::read(&console)?).into_owned();
    let result = (|| -> Result<std::result::Result<Run, String>> {
        if outcome.timed_out {
            return Ok(Err(format!(
                "the boot hit its time limit of {} s ({})",
                TIMEOUT.as_secs(),
                console.display()
            )));
        }
        let mut problems = Vec::new();
        let lines = crate::console::lines(&text, &mut problems);
        let lines: Vec<&str> = lines.into_iter().collect();
        if let Some(problem) = problems.first() {
            return Ok(Err(format!("{problem} ({})", console.display())));
        }
        let Some(files) = lines
            .iter()
            .find_map(|l| l.strip_prefix("UMW-SYSTEMD-FILES "))
        else {
            return Ok(Err(format!(
                "the writer never wrote (no UMW-SYSTEMD-FILES line in {})",
                console.display()
            )));
        };
        let number = |key: &str| -> Option<usize> {
            files
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| v.parse().ok())
        };
        let (Some(n), Some(bytes)) = (number("n="), number("bytes=")) else {
            return Ok(Err(format!("unreadable: UMW-SYSTEMD-FILES {files}")));
        };
        let checks = Log(bench.log(&format!("{label}-disk-checks.log")));
        let unclean = diskcheck::unclean(&data, &checks)?;
        if let Some(left) = diskcheck::replay(&data, &checks)? {
            return Ok(Err(format!("/data after the replay: {left}")));
        }
        let paths: Vec<String> = (0..n).map(|i| format!("/files/f{i}")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let copies = diskcheck::dump(&data, &refs, &dir.join("dump"), &checks)?;
        let mut wrong = Vec::new();
        for (i, copy) in copies.iter().enumerate() {
            let expected: Vec<u8> = format!("umw-systemd f{i}\n")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(bytes)
                .collect();
            match copy {
                Some(copy) if fs::read(copy)? == expected => {}
                Some(_) => wrong.push(format!("f{i} (content)")),
                None => wrong.push(format!("f{i} (missing)")),
            }
        }
        Ok(Ok(Run {
            unclean,
            wrong,
            files: n,
            reboot_ms: reboot_ms(&text),
            verdicts: verdicts(&lines),
        }))
    })();
    let _ = fs::remove_dir_all(&dir);
    result
}

/// umount-wait's summary lines among the console's.
fn verdicts(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let at = l.find("umount-wait: --all: ")?;
            l[at..]
                .contains("filesystem(s)")
                .then(|| l[at..].trim().to_string())
        })
        .collect()
}

/// From the writer's `UMW-SYSTEMD-REBOOT uptime=S` to the kernel's last
/// timestamp (its "reboot: Restarting system"), in ms.
fn reboot_ms(text: &str) -> Option<u64> {
    let asked: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("UMW-SYSTEMD-REBOOT uptime="))?
        .trim()
        .parse()
        .ok()?;
    let last: f64 = text.lines().rev().find_map(|l| {
        let rest = l.trim_start().strip_prefix('[')?;
        rest.split_once(']')?.0.trim().parse::<f64>().ok()
    })?;
    (last >= asked).then(|| ((last - asked) * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_time_from_the_writers_line_to_the_last_timestamp() {
        let text = "[    9.000000] x\nUMW-SYSTEMD-REBOOT uptime=10.25\n[   11.500000] reboot: Restarting system\n";
        assert_eq!(reboot_ms(text), Some(1250));
        assert_eq!(reboot_ms("[ 1.0] x\n"), None);
    }

    #[test]
    fn umount_waits_summary_from_the_journal_or_the_kernel_log() {
        let lines = [
            "[   50.1] umount-wait[321]: umount-wait: --all: 1 filesystem(s), 1 shut down; 1 pass(es), 40 ms",
            "umount-wait: --all: pass 1, 1 mount(s)",
            "[   52.0] umount-wait: --all: 0 filesystem(s); nothing to do",
        ];
        assert_eq!(
            verdicts(&lines),
            vec![
                "umount-wait: --all: 1 filesystem(s), 1 shut down; 1 pass(es), 40 ms".to_string(),
                "umount-wait: --all: 0 filesystem(s); nothing to do".to_string()
            ]
        );
    }

    #[test]
    fn modes_by_name() {
        assert_eq!(select_modes(&[]).unwrap().len(), 4);
        assert_eq!(select_modes(&["both".into()]).unwrap()[0].name, "both");
        assert!(select_modes(&["nope".into()]).is_err());
    }
}
