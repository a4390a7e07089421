//! The reboot under a real systemd: the Debian image (debian.rs) booted by
//! its own systemd, its own shutdown, the project's examples installed or
//! not. One run is one boot:
//!
//!   the image, /data a fresh disk (/dev/vdb: ext4, or f2fs in the +f2fs
//!   modes; the fstab written per boot)
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
//! /usr/lib/systemd/system-shutdown/), `both`; and `stock+f2fs`,
//! `both+f2fs` with /data on f2fs (Android's). The stock baseline is
//! measured, not judged; with the data service, /data must be clean and
//! complete in every boot. Counts under races["systemd-reboot"], with the
//! time from `systemctl reboot` to the reset (the guest's uptime then, and
//! the kernel's timestamp of its "reboot: Restarting system").
//!
//! The boot after the reboot: where an example runs `umount-wait --all`
//! (service, hook) or /data is f2fs, a second QEMU run boots the same
//! image on the same disks and the same RAM (a file in /dev/shm: what a
//! warm reset keeps, the ramoops region of last_shutdown::RAMOOPS
//! included). It leaves /data unmounted
//! (qemu/guest/debian/data-mount-first-boot.conf), runs umw-after-reboot,
//! then powers off:
//!   - examples/systemd/umount-wait-last-shutdown.service prints the
//!     shutdown's verdict in that boot's journal: it must be there, and
//!     name as many filesystems as the shutdown's last `--all` did;
//!   - f2fs /data: its checkpoint is read on the host between the two
//!     runs (diskcheck::f2fs_unclean), its files in that boot (the host
//!     has no f2fs driver): each file's size and md5 after the mount.

use std::fs;
use std::time::Duration;

use anyhow::Result;

use crate::boot;
use crate::console::RaceCount;
use crate::context::Bench;
use crate::debian::{self, Install};
use crate::diskcheck::{self, Log};
use crate::disks::{self, Disks, Format};
use crate::kernel::{KernelImage, KernelName};
use crate::summary::KernelResult;

/// The scenario's name under `races` in summary.json.
pub const SCENARIO: &str = "systemd-reboot";
/// The guest's memory: systemd, udev and journald want more than the
/// initramfs does.
const MEMORY_MB: u32 = 512;
/// One run's limit under TCG (a boot to the reboot takes 10-40 s, the
/// boot after it 10-20 s).
const TIMEOUT: Duration = Duration::from_secs(300);
/// What the kernel prints when the guest reboots, and powers off.
const RESTARTING: &str = "reboot: Restarting system";
const POWER_DOWN: &str = "reboot: Power down";

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    pub name: &'static str,
    /// examples/systemd/umount-wait-data.service, enabled.
    service: bool,
    /// examples/systemd/umount-wait.shutdown, installed.
    hook: bool,
    /// /data must be clean and complete in every boot; otherwise measured.
    judged: bool,
    /// /data's filesystem.
    data: Format,
}

impl Mode {
    /// An example runs `umount-wait --all`, whose verdict the next boot
    /// must show.
    fn records_verdict(&self) -> bool {
        self.service || self.hook
    }

    /// The VM is kept for a boot after the reboot: f2fs is read there,
    /// and with `next_boot` the verdict is shown there.
    fn second_boot(&self, next_boot: bool) -> bool {
        self.data == Format::F2fs || (next_boot && self.records_verdict())
    }
}

pub const MODES: [Mode; 6] = [
    Mode {
        name: "stock",
        service: false,
        hook: false,
        judged: false,
        data: Format::Ext4,
    },
    Mode {
        name: "service",
        service: true,
        hook: false,
        judged: true,
        data: Format::Ext4,
    },
    Mode {
        name: "hook",
        service: false,
        hook: true,
        judged: false,
        data: Format::Ext4,
    },
    Mode {
        name: "both",
        service: true,
        hook: true,
        judged: true,
        data: Format::Ext4,
    },
    Mode {
        name: "stock+f2fs",
        service: false,
        hook: false,
        judged: false,
        data: Format::F2fs,
    },
    Mode {
        name: "both+f2fs",
        service: true,
        hook: true,
        judged: true,
        data: Format::F2fs,
    },
];

/// The modes of `umw-vm test` (and of CI's systemd job, ci/test:
/// `--modes test`), per kernel: the stock baseline and both examples on
/// ext4 with the series (kernel and notify paths), both examples on f2fs
/// without it (fallback). Every mode on both kernels: the campaign.
pub fn test_modes(kernel: KernelName) -> Vec<Mode> {
    let names: &[&str] = match kernel {
        KernelName::Patched73 => &["stock", "both"],
        _ => &["both+f2fs"],
    };
    MODES
        .iter()
        .copied()
        .filter(|m| names.contains(&m.name))
        .collect()
}

/// The kernels it boots: 7.3, with and without the series.
pub fn runs_on(kernel: KernelName) -> bool {
    matches!(kernel, KernelName::Patched73 | KernelName::Unpatched73)
}

/// The modes named in `names` (all when empty; `test`: [`test_modes`]
/// of `kernel`).
pub fn select_modes(names: &[String], kernel: KernelName) -> Result<Vec<Mode>> {
    if names.is_empty() {
        return Ok(MODES.to_vec());
    }
    if names == ["test"] {
        return Ok(test_modes(kernel));
    }
    names
        .iter()
        .map(|n| {
            MODES.iter().copied().find(|m| m.name == n).ok_or_else(|| {
                let all: Vec<&str> = MODES.iter().map(|m| m.name).collect();
                anyhow::anyhow!(
                    "no systemd-reboot mode {n} (modes: {}; or test alone)",
                    all.join(", ")
                )
            })
        })
        .collect()
}

/// `boots` boots of each of `modes` on `image`; counts and a test per mode
/// into `result`.
/// `next_boot`: the boot after the reboot shows the verdict in the modes
/// that record one (f2fs modes have theirs in any case).
pub fn run(
    bench: &Bench,
    image: &KernelImage,
    boots: u32,
    modes: &[Mode],
    next_boot: bool,
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
            match one_boot(bench, image, &base, *mode, next_boot, &label)? {
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
                        "{} {} boot {n}: /data {}{}, reboot took {}; umount-wait said: {}{}{}",
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
                        },
                        run.last_shutdown
                            .as_ref()
                            .map(|h| format!("; the next boot: {h}"))
                            .unwrap_or_default(),
                        if run.second_boot.is_empty() {
                            String::new()
                        } else {
                            format!("; FAILED: {}", run.second_boot.join("; "))
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
                        "next_boot_said": run.last_shutdown,
                        "next_boot_problems": run.second_boot,
                    }))?;
                    if (mode.judged && bad) || unreported || !run.second_boot.is_empty() {
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
    /// From `systemctl reboot` to the kernel's "Restarting system".
    reboot_ms: Option<u64>,
    /// umount-wait's last lines (`--all: N filesystem(s), ...`) on the
    /// console of the first boot: the journal's (the data service) or the
    /// kernel log's (the shutdown hook).
    verdicts: Vec<String>,
    /// `umount-wait --last-shutdown`'s heading in the boot after the
    /// reboot's journal, where there was one.
    last_shutdown: Option<String>,
    /// What is wrong with the boot after the reboot, where there was one:
    /// not finished, no verdict where one was due, not the shutdown's.
    second_boot: Vec<String>,
}

/// One boot of `mode` (and the boot after its reboot, where it has one):
/// Ok(Err(why)) when the boot itself went wrong (no reboot reached, time
/// limit, kernel report).
fn one_boot(
    bench: &Bench,
    image: &KernelImage,
    base: &std::path::Path,
    mode: Mode,
    next_boot: bool,
    label: &str,
) -> Result<std::result::Result<Run, String>> {
    let second = mode.second_boot(next_boot);
    let dir = Disks::empty(bench, label)?;
    let log = bench.log(&format!("{label}-disks.log"));
    let root = dir.path("root.img");
    let data = dir.path("data.img");
    let fstab = dir.path("fstab");
    fs::write(
        &fstab,
        format!(
            "/dev/vdb /data {} defaults 0 0\n",
            match mode.data {
                Format::Ext4 => "ext4",
                Format::F2fs => "f2fs",
            }
        ),
    )?;
    let repo = &bench.paths.repo;
    let guest = bench.paths.guest().join("debian");
    let (command, _) = crate::initramfs::static_umount_wait(bench)?;
    let race_hold = crate::initramfs::static_helpers(bench)?
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "race-hold"))
        .ok_or_else(|| anyhow::anyhow!("race-hold was not built"))?;
    let mut install = Install {
        files: vec![
            ("/etc/fstab", fstab.clone(), 0o644),
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
    if second {
        install.files.extend([
            (
                "/usr/local/sbin/umw-after-reboot",
                guest.join("umw-after-reboot"),
                0o755,
            ),
            (
                "/etc/systemd/system/umw-after-reboot.service",
                guest.join("umw-after-reboot.service"),
                0o644,
            ),
            (
                "/etc/systemd/system/data.mount.d/umw-first-boot.conf",
                guest.join("data-mount-first-boot.conf"),
                0o644,
            ),
        ]);
        install
            .enable
            .push(("umw-after-reboot.service", "multi-user.target"));
    }
    if second && mode.records_verdict() {
        install.files.push((
            "/etc/systemd/system/umount-wait-last-shutdown.service",
            repo.join("examples/systemd/umount-wait-last-shutdown.service"),
            0o644,
        ));
        install
            .enable
            .push(("umount-wait-last-shutdown.service", "sysinit.target"));
    }
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
    disks::make(&data, "umw-data", mode.data, &log)?;
    let console = bench.log(&format!("console-{label}.log"));
    let what = format!(
        "{} kernel: Debian under systemd, mode {}{}",
        image.name,
        mode.name,
        if second {
            ", and the boot after its reboot"
        } else {
            ""
        }
    );
    // The boot after the reboot is a second QEMU run on the same disks and
    // the same RAM (a file in /dev/shm): what a warm reset keeps (the
    // ramoops region), without the reset itself, which costs TCG 10-15 s
    // here (the translated code of the first boot invalidated page by
    // page), and with the host reading /data between the two.
    let ram = if second { Some(ram_file(label)?) } else { None };
    let _ram_gone = ram.as_ref().map(|r| RemoveOnDrop(r.clone()));
    let mut machine = boot::Machine::own_init(
        image,
        &format!(
            "root=/dev/vda rw init=/lib/systemd/systemd{}",
            if second {
                format!(" {}", crate::last_shutdown::RAMOOPS)
            } else {
                String::new()
            }
        ),
        MEMORY_MB,
        TIMEOUT,
    );
    machine.ram_file = ram;
    let disks = [root.clone(), data.clone()];
    let boot1 = match one_run(bench, &machine, &disks, &what, &console)? {
        Ok(text) => text,
        Err(why) => return Ok(Err(why)),
    };
    let mut problems = Vec::new();
    let lines: Vec<&str> = crate::console::lines(&boot1, &mut problems)
        .into_iter()
        .collect();
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
    let expected = |i: usize| -> Vec<u8> {
        format!("umw-systemd f{i}\n")
            .into_bytes()
            .into_iter()
            .cycle()
            .take(bytes)
            .collect()
    };
    // The first boot must end in its reboot, not a power-off or a halt.
    if !lines.iter().any(|l| l.contains(RESTARTING)) {
        return Ok(Err(format!(
            "the first boot did not reboot (no \"{RESTARTING}\" in {})",
            console.display()
        )));
    }
    let boot_id = lines
        .iter()
        .find_map(|l| l.strip_prefix("UMW-SYSTEMD-BOOT-ID "))
        .map(str::trim);
    // /data as the reboot left it, read on the host before the boot after
    // the reboot (which leaves it unmounted): ext4 whole; f2fs its
    // checkpoint (the host has no f2fs driver for the files).
    let checks = Log(bench.log(&format!("{label}-disk-checks.log")));
    let mut wrong = Vec::new();
    let unclean = match mode.data {
        Format::Ext4 => {
            let unclean = diskcheck::unclean(&data, &checks)?;
            if let Some(left) = diskcheck::replay(&data, &checks)? {
                return Ok(Err(format!("/data after the replay: {left}")));
            }
            let paths: Vec<String> = (0..n).map(|i| format!("/files/f{i}")).collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let copies = diskcheck::dump(&data, &refs, &dir.path("dump"), &checks)?;
            for (i, copy) in copies.iter().enumerate() {
                match copy {
                    Some(copy) if fs::read(copy)? == expected(i) => {}
                    Some(_) => wrong.push(format!("f{i} (content)")),
                    None => wrong.push(format!("f{i} (missing)")),
                }
            }
            unclean
        }
        Format::F2fs => diskcheck::f2fs_unclean(&data, &checks)?,
    };
    let next_console = bench.log(&format!("console-{label}-next.log"));
    let boot2 = if second {
        let what = format!("{} kernel: Debian, the boot after the reboot", image.name);
        match one_run(bench, &machine, &disks, &what, &next_console)? {
            Ok(text) => text,
            Err(why) => return Ok(Err(why)),
        }
    } else {
        String::new()
    };
    let boot2: Vec<&str> = crate::console::lines(&boot2, &mut problems)
        .into_iter()
        .collect();
    if let Some(problem) = problems.first() {
        return Ok(Err(format!("{problem} ({})", next_console.display())));
    }
    let boot1 = &lines;
    let verdicts = verdicts(boot1);
    let mut second_boot = Vec::new();
    let mut last_shutdown = None;
    if second {
        if !boot2.iter().any(|l| l.contains("UMW-SECOND-BOOT-DONE")) {
            second_boot.push(format!(
                "the boot after the reboot did not finish (no UMW-SECOND-BOOT-DONE in {})",
                next_console.display()
            ));
        }
        last_shutdown = last_shutdown_heading(&boot2);
        if mode.records_verdict() {
            if let Some(why) = verdict_mismatch(&verdicts, last_shutdown.as_deref(), boot_id) {
                second_boot.push(why);
            }
        }
    }
    if mode.data == Format::F2fs {
        let read = read_f2fs(&boot2);
        if read.mount_failed || !read.done {
            return Ok(Err(format!(
                "the boot after the reboot could not read /data ({})",
                next_console.display()
            )));
        }
        for i in 0..n {
            let name = format!("f{i}");
            match read.sums.iter().find(|(f, ..)| *f == name) {
                None => wrong.push(format!("{name} (missing)")),
                Some((_, size, md5)) => {
                    if *size != bytes as u64 || *md5 != md5_hex(&expected(i))? {
                        wrong.push(format!("{name} (content)"));
                    }
                }
            }
        }
    }
    Ok(Ok(Run {
        unclean,
        wrong,
        files: n,
        reboot_ms: reboot_ms(&boot1.join("\n")),
        verdicts,
        last_shutdown,
        second_boot,
    }))
}

/// f2fs /data as the boot after the reboot read it (umw-after-reboot).
#[derive(Debug, Default, PartialEq)]
struct F2fsRead {
    /// (name, bytes, md5) of each file after the mount.
    sums: Vec<(String, u64, String)>,
    mount_failed: bool,
    /// The script got to its end.
    done: bool,
}

fn read_f2fs(lines: &[&str]) -> F2fsRead {
    let mut read = F2fsRead::default();
    for line in lines {
        if let Some(sum) = line.strip_prefix("UMW-SYSTEMD-SUM ") {
            let w: Vec<&str> = sum.split_whitespace().collect();
            if let [name, bytes, md5] = w[..] {
                if let Ok(bytes) = bytes.parse() {
                    read.sums.push((name.to_string(), bytes, md5.to_string()));
                }
            }
        } else if line.starts_with("UMW-F2FS-MOUNT-FAILED") {
            read.mount_failed = true;
        } else if line.starts_with("UMW-SECOND-BOOT-DONE") {
            read.done = true;
        }
    }
    read
}

/// One QEMU run of `machine` to its end (the reboot, or the power-off):
/// its console's text, or why it went wrong.
fn one_run(
    bench: &Bench,
    machine: &boot::Machine,
    disks: &[std::path::PathBuf],
    what: &str,
    console: &std::path::Path,
) -> Result<std::result::Result<String, String>> {
    let outcome = bench.progress.stage(what, Some(console), || {
        // A guest that halts instead of powering off.
        boot::run_machine(bench, machine, disks, console, |line| {
            line.contains(POWER_DOWN)
                .then(|| "the guest powered down".into())
        })
    })?;
    if outcome.timed_out {
        return Ok(Err(format!(
            "the boot hit its time limit of {} s ({})",
            TIMEOUT.as_secs(),
            console.display()
        )));
    }
    if let Some(why) = outcome.stopped.filter(|w| !w.contains("powered down")) {
        return Ok(Err(format!("stopped: {why} ({})", console.display())));
    }
    Ok(Ok(String::from_utf8_lossy(&fs::read(console)?).into_owned()))
}

/// The guest's RAM file for a boot and the boot after its reboot:
/// /dev/shm/umw-ram-<pid>-<label>, none there yet. Files that runs of
/// umw-vm no longer alive left behind (killed before their cleanup) are
/// removed first; /dev/shm must hold the guest's memory (a smaller one, a
/// container's 64 MiB, would make QEMU die of SIGBUS mid-boot).
fn ram_file(label: &str) -> Result<std::path::PathBuf> {
    let shm = std::path::Path::new("/dev/shm");
    for entry in fs::read_dir(shm)?.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("umw-ram-")) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
    let stat = rustix::fs::statvfs(shm)?;
    let free = stat.f_bavail * stat.f_frsize;
    if free < u64::from(MEMORY_MB) << 20 {
        anyhow::bail!(
            "/dev/shm has {} MiB free, the guest's RAM file needs {MEMORY_MB} MiB",
            free >> 20
        );
    }
    let file = shm.join(format!("umw-ram-{}-{label}", std::process::id()));
    let _ = fs::remove_file(&file);
    Ok(file)
}

/// A file removed when this goes (the guest's RAM file).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The md5 of `bytes` (md5sum's hex).
fn md5_hex(bytes: &[u8]) -> Result<String> {
    diskcheck::md5_hex(|stdin| stdin.write_all(bytes))
}

/// The heading of `umount-wait --last-shutdown` in the journal of the
/// boot after the reboot ("umount-wait[PID]: the last shutdown (...):
/// umount-wait --all, exit N, K filesystem(s), ..."), or its "no verdict"
/// answer: the command's own line, not systemd's about the unit (whose
/// description says "the last shutdown" too).
fn last_shutdown_heading(lines: &[&str]) -> Option<String> {
    lines.iter().find_map(|l| {
        let after = &l[l.find("umount-wait[")?..];
        let at = after
            .find("the last shutdown (")
            .or_else(|| after.find("--last-shutdown: "))?;
        Some(after[at..].trim().to_string())
    })
}

/// Why the verdict the boot after the reboot showed is not the one the
/// shutdown's last `--all` recorded; None when it is: the same boot (the
/// writer's `boot_id`), the same number of filesystems and passes, the
/// same time to 0.1 ms (what tells the shutdown hook's run from the data
/// service's, which may count the same).
fn verdict_mismatch(
    verdicts: &[String],
    heading: Option<&str>,
    boot_id: Option<&str>,
) -> Option<String> {
    let count = |text: &str| -> Option<String> {
        let before = text.split(" filesystem(s)").next()?;
        Some(before.rsplit([' ', ',']).next()?.to_string())
    };
    // "N pass(es), X ms"
    let passes_ms = |text: &str| -> Option<(String, f64)> {
        let before = text.split(" pass(es), ").next()?;
        let passes = before.rsplit([' ', ';']).next()?.to_string();
        let after = text.split(" pass(es), ").nth(1)?;
        let ms = after.split(" ms").next()?.trim().parse().ok()?;
        Some((passes, ms))
    };
    let Some(heading) = heading else {
        return Some(
            "the boot after the reboot showed no verdict (umount-wait-last-shutdown.service)"
                .into(),
        );
    };
    let Some(last) = verdicts.last() else {
        return Some("the shutdown's umount-wait --all printed no summary".into());
    };
    let same_run = match (passes_ms(heading), passes_ms(last)) {
        (Some((p1, ms1)), Some((p2, ms2))) => p1 == p2 && (ms1 - ms2).abs() <= 0.1 + 1e-9,
        _ => false,
    };
    let same_boot = boot_id.is_some_and(|id| heading.contains(&format!("boot {id}")));
    if !heading.contains("umount-wait --all, exit")
        || count(heading) != count(last)
        || !same_run
        || !same_boot
    {
        return Some(format!(
            "the boot after the reboot showed \"{heading}\", the shutdown's last --all (boot {}) said \"{last}\"",
            boot_id.unwrap_or("?")
        ));
    }
    None
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

/// From the writer's `UMW-SYSTEMD-REBOOT uptime=S` to the timestamp of the
/// kernel's first "reboot: Restarting system" after it, in ms.
fn reboot_ms(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    let asked: f64 = lines
        .find_map(|l| l.trim().strip_prefix("UMW-SYSTEMD-REBOOT uptime="))?
        .trim()
        .parse()
        .ok()?;
    let reset: f64 = lines.find(|l| l.contains(RESTARTING)).and_then(|l| {
        let rest = l.trim_start().strip_prefix('[')?;
        rest.split_once(']')?.0.trim().parse::<f64>().ok()
    })?;
    (reset >= asked).then(|| ((reset - asked) * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_time_from_the_writers_line_to_the_last_timestamp() {
        let text = "[    9.000000] x\nUMW-SYSTEMD-REBOOT uptime=10.25\n[   11.500000] reboot: Restarting system\n";
        assert_eq!(reboot_ms(text), Some(1250));
        assert_eq!(reboot_ms("[ 1.0] x\n"), None);
        // The first reset after the request, not the second boot's end.
        let two = "UMW-SYSTEMD-REBOOT uptime=10.0\n[   11.0] reboot: Restarting system\n[    5.0] x\n[    9.0] reboot: Power down\n";
        assert_eq!(reboot_ms(two), Some(1000));
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
        assert_eq!(select_modes(&[], KernelName::Patched73).unwrap().len(), 6);
        let f2fs = select_modes(&["both+f2fs".into()], KernelName::Patched73).unwrap()[0];
        assert!(f2fs.second_boot(false) && f2fs.records_verdict());
        let stock = select_modes(&["stock".into()], KernelName::Patched73).unwrap()[0];
        assert!(!stock.second_boot(true));
        let both = select_modes(&["both".into()], KernelName::Patched73).unwrap()[0];
        assert!(both.second_boot(true) && !both.second_boot(false));
        assert!(
            select_modes(&["stock+f2fs".into()], KernelName::Patched73).unwrap()[0]
                .second_boot(false)
        );
        assert_eq!(
            select_modes(&["both".into()], KernelName::Patched73).unwrap()[0].name,
            "both"
        );
        assert!(select_modes(&["nope".into()], KernelName::Patched73).is_err());
    }

    #[test]
    fn the_next_boots_verdict_must_be_the_shutdowns_last() {
        let first = vec![
            "umount-wait: --all: 1 filesystem(s), 1 shut down; 1 pass(es), 40.0 ms".to_string(),
            "umount-wait: --all: 1 filesystem(s), 1 remounted read only; 1 pass(es), 9.0 ms"
                .to_string(),
        ];
        let id = Some("d0485ec6-746c");
        let lines = [
            "[    3.1] systemd[1]: Starting umount-wait-last-shutdown.service - Show what the last shutdown left of each filesystem (umount-wait --last-shutdown)...",
            "[    3.2] umount-wait[120]: the last shutdown (2026-12-05 11:00:00 UTC, kernel 7.3.4, boot d0485ec6-746c): umount-wait --all, exit 0, 1 filesystem(s), 1 left read-only; 1 pass(es), 9.0 ms",
            "[    3.2] umount-wait[120]:   /: read-only",
        ];
        let heading = last_shutdown_heading(&lines);
        assert!(heading
            .as_deref()
            .unwrap()
            .starts_with("the last shutdown (2026"));
        assert_eq!(verdict_mismatch(&first, heading.as_deref(), id), None);
        // The data service's run, not the hook's (the same count): a mismatch.
        assert!(verdict_mismatch(&first[..1], heading.as_deref(), id).is_some());
        // Another boot's verdict.
        assert!(verdict_mismatch(&first, heading.as_deref(), Some("ffff")).is_some());
        assert!(verdict_mismatch(&first, heading.as_deref(), None).is_some());
        assert!(verdict_mismatch(&first, None, id)
            .unwrap()
            .contains("no verdict"));
        assert!(verdict_mismatch(&[], heading.as_deref(), id).is_some());
        let nothing = ["[ 3.0] umount-wait[1]: umount-wait: --last-shutdown: no verdict recorded: /sys/fs/pstore holds no pmsg file"];
        let heading = last_shutdown_heading(&nothing);
        assert!(heading
            .as_deref()
            .unwrap()
            .starts_with("--last-shutdown: no verdict"));
        assert!(verdict_mismatch(&first, heading.as_deref(), id).is_some());
        // systemd's line about the unit alone is no verdict.
        assert_eq!(last_shutdown_heading(&lines[..1]), None);
    }

    #[test]
    fn f2fs_as_the_next_boot_read_it() {
        let lines = [
            "UMW-SECOND-BOOT",
            "UMW-SYSTEMD-SUM f0 524288 0123abcd",
            "UMW-SYSTEMD-SUM f1 12",
            "UMW-SECOND-BOOT-DONE",
        ];
        let read = read_f2fs(&lines);
        assert_eq!(
            read.sums,
            vec![("f0".to_string(), 524288, "0123abcd".to_string())]
        );
        assert!(!read.mount_failed && read.done);
        let failed = read_f2fs(&["UMW-SECOND-BOOT", "UMW-F2FS-MOUNT-FAILED"]);
        assert!(failed.mount_failed && !failed.done);
        assert_eq!(md5_hex(b"").unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
