//! The mutant kernel's verdict.
//!
//! The mutant is the series with the wait made a no-op
//! (qemu/mutant/no-wait.patch): `UMOUNT_WAIT` is accepted and returns at
//! once. Every test written to show the wait must fail on it; a test that
//! passes there cannot fail, and is reported by name. The tests that check
//! something else (error codes, the probe, refusals) are listed in
//! qemu/mutant/not-wait-tests and must pass there as everywhere.
//!
//! The race suites judge themselves on the mutant (the kernel mode must show
//! the bug, qemu/guest/suites/race-s1); only the kselftest is turned here.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::console::SUITE_CHECKS;
use crate::summary::KernelResult;

/// The suite whose results are turned.
const SUITE: &str = "kselftest";
/// What a turned test is called: it passes when the test failed.
pub const MUST_FAIL: &str = ":fails-on-mutant";

/// The names in qemu/mutant/not-wait-tests.
pub fn not_wait_tests(path: &Path) -> Result<BTreeSet<String>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Turns the kselftest results of a mutant boot: a wait test that failed
/// becomes `<name>:fails-on-mutant` = pass, one that passed or skipped the
/// same = fail. Returns the tests that cannot fail.
pub fn judge(result: &mut KernelResult, not_wait: &BTreeSet<String>) -> Vec<String> {
    let mut cannot_fail = Vec::new();
    let tests = std::mem::take(&mut result.tests);
    for (key, verdict) in tests {
        let test = key
            .strip_prefix(SUITE)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|name| !SUITE_CHECKS.contains(name) && !not_wait.contains(*name));
        match test {
            Some(name) => {
                let caught = verdict == "fail";
                if !caught {
                    cannot_fail.push(format!("{name} ({verdict})"));
                }
                result.tests.insert(
                    format!("{key}{MUST_FAIL}"),
                    if caught { "pass" } else { "fail" }.into(),
                );
            }
            None => {
                result.tests.insert(key, verdict);
            }
        }
    }
    cannot_fail
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn result(tests: &[(&str, &str)]) -> KernelResult {
        KernelResult {
            name: "mutant".into(),
            release: String::new(),
            source: String::new(),
            umount_wait: true,
            tests: tests
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            races: BTreeMap::new(),
        }
    }

    #[test]
    fn a_wait_test_must_fail_and_the_others_must_pass() {
        let mut r = result(&[
            ("kselftest/umount_wait.tmpfs.lazy_waits_for_close", "fail"),
            ("kselftest/umount_wait.tmpfs.dead_on_return", "pass"),
            ("kselftest/umount_wait.ext4.other_mntns", "skip"),
            ("kselftest/flags.expire_rejected", "pass"),
            ("kselftest/exit-status", "pass"),
            ("race-s1/mutant_kernel_mode_shows_the_bug", "pass"),
        ]);
        let not_wait = BTreeSet::from(["flags.expire_rejected".to_string()]);
        let cannot_fail = judge(&mut r, &not_wait);
        assert_eq!(
            cannot_fail,
            vec![
                "umount_wait.ext4.other_mntns (skip)".to_string(),
                "umount_wait.tmpfs.dead_on_return (pass)".to_string()
            ]
        );
        assert_eq!(
            r.tests["kselftest/umount_wait.tmpfs.lazy_waits_for_close:fails-on-mutant"],
            "pass"
        );
        assert_eq!(
            r.tests["kselftest/umount_wait.tmpfs.dead_on_return:fails-on-mutant"],
            "fail"
        );
        assert_eq!(r.tests["kselftest/flags.expire_rejected"], "pass");
        assert_eq!(r.tests["kselftest/exit-status"], "pass");
        assert_eq!(r.tests["race-s1/mutant_kernel_mode_shows_the_bug"], "pass");
    }

    #[test]
    fn every_name_in_the_list_is_a_test_of_the_series() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let names = not_wait_tests(&root.join("mutant/not-wait-tests")).unwrap();
        // The patches of the series that add kselftest tests: 0003
        // (UMOUNT_WAIT), 0006 (UMOUNT_NOTIFY), 0008 (the device's close).
        let source: String = fs::read_dir(root.join("../kernel-patches"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "patch"))
            .filter(|p| !p.to_string_lossy().contains("cover-letter"))
            .map(|p| fs::read_to_string(p).unwrap())
            .filter(|text| text.contains("tools/testing/selftests/"))
            .collect();
        assert!(!names.is_empty());
        for name in &names {
            // fixture.test or fixture.variant.test
            let parts: Vec<&str> = name.split('.').collect();
            let (fixture, test) = (parts[0], parts[parts.len() - 1]);
            let declared = [
                format!("TEST_F({fixture}, {test})"),
                format!("TEST_F_TIMEOUT({fixture}, {test},"),
            ];
            assert!(
                declared.iter().any(|d| source.contains(d.as_str())),
                "{name} in qemu/mutant/not-wait-tests is no test of the kselftest"
            );
        }
    }
}
