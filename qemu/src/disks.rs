//! Blank ext4 images, made on the host, fresh for each boot.
//!
//! /dev/vda kselftest, /dev/vdb the tool's suites, /dev/vdc race scenarios,
//! /dev/vdd spare (docs/bench-contract.md, "Disks").

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::bench::{run_logged, Bench};
use crate::kernel::KernelName;

pub const ROLES: [&str; 4] = ["kselftest", "tool", "race", "spare"];
const SIZE: &str = "64M";

/// Makes the four images for one boot and returns their paths, vda first.
pub fn fresh(bench: &Bench, kernel: KernelName) -> Result<Vec<PathBuf>> {
    let dir = bench.paths.out.join("disks").join(kernel.as_str());
    fs::create_dir_all(&dir)?;
    let log = bench.log("disks.log");
    let mut images = Vec::new();
    for (letter, role) in ('a'..).zip(ROLES) {
        let image = dir.join(format!("vd{letter}-{role}.img"));
        let _ = fs::remove_file(&image);
        run_logged(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", &format!("umw-{role}")])
                .arg(&image)
                .arg(SIZE),
            &log,
        )?;
        images.push(image);
    }
    Ok(images)
}
