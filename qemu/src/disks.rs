//! Blank ext4 images, made on the host, fresh for each boot.
//!
//! /dev/vda kselftest, /dev/vdb the tool's suites, /dev/vdc race scenarios,
//! /dev/vdd spare (docs/bench-contract.md, "Disks"). Each boot gets its own
//! directory (target/vm/disks/<label>-<pid>), removed after the boot, so
//! that two benches running at once never share an image.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::context::{run_logged, Bench};

pub const ROLES: [&str; 4] = ["kselftest", "tool", "race", "spare"];
const SIZE: &str = "64M";

/// The index of a role's image in [`Disks::images`].
pub fn index(role: &str) -> usize {
    ROLES
        .iter()
        .position(|r| *r == role)
        .expect("a role of disks::ROLES")
}

pub struct Disks {
    dir: PathBuf,
    /// vda first.
    pub images: Vec<PathBuf>,
}

impl Drop for Disks {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Makes the four images for one boot.
pub fn fresh(bench: &Bench, label: &str) -> Result<Disks> {
    let dir = bench
        .paths
        .out
        .join("disks")
        .join(format!("{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let mut disks = Disks {
        dir,
        images: Vec::new(),
    };
    let log = bench.log("disks.log");
    for (letter, role) in ('a'..).zip(ROLES) {
        let image = disks.dir.join(format!("vd{letter}-{role}.img"));
        run_logged(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", &format!("umw-{role}")])
                .arg(&image)
                .arg(SIZE),
            &log,
        )?;
        disks.images.push(image);
    }
    Ok(disks)
}
