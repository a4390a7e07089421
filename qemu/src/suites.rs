//! Which suites run on which kernel: data, not code.
//!
//! A suite is an executable in qemu/guest/suites/. A comment line in its
//! first lines says where it runs:
//!
//!   # umw-kernels: patched debug       only on these kernels
//!   # umw-kernels: all                 on every kernel but the mutant (also
//!                                      the default)
//!   # umw-kernels: all mutant          on every kernel
//!   # umw-kernels: none                only when named (`--suites crash`)
//!
//! The mutant kernel (the series with the wait made a no-op) runs only the
//! suites that name it: the tests that must fail there.
//! Adding a suite is adding a file; no Rust changes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::kernel::KernelName;

#[derive(Debug, PartialEq)]
pub struct Suite {
    pub name: String,
    /// Where it runs; empty: only when named.
    pub kernels: Vec<KernelName>,
}

impl Suite {
    fn runs_on(&self, kernel: KernelName) -> bool {
        self.kernels.contains(&kernel)
    }
}

/// What `all` means in a rule line: every kernel but the mutant.
fn all_but_mutant() -> Vec<KernelName> {
    KernelName::ALL
        .into_iter()
        .filter(|k| *k != KernelName::Mutant)
        .collect()
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
                only.contains(&s.name) && (s.kernels.is_empty() || s.runs_on(kernel))
            }
        })
        .map(|s| s.name)
        .collect())
}

fn rule(text: &str, name: &str) -> Result<Vec<KernelName>> {
    for line in text.lines().take(20) {
        let Some((_, words)) = line.split_once("umw-kernels:") else {
            continue;
        };
        let mut kernels = Vec::new();
        for word in words.split_whitespace() {
            match word {
                "all" => kernels.extend(all_but_mutant()),
                "none" => {}
                _ => kernels.push(KernelName::parse(word).with_context(|| {
                    format!("suite {name}: unknown kernel {word} in umw-kernels")
                })?),
            }
        }
        kernels.sort();
        kernels.dedup();
        return Ok(kernels);
    }
    Ok(all_but_mutant())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_line_decides_where_a_suite_runs() {
        assert_eq!(
            rule("#!/bin/sh\n# umw-kernels: patched debug\n", "x").unwrap(),
            vec![KernelName::Patched, KernelName::Debug]
        );
        let all = rule("#!/bin/sh\n# umw-kernels: all\n", "x").unwrap();
        assert!(all.contains(&KernelName::Stock) && !all.contains(&KernelName::Mutant));
        assert_eq!(rule("#!/bin/sh\necho\n", "x").unwrap(), all);
        let with_mutant = rule("# umw-kernels: all mutant\n", "x").unwrap();
        assert_eq!(with_mutant.len(), KernelName::ALL.len());
        assert_eq!(rule("# umw-kernels: none\n", "x").unwrap(), vec![]);
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
        // 7.3: the kselftest, the kernel path and the races; the fallback
        // stays on 6.12, the stock kernel and the host.
        let mainline = for_kernel(&dir, KernelName::Patched73, &[]).unwrap();
        for name in ["kselftest", "race-s1", "race-s2", "race-s3", "tool-kernel"] {
            assert!(
                mainline.contains(&name.to_string()),
                "{name} on patched-7.3"
            );
        }
        assert!(!mainline.contains(&"tool-fallback".to_string()));
        assert!(patched.contains(&"shutdown".to_string()));
        assert!(!mainline.contains(&"shutdown".to_string()));
        // The man page's example: where the flag is (both series) and on
        // one kernel without it (its probe must say so).
        for kernel in [
            KernelName::Patched,
            KernelName::Patched73,
            KernelName::Unpatched,
        ] {
            let suites = for_kernel(&dir, kernel, &[]).unwrap();
            assert!(
                suites.contains(&"manpage-example".to_string()),
                "manpage-example on {kernel:?}"
            );
        }
        let mutant = for_kernel(&dir, KernelName::Mutant, &[]).unwrap();
        assert_eq!(mutant, vec!["kselftest", "race-s1", "race-s2", "race-s3"]);
        assert_eq!(
            for_kernel(&dir, KernelName::Unpatched, &["crash".into()]).unwrap(),
            vec!["crash"]
        );
    }
}
