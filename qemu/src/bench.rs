//! The bench: where things are, and the three flows (test, demo, shell).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::boot::{self, Boot};
use crate::console::{self, Verdict};
use crate::initramfs::{self, Initramfs};
use crate::kernel::{self, KernelImage, KernelName};
use crate::progress::Progress;
use crate::summary::{KernelResult, Summary};
use crate::{disks, reboot, shutdown_reboot, suites};

pub struct Paths {
    /// The repository's root.
    pub repo: PathBuf,
    /// Kernel trees and images: ${UMW_CACHE:-$HOME/.cache/umount-wait}/vm.
    pub cache: PathBuf,
    /// target/vm: initramfs, disks, logs, summary.
    pub out: PathBuf,
}

impl Paths {
    pub fn logs(&self) -> PathBuf {
        self.out.join("logs")
    }
    pub fn summary_json(&self) -> PathBuf {
        self.out.join("summary.json")
    }
    pub fn guest(&self) -> PathBuf {
        self.repo.join("qemu/guest")
    }
    pub fn suites(&self) -> PathBuf {
        self.guest().join("suites")
    }
    pub fn kernel_patches(&self) -> PathBuf {
        self.repo.join("kernel-patches")
    }
}

pub struct Bench {
    pub paths: Paths,
    /// CI mode (CI set, or UMW_REQUIRE_VM=1): what cannot run is a failure, not a skip.
    pub ci: bool,
    pub kvm: bool,
    pub jobs: usize,
    pub progress: Progress,
}

pub struct TestOptions {
    pub suites: Vec<String>,
    pub runs: u32,
    pub crash_test: bool,
    /// Boots per mode of scenario S4 (reboot.rs); 0 leaves it out.
    pub s4_boots: u32,
    /// Boots per mode of the shutdown-reboot test (shutdown_reboot.rs) on
    /// the kernels it runs on; 0 leaves it out.
    pub shutdown_boots: u32,
}

impl Bench {
    pub fn new(kvm: bool) -> Result<Self> {
        let repo = match std::env::var_os("UMW_REPO") {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        };
        let repo = repo.canonicalize().context("finding the repository")?;
        let cache_root = match std::env::var_os("UMW_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home =
                    std::env::var_os("HOME").context("HOME is not set (or set UMW_CACHE)")?;
                PathBuf::from(home).join(".cache/umount-wait")
            }
        };
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target"));
        let paths = Paths {
            cache: cache_root.join("vm"),
            out: target.join("vm"),
            repo,
        };
        fs::create_dir_all(paths.logs())?;
        fs::create_dir_all(&paths.cache)?;
        let ci = env_set("CI") || env_set("UMW_REQUIRE_VM");
        let jobs = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(Bench {
            paths,
            ci,
            kvm: kvm || env_set("UMW_KVM"),
            jobs,
            progress: Progress::new(ci),
        })
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.paths.logs().join(name)
    }

    /// Builds the kernels, boots each with its suites, writes the summary.
    /// Returns whether everything passed.
    pub fn test(&self, kernels: &[KernelName], options: &TestOptions) -> Result<bool> {
        let mut summary = Summary::default();
        let mut images = Vec::new();
        for &name in kernels {
            match kernel::build(self, name) {
                Ok(image) => images.push(image),
                Err(err) => {
                    let verdict = if self.ci { "fail" } else { "skip" };
                    self.progress
                        .note(&format!("{name} kernel not available ({verdict}): {err:#}"));
                    summary
                        .kernels
                        .push(KernelResult::unavailable(name, verdict));
                }
            }
        }
        let initramfs = initramfs::build(self, &images.iter().collect::<Vec<_>>())?;
        for image in &images {
            let names = suites::for_kernel(&self.paths.suites(), image.name, &options.suites)?;
            // The debug kernel hunts for lockdep, sleep-in-atomic and hung-task
            // reports, not for statistics: half the race runs.
            let runs = if image.name == KernelName::Debug {
                (options.runs / 2).max(3)
            } else {
                options.runs
            };
            let boot = Boot::suites(names, runs, image.name);
            let verdict = self.boot(image.name.as_str(), image, &initramfs, &boot)?;
            let mut result = KernelResult::from_verdict(image, &verdict);
            if options.s4_boots > 0 {
                reboot::run(self, image, &initramfs, options.s4_boots, &mut result)?;
            }
            if options.shutdown_boots > 0 && shutdown_reboot::runs_on(image.name) {
                shutdown_reboot::run(
                    self,
                    image,
                    &initramfs,
                    options.shutdown_boots,
                    image.name == KernelName::Patched,
                    &mut result,
                )?;
            }
            if options.crash_test && image.name == crash_test_kernel(&images) {
                let caught = self.crash_test(image, &initramfs)?;
                result.tests.insert(
                    "bench/crash-is-reported".into(),
                    if caught { "pass" } else { "fail" }.into(),
                );
            }
            summary.kernels.push(result);
        }
        summary.save(&self.paths.summary_json())?;
        println!("summary: {}", self.paths.summary_json().display());
        let (_, failed) = summary.print_table();
        Ok(failed == 0)
    }

    /// A scenario run alone (`umw-vm s4`, `umw-vm shutdown-reboot`): builds
    /// the kernels and the initramfs, runs `scenario` on each kernel into an
    /// empty result, writes the summary and prints the table.
    pub fn scenario_alone(
        &self,
        kernels: &[KernelName],
        mut scenario: impl FnMut(&KernelImage, &Initramfs, &mut KernelResult) -> Result<()>,
    ) -> Result<bool> {
        let mut images = Vec::new();
        for &name in kernels {
            images.push(kernel::build(self, name)?);
        }
        let initramfs = initramfs::build(self, &images.iter().collect::<Vec<_>>())?;
        let mut summary = Summary::default();
        for image in &images {
            let mut result = KernelResult {
                name: image.name.to_string(),
                release: image.release.clone(),
                umount_wait: image.name.has_series(),
                tests: BTreeMap::new(),
                races: BTreeMap::new(),
            };
            scenario(image, &initramfs, &mut result)?;
            summary.kernels.push(result);
        }
        summary.save(&self.paths.summary_json())?;
        let (_, failed) = summary.print_table();
        println!("summary: {}", self.paths.summary_json().display());
        Ok(failed == 0)
    }

    /// Boots one kernel with its suites and reads the verdict from the console.
    /// `label` names the console log (target/vm/logs/console-<label>.log).
    fn boot(
        &self,
        label: &str,
        image: &KernelImage,
        initramfs: &Initramfs,
        boot: &Boot,
    ) -> Result<Verdict> {
        let disks = disks::fresh(self, label)?;
        let log = self.log(&format!("console-{label}.log"));
        let what = format!(
            "{} kernel: boot, suites {}",
            image.name,
            boot.suites.join(",")
        );
        let outcome = self.progress.stage(&what, Some(&log), || {
            boot::run(self, image, initramfs, &disks.images, boot, &log)
        })?;
        let text = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
        let mut verdict = console::parse(&String::from_utf8_lossy(&text), &boot.suites);
        if outcome.timed_out {
            verdict.problems.insert(
                0,
                format!(
                    "the boot hit its time limit of {} s",
                    boot.timeout.as_secs()
                ),
            );
        }
        if verdict.problems.is_empty() {
            self.progress.note(&format!(
                "{} kernel: console clean, {} results",
                image.name,
                verdict.tests.len()
            ));
        } else {
            self.progress
                .note(&format!("{} kernel: the boot FAILED:", image.name));
            for problem in &verdict.problems {
                eprintln!("  - {problem}");
            }
            eprintln!("  last console lines ({}):", log.display());
            for line in console::last_lines(&String::from_utf8_lossy(&text), 25) {
                eprintln!("  | {line}");
            }
        }
        Ok(verdict)
    }

    /// The bench's own test: a kernel crashed on purpose must come out as a failure.
    fn crash_test(&self, image: &KernelImage, initramfs: &Initramfs) -> Result<bool> {
        let disks = disks::fresh(self, "crash-test")?;
        let log = self.log("console-crash-test.log");
        let boot = Boot::suites(vec!["crash".into()], 1, image.name);
        let what = format!("bench self-test: {} kernel crashed on purpose", image.name);
        self.progress.stage(&what, Some(&log), || {
            boot::run(self, image, initramfs, &disks.images, &boot, &log)
        })?;
        let text = String::from_utf8_lossy(&fs::read(&log)?).into_owned();
        let verdict = console::parse(&text, &boot.suites);
        let caught = verdict.problems.iter().any(|p| p.contains("panic"));
        if caught {
            self.progress.note(&format!(
                "the deliberate crash was reported as a failure: {}",
                verdict.problems[0]
            ));
        } else {
            self.progress
                .note("the deliberate crash was NOT reported as a failure");
        }
        Ok(caught)
    }

    /// Quick start: the patched kernel, umount-wait next to plain umount.
    pub fn demo(&self) -> Result<bool> {
        let image = match kernel::build(self, KernelName::Patched) {
            Ok(image) => image,
            Err(err) => {
                self.progress.note(&format!("patched kernel not available ({err:#}); showing the fallback on the unpatched kernel"));
                kernel::build(self, KernelName::Unpatched)?
            }
        };
        let initramfs = initramfs::build(self, &[&image])?;
        let boot = Boot::suites(vec!["demo".into()], 1, image.name);
        let verdict = self.boot(&format!("demo-{}", image.name), &image, &initramfs, &boot)?;
        println!();
        println!(
            "kernel: {} ({}), UMOUNT_WAIT: {}",
            image.name,
            verdict.release,
            yes_no(verdict.umount_wait)
        );
        for line in &verdict.suite_output {
            println!("{line}");
        }
        Ok(verdict.problems.is_empty() && verdict.tests.values().all(|v| v != "fail"))
    }

    /// An interactive shell on the serial console of a kernel.
    pub fn shell(&self, name: KernelName) -> Result<bool> {
        let image = kernel::build(self, name)?;
        let initramfs = initramfs::build(self, &[&image])?;
        let disks = disks::fresh(self, &format!("shell-{name}"))?;
        let log = self.log(&format!("console-shell-{name}.log"));
        self.progress.note(&format!(
            "booting the {name} kernel; console saved to {}; Ctrl-A x quits",
            log.display()
        ));
        let boot = Boot::shell();
        boot::run(self, &image, &initramfs, &disks.images, &boot, &log)?;
        Ok(true)
    }
}

/// Runs a command with its output appended to a log file; fails with the log's tail.
pub fn run_logged(command: &mut Command, log: &Path) -> Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let status = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail = console::last_lines(&text, 20).join("\n");
        bail!(
            "{command:?} failed ({status}); last lines of {}:\n{tail}",
            log.display()
        );
    }
    Ok(())
}

/// The output of a short command, trimmed.
pub fn output_of(command: &mut Command) -> Result<String> {
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn env_set(name: &str) -> bool {
    std::env::var(name)
        .map(|v| !v.is_empty() && v != "0" && v != "false")
        .unwrap_or(false)
}

fn yes_no(flag: Option<bool>) -> &'static str {
    match flag {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// The crash test boots the cheapest kernel that was built.
fn crash_test_kernel(images: &[KernelImage]) -> KernelName {
    [
        KernelName::Unpatched,
        KernelName::Patched,
        KernelName::Debug,
        KernelName::Stock,
    ]
    .into_iter()
    .find(|n| images.iter().any(|i| i.name == *n))
    .unwrap_or(KernelName::Unpatched)
}
