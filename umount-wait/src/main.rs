//! `umount-wait`: unmount filesystems and return only when they are shut down.

mod cli;
mod report;
mod stop;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use umount_wait::outcome::{Error, ErrorKind, Report};
use umount_wait::select::Filter;
use umount_wait::shutdown::{self, Event, Plan, System};
use umount_wait::sys::{self, Probe};
use umount_wait::target::{self, Target};
use umount_wait::wait::Watcher;
use umount_wait::{mountinfo, wait, Mode, Options, Progress, WaitPath};

use cli::{Cli, Exit};
use report::Printer;
use stop::StopSignals;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(cli::exit_for_parse_error(e.kind()) as u8);
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("umount-wait: {e:#}");
            ExitCode::from(Exit::System as u8)
        }
    }
}

/// The `--probe` line: its first word is `kernel` or `fallback`.
fn probe_line(probe: Probe) -> String {
    match probe {
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
        printer.probe(&probe_line(probe));
        return Ok(Exit::Success);
    }

    // Mistakes in the call itself: report them all, unmount nothing.
    let mut usage: Vec<Error> = cli
        .targets
        .iter()
        .chain(&cli.include)
        .chain(&cli.exclude)
        .filter_map(|t| target::normalize(t).err())
        .collect();
    for (first, again) in target::textual_duplicates(&cli.targets) {
        usage.push(Error::new(
            &cli.targets[again],
            ErrorKind::Duplicate {
                first: cli.targets[first].clone(),
            },
            None,
        ));
    }
    if !usage.is_empty() {
        return Ok(refuse_all(&printer, &usage));
    }

    let mode = Mode::from(cli.mode);
    let path = match mode.choose(probe) {
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
    printer.verbose_note(&probe_line(probe));
    // From here on, SIGINT and SIGTERM end a wait instead of the process.
    let signals = StopSignals::block().context("blocking SIGINT and SIGTERM")?;
    if cli.all {
        return unmount_all(cli, path, &printer, &signals);
    }

    let mounts = mountinfo::read(None).context("reading /proc/self/mountinfo")?;
    let resolved = target::resolve_all(&cli.targets, !cli.no_follow, &mounts);
    let mut duplicates: Vec<Error> = resolved
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| target::is_usage_error(&e.kind))
        .cloned()
        .collect();
    if cli.recursive {
        duplicates.extend(target::inside_trees(&resolved, &mounts));
    }
    if !duplicates.is_empty() {
        return Ok(refuse_all(&printer, &duplicates));
    }

    let options = Options {
        force: cli.force,
        lazy: cli.lazy,
        read_only_on_failure: cli.read_only,
        read_only_if_unconfirmed: cli.read_only,
        timeout: cli.timeout,
        watch_blockers: printer.wants_blockers(),
        cancel: signals.cancel(),
    };
    let mut codes = Vec::new();
    // One inotify instance for every target: closing one waits for a grace
    // period, which is most of what a fallback wait over many targets costs.
    let mut watcher = Watcher::default();
    for r in resolved {
        let code = match r {
            Ok(t) if cli.recursive => unmount_recursive(&t, path, &options, &printer, &mut watcher),
            Ok(t) => unmount_one(&t, path, &options, &printer, &mut watcher),
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
    let normal = |prefixes: &[PathBuf]| -> Vec<PathBuf> {
        prefixes
            .iter()
            .filter_map(|p| target::normalize(p).ok())
            .collect()
    };
    let plan = Plan {
        filter: Filter {
            include: normal(&cli.include),
            exclude: normal(&cli.exclude),
            types: cli.types.clone(),
            include_api: cli.include_api,
        },
        force_last_pass: cli.force,
        timeout: cli.timeout,
        watch_blockers: printer.wants_blockers(),
        cancel: signals.cancel(),
    };
    let observer = |p: Progress<'_>| printer.progress(p);
    let mut host = System {
        path,
        observer: &observer,
    };
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
    printer.summary(&summary, exit as i32);
    Ok(exit)
}

fn refuse_all(printer: &Printer, errors: &[Error]) -> Exit {
    for e in errors {
        printer.error(e, None);
    }
    eprintln!("umount-wait: nothing was unmounted");
    Exit::Usage
}

fn unmount_one(
    t: &Target,
    path: WaitPath,
    options: &Options<'_>,
    printer: &Printer,
    watcher: &mut Watcher,
) -> Exit {
    printer.verbose_note(&format!(
        "{}: unmounting {} ({} on {}, {}) by the {} path",
        mountinfo::display(&t.given),
        mountinfo::display(&t.path),
        mountinfo::display_bytes(&t.mount.source),
        t.mount.dev,
        t.mount.fstype,
        path.name()
    ));
    let result = wait::unmount_target(t, path, options, &|p| printer.progress(p), watcher);
    print_result(&result, path, printer)
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

/// `-R`: the mounts below `t` first, deepest first; `t` itself only when all
/// of them are gone. Its code is that of the submount that stopped it, if
/// one did.
fn unmount_recursive(
    t: &Target,
    path: WaitPath,
    options: &Options<'_>,
    printer: &Printer,
    watcher: &mut Watcher,
) -> Exit {
    let mut failed = None;
    let result = wait::unmount_recursive(
        t,
        path,
        options,
        &|p| printer.progress(p),
        watcher,
        &mut |sub| {
            let code = print_result(sub, path, printer);
            if code != Exit::Success {
                failed = Some(code);
            }
        },
    );
    let code = print_result(&result, path, printer);
    failed.unwrap_or(code)
}
