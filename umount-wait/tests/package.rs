//! The Debian package's file list (`[package.metadata.deb]` in Cargo.toml,
//! read by `cargo deb`) names files that exist: a renamed example or
//! completion would otherwise break the package build only when someone
//! runs it.

use std::path::Path;

/// The sources of the `assets` list: the first string of each
/// `["SOURCE", "DEST", "MODE"]` line.
fn asset_sources() -> Vec<String> {
    include_str!("../Cargo.toml")
        .lines()
        .skip_while(|line| *line != "assets = [")
        .take_while(|line| *line != "]")
        .filter_map(|line| line.trim().strip_prefix("[\""))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_packaged_file_exists() {
    let sources = asset_sources();
    assert!(sources.len() >= 10, "too few assets found: {sources:?}");
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for source in &sources {
        // The binary is built by `cargo deb` itself.
        if source.starts_with("target/") {
            continue;
        }
        assert!(
            crate_dir.join(source).is_file(),
            "Cargo.toml's deb assets name {source}, which does not exist"
        );
    }
    let changelog = crate_dir.join("debian/changelog");
    assert!(changelog.is_file(), "no {}", changelog.display());
}

/// The files below `dir`, as paths starting with `prefix`.
fn files_below(dir: &Path, prefix: &str, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}/{}", entry.file_name().to_str().unwrap());
        if entry.file_type().unwrap().is_dir() {
            files_below(&entry.path(), &name, found);
        } else {
            found.push(name);
        }
    }
}

#[test]
fn the_package_has_the_binary_man_page_completions_and_every_example() {
    let sources = asset_sources();
    let mut wanted: Vec<String> = [
        "target/release/umount-wait",
        "doc/umount-wait.8",
        "doc/completions/umount-wait.bash",
        "doc/completions/_umount-wait",
        "doc/completions/umount-wait.fish",
    ]
    .map(str::to_string)
    .to_vec();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    files_below(&examples, "../examples", &mut wanted);
    for file in wanted {
        assert!(
            sources.contains(&file),
            "the deb assets lack {file}: {sources:?}"
        );
    }
}
