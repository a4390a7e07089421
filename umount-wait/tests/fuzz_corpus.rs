//! The fuzz corpus, replayed on stable: every input committed under
//! `fuzz/corpus/TARGET/` goes through the check its fuzz target runs
//! (`fuzz/checks.rs`, shared with the targets), so that a property broken
//! by a change fails `cargo test` without nightly or libFuzzer.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/TARGET`; names the input
/// that failed.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no corpus in {}", dir.display());
    for input in &inputs {
        let data = std::fs::read(input).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {} fails its check", input.display());
        }
    }
}

#[test]
fn mountinfo() {
    replay("mountinfo", checks::mountinfo);
}

#[test]
fn mountinfo_roundtrip() {
    replay("mountinfo_roundtrip", checks::mountinfo_roundtrip);
}

#[test]
fn duration() {
    replay("duration", checks::duration);
}

#[test]
fn lists() {
    replay("lists", checks::lists);
}

#[test]
fn cli() {
    replay("cli", checks::cli);
}

#[test]
fn verdict() {
    replay("verdict", checks::verdict);
}
