//! Kernel source -> config -> image.
//!
//! Two bases, each from Debian's source package: Linux 7.3 (the primary
//! series, kernel-patches/) and 6.12 LTS (the backport, kernel-patches/6.12/).
//! One tree per kernel under the cache, each made from the previous one so
//! that every build after the first of a base is incremental:
//!
//!   trees/unpatched      linux-source-6.12 extracted, tinyconfig +
//!                        qemu/kernel.config, built
//!   trees/patched        a copy of the built unpatched tree (timestamps kept),
//!                        kernel-patches/apply.sh, rebuilt: only what the series
//!                        touches recompiles; the kselftest is built from it
//!   trees/mutant         a copy of the built patched tree + qemu/mutant/no-wait.patch
//!                        (the wait made a no-op), rebuilt: the kernel on which
//!                        every test of the wait must fail
//!   trees/unpatched-7.3  linux-source-7.3, the same fragment, built (the
//!                        parent of the next two; `umw-vm test` does not boot it)
//!   trees/patched-7.3    its copy with the primary series, rebuilt
//!   trees/debug          a copy of the patched-7.3 tree + qemu/kernel-debug.config
//!                        (lockdep, sleep-in-atomic, hung task), rebuilt
//!   trees/mutants-VERSION a copy of the built patched tree of a base, where
//!                        `umw-vm mutants` applies each mutant of
//!                        qemu/mutants.txt in turn (mutants_tree)
//!
//! `prepare` runs every step but the compiles (extraction, copies, config
//! merge and its check, series apply): ci/test runs it on an empty cache on
//! every run, so that a cold path cannot break unseen behind a warm cache.
//!
//! Images are kept under images/<name>-<key>, the key hashing the inputs
//! (source package version, fragments, the series and its scripts). A stamp
//! file in each tree records the key it was built for.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cache::{Key, Lock};
use crate::context::{output_of, run_logged, Bench};

/// The Linux version a kernel is built from, and where its source and
/// series come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Base {
    /// Linux 6.12 LTS: Debian's linux-source-6.12, the backport series.
    Lts612,
    /// Linux 7.3: Debian's linux-source-7.3 (trixie-backports, fetched by
    /// ci/setup), the primary series.
    Mainline73,
}

impl Base {
    pub const ALL: [Base; 2] = [Base::Mainline73, Base::Lts612];

    pub fn version(self) -> &'static str {
        match self {
            Base::Lts612 => "6.12",
            Base::Mainline73 => "7.3",
        }
    }

    /// The base of a version as written on the command line ("7.3", "6.12").
    pub fn parse(version: &str) -> Option<Base> {
        Base::ALL.into_iter().find(|b| b.version() == version)
    }

    /// The kernel with this base's series.
    pub fn patched(self) -> KernelName {
        match self {
            Base::Lts612 => KernelName::Patched,
            Base::Mainline73 => KernelName::Patched73,
        }
    }

    fn package(self) -> String {
        format!("linux-source-{}", self.version())
    }

    fn tarball(self) -> PathBuf {
        PathBuf::from(format!("/usr/src/{}.tar.xz", self.package()))
    }

    /// The series for this base: kernel-patches/ for the primary one,
    /// kernel-patches/VERSION/ for a backport (apply.sh picks the same by
    /// the tree's version).
    fn series_dir(self, bench: &Bench) -> PathBuf {
        match self {
            Base::Mainline73 => bench.paths.kernel_patches(),
            Base::Lts612 => bench.paths.kernel_patches().join(self.version()),
        }
    }

    /// The source package's version: dpkg's for 6.12 (installed by
    /// ci/setup), the .version file beside the tarball for 7.3 (ci/setup
    /// takes only the tarball out of the backports package).
    fn source_version(self) -> Result<String> {
        let tarball = self.tarball();
        let package = self.package();
        let version = match self {
            Base::Lts612 => {
                output_of(Command::new("dpkg-query").args(["-W", "-f=${Version}", &package]))
                    .with_context(|| format!("{package} is not installed (run ci/setup)"))?
            }
            Base::Mainline73 => {
                let file = tarball.with_extension("").with_extension("version");
                fs::read_to_string(&file)
                    .with_context(|| format!("{} is missing (run ci/setup)", file.display()))?
                    .trim()
                    .to_string()
            }
        };
        if !tarball.is_file() {
            bail!("{} is missing (run ci/setup)", tarball.display());
        }
        Ok(version)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, clap::ValueEnum)]
pub enum KernelName {
    Unpatched,
    Patched,
    #[value(name = "unpatched-7.3")]
    Unpatched73,
    #[value(name = "patched-7.3")]
    Patched73,
    Debug,
    Mutant,
    Stock,
}

impl KernelName {
    pub const ALL: [KernelName; 7] = [
        KernelName::Unpatched,
        KernelName::Patched,
        KernelName::Unpatched73,
        KernelName::Patched73,
        KernelName::Debug,
        KernelName::Mutant,
        KernelName::Stock,
    ];
    /// What `umw-vm test` runs when no kernel is named: every kernel.
    /// unpatched-7.3 is booted for the fallback on the newest kernels,
    /// whose `generic_shutdown_super()` sends `IN_UNMOUNT` before the
    /// final sync (the baseline's races show on patched-7.3 itself too,
    /// with plain umount).
    pub const TESTED: [KernelName; 7] = [
        KernelName::Unpatched,
        KernelName::Patched,
        KernelName::Unpatched73,
        KernelName::Patched73,
        KernelName::Debug,
        KernelName::Mutant,
        KernelName::Stock,
    ];
    /// The kernels built from the Debian source (all but the stock one).
    pub const BUILT: [KernelName; 6] = [
        KernelName::Unpatched,
        KernelName::Patched,
        KernelName::Mutant,
        KernelName::Unpatched73,
        KernelName::Patched73,
        KernelName::Debug,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KernelName::Unpatched => "unpatched",
            KernelName::Patched => "patched",
            KernelName::Unpatched73 => "unpatched-7.3",
            KernelName::Patched73 => "patched-7.3",
            KernelName::Debug => "debug",
            KernelName::Mutant => "mutant",
            KernelName::Stock => "stock",
        }
    }

    /// The base a built kernel comes from (None: the stock kernel).
    pub fn base(self) -> Option<Base> {
        match self {
            KernelName::Unpatched | KernelName::Patched | KernelName::Mutant => Some(Base::Lts612),
            KernelName::Unpatched73 | KernelName::Patched73 | KernelName::Debug => {
                Some(Base::Mainline73)
            }
            KernelName::Stock => None,
        }
    }

    fn built_base(self) -> Base {
        self.base().expect("the stock kernel is not built")
    }

    pub fn parse(name: &str) -> Option<KernelName> {
        KernelName::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the series is applied (what `umount-wait --probe` should say).
    pub fn has_series(self) -> bool {
        matches!(
            self,
            KernelName::Patched | KernelName::Patched73 | KernelName::Debug | KernelName::Mutant
        )
    }

    /// The tree a kernel's tree is copied from, if any.
    fn parent(self) -> Option<KernelName> {
        match self {
            KernelName::Patched => Some(KernelName::Unpatched),
            KernelName::Mutant => Some(KernelName::Patched),
            KernelName::Patched73 => Some(KernelName::Unpatched73),
            KernelName::Debug => Some(KernelName::Patched73),
            KernelName::Unpatched | KernelName::Unpatched73 | KernelName::Stock => None,
        }
    }
}

impl fmt::Display for KernelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bootable kernel and what goes with it.
pub struct KernelImage {
    pub name: KernelName,
    pub bzimage: PathBuf,
    pub release: String,
    /// What it was built from ("linux-source-7.3 7.3.4-1~bpo13+1"; the
    /// stock kernel: its image package).
    pub source: String,
    /// The kselftest binary built from the patched tree (patched and debug only).
    pub selftest: Option<PathBuf>,
    /// Modules the initramfs must load, in order (stock kernel only).
    pub modules: Vec<PathBuf>,
    /// More memory for the debug kernel.
    pub memory_mb: u32,
}

/// Builds (or reuses) one kernel.
pub fn build(bench: &Bench, name: KernelName) -> Result<KernelImage> {
    if name == KernelName::Stock {
        return crate::kernel_stock::fetch(bench);
    }
    // A cached image is complete (written aside, then renamed): no lock
    // to read it, so that a run never waits behind another's build of a
    // kernel it does not need. The lock is for building, and whoever took
    // it after a wait looks again.
    let key = key_for(bench, name)?;
    let dir = image_dir(bench, name)?;
    let reuse = |image: KernelImage| {
        bench.progress.note(&format!(
            "{name} kernel: reusing the cached image {} (key {key})",
            dir.display()
        ));
        image
    };
    if let Some(image) = cached(name, &dir)? {
        return Ok(reuse(image));
    }
    let _lock = take_lock(bench)?;
    if let Some(image) = cached(name, &dir)? {
        return Ok(reuse(image));
    }
    let tree = build_tree(bench, name, Until::Built)?;
    let staging = dir.with_extension("tmp");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    fs::copy(tree.join("arch/x86/boot/bzImage"), staging.join("bzImage"))?;
    fs::copy(tree.join(".config"), staging.join("config"))?;
    let release = output_of(
        Command::new("make")
            .arg("-s")
            .arg("kernelrelease")
            .current_dir(&tree),
    )?;
    fs::write(staging.join("release"), format!("{release}\n"))?;
    if name.has_series() {
        build_selftest(bench, name, &tree, &staging.join("umount_wait_test"))?;
    }
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&staging, &dir)?;
    bench.progress.note(&format!(
        "{name} kernel: {release}, image cached in {} (key {key})",
        dir.display()
    ));
    cached(name, &dir)?.with_context(|| format!("{} incomplete after the build", dir.display()))
}

/// The image of `name` in its cache directory `dir`, when all of it is there.
fn cached(name: KernelName, dir: &Path) -> Result<Option<KernelImage>> {
    let selftest = name.has_series().then(|| dir.join("umount_wait_test"));
    if !dir.join("bzImage").is_file() || !selftest.iter().all(|s| s.is_file()) {
        return Ok(None);
    }
    let base = name.built_base();
    Ok(Some(KernelImage {
        name,
        bzimage: dir.join("bzImage"),
        release: fs::read_to_string(dir.join("release"))?.trim().to_string(),
        source: format!("{} {}", base.package(), base.source_version()?),
        selftest,
        modules: Vec::new(),
        memory_mb: memory_mb(name),
    }))
}

fn memory_mb(name: KernelName) -> u32 {
    if name == KernelName::Debug {
        1024
    } else {
        512
    }
}

/// The series' kselftest, built static from a tree that has the series
/// (kernel-patches/build-selftest.sh), into `binary`.
pub fn build_selftest(bench: &Bench, name: KernelName, tree: &Path, binary: &Path) -> Result<()> {
    let log = bench.log(&format!("selftest-{name}.log"));
    let _ = fs::remove_file(&log);
    let script = bench.paths.kernel_patches().join("build-selftest.sh");
    bench.progress.stage(
        &format!("{name} kernel: building the kselftest"),
        Some(&log),
        || {
            run_logged(
                Command::new("bash").arg(&script).arg(tree).arg(binary),
                &log,
            )
        },
    )?;
    if !binary.is_file() {
        bail!("{} left no {}", script.display(), binary.display());
    }
    Ok(())
}

/// Kernel trees are shared by every umw-vm using this cache: one at a time.
fn take_lock(bench: &Bench) -> Result<Lock> {
    Lock::take(&bench.paths.cache.join("kernels.lock"), || {
        bench
            .progress
            .note("another umw-vm is building kernels: waiting for it")
    })
}

/// What building `name` would take from this cache, in words, for a
/// newcomer waiting on it: nothing (cached), an incremental build on a
/// built parent tree, or the full compile first.
pub fn build_plan(bench: &Bench, name: KernelName) -> Result<String> {
    if name == KernelName::Stock {
        return Ok("the stock kernel: a download (seconds)".into());
    }
    if image_dir(bench, name)?.join("bzImage").is_file() {
        return Ok(format!("the {name} kernel: cached, nothing to build"));
    }
    let mut steps = Vec::new();
    let mut kernel = Some(name);
    while let Some(k) = kernel {
        let tree = bench.paths.cache.join("trees").join(k.as_str());
        if stamp(&tree, "built").as_deref() == Some(key_for(bench, k)?.as_str()) {
            break;
        }
        steps.push(match k {
            KernelName::Unpatched | KernelName::Unpatched73 => {
                "the unpatched kernel from scratch (5-8 min on 2 cores)"
            }
            KernelName::Patched | KernelName::Patched73 => {
                "the patched kernel on top of it (about 1 min)"
            }
            KernelName::Debug => "the debug kernel (5-8 min: its config rebuilds nearly all)",
            KernelName::Mutant => "the mutant kernel (about 1 min)",
            KernelName::Stock => unreachable!(),
        });
        kernel = k.parent();
    }
    steps.reverse();
    Ok(format!("building {}", steps.join(", then ")))
}

fn image_dir(bench: &Bench, name: KernelName) -> Result<PathBuf> {
    let key = key_for(bench, name)?;
    Ok(bench
        .paths
        .cache
        .join("images")
        .join(format!("{name}-{key}")))
}

/// The hash of everything a kernel is made from.
fn key_for(bench: &Bench, name: KernelName) -> Result<String> {
    let mut key = Key::new("kernel");
    key.text("name", name.as_str());
    key.text("source", &name.built_base().source_version()?);
    key.file(&bench.paths.repo.join("qemu/kernel.config"))?;
    if name.has_series() {
        for file in series_inputs(bench, name.built_base())? {
            key.file(&file)?;
        }
    }
    if name == KernelName::Debug {
        key.file(&bench.paths.repo.join("qemu/kernel-debug.config"))?;
    }
    if name == KernelName::Mutant {
        key.file(&mutant_patch(bench))?;
    }
    Ok(key.finish())
}

/// The change that makes the mutant: the wait made a no-op.
fn mutant_patch(bench: &Bench) -> PathBuf {
    bench.paths.repo.join("qemu/mutant/no-wait.patch")
}

/// The series file of a base, every patch it lists, and the scripts that
/// apply and build it.
fn series_inputs(bench: &Bench, base: Base) -> Result<Vec<PathBuf>> {
    let dir = base.series_dir(bench);
    let series = dir.join("series");
    let text = fs::read_to_string(&series).with_context(|| {
        format!(
            "the series is not available: {} is missing",
            series.display()
        )
    })?;
    let mut files = vec![series.clone()];
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        files.push(dir.join(line));
    }
    for script in ["apply.sh", "build-selftest.sh"] {
        files.push(bench.paths.kernel_patches().join(script));
    }
    for file in &files {
        if !file.is_file() {
            bail!("the series is not available: {} is missing", file.display());
        }
    }
    Ok(files)
}

/// How far [`build_tree`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Source copied, config merged and checked, patches applied: no compile.
    Prepared,
    /// `make bzImage` done.
    Built,
}

/// Runs every step of the kernels built from source but the compiles, into
/// the bench's cache (`umw-vm prepare`). Returns the prepared trees.
/// The two bases' chains of trees share nothing, and most of their time is
/// one core's (xz, Kconfig) or the disk's: they run side by side.
pub fn prepare(bench: &Bench) -> Result<Vec<(KernelName, PathBuf)>> {
    let _lock = take_lock(bench)?;
    let chain = |base: Base| -> Result<Vec<(KernelName, PathBuf)>> {
        KernelName::BUILT
            .into_iter()
            .filter(|name| name.base() == Some(base))
            .map(|name| Ok((name, build_tree(bench, name, Until::Prepared)?)))
            .collect()
    };
    let (mainline, lts) = std::thread::scope(|scope| {
        let mainline = scope.spawn(|| chain(Base::Mainline73));
        let lts = chain(Base::Lts612);
        (mainline.join(), lts)
    });
    let mainline = mainline.map_err(|_| anyhow::anyhow!("preparing the 7.3 trees panicked"))?;
    let mut trees = lts?;
    trees.extend(mainline?);
    Ok(trees)
}

/// Brings a kernel's tree to "prepared" or "built" for the current key and
/// returns it. A tree is made from its parent's tree ([`KernelName::parent`]):
/// the built parent when building, the prepared one when only preparing.
fn build_tree(bench: &Bench, name: KernelName, until: Until) -> Result<PathBuf> {
    let key = key_for(bench, name)?;
    let tree = bench.paths.cache.join("trees").join(name.as_str());
    if stamp(&tree, "built").as_deref() == Some(key.as_str()) {
        return Ok(tree);
    }
    let log = bench.log(&format!("kernel-{name}.log"));
    let _ = fs::remove_file(&log);
    if stamp(&tree, "prepared").as_deref() != Some(key.as_str()) {
        match name {
            KernelName::Unpatched | KernelName::Unpatched73 => {
                let base = name.built_base();
                let version = base.source_version()?;
                if stamp(&tree, "source").as_deref() != Some(version.as_str()) {
                    let pristine = pristine_source(bench, base)?;
                    bench.progress.stage(
                        &format!("{name} kernel: copying the pristine source"),
                        None,
                        || copy_tree(&pristine, &tree),
                    )?;
                    set_stamp(&tree, "source", &version)?;
                }
                let fragments = [bench.paths.repo.join("qemu/kernel.config")];
                bench.progress.stage(
                    &format!("{name} kernel: tinyconfig + qemu/kernel.config"),
                    Some(&log),
                    || {
                        run_logged(
                            Command::new("make").arg("tinyconfig").current_dir(&tree),
                            &log,
                        )?;
                        merge_fragments(&tree, &fragments, &log)
                    },
                )?;
            }
            KernelName::Patched
            | KernelName::Patched73
            | KernelName::Debug
            | KernelName::Mutant => {
                // A tree already made for these fragments only needs the new
                // series swapped in: a rebuild of what the two series touch.
                let base = base_key(bench, name)?;
                let swapped = name != KernelName::Mutant
                    && stamp(&tree, "base").as_deref() == Some(base.as_str())
                    && tree.join(SERIES_COPY).is_dir()
                    && bench
                        .progress
                        .stage(
                            &format!("{name} kernel: swapping the series in place"),
                            Some(&log),
                            || swap_series(bench, name.built_base(), &tree, &log),
                        )
                        .is_ok();
                if !swapped {
                    let parent = name.parent().expect("a kernel made from another");
                    let parent_tree = build_tree(bench, parent, until)?;
                    let state = if until == Until::Built {
                        "built"
                    } else {
                        "prepared"
                    };
                    bench.progress.stage(
                        &format!("{name} kernel: copying the {state} {parent} tree"),
                        None,
                        || copy_tree(&parent_tree, &tree),
                    )?;
                    match name {
                        KernelName::Patched | KernelName::Patched73 => bench.progress.stage(
                            &format!("{name} kernel: applying the series"),
                            Some(&log),
                            || apply_series(bench, name.built_base(), &tree, &log),
                        )?,
                        KernelName::Mutant => bench.progress.stage(
                            &format!("{name} kernel: applying qemu/mutant/no-wait.patch"),
                            Some(&log),
                            || git_apply(&tree, &mutant_patch(bench), false, &log),
                        )?,
                        _ => {
                            let fragments = [
                                bench.paths.repo.join("qemu/kernel.config"),
                                bench.paths.repo.join("qemu/kernel-debug.config"),
                            ];
                            bench.progress.stage(
                                &format!("{name} kernel: adding qemu/kernel-debug.config"),
                                Some(&log),
                                || merge_fragments(&tree, &fragments, &log),
                            )?
                        }
                    }
                    set_stamp(&tree, "base", &base)?;
                }
            }
            KernelName::Stock => unreachable!("the stock kernel is not built"),
        }
        set_stamp(&tree, "prepared", &key)?;
    }
    if until == Until::Prepared {
        return Ok(tree);
    }
    let jobs = bench.jobs.to_string();
    bench.progress.stage(
        &format!("{name} kernel: make -j{jobs} bzImage"),
        Some(&log),
        || {
            run_logged(
                Command::new("make")
                    .args(["-j", &jobs, "bzImage"])
                    .current_dir(&tree),
                &log,
            )
        },
    )?;
    set_stamp(&tree, "built", &key)?;
    Ok(tree)
}

/// The tree the mutation tool changes for one base (`umw-vm mutants`):
/// trees/mutants-VERSION, a copy of the built patched tree (timestamps kept,
/// so that a mutant's build recompiles one file and links), made again only
/// when the patched tree's key changed (`.umw-copy-of`). The patched tree is
/// built first if it is not: the cache does the work.
pub fn mutants_tree(bench: &Bench, base: Base) -> Result<PathBuf> {
    let _lock = take_lock(bench)?;
    let name = base.patched();
    let patched = build_tree(bench, name, Until::Built)?;
    let key = key_for(bench, name)?;
    let tree = bench
        .paths
        .cache
        .join("trees")
        .join(format!("mutants-{}", base.version()));
    if stamp(&tree, "copy-of").as_deref() != Some(key.as_str()) {
        bench.progress.stage(
            &format!(
                "mutants ({}): copying the built {name} tree",
                base.version()
            ),
            None,
            || copy_tree(&patched, &tree),
        )?;
        set_stamp(&tree, "copy-of", &key)?;
    } else {
        bench.progress.note(&format!(
            "mutants ({}): reusing {} (a copy of the {name} tree, key {key})",
            base.version(),
            tree.display()
        ));
    }
    Ok(tree)
}

/// `make -j<jobs> bzImage` in a tree under the kernels' lock, its output
/// to `log`. Returns make's outcome (the image, or why it failed) and the
/// time it took, without the wait for the lock; the error outside is the
/// lock's.
pub fn make_bzimage(
    bench: &Bench,
    tree: &Path,
    what: &str,
    log: &Path,
) -> Result<(Result<PathBuf>, std::time::Duration)> {
    let _lock = take_lock(bench)?;
    let started = std::time::Instant::now();
    let jobs = bench.jobs.to_string();
    let made = bench
        .progress
        .stage(&format!("{what}: make -j{jobs} bzImage"), Some(log), || {
            run_logged(
                Command::new("make")
                    .args(["-j", &jobs, "bzImage"])
                    .current_dir(tree),
                log,
            )
        });
    Ok((
        made.map(|()| tree.join("arch/x86/boot/bzImage")),
        started.elapsed(),
    ))
}

/// `git apply [-R] PATCH` in a tree that is not a git repository (and never
/// one around it).
fn git_apply(tree: &Path, patch: &Path, reverse: bool, log: &Path) -> Result<()> {
    let ceiling = tree.parent().unwrap_or(tree);
    let mut command = Command::new("git");
    command.arg("apply");
    if reverse {
        command.arg("-R");
    }
    run_logged(
        command
            .arg(patch)
            .env("GIT_CEILING_DIRECTORIES", ceiling)
            .current_dir(tree),
        log,
    )
}

/// Where a series tree keeps a copy of the series it has applied.
const SERIES_COPY: &str = ".umw-series";

/// The key of a tree before any series: what a series swap keeps.
fn base_key(bench: &Bench, name: KernelName) -> Result<String> {
    if name == KernelName::Mutant {
        return key_for(bench, name);
    }
    let mut key = Key::new("tree");
    key.text("name", name.as_str());
    key.text("source", &name.built_base().source_version()?);
    key.file(&bench.paths.repo.join("qemu/kernel.config"))?;
    if name == KernelName::Debug {
        key.file(&bench.paths.repo.join("qemu/kernel-debug.config"))?;
    }
    Ok(key.finish())
}

/// kernel-patches/apply.sh, then a copy of what it applied, to revert it later.
fn apply_series(bench: &Bench, base: Base, tree: &Path, log: &Path) -> Result<()> {
    let apply = bench.paths.kernel_patches().join("apply.sh");
    run_logged(Command::new("bash").arg(&apply).arg(tree), log)?;
    let copy = tree.join(SERIES_COPY);
    let _ = fs::remove_dir_all(&copy);
    fs::create_dir_all(&copy)?;
    for file in series_inputs(bench, base)? {
        if file.extension().is_some_and(|e| e == "sh") {
            continue;
        }
        fs::copy(&file, copy.join(file.file_name().unwrap()))?;
    }
    Ok(())
}

/// Reverts the series the tree has (newest patch first), applies the current one.
fn swap_series(bench: &Bench, base: Base, tree: &Path, log: &Path) -> Result<()> {
    let copy = tree.join(SERIES_COPY);
    let series = fs::read_to_string(copy.join("series"))?;
    let patches: Vec<&str> = series
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for patch in patches.iter().rev() {
        git_apply(tree, &copy.join(patch), true, log)?;
    }
    apply_series(bench, base, tree, log)
}

/// The pristine extraction of a base's source package, never modified:
/// $UMW_CACHE/src/linux-source-VERSION (kernel-patches/check.sh copies it
/// too), its package version recorded beside it in linux-source-VERSION.version.
pub fn pristine_source(bench: &Bench, base: Base) -> Result<PathBuf> {
    let version = base.source_version()?;
    let package = base.package();
    let tarball = base.tarball();
    let src = bench
        .paths
        .cache
        .parent()
        .unwrap_or(&bench.paths.cache)
        .join("src");
    let tree = src.join(&package);
    let recorded_at = src.join(format!("{package}.version"));
    let recorded = fs::read_to_string(&recorded_at)
        .ok()
        .map(|v| v.trim().to_string());
    if tree.join("Makefile").is_file() && recorded.as_ref().is_none_or(|r| *r == version) {
        if recorded.is_none() {
            fs::write(&recorded_at, format!("{version}\n"))?;
        }
        return Ok(tree);
    }
    bench.progress.stage(
        &format!("extracting {} into {}", tarball.display(), tree.display()),
        None,
        || {
            let partial = src.join(format!(".extracting-{package}-{}", std::process::id()));
            fs::create_dir_all(&partial)?;
            let status = Command::new("tar")
                .arg("-xf")
                .arg(&tarball)
                .args(["--strip-components=1", "-C"])
                .arg(&partial)
                .status()?;
            if !status.success() {
                bail!("extracting {} failed ({status})", tarball.display());
            }
            discard_tree(&tree)?;
            fs::rename(&partial, &tree)?;
            fs::write(&recorded_at, format!("{version}\n"))?;
            Ok(())
        },
    )?;
    Ok(tree)
}

/// Copies a built tree keeping timestamps, so that the next make is incremental.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    discard_tree(to)?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        bail!(
            "cp -a {} {} failed ({status})",
            from.display(),
            to.display()
        );
    }
    Ok(())
}

/// Moves a tree out of the way at once and deletes it in the background
/// (deleting a built tree takes minutes on a busy disk).
fn discard_tree(tree: &Path) -> Result<()> {
    if !tree.exists() {
        return Ok(());
    }
    let name = tree.file_name().unwrap_or_default().to_string_lossy();
    let trash = tree.with_file_name(format!(".trash-{name}-{}", std::process::id()));
    fs::rename(tree, &trash)?;
    Command::new("rm")
        .arg("-rf")
        .arg(&trash)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    Ok(())
}

/// Merges config fragments onto the tree's .config, then checks that every
/// option they ask for was taken: Kconfig drops options whose dependencies
/// are missing, silently, and a kernel without them would fail its suites
/// in ways far from the cause.
fn merge_fragments(tree: &Path, fragments: &[PathBuf], log: &Path) -> Result<()> {
    run_logged(
        Command::new("scripts/kconfig/merge_config.sh")
            .args(["-m", ".config"])
            .args(fragments)
            .current_dir(tree),
        log,
    )?;
    run_logged(
        Command::new("make").arg("olddefconfig").current_dir(tree),
        log,
    )?;
    let config = fs::read_to_string(tree.join(".config"))?;
    // The last fragment that sets a symbol wins, as in merge_config.sh.
    let mut wanted: Vec<String> = Vec::new();
    for fragment in fragments {
        for line in fs::read_to_string(fragment)?
            .lines()
            .filter(|l| l.starts_with("CONFIG_"))
        {
            let symbol = line.split('=').next().unwrap_or(line);
            wanted.retain(|w| w.split('=').next() != Some(symbol));
            wanted.push(line.to_string());
        }
    }
    let (dropped, unknown): (Vec<String>, Vec<String>) = wanted
        .into_iter()
        .filter(|line| !config.lines().any(|c| c == line))
        .partition(|line| defined_in(tree, line.split('=').next().unwrap_or(line)));
    if !unknown.is_empty() {
        // One fragment serves both bases: a symbol the tree's Kconfig does
        // not define at all (7.3 folded PROC_SYSCTL into SYSCTL) is said in
        // the log, not an error.
        use std::io::Write;
        writeln!(
            fs::OpenOptions::new().append(true).create(true).open(log)?,
            "umw-vm: options this tree's Kconfig does not define (ignored): {}",
            unknown.join(" ")
        )?;
    }
    if !dropped.is_empty() {
        bail!(
            "config options not taken (missing dependencies?): {}",
            dropped.join(" ")
        );
    }
    Ok(())
}

/// Whether some Kconfig file of the tree defines CONFIG_`symbol`.
fn defined_in(tree: &Path, symbol: &str) -> bool {
    let name = symbol.trim_start_matches("CONFIG_");
    Command::new("grep")
        .args(["-rqE", "--include=Kconfig*"])
        .arg(format!(
            "^[[:space:]]*(menu)?config[[:space:]]+{name}[[:space:]]*$"
        ))
        .arg(tree)
        .status()
        .map(|s| s.success())
        .unwrap_or(true)
}

fn stamp(tree: &Path, what: &str) -> Option<String> {
    fs::read_to_string(tree.join(format!(".umw-{what}")))
        .ok()
        .map(|s| s.trim().to_string())
}

fn set_stamp(tree: &Path, what: &str, value: &str) -> Result<()> {
    fs::write(tree.join(format!(".umw-{what}")), format!("{value}\n"))?;
    Ok(())
}
