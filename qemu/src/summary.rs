//! Verdicts -> target/vm/summary.json and the printed table.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::console::{RaceCount, Verdict};
use crate::kernel::{KernelImage, KernelName};

#[derive(Serialize, Deserialize, Default)]
pub struct Summary {
    pub kernels: Vec<KernelResult>,
}

#[derive(Serialize, Deserialize)]
pub struct KernelResult {
    pub name: String,
    /// The running kernel's release (uname -r in the guest).
    pub release: String,
    /// What it was built from: the Debian source package and its version
    /// (the stock kernel: its image package).
    #[serde(default)]
    pub source: String,
    pub umount_wait: bool,
    pub tests: BTreeMap<String, String>,
    pub races: BTreeMap<String, BTreeMap<String, RaceCount>>,
}

impl KernelResult {
    /// A kernel that could not be built or fetched: "fail" in CI, "skip" elsewhere.
    pub fn unavailable(name: KernelName, verdict: &str) -> Self {
        let mut tests = BTreeMap::new();
        tests.insert("bench/kernel-available".to_string(), verdict.to_string());
        KernelResult {
            name: name.to_string(),
            release: String::new(),
            source: String::new(),
            umount_wait: false,
            tests,
            races: BTreeMap::new(),
        }
    }

    /// The results of one boot, plus the bench's own checks: a clean console,
    /// and `umount-wait --probe` agreeing with the kernel's build.
    pub fn from_verdict(image: &KernelImage, verdict: &Verdict) -> Self {
        let mut tests = verdict.tests.clone();
        tests.insert(
            "bench/console-clean".into(),
            pass_fail(verdict.problems.is_empty()).into(),
        );
        let probe_right = verdict.umount_wait == Some(image.name.has_series());
        tests.insert(
            "bench/probe-matches-kernel".into(),
            pass_fail(probe_right).into(),
        );
        let release = if verdict.release.is_empty() {
            image.release.clone()
        } else {
            verdict.release.clone()
        };
        KernelResult {
            name: image.name.to_string(),
            release,
            source: image.source.clone(),
            umount_wait: verdict.umount_wait.unwrap_or(false),
            tests,
            races: verdict.races.clone(),
        }
    }

    fn count(&self, result: &str) -> usize {
        self.tests.values().filter(|v| *v == result).count()
    }
}

/// The counts of the host's disk checks (S4, shutdown-reboot) and the
/// time to finish (shutdown-reboot), after the others in its row.
fn disk_counts(count: &RaceCount) -> String {
    let mut text = match (count.unclean, count.incomplete) {
        (Some(unclean), Some(incomplete)) => {
            format!("   unclean {unclean}, incomplete {incomplete}")
        }
        _ => String::new(),
    };
    if let Some(filesystems) = count.unclean_filesystems {
        text.push_str(&format!(" ({filesystems} filesystems)"));
    }
    if let (Some(median), Some(max)) = (count.ms_median, count.ms_max) {
        text.push_str(&format!(", finished in median {median} ms, max {max} ms"));
    }
    if let (Some(errors), Some(boots)) = (count.console_errors, count.boots_with_console_errors) {
        text.push_str(&format!(
            ", {errors} errors after the reboot ({boots} boots)"
        ));
    }
    if let Some(failed) = count.boots_failed.filter(|f| *f > 0) {
        text.push_str(&format!(", {failed} boots cut short"));
    }
    text
}

fn pass_fail(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "fail"
    }
}

impl Summary {
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading {} (run umw-vm test first)", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Prints the table; its last line is `N passed, N failed`. Returns the counts.
    pub fn print_table(&self) -> (usize, usize) {
        println!();
        println!(
            "{:<10} {:<22} {:<12} {:>5} {:>5} {:>5}",
            "kernel", "release", "umount_wait", "pass", "fail", "skip"
        );
        for k in &self.kernels {
            println!(
                "{:<10} {:<22} {:<12} {:>5} {:>5} {:>5}",
                k.name,
                k.release,
                k.umount_wait,
                k.count("pass"),
                k.count("fail"),
                k.count("skip")
            );
        }
        let races: Vec<_> = self
            .kernels
            .iter()
            .filter(|k| !k.races.is_empty())
            .collect();
        if !races.is_empty() {
            println!();
            println!(
                "{:<10} {:<24} {:<22} {:>6} {:>18}",
                "kernel", "race scenario", "mode", "runs", "busy_after_return"
            );
            for k in races {
                for (scenario, modes) in &k.races {
                    for (mode, count) in modes {
                        println!(
                            "{:<10} {:<24} {:<22} {:>6} {:>18}{}",
                            k.name,
                            scenario,
                            mode,
                            count.runs,
                            count.busy_after_return,
                            disk_counts(count)
                        );
                    }
                }
            }
        }
        let mut listed = false;
        for k in &self.kernels {
            for (test, result) in &k.tests {
                if result != "pass" {
                    if !listed {
                        println!();
                        listed = true;
                    }
                    println!("{:<5} {:<10} {test}", result.to_uppercase(), k.name);
                }
            }
        }
        let passed: usize = self.kernels.iter().map(|k| k.count("pass")).sum();
        let failed: usize = self.kernels.iter().map(|k| k.count("fail")).sum();
        let skipped: usize = self.kernels.iter().map(|k| k.count("skip")).sum();
        println!();
        println!("VM tests: {skipped} skipped");
        println!("{passed} passed, {failed} failed");
        (passed, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_the_documented_shape() {
        let mut tests = BTreeMap::new();
        tests.insert(
            "kselftest/umount_wait_tmpfs".to_string(),
            "pass".to_string(),
        );
        let mut modes = BTreeMap::new();
        modes.insert(
            "plain".to_string(),
            RaceCount {
                runs: 20,
                busy_after_return: 19,
                ..RaceCount::default()
            },
        );
        let mut races = BTreeMap::new();
        races.insert("s1-dying-ns".to_string(), modes);
        let summary = Summary {
            kernels: vec![KernelResult {
                name: "patched".into(),
                release: "6.12.117".into(),
                source: "linux-source-6.12 6.12.117-1~deb12u1".into(),
                umount_wait: true,
                tests,
                races,
            }],
        };
        let value: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&summary).unwrap()).unwrap();
        let k = &value["kernels"][0];
        assert_eq!(k["name"], "patched");
        assert_eq!(k["umount_wait"], true);
        assert_eq!(k["tests"]["kselftest/umount_wait_tmpfs"], "pass");
        assert_eq!(k["races"]["s1-dying-ns"]["plain"]["runs"], 20);
        assert_eq!(k["races"]["s1-dying-ns"]["plain"]["busy_after_return"], 19);
    }
}
