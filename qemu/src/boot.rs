//! Image + initramfs + disks -> one QEMU boot, its console saved to a log.
//!
//! TCG unless KVM is asked for, -no-reboot with panic=-1 (a panic ends the
//! boot at once), every qemu under `timeout`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::bench::Bench;
use crate::initramfs::Initramfs;
use crate::kernel::KernelImage;

pub struct Boot {
    /// Suites to run, in order (empty and interactive: a shell).
    pub suites: Vec<String>,
    /// Runs per race scenario and mode.
    pub runs: u32,
    pub timeout: Duration,
    pub interactive: bool,
}

pub struct Outcome {
    pub timed_out: bool,
}

pub fn run(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    disks: &[PathBuf],
    boot: &Boot,
    log: &Path,
) -> Result<Outcome> {
    let mut command = Command::new("timeout");
    command.args(["--kill-after=10", &format!("{}s", boot.timeout.as_secs())]);
    command.arg("qemu-system-x86_64");
    if bench.kvm {
        command.args(["-accel", "kvm", "-cpu", "host"]);
    } else {
        command.args(["-accel", "tcg"]);
    }
    command.args([
        "-smp",
        "2",
        "-m",
        &image.memory_mb.to_string(),
        "-no-reboot",
        "-display",
        "none",
    ]);
    command.arg("-kernel").arg(&image.bzimage);
    command.arg("-initrd").arg(initramfs.for_kernel(image));
    command.arg("-append").arg(cmdline(image, boot));
    for disk in disks {
        command
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=raw", disk.display()));
    }
    let status = if boot.interactive {
        command.args([
            "-chardev",
            &format!(
                "stdio,id=console,mux=on,signal=off,logfile={}",
                log.display()
            ),
        ]);
        command.args([
            "-serial",
            "chardev:console",
            "-mon",
            "chardev=console,mode=readline",
        ]);
        command.status()
    } else {
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command.args(["-monitor", "none", "-serial", "stdio"]);
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
    }
    .context("running qemu-system-x86_64 (run ci/setup)")?;
    // timeout(1) exits 124 when the limit was hit (137 after --kill-after).
    let timed_out = matches!(status.code(), Some(124) | Some(137));
    Ok(Outcome { timed_out })
}

fn cmdline(image: &KernelImage, boot: &Boot) -> String {
    let mut line = format!(
        "console=ttyS0 panic=-1 loglevel=5 printk.time=1 umw.kernel={} umw.runs={}",
        image.name, boot.runs
    );
    if boot.interactive {
        line.push_str(" umw.shell=1");
    } else {
        line.push_str(&format!(" umw.suites={}", boot.suites.join(",")));
    }
    line
}
