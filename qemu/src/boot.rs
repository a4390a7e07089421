//! Image + initramfs + disks -> one QEMU boot, its console saved to a log.
//!
//! TCG unless KVM is asked for, -no-reboot (but for a warm reset,
//! [`Boot::warm_reset`]) with panic=-1: a panic ends the
//! boot at once, and so do an oops and a hung task (oops=panic,
//! hung_task_panic=1): the console parser reports them either way, this only
//! keeps a broken kernel from holding the boot until its time limit. Every
//! qemu runs under `timeout`; /init kills a suite after umw.suite_timeout.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::context::Bench;
use crate::disks::{self, Disks};
use crate::initramfs::Initramfs;
use crate::kernel::{KernelImage, KernelName};

pub struct Boot {
    /// Suites to run, in order (empty and interactive: a shell).
    pub suites: Vec<String>,
    /// Runs per race scenario and mode.
    pub runs: u32,
    /// The limit of the whole boot (host side) and of each suite (guest side).
    pub timeout: Duration,
    pub suite_timeout: Duration,
    pub interactive: bool,
    /// A guest reboot resets the VM (RAM kept) instead of ending QEMU
    /// (no -no-reboot): the last-shutdown test's two boots.
    pub warm_reset: bool,
    /// More of the kernel command line (ramoops's reserved memory).
    pub append: String,
}

impl Boot {
    /// A boot that runs suites. The time limit of each suite is
    /// UMW_SUITE_TIMEOUT seconds, or 150 s (300 s on the debug kernel).
    pub fn suites(suites: Vec<String>, runs: u32, kernel: KernelName) -> Self {
        let default = if kernel == KernelName::Debug {
            300
        } else {
            150
        };
        let per_suite = std::env::var("UMW_SUITE_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        let timeout = Duration::from_secs(60 + per_suite * suites.len().max(1) as u64);
        Boot {
            suites,
            runs,
            timeout,
            suite_timeout: Duration::from_secs(per_suite),
            interactive: false,
            warm_reset: false,
            append: String::new(),
        }
    }

    /// Gives each suite at least `per_suite` (the campaign's long runs).
    pub fn stretch_suite_timeout(&mut self, per_suite: Duration) {
        if per_suite > self.suite_timeout {
            self.suite_timeout = per_suite;
            self.timeout = Duration::from_secs(60) + per_suite * self.suites.len().max(1) as u32;
        }
    }

    /// An interactive shell: no suite, no time limit worth the name.
    pub fn shell() -> Self {
        let day = Duration::from_secs(24 * 3600);
        Boot {
            suites: Vec::new(),
            runs: 1,
            timeout: day,
            suite_timeout: day,
            interactive: true,
            warm_reset: false,
            append: String::new(),
        }
    }
}

pub struct Outcome {
    pub timed_out: bool,
    /// Set when the watch of [`run_watched`] stopped the boot: what it saw.
    pub stopped: Option<String>,
}

pub fn run(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    disks: &[PathBuf],
    boot: &Boot,
    log: &Path,
) -> Result<Outcome> {
    let (mut command, _monitor) = qemu(bench, &Machine::bench(image, initramfs, boot), disks);
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
        return run_watched(bench, image, initramfs, disks, boot, log, |_| None);
    }
    .context("running qemu-system-x86_64 (run ci/setup)")?;
    Ok(Outcome {
        timed_out: timed_out(status),
        stopped: None,
    })
}

/// A boot whose console is read while it runs: `watch` gets each line as it
/// comes, and the first time it returns something the VM is stopped (the
/// mutation tool stops at the first failing test). Not interactive. Every
/// boot that runs suites is one: a line `UMW-QMP device_del vdX` from the
/// guest has the host remove that disk through QEMU's monitor (the fault
/// suite's disk that disappears; [`Monitor`]).
pub fn run_watched(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    disks: &[PathBuf],
    boot: &Boot,
    log: &Path,
    watch: impl FnMut(&str) -> Option<String>,
) -> Result<Outcome> {
    run_machine(
        bench,
        &Machine::bench(image, initramfs, boot),
        disks,
        log,
        watch,
    )
}

/// What QEMU boots: a kernel, the bench's initramfs or none (an image
/// with its own init on /dev/vda), the command line, the memory, and
/// whether a reboot of the guest restarts it (a warm reset, RAM kept) or
/// ends QEMU (-no-reboot).
pub struct Machine {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: String,
    pub memory_mb: u32,
    pub warm_reset: bool,
    pub timeout: Duration,
    /// The guest's RAM in this file (shared, kept after QEMU ends): a
    /// second run on the same file finds what the first left in RAM.
    pub ram_file: Option<PathBuf>,
}

/// The kernel options of every boot: the console, a panic ends the VM.
const BASE_CMDLINE: &str =
    "console=ttyS0 panic=-1 oops=panic hung_task_panic=1 loglevel=5 printk.time=1";

impl Machine {
    /// A boot of the bench's initramfs, its suites as `boot` says.
    pub fn bench(image: &KernelImage, initramfs: &Initramfs, boot: &Boot) -> Machine {
        Machine {
            kernel: image.bzimage.clone(),
            initrd: Some(initramfs.for_kernel(image).to_path_buf()),
            append: cmdline(image, boot),
            memory_mb: image.memory_mb,
            warm_reset: boot.warm_reset,
            timeout: boot.timeout,
            ram_file: None,
        }
    }

    /// A boot of `image` without the bench's initramfs: an image that
    /// boots its own init from /dev/vda (the Debian image of
    /// systemd_reboot.rs); `append` goes after the bench's console and
    /// panic options.
    pub fn own_init(
        image: &KernelImage,
        append: &str,
        memory_mb: u32,
        timeout: Duration,
    ) -> Machine {
        Machine {
            kernel: image.bzimage.clone(),
            initrd: None,
            append: format!("{BASE_CMDLINE} {append}"),
            memory_mb,
            warm_reset: false,
            timeout,
            ram_file: None,
        }
    }
}

/// [`run_watched`] for any [`Machine`].
pub fn run_machine(
    bench: &Bench,
    machine: &Machine,
    disks: &[PathBuf],
    log: &Path,
    mut watch: impl FnMut(&str) -> Option<String>,
) -> Result<Outcome> {
    use rustix::process::{kill_process, kill_process_group, Pid, Signal};
    use std::io::Read;

    let (mut command, mut monitor) = qemu(bench, machine, disks);
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command.args(["-monitor", "none", "-serial", "stdio"]);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .context("running qemu-system-x86_64 (run ci/setup)")?;
    let pid = Pid::from_child(&child);
    let mut console = File::open(log).with_context(|| format!("reading {}", log.display()))?;
    let mut pending: Vec<u8> = Vec::new();
    let mut stopped: Option<(String, Instant)> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        match &stopped {
            None => {
                console.read_to_end(&mut pending)?;
                let mut start = 0;
                while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(&pending[start..start + end]).into_owned();
                    start += end + 1;
                    monitor.request(&line, disks.len());
                    if let Some(what) = watch(&line) {
                        // timeout(1) passes SIGTERM on to qemu, which quits.
                        let _ = kill_process(pid, Signal::TERM);
                        stopped = Some((what, Instant::now()));
                        break;
                    }
                }
                pending.drain(..start);
            }
            // timeout(1) runs qemu in its own process group: if qemu has
            // not quit 10 s after SIGTERM, the group is killed.
            Some((_, since)) if since.elapsed() > Duration::from_secs(10) => {
                let _ = kill_process_group(pid, Signal::KILL);
            }
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Outcome {
        timed_out: stopped.is_none() && timed_out(status),
        stopped: stopped.map(|(what, _)| what),
    })
}

/// timeout(1) exits 124 when the limit was hit (137 after --kill-after).
fn timed_out(status: std::process::ExitStatus) -> bool {
    matches!(status.code(), Some(124) | Some(137))
}

/// The `timeout ... qemu-system-x86_64 ...` command of a boot, without its
/// console's options, and its monitor.
fn qemu(bench: &Bench, machine: &Machine, disks: &[PathBuf]) -> (Command, Monitor) {
    let mut command = Command::new("timeout");
    command.args([
        "--kill-after=10",
        &format!("{}s", machine.timeout.as_secs()),
    ]);
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
        &machine.memory_mb.to_string(),
        "-display",
        "none",
    ]);
    if let Some(file) = &machine.ram_file {
        command.arg("-object").arg(format!(
            "memory-backend-file,id=umw-ram,size={}M,mem-path={},share=on",
            machine.memory_mb,
            file.display()
        ));
        command.args(["-machine", "memory-backend=umw-ram"]);
    }
    if !machine.warm_reset {
        command.arg("-no-reboot");
    }
    command.arg("-kernel").arg(&machine.kernel);
    if let Some(initrd) = &machine.initrd {
        command.arg("-initrd").arg(initrd);
    }
    command.arg("-append").arg(&machine.append);
    // Each disk a virtio-blk PCI device of its own name (vda, vdb...: the
    // guest's names, in the same order), which device_del can remove.
    for (disk, id) in disks.iter().zip(disk_ids()) {
        command.arg("-drive").arg(format!(
            "file={},if=none,id=drive-{id},format=raw",
            disk.display()
        ));
        command
            .arg("-device")
            .arg(format!("virtio-blk-pci,drive=drive-{id},id={id}"));
    }
    let monitor = Monitor::new(bench);
    command.arg("-qmp").arg(format!(
        "unix:{},server=on,wait=off",
        monitor.socket.display()
    ));
    (command, monitor)
}

/// vda, vdb, ...: the device ids of the disks, as the guest names them.
fn disk_ids() -> impl Iterator<Item = String> {
    ('a'..='z').map(|letter| format!("vd{letter}"))
}

/// QEMU's monitor (QMP) of one boot, on a socket of its own. The guest asks
/// for what only the host can do by a console line; the one request is
/// `UMW-QMP device_del vdX` (a disk that disappears under a mounted
/// filesystem, as a hot-unplugged disk does: QEMU asks the guest through
/// ACPI, and the guest's PCI hotplug driver removes the device). The answer
/// goes to the log `qmp.log`; the guest sees the disk go, or not.
struct Monitor {
    socket: PathBuf,
    log: PathBuf,
}

impl Monitor {
    fn new(bench: &Bench) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // A short path: a unix socket's name has at most 107 bytes.
        let socket = std::env::temp_dir().join(format!(
            "umw-qmp-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        Monitor {
            socket,
            log: bench.log("qmp.log"),
        }
    }

    /// Acts on `line` if it is a request for one of the boot's `disks`.
    fn request(&mut self, line: &str, disks: usize) {
        let Some(id) = line.trim_end().strip_prefix("UMW-QMP device_del ") else {
            return;
        };
        if !disk_ids().take(disks).any(|known| known == id) {
            self.note(&format!(
                "refused: device_del of {id:?}, not a disk of this boot"
            ));
            return;
        }
        let answer = self.device_del(id);
        self.note(&format!("device_del {id}: {answer}"));
    }

    fn device_del(&self, id: &str) -> String {
        use std::io::{BufRead, BufReader, Write};
        use std::os::unix::net::UnixStream;
        let exchange = || -> std::io::Result<String> {
            let stream = UnixStream::connect(&self.socket)?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut writer = stream;
            let mut line = String::new();
            reader.read_line(&mut line)?; // the greeting
            let mut answers = Vec::new();
            for command in [
                serde_json::json!({"execute": "qmp_capabilities"}),
                serde_json::json!({"execute": "device_del", "arguments": {"id": id}}),
            ] {
                writeln!(writer, "{command}")?;
                // Events may come before the answer.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    if line.contains("\"return\"") || line.contains("\"error\"") {
                        answers.push(line.trim().to_string());
                        break;
                    }
                }
            }
            Ok(answers.join(" "))
        };
        exchange().unwrap_or_else(|err| format!("failed: {err}"))
    }

    fn note(&self, text: &str) {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
        {
            let _ = writeln!(file, "{}: {text}", self.socket.display());
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn cmdline(image: &KernelImage, boot: &Boot) -> String {
    let mut line = format!(
        "{BASE_CMDLINE} umw.kernel={} umw.runs={} umw.suite_timeout={}",
        image.name,
        boot.runs,
        boot.suite_timeout.as_secs()
    );
    if !boot.append.is_empty() {
        line.push(' ');
        line.push_str(&boot.append);
    }
    if boot.interactive {
        line.push_str(" umw.shell=1");
    } else {
        line.push_str(&format!(" umw.suites={}", boot.suites.join(",")));
    }
    line
}

/// One boot of a suite that ends the VM with `reboot -n -f` instead of
/// /init's UMW-END (S4, shutdown-reboot): fresh disks, the console text, and
/// the disks kept for the host's checks until this is dropped.
pub struct RebootRun {
    pub disks: Disks,
    pub log: PathBuf,
    pub text: String,
    /// Set when the boot hit its time limit: what to report.
    pub timed_out: Option<String>,
}

/// Boots `image` with `suite` alone on fresh disks (the race disk made
/// `race`); `label` names the disks and the log (console-<label>.log),
/// `what` the progress line.
pub fn reboot_run(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    suite: &str,
    race: disks::Format,
    label: &str,
    what: &str,
) -> Result<RebootRun> {
    let disks = disks::fresh_with(bench, label, race)?;
    reboot_run_on(bench, image, initramfs, suite, disks, label, what)
}

/// The same on the disks of an earlier run (the next boot, which reads
/// what that run left).
pub fn reboot_run_on(
    bench: &Bench,
    image: &KernelImage,
    initramfs: &Initramfs,
    suite: &str,
    disks: Disks,
    label: &str,
    what: &str,
) -> Result<RebootRun> {
    let log = bench.log(&format!("console-{label}.log"));
    let boot = Boot::suites(vec![suite.to_string()], 1, image.name);
    let outcome = bench.progress.stage(what, Some(&log), || {
        run(bench, image, initramfs, &disks.images, &boot, &log)
    })?;
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    Ok(RebootRun {
        disks,
        log,
        text: String::from_utf8_lossy(&text).into_owned(),
        timed_out: outcome.timed_out.then(|| {
            format!(
                "the boot hit its time limit of {} s",
                boot.timeout.as_secs()
            )
        }),
    })
}
