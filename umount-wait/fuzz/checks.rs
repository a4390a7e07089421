//! What the fuzz targets check, one function per target, each taking the
//! fuzzer's bytes and panicking when a property does not hold.
//!
//! The fuzz crate's targets (`fuzz_targets/`) call these, and so does
//! umount-wait's `tests/fuzz_corpus.rs`, which replays the committed corpus
//! through them on stable in every `cargo test`. Nothing here unmounts or
//! runs anything: the command line is parsed and validated, never run.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{CommandFactory, FromArgMatches};
use umount_wait::cli::Cli;
use umount_wait::mountinfo::{self, DevId, Mount};
use umount_wait::select::{Filter, OptionList, TypeList};
use umount_wait::verdict::{self, Found};
use umount_wait::{duration, shutdown, target, Mode};

/// `mountinfo::parse` on any bytes: an error or one mount per line, and
/// the submount orders of the table put every mount before its parent.
pub fn mountinfo(data: &[u8]) {
    let Ok(mounts) = mountinfo::parse(data) else {
        return;
    };
    let lines = data.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    assert_eq!(mounts.len(), lines.count(), "one mount per line");
    let filter = Filter::default();
    for m in &mounts {
        let _ = mountinfo::display(&m.mount_point);
        let _ = mountinfo::display_bytes(&m.source);
        let _ = (m.may_not_answer(), filter.selects(m));
    }
    let unique: HashSet<u64> = mounts.iter().map(|m| m.id).collect();
    let mounts = mountinfo::Table::new(mounts);
    for top in mounts.iter().take(8) {
        let children_first = mounts.submounts_children_first(top.id);
        let deepest_first = mounts.submounts_deepest_first(top.id);
        for order in [&children_first, &deepest_first] {
            assert!(
                order.iter().all(|m| m.id != top.id),
                "the top is not below itself"
            );
            let mut seen = HashSet::new();
            assert!(
                order.iter().all(|m| seen.insert(*m as *const Mount)),
                "a mount listed twice"
            );
            if unique.len() == mounts.len() {
                children_before_parents(order);
            }
        }
        if unique.len() == mounts.len() {
            let a: HashSet<u64> = children_first.iter().map(|m| m.id).collect();
            let b: HashSet<u64> = deepest_first.iter().map(|m| m.id).collect();
            assert_eq!(a, b, "the two orders of the mounts below {}", top.id);
        }
    }
}

/// In an unmount order, a mount comes before its parent.
fn children_before_parents(order: &[&Mount]) {
    for (i, m) in order.iter().enumerate() {
        if let Some(p) = order.iter().position(|p| p.id == m.parent_id) {
            assert!(
                p > i,
                "mount {} listed after its parent {}",
                m.id,
                m.parent_id
            );
        }
    }
}

/// The kernel's `mangle()` (fs/proc_namespace.c): space, tab, newline and
/// backslash as octal escapes.
fn mangle(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    for &b in field {
        if b" \t\n\\".contains(&b) {
            out.extend(format!("\\{b:03o}").bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// A mountinfo line as the kernel writes it, from fields the fuzzer
/// chooses, parses back to those fields. The input: 24 bytes of numbers
/// (mount id, parent id, major, minor), then the root, the mount point,
/// the mount options, the optional fields (separated by spaces), the
/// type, the source and the superblock options, separated by NUL bytes
/// (which no field can hold).
pub fn mountinfo_roundtrip(data: &[u8]) {
    let mut header = [0u8; 24];
    let n = data.len().min(24);
    header[..n].copy_from_slice(&data[..n]);
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap());
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap());
    let (id, parent_id) = (u64_at(0), u64_at(8));
    let dev = DevId {
        major: u32_at(16),
        minor: u32_at(20),
    };
    let mut parts = data[n..].split(|b| *b == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (root, mount_point, mount_options) = (next(), next(), next());
    let optional = next();
    let (fstype, source, super_options) = (next(), next(), next());
    // The kernel never writes a lone "-" before the separator: roots and
    // mount points are paths, the optional fields are tags (shared:N).
    if [root, mount_point, mount_options]
        .iter()
        .any(|f| mangle(f) == b"-")
    {
        return;
    }
    let optional: Vec<&[u8]> = optional
        .split(|b| *b == b' ')
        .filter(|f| !f.is_empty() && *f != b"-" && !f.contains(&b'\n'))
        .collect();

    let mut line = format!("{id} {parent_id} {dev} ").into_bytes();
    for field in [root, mount_point, mount_options] {
        line.extend(mangle(field));
        line.push(b' ');
    }
    for field in optional {
        line.extend(field);
        line.push(b' ');
    }
    line.extend(b"- ");
    line.extend(mangle(fstype));
    line.push(b' ');
    line.extend(mangle(source));
    line.push(b' ');
    line.extend(mangle(super_options));

    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let expected = Mount {
        id,
        parent_id,
        dev,
        root: PathBuf::from(OsString::from_vec(root.to_vec())),
        mount_point: PathBuf::from(OsString::from_vec(mount_point.to_vec())),
        fstype: text(fstype),
        source: OsString::from_vec(source.to_vec()),
        options: format!("{},{}", text(mount_options), text(super_options)),
    };
    let parsed = mountinfo::parse_line(&line);
    assert_eq!(parsed.as_ref(), Ok(&expected), "{:?}", text(&line));
    let mut table = line.clone();
    table.push(b'\n');
    table.extend(&line);
    assert_eq!(
        mountinfo::parse(&table),
        Ok(vec![expected.clone(), expected])
    );
}

/// `duration::parse`: a duration it accepts is longer than zero, makes a
/// deadline (and `--all`'s reserve) without overflow, and, below a
/// century, shows as a duration it accepts again.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(d) = duration::parse(text) else {
        return;
    };
    assert!(!d.is_zero(), "{text:?} taken as a timeout of zero");
    // Deadlines are made by duration::deadline, which never overflows (a
    // timeout past the clock is one that never comes); --all's reserve
    // is within the timeout.
    let now = Instant::now();
    let deadline = duration::deadline(now, d);
    assert!(
        deadline > now,
        "{text:?}: {d:?} made a deadline that has come"
    );
    assert!(
        shutdown::reserve(d) <= d,
        "{text:?}: the reserve is past the timeout"
    );
    let _ = duration::deadline(now, d - shutdown::reserve(d));
    // show() is exact enough below a century (f64 seconds on the way back).
    if d >= Duration::from_millis(1) && d <= Duration::from_secs(100 * 365 * 24 * 3600) {
        let shown = duration::show(d);
        let again = duration::parse(&shown)
            .unwrap_or_else(|e| panic!("{text:?} is shown as {shown:?}, refused: {e}"));
        // show() keeps whole milliseconds, or tenths above a second.
        let off = again.abs_diff(d);
        assert!(
            off <= Duration::from_millis(51),
            "{text:?} ({d:?}) shown as {shown:?} ({again:?})"
        );
    }
}

/// `-t` and `-O` (`TypeList`, `OptionList`): refused exactly when an item
/// is empty, and a list selects what it names. The input: the list, then
/// after a newline a type or an option string to match.
pub fn lists(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (list, probe) = text.split_once('\n').unwrap_or((text, ""));
    type_list(list, probe);
    option_list(list, probe);
    command_line_lists(list);
}

fn type_list(list: &str, probe: &str) {
    let (negated, rest) = match list.strip_prefix("no") {
        Some(rest) => (true, rest),
        None => (false, list),
    };
    let parsed = TypeList::parse(list);
    assert_eq!(
        parsed.is_ok(),
        rest.split(',').all(|item| !item.is_empty()),
        "-t {list:?}: {parsed:?}"
    );
    let Ok(types) = parsed else { return };
    let excluded: Vec<&str> = rest
        .split(',')
        .filter_map(|item| item.strip_prefix("no").filter(|name| !name.is_empty()))
        .collect();
    for item in rest.split(',') {
        match item.strip_prefix("no").filter(|name| !name.is_empty()) {
            Some(name) => assert!(!types.matches(name), "-t {list:?} selects {name:?}"),
            None if !excluded.iter().any(|x| x.eq_ignore_ascii_case(item)) => {
                assert_eq!(types.matches(item), !negated, "-t {list:?}, type {item:?}");
                let upper = item.to_ascii_uppercase();
                assert_eq!(
                    types.matches(&upper),
                    !negated,
                    "-t {list:?}, type {upper:?}"
                );
            }
            None => {}
        }
    }
    let _ = types.matches(probe);
}

/// One item of an `-O` list: name, value, wanted (the oracle's reading).
fn option_item(item: &str) -> (&str, Option<&str>, bool) {
    let (item, wanted) = if let Some(literal) = item.strip_prefix('+') {
        (literal, true)
    } else if let Some(negated) = item.strip_prefix("no") {
        (negated, false)
    } else {
        (item, true)
    };
    match item.split_once('=') {
        Some((name, value)) => (name, Some(value), wanted),
        None => (item, None, wanted),
    }
}

fn option_list(list: &str, probe: &str) {
    let items: Vec<_> = list.split(',').map(option_item).collect();
    let parsed = OptionList::parse(list);
    assert_eq!(
        parsed.is_ok(),
        items.iter().all(|(name, _, _)| !name.is_empty()),
        "-O {list:?}: {parsed:?}"
    );
    let Ok(options) = parsed else { return };
    // The options a mount has when it has exactly the wanted ones.
    let wanted: Vec<_> = items.iter().filter(|i| i.2).collect();
    let set: Vec<String> = wanted
        .iter()
        .map(|(name, value, _)| match value {
            Some(value) => format!("{name}={value}"),
            None => name.to_string(),
        })
        .collect();
    let clash = items.iter().filter(|i| !i.2).any(|(name, value, _)| {
        wanted
            .iter()
            .any(|(n, v, _)| n == name && value.is_none_or(|value| *v == Some(value)))
    });
    assert_eq!(
        options.matches(&set.join(",")),
        !clash,
        "-O {list:?} on {:?}",
        set.join(",")
    );
    let _ = options.matches(probe);
}

/// `-t LIST` and `-O LIST` on the command line: a `-t` that reads as a
/// duration is refused (the old timeout option), and otherwise each is
/// the list its parser makes.
fn command_line_lists(list: &str) {
    if list.starts_with('-') {
        return; // clap takes it for an option
    }
    let parse = |option: &str| parse_args(["umount-wait", "-a", option, list]);
    match parse("-t") {
        Ok(cli) => {
            assert!(duration::parse(list).is_err(), "-t {list:?} taken");
            assert_eq!(cli.types, Some(TypeList::parse(list).unwrap()));
        }
        Err(e) if duration::parse(list).is_ok() => {
            assert!(e.to_string().contains("--timeout"), "-t {list:?}: {e}")
        }
        Err(_) => assert!(TypeList::parse(list).is_err(), "-t {list:?} refused"),
    }
    match parse("-O") {
        Ok(cli) => assert_eq!(cli.test_opts, Some(OptionList::parse(list).unwrap())),
        Err(_) => assert!(OptionList::parse(list).is_err(), "-O {list:?} refused"),
    }
}

/// `Cli::try_parse_from`, with the clap command built once per process
/// (as `main` does) instead of once per call: the same parse, faster.
fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    static COMMAND: std::sync::OnceLock<clap::Command> = std::sync::OnceLock::new();
    let command = COMMAND.get_or_init(Cli::command);
    let mut matches = command.clone().try_get_matches_from(args)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut Cli::command()))
}

/// The command line, parsed and validated as `main` does before it acts
/// (never run): the input is the arguments, separated by NUL bytes.
pub fn cli(data: &[u8]) {
    let args = data
        .split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()));
    let cli = match parse_args(std::iter::once(OsString::from("umount-wait")).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = Mode::from(cli.mode);
    if cli.probe {
        assert!(
            cli.targets.is_empty() && !cli.all && cli.timeout.is_none(),
            "{cli:?}"
        );
        return;
    }
    if cli.all {
        assert!(cli.targets.is_empty(), "--all with targets: {cli:?}");
        assert!(!(cli.lazy || cli.recursive || cli.no_follow || cli.all_targets));
    } else {
        assert!(
            !cli.targets.is_empty(),
            "neither --all nor a target: {cli:?}"
        );
    }
    if !cli.targets.is_empty() {
        assert!(cli.include.is_empty() && cli.exclude.is_empty() && !cli.include_api);
    }
    assert!(!(cli.quiet && cli.verbose), "{cli:?}");
    assert!(!(cli.all_targets && cli.recursive), "{cli:?}");
    if let Some(d) = cli.timeout {
        assert!(!d.is_zero(), "--timeout of zero: {cli:?}");
        let now = Instant::now();
        assert!(duration::deadline(now, d) > now, "--timeout {d:?}");
    }

    let usage = cli.usage_errors();
    for e in &usage {
        let _ = e.to_string();
    }
    let filter = cli.filter();
    if usage.is_empty() {
        let mut prefixes = cli.include.iter().chain(&cli.exclude);
        assert!(prefixes.all(|p| p.is_absolute()), "{cli:?}");
        assert_eq!(filter.include.len(), cli.include.len());
        assert_eq!(filter.exclude.len(), cli.exclude.len());
    }
    for p in filter.include.iter().chain(&filter.exclude) {
        let again = target::normalize(p).ok();
        assert_eq!(again.as_ref(), Some(p), "normalized twice");
    }
}

/// `verdict::scan` on any bytes, as `--last-shutdown` reads pstore's pmsg
/// files (other writers' records around ours): never a panic; every
/// verdict found is whole (it encodes to a record that reads back the
/// same, fitted to a buffer it fits, and its text can be made); and a good
/// record written after these bytes is found, last.
pub fn verdict(data: &[u8]) {
    for found in verdict::scan(data) {
        let Found::Verdict(v) = found else {
            continue;
        };
        let _ = v.lines();
        let record = v.encode();
        assert_eq!(
            verdict::scan(&record),
            vec![Found::Verdict(v.clone())],
            "a verdict found reads back the same"
        );
        let fitted = v.clone().fit(record.len() / 2);
        assert!(
            fitted.encode().len() <= record.len() / 2 || fitted.filesystems.is_empty(),
            "fit() gives a record that fits, or the counts alone"
        );
        let _ = fitted.lines();
    }
    let good = sample_verdict();
    let mut after = data.to_vec();
    after.extend(good.encode());
    assert_eq!(
        verdict::scan(&after).last(),
        Some(&Found::Verdict(Box::new(good))),
        "a record after foreign bytes is found"
    );
}

fn sample_verdict() -> verdict::Verdict {
    use verdict::{Filesystem, Holder, Left, Name, Verdict, VERSION};
    Verdict {
        version: VERSION,
        boot_id: Some("b00t".into()),
        time: Some(1),
        kernel: Some("7.3.0".into()),
        exit: 64,
        stopped: None,
        passes: 3,
        elapsed_ms: 1.5,
        filesystems: vec![Filesystem {
            mount_point: Name::Bytes(b"/mnt/\xff".to_vec()),
            source: None,
            fstype: Some("tmpfs".into()),
            outcome: "untouched".into(),
            left: Left::ReadWrite,
            reason: Some("busy".into()),
            held_by: vec![Holder {
                pid: Some(7),
                command: Some("sleep".into()),
                what: "pid 7 (sleep): cwd".into(),
            }],
            more_holders: 0,
        }],
        omitted_shut_down: 0,
        omitted_other: 0,
    }
}
