//! The mutation tool (`umw-vm mutants`): its list, its substitutions, how a
//! boot is judged and the report.
//!
//! A mutant is a small named change to the series' logic in the patched
//! kernel source, listed in qemu/mutants.txt. The flow (flows.rs) applies
//! each one to a copy of the built patched tree (kernel::mutants_tree),
//! rebuilds it incrementally, boots it with the kselftest alone and puts the
//! file back. A mutant is killed when a test fails (or the boot panics or
//! hits its time limit), SURVIVED when every test passes: the tests cannot
//! see that change. One that does not compile is stillborn.
//!
//! The list, blocks of `key: value` lines, each block opened by `name:`
//! (the code lines start with a tab in the real list):
//!
//!   # a comment
//!   name: no-wait
//!   why: super_wait_dead() returns at once
//!   file: fs/super.c
//!   bases: 7.3 6.12              (optional; every base when absent)
//!   from: <<EOF
//!       might_sleep();
//!   EOF
//!   to: <<EOF
//!       return 0;
//!   EOF
//!
//! A one-line value is taken without the blanks around it; `<<MARK` takes
//! the lines below it verbatim (tabs kept), each with its newline, up to a
//! line that is MARK alone. `from` must occur exactly once in the file;
//! `to` may be empty (the text is removed).
//!
//! This is the pure part (no boot, no build): the host's unit tests cover it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::console::{Verdict, SUITE_CHECKS};

/// The list, from the repository's root.
pub const LIST: &str = "qemu/mutants.txt";

/// The only suite a mutant boots with.
pub const SUITE: &str = "kselftest";

const KEYS: [&str; 6] = ["name", "why", "file", "bases", "from", "to"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutant {
    pub name: String,
    /// What the change breaks, in words.
    pub why: String,
    /// The file it changes, relative to the tree.
    pub file: String,
    pub from: String,
    pub to: String,
    /// The bases it applies to ("7.3", "6.12"); every base when empty.
    pub bases: Vec<String>,
    /// Where its block starts in the list (1-based), for messages.
    pub line: usize,
}

impl Mutant {
    pub fn applies_to(&self, base: &str) -> bool {
        self.bases.is_empty() || self.bases.iter().any(|b| b == base)
    }
}

/// Reads and parses the list; `bases` are the versions a `bases:` line may name.
pub fn load(path: &Path, bases: &[&str]) -> Result<Vec<Mutant>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, bases).with_context(|| format!("in {}", path.display()))
}

/// Parses the list (format above).
pub fn parse(text: &str, bases: &[&str]) -> Result<Vec<Mutant>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks: Vec<(usize, Vec<(&str, String)>)> = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n];
        let number = n + 1;
        n += 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            bail!("line {number}: expected `key: value`, got {line:?}");
        };
        let key = key.trim();
        let Some(key) = KEYS.iter().find(|k| **k == key).copied() else {
            bail!(
                "line {number}: unknown key `{key}` (keys: {})",
                KEYS.join(", ")
            );
        };
        let value = match value.trim().strip_prefix("<<") {
            Some(marker) => {
                let marker = marker.trim();
                if marker.is_empty() {
                    bail!("line {number}: `<<` needs an end marker, as in `<<EOF`");
                }
                let mut text = String::new();
                loop {
                    let Some(body) = lines.get(n) else {
                        bail!(
                            "line {number}: `{key}: <<{marker}` has no line `{marker}` to end it"
                        );
                    };
                    n += 1;
                    if body.trim_end_matches('\r') == marker {
                        break;
                    }
                    text.push_str(body);
                    text.push('\n');
                }
                text
            }
            None => value.trim().to_string(),
        };
        if key == "name" {
            blocks.push((number, Vec::new()));
        }
        let Some((_, fields)) = blocks.last_mut() else {
            bail!("line {number}: `{key}:` before the first `name:`");
        };
        if fields.iter().any(|(k, _)| *k == key) {
            bail!("line {number}: a second `{key}:` in one mutant");
        }
        fields.push((key, value));
    }
    let mut mutants: Vec<Mutant> = Vec::new();
    for (line, fields) in blocks {
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        let name = get("name").cloned().unwrap_or_default();
        let required = |key: &str| -> Result<String> {
            get(key)
                .cloned()
                .with_context(|| format!("line {line}: mutant {name} has no `{key}:`"))
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "line {line}: a mutant's name is letters, digits, `-`, `_` and `.`, got {name:?}"
            );
        }
        if mutants.iter().any(|m| m.name == name) {
            bail!("line {line}: a second mutant named {name}");
        }
        let mutant = Mutant {
            why: required("why")?,
            file: required("file")?,
            from: required("from")?,
            to: required("to")?,
            bases: get("bases")
                .map(|b| {
                    b.split([',', ' ', '\t'])
                        .filter(|w| !w.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            name,
            line,
        };
        if mutant.why.is_empty() || mutant.file.is_empty() {
            bail!(
                "line {line}: mutant {}: `why:` and `file:` may not be empty",
                mutant.name
            );
        }
        if mutant.from.is_empty() {
            bail!("line {line}: mutant {}: `from:` is empty", mutant.name);
        }
        if mutant.from == mutant.to {
            bail!(
                "line {line}: mutant {}: `to:` is the same as `from:`",
                mutant.name
            );
        }
        for base in &mutant.bases {
            if !bases.contains(&base.as_str()) {
                bail!(
                    "line {line}: mutant {}: no base {base} (bases: {})",
                    mutant.name,
                    bases.join(", ")
                );
            }
        }
        mutants.push(mutant);
    }
    Ok(mutants)
}

/// How many times `needle` occurs in `text`, overlapping occurrences counted.
pub fn occurrences(text: &str, needle: &str) -> usize {
    let mut count = 0;
    let mut start = 0;
    while let Some(found) = text[start..].find(needle) {
        count += 1;
        let at = start + found;
        start = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    count
}

/// `text` with the one occurrence of `from` replaced by `to`; an error that
/// says how many there were when that is not exactly one.
pub fn substitute(text: &str, from: &str, to: &str) -> Result<String, String> {
    match occurrences(text, from) {
        1 => Ok(text.replacen(from, to, 1)),
        0 => Err("`from:` does not occur".into()),
        n => Err(format!("`from:` occurs {n} times (it must occur once)")),
    }
}

/// Checks, before anything is built, that each mutant's `from` occurs exactly
/// once in its file of `tree`; the error names every mutant that does not,
/// and the base.
pub fn check(tree: &Path, mutants: &[&Mutant], base: &str) -> Result<()> {
    let mut wrong = Vec::new();
    for mutant in mutants {
        let path = tree.join(&mutant.file);
        match fs::read_to_string(&path) {
            Ok(text) => {
                if let Err(why) = substitute(&text, &mutant.from, &mutant.to) {
                    wrong.push(format!(
                        "mutant {} (line {}) on base {base}: {why} in {}",
                        mutant.name, mutant.line, mutant.file
                    ));
                }
            }
            Err(err) => wrong.push(format!(
                "mutant {} (line {}) on base {base}: cannot read {}: {err}",
                mutant.name,
                mutant.line,
                path.display()
            )),
        }
    }
    if !wrong.is_empty() {
        bail!("{}", wrong.join("\n"));
    }
    Ok(())
}

/// While a mutant is applied, the tree keeps the changed file's path and its
/// original text beside it, so that a run cut short is undone by the next
/// ([`recover`]).
const APPLIED_FILE: &str = ".umw-mutant-file";
const APPLIED_ORIGINAL: &str = ".umw-mutant-original";

/// A mutant applied to a tree; [`Applied::restore`] (or dropping it) puts
/// the original text back.
pub struct Applied {
    tree: PathBuf,
    path: PathBuf,
    original: Option<String>,
}

/// Applies `mutant` to its file in `tree`. The tree must be clean (see [`recover`]).
pub fn apply(tree: &Path, mutant: &Mutant) -> Result<Applied> {
    let path = tree.join(&mutant.file);
    if tree.join(APPLIED_FILE).exists() {
        bail!(
            "{} has a mutant applied already ({})",
            tree.display(),
            APPLIED_FILE
        );
    }
    let original =
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let changed = substitute(&original, &mutant.from, &mutant.to)
        .map_err(|why| anyhow::anyhow!("mutant {}: {why} in {}", mutant.name, mutant.file))?;
    fs::write(tree.join(APPLIED_ORIGINAL), &original)?;
    fs::write(tree.join(APPLIED_FILE), format!("{}\n", mutant.file))?;
    fs::write(&path, changed).with_context(|| format!("writing {}", path.display()))?;
    Ok(Applied {
        tree: tree.to_path_buf(),
        path,
        original: Some(original),
    })
}

impl Applied {
    /// Writes the original text back (a new mtime: the next make recompiles it).
    pub fn restore(mut self) -> Result<()> {
        self.put_back()
    }

    fn put_back(&mut self) -> Result<()> {
        if let Some(original) = self.original.take() {
            fs::write(&self.path, original)
                .with_context(|| format!("restoring {}", self.path.display()))?;
            let _ = fs::remove_file(self.tree.join(APPLIED_FILE));
            let _ = fs::remove_file(self.tree.join(APPLIED_ORIGINAL));
        }
        Ok(())
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        let _ = self.put_back();
    }
}

/// Undoes a mutant that an earlier run left applied (killed mid-way).
/// Returns the file it restored.
pub fn recover(tree: &Path) -> Result<Option<String>> {
    let Ok(file) = fs::read_to_string(tree.join(APPLIED_FILE)) else {
        let _ = fs::remove_file(tree.join(APPLIED_ORIGINAL));
        return Ok(None);
    };
    let file = file.trim().to_string();
    let original = fs::read_to_string(tree.join(APPLIED_ORIGINAL))
        .with_context(|| format!("{} without its original text", APPLIED_FILE))?;
    fs::write(tree.join(&file), original)?;
    fs::remove_file(tree.join(APPLIED_FILE))?;
    fs::remove_file(tree.join(APPLIED_ORIGINAL))?;
    Ok(Some(file))
}

/// The first compiler error in a make log (`file:line:col: error: ...`),
/// else make's first `*** ... Error` line, else the log's last line.
pub fn first_error(log: &str) -> String {
    let lines: Vec<&str> = log.lines().map(str::trim_end).collect();
    lines
        .iter()
        .find(|l| l.contains(": error:") || l.contains(": fatal error:"))
        .or_else(|| lines.iter().find(|l| l.contains("***")))
        .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "make failed with an empty log".into())
}

/// Watches the console of a mutant's boot for the kselftest's first failing
/// test: a `not ok` line (not a skip) between `UMW-SUITE-BEGIN kselftest`
/// and its end. The boot is stopped there: one failure kills the mutant.
#[derive(Default)]
pub struct Watch {
    inside: bool,
    /// The harness's first note since the running test began
    /// (`file.c:123:test:Expected ...`, `test: Test terminated by timeout`).
    note: Option<String>,
}

impl Watch {
    /// Feeds one console line; returns the failure that kills the mutant.
    pub fn line(&mut self, line: &str) -> Option<String> {
        let line = line.trim_matches(['\r', '\n']);
        if line.strip_prefix("UMW-SUITE-BEGIN ").map(str::trim) == Some(SUITE) {
            self.inside = true;
            return None;
        }
        if line.starts_with("UMW-SUITE-END ") {
            self.inside = false;
            return None;
        }
        if !self.inside {
            return None;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim();
            let first = comment.split_whitespace().next().unwrap_or_default();
            match first {
                "RUN" => self.note = None,
                "OK" | "FAIL" | "SKIP" | "PASSED:" | "FAILED:" | "Totals:" => {}
                _ if self.note.is_none() && !comment.is_empty() => {
                    self.note = Some(without_directory(comment).to_string())
                }
                _ => {}
            }
            return None;
        }
        let rest = line.strip_prefix("not ok ")?;
        let (test, directive) = match rest.split_once(" # ") {
            Some((test, directive)) => (test, Some(directive)),
            None => (rest, None),
        };
        if directive.is_some_and(|d| d.trim().to_ascii_uppercase().starts_with("SKIP")) {
            return None;
        }
        // "3 umount_wait.tmpfs.dead_on_return"
        let test = test.trim();
        let test = test
            .split_once(' ')
            .map_or(test, |(_, name)| name.trim_start_matches("- ").trim());
        Some(match &self.note {
            Some(note) => format!("{test} ({})", shorten(note, 110)),
            None => test.to_string(),
        })
    }
}

/// A harness note without the directory of its source file (the harness
/// prints `__FILE__`, the path in the tree it was built from).
fn without_directory(note: &str) -> &str {
    match note.split_once(':') {
        Some((file, _)) if file.contains('/') && !file.contains(' ') => {
            &note[file.rfind('/').map_or(0, |slash| slash + 1)..]
        }
        _ => note,
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(max).collect::<String>())
    }
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Fate {
    Killed,
    Survived,
    Stillborn,
}

impl Fate {
    pub fn label(self) -> &'static str {
        match self {
            Fate::Killed => "killed",
            Fate::Survived => "SURVIVED",
            Fate::Stillborn => "stillborn",
        }
    }
}

/// A mutant's fate from its boot: `stopped` is the failure the watch
/// stopped the boot at, `time_limit` the limit when the boot hit it.
pub fn judge(stopped: Option<&str>, time_limit: Option<u64>, verdict: &Verdict) -> (Fate, String) {
    if let Some(failure) = stopped {
        return (Fate::Killed, failure.to_string());
    }
    if let Some(limit) = time_limit {
        let running = verdict
            .tests
            .keys()
            .filter(|k| k.starts_with(&format!("{SUITE}/")))
            .count();
        return (
            Fate::Killed,
            format!(
                "the boot hit its time limit of {limit} s ({running} kselftest results before it)"
            ),
        );
    }
    if let Some(problem) = verdict.problems.first() {
        return (Fate::Killed, format!("the boot failed: {problem}"));
    }
    let failed: Vec<&String> = verdict
        .tests
        .iter()
        .filter(|(_, v)| *v == "fail")
        .map(|(k, _)| k)
        .collect();
    if let Some(first) = failed.first() {
        return (Fate::Killed, first.to_string());
    }
    if verdict.umount_wait != Some(true) {
        return (
            Fate::Killed,
            "bench/probe-matches-kernel: `umount-wait --probe` does not see UMOUNT_WAIT".into(),
        );
    }
    let count = |what: &str| {
        verdict
            .tests
            .iter()
            .filter(|(k, v)| {
                *v == what
                    && k.strip_prefix(&format!("{SUITE}/"))
                        .is_some_and(|t| !SUITE_CHECKS.contains(&t))
            })
            .count()
    };
    (
        Fate::Survived,
        format!(
            "every test passed ({} passed, {} skipped)",
            count("pass"),
            count("skip")
        ),
    )
}

/// One mutant's line of the report.
#[derive(Serialize, Debug)]
pub struct Outcome {
    pub name: String,
    pub base: String,
    pub file: String,
    pub why: String,
    pub verdict: Fate,
    /// The first failing test (and the harness's note), or why it is killed,
    /// survived or stillborn.
    pub detail: String,
    /// `make bzImage` (without waiting for the kernels' lock) and the boot, seconds.
    pub build_s: f64,
    pub boot_s: f64,
}

/// A base's part of the report.
#[derive(Serialize, Debug)]
pub struct BaseReport {
    pub base: String,
    /// The patched kernel the mutants are made from.
    pub release: String,
    pub source: String,
    pub tree: String,
    pub mutants: Vec<Outcome>,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub command: String,
    pub wall_s: u64,
    pub bases: Vec<BaseReport>,
}

impl Report {
    fn all(&self) -> impl Iterator<Item = &Outcome> {
        self.bases.iter().flat_map(|b| &b.mutants)
    }

    /// No mutant survived and none was stillborn.
    pub fn all_killed(&self) -> bool {
        self.all().all(|m| m.verdict == Fate::Killed)
    }

    /// The tables, one per base, as Markdown (also what is printed).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for base in &self.bases {
            out.push_str(&format!(
                "### Base {} (patched kernel {}, {})\n\n",
                base.base, base.release, base.source
            ));
            out.push_str("| Mutant | Verdict | First failing test, or why | Time |\n");
            out.push_str("|--------|---------|----------------------------|------|\n");
            for m in &base.mutants {
                out.push_str(&format!(
                    "| {} | {} | {} | {:.0} s (build {:.0} s, boot {:.0} s) |\n",
                    m.name,
                    m.verdict.label(),
                    m.detail.replace('|', "\\|"),
                    m.build_s + m.boot_s,
                    m.build_s,
                    m.boot_s
                ));
            }
            out.push('\n');
        }
        let count = |fate: Fate| self.all().filter(|m| m.verdict == fate).count();
        out.push_str(&format!(
            "{} mutants: {} killed, {} SURVIVED, {} stillborn; {} s in all\n",
            self.all().count(),
            count(Fate::Killed),
            count(Fate::Survived),
            count(Fate::Stillborn),
            self.wall_s
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASES: [&str; 2] = ["7.3", "6.12"];

    const SAMPLE: &str = "# the list\n\
name: no-wait\n\
why: the wait returns at once\n\
file: fs/super.c\n\
from: <<EOF\n\
\tif (super_flags(sb, SB_DEAD))\n\
\t\treturn 0;\n\
EOF\n\
to: <<EOF\n\
\treturn 0;\n\
EOF\n\
\n\
name: one-line\n\
why: a one-line change\n\
file: fs/namespace.c\n\
bases: 6.12\n\
from:   while (x)  \n\
to: if (x)\n\
\n\
name: gone\n\
why: the lines go\n\
file: fs/namespace.c\n\
bases: 7.3, 6.12\n\
from: <<END\n\
\n\
a line after a blank one\n\
END\n\
to:\n";

    #[test]
    fn the_list_is_blocks_of_keys_with_one_line_and_verbatim_values() {
        let list = parse(SAMPLE, &BASES).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].name, "no-wait");
        assert_eq!(list[0].line, 2);
        assert_eq!(list[0].file, "fs/super.c");
        assert_eq!(
            list[0].from,
            "\tif (super_flags(sb, SB_DEAD))\n\t\treturn 0;\n"
        );
        assert_eq!(list[0].to, "\treturn 0;\n");
        assert!(list[0].bases.is_empty());
        assert!(list[0].applies_to("7.3") && list[0].applies_to("6.12"));
        assert_eq!(list[1].from, "while (x)");
        assert_eq!(list[1].to, "if (x)");
        assert_eq!(list[1].bases, vec!["6.12"]);
        assert!(!list[1].applies_to("7.3"));
        assert_eq!(list[2].from, "\na line after a blank one\n");
        assert_eq!(list[2].to, "");
        assert_eq!(list[2].bases, vec!["7.3", "6.12"]);
    }

    #[test]
    fn a_wrong_list_is_an_error_that_says_where() {
        let err = |text: &str| format!("{:#}", parse(text, &BASES).unwrap_err());
        let block = "name: a\nwhy: w\nfile: f\nfrom: x\nto: y\n";
        assert!(parse(block, &BASES).is_ok());
        assert!(err("why: w\n").contains("line 1: `why:` before the first `name:`"));
        assert!(err("name: a\nwhy: w\nfile: f\nfrom: x\n").contains("mutant a has no `to:`"));
        assert!(err(&format!("{block}{block}")).contains("line 6: a second mutant named a"));
        assert!(err("name: a\nwhy: w\nwhy: v\n").contains("line 3: a second `why:`"));
        assert!(err("name: a\nwhere: f\n").contains("line 2: unknown key `where`"));
        assert!(err("name: a\njust words\n").contains("line 2: expected `key: value`"));
        assert!(
            err("name: a\nfrom: <<EOF\nx\n").contains("line 2: `from: <<EOF` has no line `EOF`")
        );
        assert!(err("name: a b\nwhy: w\nfile: f\nfrom: x\nto: y\n").contains("name is letters"));
        assert!(err("name: a\nwhy: w\nfile: f\nfrom:\nto: y\n").contains("`from:` is empty"));
        assert!(err("name: a\nwhy: w\nfile: f\nfrom: x\nto: x\n").contains("same as `from:`"));
        assert!(err(&format!("{block}bases: 5.10\n")).contains("no base 5.10"));
    }

    #[test]
    fn from_must_occur_exactly_once() {
        assert_eq!(substitute("a b c", "b", "B").unwrap(), "a B c");
        assert_eq!(substitute("a b c", "b ", "").unwrap(), "a c");
        assert!(substitute("a b c", "d", "D")
            .unwrap_err()
            .contains("does not occur"));
        assert!(substitute("b b", "b", "B")
            .unwrap_err()
            .contains("occurs 2 times"));
        // Overlapping occurrences count: "aa" is twice in "aaa".
        assert_eq!(occurrences("aaa", "aa"), 2);
        assert!(substitute("aaa", "aa", "x").is_err());
        assert_eq!(occurrences("é é", "é"), 2);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("umw-mutants-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("fs")).unwrap();
        dir
    }

    fn mutant(from: &str, to: &str) -> Mutant {
        Mutant {
            name: "m".into(),
            why: "w".into(),
            file: "fs/super.c".into(),
            from: from.into(),
            to: to.into(),
            bases: Vec::new(),
            line: 1,
        }
    }

    #[test]
    fn a_mutant_is_applied_then_the_original_text_restored() {
        let tree = scratch("apply");
        let original = "int f(void)\n{\n\tif (dead)\n\t\treturn 0;\n\treturn wait();\n}\n";
        fs::write(tree.join("fs/super.c"), original).unwrap();
        let m = mutant("\tif (dead)\n\t\treturn 0;\n", "\treturn 0;\n");
        check(&tree, &[&m], "6.12").unwrap();
        let applied = apply(&tree, &m).unwrap();
        assert_eq!(
            fs::read_to_string(tree.join("fs/super.c")).unwrap(),
            "int f(void)\n{\n\treturn 0;\n\treturn wait();\n}\n"
        );
        // A second mutant on a changed tree is refused.
        assert!(apply(&tree, &mutant("f", "g")).is_err());
        applied.restore().unwrap();
        assert_eq!(
            fs::read_to_string(tree.join("fs/super.c")).unwrap(),
            original
        );
        assert!(!tree.join(APPLIED_FILE).exists() && !tree.join(APPLIED_ORIGINAL).exists());
        // Dropped without restore (an error on the way): restored all the same.
        drop(apply(&tree, &m).unwrap());
        assert_eq!(
            fs::read_to_string(tree.join("fs/super.c")).unwrap(),
            original
        );
        fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn a_run_cut_short_is_undone_by_the_next() {
        let tree = scratch("recover");
        fs::write(tree.join("fs/super.c"), "a b c\n").unwrap();
        let applied = apply(&tree, &mutant("b", "B")).unwrap();
        std::mem::forget(applied); // the process died with the mutant applied
        assert_eq!(
            fs::read_to_string(tree.join("fs/super.c")).unwrap(),
            "a B c\n"
        );
        assert_eq!(recover(&tree).unwrap().as_deref(), Some("fs/super.c"));
        assert_eq!(
            fs::read_to_string(tree.join("fs/super.c")).unwrap(),
            "a b c\n"
        );
        assert_eq!(recover(&tree).unwrap(), None);
        fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn the_check_names_the_mutant_and_the_base() {
        let tree = scratch("check");
        fs::write(tree.join("fs/super.c"), "x x y\n").unwrap();
        let twice = Mutant {
            name: "twice".into(),
            line: 7,
            ..mutant("x", "z")
        };
        let once = mutant("y", "z");
        let missing = Mutant {
            name: "nofile".into(),
            file: "fs/none.c".into(),
            ..mutant("y", "z")
        };
        let err = check(&tree, &[&twice, &once, &missing], "7.3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mutant twice (line 7) on base 7.3: `from:` occurs 2 times"));
        assert!(err.contains("mutant nofile (line 1) on base 7.3: cannot read"));
        assert!(!err.contains("mutant m "));
        fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn the_watch_stops_at_the_first_failing_kselftest_test() {
        let mut watch = Watch::default();
        let console = [
            "UMW-SUITE-BEGIN tool-kernel",
            "not ok 1 something else",
            "UMW-SUITE-END tool-kernel rc=1",
            "UMW-SUITE-BEGIN kselftest",
            "TAP version 13",
            "1..30",
            "#  RUN           flags.expire_rejected ...",
            "#            OK  flags.expire_rejected",
            "ok 1 flags.expire_rejected",
            "ok 2 flags.other # SKIP no userns",
            "not ok 3 flags.skipped # SKIP not here",
            "#  RUN           umount_wait.tmpfs.dead_on_return ...",
            "# /root/trees/patched/tools/testing/selftests/filesystems/umount_wait/umount_wait_test.c:950:dead_on_return:Expected busy (1) == 0 (0)\r",
            "# dead_on_return: Test terminated by assertion",
            "#          FAIL  umount_wait.tmpfs.dead_on_return",
        ];
        for line in console {
            assert_eq!(watch.line(line), None, "{line}");
        }
        assert_eq!(
            watch.line("not ok 4 umount_wait.tmpfs.dead_on_return\r").as_deref(),
            Some("umount_wait.tmpfs.dead_on_return (umount_wait_test.c:950:dead_on_return:Expected busy (1) == 0 (0))")
        );
        let mut watch = Watch::default();
        watch.line("UMW-SUITE-BEGIN kselftest");
        watch.line("#  RUN           umount_wait.ext4.callers_cwd ...");
        watch.line("# callers_cwd: Test terminated by timeout");
        assert_eq!(
            watch
                .line("not ok 9 umount_wait.ext4.callers_cwd")
                .as_deref(),
            Some("umount_wait.ext4.callers_cwd (callers_cwd: Test terminated by timeout)")
        );
    }

    #[test]
    fn a_boot_without_a_failure_is_judged_from_its_verdict() {
        let clean = |tests: &[(&str, &str)]| Verdict {
            umount_wait: Some(true),
            tests: tests
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Verdict::default()
        };
        let passed = clean(&[("kselftest/a", "pass"), ("kselftest/b", "skip")]);
        assert_eq!(
            judge(None, None, &passed),
            (
                Fate::Survived,
                "every test passed (1 passed, 1 skipped)".into()
            )
        );
        assert_eq!(judge(Some("t (note)"), None, &passed).0, Fate::Killed);
        let (fate, why) = judge(None, Some(210), &passed);
        assert_eq!(fate, Fate::Killed);
        assert!(why.starts_with("the boot hit its time limit of 210 s"));
        let mut panicked = clean(&[]);
        panicked.problems =
            vec!["kernel panic: Kernel panic - not syncing: Fatal exception".into()];
        assert_eq!(
            judge(None, None, &panicked),
            (
                Fate::Killed,
                "the boot failed: kernel panic: Kernel panic - not syncing: Fatal exception".into()
            )
        );
        let mut fallback = clean(&[("kselftest/all", "skip")]);
        fallback.umount_wait = Some(false);
        assert!(judge(None, None, &fallback)
            .1
            .contains("probe-matches-kernel"));
    }

    #[test]
    fn the_first_compiler_error_is_what_a_stillborn_mutant_shows() {
        let log = "  CC      fs/super.o\n\
fs/super.c: In function 'super_wait_dead':\n\
fs/super.c:478:9: error: 'x' undeclared (first use in this function)\n\
fs/super.c:479:2: error: expected ';'\n\
make[3]: *** [scripts/Makefile.build:229: fs/super.o] Error 1\n";
        assert_eq!(
            first_error(log),
            "fs/super.c:478:9: error: 'x' undeclared (first use in this function)"
        );
        assert_eq!(
            first_error("ld: undefined\nmake[1]: *** [Makefile:1] Error 2\n"),
            "make[1]: *** [Makefile:1] Error 2"
        );
    }

    #[test]
    fn the_report_has_a_table_per_base_and_says_if_all_were_killed() {
        let outcome = |name: &str, verdict: Fate| Outcome {
            name: name.into(),
            base: "6.12".into(),
            file: "fs/super.c".into(),
            why: "w".into(),
            verdict,
            detail: "t | u".into(),
            build_s: 9.4,
            boot_s: 31.0,
        };
        let mut report = Report {
            command: "umw-vm mutants".into(),
            wall_s: 80,
            bases: vec![BaseReport {
                base: "6.12".into(),
                release: "6.12.118".into(),
                source: "linux-source-6.12".into(),
                tree: "trees/mutants-6.12".into(),
                mutants: vec![outcome("a", Fate::Killed)],
            }],
        };
        assert!(report.all_killed());
        let table = report.markdown();
        assert!(table.contains("### Base 6.12 (patched kernel 6.12.118"));
        assert!(table.contains("| a | killed | t \\| u | 40 s (build 9 s, boot 31 s) |"));
        assert!(table.ends_with("1 mutants: 1 killed, 0 SURVIVED, 0 stillborn; 80 s in all\n"));
        report.bases[0].mutants.push(outcome("b", Fate::Survived));
        assert!(!report.all_killed());
        report.bases[0].mutants[1].verdict = Fate::Stillborn;
        assert!(!report.all_killed());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["bases"][0]["mutants"][1]["verdict"], "stillborn");
    }

    #[test]
    fn the_list_in_the_repository_parses_and_names_files_of_the_series() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let list = load(&root.join(super::LIST), &BASES).unwrap();
        assert!(!list.is_empty());
        let series: String = [
            root.join("kernel-patches"),
            root.join("kernel-patches/6.12"),
        ]
        .iter()
        .flat_map(|dir| fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
        for mutant in &list {
            assert!(
                series.contains(&format!("+++ b/{}\n", mutant.file)),
                "mutant {}: the series does not touch {}",
                mutant.name,
                mutant.file
            );
        }
    }
}
