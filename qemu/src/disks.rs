//! Blank ext4 images, made on the host, fresh for each boot.
//!
//! /dev/vda kselftest, /dev/vdb the tool's suites, /dev/vdc race scenarios,
//! /dev/vdd spare, /dev/vde and /dev/vdf the fault suite's disks that are
//! removed during a wait, /dev/vdg the one under its device-mapper device
//! (docs/bench-contract.md, "Disks"). The race disk can be
//! f2fs instead (Android's /data in the shutdown-reboot test), 256 MiB: at
//! 64 MiB f2fs leaves 15 MiB free. Each boot gets its own
//! directory (target/vm/disks/<label>-<pid>), removed after the boot, so
//! that two benches running at once never share an image.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::context::{run_logged, Bench};

pub const ROLES: [&str; 7] = [
    "kselftest",
    "tool",
    "race",
    "spare",
    "gone-1",
    "gone-2",
    "mapped",
];
const SIZE: &str = "64M";
const F2FS_SIZE: u64 = 256 << 20;

/// The filesystem made on the race disk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Format {
    Ext4,
    F2fs,
}

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

impl Disks {
    /// The boot's own directory (target/vm/disks/<label>-<pid>), empty,
    /// removed with it; no image yet.
    pub fn empty(bench: &Bench, label: &str) -> Result<Disks> {
        let dir = bench
            .paths
            .out
            .join("disks")
            .join(format!("{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        Ok(Disks {
            dir,
            images: Vec::new(),
        })
    }

    /// A path in the boot's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A blank disk image at `image` with the filesystem `format` labelled
/// `label`: ext4 of 64 MiB, f2fs of 256 MiB.
pub fn make(image: &Path, label: &str, format: Format, log: &Path) -> Result<()> {
    match format {
        Format::F2fs => {
            fs::File::create(image)?.set_len(F2FS_SIZE)?;
            run_logged(
                Command::new("mkfs.f2fs")
                    .args(["-q", "-f", "-l", label])
                    .arg(image),
                log,
            )
        }
        Format::Ext4 => run_logged(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", label])
                .arg(image)
                .arg(SIZE),
            log,
        ),
    }
}

/// Makes the images for one boot, all ext4.
pub fn fresh(bench: &Bench, label: &str) -> Result<Disks> {
    fresh_with(bench, label, Format::Ext4)
}

/// Makes the images for one boot, the race disk as `race`.
pub fn fresh_with(bench: &Bench, label: &str, race: Format) -> Result<Disks> {
    let mut disks = Disks::empty(bench, label)?;
    let log = bench.log("disks.log");
    for (letter, role) in ('a'..).zip(ROLES) {
        let image = disks.dir.join(format!("vd{letter}-{role}.img"));
        let format = if role == "race" { race } else { Format::Ext4 };
        make(&image, &format!("umw-{role}"), format, &log)?;
        disks.images.push(image);
    }
    Ok(disks)
}
