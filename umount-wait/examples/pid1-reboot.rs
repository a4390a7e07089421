//! An init that unmounts in its own process at shutdown, as Android's init
//! does, through the library: every filesystem waited for under one
//! deadline of its own, with no child process on a kernel with
//! `UMOUNT_NOTIFY`. Run as PID 1 (exec'd by the init it replaces), it is
//! what the global init can use where `umount2(.., UMOUNT_WAIT)` would
//! sleep beyond any deadline: SIGKILL never reaches PID 1.
//!
//! ```text
//! pid1-reboot [--apps "PID..."] [--grace SECS] [--deadline DURATION]
//!             [--exclude DIR]... -- COMMAND [ARG...]
//! ```
//!
//! 1. SIGTERM to the apps, `--grace` seconds (default 1), SIGKILL to them;
//!    then `sync()`.
//! 2. Every mounted filesystem but the API ones and those under `--exclude`
//!    unmounted and waited for, deepest first, one deadline for all
//!    (`--deadline`, default 20s): the library's `--all` engine
//!    ([`umount_wait::shutdown::run`]); what is left at the deadline is
//!    made read-only, and said.
//! 3. A line per filesystem and one `pid1-reboot: status N` line on the
//!    console (0: every filesystem shut down; 64: some not; the codes of
//!    `umount-wait --all`), then `COMMAND` is exec'd with `UMW_STATUS=N` in
//!    its environment: the one that reboots. As PID 1 the process never
//!    exits: the kernel would panic.
//!
//! The bench's shutdown-reboot test runs it as the guest's PID 1 (modes
//! `pid1` and `pid1+ns-survivor`, qemu/guest/suites/shutdown-reboot).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use umount_wait::select::Filter;
use umount_wait::shutdown::{self, Event, Plan, System};
use umount_wait::sys::{self, Probe};
use umount_wait::{duration, Cancel, Mode, Outcome, Progress};

struct Args {
    apps: Vec<i32>,
    grace: Duration,
    deadline: Duration,
    exclude: Vec<PathBuf>,
    then: Vec<OsString>,
}

fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut parsed = Args {
        apps: Vec::new(),
        grace: Duration::from_secs(1),
        deadline: Duration::from_secs(20),
        exclude: Vec::new(),
        then: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.into_string().ok())
                .ok_or(format!("{} needs a value", arg.to_string_lossy()))
        };
        match arg.to_str() {
            Some("--apps") => {
                parsed.apps = value()?
                    .split_whitespace()
                    .map(|p| p.parse().map_err(|_| format!("--apps: not a pid: {p}")))
                    .collect::<Result<_, _>>()?
            }
            Some("--grace") => {
                parsed.grace = Duration::from_secs(
                    value()?
                        .parse()
                        .map_err(|_| "--grace: whole seconds".to_string())?,
                )
            }
            Some("--deadline") => parsed.deadline = duration::parse(&value()?)?,
            Some("--exclude") => parsed.exclude.push(PathBuf::from(value()?)),
            Some("--") => {
                parsed.then = args.collect();
                break;
            }
            _ => return Err(format!("unknown argument {}", arg.to_string_lossy())),
        }
    }
    if parsed.then.is_empty() {
        return Err("no command after --: what reboots".into());
    }
    Ok(parsed)
}

fn signal_apps(apps: &[i32], signal: rustix::process::Signal) {
    for &pid in apps {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

fn main() {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("pid1-reboot: {why}");
            std::process::exit(1);
        }
    };
    let status = shut_down(&args);
    println!("pid1-reboot: status {status}");
    let error = Command::new(&args.then[0])
        .args(&args.then[1..])
        .env("UMW_STATUS", status.to_string())
        .exec();
    // Only reached when the exec failed; PID 1 must not exit: reboot.
    eprintln!("pid1-reboot: exec {:?}: {error}", args.then[0]);
    // SAFETY: reboot(2) with the restart command takes no pointer.
    unsafe { nix::libc::reboot(nix::libc::RB_AUTOBOOT) };
}

/// Steps 1 and 2; the status of step 3.
fn shut_down(args: &Args) -> i32 {
    signal_apps(&args.apps, rustix::process::Signal::TERM);
    std::thread::sleep(args.grace);
    signal_apps(&args.apps, rustix::process::Signal::KILL);
    rustix::fs::sync();

    let probe = sys::probe();
    let path = Mode::Auto
        .choose(probe, probe == Probe::Kernel && sys::notify_supported())
        .expect("auto always has a path");
    println!("pid1-reboot: pid {}, {path:?} path", std::process::id());
    let plan = Plan {
        filter: Filter {
            exclude: args.exclude.clone(),
            ..Filter::default()
        },
        force_last_pass: false,
        timeout: Some(args.deadline),
        watch_blockers: false,
        // Nothing cancels the init's own deadline.
        cancel: Cancel::never(),
        // This init has no other thread.
        one_thread: true,
    };
    let observer = |_: Progress<'_>| {};
    let mut host = System::new(path, &observer);
    let mut all = 0;
    let mut done = 0;
    let summary = shutdown::run(&plan, &mut host, &mut |event| {
        if let Event::Done(entry) = event {
            all += 1;
            let what = match &entry.result {
                Ok(report) => {
                    if matches!(
                        report.outcome,
                        Outcome::ShutDown | Outcome::Unmounted { .. } | Outcome::RootReadOnly
                    ) {
                        done += 1;
                    }
                    format!("{}: {:?}", report.target.display(), report.outcome)
                }
                Err(error) => error.to_string(),
            };
            println!("pid1-reboot: {what}");
        }
    });
    match summary {
        Ok(summary) => {
            println!(
                "pid1-reboot: {all} filesystem(s), {done} shut down, in {} ms",
                summary.elapsed.as_millis()
            );
            if done == all {
                0
            } else {
                64
            }
        }
        Err(e) => {
            println!("pid1-reboot: reading the mount table: {e}");
            2
        }
    }
}
