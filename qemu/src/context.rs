//! The ground floor of the bench: where things are, how a command's output
//! is logged, and the settings every stage reads. Stages and flows import
//! this; it imports no stage.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::console;
use crate::progress::Progress;

pub struct Paths {
    /// The repository's root.
    pub repo: PathBuf,
    /// Kernel trees and images: ${UMW_CACHE:-$HOME/.cache/umount-wait}/vm.
    pub cache: PathBuf,
    /// target/vm (or `--out`): initramfs, disks, logs, summary.
    pub out: PathBuf,
}

impl Paths {
    pub fn logs(&self) -> PathBuf {
        self.out.join("logs")
    }
    pub fn summary_json(&self) -> PathBuf {
        self.out.join("summary.json")
    }
    pub fn samples(&self) -> PathBuf {
        self.out.join("samples.jsonl")
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

impl Bench {
    /// `out`: where the products of this run go (initramfs, disks, logs,
    /// summary); target/vm when None.
    pub fn new(kvm: bool, out: Option<PathBuf>) -> Result<Self> {
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
            out: out.unwrap_or_else(|| target.join("vm")),
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

    /// Appends one sample (a run or a boot of a scenario, as JSON) to
    /// `samples.jsonl` in the output directory: what `umw-vm campaign`
    /// keeps in bench/results/.
    pub fn sample(&self, sample: &serde_json::Value) -> Result<()> {
        use std::io::Write as _;
        let path = self.paths.samples();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{sample}").with_context(|| format!("writing {}", path.display()))
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
