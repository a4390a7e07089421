//! Which suites run on which kernel: data, not code.
//!
//! A suite is an executable in qemu/guest/suites/. A comment line in its
//! first lines says where it runs:
//!
//!   # umw-kernels: patched debug       only on these kernels
//!   # umw-kernels: all                 on every kernel (also the default)
//!   # umw-kernels: none                only when named (`--suites crash`)
//!
//! Adding a suite is adding a file; no Rust changes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::kernel::KernelName;

#[derive(Debug, PartialEq)]
pub struct Suite {
    pub name: String,
    /// None: every kernel; Some(empty): only when named.
    pub kernels: Option<Vec<KernelName>>,
}

impl Suite {
    fn runs_on(&self, kernel: KernelName) -> bool {
        match &self.kernels {
            None => true,
            Some(list) => list.contains(&kernel),
        }
    }
}

/// Every suite, sorted by name.
pub fn all(dir: &Path) -> Result<Vec<Suite>> {
    let mut suites = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = fs::read(&path)?;
        suites.push(Suite {
            kernels: rule(&String::from_utf8_lossy(&text), &name)?,
            name,
        });
    }
    suites.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(suites)
}

/// The suites to run on one kernel, in order; `only` narrows them to those named.
pub fn for_kernel(dir: &Path, kernel: KernelName, only: &[String]) -> Result<Vec<String>> {
    let suites = all(dir)?;
    for name in only {
        if !suites.iter().any(|s| &s.name == name) {
            bail!("no suite {name} in {}", dir.display());
        }
    }
    Ok(suites
        .into_iter()
        .filter(|s| {
            if only.is_empty() {
                s.runs_on(kernel)
            } else {
                only.contains(&s.name)
                    && (s.kernels.as_ref().is_some_and(|k| k.is_empty()) || s.runs_on(kernel))
            }
        })
        .map(|s| s.name)
        .collect())
}

fn rule(text: &str, name: &str) -> Result<Option<Vec<KernelName>>> {
    for line in text.lines().take(20) {
        let Some((_, words)) = line.split_once("umw-kernels:") else {
            continue;
        };
        let words: Vec<&str> = words.split_whitespace().collect();
        return match words.as_slice() {
            ["all"] => Ok(None),
            ["none"] => Ok(Some(Vec::new())),
            _ => words
                .iter()
                .map(|w| {
                    KernelName::parse(w)
                        .with_context(|| format!("suite {name}: unknown kernel {w} in umw-kernels"))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_line_decides_where_a_suite_runs() {
        assert_eq!(
            rule("#!/bin/sh\n# umw-kernels: patched debug\n", "x").unwrap(),
            Some(vec![KernelName::Patched, KernelName::Debug])
        );
        assert_eq!(rule("#!/bin/sh\n# umw-kernels: all\n", "x").unwrap(), None);
        assert_eq!(rule("#!/bin/sh\necho\n", "x").unwrap(), None);
        assert_eq!(rule("# umw-kernels: none\n", "x").unwrap(), Some(vec![]));
        assert!(rule("# umw-kernels: vanilla\n", "x").is_err());
    }

    #[test]
    fn the_guest_suites_are_listed_per_kernel() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/suites");
        let unpatched = for_kernel(&dir, KernelName::Unpatched, &[]).unwrap();
        let patched = for_kernel(&dir, KernelName::Patched, &[]).unwrap();
        for name in ["kselftest", "tool-fallback"] {
            assert!(unpatched.contains(&name.to_string()), "{name} on unpatched");
            assert!(patched.contains(&name.to_string()), "{name} on patched");
        }
        assert!(patched.contains(&"tool-kernel".to_string()));
        assert!(!patched.contains(&"crash".to_string()));
        assert_eq!(
            for_kernel(&dir, KernelName::Unpatched, &["crash".into()]).unwrap(),
            vec!["crash"]
        );
    }
}
