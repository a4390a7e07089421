//! Static binaries + guest files -> initramfs (newc cpio, gzip), built without
//! root by the kernel's own usr/gen_init_cpio from a file list.
//!
//! Layout (docs/bench-contract.md, "The guest"):
//!   /init                                   qemu/guest/init
//!   /bin/busybox and its applets            the host's busybox-static
//!   /usr/bin/umount-wait                    the static build of the command
//!   /usr/lib/umw/bin/pid1-reboot            its example of an init that
//!                                           unmounts in-process, static
//!   /usr/lib/umw/kselftest/umount_wait_test the static kselftest (patched tree)
//!   /usr/lib/umw/suites/<name>              qemu/guest/suites/*
//!   /usr/lib/umw/lib/<file>                 qemu/guest/lib/* (shell helpers)
//!   /usr/lib/umw/bin/<name>                 qemu/guest/bin/<name>.c, static
//!   /usr/lib/umw/bin/manpage-umount_wait    the EXAMPLES program of
//!                                           kernel-patches/man-pages/*.patch
//!   /usr/lib/umw/examples/<name>.sh         examples/*.sh (the reboot scripts)
//!   /lib/modules/umw/*.ko + /usr/lib/umw/modules (stock kernel only)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::cache::Key;
use crate::context::{output_of, run_logged, Bench};
use crate::kernel::{self, KernelImage, KernelName};
use crate::manpage;

const BUSYBOX: &str = "/bin/busybox";

pub struct Initramfs {
    common: PathBuf,
    /// Kernels that need their own (the stock kernel, with its modules).
    own: BTreeMap<KernelName, PathBuf>,
}

impl Initramfs {
    pub fn for_kernel(&self, image: &KernelImage) -> &Path {
        self.own.get(&image.name).unwrap_or(&self.common)
    }
}

/// Builds (or reuses) the initramfs for these kernels.
pub fn build(bench: &Bench, images: &[&KernelImage]) -> Result<Initramfs> {
    let selftest = selftest_binary(bench, images);
    build_with(bench, selftest, images)
}

/// Builds (or reuses) the initramfs for these kernels, with this kselftest.
pub fn build_with(
    bench: &Bench,
    selftest: Option<PathBuf>,
    images: &[&KernelImage],
) -> Result<Initramfs> {
    let umount_wait = bench.progress.stage(
        "static umount-wait",
        Some(&bench.log("umount-wait-static.log")),
        || static_umount_wait(bench),
    );
    let umount_wait = match umount_wait {
        Ok(path) => Some(path),
        Err(err) => {
            bench.progress.note(&format!(
                "umount-wait left out of the initramfs, its suites will fail: {err:#}"
            ));
            None
        }
    };
    let helpers = bench.progress.stage(
        "guest helpers (qemu/guest/bin/*.c, the man page's example)",
        Some(&bench.log("helpers.log")),
        || static_helpers(bench),
    )?;
    let mut files = Vec::new();
    files.push(("/init".to_string(), bench.paths.guest().join("init")));
    files.push(("/bin/busybox".to_string(), PathBuf::from(BUSYBOX)));
    if let Some((command, pid1)) = umount_wait {
        files.push(("/usr/bin/umount-wait".to_string(), command));
        files.push(("/usr/lib/umw/bin/pid1-reboot".to_string(), pid1));
    }
    if let Some(path) = selftest {
        files.push(("/usr/lib/umw/kselftest/umount_wait_test".to_string(), path));
    }
    for (dir, target) in [
        ("suites", "/usr/lib/umw/suites"),
        ("lib", "/usr/lib/umw/lib"),
    ] {
        for path in sorted_files(&bench.paths.guest().join(dir))? {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((format!("{target}/{name}"), path));
        }
    }
    for path in sorted_files(&bench.paths.repo.join("examples"))? {
        if path.extension().is_some_and(|e| e == "sh") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((format!("/usr/lib/umw/examples/{name}"), path));
        }
    }
    for path in helpers {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push((format!("/usr/lib/umw/bin/{name}"), path));
    }

    let common = assemble(bench, "common", &files)?;
    let mut own = BTreeMap::new();
    for image in images.iter().filter(|i| !i.modules.is_empty()) {
        let mut with_modules = files.clone();
        let mut list = String::new();
        for (n, module) in image.modules.iter().enumerate() {
            let name = format!("{n:02}-{}", module.file_name().unwrap().to_string_lossy());
            writeln!(list, "/lib/modules/umw/{name}")?;
            with_modules.push((format!("/lib/modules/umw/{name}"), module.clone()));
        }
        let list_file = bench.paths.out.join(format!("modules-{}.list", image.name));
        fs::write(&list_file, list)?;
        with_modules.push(("/usr/lib/umw/modules".to_string(), list_file));
        own.insert(
            image.name,
            assemble(bench, image.name.as_str(), &with_modules)?,
        );
    }
    Ok(Initramfs { common, own })
}

/// The kselftest comes from the patched tree; the same binary runs (and
/// skips) on the kernels without the series.
fn selftest_binary(bench: &Bench, images: &[&KernelImage]) -> Option<PathBuf> {
    if let Some(path) = images.iter().find_map(|i| i.selftest.clone()) {
        return Some(path);
    }
    match kernel::build(bench, KernelName::Patched) {
        Ok(image) => image.selftest,
        Err(err) => {
            bench.progress.note(&format!(
                "no kselftest in the initramfs (it needs the patched tree): {err:#}"
            ));
            None
        }
    }
}

/// Writes the gen_init_cpio list, then the cpio, unless one with the same inputs exists.
fn assemble(bench: &Bench, label: &str, files: &[(String, PathBuf)]) -> Result<PathBuf> {
    let mut list = String::new();
    let mut dirs: Vec<String> = vec![
        "/dev".into(),
        "/proc".into(),
        "/sys".into(),
        "/mnt".into(),
        "/root".into(),
    ];
    let applets = output_of(Command::new(BUSYBOX).arg("--list-full"))?;
    let applets: Vec<String> = applets
        .lines()
        .filter(|a| a.contains('/'))
        .map(|a| format!("/{a}"))
        .collect();
    for path in files.iter().map(|(p, _)| p).chain(applets.iter()) {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| *d != Path::new("/")) {
            dirs.push(dir.to_string_lossy().into_owned());
            parent = dir.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut key = Key::new("initramfs");
    for dir in &dirs {
        writeln!(list, "dir {dir} 0755 0 0")?;
    }
    writeln!(list, "dir /tmp 1777 0 0")?;
    writeln!(list, "nod /dev/console 0600 0 0 c 5 1")?;
    writeln!(list, "nod /dev/null 0666 0 0 c 1 3")?;
    for (target, source) in files {
        let mode = fs::metadata(source)
            .with_context(|| format!("{}", source.display()))?
            .permissions()
            .mode()
            & 0o777;
        let mode = if target.starts_with("/lib/modules/") || target == "/usr/lib/umw/modules" {
            0o644
        } else {
            mode | 0o755
        };
        writeln!(list, "file {target} {} {mode:o} 0 0", source.display())?;
        key.text("target", target);
        key.file(source)?;
    }
    for applet in &applets {
        if !files.iter().any(|(t, _)| t == applet) {
            writeln!(list, "slink {applet} /bin/busybox 0777 0 0")?;
        }
    }
    key.text("list", &list);
    let out = bench
        .paths
        .out
        .join(format!("initramfs-{label}-{}.cpio.gz", key.finish()));
    if out.is_file() {
        bench
            .progress
            .note(&format!("initramfs ({label}): reusing {}", out.display()));
        return Ok(out);
    }
    let list_path = bench.paths.out.join(format!("initramfs-{label}.list"));
    fs::write(&list_path, &list)?;
    let gen = gen_init_cpio(bench)?;
    bench
        .progress
        .stage(&format!("initramfs ({label})"), None, || {
            let cpio = Command::new(&gen)
                .arg(&list_path)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let tmp = out.with_extension("tmp");
            let status = Command::new("gzip")
                .args(["-n", "-6"])
                .stdin(cpio.stdout.unwrap())
                .stdout(fs::File::create(&tmp)?)
                .status()?;
            if !status.success() {
                bail!("gen_init_cpio | gzip failed ({status})");
            }
            fs::rename(&tmp, &out)?;
            Ok(())
        })?;
    bench.progress.note(&format!(
        "initramfs ({label}): {} (list: {})",
        out.display(),
        list_path.display()
    ));
    Ok(out)
}

/// usr/gen_init_cpio from the kernel source, compiled once into the cache.
fn gen_init_cpio(bench: &Bench) -> Result<PathBuf> {
    let tools = bench.paths.cache.join("tools");
    let binary = tools.join("gen_init_cpio");
    if binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(&tools)?;
    let source = tools.join("gen_init_cpio.c");
    // The pristine 6.12 tree (extracted once, shared with the kernels).
    let pristine = kernel::pristine_source(bench, kernel::Base::Lts612)?;
    fs::copy(pristine.join("usr/gen_init_cpio.c"), &source)?;
    run_logged(
        Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&binary)
            .arg(&source),
        &bench.log("helpers.log"),
    )?;
    Ok(binary)
}

/// The contract's static build of the command, and of its example
/// umount-wait/examples/pid1-reboot.rs.
pub(crate) fn static_umount_wait(bench: &Bench) -> Result<(PathBuf, PathBuf)> {
    let log = bench.log("umount-wait-static.log");
    let _ = fs::remove_file(&log);
    run_logged(
        Command::new("cargo")
            .args([
                "build",
                "--profile",
                "initramfs",
                "--target",
                "x86_64-unknown-linux-gnu",
                "-p",
                "umount-wait",
                "--bins",
                "--example",
                "pid1-reboot",
            ])
            // Not position-independent: under TCG every start at a new
            // address costs a fresh code translation (~50 ms, bench/README.md).
            .env(
                "RUSTFLAGS",
                "-C target-feature=+crt-static -C relocation-model=static",
            )
            .current_dir(&bench.paths.repo),
        &log,
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bench.paths.repo.join("target"));
    let built = target.join("x86_64-unknown-linux-gnu/initramfs");
    let binaries = (
        built.join("umount-wait"),
        built.join("examples/pid1-reboot"),
    );
    for binary in [&binaries.0, &binaries.1] {
        if !binary.is_file() {
            bail!("cargo left no {}", binary.display());
        }
    }
    Ok(binaries)
}

/// qemu/guest/bin/*.c and the man-pages patch's example -> static
/// binaries in target/vm/bin.
pub(crate) fn static_helpers(bench: &Bench) -> Result<Vec<PathBuf>> {
    let out = bench.paths.out.join("bin");
    fs::create_dir_all(&out)?;
    let log = bench.log("helpers.log");
    let mut binaries = Vec::new();
    for source in sorted_files(&bench.paths.guest().join("bin"))? {
        if source.extension().and_then(|e| e.to_str()) != Some("c") {
            continue;
        }
        let binary = out.join(source.file_stem().unwrap());
        run_logged(
            Command::new("gcc")
                .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
                .arg(&binary)
                .arg(&source),
            &log,
        )?;
        binaries.push(binary);
    }
    binaries.push(manpage::build_example(bench, &log)?);
    Ok(binaries)
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
