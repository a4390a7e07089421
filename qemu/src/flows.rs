//! The flows: test, the scenarios run alone, demo, shell, prepare, campaign,
//! mutants. Each one
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
use crate::kernel::{self, Base, KernelImage, KernelName};
use crate::mutants::{self, BaseReport, Fate, Mutant, Report};
use crate::summary::{KernelResult, Summary};
use crate::{
    ci_boot, disks, last_shutdown, mutant, reboot, shutdown_reboot, suites, systemd_reboot,
};

pub struct TestOptions {
    pub suites: Vec<String>,
    pub runs: u32,
    pub crash_test: bool,
    /// Boots per mode of scenario S4 (reboot.rs); 0 leaves it out.
    pub s4_boots: u32,
    /// Boots per mode of the shutdown-reboot test (shutdown_reboot.rs) on
    /// the kernels it runs on; 0 leaves it out.
    pub shutdown_boots: u32,
    /// Boots per mode (stock, both) of the reboot under a real systemd
    /// (systemd_reboot.rs) on patched-7.3; 0 leaves it out.
    pub systemd_boots: u32,
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

/// The parts of a campaign, in the order they run. All but `mutants` run
/// when none is named; `mutants` runs the mutation tool (not statistics) on
/// the bases of the campaign's kernels.
pub const CAMPAIGN_PARTS: [&str; 6] = [
    "races",
    "s4",
    "shutdown-reboot",
    "faults",
    "systemd-reboot",
    "mutants",
];

/// What `umw-vm mutants` runs.
pub struct MutantsOptions {
    /// The bases, in order.
    pub bases: Vec<Base>,
    /// Only the mutants of these names; all when empty.
    pub only: Vec<String>,
    /// The command line, for the report.
    pub command: String,
}

impl Bench {
    /// A new `bench/results/<what>-<UTC time>/` for a run's results.
    fn results_dir(&self, what: &str) -> Result<std::path::PathBuf> {
        let date = crate::context::output_of(
            std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H%MZ"]),
        )?;
        let dir = self
            .paths
            .repo
            .join("bench/results")
            .join(format!("{what}-{date}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
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
            let mut names = suites::for_kernel(&self.paths.suites(), image.name, &options.suites)?;
            // A double boot of its own (warm reset, ramoops).
            let last_shutdown = last_shutdown::take_from(&mut names);
            // The debug kernel hunts for lockdep, sleep-in-atomic and hung-task
            // reports, not for statistics: half the race runs.
            let runs = if image.name == KernelName::Debug {
                (options.runs / 2).max(3)
            } else {
                options.runs
            };
            let mut result = if names.is_empty() && last_shutdown {
                // --suites last-shutdown: that boot alone.
                KernelResult {
                    name: image.name.to_string(),
                    release: image.release.clone(),
                    source: image.source.clone(),
                    umount_wait: image.name.has_series(),
                    tests: Default::default(),
                    races: Default::default(),
                }
            } else {
                let boot = Boot::suites(names, runs, image.name);
                let verdict = self.boot(image.name.as_str(), image, &initramfs, &boot)?;
                KernelResult::from_verdict(image, &verdict)
            };
            if last_shutdown {
                last_shutdown::run(self, image, &initramfs, &mut result)?;
            }
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
            // The reboot under a real systemd: the stock baseline and the
            // examples (data service and shutdown hook, with the boot after
            // the reboot showing their verdict), on ext4 and f2fs, one
            // boot each, on the 7.3 kernels (systemd_reboot::test_modes);
            // every mode in `umw-vm systemd-reboot` and the campaign.
            if options.systemd_boots > 0 && systemd_reboot::runs_on(image.name) {
                systemd_reboot::run(
                    self,
                    image,
                    options.systemd_boots,
                    &systemd_reboot::test_modes(image.name),
                    true,
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
    pub fn systemd_reboot_alone(
        &self,
        kernels: &[KernelName],
        boots: u32,
        modes: &[String],
        next_boot: bool,
    ) -> Result<bool> {
        for kernel in kernels {
            systemd_reboot::select_modes(modes, *kernel)?;
        }
        // On an empty cache the image's debootstrap (mostly the network's
        // and dpkg's) runs beside the kernels' builds, not after them; the
        // boots wait for it on its lock.
        std::thread::scope(|scope| {
            let image = scope.spawn(|| crate::debian::base_image(self));
            let ok = self.scenario_alone(kernels, |image, _, result| {
                let modes = systemd_reboot::select_modes(modes, image.name)?;
                systemd_reboot::run(self, image, boots, &modes, next_boot, result)
            });
            image
                .join()
                .map_err(|_| anyhow::anyhow!("building the Debian image panicked"))??;
            ok
        })
    }

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
    /// busy or unclean fails here too. The part `mutants` (only when named)
    /// runs [`Bench::mutants`] on the bases of `kernels`, with its own
    /// results directory.
    pub fn campaign(&self, kernels: &[KernelName], options: &CampaignOptions) -> Result<bool> {
        for part in &options.parts {
            if !CAMPAIGN_PARTS.contains(&part.as_str()) {
                anyhow::bail!(
                    "no campaign part {part} (parts: {})",
                    CAMPAIGN_PARTS.join(", ")
                );
            }
        }
        let wants = |part: &str| {
            (options.parts.is_empty() && part != "mutants")
                || options.parts.iter().any(|p| p == part)
        };
        let mut ok = true;
        if ["races", "s4", "shutdown-reboot", "faults", "systemd-reboot"]
            .iter()
            .any(|p| wants(p))
        {
            ok = self.campaign_scenarios(kernels, options, &wants)?;
        }
        if wants("mutants") {
            let mut bases: Vec<Base> = Vec::new();
            for base in kernels.iter().filter_map(|k| k.base()) {
                if !bases.contains(&base) {
                    bases.push(base);
                }
            }
            let kernels: Vec<&str> = kernels.iter().map(|k| k.as_str()).collect();
            ok &= self.mutants(&MutantsOptions {
                bases,
                only: Vec::new(),
                command: format!("umw-vm campaign {} --parts mutants", kernels.join(" ")),
            })?;
        }
        Ok(ok)
    }

    /// The statistical parts of a campaign (races, s4, shutdown-reboot).
    fn campaign_scenarios(
        &self,
        kernels: &[KernelName],
        options: &CampaignOptions,
        wants: &dyn Fn(&str) -> bool,
    ) -> Result<bool> {
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
            if wants("faults")
                && !suites::for_kernel(&self.paths.suites(), image.name, &["faults".into()])?
                    .is_empty()
            {
                self.faults_boots(image, initramfs, options.boots, result)?;
            }
            if wants("systemd-reboot") && systemd_reboot::runs_on(image.name) {
                let modes = systemd_reboot::select_modes(&[], image.name)?;
                systemd_reboot::run(self, image, options.boots, &modes, true, result)?;
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
        let dir = self.results_dir("campaign")?;
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

    /// `umw-vm mutants`: for each base, the built patched tree copied once
    /// (kernel::mutants_tree), then each mutant of qemu/mutants.txt applied,
    /// `make bzImage` (incremental), one boot with the kselftest alone,
    /// stopped at the first failing test, and the file put back. Writes
    /// results.json and results.md to bench/results/mutants-<UTC time>/ and
    /// prints the tables. Returns whether every mutant was killed.
    pub fn mutants(&self, options: &MutantsOptions) -> Result<bool> {
        let started = std::time::Instant::now();
        let versions: Vec<&str> = Base::ALL.iter().map(|b| b.version()).collect();
        let list = mutants::load(&self.paths.repo.join(mutants::LIST), &versions)?;
        for name in &options.only {
            if !list.iter().any(|m| &m.name == name) {
                anyhow::bail!("no mutant {name} in {}", mutants::LIST);
            }
        }
        let mut report = Report {
            command: options.command.clone(),
            wall_s: 0,
            bases: Vec::new(),
        };
        for &base in &options.bases {
            let chosen: Vec<&Mutant> = list
                .iter()
                .filter(|m| options.only.is_empty() || options.only.contains(&m.name))
                .filter(|m| m.applies_to(base.version()))
                .collect();
            if chosen.is_empty() {
                self.progress.note(&format!(
                    "mutants: none of those chosen is for base {}",
                    base.version()
                ));
                continue;
            }
            let image = kernel::build(self, base.patched())?;
            let tree = kernel::mutants_tree(self, base)?;
            if let Some(file) = mutants::recover(&tree)? {
                self.progress.note(&format!(
                    "mutants: {file} in {} was left changed by a run cut short: restored",
                    tree.display()
                ));
            }
            mutants::check(&tree, &chosen, base.version())?;
            let initramfs = initramfs::build(self, &[&image])?;
            let mut part = BaseReport {
                base: base.version().into(),
                release: image.release.clone(),
                source: image.source.clone(),
                tree: tree.display().to_string(),
                mutants: Vec::new(),
            };
            for mutant in chosen {
                let outcome = self.mutant(base, &image, &initramfs, &tree, mutant)?;
                self.progress.note(&format!(
                    "mutant {} ({}): {}: {}",
                    mutant.name,
                    base.version(),
                    outcome.verdict.label(),
                    outcome.detail
                ));
                part.mutants.push(outcome);
            }
            report.bases.push(part);
        }
        report.wall_s = started.elapsed().as_secs();
        let dir = self.results_dir("mutants")?;
        fs::write(
            dir.join("results.json"),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
        let table = report.markdown();
        fs::write(
            dir.join("results.md"),
            format!(
                "# Mutants\n\n`{}`, {} s. Killed: a kselftest test failed (the first \
                 one is named, with the harness's note), or the boot panicked or hit \
                 its time limit. SURVIVED: every test passed. Stillborn: did not \
                 compile.\n\n{table}",
                report.command, report.wall_s
            ),
        )?;
        println!();
        print!("{table}");
        println!("mutants: results in {}", dir.display());
        Ok(report.all_killed())
    }

    /// One mutant: applied, built, booted with the kselftest, put back.
    fn mutant(
        &self,
        base: Base,
        image: &KernelImage,
        initramfs: &Initramfs,
        tree: &std::path::Path,
        mutant: &Mutant,
    ) -> Result<mutants::Outcome> {
        let label = format!("mutant-{}-{}", base.version(), mutant.name);
        let what = format!("mutant {} ({})", mutant.name, base.version());
        let make_log = self.log(&format!("{label}-make.log"));
        let _ = fs::remove_file(&make_log);
        let applied = mutants::apply(tree, mutant)
            .with_context(|| format!("mutant {} on base {}", mutant.name, base.version()))?;
        let (made, build_time) = kernel::make_bzimage(self, tree, &what, &make_log)?;
        let mut outcome = mutants::Outcome {
            name: mutant.name.clone(),
            base: base.version().into(),
            file: mutant.file.clone(),
            why: mutant.why.clone(),
            verdict: Fate::Stillborn,
            detail: String::new(),
            build_s: round(build_time),
            boot_s: 0.0,
        };
        let bzimage = match made {
            Ok(bzimage) => bzimage,
            Err(_) => {
                let log = fs::read_to_string(&make_log).unwrap_or_default();
                outcome.detail = mutants::first_error(&log);
                applied.restore()?;
                return Ok(outcome);
            }
        };
        let booted = KernelImage {
            name: image.name,
            bzimage,
            release: image.release.clone(),
            source: image.source.clone(),
            selftest: image.selftest.clone(),
            modules: Vec::new(),
            memory_mb: image.memory_mb,
        };
        let boot = Boot::suites(vec![mutants::SUITE.into()], 1, image.name);
        let disks = disks::fresh(self, &label)?;
        let log = self.log(&format!("console-{label}.log"));
        let boot_started = std::time::Instant::now();
        let mut watch = mutants::Watch::default();
        let ran = self.progress.stage(
            &format!("{what}: boot, kselftest (stops at the first failure)"),
            Some(&log),
            || {
                boot::run_watched(
                    self,
                    &booted,
                    initramfs,
                    &disks.images,
                    &boot,
                    &log,
                    |line| watch.line(line),
                )
            },
        )?;
        outcome.boot_s = round(boot_started.elapsed());
        applied.restore()?;
        let text = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
        let verdict = console::parse(&String::from_utf8_lossy(&text), &boot.suites);
        let (fate, detail) = mutants::judge(
            ran.stopped.as_deref(),
            ran.timed_out.then_some(boot.timeout.as_secs()),
            &verdict,
        );
        outcome.verdict = fate;
        outcome.detail = detail;
        Ok(outcome)
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
        let verdict = self.boot_on(label, image, initramfs, boot, &disks)?;
        if boot.suites.iter().any(|s| s == "faults") {
            self.fault_disks(image.name, &disks, label)?;
        }
        Ok(verdict)
    }

    /// After a boot that ran the fault suite: the host's check of the
    /// disks it broke (`e2fsck -fn` and the journal's state, then `-fy` as
    /// the next boot would run it), one sample each and a note. A record,
    /// not a verdict: what a disk that went or an error table leaves.
    fn fault_disks(&self, kernel: KernelName, disks: &disks::Disks, label: &str) -> Result<()> {
        let log = crate::diskcheck::Log(self.log(&format!("{label}-fault-disks.log")));
        let mut said = Vec::new();
        for role in ["gone-1", "gone-2", "mapped"] {
            let image = &disks.images[disks::index(role)];
            let unclean = crate::diskcheck::unclean(image, &log)?;
            let left = crate::diskcheck::replay(image, &log)?;
            said.push(format!(
                "{role} {}{}",
                if unclean.is_empty() {
                    "clean".to_string()
                } else {
                    unclean.join(", ")
                },
                left.as_deref()
                    .map(|l| format!("; {l}"))
                    .unwrap_or_default()
            ));
            self.sample(&serde_json::json!({
                "kernel": kernel.as_str(),
                "part": "faults",
                "disk": role,
                "unclean": unclean,
                "after_repair": left,
            }))?;
        }
        self.progress.note(&format!(
            "{kernel} kernel: the fault suite's disks on the host afterwards: {}",
            said.join("; ")
        ));
        Ok(())
    }

    /// `boots` boots of the fault suite alone (the campaign's part
    /// `faults`), each on fresh disks, each test's result a sample.
    fn faults_boots(
        &self,
        image: &KernelImage,
        initramfs: &Initramfs,
        boots: u32,
        result: &mut KernelResult,
    ) -> Result<()> {
        for n in 1..=boots {
            let label = format!("faults-{}-{n}", image.name);
            let boot = Boot::suites(vec!["faults".into()], 1, image.name);
            let verdict = self.boot(&label, image, initramfs, &boot)?;
            let booted = KernelResult::from_verdict(image, &verdict);
            result.umount_wait = booted.umount_wait;
            for (test, outcome) in &booted.tests {
                self.sample(&serde_json::json!({
                    "kernel": image.name.as_str(),
                    "part": "faults",
                    "boot": n,
                    "test": test,
                    "result": outcome,
                }))?;
                // A test that failed in any boot stays failed.
                let kept = result.tests.entry(test.clone()).or_insert(outcome.clone());
                if outcome != "pass" {
                    *kept = outcome.clone();
                }
            }
        }
        Ok(())
    }

    /// A boot on `disks`, its console parsed.
    fn boot_on(
        &self,
        label: &str,
        image: &KernelImage,
        initramfs: &Initramfs,
        boot: &Boot,
        disks: &disks::Disks,
    ) -> Result<Verdict> {
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

/// A duration in seconds, to a tenth.
fn round(time: Duration) -> f64 {
    (time.as_secs_f64() * 10.0).round() / 10.0
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
