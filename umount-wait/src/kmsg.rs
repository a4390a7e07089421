//! The kernel log during the run: what it said about a filesystem's block
//! device, so that a filesystem that shut down after its final writeback
//! failed (a disk that went, I/O errors) is not reported as a plain "shut
//! down". `IN_UNMOUNT`, the claim and `UMOUNT_WAIT` all come after a
//! failed `->put_super()` as after a good one: only the log tells them
//! apart.
//!
//! [`start`] opens `/dev/kmsg` at its end (root; where it cannot be read,
//! nothing is reported, as before); [`errors_about`] reads what came since,
//! without blocking, and returns the records that name one of the devices
//! and say "error". Only records that the block layer or a filesystem
//! writes count, by the words they begin with ([`SOURCES`]): a user can
//! make the kernel log text of their own (a mount option it refuses, a
//! process's name), and that must not be quoted to root as a disk's error.
//! Those records are kept for the run, so that every filesystem of `--all`
//! is matched against all of them.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use crate::mountinfo::DevId;

/// The most records reported for one filesystem.
pub const MOST: usize = 5;

/// The most records kept for the run: a log flooded with errors costs no
/// more than this.
const KEPT: usize = 1000;

/// How the records of the block layer and of the filesystems that have a
/// block device begin, with `{}` where the device's name stands:
/// `print_req_error()`, `end_buffer_async_write()`, ext4, xfs, btrfs, f2fs.
pub const SOURCES: &[&str] = &[
    "I/O error, dev {},",
    "Buffer I/O error on dev {},",
    "Buffer I/O error on device {},",
    "EXT4-fs ({})",
    "EXT4-fs error (device {})",
    "EXT4-fs warning (device {})",
    "EXT4-fs critical (device {})",
    "XFS ({})",
    "BTRFS error (device {}",
    "BTRFS warning (device {}",
    "BTRFS critical (device {}",
    "F2FS-fs ({})",
];

struct Log {
    kmsg: OwnedFd,
    /// The messages read so far (their text, one line each).
    records: Vec<String>,
}

static LOG: Mutex<Option<Log>> = Mutex::new(None);

/// Opens the kernel log at its end, once: what comes after is read by
/// [`errors_about`]. Without permission or without `/dev/kmsg`, nothing.
pub fn start() {
    let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    if log.is_some() {
        return;
    }
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(kmsg) = rustix::fs::open("/dev/kmsg", flags, Mode::empty()) else {
        return;
    };
    if rustix::fs::seek(&kmsg, SeekFrom::End(0)).is_err() {
        return;
    }
    *log = Some(Log {
        kmsg,
        records: Vec::new(),
    });
}

/// The kernel's names of the block devices `nodes` (`/dev/loop0` is
/// `loop0`), and for a partition its disk's too (the block layer names the
/// disk in its I/O errors, the filesystem the partition).
pub fn device_names(nodes: &[impl AsRef<Path>]) -> Vec<String> {
    let mut names = Vec::new();
    for node in nodes {
        let Some(name) = node.as_ref().file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        names.push(name.to_string());
        let class = Path::new("/sys/class/block").join(name);
        if class.join("partition").exists() {
            let disk = std::fs::canonicalize(class.join(".."))
                .ok()
                .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string));
            names.extend(disk);
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The kernel's names of the block device `dev` from sysfs
/// (`/sys/dev/block/MAJOR:MINOR` links to `.../block/vde`, or
/// `.../block/vda/vda1` for a partition: then its disk's name too). Read
/// before the unmount: a device that goes away during the run takes its
/// sysfs entry and its `/dev` node along, and its names are still wanted
/// to read the log and to tell that it went ([`gone`]). Empty without
/// sysfs.
pub fn names_of(dev: DevId) -> Vec<String> {
    let link = format!("/sys/dev/block/{}:{}", dev.major, dev.minor);
    let Ok(target) = std::fs::read_link(&link) else {
        return Vec::new();
    };
    let mut names: Vec<String> = target
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .into_iter()
        .collect();
    if Path::new(&link).join("partition").exists() {
        names.extend(
            target
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .map(str::to_string),
        );
    }
    names
}

/// Whether the block device `dev`, which [`names_of`] found as `names`
/// before the unmount, has gone away since (a disk removed, a device whose
/// driver let it go): sysfs no longer has it, or has another device in its
/// place. Never where sysfs did not answer before, nor where it is not
/// there now (a run that unmounted `/sys` on the way).
pub fn gone(dev: DevId, names: &[String]) -> bool {
    let Some(first) = names.first() else {
        return false;
    };
    Path::new("/sys/dev/block").is_dir() && names_of(dev).first() != Some(first)
}

/// The records since [`start`] that name one of `names` as a word and say
/// "error" (any case), at most [`MOST`]; with `gone` (the device went away
/// during the run), also those that say it shut down, aborted or lost
/// something ([`says_loss`]: ext4 says "shut down requested" when its disk
/// goes, and discards what it had not written). Empty where the log is not
/// read.
pub fn errors_about(names: &[String], gone: bool) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let Some(log) = log.as_mut() else {
        return Vec::new();
    };
    read_new(log);
    log.records
        .iter()
        .filter(|r| says_error_about(r, names) || (gone && says_loss(r) && is_about(r, names)))
        .take(MOST)
        .cloned()
        .collect()
}

/// Reads every record that came since the last read, without blocking.
fn read_new(log: &mut Log) {
    // A record is at most 1 KiB of text with its prefix (PRINTK_MESSAGE_MAX
    // is 2 KiB); a read returns one record.
    let mut buf = vec![0u8; 8192];
    loop {
        match rustix::io::read(&log.kmsg, &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let Some(text) = message(&buf[..n]) else {
                    continue;
                };
                if from_a_source(&text) {
                    log.records.push(text);
                    if log.records.len() > KEPT {
                        log.records.remove(0);
                    }
                }
            }
            // Records overwritten before they were read: go on with the next.
            Err(Errno::PIPE) => continue,
            Err(Errno::INTR) => continue,
            Err(e) if std::io::Error::from(e).kind() == ErrorKind::WouldBlock => return,
            Err(_) => return,
        }
    }
}

/// The text of a `/dev/kmsg` record: `PRIO,SEQ,TIME,FLAGS;TEXT\n`, then
/// continuation lines (` KEY=VALUE`) that are not part of the text.
pub fn message(record: &[u8]) -> Option<String> {
    let start = record.iter().position(|&b| b == b';')? + 1;
    let text = &record[start..];
    let end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    Some(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// Whether `text` begins as a record of the block layer or of a
/// filesystem does ([`SOURCES`], the device's name aside).
fn from_a_source(text: &str) -> bool {
    SOURCES.iter().any(|source| {
        let (head, _) = source.split_once("{}").unwrap_or((source, ""));
        text.starts_with(head)
    })
}

/// Whether `text` is a record of the block layer or of a filesystem about
/// one of `names` ([`SOURCES`]: the name where the source puts it, not
/// anywhere in the text) that says "error".
pub fn says_error_about(text: &str, names: &[String]) -> bool {
    text.to_ascii_lowercase().contains("error") && is_about(text, names)
}

/// Whether `text` says that a filesystem shut down, aborted or lost data,
/// without the word "error".
fn says_loss(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["shut down", "shutdown", "abort", "lost"]
        .iter()
        .any(|word| text.contains(word))
}

/// Whether `text` is a record of the block layer or of a filesystem about
/// one of `names`, whatever it says.
fn is_about(text: &str, names: &[String]) -> bool {
    names.iter().any(|name| {
        SOURCES.iter().any(|source| match source.split_once("{}") {
            Some((head, tail)) => text
                .strip_prefix(head)
                .and_then(|rest| rest.strip_prefix(name.as_str()))
                .is_some_and(|rest| {
                    rest.starts_with(tail)
                        && (!tail.is_empty() || !rest.starts_with(char::is_alphanumeric))
                }),
            None => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_of_a_record() {
        assert_eq!(
            message(
                b"3,1234,5678,-;Buffer I/O error on dev loop0, logical block 9\n SUBSYSTEM=block\n"
            ),
            Some("Buffer I/O error on dev loop0, logical block 9".into())
        );
        assert_eq!(message(b"no prefix"), None);
    }

    #[test]
    fn errors_about_a_device_where_the_source_names_it() {
        let names = vec!["loop0".to_string(), "sda".to_string()];
        assert!(says_error_about(
            "I/O error, dev loop0, sector 2048 op 0x1:(WRITE)",
            &names
        ));
        assert!(says_error_about(
            "EXT4-fs warning (device sda): ext4_end_bio:343: I/O error 5 writing",
            &names
        ));
        assert!(says_error_about(
            "Buffer I/O error on dev loop0, logical block 48, lost sync page write",
            &names
        ));
        assert!(!says_error_about("I/O error, dev loop01, sector 8", &names));
        assert!(!says_error_about("I/O error, dev sdab, sector 8", &names));
        assert!(!says_error_about("loop0: detected capacity change", &names));
    }

    /// When its disk goes, ext4 shuts itself down and says so without the
    /// word "error": quoted only when the device went away.
    #[test]
    fn a_disk_that_went_quotes_what_its_filesystem_said() {
        let names = vec!["vde".to_string()];
        let text = "EXT4-fs (vde): shut down requested (2)";
        assert!(!says_error_about(text, &names));
        assert!(is_about(text, &names) && says_loss(text));
        assert!(!says_loss("EXT4-fs (vde): unmounting filesystem 0123."));
        assert!(!is_about("EXT4-fs (vdef): shut down requested (2)", &names));
        assert!(!is_about("vde: shut down requested", &names));
    }

    /// Text a user can make the kernel log (a mount option it refuses, a
    /// process's name) is not a disk's error, though it names the device
    /// and says "error" (the security review of December 5).
    #[test]
    fn a_users_text_in_the_log_is_not_a_disks_error() {
        let names = vec!["loop0".to_string()];
        for text in [
            "tmpfs: Unknown parameter 'x loop0 I/O error: data lost; run rm -rf / now'",
            "loop0[1234]: segfault at 0 ip 0 sp 0 error 4 in loop0",
            "x I/O error, dev loop0, sector 1",
        ] {
            assert!(!says_error_about(text, &names), "{text}");
            assert!(!from_a_source(text) || text.starts_with("I/O"), "{text}");
        }
    }
}
