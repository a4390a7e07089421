//! The shutdown mode end to end: a reboot script, a reboot, every
//! filesystem checked on the host. One run is one boot, as the data flows:
//!
//!   fresh disks -> boot with suite shutdown-reboot-<mode>: two data disks,
//!     bind mounts, a loop-mounted image, a tmpfs; apps in their own mount
//!     namespaces writing (synced and not); then the reboot script:
//!       umount-wait  examples/android-reboot.sh (umount-wait --all)
//!       polling      what Android init does today (100 ms polling),
//!                    qemu/guest/lib/android-init-reboot.sh
//!       plain        the 2017 report's: umount(8) once, reboot at once
//!     each also with a process the script does not know of left running,
//!     its cwd on the media disk (+survivor) or in a mount namespace of its
//!     own that has /data (+ns-survivor) or /media, the first disk of
//!     --all's order (+first-survivor), or /data kept in the script's own
//!     mount table by a tmpfs on it (+pinned: Android init's shutdown ioctl
//!     then reaches it); /data ext4, or f2fs as on Android (+f2fs); and
//!     `reboot -n -f`
//!   -> console: UMW-SHUTDOWN-FILE (what must be on the disks),
//!      UMW-SHUTDOWN-UNMOUNTED (status, time to finish), no kernel report
//!   -> the data disk (/dev/vdc), the media disk (/dev/vdd) and the image
//!      /inner.img copied out of the data disk: each unclean or not
//!      (diskcheck::unclean), then replayed and its files compared; an f2fs
//!      /data: its checkpoint and fsck.f2fs on the host, then a checker
//!      boot (suite shutdown-reboot-check) mounts it as the next boot
//!      would, sums its files and copies the image out onto /dev/vdb
//!   -> counts per mode under races["shutdown-reboot"], a test per mode.
//!
//! umount-wait must leave every filesystem clean and every file complete in
//! every boot, with exit status 0 (64 with a survivor: the filesystem it
//! holds is left read-only, here or in the survivor's namespace, and the
//! report says so). The polling script is measured, not
//! judged: its unclean filesystems and its time to finish are counted for
//! the comparison (its boots must still run without a kernel report). One
//! boot with no unmount at all (mode none) checks that the host side does
//! see the damage of an unclean shutdown in this tree (none+f2fs: with /data
//! on f2fs; both run by `umw-vm shutdown-reboot` with every mode or when
//! named in --modes; in `umw-vm test` only the ext4 one: there the f2fs
//! baseline that must leave /data unclean shows that check is not blind).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::boot;
use crate::console::{self, field, RaceCount};
use crate::context::Bench;
use crate::diskcheck::{self, Log};
use crate::disks::{self, Format};
use crate::initramfs::Initramfs;
use crate::kernel::{KernelImage, KernelName};
use crate::summary::KernelResult;

/// The scenario's name under `races` in summary.json, and its suite.
pub const SCENARIO: &str = "shutdown-reboot";
/// Boots per mode and kernel of `umw-vm shutdown-reboot` unless told
/// otherwise (`umw-vm test`: --shutdown-boots, 1).
pub const DEFAULT_BOOTS: u32 = 6;

/// A way to run the test: the reboot script, with or without a process
/// left running (variant survivor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    /// The mode's name under `races.shutdown-reboot` and in the log.
    name: &'static str,
    /// The guest suite.
    suite: &'static str,
    /// The test in summary.json.
    test: &'static str,
    /// The reboot script's status that the test requires; None: measured.
    expected_status: Option<i32>,
    /// A baseline that must show the bug: at least one boot with a
    /// filesystem left unclean, or the clean results of umount-wait in the
    /// same setting prove nothing.
    must_show_bug: bool,
    /// Run by `umw-vm test` (the mechanism); the others are measured by
    /// `umw-vm shutdown-reboot` and `umw-vm campaign`.
    in_test: bool,
    /// /data's filesystem: ext4, or f2fs as on Android.
    data: Format,
    /// Run by `umw-vm test` on the kernel with the series only: what it
    /// shows is the notification path's (no child, the init's own deadline).
    series_only: bool,
}

impl Mode {
    fn judged(&self) -> bool {
        self.expected_status.is_some()
    }
}

pub const MODES: [Mode; 16] = [
    Mode {
        name: "umount-wait",
        suite: "shutdown-reboot-umount-wait",
        test: "umount_wait_every_disk_clean_and_complete",
        expected_status: Some(0),
        must_show_bug: false,
        in_test: true,
        data: Format::Ext4,
        series_only: false,
    },
    Mode {
        name: "polling",
        suite: "shutdown-reboot-polling",
        test: "polling_baseline_measured",
        expected_status: None,
        must_show_bug: false,
        in_test: false,
        data: Format::Ext4,
        series_only: false,
    },
    // /media stays busy: umount-wait remounts it read-only and says so
    // (64, some filesystems not unmounted); every disk must still be clean.
    Mode {
        name: "umount-wait+survivor",
        suite: "shutdown-reboot-umount-wait-survivor",
        test: "umount_wait_survivor_read_only_every_disk_clean",
        expected_status: Some(64),
        must_show_bug: false,
        in_test: true,
        data: Format::Ext4,
        series_only: false,
    },
    Mode {
        name: "polling+survivor",
        suite: "shutdown-reboot-polling-survivor",
        test: "polling_survivor_baseline_measured",
        expected_status: None,
        must_show_bug: false,
        in_test: false,
        data: Format::Ext4,
        series_only: false,
    },
    // /data is still mounted in a live process's own namespace: umount-wait
    // waits out its deadline (5 s here), then makes /data read-only through
    // that namespace (64: not confirmed); every disk must still be clean.
    // In `umw-vm test` with /data on f2fs (below); on ext4 measured.
    Mode {
        name: "umount-wait+ns-survivor",
        suite: "shutdown-reboot-umount-wait-ns-survivor",
        test: "umount_wait_ns_survivor_read_only_every_disk_clean",
        expected_status: Some(64),
        must_show_bug: false,
        in_test: false,
        data: Format::Ext4,
        series_only: false,
    },
    Mode {
        name: "polling+ns-survivor",
        suite: "shutdown-reboot-polling-ns-survivor",
        test: "polling_ns_survivor_baseline_leaves_data_unclean",
        expected_status: None,
        must_show_bug: true,
        in_test: false,
        data: Format::Ext4,
        series_only: false,
    },
    // The same survivor keeping /media, the first disk of --all's order: a
    // wait on it must not cost /data its shutdown; /media ends read-only
    // (64), every disk clean.
    Mode {
        name: "umount-wait+first-survivor",
        suite: "shutdown-reboot-umount-wait-first-survivor",
        test: "umount_wait_first_survivor_others_shut_down_every_disk_clean",
        expected_status: Some(64),
        must_show_bug: false,
        in_test: true,
        data: Format::Ext4,
        series_only: false,
    },
    Mode {
        name: "polling+first-survivor",
        suite: "shutdown-reboot-polling-first-survivor",
        test: "polling_first_survivor_baseline_measured",
        expected_status: None,
        must_show_bug: false,
        in_test: false,
        data: Format::Ext4,
        series_only: false,
    },
    // /data on f2fs, as on Android; the host reads it after a checker boot.
    Mode {
        name: "umount-wait+f2fs",
        suite: "shutdown-reboot-umount-wait-f2fs",
        test: "umount_wait_f2fs_data_every_disk_clean_and_complete",
        expected_status: Some(0),
        must_show_bug: false,
        in_test: true,
        data: Format::F2fs,
        series_only: false,
    },
    // The 2017 report's setting: Android init's unmount, then reboot(2).
    Mode {
        name: "polling+f2fs",
        suite: "shutdown-reboot-polling-f2fs",
        test: "polling_f2fs_baseline_measured",
        expected_status: None,
        must_show_bug: false,
        in_test: false,
        data: Format::F2fs,
        series_only: false,
    },
    // The 2017 report's own sequence: umount(8) once on each mount, then
    // reboot(2) at once, while the killed apps' namespaces are torn down.
    Mode {
        name: "plain+f2fs",
        suite: "shutdown-reboot-plain-f2fs",
        test: "plain_f2fs_baseline_measured",
        expected_status: None,
        must_show_bug: false,
        in_test: false,
        data: Format::F2fs,
        series_only: false,
    },
    // f2fs /data kept alive in a namespace of its own: read-only through
    // that namespace at the deadline (64), its checkpoint an unmount's.
    Mode {
        name: "umount-wait+f2fs+ns-survivor",
        suite: "shutdown-reboot-umount-wait-f2fs-ns-survivor",
        test: "umount_wait_f2fs_ns_survivor_read_only_every_disk_clean",
        expected_status: Some(64),
        must_show_bug: false,
        in_test: true,
        data: Format::F2fs,
        series_only: false,
    },
    // ... and the baseline: f2fs alive when the reboot stops the devices.
    Mode {
        name: "polling+f2fs+ns-survivor",
        suite: "shutdown-reboot-polling-f2fs-ns-survivor",
        test: "polling_f2fs_ns_survivor_baseline_leaves_data_unclean",
        expected_status: None,
        must_show_bug: true,
        in_test: true,
        data: Format::F2fs,
        series_only: false,
    },
    // The control of Android's last step: /data pinned in the script's own
    // mount table by a tmpfs on it that no pass of Android's unmounts, so
    // its unmount fails there and the script sends F2FS_IOC_SHUTDOWN.
    // Measured only.
    Mode {
        name: "polling+f2fs+pinned",
        suite: "shutdown-reboot-polling-f2fs-pinned",
        test: "polling_f2fs_pinned_baseline_measured",
        expected_status: None,
        must_show_bug: false,
        in_test: false,
        data: Format::F2fs,
        series_only: false,
    },
    // The init itself unmounts (PID 1, umount-wait/examples/pid1-reboot.rs:
    // the library's --all engine in-process, its own deadline), then reboots.
    // In `umw-vm test` on the patched kernel only (the notification path).
    Mode {
        name: "pid1",
        suite: "shutdown-reboot-pid1",
        test: "pid1_every_disk_clean_and_complete",
        expected_status: Some(0),
        must_show_bug: false,
        in_test: true,
        data: Format::Ext4,
        series_only: true,
    },
    // ... with /data held in a live process's own namespace: the init's
    // deadline (5 s) holds, it goes on, makes /data read-only through that
    // namespace and says so (64); every disk must still be clean.
    Mode {
        name: "pid1+ns-survivor",
        suite: "shutdown-reboot-pid1-ns-survivor",
        test: "pid1_ns_survivor_deadline_holds_every_disk_clean",
        expected_status: Some(64),
        must_show_bug: false,
        in_test: true,
        data: Format::Ext4,
        series_only: true,
    },
];

/// The bench's own check: no unmount at all.
const CONTROL: Mode = Mode {
    name: "none",
    suite: "shutdown-reboot-none",
    test: "bench/shutdown-reboot-sees-damage",
    expected_status: None,
    must_show_bug: false,
    in_test: false,
    data: Format::Ext4,
    series_only: false,
};

/// The same with /data on f2fs, when a mode has it.
const CONTROL_F2FS: Mode = Mode {
    name: "none+f2fs",
    suite: "shutdown-reboot-none-f2fs",
    test: "bench/shutdown-reboot-sees-damage-f2fs",
    expected_status: None,
    must_show_bug: false,
    in_test: false,
    data: Format::F2fs,
    series_only: false,
};

/// The checker boot after a boot with /data on f2fs.
const CHECK_SUITE: &str = "shutdown-reboot-check";

/// The kernels `umw-vm test` runs it on: with the series (kernel path) and
/// without (fallback), built from the same tree.
pub fn runs_on(kernel: KernelName) -> bool {
    matches!(kernel, KernelName::Unpatched | KernelName::Patched)
}

/// A filesystem of the tree, as the host finds it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fs {
    /// /dev/vdc: ext4, or f2fs (the +f2fs modes).
    Data,
    /// ext4 on /dev/vdd.
    Media,
    /// ext2 in /inner.img on the data disk.
    Image,
}

impl Fs {
    const ALL: [Fs; 3] = [Fs::Data, Fs::Media, Fs::Image];

    fn parse(name: &str) -> Option<Fs> {
        match name {
            "data" => Some(Fs::Data),
            "media" => Some(Fs::Media),
            "image" => Some(Fs::Image),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fs::Data => "data",
            Fs::Media => "media",
            Fs::Image => "image",
        }
    }
}

/// What a file must hold after the shutdown.
#[derive(Clone, Debug, PartialEq)]
enum Content {
    Md5(String),
    Byte(u8),
}

#[derive(Clone, Debug, PartialEq)]
struct ExpectedFile {
    fs: Fs,
    path: String,
    bytes: u64,
    content: Content,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Unmounted {
    status: i32,
    /// From the first SIGTERM to the reboot call.
    ms: u64,
    /// Block devices still claimed at the reboot call.
    claimed: u32,
    loop_bound: bool,
    /// Block-layer and filesystem errors the kernel logged after this line
    /// (the reboot, device_shutdown() included): a filesystem still alive
    /// touching a device being stopped.
    errors_after: u64,
}

/// What the console of one boot showed.
#[derive(Debug, Default)]
struct Console {
    umount_wait: Option<bool>,
    files: Vec<ExpectedFile>,
    unmounted: Option<Unmounted>,
    problems: Vec<String>,
}

/// What counts as an error in [`Unmounted::errors_after`].
const REBOOT_ERRORS: [&str; 7] = [
    "I/O error",
    "EXT4-fs error",
    "EXT2-fs error",
    "JBD2: ",
    "F2FS-fs",
    "Aborting journal",
    "critical medium error",
];

/// What the host found on the disks after one boot.
#[derive(Debug, Default)]
struct DiskCheck {
    /// The filesystems that were not shut down.
    unclean: Vec<Fs>,
    /// The files missing or wrong after the replay ("fs:/path what").
    wrong: Vec<String>,
    notes: Vec<String>,
}

/// /data on f2fs as the host and the checker boot read it.
#[derive(Debug, Default)]
struct F2fsRead {
    /// Why it was not shut down (the host, before the checker boot).
    unclean: Vec<String>,
    /// What fsck.f2fs found after the checker boot.
    errors_left: Option<String>,
    /// path in /data -> (bytes, md5), after the checker boot's mount.
    files: Vec<(String, u64, String)>,
    /// The bytes of /data/inner.img the checker boot put on the tool disk.
    image_bytes: Option<u64>,
    /// The checker boot could not mount /data: damage, its files missing.
    mount_failed: bool,
    /// The checker boot's own failures (a kernel report, its time limit,
    /// the image's copy, its unmount, no verdict): the boot fails.
    problems: Vec<String>,
}

/// Counts of one mode over its boots.
#[derive(Debug, Default)]
struct Tally {
    count: RaceCount,
    /// Filesystems unclean, summed over the boots (3 a boot at most).
    unclean_filesystems: u64,
    nonzero_status: u64,
    /// Boots whose status was not the one the mode requires.
    unexpected_status: u64,
    times_ms: Vec<u64>,
    problems: Vec<String>,
}

/// The control boots, one per /data filesystem.
const CONTROLS: [Mode; 2] = [CONTROL, CONTROL_F2FS];

/// The modes named in `names`, in their order in [`MODES`], then the
/// control boots named (`none`, `none+f2fs`); every mode when `names` is
/// empty, no control (those come with `control_boot`).
pub fn select_modes(names: &[String]) -> Result<Vec<Mode>> {
    let known = || MODES.iter().chain(&CONTROLS);
    for name in names {
        if !known().any(|m| m.name == name) {
            let known: Vec<_> = known().map(|m| m.name).collect();
            anyhow::bail!("no mode {name} (modes: {})", known.join(", "));
        }
    }
    Ok(known()
        .filter(|m| {
            names.iter().any(|n| n == m.name) || (names.is_empty() && !CONTROLS.contains(m))
        })
        .copied()
        .collect())
}

/// Runs the scenario's `umw-vm test` modes on one kernel: `boots` boots
/// per mode, then puts the counts and the verdicts into `result`. With
/// `control`, one more boot without any unmount checks the bench itself
/// (`bench/shutdown-reboot-sees-damage`, ext4; with f2fs the baseline that
/// must leave /data unclean shows that its check is not blind).
pub fn run(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    boots: u32,
    control_boot: bool,
    result: &mut KernelResult,
) -> Result<()> {
    let modes: Vec<Mode> = MODES
        .into_iter()
        .filter(|m| m.in_test && (!m.series_only || image.name.has_series()))
        .collect();
    let controls: &[Mode] = if control_boot { &[CONTROL] } else { &[] };
    run_with(bench, image, initramfs, boots, controls, &modes, result)
}

/// `modes` on one kernel; with `control_boot`, the control boot of each
/// /data filesystem they use.
pub fn run_modes(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    boots: u32,
    control_boot: bool,
    modes: &[Mode],
    result: &mut KernelResult,
) -> Result<()> {
    let (named, modes): (Vec<Mode>, Vec<Mode>) = modes.iter().partition(|m| CONTROLS.contains(m));
    let controls: Vec<Mode> = CONTROLS
        .into_iter()
        .filter(|c| named.contains(c) || (control_boot && modes.iter().any(|m| m.data == c.data)))
        .collect();
    run_with(bench, image, initramfs, boots, &controls, &modes, result)
}

fn run_with(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    boots: u32,
    controls: &[Mode],
    modes: &[Mode],
    result: &mut KernelResult,
) -> Result<()> {
    for control_mode in controls {
        let failure = control(bench, image, initramfs, control_mode)?;
        if let Some(why) = &failure {
            eprintln!("  # {}: {why}", control_mode.test);
        }
        result.tests.insert(
            control_mode.test.into(),
            if failure.is_none() { "pass" } else { "fail" }.into(),
        );
    }
    for &mode in modes {
        let mut tally = Tally::default();
        tally.count.unclean = Some(0);
        tally.count.console_errors = Some(0);
        tally.count.boots_with_console_errors = Some(0);
        tally.count.incomplete = Some(0);
        tally.count.damaged = Some(0);
        for n in 1..=boots {
            let mut problems = Vec::new();
            let checked = one_boot(bench, image, initramfs, &mode, n, boots, &mut problems)?;
            if let Some((unmounted, check)) = &checked {
                tally.add(&mode, unmounted, check);
                if mode.expected_status.is_some_and(|e| e != unmounted.status) {
                    problems.push(format!(
                        "boot {n}: the reboot script's unmount exited {}, not {}",
                        unmounted.status,
                        mode.expected_status.unwrap_or_default()
                    ));
                }
            }
            tally.problems.append(&mut problems);
        }
        let mut times = tally.times_ms.clone();
        times.sort_unstable();
        tally.count.ms_median = times.get(times.len().saturating_sub(1) / 2).copied();
        tally.count.ms_max = times.last().copied();
        tally.count.unclean_filesystems = Some(tally.unclean_filesystems);
        tally.count.boots_failed = Some(u64::from(boots) - tally.count.runs);
        bench.progress.note(&format!(
            "{} kernel: {SCENARIO} {}: {} boots ({} more cut short), {} with an unclean filesystem ({} filesystems), {} with data missing, {} errors logged after the reboot began (in {} boots), exit status not 0 in {}, time to finish median {} ms, max {} ms",
            image.name,
            mode.name,
            tally.count.runs,
            tally.count.boots_failed.unwrap_or(0),
            tally.count.unclean.unwrap_or(0),
            tally.unclean_filesystems,
            tally.count.incomplete.unwrap_or(0),
            tally.count.console_errors.unwrap_or(0),
            tally.count.boots_with_console_errors.unwrap_or(0),
            tally.nonzero_status,
            tally.count.ms_median.unwrap_or(0),
            tally.count.ms_max.unwrap_or(0),
        ));
        let test = format!("{SCENARIO}/{}", mode.test);
        let failure = verdict(&mode, &tally, boots);
        if let Some(why) = &failure {
            eprintln!("  # {test}: {why}");
            for problem in &tally.problems {
                eprintln!("  - {problem}");
            }
        }
        result
            .tests
            .insert(test, if failure.is_none() { "pass" } else { "fail" }.into());
        result
            .races
            .entry(SCENARIO.to_string())
            .or_default()
            .insert(mode.name.to_string(), tally.count);
    }
    Ok(())
}

/// One boot in `mode`: the console read, the disks checked. None when the
/// boot failed: why is in `problems`.
fn one_boot(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    mode: &Mode,
    n: u32,
    boots: u32,
    problems: &mut Vec<String>,
) -> Result<Option<(Unmounted, DiskCheck)>> {
    let label = format!("{}-{}-{n}", mode.suite, image.name);
    let what = format!(
        "{} kernel: {SCENARIO} {}, boot {n} of {boots}",
        image.name, mode.name
    );
    let run = boot::reboot_run(
        bench, image, initramfs, mode.suite, mode.data, &label, &what,
    )?;
    let data = mode.data;
    let mode = mode.name;
    let mut console = parse(&run.text);
    console.problems.splice(0..0, run.timed_out.clone());
    if console.umount_wait.is_some() && console.umount_wait != Some(image.name.has_series()) {
        console.problems.push(format!(
            "umount-wait --probe says {}, on the {} kernel",
            if console.umount_wait == Some(true) {
                "kernel"
            } else {
                "fallback"
            },
            image.name
        ));
    }
    let unmounted = match console.unmounted {
        Some(unmounted) if console.problems.is_empty() => unmounted,
        _ => {
            for problem in &console.problems {
                problems.push(format!("boot {n}: {problem} ({})", run.log.display()));
            }
            bench.sample(&serde_json::json!({
                "scenario": SCENARIO,
                "kernel": image.name.as_str(),
                "mode": mode,
                "boot": n,
                "failed": console.problems,
            }))?;
            bench.progress.note(&format!(
                "{} kernel: {SCENARIO} {mode} boot {n} FAILED: {}",
                image.name,
                console.problems.join("; ")
            ));
            return Ok(None);
        }
    };
    let dumps = run.disks.images[0].with_file_name(format!("{label}.dump"));
    let (disks, check) = match data {
        Format::Ext4 => {
            let check = check_disks(bench, &run.disks.images, &console.files, &dumps, None);
            (run.disks, check)
        }
        Format::F2fs => {
            let log = Log(bench.log(&format!("{SCENARIO}-disk-checks.log")));
            let race = run.disks.images[disks::index("race")].clone();
            let unclean = diskcheck::f2fs_unclean(&race, &log)?;
            let next = boot::reboot_run_on(
                bench,
                image,
                initramfs,
                CHECK_SUITE,
                run.disks,
                &format!("{label}-check"),
                &format!("{what}: checker boot"),
            )?;
            let mut read = parse_check(&next.text);
            read.problems.splice(0..0, next.timed_out.clone());
            if !read.problems.is_empty() {
                for problem in &read.problems {
                    problems.push(format!(
                        "boot {n}: checker boot: {problem} ({})",
                        next.log.display()
                    ));
                }
                bench.progress.note(&format!(
                    "{} kernel: {SCENARIO} {mode} boot {n} FAILED in its checker boot: {}",
                    image.name,
                    read.problems.join("; ")
                ));
                bench.sample(&serde_json::json!({
                    "scenario": SCENARIO,
                    "kernel": image.name.as_str(),
                    "mode": mode,
                    "boot": n,
                    "failed": read.problems,
                }))?;
                return Ok(None);
            }
            read.unclean = unclean;
            read.errors_left = diskcheck::f2fs_errors_left(&race, &log)?;
            let check = check_disks(
                bench,
                &next.disks.images,
                &console.files,
                &dumps,
                Some(&read),
            );
            (next.disks, check)
        }
    };
    let _ = fs::remove_dir_all(&dumps);
    drop(disks);
    let check = match check {
        Ok(check) => check,
        Err(err) => {
            problems.push(format!("boot {n}: the host's disk check failed: {err:#}"));
            return Ok(None);
        }
    };
    let unclean: Vec<_> = check.unclean.iter().map(|f| f.name()).collect();
    bench.sample(&serde_json::json!({
        "scenario": SCENARIO,
        "kernel": image.name.as_str(),
        "mode": mode,
        "boot": n,
        "status": unmounted.status,
        "ms": unmounted.ms,
        "claimed_at_reboot": unmounted.claimed,
        "unclean": unclean,
        "incomplete": !check.wrong.is_empty(),
        "console_errors_after_reboot": unmounted.errors_after,
    }))?;
    bench.progress.note(&format!(
        "{} kernel: {SCENARIO} {mode} boot {n}: status {}, {} ms, {} disk(s) claimed at the reboot, {} error(s) logged after it, loop {}, {}, {}{}",
        image.name,
        unmounted.status,
        unmounted.ms,
        unmounted.claimed,
        unmounted.errors_after,
        if unmounted.loop_bound { "bound" } else { "detached" },
        if unclean.is_empty() {
            "all clean".to_string()
        } else {
            format!("UNCLEAN: {}", unclean.join(", "))
        },
        if check.wrong.is_empty() {
            "data complete"
        } else {
            "DATA INCOMPLETE"
        },
        if check.notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", check.notes.join("; "))
        }
    ));
    Ok(Some((unmounted, check)))
}

impl Tally {
    fn add(&mut self, mode: &Mode, unmounted: &Unmounted, check: &DiskCheck) {
        let count = &mut self.count;
        count.runs += 1;
        count.busy_after_return += u64::from(unmounted.claimed > 0);
        *count.unclean.get_or_insert(0) += u64::from(!check.unclean.is_empty());
        *count.incomplete.get_or_insert(0) += u64::from(!check.wrong.is_empty());
        *count.damaged.get_or_insert(0) +=
            u64::from(!check.unclean.is_empty() || !check.wrong.is_empty());
        self.unclean_filesystems += check.unclean.len() as u64;
        *count.console_errors.get_or_insert(0) += unmounted.errors_after;
        *count.boots_with_console_errors.get_or_insert(0) += u64::from(unmounted.errors_after > 0);
        self.nonzero_status += u64::from(unmounted.status != 0);
        self.unexpected_status += u64::from(
            mode.expected_status
                .is_some_and(|expected| expected != unmounted.status),
        );
        self.times_ms.push(unmounted.ms);
    }
}

/// The bench's own check: with no unmount at all, the host must find every
/// filesystem of the tree damaged (unclean, or its files missing). None when
/// it did; why not otherwise.
fn control(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    control_mode: &Mode,
) -> Result<Option<String>> {
    let mut problems = Vec::new();
    let checked = one_boot(bench, image, initramfs, control_mode, 1, 1, &mut problems)?;
    Ok(match checked {
        None => Some(format!("the boot failed: {}", problems.join("; "))),
        Some((_, check)) => control_verdict(&check),
    })
}

fn control_verdict(check: &DiskCheck) -> Option<String> {
    let missed: Vec<&str> = Fs::ALL
        .iter()
        .filter(|fs| {
            let prefix = format!("{}:", fs.name());
            !check.unclean.contains(fs) && !check.wrong.iter().any(|w| w.starts_with(&prefix))
        })
        .map(|fs| fs.name())
        .collect();
    (!missed.is_empty()).then(|| {
        format!(
            "rebooted without any unmount, yet found clean and complete: {}",
            missed.join(", ")
        )
    })
}

/// None when the mode passed; why it failed otherwise.
fn verdict(mode: &Mode, tally: &Tally, boots: u32) -> Option<String> {
    let count = &tally.count;
    let failed_boots = u64::from(boots) - count.runs;
    if failed_boots > 0 {
        return Some(format!(
            "{failed_boots} of {boots} boots failed (console or host check), see below"
        ));
    }
    let unclean = count.unclean.unwrap_or(0);
    let incomplete = count.incomplete.unwrap_or(0);
    if mode.must_show_bug && unclean == 0 && incomplete == 0 {
        return Some(format!(
            "the baseline left every filesystem clean in {} boots: umount-wait's clean disks in the same setting prove nothing",
            count.runs
        ));
    }
    if mode.judged() && (unclean > 0 || incomplete > 0 || tally.unexpected_status > 0) {
        let mut why = format!(
            "unclean filesystems in {unclean}, data missing in {incomplete} of {} boots",
            count.runs
        );
        if tally.unexpected_status > 0 {
            why.push_str(&format!(
                ", umount-wait's exit status not {} in {}",
                mode.expected_status.unwrap_or_default(),
                tally.unexpected_status
            ));
        }
        return Some(why);
    }
    None
}

/// Reads the console of one boot.
fn parse(text: &str) -> Console {
    let mut console = Console::default();
    for line in console::lines(text, &mut console.problems) {
        if let Some(rest) = line.strip_prefix("UMW-KERNEL ") {
            console.umount_wait = console::probe(rest);
        } else if let Some(rest) = line.strip_prefix("UMW-SHUTDOWN-FILE ") {
            match parse_file(rest) {
                Some(file) => console.files.push(file),
                None => console.problems.push(format!("malformed line: {line}")),
            }
        } else if let Some(unmounted) = console
            .unmounted
            .as_mut()
            .filter(|_| REBOOT_ERRORS.iter().any(|e| line.contains(e)))
        {
            unmounted.errors_after += 1;
        } else if let Some(rest) = line.strip_prefix("UMW-SHUTDOWN-UNMOUNTED ") {
            let number = |name| field(rest, name).and_then(|v| v.parse::<i64>().ok());
            match (
                number("status="),
                number("ms="),
                number("claimed="),
                field(rest, "loop_bound="),
            ) {
                (Some(status), Some(ms), Some(claimed), Some(bound @ ("0" | "1")))
                    if ms >= 0 && claimed >= 0 =>
                {
                    console.unmounted = Some(Unmounted {
                        status: status as i32,
                        ms: ms as u64,
                        claimed: claimed as u32,
                        loop_bound: bound == "1",
                        errors_after: 0,
                    })
                }
                _ => console.problems.push(format!("malformed line: {line}")),
            }
        } else if let Some(why) = line.strip_prefix("UMW-SHUTDOWN-ERROR ") {
            console
                .problems
                .push(format!("the guest could not set the run up: {why}"));
        }
    }
    if console.unmounted.is_none() && console.problems.is_empty() {
        console.problems.push(
            "no UMW-SHUTDOWN-UNMOUNTED on the console: the boot was cut short (crash, time limit or truncated log)"
                .into(),
        );
    }
    if console.unmounted.is_some() && console.files.is_empty() {
        console
            .problems
            .push("no UMW-SHUTDOWN-FILE on the console: nothing to check".into());
    }
    console
}

/// Reads the checker boot's console.
fn parse_check(text: &str) -> F2fsRead {
    let mut read = F2fsRead::default();
    let mut done = false;
    for line in console::lines(text, &mut read.problems) {
        if let Some(rest) = line.strip_prefix("UMW-CHECK-FILE ") {
            let file = field(rest, "path=")
                .zip(field(rest, "bytes="))
                .zip(field(rest, "md5="));
            match file {
                Some(((path, bytes), md5)) if bytes.parse::<u64>().is_ok() && md5.len() == 32 => {
                    read.files.push((
                        path.to_string(),
                        bytes.parse().unwrap_or(0),
                        md5.to_string(),
                    ))
                }
                _ => read.problems.push(format!("malformed line: {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("UMW-CHECK-IMAGE ") {
            match field(rest, "bytes=").and_then(|b| b.parse().ok()) {
                Some(bytes) => read.image_bytes = Some(bytes),
                None => read.problems.push(format!("malformed line: {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("UMW-CHECK-DONE ") {
            done = true;
            match field(rest, "status=") {
                Some("0") => {}
                Some("mount") => read.mount_failed = true,
                Some(what) => read
                    .problems
                    .push(format!("the checker boot's {what} of /data failed")),
                None => read.problems.push(format!("malformed line: {line}")),
            }
        }
    }
    if !done {
        read.problems
            .push("no UMW-CHECK-DONE: the checker boot was cut short".into());
    }
    read
}

/// `fs=data path=/a bytes=N md5=H` or `... byte=c`.
fn parse_file(rest: &str) -> Option<ExpectedFile> {
    let fs = Fs::parse(field(rest, "fs=")?)?;
    let path = field(rest, "path=").filter(|p| p.starts_with('/'))?;
    let bytes = field(rest, "bytes=")?.parse().ok()?;
    let content = match (field(rest, "md5="), field(rest, "byte=")) {
        (Some(md5), None) if md5.len() == 32 => Content::Md5(md5.to_string()),
        (None, Some(byte)) if byte.len() == 1 => Content::Byte(byte.as_bytes()[0]),
        _ => return None,
    };
    Some(ExpectedFile {
        fs,
        path: path.to_string(),
        bytes,
        content,
    })
}

/// The host's checks, each filesystem read-only first, then replayed and
/// its files compared. The image is copied out of the data disk after that
/// disk's replay, as the next boot would find it.
fn check_disks(
    bench: &Bench,
    images: &[std::path::PathBuf],
    files: &[ExpectedFile],
    dumps: &Path,
    f2fs: Option<&F2fsRead>,
) -> Result<DiskCheck> {
    let log = Log(bench.log(&format!("{SCENARIO}-disk-checks.log")));
    let mut check = DiskCheck::default();
    let inner = dumps.join("inner.img");
    for fs in Fs::ALL {
        if let (Fs::Data, Some(read)) = (fs, f2fs) {
            check_f2fs_data(read, files, &mut check)?;
            continue;
        }
        let image = match fs {
            Fs::Data => images[disks::index("race")].clone(),
            Fs::Media => images[disks::index("spare")].clone(),
            Fs::Image => {
                let copied = match f2fs {
                    None => diskcheck::dump(
                        &images[disks::index("race")],
                        &["/inner.img"],
                        &dumps.join("outer"),
                        &log,
                    )?,
                    Some(read) => vec![copy_out_image(&images[disks::index("tool")], read, dumps)?],
                };
                match &copied[0] {
                    Some(copy) => fs::rename(copy, &inner)?,
                    None => {
                        check.unclean.push(fs);
                        check.notes.push("image: /inner.img missing".into());
                        for file in files.iter().filter(|f| f.fs == fs) {
                            check.wrong.push(format!("image:{} missing", file.path));
                        }
                        continue;
                    }
                }
                inner.clone()
            }
        };
        let notes = diskcheck::unclean(&image, &log)?;
        if !notes.is_empty() {
            check.unclean.push(fs);
            check
                .notes
                .push(format!("{}: {}", fs.name(), notes.join(", ")));
        }
        if let Some(note) = diskcheck::replay(&image, &log)? {
            check.notes.push(format!("{}: {note}", fs.name()));
        }
        let mine: Vec<&ExpectedFile> = files.iter().filter(|f| f.fs == fs).collect();
        let paths: Vec<&str> = mine.iter().map(|f| f.path.as_str()).collect();
        let copies = diskcheck::dump(&image, &paths, &dumps.join(fs.name()), &log)?;
        for (file, copy) in mine.iter().zip(&copies) {
            if let Some(what) = compare(file, copy.as_deref())? {
                check
                    .wrong
                    .push(format!("{}:{} {what}", fs.name(), file.path));
            }
        }
    }
    log.append(&format!(
        "files: {}\n",
        if check.wrong.is_empty() {
            "complete".into()
        } else {
            check.wrong.join(", ")
        }
    ));
    if !check.wrong.is_empty() {
        check
            .notes
            .push(diskcheck::wrong_files_note(&check.wrong, files.len()));
    }
    Ok(check)
}

/// /data on f2fs: unclean as the host read it, the files as the checker
/// boot found them.
fn check_f2fs_data(read: &F2fsRead, files: &[ExpectedFile], check: &mut DiskCheck) -> Result<()> {
    if !read.unclean.is_empty() {
        check.unclean.push(Fs::Data);
        check
            .notes
            .push(format!("data: {}", read.unclean.join(", ")));
    }
    if let Some(note) = &read.errors_left {
        check.notes.push(format!("data: {note}"));
    }
    if !read.problems.is_empty() {
        check
            .notes
            .push(format!("data: {}", read.problems.join("; ")));
    }
    for file in files.iter().filter(|f| f.fs == Fs::Data) {
        let found = read.files.iter().find(|(path, ..)| *path == file.path);
        let what = match found {
            None => Some("missing".to_string()),
            Some((_, bytes, md5)) => compare_sum(file, *bytes, md5)?,
        };
        if let Some(what) = what {
            check.wrong.push(format!("data:{} {what}", file.path));
        }
    }
    Ok(())
}

/// The image the checker boot copied onto the tool disk, cut to its size;
/// None when it did not copy it.
fn copy_out_image(tool_disk: &Path, read: &F2fsRead, dumps: &Path) -> Result<Option<PathBuf>> {
    let Some(bytes) = read.image_bytes else {
        return Ok(None);
    };
    fs::create_dir_all(dumps)?;
    let copy = dumps.join("outer-inner.img");
    let mut from = fs::File::open(tool_disk)?;
    let mut to = fs::File::create(&copy)?;
    let copied = std::io::copy(&mut std::io::Read::take(&mut from, bytes), &mut to)?;
    Ok((copied == bytes).then_some(copy))
}

/// What is wrong with a file the checker boot summed; None when right.
fn compare_sum(file: &ExpectedFile, bytes: u64, md5: &str) -> Result<Option<String>> {
    if bytes != file.bytes {
        return Ok(Some(format!("{bytes} of {} bytes", file.bytes)));
    }
    let expected = match &file.content {
        Content::Md5(sum) => sum.clone(),
        Content::Byte(byte) => md5_of_bytes(*byte, file.bytes)?,
    };
    Ok((md5 != expected).then(|| format!("md5 {md5}, not {expected}")))
}

/// The md5 of `len` bytes of `byte` (a holder's file), by md5sum.
fn md5_of_bytes(byte: u8, len: u64) -> Result<String> {
    diskcheck::md5_hex(|stdin| {
        let block = vec![byte; 1 << 16];
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            stdin.write_all(&block[..n])?;
            left -= n as u64;
        }
        Ok(())
    })
}

/// None when the copy holds what the guest wrote; what is wrong otherwise.
fn compare(file: &ExpectedFile, copy: Option<&Path>) -> Result<Option<String>> {
    let copy = match copy {
        None => return Ok(Some("missing".into())),
        Some(copy) => copy,
    };
    let len = fs::metadata(copy)?.len();
    if len != file.bytes {
        return Ok(Some(format!("{len} of {} bytes", file.bytes)));
    }
    Ok(match &file.content {
        Content::Byte(byte) => fs::read(copy)?
            .iter()
            .position(|b| b != byte)
            .map(|at| format!("wrong byte at {at}")),
        Content::Md5(md5) => {
            let out = diskcheck::tool_output(Command::new("md5sum").arg(copy))?;
            let sum = out.split_whitespace().next().unwrap_or_default();
            (sum != md5).then(|| format!("md5 {sum}, not {md5}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_that_shut_down_and_rebooted_is_read() {
        let console = parse(include_str!("../testdata/shutdown-reboot/umount-wait.log"));
        assert_eq!(console.problems, Vec::<String>::new());
        assert_eq!(console.umount_wait, Some(true));
        assert_eq!(console.files.len(), 11);
        assert_eq!(
            console.files[1],
            ExpectedFile {
                fs: Fs::Image,
                path: "/b".into(),
                bytes: 2097152,
                content: Content::Md5("3a72e1582c7b96f59cf41605fbc4ce9c".into()),
            }
        );
        assert_eq!(console.files[10].content, Content::Byte(b'd'));
        assert_eq!(console.files[10].fs, Fs::Media);
        assert_eq!(
            console.unmounted,
            Some(Unmounted {
                status: 0,
                ms: 1330,
                claimed: 0,
                loop_bound: false,
                errors_after: 0,
            })
        );
    }

    #[test]
    fn errors_logged_after_the_reboot_began_are_counted() {
        let text = include_str!("../testdata/shutdown-reboot/umount-wait.log");
        let errors_after = |text: &str| parse(text).unmounted.unwrap().errors_after;
        assert_eq!(errors_after(text), 0);
        let (before, after) = text.split_at(text.find("UMW-SHUTDOWN-UNMOUNTED").unwrap());
        let errors = "[    4.1] I/O error, dev vdc, sector 8 op 0x1:(WRITE)\n\
                      [    4.2] EXT4-fs error (device vdc): ext4_journal_check_start:84\n\
                      [    4.3] reboot: Restarting system\n";
        // Before the script's last line they are not the reboot's.
        let early = format!("{before}{errors}{after}");
        assert_eq!(errors_after(&early), 0);
        let (line, rest) = after.split_at(after.find('\n').unwrap() + 1);
        let late = format!("{before}{line}{errors}{rest}");
        let console = parse(&late);
        assert_eq!(console.unmounted.unwrap().errors_after, 2);
        assert_eq!(console.problems, Vec::<String>::new());
    }

    #[test]
    fn a_boot_cut_short_or_with_a_kernel_report_fails() {
        let text = include_str!("../testdata/shutdown-reboot/umount-wait.log");
        let cut = &text[..text.find("UMW-SHUTDOWN-UNMOUNTED").unwrap()];
        assert!(parse(cut).problems[0].contains("no UMW-SHUTDOWN-UNMOUNTED"));
        let warned = format!("[    9.1] WARNING: CPU: 1 PID: 80 at fs/super.c:100\n{text}");
        assert!(parse(&warned).problems[0].starts_with("WARNING"));
        let error = parse("UMW-SHUTDOWN-ERROR mount /dev/vdc /data\n");
        assert!(error.problems[0].contains("mount /dev/vdc /data"));
    }

    #[test]
    fn malformed_lines_are_problems() {
        for line in [
            "UMW-SHUTDOWN-FILE fs=root path=/a bytes=1 byte=a",
            "UMW-SHUTDOWN-FILE fs=data path=a bytes=1 byte=a",
            "UMW-SHUTDOWN-FILE fs=data path=/a bytes=x byte=a",
            "UMW-SHUTDOWN-FILE fs=data path=/a bytes=1 md5=00",
            "UMW-SHUTDOWN-UNMOUNTED mode=polling status=0 ms=? claimed=0 loop_bound=0",
            "UMW-SHUTDOWN-UNMOUNTED mode=polling status=0 ms=5 claimed=0 loop_bound=2",
        ] {
            let console = parse(line);
            assert!(
                console.problems[0].starts_with("malformed line"),
                "{line}: {:?}",
                console.problems
            );
        }
    }

    #[test]
    fn files_are_compared_by_length_byte_and_checksum() {
        let dir = std::env::temp_dir().join(format!("umw-sr-compare-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("f");
        fs::write(&copy, b"aaaa").unwrap();
        let file = |bytes, content| ExpectedFile {
            fs: Fs::Data,
            path: "/f".into(),
            bytes,
            content,
        };
        let by_byte = file(4, Content::Byte(b'a'));
        assert_eq!(compare(&by_byte, Some(&copy)).unwrap(), None);
        assert_eq!(compare(&by_byte, None).unwrap().as_deref(), Some("missing"));
        assert_eq!(
            compare(&file(8, Content::Byte(b'a')), Some(&copy))
                .unwrap()
                .as_deref(),
            Some("4 of 8 bytes")
        );
        assert_eq!(
            compare(&file(4, Content::Byte(b'b')), Some(&copy))
                .unwrap()
                .as_deref(),
            Some("wrong byte at 0")
        );
        // md5("aaaa")
        let sum = "74b87337454200d4d33f80c4663dc5e5".to_string();
        assert_eq!(
            compare(&file(4, Content::Md5(sum)), Some(&copy)).unwrap(),
            None
        );
        let wrong = compare(&file(4, Content::Md5("0".repeat(32))), Some(&copy)).unwrap();
        assert!(wrong.unwrap().starts_with("md5 74b87337"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_checker_boot_is_read_and_its_sums_compared() {
        let text =
            "UMW-CHECK-FILE path=/app/dirty.0 bytes=4 md5=74b87337454200d4d33f80c4663dc5e5\n\
                    UMW-CHECK-FILE path=/media/a bytes=4 md5=00000000000000000000000000000000\n\
                    UMW-CHECK-IMAGE bytes=16777216\n\
                    UMW-CHECK-DONE status=0\n";
        let read = parse_check(text);
        assert_eq!(read.problems, Vec::<String>::new());
        assert_eq!(read.image_bytes, Some(16 << 20));
        let expected = |path: &str, bytes, content| ExpectedFile {
            fs: Fs::Data,
            path: path.into(),
            bytes,
            content,
        };
        let files = [
            expected("/app/dirty.0", 4, Content::Byte(b'a')),
            expected("/media/a", 4, Content::Md5("0".repeat(32))),
            expected("/app/dirty.1", 4, Content::Byte(b'b')),
        ];
        let mut check = DiskCheck::default();
        check_f2fs_data(&read, &files, &mut check).unwrap();
        assert_eq!(check.wrong, ["data:/app/dirty.1 missing"]);
        assert!(check.unclean.is_empty());
        assert_eq!(
            compare_sum(&files[0], 4, "0".repeat(32).as_str())
                .unwrap()
                .unwrap(),
            "md5 00000000000000000000000000000000, not 74b87337454200d4d33f80c4663dc5e5"
        );
        assert_eq!(
            compare_sum(&files[0], 3, "x").unwrap().unwrap(),
            "3 of 4 bytes"
        );

        let failed = parse_check("UMW-CHECK-DONE status=mount\n");
        assert!(failed.mount_failed && failed.problems.is_empty());
        let copy = parse_check("UMW-CHECK-DONE status=copy\n");
        assert_eq!(copy.problems, ["the checker boot's copy of /data failed"]);
        let read = F2fsRead {
            unclean: vec!["checkpoint not an unmount's (compacted_summary)".into()],
            ..failed
        };
        let mut check = DiskCheck::default();
        check_f2fs_data(&read, &files, &mut check).unwrap();
        assert_eq!(check.unclean, [Fs::Data]);
        assert_eq!(check.wrong.len(), 3);
        assert!(parse_check("").problems[0].contains("cut short"));
    }

    #[test]
    fn the_control_must_find_every_filesystem_damaged() {
        let check = DiskCheck {
            unclean: vec![Fs::Data, Fs::Media],
            wrong: vec!["image:/b 0 of 2097152 bytes".into()],
            ..DiskCheck::default()
        };
        assert_eq!(control_verdict(&check), None);
        let check = DiskCheck {
            unclean: vec![Fs::Data],
            ..DiskCheck::default()
        };
        assert!(control_verdict(&check).unwrap().ends_with("media, image"));
    }

    #[test]
    fn umount_wait_must_leave_everything_clean_and_polling_is_measured() {
        let tally = |runs, unclean, incomplete, unexpected| Tally {
            count: RaceCount {
                runs,
                unclean: Some(unclean),
                incomplete: Some(incomplete),
                ..RaceCount::default()
            },
            unexpected_status: unexpected,
            ..Tally::default()
        };
        let [umount_wait, polling, survivor, ..] = MODES;
        assert_eq!(verdict(&umount_wait, &tally(6, 0, 0, 0), 6), None);
        assert!(verdict(&umount_wait, &tally(6, 1, 0, 0), 6).is_some());
        assert!(verdict(&umount_wait, &tally(6, 0, 1, 0), 6).is_some());
        assert!(verdict(&survivor, &tally(6, 0, 0, 1), 6)
            .unwrap()
            .contains("exit status not 64"));
        assert_eq!(verdict(&polling, &tally(6, 4, 2, 1), 6), None);
        assert!(verdict(&polling, &tally(5, 0, 0, 0), 6)
            .unwrap()
            .contains("1 of 6 boots failed"));
    }
}
