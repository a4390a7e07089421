//! The host's checks of an ext2/ext4 image after the VM that used it is
//! gone (scenario S4, reboot.rs, and the shutdown mode's reboot test,
//! shutdown_reboot.rs), in the order they must run:
//!
//!   unclean()  read-only: was the filesystem shut down when the machine
//!              went down? `needs_recovery` (ext4 clears it in ->put_super,
//!              when the journal is destroyed), the state (ext2 marks itself
//!              "not clean" while mounted read-write), `e2fsck -fn`;
//!   replay()   `e2fsck -fy`: the journal replayed and the rest repaired,
//!              as the next boot would have it;
//!   dump()     `debugfs` copies files out, to compare with what the guest
//!              wrote.
//!
//! f2fs (/data in the shutdown-reboot test) is read the same way where the
//! host can: `f2fs_unclean()` reads the last checkpoint (f2fs marks it
//! "unmount" when written by ->put_super or a remount read-only) and runs
//! `fsck.f2fs --dry-run -f`; the replay and the files are the checker
//! boot's (shutdown_reboot.rs): the host has no f2fs driver.
//!
//! Everything the tools print goes to one log per scenario.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A log the checks append to (target/vm/logs/<scenario>-disk-checks.log).
pub struct Log(pub PathBuf);

impl Log {
    pub fn append(&self, text: &str) {
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .and_then(|mut f| f.write_all(text.as_bytes()));
    }

    fn tool(&self, what: &str, out: &std::process::Output) {
        self.append(&format!(
            "{what}: exit {}\n{}{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

/// Why the filesystem on `image` was not shut down; empty when it was.
pub fn unclean(image: &Path, log: &Log) -> Result<Vec<String>> {
    log.append(&format!("== {}\n", image.display()));
    let header = tool_output(Command::new("dumpe2fs").arg("-h").arg(image))?;
    let mut notes = Vec::new();
    let value = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    if value("Filesystem features:")
        .split_whitespace()
        .any(|w| w == "needs_recovery")
    {
        notes.push("journal needs recovery".into());
    }
    let state = value("Filesystem state:");
    if state != "clean" {
        notes.push(format!("state \"{state}\""));
    }
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .context("running e2fsck -fn")?;
    log.tool("e2fsck -fn", &fsck);
    let rc = fsck.status.code().unwrap_or(-1);
    if rc != 0 {
        notes.push(format!("e2fsck -fn exit {rc}"));
    }
    Ok(notes)
}

/// Why the f2fs on `image` was not shut down; empty when it was. Read
/// only: `fsck.f2fs --dry-run -f` changes nothing.
pub fn f2fs_unclean(image: &Path, log: &Log) -> Result<Vec<String>> {
    log.append(&format!("== {} (f2fs)\n", image.display()));
    let mut notes = f2fs_errors(image, log)?;
    if let Some(why) = notes.iter().position(|n| n.starts_with("checkpoint")) {
        notes.swap(0, why);
    }
    Ok(notes)
}

/// After the checker boot mounted and unmounted it: a note when the f2fs
/// on `image` is not consistent, or its last checkpoint not an unmount's.
pub fn f2fs_errors_left(image: &Path, log: &Log) -> Result<Option<String>> {
    let notes = f2fs_errors(image, log)?;
    Ok((!notes.is_empty()).then(|| format!("after the checker boot: {}", notes.join(", "))))
}

fn f2fs_errors(image: &Path, log: &Log) -> Result<Vec<String>> {
    let fsck = Command::new("fsck.f2fs")
        .args(["--dry-run", "-f"])
        .arg(image)
        .output()
        .context("running fsck.f2fs --dry-run -f")?;
    log.tool("fsck.f2fs --dry-run -f", &fsck);
    Ok(f2fs_fsck_notes(
        &String::from_utf8_lossy(&fsck.stdout),
        fsck.status.code().unwrap_or(-1),
    ))
}

/// What `fsck.f2fs --dry-run -f` said (its output and exit code, the
/// host's or a guest's): why the f2fs was not shut down, empty when it was.
pub fn f2fs_fsck_notes(out: &str, rc: i32) -> Vec<String> {
    let mut notes = Vec::new();
    match f2fs_checkpoint_flags(out) {
        None => notes.push("checkpoint state not found".to_string()),
        Some(flags) if !flags.split_whitespace().any(|f| f == "unmount") => {
            notes.push(format!("checkpoint not an unmount's ({})", flags.trim()))
        }
        Some(_) => {}
    }
    let failed = out.lines().filter(|l| l.contains("[Fail]")).count();
    if failed > 0 {
        notes.push(format!("fsck.f2fs: {failed} checks failed"));
    }
    if rc != 0 {
        notes.push(format!("fsck.f2fs --dry-run -f exit {rc}"));
    }
    notes
}

/// The flags of `Info: checkpoint state = 185 :  trimmed ... unmount`.
fn f2fs_checkpoint_flags(fsck_out: &str) -> Option<&str> {
    fsck_out
        .lines()
        .find_map(|l| l.strip_prefix("Info: checkpoint state = "))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, flags)| flags)
}

/// `e2fsck -fy`, as the next boot would run it. A note when errors remain.
pub fn replay(image: &Path, log: &Log) -> Result<Option<String>> {
    let repair = Command::new("e2fsck")
        .arg("-fy")
        .arg(image)
        .output()
        .context("running e2fsck -fy")?;
    log.tool("e2fsck -fy", &repair);
    let rc = repair.status.code().unwrap_or(-1);
    Ok((rc >= 4).then(|| format!("e2fsck -fy left errors (exit {rc})")))
}

/// Copies `paths` (absolute, inside the filesystem) out of `image` into
/// `dir`; for each, where the copy is, or None when debugfs found nothing.
pub fn dump(image: &Path, paths: &[&str], dir: &Path, log: &Log) -> Result<Vec<Option<PathBuf>>> {
    fs::create_dir_all(dir)?;
    let outs: Vec<PathBuf> = (0..paths.len())
        .map(|i| dir.join(format!("file-{i}")))
        .collect();
    for out in &outs {
        let _ = fs::remove_file(out);
    }
    let script: String = paths
        .iter()
        .zip(&outs)
        .map(|(path, out)| format!("dump {path} {}\n", out.display()))
        .collect();
    let script_file = dir.join("debugfs.cmd");
    fs::write(&script_file, script)?;
    let debugfs = Command::new("debugfs")
        .arg("-f")
        .arg(&script_file)
        .arg(image)
        .output()
        .context("running debugfs")?;
    log.append(&format!(
        "debugfs dump: exit {}\n{}",
        debugfs.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&debugfs.stderr)
    ));
    Ok(outs.into_iter().map(|o| o.is_file().then_some(o)).collect())
}

/// "N of M files wrong: a, b, c, +K" for a list of what was wrong.
pub fn wrong_files_note(wrong: &[String], total: usize) -> String {
    let shown: Vec<_> = wrong.iter().take(3).cloned().collect();
    let mut note = format!(
        "{} of {total} files wrong: {}",
        wrong.len(),
        shown.join(", ")
    );
    let more = wrong.len().saturating_sub(shown.len());
    if more > 0 {
        note.push_str(&format!(", +{more}"));
    }
    note
}

/// The md5 (md5sum's hex) of what `write` writes to md5sum's input.
pub fn md5_hex(
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<String> {
    let mut md5sum = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running md5sum")?;
    let mut stdin = md5sum
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("md5sum's stdin"))?;
    write(&mut stdin)?;
    drop(stdin);
    let out = md5sum.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// The stdout of a host tool that must succeed (dumpe2fs, md5sum).
pub fn tool_output(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_f2fs_checkpoint_is_read() {
        let out = "Info: CKPT version = 672e467b\n\
                   Info: checkpoint state = 185 :  trimmed nat_bits compacted_summary unmount\n";
        let flags = f2fs_checkpoint_flags(out).unwrap();
        assert!(flags.split_whitespace().any(|f| f == "unmount"));
        let out = "Info: checkpoint state = 44 :  compacted_summary sudden-power-off\n";
        let flags = f2fs_checkpoint_flags(out).unwrap();
        assert!(!flags.split_whitespace().any(|f| f == "unmount"));
        assert_eq!(f2fs_checkpoint_flags("Info: Dry run\n"), None);
    }

    #[test]
    fn the_note_names_three_and_counts_the_rest() {
        let wrong: Vec<String> = ["a missing", "b short", "c wrong", "d missing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            wrong_files_note(&wrong, 10),
            "4 of 10 files wrong: a missing, b short, c wrong, +1"
        );
        assert_eq!(
            wrong_files_note(&wrong[..1], 2),
            "1 of 2 files wrong: a missing"
        );
    }
}
