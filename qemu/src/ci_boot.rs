//! A third user of the shutdown mode: a CI job that boots a VM image, runs
//! its tests, shuts the VM down with `umount-wait --all` and checks that the
//! image is clean for the next step. The job is the example itself,
//! examples/ci-boot-job.sh, run as a CI system would run it:
//!
//!   a fresh CI image (ext4, qemu/guest/ci-image: its tests in /ci)
//!   -> ci-boot-job.sh KERNEL INITRAMFS IMAGE OUT, with the kernel command
//!      line umw.suites=ci-boot umw.disks=1: the VM runs the image's tests
//!      (an artifact written, not synced; a sandbox left in a mount
//!      namespace of its own), then examples/ci-vm-shutdown.sh
//!   -> the job's exit status (0: tests passed, image clean, results
//!      copied out), and the artifact it copied out checked against the
//!      checksum the tests wrote.
//!
//! The bench's own check (`bench/ci-boot-job-sees-unclean-image`, patched
//! kernel): the same job with suite ci-boot-plain, where the VM powers off
//! after a plain `umount -a` with the sandbox left: the job must say the
//! image is not clean (exit 4), or its "clean" proves nothing.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::context::{run_logged, Bench};
use crate::diskcheck;
use crate::initramfs::Initramfs;
use crate::kernel::{KernelImage, KernelName};
use crate::summary::KernelResult;

const TEST: &str = "ci-boot/job_passes_image_clean_artifact_complete";
const CONTROL: &str = "bench/ci-boot-job-sees-unclean-image";
/// What the job copies out of the image.
const RESULTS: &str = "/ci/results /ci/artifact /ci/artifact.md5";

/// The kernels `umw-vm test` runs the job on: the kernel path and the
/// fallback.
pub fn runs_on(kernel: KernelName) -> bool {
    matches!(kernel, KernelName::Unpatched | KernelName::Patched)
}

/// Runs the job (and with `control`, the bench's own check) on one kernel.
pub fn run(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    control: bool,
    result: &mut KernelResult,
) -> Result<()> {
    let job = one_job(bench, image, initramfs, "ci-boot")?;
    let failure = match job.status {
        Some(0) => artifact_check(&job.out)?,
        other => Some(format!(
            "the job exited {}, not 0 (its output: {})",
            exit_status(other),
            job.said
        )),
    };
    verdict(result, TEST, failure);
    if control {
        let job = one_job(bench, image, initramfs, "ci-boot-plain")?;
        let failure = (job.status != Some(4) || !job.said.contains("IMAGE NOT CLEAN")).then(|| {
            format!(
                "after a plain umount -a with a sandbox left, the job exited {}, not 4 (image not clean): {}",
                exit_status(job.status),
                job.said
            )
        });
        verdict(result, CONTROL, failure);
    }
    Ok(())
}

fn exit_status(code: Option<i32>) -> String {
    code.map_or("on a signal".into(), |c| c.to_string())
}

struct Job {
    status: Option<i32>,
    /// The job's own lines, joined.
    said: String,
    /// Its OUT directory: the console, the results copied out.
    out: std::path::PathBuf,
}

fn one_job(bench: &Bench, image: &KernelImage, initramfs: &Initramfs, suite: &str) -> Result<Job> {
    let dir = bench
        .paths
        .out
        .join("ci-boot")
        .join(format!("{}-{suite}", image.name));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let disk = dir.join("ci-image.img");
    let log = bench.log("ci-boot.log");
    make_image(bench, &disk, &log)?;
    let out = dir.join("out");
    let what = format!("{} kernel: CI boot job, suite {suite}", image.name);
    let job_log = bench.log(&format!("ci-boot-{}-{suite}.log", image.name));
    let status = bench.progress.stage(&what, Some(&job_log), || {
        let mut command = Command::new("bash");
        command
            .arg(bench.paths.repo.join("examples/ci-boot-job.sh"))
            .arg(&image.bzimage)
            .arg(initramfs.for_kernel(image))
            .arg(&disk)
            .arg(&out)
            .env(
                "APPEND",
                format!("umw.suites={suite} umw.kernel={} umw.disks=1", image.name),
            )
            .env("QEMU_ACCEL", if bench.kvm { "kvm" } else { "tcg" })
            .env("QEMU_MEM", format!("{}M", image.memory_mb))
            .env("TIMEOUT", "180")
            .env("CI_RESULTS", RESULTS);
        let output = command
            .output()
            .context("running examples/ci-boot-job.sh")?;
        fs::write(&job_log, &output.stdout)?;
        Ok(output)
    })?;
    let said = String::from_utf8_lossy(&status.stdout)
        .lines()
        .collect::<Vec<_>>()
        .join("; ");
    bench.progress.note(&format!("{what}: {said}"));
    Ok(Job {
        status: status.status.code(),
        said,
        out,
    })
}

/// A fresh CI image: ext4 holding qemu/guest/ci-image.
fn make_image(bench: &Bench, disk: &Path, log: &Path) -> Result<()> {
    run_logged(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "umw-ci-image", "-d"])
            .arg(bench.paths.repo.join("qemu/guest/ci-image"))
            .arg(disk)
            .arg("64M"),
        log,
    )
}

/// None when the artifact the job copied out matches the checksum the
/// tests wrote next to it.
fn artifact_check(out: &Path) -> Result<Option<String>> {
    let sum_file = out.join("artifact.md5");
    let Ok(written) = fs::read_to_string(&sum_file) else {
        return Ok(Some("artifact.md5 not copied out".into()));
    };
    let expected = written.split_whitespace().next().unwrap_or_default();
    let got = diskcheck::tool_output(Command::new("md5sum").arg(out.join("artifact")))?;
    let got = got.split_whitespace().next().unwrap_or_default();
    Ok((got != expected)
        .then(|| format!("the artifact copied out has md5 {got}, the tests wrote {expected}")))
}

fn verdict(result: &mut KernelResult, test: &str, failure: Option<String>) {
    if let Some(why) = &failure {
        eprintln!("  # {test}: {why}");
    }
    result.tests.insert(
        test.into(),
        if failure.is_none() { "pass" } else { "fail" }.into(),
    );
}
