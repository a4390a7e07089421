//! The flows: test, the scenarios run alone, demo, shell, prepare. Each one
//! strings the stages together in the order the data flows (kernel ->
//! initramfs -> disks -> boot -> console -> verdict -> summary); no stage
//! imports this file.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::boot::{self, Boot};
use crate::console::{self, Verdict};
use crate::context::Bench;
use crate::initramfs::{self, Initramfs};
use crate::kernel::{self, KernelImage, KernelName};
use crate::summary::{KernelResult, Summary};
use crate::{ci_boot, disks, mutant, reboot, shutdown_reboot, suites};

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

/// What `umw-vm campaign` runs: statistics, not a test.
pub struct CampaignOptions {
    /// Runs per mode of the race scenarios S1-S3 (one boot per kernel).
    pub runs: u32,
    /// Boots per mode of S4 and of shutdown-reboot.
    pub boots: u32,
    /// Which parts: races, s4, shutdown-reboot.
    pub parts: Vec<String>,
    /// Which modes of shutdown-reboot; all when empty.
    pub modes: Vec<String>,
}

/// The parts of a campaign, in the order they run.
pub const CAMPAIGN_PARTS: [&str; 3] = ["races", "s4", "shutdown-reboot"];

impl Bench {
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
            if image.name == KernelName::Mutant {
                let list = self.paths.repo.join("qemu/mutant/not-wait-tests");
                let cannot_fail = mutant::judge(&mut result, &mutant::not_wait_tests(&list)?);
                if !cannot_fail.is_empty() {
                    self.progress.note(&format!(
                        "tests that cannot fail (they do not fail on the mutant kernel): {}",
                        cannot_fail.join(", ")
                    ));
                }
                summary.kernels.push(result);
                continue;
            }
            if options.s4_boots > 0 && reboot::runs_in_test(image.name) {
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
            if options.shutdown_boots > 0 && ci_boot::runs_on(image.name) {
                ci_boot::run(
                    self,
                    image,
                    &initramfs,
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
                source: image.source.clone(),
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

    /// `umw-vm s4`: scenario S4 alone, on each kernel; writes the summary.
    pub fn s4_alone(&self, kernels: &[KernelName], boots: u32) -> Result<bool> {
        self.scenario_alone(kernels, |image, initramfs, result| {
            result.umount_wait =
                reboot::run(self, image, initramfs, boots, result)?.unwrap_or(false);
            Ok(())
        })
    }

    /// `umw-vm shutdown-reboot`: the reboot-script test alone, on each
    /// kernel; writes the summary. The control boot runs on the patched
    /// kernel (or the only one). `modes` narrows the modes to those named
    /// (all when empty); the control boot runs with all of them.
    pub fn shutdown_reboot_alone(
        &self,
        kernels: &[KernelName],
        boots: u32,
        modes: &[String],
    ) -> Result<bool> {
        let modes = shutdown_reboot::select_modes(modes)?;
        self.scenario_alone(kernels, |image, initramfs, result| {
            let control_boot = modes.len() >= shutdown_reboot::MODES.len()
                && (image.name == KernelName::Patched || kernels.len() == 1);
            shutdown_reboot::run_modes(self, image, initramfs, boots, control_boot, &modes, result)
        })
    }

    /// `umw-vm ci-boot`: the CI boot job alone, on each kernel, its control
    /// on the patched kernel (or the only one); writes the summary.
    pub fn ci_boot_alone(&self, kernels: &[KernelName]) -> Result<bool> {
        self.scenario_alone(kernels, |image, initramfs, result| {
            let control = image.name == KernelName::Patched || kernels.len() == 1;
            ci_boot::run(self, image, initramfs, control, result)
        })
    }

    /// `umw-vm prepare`: every stage up to, not including, the compiles, so
    /// that each cold path runs in seconds (ci/test, on an empty cache).
    pub fn prepare(&self) -> Result<bool> {
        let trees = kernel::prepare(self)?;
        let (name, patched) = trees
            .iter()
            .find(|(name, _)| *name == KernelName::Patched)
            .context("no patched tree")?;
        let selftest = self.paths.out.join("umount_wait_test");
        kernel::build_selftest(self, *name, patched, &selftest)?;
        let stock = crate::kernel_stock::fetch(self)?;
        initramfs::build_with(self, Some(selftest), &[&stock])?;
        let _disks = disks::fresh_with(self, "prepare", disks::Format::F2fs)?;
        self.progress.note(&format!(
            "prepared, no compile: {} trees in {}, the stock kernel, the initramfs, the disks",
            trees.len(),
            self.paths.cache.display()
        ));
        Ok(true)
    }

    /// `umw-vm campaign`: the statistical runs, on demand. Every sample (a
    /// race run, a reboot boot) goes to samples.jsonl; at the end the
    /// samples and the summary are copied to bench/results/campaign-<UTC time>/
    /// and the table is printed. The verdicts are the tests' own: a
    /// baseline that never reproduced or a umount-wait mode that was ever
    /// busy or unclean fails here too.
    pub fn campaign(&self, kernels: &[KernelName], options: &CampaignOptions) -> Result<bool> {
        for part in &options.parts {
            if !CAMPAIGN_PARTS.contains(&part.as_str()) {
                anyhow::bail!(
                    "no campaign part {part} (parts: {})",
                    CAMPAIGN_PARTS.join(", ")
                );
            }
        }
        let wants =
            |part: &str| options.parts.is_empty() || options.parts.iter().any(|p| p == part);
        let modes = shutdown_reboot::select_modes(&options.modes)?;
        let samples = self.paths.samples();
        let _ = fs::remove_file(&samples);
        let started = std::time::Instant::now();
        let ok = self.scenario_alone(kernels, |image, initramfs, result| {
            if wants("races") {
                let suites = vec!["race-s1".into(), "race-s2".into(), "race-s3".into()];
                let mut boot = Boot::suites(suites, options.runs, image.name);
                // About 1.5 s a run under TCG, three modes a scenario.
                boot.stretch_suite_timeout(Duration::from_secs(u64::from(options.runs) * 6));
                let verdict =
                    self.boot(&format!("campaign-{}", image.name), image, initramfs, &boot)?;
                let booted = KernelResult::from_verdict(image, &verdict);
                result.umount_wait = booted.umount_wait;
                result.tests.extend(booted.tests);
                result.races.extend(booted.races);
            }
            if wants("s4") && image.name != KernelName::Mutant {
                reboot::run(self, image, initramfs, options.boots, result)?;
            }
            if wants("shutdown-reboot") && shutdown_reboot::runs_on(image.name) {
                shutdown_reboot::run_modes(
                    self,
                    image,
                    initramfs,
                    options.boots,
                    false,
                    &modes,
                    result,
                )?;
            }
            Ok(())
        })?;
        let date = crate::context::output_of(
            std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H%MZ"]),
        )?;
        let dir = self
            .paths
            .repo
            .join("bench/results")
            .join(format!("campaign-{date}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if samples.is_file() {
            fs::copy(&samples, dir.join("samples.jsonl"))?;
        }
        fs::copy(self.paths.summary_json(), dir.join("summary.json"))?;
        let kernels: Vec<&str> = kernels.iter().map(|k| k.as_str()).collect();
        fs::write(
            dir.join("command.txt"),
            format!(
                "umw-vm campaign {} --runs {} --boots {}{}{}\nwall time {} s\n",
                kernels.join(" "),
                options.runs,
                options.boots,
                list_option("parts", &options.parts),
                list_option("modes", &options.modes),
                started.elapsed().as_secs()
            ),
        )?;
        println!("campaign: samples and summary in {}", dir.display());
        Ok(ok)
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
        for run in &verdict.race_runs {
            let mut sample = serde_json::to_value(run)?;
            sample["kernel"] = image.name.as_str().into();
            self.sample(&sample)?;
        }
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
        self.progress.note(&format!(
            "demo: {}; then one boot under QEMU TCG (about 15 s)",
            kernel::build_plan(self, KernelName::Patched)?
        ));
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

fn yes_no(flag: Option<bool>) -> &'static str {
    match flag {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// ` --NAME a,b` for a list option that was given, nothing otherwise.
fn list_option(name: &str, values: &[String]) -> String {
    if values.is_empty() {
        String::new()
    } else {
        format!(" --{name} {}", values.join(","))
    }
}

/// The crash test boots the cheapest kernel that was built.
fn crash_test_kernel(images: &[KernelImage]) -> KernelName {
    [
        KernelName::Unpatched,
        KernelName::Patched,
        KernelName::Patched73,
        KernelName::Unpatched73,
        KernelName::Debug,
        KernelName::Stock,
    ]
    .into_iter()
    .find(|n| images.iter().any(|i| i.name == *n))
    .unwrap_or(KernelName::Unpatched)
}
