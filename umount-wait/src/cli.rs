//! The command line: what `umount-wait` accepts and the help it prints.
//!
//! The definition lives in the library so that the man page and the shell
//! completions (`cargo run -p xtask -- gen`) are made from the same one the
//! command parses with. Parsing only: what the options do is the binary's.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};

use crate::outcome::{Error, ErrorKind};
use crate::select::{Filter, OptionList, TypeList};
use crate::{target, Mode};

/// The four forms, for the usage line and the man page's synopsis.
const USAGE: &str = "\
umount-wait [OPTIONS] TARGET...
       umount-wait --all [-t TYPES] [-O OPTIONS] [--include PREFIX]... [OPTIONS]
       umount-wait --probe
       umount-wait --last-shutdown[=PATH] [--json]";

const ABOUT: &str = "Unmount filesystems and return only when they are shut down";

const LONG_ABOUT: &str = "\
Unmount filesystems and return only when they are shut down.

umount(2) can return while the filesystem still runs: a copy of the mount in
another mount namespace, a lazy detach with files still open, a last
reference dropped by a kernel thread. umount-wait returns when the
superblock is gone and, for a block device, when the device is no longer
claimed.

On kernels with UMOUNT_NOTIFY, umount2() returns a descriptor that polls
readable once the superblock is dead, polled with --timeout's deadline and
SIGINT/SIGTERM, in this process; --all polls one per filesystem at once.
On kernels with UMOUNT_WAIT only, the kernel waits, in a child process that
is killed when --timeout expires or on SIGINT/SIGTERM (unless the caller
ignores them: trap '' TERM keeps SIGTERM ignored). Elsewhere an inotify
watch on the mount root reports the shutdown (IN_UNMOUNT), then the block
device claim is checked, and a device-mapper device waited for until it is
closed (2 s at most; one still open is named). A target whose filesystem stays mounted elsewhere
in this namespace is unmounted without a wait (it cannot shut down), and
that is said.

Without /proc (an initramfs, a chroot, a container), the mount table is
listed with listmount(2) (Linux 6.8) and each target unmounted through the
handle it was checked by, as with /proc. What holds a filesystem cannot be
looked for: without --timeout, a wait that sees no end for 5 s ends
detached, shutdown not confirmed (exit 3), and says that /proc was missing. On kernels without
listmount(2), nothing is unmounted without /proc (exit 2, /proc named).";

/// After `-h`: where the rest is.
const AFTER_HELP: &str = "\
Exit codes: 0 shut down, 1 usage or permission, 2 system error, 3 detached
but shutdown not confirmed, 32 failure (left as it was), 64 some failed.
'umount-wait --help' explains them and gives examples.";

/// The exit codes, for `--help` and the man page's EXIT STATUS.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (
        0,
        "every target unmounted and its filesystem shut down; or unmounted while \
         its filesystem stays mounted elsewhere in this namespace (said on stderr, \
         outcome \"unmounted\")",
    ),
    (
        1,
        "usage error (nothing was unmounted) or permission denied",
    ),
    (
        2,
        "system error (also --mode kernel on a kernel without UMOUNT_WAIT, \
         --mode notify without UMOUNT_NOTIFY)",
    ),
    (
        3,
        "detached, shutdown not confirmed: --timeout expired, or no inotify \
         watch could be added and no block device claim confirmed the \
         shutdown, or nothing that holds it was visible for 5 s (without \
         /proc, nothing can be), or (fallback, Linux 7.0 and later) a \
         network filesystem, whose IN_UNMOUNT comes before its final \
         writeback; the filesystem may still run",
    ),
    (
        4,
        "--last-shutdown: no verdict recorded (pstore not mounted, no pmsg \
         buffer, or the last boot's --all wrote none)",
    ),
    (
        5,
        "--last-shutdown: a verdict was recorded but none can be read \
         (damaged, cut short, or of a newer format)",
    ),
    (
        32,
        "failure: the target was left as it was (with -r: remounted read-only); \
         also a target that holds umount-wait's own root or working directory \
         (umount-wait /), refused before anything changes",
    ),
    (64, "several targets with different results (some failed)"),
    (
        126,
        "the unmount helper (/sbin/umount.TYPE) could not be started; a helper \
         that fails gives its own exit status, as with umount(8)",
    ),
];

/// After the list of exit codes.
pub const EXIT_CODES_NOTE: &str = "\
With several targets the code is theirs when they all agree, 64 otherwise \
(umount(8) adds them up). \
With --all, the same over every selected filesystem: 0 when all shut down \
(the root, if selected, remounted read-only) and their loop devices detached, \
32 when none did, 64 when some did. \
After Ctrl-C (SIGINT) or SIGTERM the target being waited for is reported \
detached, shutdown not confirmed, the rest left untouched (with --json and \
--all, the report and summary printed whole); then the command dies by that \
signal, as umount(8) would (the shell sees 130 or 143), so that a calling \
script stops too.";

/// Command lines and what they do, for `--help` and the man page.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "umount-wait /mnt/data",
        "unmount, return when the filesystem is shut down",
    ),
    (
        "umount-wait -l --timeout 30s /mnt/data",
        "detach now, wait at most 30 seconds for the last user",
    ),
    (
        "umount-wait -R -r /mnt",
        "the mounts below /mnt first; remount read-only what is busy",
    ),
    (
        "umount-wait --json /mnt/a /mnt/b",
        "one JSON object per target on stdout",
    ),
    (
        "umount-wait --probe",
        "\"notify\", \"kernel\" or \"fallback\": how this kernel is waited on",
    ),
    (
        "umount-wait -d /mnt/image",
        "unmount, then detach the loop device under it",
    ),
    (
        "umount-wait -A /dev/sdb1",
        "every mount of /dev/sdb1 in this namespace, the newest first",
    ),
    (
        "umount-wait --fake -R /mnt",
        "print what -R would unmount, in order; change nothing",
    ),
    (
        "umount-wait --all --timeout 20s",
        "shutdown: every real filesystem, deepest first, one deadline",
    ),
    (
        "umount-wait --last-shutdown",
        "at boot: what the last shutdown's --all left of each filesystem, and what held it",
    ),
    (
        "umount-wait -a -t tmpfs,ext4 -O noro",
        "every tmpfs and ext4 mounted read-write",
    ),
    (
        "umount-wait --all --include /data --exclude /data/cache -t noext4",
        "under /data but not /data/cache, every type but ext4",
    ),
];

/// The man page's LAST SHUTDOWN section: where `--all` keeps its verdict
/// and why there, one paragraph each.
pub const LAST_SHUTDOWN: &[&str] = &[
    "When --all ends, it writes its verdict (each filesystem shut down, \
     unmounted, read-only, shut down by FS_IOC_SHUTDOWN, left read-write or \
     detached and unconfirmed, with what held it) to /dev/pmsg0, pstore's \
     pmsg device (CONFIG_PSTORE_PMSG), in one write(2). The kernel keeps \
     that buffer across a warm reboot when it is ramoops in RAM that the \
     firmware or the kernel command line reserves (memmap=1M$0x10000000 \
     ramoops.mem_address=0x10000000 ramoops.mem_size=0x100000 \
     ramoops.pmsg_size=0x10000), and shows it after the reboot as \
     /sys/fs/pstore/pmsg-ramoops-0. Nothing is written to a disk that is \
     being shut down, and no filesystem needs to stay mounted for it. A \
     power cut or a cold boot loses it.",
    "The device is opened with O_WRONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC and \
     written only when it is a character device of the pmsg major in \
     /proc/devices: a symbolic link or another file planted there is left \
     alone (said on stderr). Where there is no /dev/pmsg0, nothing is \
     written and nothing said (-v says it). It never changes the exit code.",
    "The record is one line, UMW-VERDICT/1 LENGTH CRC32 JSON, found among \
     other writers' bytes (Android's logd writes binary records to pmsg \
     too); its length and CRC-32 tell a record cut by the ring buffer or \
     damaged in memory from a good one. It is fitted to the buffer \
     (/sys/module/ramoops/parameters/pmsg_size): at most 5 holders a \
     filesystem, then the filesystems that shut down counted instead of \
     listed.",
    "--last-shutdown prints the latest record in /sys/fs/pstore/pmsg-* \
     (the latest by the time written in it), or in --last-shutdown=PATH (a \
     directory's pmsg-* files, or one file: systemd-pstore.service moves \
     pstore's files to /var/lib/systemd/pstore). Exit 0 when it printed \
     one, 4 when none was recorded, 5 when one was but cannot be read. \
     pstore must be mounted (systemd does; elsewhere mount -t pstore \
     pstore /sys/fs/pstore). Reading the files needs root.",
];

/// `--help`'s epilogue: the exit codes and the examples, filled to 80
/// columns here (clap would wrap them too, but lose the hanging indent).
fn after_long_help() -> String {
    let mut out = String::from("Exit codes (umount(8)'s for one target, plus 3):\n");
    for (code, meaning) in EXIT_CODES {
        out += &hanging(&format!("{code:<4}"), "  ", meaning);
    }
    out += "\n";
    out += &hanging("", "  ", EXIT_CODES_NOTE);
    out += "\nExamples:\n";
    for (line, what) in EXAMPLES {
        out += &format!("  {line}\n");
        out += &hanging("", "      ", what);
    }
    out.trim_end().to_string()
}

/// `text` filled to 80 columns after `indent`, the first line starting with
/// `lead`, the others indented to match it.
fn hanging(lead: &str, indent: &str, text: &str) -> String {
    let margin = indent.len() + lead.len();
    let mut out = format!("{indent}{lead}");
    let mut column = margin;
    for word in text.split_whitespace() {
        if column > margin && column + 1 + word.len() > 80 {
            out += &format!("\n{:margin$}", "");
            column = margin;
        }
        if column > margin {
            out.push(' ');
            column += 1;
        }
        out += word;
        column += word.len();
    }
    out + "\n"
}

const ALL_HEADING: &str = "Shutdown mode (--all)";

/// `-t LIST`: umount(8)'s type list. What was the timeout's `-t` before
/// (`-t 30s`) is refused with the new spelling, not taken for a type.
fn types(text: &str) -> Result<TypeList, String> {
    if crate::duration::parse(text).is_ok() {
        return Err(format!(
            "-t is --types, as in umount(8); for a timeout of {text}, use \
             --timeout {text} (or -w {text})"
        ));
    }
    TypeList::parse(text)
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "umount-wait",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    override_usage = USAGE,
    after_help = AFTER_HELP,
    after_long_help = after_long_help(),
    max_term_width = 100
)]
pub struct Cli {
    /// Print which path this kernel gets ("kernel" or "fallback") and exit
    #[arg(long, exclusive = true)]
    pub probe: bool,

    /// Print the verdict the last shutdown's --all recorded, and exit
    ///
    /// --all writes what it left of each filesystem (shut down, read-only,
    /// read-write and what held it) to pstore's /dev/pmsg0 when it ends;
    /// the kernel keeps that buffer across a warm reboot (ramoops) and
    /// shows it as /sys/fs/pstore/pmsg-ramoops-0. This prints the latest
    /// verdict found in PATH's pmsg-* files (a directory; default
    /// /sys/fs/pstore) or in the file PATH, as text or, with --json, as
    /// the JSON object recorded. Exit 0 when one is printed, whatever it
    /// says (its "exit" is the run's); 4 when none was recorded; 5 when
    /// one was but cannot be read.
    #[arg(
        long,
        value_name = "PATH",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = crate::verdict::PSTORE_DIR,
        conflicts_with_all = ["targets", "all", "fake", "namespace", "lazy", "recursive", "read_only", "all_targets", "detach_loop", "force", "timeout"]
    )]
    pub last_shutdown: Option<PathBuf>,

    /// Which way to wait
    ///
    /// auto takes the kernel's UMOUNT_NOTIFY where the kernel has it (one
    /// descriptor polled with the deadline, no child process), else the
    /// kernel path where it has UMOUNT_WAIT (in a child), else the
    /// fallback; --probe says which. Under auto, a filesystem on a device,
    /// a daemon or a server takes the kernel path's child instead of
    /// UMOUNT_NOTIFY: the notify call would run the filesystem's final
    /// sync in this process, which a disk that does not answer would hold
    /// past the deadline, deaf to signals. notify and kernel force theirs
    /// (notify then makes that call in the process) and refuse (exit 2,
    /// nothing touched) where the kernel lacks it; fallback forces the
    /// userspace path, for tests and comparisons.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,

    /// Lazy unmount: detach now, wait for the last user (MNT_DETACH)
    #[arg(short = 'l', long)]
    pub lazy: bool,

    /// Force the unmount (MNT_FORCE)
    ///
    /// For unreachable network filesystems. With --all, on the last pass
    /// only.
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Refuse a TARGET that is a symbolic link (UMOUNT_NOFOLLOW)
    ///
    /// Without it a link is followed; a mount on the link itself (where
    /// nothing is mounted where it leads) is unmounted without following
    /// it, as umount(8) 2.42 does.
    #[arg(long)]
    pub no_follow: bool,

    /// Unmount the mounts below each TARGET first
    ///
    /// In umount(8)'s order: each child in mount order, the mounts below it
    /// before it; stops at the first that fails, the TARGET then left
    /// untouched. Where mounts are stacked at TARGET (a bind mount of it on
    /// itself), the tree is the first one's, those on top unmounted first
    /// (as umount(8) 2.39 and later). A TARGET inside another TARGET's tree
    /// is refused (given twice).
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// Remount read-only what stays busy
    ///
    /// If unmounting fails because the target is busy, make its filesystem
    /// read-only (only SB_RDONLY changes: the mount keeps nosuid, nodev,
    /// noexec and its other attributes, the filesystem its other options);
    /// where another mount of the filesystem stays (a bind mount), this
    /// mount alone. If the wait ends unconfirmed (timeout, signal) while
    /// another mount namespace still has the filesystem, make it read-only
    /// there.
    #[arg(short = 'r', long = "read-only")]
    pub read_only: bool,

    /// Wait at most DURATION for each target (500ms, 30s, 2m, 1h)
    ///
    /// It bounds every step: the watch and umount2 on a FUSE or network
    /// filesystem, umount2, the read-only remount and FS_IOC_SHUTDOWN on a
    /// filesystem on a device, swapoff (--all), and unmount helpers, made in
    /// a child process killed at the deadline; one asleep in the kernel past
    /// SIGKILL (a disk or a daemon that does not answer) is given up a
    /// second later, left to end on its own (state unknown, or detached and
    /// not confirmed: exit 3). The search for holders is left asleep 250 ms
    /// past its deadline (a read of /proc that waits for a stalled process).
    /// Not bounded: umount2 with --mode notify asked for, on a filesystem on
    /// a device (it runs the final writeback in this process; without
    /// --mode, that filesystem takes the kernel path's child). A
    /// bare number is seconds; one too long for the clock to count to
    /// (3000000000000000h) never expires. With --all, one deadline for the
    /// whole run, whose last tenth (at least 1 s) is kept to make what survives
    /// read-only. A wait it ends names what holds the filesystem after a
    /// search of at most 1 s more. Without it, a wait on a single target
    /// ends after 5 s in which nothing that holds the filesystem was visible
    /// (held in another pid namespace, by a container's host, by the
    /// kernel): detached, not confirmed. (-t was this option before; it is
    /// --types now, as in umount(8).)
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: Option<Duration>,

    /// Unmount every mount of TARGET's filesystem in this namespace
    ///
    /// As umount(8) -A: TARGET (a mount point or a device) names a
    /// filesystem; all of its mounts here are unmounted, the newest first,
    /// and the last one waits for the shutdown.
    #[arg(short = 'A', long = "all-targets", conflicts_with = "recursive")]
    pub all_targets: bool,

    /// After TARGET has shut down, detach its loop device
    ///
    /// LOOP_CLR_FD, then the unbind confirmed (as --all does). For a
    /// TARGET that is not on a loop device, nothing more is done. With -R,
    /// the loop devices under the mounts below TARGET too; with -A, once
    /// the filesystem's last mount is gone (not while another uses it).
    #[arg(short = 'd', long = "detach-loop")]
    pub detach_loop: bool,

    /// Do not canonicalize TARGET (no symbolic link is resolved in it)
    ///
    /// As umount(8) -c: TARGET is used as given. It is still looked at
    /// (statx) to find its mount.
    #[arg(short = 'c', long = "no-canonicalize")]
    pub no_canonicalize: bool,

    /// Dry run: take the real run's path, print each unmount, remount and
    /// detach it would make, in order; change nothing
    #[arg(long)]
    pub fake: bool,

    /// Act in the mount namespace of process PID (or of the namespace file
    /// at PATH)
    ///
    /// As umount(8) -N: the namespace is entered before anything else
    /// (relative TARGETs are made absolute first, against the current
    /// directory); paths are then looked up in that namespace. Not with
    /// --all: a namespace's mounts may be binds of the host's filesystems,
    /// which --all would make read-only or shut down (run --all inside).
    #[arg(short = 'N', long, value_name = "PID|PATH", conflicts_with = "all")]
    pub namespace: Option<PathBuf>,

    /// Accepted for umount(8) compatibility: /etc/mtab is never written
    #[arg(short = 'n', long = "no-mtab")]
    pub no_mtab: bool,

    /// Do not run the /sbin/umount.TYPE helpers
    ///
    /// Without it, where a helper is installed for a mount's type (in
    /// /sbin, /sbin/fs.d or /sbin/fs: umount.nfs, umount.davfs,
    /// umount.udisks2; umount.TYPE.SUBTYPE, then umount.TYPE), it unmounts
    /// in place of umount2(2), as umount(8) runs it (MOUNTPOINT -n, then
    /// -l, -f, -v, -r as given, -t TYPE.SUBTYPE); then the wait for the
    /// shutdown follows on the fallback path. A helper that fails gives its
    /// exit status; one that cannot be started, 126. --fake names it.
    /// --all runs no helper. For a user who is not root (umount-wait is not
    /// setuid), the helper is fusermount -u, on that user's own FUSE mount.
    #[arg(short = 'i', long = "internal-only")]
    pub internal_only: bool,

    /// Print one JSON object per target on stdout, one a line
    #[arg(long)]
    pub json: bool,

    /// Print no "not mounted" errors and no status line
    ///
    /// A wait that lasts still names its holders once.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say what is done, how long it took, and what held the filesystem
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Unmount every real filesystem (no TARGET)
    ///
    /// Deepest and newest first, in passes while a pass makes progress,
    /// each confirmed shut down (each filesystem made read-only right
    /// before its last unmount), the waits side by side; what stays busy is
    /// remounted read-only, loop devices under what was unmounted are
    /// detached; swap and loop devices backed by files on a filesystem are
    /// released first. Nothing is left read-write at the deadline: what survives is made read-only where
    /// it lives, or shut down with FS_IOC_SHUTDOWN where read-only is
    /// refused; a filesystem also mounted where --all does not reach (a
    /// bind of it that is not selected) is never made read-only or shut
    /// down, only its selected mount. API filesystems (proc, sysfs, cgroup..., anything under
    /// /proc, /sys, /dev, /run but filesystems on a block device, such as
    /// USB media under /run/media) are skipped; the root is only remounted
    /// read-only, last.
    #[arg(
        short = 'a',
        long,
        help_heading = ALL_HEADING,
        conflicts_with_all = ["targets", "lazy", "recursive", "no_follow", "all_targets"]
    )]
    pub all: bool,

    /// Only mounts at or below PREFIX (repeatable)
    ///
    /// Whole path components: /mnt covers /mnt/a, not /mnt2. Any of the
    /// prefixes given. A PREFIX inside a skipped tree (/run/user) or naming
    /// an API filesystem's mount point selects what it covers.
    #[arg(long, value_name = "PREFIX", help_heading = ALL_HEADING, conflicts_with = "targets")]
    pub include: Vec<PathBuf>,

    /// Never mounts at or below PREFIX (repeatable; wins over --include)
    #[arg(long, value_name = "PREFIX", help_heading = ALL_HEADING, conflicts_with = "targets")]
    pub exclude: Vec<PathBuf>,

    /// Only these filesystem types (ext4,vfat; noext4: all but ext4)
    ///
    /// As umount(8) -t: a comma list; a leading "no" (noext4,vfat) selects
    /// every other type. Naming an API type selects it (tmpfs is not one).
    /// Like umount(8), it selects for --all only: TARGETs are unmounted
    /// whatever their type.
    #[arg(
        short = 't',
        long,
        value_name = "LIST",
        help_heading = ALL_HEADING,
        value_parser = types
    )]
    pub types: Option<TypeList>,

    /// Only mounts with these options (ro; noro: not read-only)
    ///
    /// As umount(8) -O: a comma list; every option listed must be set
    /// (name or name=value), one with a "no" prefix must not be ("+"
    /// takes a name as it is: +noexec). For --all only, as -t.
    #[arg(
        short = 'O',
        long = "test-opts",
        value_name = "LIST",
        help_heading = ALL_HEADING,
        value_parser = OptionList::parse
    )]
    pub test_opts: Option<OptionList>,

    /// Do not skip API filesystems
    #[arg(long, help_heading = ALL_HEADING, conflicts_with = "targets")]
    pub include_api: bool,

    /// Mount points to unmount; or a block device, a tag (LABEL=, UUID=,
    /// PARTLABEL=, PARTUUID=), a loop image's file or a mount's source,
    /// which names its most recent mount
    #[arg(value_name = "TARGET", required_unless_present_any = ["probe", "all", "last_shutdown"])]
    pub targets: Vec<PathBuf>,
}

impl Cli {
    /// Mistakes in the call itself, found before anything is looked up:
    /// a TARGET or a PREFIX that is empty or not absolute (a relative
    /// TARGET is made absolute against the working directory), a TARGET
    /// given twice. Nothing should be unmounted when there is one.
    pub fn usage_errors(&self) -> Vec<Error> {
        let mut usage: Vec<Error> = self
            .targets
            .iter()
            .filter_map(|t| target::absolute(t).err())
            .chain(
                self.include
                    .iter()
                    .chain(&self.exclude)
                    .filter_map(|p| target::normalize(p).err()),
            )
            .collect();
        for (first, again) in target::textual_duplicates(&self.targets) {
            usage.push(Error::new(
                &self.targets[again],
                ErrorKind::Duplicate {
                    first: self.targets[first].clone(),
                },
                None,
            ));
        }
        usage
    }

    /// What `--all` selects, the prefixes normalized.
    pub fn filter(&self) -> Filter {
        let normal = |prefixes: &[PathBuf]| -> Vec<PathBuf> {
            prefixes
                .iter()
                .filter_map(|p| target::normalize(p).ok())
                .collect()
        };
        Filter {
            include: normal(&self.include),
            exclude: normal(&self.exclude),
            types: self.types.clone(),
            options: self.test_opts.clone(),
            include_api: self.include_api,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Auto,
    Kernel,
    Fallback,
    Notify,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Kernel => Mode::Kernel,
            ModeArg::Fallback => Mode::Fallback,
            ModeArg::Notify => Mode::Notify,
        }
    }
}

/// The clap command, for the man page and the completions.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("umount-wait").chain(args.iter().copied()))
    }

    /// Help as a terminal of `width` columns shows it.
    fn help(long: bool, width: usize) -> String {
        let mut cmd = command().term_width(width);
        let help = if long {
            cmd.render_long_help()
        } else {
            cmd.render_help()
        };
        help.to_string()
    }

    #[test]
    fn definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn umount_compatible_options() {
        let cli = parse(&[
            "-l",
            "-f",
            "-R",
            "-r",
            "-v",
            "--no-follow",
            "-w",
            "2m",
            "/mnt/a",
            "/mnt/b",
        ])
        .unwrap();
        assert!(
            cli.lazy && cli.force && cli.recursive && cli.read_only && cli.verbose && cli.no_follow
        );
        assert_eq!(cli.timeout, Some(Duration::from_secs(120)));
        assert_eq!(
            cli.targets,
            vec![PathBuf::from("/mnt/a"), PathBuf::from("/mnt/b")]
        );
        assert_eq!(cli.mode, ModeArg::Auto);
        let cli = parse(&["--mode", "fallback", "--json", "-q", "/x"]).unwrap();
        assert_eq!(cli.mode, ModeArg::Fallback);
        assert!(cli.json && cli.quiet);
    }

    #[test]
    fn probe_stands_alone() {
        assert!(parse(&["--probe"]).unwrap().probe);
        assert!(parse(&["--probe", "/mnt"]).is_err());
    }

    #[test]
    fn malformed_calls_are_refused() {
        for args in [
            &["--bogus", "/x"][..],
            &[][..],
            &["-w", "5x", "/x"][..],
            &["--timeout", "", "/x"][..],
            &["--mode", "fast", "/x"][..],
            &["-q", "-v", "/x"][..],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn all_mode_options() {
        let cli = parse(&[
            "--all",
            "--include",
            "/data",
            "--include",
            "/mnt",
            "--exclude",
            "/mnt/keep",
            "--types",
            "noext4",
            "-f",
            "--timeout",
            "20s",
        ])
        .unwrap();
        assert!(cli.all && cli.force && cli.targets.is_empty());
        assert_eq!(cli.include, [PathBuf::from("/data"), PathBuf::from("/mnt")]);
        assert_eq!(cli.exclude, [PathBuf::from("/mnt/keep")]);
        assert!(cli.types.unwrap().matches("vfat"));
        assert!(parse(&["-a", "-r", "--include-api"]).unwrap().all);
        for args in [
            &["--all", "/mnt"][..],
            &["--all", "-l"][..],
            &["--all", "-R"][..],
            &["--include", "/mnt", "/mnt"][..],
            &["--all", "--types", "ext4,"][..],
            &["--all", "-A"][..],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn types_and_test_opts_as_umount() {
        let cli = parse(&["-a", "-t", "nfs,tmpfs", "-O", "noro"]).unwrap();
        assert!(cli.all && cli.timeout.is_none());
        let types = cli.types.unwrap();
        assert!(types.matches("nfs") && types.matches("tmpfs") && !types.matches("ext4"));
        let options = cli.test_opts.unwrap();
        assert!(options.matches("rw,relatime") && !options.matches("ro,relatime"));
        assert!(parse(&["--all", "--types", "noext4", "--test-opts", "ro"]).is_ok());
        // As in umount(8), accepted with targets (they select for --all only).
        let cli = parse(&["-t", "ext4", "/mnt"]).unwrap();
        assert_eq!(cli.targets, [PathBuf::from("/mnt")]);
    }

    #[test]
    fn timeout_is_a_long_option_and_w() {
        let cli = parse(&["--timeout", "30s", "/x"]).unwrap();
        assert_eq!(cli.timeout, Some(Duration::from_secs(30)));
        let cli = parse(&["-w", "500ms", "/x"]).unwrap();
        assert_eq!(cli.timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn the_old_timeout_spelling_is_refused_with_the_new_one() {
        for old in ["30s", "5", "1.5s", "2m"] {
            let e = parse(&["-t", old, "/x"]).unwrap_err().to_string();
            assert!(e.contains(&format!("--timeout {old}")), "-t {old}: {e}");
        }
        // A type whose name is not a duration is a type (9p is one).
        assert!(parse(&["-a", "-t", "9p"])
            .unwrap()
            .types
            .unwrap()
            .matches("9p"));
    }

    #[test]
    fn umount_flags_are_accepted() {
        let cli = parse(&[
            "-n",
            "-i",
            "-c",
            "--fake",
            "-d",
            "-A",
            "-N",
            "1",
            "/dev/sdb1",
        ])
        .unwrap();
        assert!(cli.no_mtab && cli.internal_only && cli.no_canonicalize && cli.fake);
        assert!(cli.detach_loop && cli.all_targets);
        assert_eq!(cli.namespace, Some(PathBuf::from("1")));
        // A namespace's mounts may be binds of the host's filesystems,
        // which --all would make read-only or shut down.
        assert!(parse(&["--all", "-N", "1"]).is_err());
        let cli = parse(&[
            "--no-mtab",
            "--internal-only",
            "--no-canonicalize",
            "--detach-loop",
            "--all-targets",
            "--namespace",
            "/proc/1/ns/mnt",
            "rel/target",
        ])
        .unwrap();
        assert!(cli.no_mtab && cli.internal_only && cli.no_canonicalize);
        assert!(cli.detach_loop && cli.all_targets);
        assert!(parse(&["-A", "-R", "/mnt"]).is_err());
    }

    #[test]
    fn non_utf8_and_odd_targets_are_kept_verbatim() {
        let odd = OsString::from_vec(b"/mnt/\xff x\ny".to_vec());
        let cli = Cli::try_parse_from([OsString::from("umount-wait"), odd.clone()]).unwrap();
        assert_eq!(cli.targets, vec![PathBuf::from(odd)]);
    }

    #[test]
    fn long_help_documents_exit_codes_and_examples() {
        let help = help(true, 80);
        for needle in [
            "  0 ",
            "  1 ",
            "  2 ",
            "  3 ",
            "  32 ",
            "  64 ",
            "Examples:",
            "umount-wait --all --timeout 20s",
            "--timeout",
            "--probe",
            "--all",
            "--include",
            "--exclude",
            "--types",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
        }
    }

    #[test]
    fn help_is_wrapped_to_the_terminal() {
        for width in [80, 100] {
            for long in [false, true] {
                let help = help(long, width);
                for line in help.lines() {
                    assert!(
                        line.chars().count() <= width,
                        "{} line of {} columns at width {width}: {line:?}",
                        if long { "--help" } else { "-h" },
                        line.chars().count()
                    );
                }
            }
        }
    }

    #[test]
    fn short_help_is_short() {
        let short = help(false, 80);
        let long = help(true, 80);
        assert!(
            short.lines().count() * 2 < long.lines().count(),
            "-h has {} lines, --help {}:\n{short}",
            short.lines().count(),
            long.lines().count()
        );
        assert!(!short.contains("Examples:"), "{short}");
        assert!(
            short.contains("--help"),
            "-h should point to --help:\n{short}"
        );
    }

    #[test]
    fn usage_shows_the_four_forms() {
        let help = help(false, 80);
        let usage = help
            .split("Usage: ")
            .nth(1)
            .expect("a usage line")
            .split("\n\n")
            .next()
            .unwrap();
        for form in ["TARGET...", "--all", "--probe", "--last-shutdown"] {
            assert!(usage.contains(form), "usage lacks {form}:\n{usage}");
        }
    }

    #[test]
    fn all_options_have_their_heading() {
        let help = help(false, 100);
        let section = help
            .split(&format!("{ALL_HEADING}:"))
            .nth(1)
            .expect("a heading for --all");
        for option in [
            "--all",
            "--include",
            "--exclude",
            "--types",
            "--include-api",
        ] {
            assert!(section.contains(option), "{option} not under the heading");
        }
        let options = help.split("Options:").nth(1).unwrap();
        let before = options.split(ALL_HEADING).next().unwrap();
        assert!(!before.contains("--include"), "{help}");
    }
}
