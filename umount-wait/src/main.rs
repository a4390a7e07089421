//! `umount-wait`: unmount filesystems and return only when they are shut down.

mod exit;
mod json;
mod last_shutdown;
mod report;
mod stop;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use umount_wait::helper::{self, Helper, Helpers};
use umount_wait::loopdev::{self, LoopDevice};
use umount_wait::outcome::{Error, Report};
use umount_wait::shutdown::{self, Event, Plan, System};
use umount_wait::sys::{self, Probe};
use umount_wait::target::{self, Target};
use umount_wait::wait::{Caller, DryRun, Watcher};
use umount_wait::{mountinfo, wait, Mode, Options, Progress, WaitPath};

use exit::Exit;
use report::Printer;
use stop::StopSignals;
use umount_wait::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::for_parse_error(e.kind()).code());
        }
    };
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            report::stderr_line(format_args!("umount-wait: {e:#}"));
            Exit::System
        }
    };
    // Reported; now a Ctrl-C or SIGTERM that came ends the process by it.
    stop::die_by_received_signal();
    ExitCode::from(code.code())
}

/// The `--probe` line: its first word is the path a run takes by default,
/// `notify`, `kernel` or `fallback`.
fn probe_line(probe: Probe, notify: bool) -> String {
    match probe {
        Probe::Kernel if notify => {
            "notify (UMOUNT_NOTIFY supported: umount2(\"\", 0x20) = ENOENT; \
            one descriptor polled per filesystem, no child process; \
            UMOUNT_WAIT supported too: umount2(\"\", 0x10) = ENOENT)"
                .into()
        }
        Probe::Kernel => "kernel (UMOUNT_WAIT supported: umount2(\"\", 0x10) = ENOENT)".into(),
        Probe::Fallback => "fallback (no UMOUNT_WAIT: umount2(\"\", 0x10) = EINVAL; \
            waiting with inotify IN_UNMOUNT and an O_EXCL claim check)"
            .into(),
        Probe::Unexpected(errno) => format!(
            "fallback (unexpected answer to umount2(\"\", 0x10): {})",
            match errno {
                Some(e) => std::io::Error::from_raw_os_error(e.raw_os_error()).to_string(),
                None => "success".into(),
            }
        ),
    }
}

fn run(cli: &Cli) -> anyhow::Result<Exit> {
    let printer = Printer::new(cli.json, cli.quiet, cli.verbose);
    let probe = sys::probe();
    if cli.probe {
        printer.probe(&probe_line(probe, sys::notify_supported()));
        return Ok(Exit::Success);
    }
    if let Some(path) = &cli.last_shutdown {
        return Ok(last_shutdown::show(path, cli.json));
    }
    // What the kernel log says from here on about the devices of the
    // filesystems that shut down: a failed final writeback.
    if !cli.fake {
        umount_wait::kmsg::start();
    }

    // -N: everything after this happens in that mount namespace, where
    // the working directory is its root: relative targets are made
    // absolute first, against the one they were given in.
    let absolute_targets;
    let cli = match &cli.namespace {
        Some(_) if cli.targets.iter().any(|t| t.is_relative()) => {
            absolute_targets = Cli {
                targets: cli
                    .targets
                    .iter()
                    .map(|t| match target::Tag::parse(t) {
                        // LABEL=... is a tag, not a relative path.
                        Some(_) => t.clone(),
                        None => target::absolute(t).unwrap_or_else(|_| t.clone()),
                    })
                    .collect(),
                ..cli.clone()
            };
            &absolute_targets
        }
        _ => cli,
    };
    if let Some(ns) = &cli.namespace {
        let file = sys::mount_namespace_file(ns);
        if let Err(errno) = sys::enter_mount_namespace(&file) {
            report::stderr_line(format_args!(
                "umount-wait: entering the mount namespace {}: {}; nothing was unmounted",
                mountinfo::display(&file),
                std::io::Error::from_raw_os_error(errno.raw_os_error())
            ));
            return Ok(Exit::System);
        }
        if let Err((path, found)) = sys::check_kernel_views() {
            report::stderr_line(format_args!(
                "umount-wait: in the mount namespace {}, {path} is not the kernel's ({found}): \
                 its mount table cannot be trusted; nothing was unmounted",
                mountinfo::display(&file),
            ));
            return Ok(Exit::System);
        }
    }

    // Mistakes in the call itself: report them all, unmount nothing.
    let usage = cli.usage_errors();
    if !usage.is_empty() {
        return Ok(refuse_all(&printer, &usage));
    }

    let mode = Mode::from(cli.mode);
    let notify = probe == Probe::Kernel && sys::notify_supported();
    let path = match mode.choose(probe, notify) {
        Ok(path) => path,
        Err(kind) => {
            let all = [PathBuf::from("--all")];
            let names = if cli.all { &all[..] } else { &cli.targets[..] };
            let errors: Vec<Error> = names
                .iter()
                .map(|t| Error::new(t, kind.clone(), None))
                .collect();
            for e in &errors {
                printer.error(e, None);
            }
            return Ok(Exit::System);
        }
    };
    printer.verbose_note(&probe_line(probe, notify));
    if !cli.all && (cli.types.is_some() || cli.test_opts.is_some()) {
        printer.verbose_note("-t and -O select for --all only; TARGETs are unmounted whatever their type and options, as by umount(8)");
    }
    if cli.fake {
        return fake(cli, path, &printer);
    }
    // From here on, SIGINT and SIGTERM end a wait instead of the process.
    let signals = StopSignals::block().context("blocking SIGINT and SIGTERM")?;
    if cli.all {
        return unmount_all(cli, path, &printer, &signals);
    }
    unmount_targets(cli, path, &printer, signals.cancel(), None)
}

/// The targets, one after the other (`-R`, `-A`, `-d`); with `dry_run`
/// (`--fake`), every decision taken and every action recorded there
/// instead of made.
fn unmount_targets(
    cli: &Cli,
    path: WaitPath,
    printer: &Printer,
    cancel: umount_wait::Cancel<'_>,
    dry_run: Option<&DryRun>,
) -> anyhow::Result<Exit> {
    // The table is read once for every target, and again only when an
    // answer depends on a change ([`mountinfo::Snapshot`]).
    let table = mountinfo::Snapshot::read().context("reading /proc/self/mountinfo")?;
    let resolved = resolve_targets(cli, table.table());
    let mut duplicates: Vec<Error> = resolved
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| target::is_usage_error(&e.kind))
        .cloned()
        .collect();
    if cli.recursive {
        duplicates.extend(target::inside_trees(&resolved, table.table()));
    }
    if !duplicates.is_empty() {
        return Ok(refuse_all(printer, &duplicates));
    }

    // What the targets share: the helpers found for their types, and
    // whether /proc names handles, asked once and again only where an
    // unmount can change the answer.
    let found = helper::Found::default();
    let proc_fd = sys::ProcFd::default();
    let options = Options {
        force: cli.force,
        lazy: cli.lazy,
        read_only_on_failure: cli.read_only,
        read_only_if_unconfirmed: cli.read_only,
        shut_down_if_read_only_fails: false,
        this_mount_only: None,
        read_only_first: false,
        timeout: cli.timeout,
        watch_blockers: printer.wants_blockers(),
        cancel,
        caller: Caller::find(table.table()).ok(),
        // Never under -N: /sbin there is whatever the namespace's maker
        // mounted, and root would run their program.
        helpers: (!cli.internal_only && cli.namespace.is_none()).then_some(Helpers {
            verbose: cli.verbose,
            found: Some(&found),
        }),
        proc_fd: Some(&proc_fd),
        dry_run,
        path_asked: Mode::from(cli.mode) != Mode::Auto,
    };
    let mut run = Targets {
        path,
        options: &options,
        printer,
        // The command has no other thread.
        watcher: Watcher::one_thread(),
        table,
    };
    let mut codes = Vec::new();
    for r in resolved {
        let code = match r {
            Ok(t) if cli.detach_loop => {
                let loops = run.loops_under(&t, cli.recursive);
                let code = run.unmount(&t, cli.recursive);
                run.detach_loops(loops, code)
            }
            Ok(t) => run.unmount(&t, cli.recursive),
            Err(e) => {
                printer.error(&e, Some(path));
                Exit::for_error(&e)
            }
        };
        codes.push(code);
    }
    Ok(Exit::combine(&codes))
}

/// `--all`: every selected filesystem, one deadline, one summary.
fn unmount_all(
    cli: &Cli,
    path: WaitPath,
    printer: &Printer,
    signals: &StopSignals,
) -> anyhow::Result<Exit> {
    let plan = Plan {
        filter: cli.filter(),
        force_last_pass: cli.force,
        timeout: cli.timeout,
        watch_blockers: printer.wants_blockers(),
        cancel: signals.cancel(),
        // The command has no other thread.
        one_thread: true,
    };
    let observer = |p: Progress<'_>| printer.progress(p);
    let mut host = System::new(path, &observer).path_asked(Mode::from(cli.mode) != Mode::Auto);
    let mut codes = Vec::new();
    let summary = shutdown::run(&plan, &mut host, &mut |event| match event {
        Event::Pass {
            number,
            last,
            candidates,
        } => printer.pass(number, last, candidates, plan.force_last_pass),
        Event::Retry { pass, error } => printer.retry(pass, error),
        Event::Done(entry) => {
            codes.push(Exit::for_entry(entry));
            printer.entry(entry, path);
        }
    })
    .context("--all: reading the mount table")?;
    let exit = Exit::combine(&codes);
    printer.summary(&summary, i32::from(exit.code()));
    // The final verdict, for the next boot.
    last_shutdown::record(&summary, i32::from(exit.code()), printer);
    Ok(exit)
}

/// The targets as umount(8) takes them (relative paths, devices, sources;
/// `-c`), each `-A` target followed by the other mounts of its
/// filesystem, the newest first.
fn resolve_targets(cli: &Cli, mounts: &mountinfo::Table) -> Vec<Result<Target, Error>> {
    let lookup = target::Lookup {
        follow: !cli.no_follow,
        canonicalize: !cli.no_canonicalize,
        // Not under -N: blkid would be looked up in that namespace's PATH.
        probe_tags: cli.namespace.is_none(),
    };
    let mut resolved = target::resolve_all_with(&cli.targets, lookup, mounts);
    if cli.recursive {
        resolved = resolved
            .into_iter()
            .map(|r| r.map(|t| t.bottom_of_stack(mounts)))
            .collect();
    }
    if !cli.all_targets {
        return resolved;
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in resolved {
        match r {
            Ok(t) => out.extend(
                target::all_mounts_of(&t, mounts)
                    .into_iter()
                    .filter(|m| seen.insert(m.mount.id))
                    .map(Ok),
            ),
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// `--fake`: what would be unmounted, in order, on stdout; nothing
/// changed. The real run's own path, each action recorded instead of
/// made ([`DryRun`]): for targets, through [`Options::dry_run`]; for
/// `--all`, the engine ([`shutdown::run`]) over a host that records
/// ([`shutdown::Recording`]).
fn fake(cli: &Cli, path: WaitPath, printer: &Printer) -> anyhow::Result<Exit> {
    let dry = DryRun::default();
    let exit = match cli.all {
        true => {
            let plan = Plan {
                filter: cli.filter(),
                force_last_pass: cli.force,
                ..Plan::default()
            };
            let mut host =
                shutdown::Recording::new(path, &dry).path_asked(Mode::from(cli.mode) != Mode::Auto);
            shutdown::run(&plan, &mut host, &mut |_| {}).context("--fake --all")?;
            Exit::Success
        }
        false => unmount_targets(cli, path, printer, umount_wait::Cancel::never(), Some(&dry))?,
    };
    for line in dry.take_lines() {
        printer.plan(&line);
    }
    Ok(exit)
}

fn refuse_all(printer: &Printer, errors: &[Error]) -> Exit {
    for e in errors {
        printer.error(e, None);
    }
    report::stderr_line(format_args!("umount-wait: nothing was unmounted"));
    Exit::Usage
}

/// [`print_result`], but for a dry run's results that are not errors:
/// the plan says those.
fn print_outcome(
    result: &Result<Report, Error>,
    path: WaitPath,
    printer: &Printer,
    dry_run: bool,
) -> Exit {
    match result {
        Ok(report) if dry_run => Exit::for_report(report),
        result => print_result(result, path, printer),
    }
}

/// Prints what happened to one target; its exit code.
fn print_result(result: &Result<Report, Error>, path: WaitPath, printer: &Printer) -> Exit {
    match result {
        Ok(report) => {
            printer.report(report);
            Exit::for_report(report)
        }
        Err(e) => {
            printer.error(e, Some(path));
            Exit::for_error(e)
        }
    }
}

/// `-d`, once the target's unmount ended with `code`: its loop device
/// detached if it shut down; a device left bound makes it a failure.
fn detach_loop(
    lo: Option<umount_wait::loopdev::LoopDevice>,
    code: Exit,
    options: &Options<'_>,
    printer: &Printer,
) -> Exit {
    match lo {
        Some(lo) if code == Exit::Success => {
            let deadline = umount_wait::duration::deadline(
                std::time::Instant::now(),
                options.timeout.unwrap_or(LOOP_DETACH_TIMEOUT),
            );
            let detach = umount_wait::loopdev::detach(&lo, deadline, options.cancel);
            printer.loop_detach(&detach);
            match detach.outcome {
                umount_wait::loopdev::LoopOutcome::Detached { .. } => code,
                _ => Exit::Failure,
            }
        }
        _ => code,
    }
}

/// How long `-d` waits for the loop device to unbind without `--timeout`.
const LOOP_DETACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the targets of one command share, one after the other: the wait
/// path and options, the fallback's inotify instance (closing one waits
/// for a grace period, which was most of what a fallback wait over many
/// targets cost) and the mount table, read once
/// ([`mountinfo::Snapshot`]).
struct Targets<'a> {
    path: WaitPath,
    options: &'a Options<'a>,
    printer: &'a Printer,
    watcher: Watcher,
    table: mountinfo::Snapshot,
}

impl Targets<'_> {
    /// Unmounts `t` (with `recursive`, as `-R`: the mounts below first)
    /// and prints what happened; its exit code.
    fn unmount(&mut self, t: &Target, recursive: bool) -> Exit {
        let (path, options, printer) = (self.path, self.options, self.printer);
        if recursive {
            return self.unmount_recursive(t);
        }
        // A dry run says it in its plan.
        if options.dry_run.is_none() && printer.is_verbose() {
            let how = match options.helpers.and_then(|h| Helper::for_mount(&t.mount, h)) {
                Some(helper) => format!(
                    "by its helper {}, then the fallback path",
                    mountinfo::display(&helper.program)
                ),
                None => format!("by the {} path", wait::path_for(t, path, options).name()),
            };
            printer.verbose_note(&format!(
                "{}: unmounting {} ({} on {}, {}) {how}",
                mountinfo::display(&t.given),
                mountinfo::display(&t.path),
                mountinfo::display_bytes(&t.mount.source),
                t.mount.dev,
                mountinfo::display_bytes(t.mount.fstype.as_ref()),
            ));
        }
        let result = wait::unmount_target(
            t,
            path,
            options,
            &|p| printer.progress(p),
            &mut self.watcher,
            &mut self.table,
        );
        self.print(&result, t)
    }

    /// `-R`: the mounts below `t` first, children first in mount order (as
    /// umount(8)); `t` itself only when all of them are gone. Its code is
    /// that of the submount that stopped it, if one did.
    fn unmount_recursive(&mut self, t: &Target) -> Exit {
        let (path, printer, dry_run) = (self.path, self.printer, self.options.dry_run);
        let mut failed = None;
        let result = wait::unmount_recursive(
            t,
            path,
            self.options,
            &|p| printer.progress(p),
            &mut self.watcher,
            &mut self.table,
            &mut |sub, sub_path| {
                let code = print_outcome(sub, sub_path, printer, dry_run.is_some());
                if code != Exit::Success {
                    failed = Some(code);
                }
            },
        );
        let code = self.print(&result, t);
        failed.unwrap_or(code)
    }

    /// Prints what happened to the target `t` (in a dry run, only what
    /// failed: the plan says the rest); its exit code. An error names the
    /// path `t` took ([`wait::path_for`]), not the run's.
    fn print(&self, result: &Result<Report, Error>, t: &Target) -> Exit {
        print_outcome(
            result,
            wait::path_for(t, self.path, self.options),
            self.printer,
            self.options.dry_run.is_some(),
        )
    }

    /// `-d`: the loop devices under `t` (with `recursive`, under the mounts
    /// below it too, as umount(8) -R -d), looked up before the unmount (one
    /// set up with autoclear unbinds itself, and then nothing says it was
    /// one). The mounts below come from the table as read, again if it
    /// lists some and changed since.
    fn loops_under(&mut self, t: &Target, recursive: bool) -> Vec<LoopDevice> {
        let mut mounts = vec![t.mount.clone()];
        let below = |table: &mountinfo::Table| -> Vec<mountinfo::Mount> {
            table
                .submounts_children_first(t.mount.id)
                .into_iter()
                .cloned()
                .collect()
        };
        if recursive && !below(self.table.table()).is_empty() {
            if let Ok(table) = self.table.current() {
                mounts.extend(below(table));
            }
        }
        let mut loops: Vec<LoopDevice> = Vec::new();
        for m in mounts {
            if let Some(lo) = loopdev::of(m.dev, std::path::Path::new(&m.source)) {
                if !loops.iter().any(|l| l.dev == lo.dev) {
                    loops.push(lo);
                }
            }
        }
        loops
    }

    /// `-d`, once the unmount ended with `code`: each loop device whose
    /// filesystem is mounted nowhere in this namespace any more is
    /// detached (with `-A`, the filesystem's other mounts still use it
    /// until the last one goes: it is detached then, not before); a device
    /// left bound makes it a failure. The table is read again when there
    /// is a loop device to ask about (the unmount changed it).
    fn detach_loops(&mut self, loops: Vec<LoopDevice>, code: Exit) -> Exit {
        let mut worst = code;
        // In a dry run, the table as it would be.
        let gone = self.options.dry_run.map(DryRun::gone).unwrap_or_default();
        for lo in loops {
            let mounted = self
                .table
                .current()
                .is_ok_and(|t| t.of_dev(lo.dev).any(|m| !gone.contains(&m.id)));
            if mounted {
                continue;
            }
            if let Some(dry) = self.options.dry_run {
                if code == Exit::Success {
                    dry.then(&format!(", then detach {}", mountinfo::display(&lo.node)));
                }
                continue;
            }
            if detach_loop(Some(lo), code, self.options, self.printer) != code {
                worst = Exit::Failure;
            }
        }
        worst
    }
}
