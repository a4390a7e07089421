//! umw-vm: the QEMU bench of umount-wait.
//!
//! The pipeline, as the data flows:
//!
//!   kernel source (7.3, 6.12) -> config -> image                   kernel.rs
//!   static binaries + guest files -> initramfs                      initramfs.rs
//!   blank ext4 images                                               disks.rs
//!   image + initramfs + disks -> boot -> console log                boot.rs
//!   console log -> verdict (KTAP, races, kernel reports)            console.rs
//!   verdicts -> target/vm/summary.json + table                      summary.rs
//!
//! Every stage that takes time caches by the hash of its inputs (cache.rs)
//! and says when it reuses; progress.rs prints one status line per stage.

mod boot;
mod cache;
mod ci_boot;
mod console;
mod context;
mod debian;
mod diskcheck;
mod disks;
mod flows;
mod initramfs;
mod kernel;
mod kernel_stock;
mod last_shutdown;
mod manpage;
mod mutant;
mod mutants;
mod progress;
mod reboot;
mod shutdown_reboot;
mod suites;
mod summary;
mod systemd_reboot;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::context::Bench;
use crate::kernel::KernelName;

#[derive(Parser)]
#[command(
    name = "umw-vm",
    about = "Build 7.3 and 6.12 kernels with and without the UMOUNT_WAIT series and run the suites in QEMU"
)]
struct Cli {
    /// Use KVM instead of TCG (KVM guests hang on some machines: only on request).
    #[arg(long, global = true)]
    kvm: bool,
    /// Where this run's initramfs, disks, logs and summary.json go (default
    /// target/vm), so that a bench and a test run can share a checkout.
    #[arg(long, global = true, value_name = "DIR")]
    out: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build (or reuse) kernels and the initramfs.
    Build {
        /// Kernels to build; all of them when none is given.
        #[arg(value_enum)]
        kernels: Vec<KernelName>,
    },
    /// Run the suites on each kernel, write target/vm/summary.json, print the table.
    Test {
        /// Kernels to test; every kernel (unpatched, patched, unpatched-7.3, patched-7.3, debug, mutant, stock) when none is given.
        #[arg(value_enum)]
        kernels: Vec<KernelName>,
        /// Only these suites (names of files in qemu/guest/suites/).
        #[arg(long, value_delimiter = ',')]
        suites: Vec<String>,
        /// Runs per race scenario and mode: enough to show the mechanism (a
        /// baseline that has not reproduced gets up to 3N); statistics are
        /// `umw-vm campaign`'s.
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// Skip the bench's own test: a boot that crashes on purpose must be reported as a failure.
        #[arg(long)]
        no_crash_test: bool,
        /// Boots per mode of scenario S4 (reboot right after the unmount), 0 skips it; the plain baseline gets more, up to 3N and at least 6, until it shows the bug; unpatched and patched kernels only, only without --suites.
        #[arg(long, default_value_t = 1)]
        s4_boots: u32,
        /// Boots per mode of the shutdown-reboot test (the reboot script, then every disk checked on the host), 0 skips it and the CI boot job; unpatched and patched kernels only, only without --suites.
        #[arg(long, default_value_t = 1)]
        shutdown_boots: u32,
        /// Boots per mode of the reboot under a real systemd (the Debian image: stock and both examples on patched-7.3, both examples with f2fs /data on unpatched-7.3), 0 skips it (ci/test runs it beside the host stages instead, `umw-vm systemd-reboot`); only without --suites.
        #[arg(long, default_value_t = 1)]
        systemd_boots: u32,
    },
    /// Run only scenario S4 (reboot right after the unmount, disk checked on the host).
    S4 {
        /// Kernels to test; unpatched, patched, debug and stock when none is given.
        #[arg(value_enum)]
        kernels: Vec<KernelName>,
        /// Boots per mode.
        #[arg(long, default_value_t = reboot::DEFAULT_BOOTS)]
        boots: u32,
    },
    /// Run only the shutdown-reboot test: reboot scripts (umount-wait --all and Android-style polling), a reboot, every disk checked on the host.
    ShutdownReboot {
        /// Kernels to test; unpatched and patched when none is given.
        #[arg(value_enum)]
        kernels: Vec<KernelName>,
        /// Boots per mode.
        #[arg(long, default_value_t = shutdown_reboot::DEFAULT_BOOTS)]
        boots: u32,
        /// Only these modes (umount-wait, polling, umount-wait+survivor, umount-wait+f2fs, plain+f2fs, ...; none and none+f2fs: the control boots); all, and the controls on the patched kernel, when none is given.
        #[arg(long, value_delimiter = ',')]
        modes: Vec<String>,
    },
    /// Run only the reboot under a real systemd: a Debian trixie image booted by its own systemd, a service writing to /data from its own mount namespace, `systemctl reboot`, /data checked on the host; stock, or with the examples' data service, shutdown hook, or both.
    SystemdReboot {
        /// Kernels to test; patched-7.3 and unpatched-7.3 when none is given.
        #[arg(value_enum)]
        kernels: Vec<KernelName>,
        /// Boots per mode.
        #[arg(long, default_value_t = 1)]
        boots: u32,
        /// Only these modes (stock, service, hook, both, stock+f2fs, both+f2fs; or test: umw-vm test's per kernel); all when none is given.
        #[arg(long, value_delimiter = ',')]
        modes: Vec<String>,
        /// No boot after the reboot for the shutdown's verdict (modes with an example; the f2fs modes keep theirs, where /data is read): one boot each, for statistics on /data alone (`umw-vm campaign --parts systemd-reboot` keeps the boot after).
        #[arg(long)]
        no_next_boot: bool,
    },
    /// Run only the CI boot job (examples/ci-boot-job.sh): a VM image booted, its tests run, umount-wait --all, the image checked clean on the host.
    CiBoot {
        /// Kernels to test; unpatched and patched when none is given.
        #[arg(value_enum)]
        kernels: Vec<KernelName>,
    },
    /// Statistics on demand (not a test): many runs of S1-S3 and many boots
    /// of S4 and shutdown-reboot; every sample and the summary go to
    /// bench/results/campaign-<UTC time>/, and the table is printed.
    Campaign {
        /// Kernels; unpatched and patched when none is given.
        #[arg(value_enum)]
        kernels: Vec<KernelName>,
        /// Runs per mode of S1-S3 (one boot per kernel).
        #[arg(long, default_value_t = 200)]
        runs: u32,
        /// Boots per mode of S4 and shutdown-reboot.
        #[arg(long, default_value_t = 30)]
        boots: u32,
        /// Only these parts (races, s4, shutdown-reboot, mutants); all but mutants when none is given. mutants: `umw-vm mutants` on the bases of the kernels.
        #[arg(long, value_delimiter = ',')]
        parts: Vec<String>,
        /// Only these modes of shutdown-reboot (umount-wait, polling, umount-wait+survivor, umount-wait+f2fs, plain+f2fs, ...; none and none+f2fs: the control boots); all but the controls when none is given.
        #[arg(long, value_delimiter = ',')]
        modes: Vec<String>,
    },
    /// The mutation tool: each mutant of qemu/mutants.txt applied to a copy
    /// of the built patched tree, rebuilt (seconds), booted with the
    /// kselftest until its first failure; killed, SURVIVED or stillborn.
    /// Results in bench/results/mutants-<UTC time>/; fails when one survived
    /// or was stillborn.
    Mutants {
        /// Bases (7.3, 6.12); both, 7.3 first, when none is given.
        #[arg(long, value_delimiter = ',', value_name = "VERSION")]
        base: Vec<String>,
        /// Only the mutants of these names.
        #[arg(long, value_delimiter = ',', value_name = "NAME")]
        only: Vec<String>,
    },
    /// Boot the patched kernel and show umount-wait against plain umount on real scenarios.
    Demo,
    /// Boot a kernel with an interactive shell on the serial console (Ctrl-A x quits).
    Shell {
        #[arg(value_enum, default_value = "patched")]
        kernel: KernelName,
    },
    /// Print the table of the last target/vm/summary.json.
    Summary,
    /// Extract (or find) the pristine kernel sources (7.3, 6.12) and print their paths.
    Source,
    /// Every stage's cold path but the compiles: source extraction and
    /// copies, config merge and its check, series and mutant apply, the
    /// kselftest, the stock kernel's download, the initramfs, the disks.
    /// ci/test runs it against an empty UMW_CACHE.
    Prepare,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("umw-vm: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    let bench = Bench::new(cli.kvm, cli.out)?;
    match cli.command {
        Command::Build { kernels } => {
            let kernels = if kernels.is_empty() {
                KernelName::ALL.to_vec()
            } else {
                kernels
            };
            let mut images = Vec::new();
            for name in kernels {
                images.push(kernel::build(&bench, name)?);
            }
            initramfs::build(&bench, &images.iter().collect::<Vec<_>>())?;
            Ok(true)
        }
        Command::Test {
            kernels,
            suites,
            runs,
            no_crash_test,
            s4_boots,
            shutdown_boots,
            systemd_boots,
        } => {
            let kernels = if kernels.is_empty() {
                KernelName::TESTED.to_vec()
            } else {
                kernels
            };
            let options = flows::TestOptions {
                s4_boots: if suites.is_empty() { s4_boots } else { 0 },
                shutdown_boots: if suites.is_empty() { shutdown_boots } else { 0 },
                systemd_boots: if suites.is_empty() { systemd_boots } else { 0 },
                suites,
                runs,
                crash_test: !no_crash_test,
            };
            bench.test(&kernels, &options)
        }
        Command::S4 { kernels, boots } => {
            let kernels = if kernels.is_empty() {
                vec![
                    KernelName::Unpatched,
                    KernelName::Patched,
                    KernelName::Debug,
                    KernelName::Stock,
                ]
            } else {
                kernels
            };
            bench.s4_alone(&kernels, boots)
        }
        Command::ShutdownReboot {
            kernels,
            boots,
            modes,
        } => {
            let kernels = if kernels.is_empty() {
                vec![KernelName::Unpatched, KernelName::Patched]
            } else {
                kernels
            };
            bench.shutdown_reboot_alone(&kernels, boots, &modes)
        }
        Command::SystemdReboot {
            kernels,
            boots,
            modes,
            no_next_boot,
        } => {
            let kernels = if kernels.is_empty() {
                vec![KernelName::Patched73, KernelName::Unpatched73]
            } else {
                kernels
            };
            bench.systemd_reboot_alone(&kernels, boots, &modes, !no_next_boot)
        }
        Command::Campaign {
            kernels,
            runs,
            boots,
            parts,
            modes,
        } => {
            let kernels = if kernels.is_empty() {
                vec![KernelName::Unpatched, KernelName::Patched]
            } else {
                kernels
            };
            bench.campaign(
                &kernels,
                &flows::CampaignOptions {
                    runs,
                    boots,
                    parts,
                    modes,
                },
            )
        }
        Command::CiBoot { kernels } => {
            let kernels = if kernels.is_empty() {
                vec![KernelName::Unpatched, KernelName::Patched]
            } else {
                kernels
            };
            bench.ci_boot_alone(&kernels)
        }
        Command::Mutants { base, only } => {
            let mut bases = Vec::new();
            for version in &base {
                let Some(b) = kernel::Base::parse(version) else {
                    anyhow::bail!("no base {version} (bases: 7.3, 6.12)");
                };
                if !bases.contains(&b) {
                    bases.push(b);
                }
            }
            if bases.is_empty() {
                bases = kernel::Base::ALL.to_vec();
            }
            let mut command = "umw-vm mutants".to_string();
            for b in &bases {
                command.push_str(&format!(" --base {}", b.version()));
            }
            if !only.is_empty() {
                command.push_str(&format!(" --only {}", only.join(",")));
            }
            bench.mutants(&flows::MutantsOptions {
                bases,
                only,
                command,
            })
        }
        Command::Demo => bench.demo(),
        Command::Shell { kernel } => bench.shell(kernel),
        Command::Prepare => bench.prepare(),
        Command::Source => {
            for base in kernel::Base::ALL {
                println!("{}", kernel::pristine_source(&bench, base)?.display());
            }
            Ok(true)
        }
        Command::Summary => {
            let summary = summary::Summary::load(&bench.paths.summary_json())?;
            let (_, failed) = summary.print_table();
            Ok(failed == 0)
        }
    }
}
