//! The stock distro kernel: Debian's prebuilt kernel package, unpatched, as
//! a realistic target for the fallback path.
//!
//! `apt-get download` of the package linux-image-amd64 depends on (or
//! $UMW_STOCK_PACKAGE), unpacked with `dpkg-deb -x` under the cache. Its
//! virtio, ext4 and loop drivers are modules: they are resolved with their
//! dependencies from modules.dep, decompressed, and loaded by /init in order.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::context::{output_of, run_logged, Bench};
use crate::kernel::{KernelImage, KernelName};

/// What the suites need, by module name; whatever is built in is skipped.
const WANTED: &[&str] = &["virtio_pci", "virtio_blk", "crc32c_generic", "ext4", "loop"];

pub fn fetch(bench: &Bench) -> Result<KernelImage> {
    let package = match std::env::var("UMW_STOCK_PACKAGE") {
        Ok(name) => name,
        Err(_) => stock_package()?,
    };
    let dir = bench.paths.cache.join("stock").join(&package);
    let root = dir.join("root");
    if !root.join("boot").is_dir() {
        let log = bench.log("kernel-stock.log");
        let _ = fs::remove_file(&log);
        bench.progress.stage(
            &format!("stock kernel: apt-get download {package}"),
            Some(&log),
            || {
                let _ = fs::remove_dir_all(&dir);
                fs::create_dir_all(&dir)?;
                let download = || {
                    run_logged(
                        Command::new("apt-get")
                            .args(["download", "-q", &package])
                            .current_dir(&dir),
                        &log,
                    )
                };
                if download().is_err() {
                    // Package lists may be missing or stale on a fresh machine.
                    run_logged(Command::new("apt-get").args(["update", "-qq"]), &log)?;
                    download()?;
                }
                let deb = fs::read_dir(&dir)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| p.extension().is_some_and(|x| x == "deb"))
                    .context("apt-get download left no .deb")?;
                run_logged(
                    Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
                    &log,
                )?;
                fs::remove_file(&deb)?;
                Ok(())
            },
        )?;
    } else {
        bench.progress.note(&format!(
            "stock kernel: reusing {package} unpacked in {}",
            root.display()
        ));
    }
    let vmlinuz = fs::read_dir(root.join("boot"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .context("no boot/vmlinuz-* in the package")?;
    let release = vmlinuz
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    let modules_dir = root.join("lib/modules").join(&release);
    if !modules_dir.join("modules.dep").is_file() {
        // The package leaves modules.dep to depmod at install time.
        output_of(Command::new("depmod").arg("-b").arg(&root).arg(&release))?;
    }
    let modules = resolve_modules(&modules_dir, &dir.join("modules"))?;
    Ok(KernelImage {
        name: KernelName::Stock,
        bzimage: vmlinuz,
        source: format!("linux-image-{release}"),
        release,
        selftest: None,
        modules,
        memory_mb: 512,
    })
}

/// The package linux-image-amd64 points at (e.g. linux-image-6.1.0-56-amd64).
fn stock_package() -> Result<String> {
    let depends = output_of(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
        .context("apt-cache depends linux-image-amd64 names no linux-image-* package")
}

/// The wanted modules and their dependencies, dependencies first,
/// decompressed into `out`.
fn resolve_modules(modules_dir: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let dep_text =
        fs::read_to_string(modules_dir.join("modules.dep")).context("reading modules.dep")?;
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in dep_text.lines() {
        let Some((module, rest)) = line.split_once(':') else {
            continue;
        };
        deps.insert(
            module_name(module),
            (
                module.to_string(),
                rest.split_whitespace().map(module_name).collect(),
            ),
        );
    }
    let mut order = Vec::new();
    for name in WANTED {
        visit(name, &deps, &mut order);
    }
    fs::create_dir_all(out)?;
    let mut files = Vec::new();
    for name in order {
        let source = modules_dir.join(&deps[&name].0);
        let target = out.join(format!("{name}.ko"));
        if !target.is_file() {
            let source_text = source.to_string_lossy();
            let decompress = if source_text.ends_with(".xz") {
                Some("xz")
            } else if source_text.ends_with(".zst") {
                Some("zstd")
            } else {
                None
            };
            match decompress {
                Some(tool) => {
                    let data = Command::new(tool).arg("-dc").arg(&source).output()?;
                    if !data.status.success() {
                        bail!("{tool} -dc {} failed", source.display());
                    }
                    fs::write(&target, data.stdout)?;
                }
                None => {
                    fs::copy(&source, &target)?;
                }
            }
        }
        files.push(target);
    }
    Ok(files)
}

fn visit(name: &str, deps: &BTreeMap<String, (String, Vec<String>)>, order: &mut Vec<String>) {
    if order.iter().any(|n| n == name) {
        return;
    }
    // Not in modules.dep: built in.
    let Some((_, needs)) = deps.get(name) else {
        return;
    };
    for need in needs {
        visit(need, deps, order);
    }
    order.push(name.to_string());
}

/// kernel/fs/ext4/ext4.ko.xz -> ext4 (modules.dep names, dashes as underscores).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_builtins_are_skipped() {
        let mut deps = BTreeMap::new();
        deps.insert(
            "ext4".into(),
            (
                "kernel/fs/ext4/ext4.ko.xz".into(),
                vec!["jbd2".into(), "mbcache".into()],
            ),
        );
        deps.insert("jbd2".into(), ("kernel/fs/jbd2/jbd2.ko.xz".into(), vec![]));
        deps.insert("mbcache".into(), ("kernel/fs/mbcache.ko.xz".into(), vec![]));
        let mut order = Vec::new();
        visit("ext4", &deps, &mut order);
        visit("virtio_blk", &deps, &mut order);
        assert_eq!(order, vec!["jbd2", "mbcache", "ext4"]);
        assert_eq!(
            module_name("kernel/drivers/virtio/virtio-pci.ko.xz"),
            "virtio_pci"
        );
    }
}
