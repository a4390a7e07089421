//! A Debian image booted by its own systemd: the real shutdown nobody here
//! wrote (systemd_reboot.rs runs it).
//!
//!   debootstrap --variant=minbase trixie, with systemd, udev, e2fsprogs
//!   and f2fs-tools -> qemu/guest/debian/customize.sh in its chroot (no
//!   timers, the journal on the console, /data in fstab) -> an ext4 image
//!   of it (`mkfs.ext4 -d`), cached under vm/debian/<key>/root.img by the
//!   hash of those inputs (the archive's state is not one: a rebuild on an
//!   empty cache gets trixie's packages of that day, their versions in
//!   packages.txt beside the image);
//!   each boot: a sparse copy of it, with the command and the bench's files
//!   installed by [`install`] through a loop mount.
//!
//! Network access to deb.debian.org is needed once, on an empty cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cache::{Key, Lock};
use crate::context::{run_logged, Bench};

/// The Debian release, its mirror and what goes in beside minbase.
const SUITE: &str = "trixie";
const MIRROR: &str = "http://deb.debian.org/debian";
const PACKAGES: &[&str] = &["systemd", "systemd-sysv", "udev", "e2fsprogs", "f2fs-tools"];
/// The root image's size: minbase with systemd is about 300 MiB.
const SIZE: &str = "1G";

/// The cached root image, built on first use.
pub fn base_image(bench: &Bench) -> Result<PathBuf> {
    let customize = bench.paths.guest().join("debian/customize.sh");
    let mut key = Key::new("debian-root");
    key.text("suite", SUITE)
        .text("mirror", MIRROR)
        .text("packages", &PACKAGES.join(","))
        .text("size", SIZE)
        .file(&customize)?;
    let dir = bench.paths.cache.join("debian").join(key.finish());
    let image = dir.join("root.img");
    if image.is_file() {
        return Ok(image);
    }
    fs::create_dir_all(&dir)?;
    let _lock = Lock::take(&dir.join("lock"), || {
        bench
            .progress
            .note("waiting for another bench building the Debian image")
    })?;
    if image.is_file() {
        return Ok(image);
    }
    let log = bench.log("debian-image.log");
    bench.progress.stage(
        &format!("Debian {SUITE} image: debootstrap and mkfs.ext4 (1-5 min, once)"),
        Some(&log),
        || build(&dir, &customize, &image, &log),
    )?;
    Ok(image)
}

fn build(dir: &Path, customize: &Path, image: &Path, log: &Path) -> Result<()> {
    let root = dir.join("root");
    let _ = fs::remove_dir_all(&root);
    run_logged(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", PACKAGES.join(",")))
            .arg(SUITE)
            .arg(&root)
            .arg(MIRROR),
        log,
    )
    .context("debootstrap (ci/setup installs it; it needs deb.debian.org)")?;
    fs::copy(customize, root.join("tmp/customize.sh"))?;
    run_logged(
        Command::new("chroot")
            .arg(&root)
            .args(["/bin/sh", "/tmp/customize.sh"]),
        log,
    )?;
    fs::remove_file(root.join("tmp/customize.sh"))?;
    let packages = Command::new("chroot")
        .arg(&root)
        .args(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"])
        .output()
        .context("dpkg-query in the image")?;
    fs::write(dir.join("packages.txt"), &packages.stdout)?;
    let partial = dir.join("root.img.partial");
    let _ = fs::remove_file(&partial);
    run_logged(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "umw-debian", "-d"])
            .arg(&root)
            .arg(&partial)
            .arg(SIZE),
        log,
    )?;
    fs::rename(&partial, image)?;
    fs::remove_dir_all(&root)?;
    Ok(())
}

/// What [`install`] puts into a boot's copy of the image.
pub struct Install<'a> {
    /// (path in the image, file on the host, mode).
    pub files: Vec<(&'a str, PathBuf, u32)>,
    /// Units to enable: (unit, the target that wants it).
    pub enable: Vec<(&'a str, &'a str)>,
}

/// A sparse copy of the base image at `to`, with `install`'s files in it.
pub fn install(base: &Path, to: &Path, install: &Install<'_>, log: &Path) -> Result<()> {
    run_logged(
        Command::new("cp").arg("--sparse=always").arg(base).arg(to),
        log,
    )?;
    let mnt = to.with_extension("mnt");
    fs::create_dir_all(&mnt)?;
    run_logged(
        Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(to)
            .arg(&mnt),
        log,
    )
    .context("loop-mounting the Debian image (root and loop devices needed)")?;
    let result = (|| -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for (path, from, mode) in &install.files {
            let dest = mnt.join(path.trim_start_matches('/'));
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::copy(from, &dest)
                .with_context(|| format!("copying {} into the image", from.display()))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(*mode))?;
        }
        for (unit, target) in &install.enable {
            let wants = mnt.join(format!("etc/systemd/system/{target}.wants"));
            fs::create_dir_all(&wants)?;
            let link = wants.join(unit);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("/etc/systemd/system/{unit}"), &link)?;
        }
        Ok(())
    })();
    let unmounted = run_logged(Command::new("umount").arg(&mnt), log);
    let _ = fs::remove_dir(&mnt);
    result?;
    unmounted?;
    if !to.is_file() {
        bail!("{} missing after the install", to.display());
    }
    Ok(())
}
