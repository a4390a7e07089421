//! Side by side with umount(8): the same setup, the same command line, once
//! with util-linux `umount` and once with `umount-wait`; the exit codes and
//! the end state (the mounts under the scratch directory, read-only or not,
//! and each loop device: bound, claimed) are compared, case by case.
//!
//! Each run is a shell script in a mount namespace of its own
//! (`unshare -m --propagation private`), on a scratch directory of its own,
//! so that `-a` and a failing case touch nothing else. Processes that hold
//! a file or a directory say so through a FIFO before the command runs; no
//! sleep stands for a synchronisation, and nothing is timed.
//!
//! The table it prints is the one in README.md ("Side by side with
//! umount(8)"); the test fails when they differ (`UMW_COMPAT_UPDATE=1`
//! writes it there), when a case differs without a reason given, or when a
//! reason is given for a case that does not differ.
//!
//! Needs root, `umount` (util-linux), `unshare`, `setpriv`, `losetup`,
//! `mkfs.ext4` and `bindfs` (ci/setup installs them). Without root it skips with a message; with
//! `UMW_REQUIRE_PRIVILEGED=1` a skip is a failure. Run one case with
//! `cargo test -p umount-wait --test compat -- WORDS-OF-ITS-NAME`.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_umount-wait");

/// One line of the table.
struct Case {
    /// What is compared, as the table says it.
    name: &'static str,
    /// Shell run in the scratch directory `$T` before the command: mounts,
    /// images (`image NAME`, `attach NAME` sets `$dev`), holders
    /// (`hold FILE`, `hold_cwd DIR`), `isolate TYPE` (for `-a`: no mount
    /// of that type outside `$T`).
    setup: &'static str,
    /// The arguments, shell words (`$T`, `$dev`, `$ns` are set).
    args: &'static str,
    /// Arguments given to umount-wait only, after the others.
    umount_wait_only: &'static str,
    /// The command runs here (default `/`).
    cwd: &'static str,
    /// The command runs as nobody.
    unprivileged: bool,
    /// Whether the command says anything on stderr is compared too (`-q`).
    silence: bool,
    /// Words umount-wait must say, on standard output or error (checked,
    /// not compared: umount(8) says other things).
    umount_wait_says: Option<&'static str>,
    /// Why the two differ, when they do on purpose.
    intended: Option<&'static str>,
    /// A difference known and not settled yet: the table says so, the
    /// test does not fail on it (it fails when the difference goes).
    open: Option<&'static str>,
}

const DEFAULT: Case = Case {
    name: "",
    setup: "",
    args: "",
    umount_wait_only: "",
    cwd: "/",
    unprivileged: false,
    silence: false,
    umount_wait_says: None,
    intended: None,
    open: None,
};

/// Measured with util-linux 2.38.1 and 2.42.4: `umount -r` on a busy target
/// (strace).
const R_DIFFERS: &str = "umount(8) 2.38.1 does not remount: one umount2, \
    EBUSY, exit 32, no mount call, though its page says -r does; 2.42.4 \
    remounts read-only (libmount's \"fix umount --read-only\") and exits 0; \
    umount-wait remounts read-only too, and exits 32: the filesystem is \
    still mounted, which is what its exit code tells";

const TMPFS_M: &str = "mkdir m && mount -t tmpfs umw-compat m";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "not mounted",
            setup: "mkdir plain",
            args: "$T/plain",
            ..DEFAULT
        },
        Case {
            name: "not mounted, `-q`",
            setup: "mkdir plain",
            args: "-q $T/plain",
            ..DEFAULT
        },
        Case {
            name: "not mounted, `-q`, as nobody",
            setup: "chmod 755 \"$T\" && mkdir plain",
            args: "-q $T/plain",
            unprivileged: true,
            silence: true,
            intended: Some(
                "setuid umount(8) reports what a user may not unmount as a \
                 usage error (1), and 2.38.1 ignores -q there; 2.42.4 \
                 (since 2.39) is silent with -q; umount-wait, not setuid, \
                 finds nothing mounted (32), silent with -q as well",
            ),
            ..DEFAULT
        },
        Case {
            name: "a tmpfs, `-q`, as nobody",
            setup: "chmod 755 \"$T\" && mkdir m && mount -t tmpfs umw-compat m",
            args: "-q $T/m",
            unprivileged: true,
            silence: true,
            intended: Some(
                "setuid umount(8) refuses by itself (not in fstab with \
                 `user`) and calls that a mount failure (32); umount-wait, not \
                 setuid, gets EPERM from umount2 and exits 1, as umount(8)'s \
                 page says of permissions; -q silences neither",
            ),
            ..DEFAULT
        },
        Case {
            name: "a user's own FUSE mount, as that user",
            setup: "fuse_as_nobody m",
            args: "$T/m",
            unprivileged: true,
            umount_wait_only: "-v",
            umount_wait_says: Some("/usr/bin/fusermount"),
            ..DEFAULT
        },
        Case {
            name: "a tmpfs that /etc/fstab lets users unmount, as nobody",
            setup: "chmod 755 \"$T\" && mkdir m && mount -t tmpfs umw-compat m && \
                    fstab_line \"umw-compat $T/m tmpfs noauto,users 0 0\"",
            args: "$T/m",
            unprivileged: true,
            umount_wait_says: Some("/etc/fstab lets users unmount it"),
            intended: Some(
                "umount(8) is setuid and unmounts for users what /etc/fstab \
                 lets them (`user`, `users`); umount-wait is not setuid: it \
                 refuses, exit 1, and names umount(8), or itself as root",
            ),
            ..DEFAULT
        },
        Case {
            name: "no such path",
            args: "$T/nothing",
            ..DEFAULT
        },
        Case {
            name: "a tmpfs",
            setup: TMPFS_M,
            args: "$T/m",
            ..DEFAULT
        },
        Case {
            name: "busy (a file held open)",
            setup: "mkdir m && mount -t tmpfs umw-compat m && echo x >m/f && hold m/f",
            args: "$T/m",
            ..DEFAULT
        },
        Case {
            name: "permission denied (as nobody)",
            setup: TMPFS_M,
            args: "$T/m",
            unprivileged: true,
            ..DEFAULT
        },
        Case {
            name: "`-r` on busy ext4",
            setup: "mkdir m && image d && attach d && mount $dev m && echo x >m/f && hold m/f",
            args: "-r $T/m",
            intended: Some(R_DIFFERS),
            ..DEFAULT
        },
        Case {
            name: "`-r` on busy tmpfs",
            setup: "mkdir m && mount -t tmpfs umw-compat m && echo x >m/f && hold m/f",
            args: "-r $T/m",
            intended: Some(R_DIFFERS),
            ..DEFAULT
        },
        Case {
            name: "`-R` with a busy child",
            setup: "mkdir m && mount -t tmpfs umw-compat m && mkdir m/a m/b && \
                    mount -t tmpfs umw-compat m/a && mount -t tmpfs umw-compat m/b && \
                    echo x >m/b/f && hold m/b/f",
            args: "-R $T/m",
            intended: Some(
                "umount(8) 2.42.4 takes the children in another order (m/b, \
                 the last mounted, first: strace) and stops at the busy one, \
                 leaving m/a mounted; umount-wait, as 2.38.1, unmounts every \
                 child it can and says which could not be",
            ),
            ..DEFAULT
        },
        Case {
            name: "`-R` with free children",
            setup: "mkdir m && mount -t tmpfs umw-compat m && mkdir m/a m/b && \
                    mount -t tmpfs umw-compat m/a && mount -t tmpfs umw-compat m/b",
            args: "-R $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-R` with a bind mount of the mount point on top of it",
            setup: "mkdir m && mount -t tmpfs umw-compat m && mkdir m/a && \
                    mount -t tmpfs umw-compat m/a && mount --bind m m",
            args: "-R $T/m",
            intended: Some(
                "umount(8) 2.38.1 takes the bind on top as the tree and leaves the \
                 tmpfs under it, m/a too; 2.42.4 (since 2.39: \"handle bindmounts \
                 during --recursive\") and umount-wait take the stack from its first \
                 mount, the bind on top unmounted first",
            ),
            ..DEFAULT
        },
        Case {
            name: "`-a -t tmpfs`: tmpfs, ramfs and ext4 mounted",
            setup: "isolate tmpfs && mkdir t1 t2 r e && mount -t tmpfs umw-compat t1 && \
                    mount -t tmpfs umw-compat t2 && mount -t ramfs umw-compat r && \
                    image e && attach e && mount $dev e",
            args: "-a -t tmpfs",
            ..DEFAULT
        },
        Case {
            name: "`-a -t tmpfs -O ro`",
            setup: "isolate tmpfs && mkdir t1 t2 && mount -t tmpfs -o ro umw-compat t1 && \
                    mount -t tmpfs umw-compat t2",
            args: "-a -t tmpfs -O ro",
            ..DEFAULT
        },
        Case {
            name: "`-a -t ramfs`, one of two busy",
            setup: "isolate ramfs && mkdir r1 r2 && mount -t ramfs umw-compat r1 && \
                    mount -t ramfs umw-compat r2 && echo x >r2/f && hold r2/f",
            args: "-a -t ramfs",
            intended: Some(
                "`--all` implies `-r`: the busy one is remounted read-only; \
                 and the codes are combined (64: some shut down, some not) \
                 where umount(8) -a gives 32 for any failure",
            ),
            ..DEFAULT
        },
        Case {
            name: "`-l`",
            setup: TMPFS_M,
            args: "-l $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-l`, a file held open",
            setup: "mkdir m && mount -t tmpfs umw-compat m && echo x >m/f && hold m/f",
            args: "-l $T/m",
            umount_wait_only: "--timeout 100ms",
            intended: Some(
                "it waits: for the holder, here until `--timeout` \
                 (given to umount-wait only): detached, shutdown not confirmed",
            ),
            ..DEFAULT
        },
        Case {
            name: "`-d`, ext4 on a loop device",
            setup: "mkdir m && image d && attach d && mount $dev m",
            args: "-d $T/m",
            ..DEFAULT
        },
        Case {
            name: "`LABEL=`, a labelled ext4 on a loop device",
            setup:
                "mkdir m && image d && e2label $T/d.img umw-compat-lbl && attach d && mount $dev m",
            args: "LABEL=umw-compat-lbl",
            ..DEFAULT
        },
        Case {
            name: "a loop image's file path, its ext4 mounted",
            setup: "mkdir m && image d && attach d && mount $dev m",
            args: "$T/d.img",
            ..DEFAULT
        },
        Case {
            name: "`-R -d`, ext4 on a loop device with a tmpfs below",
            setup: "mkdir m && image d && attach d && mount $dev m && mkdir m/sub \
                    && mount -t tmpfs umw-compat m/sub",
            args: "-R -d $T/m",
            intended: Some(
                "umount(8) (util-linux 2.38.1) unmounts the tree and leaves the loop device \
                 bound; umount-wait carries -d through -R, as the page says of -d: \
                 the loop device freed once its filesystem is shut down",
            ),
            ..DEFAULT
        },
        Case {
            name: "`-A -d`, ext4 on a loop device mounted twice",
            setup: "mkdir m n && image d && attach d && mount $dev m && mount $dev n",
            args: "-A -d $T/m",
            ..DEFAULT
        },
        Case {
            name: "relative target",
            setup: TMPFS_M,
            args: "m",
            cwd: "$T",
            ..DEFAULT
        },
        Case {
            name: "symbolic link to the mount point",
            setup: "mkdir m && mount -t tmpfs umw-compat m && ln -s m link",
            args: "$T/link",
            ..DEFAULT
        },
        Case {
            name: "a bind mount on a symbolic link itself",
            setup: "echo a >a && echo b >b && ln -s a la && ln -s b lb && \"$SELF\" --bind-symlink la lb",
            args: "$T/lb",
            intended: Some(
                "umount(8) 2.38.1 follows the link and finds nothing mounted; \
                 2.42.4 unmounts the mount on the link itself (umount2 with \
                 UMOUNT_NOFOLLOW once the plain one fails), and so does umount-wait",
            ),
            ..DEFAULT
        },
        Case {
            name: "device target, mounted twice",
            setup: "mkdir m1 m2 && image d && attach d && mount $dev m1 && mount $dev m2",
            args: "$dev",
            ..DEFAULT
        },
        Case {
            name: "device target, `-A`",
            setup: "mkdir m1 m2 && image d && attach d && mount $dev m1 && mount $dev m2",
            args: "-A $dev",
            ..DEFAULT
        },
        Case {
            name: "mount point, `-A` (a bind mount of it too)",
            setup: "mkdir m b && mount -t tmpfs umw-compat m && mount --bind m b",
            args: "-A $T/b",
            ..DEFAULT
        },
        Case {
            name: "a source name (tmpfs mounted twice from it)",
            setup: "mkdir m1 m2 && mount -t tmpfs umw-compat-src m1 && \
                    mount -t tmpfs umw-compat-src m2",
            args: "umw-compat-src",
            ..DEFAULT
        },
        Case {
            name: "several targets, one failing",
            setup: "mkdir m plain && mount -t tmpfs umw-compat m",
            args: "$T/m $T/plain",
            intended: Some(
                "umount(8) adds the codes up (0 + 32); umount-wait gives 64 \
                 when the targets' results differ",
            ),
            ..DEFAULT
        },
        Case {
            name: "several targets, all failing",
            setup: "mkdir plain1 plain2",
            args: "$T/plain1 $T/plain2",
            intended: Some(
                "umount(8) adds the codes up (32 + 32); umount-wait gives the \
                 common code when they agree",
            ),
            ..DEFAULT
        },
        Case {
            name: "a helper (`umount.ramfs`) that unmounts",
            setup: "mkdir m && mount -t ramfs umw-compat m && helper ramfs 0",
            args: "$T/m",
            ..DEFAULT
        },
        Case {
            name: "a helper that fails (exit 5)",
            setup: "mkdir m && mount -t ramfs umw-compat m && helper ramfs 5",
            args: "$T/m",
            ..DEFAULT
        },
        Case {
            name: "`-l -f -v` with a helper: passed on",
            setup: "mkdir m && mount -t ramfs umw-compat m && helper ramfs 0",
            args: "-l -f -v $T/m",
            intended: Some(
                "umount(8) passes -n only where it looked the target up by \
                 statfs (not with -l, -f, -d or -c); umount-wait always does: \
                 it writes no mtab",
            ),
            ..DEFAULT
        },
        Case {
            name: "`-i` with a helper: not run",
            setup: "mkdir m && mount -t ramfs umw-compat m && helper ramfs 5",
            args: "-i $T/m",
            ..DEFAULT
        },
        Case {
            name: "a helper that cannot be executed",
            setup: "mkdir m && mount -t ramfs umw-compat m && helper ramfs 0 && \
                    chmod 644 .helpers/umount.ramfs",
            args: "$T/m",
            intended: Some(
                "umount(8) 2.38.1 exits 1 without a word; 2.42.4 (since 2.41) \
                 says it failed to execute the helper and exits 126, as \
                 umount-wait does",
            ),
            ..DEFAULT
        },
        Case {
            name: "`--fake` with a helper",
            setup: "mkdir m && mount -t ramfs umw-compat m && helper ramfs 5",
            args: "--fake $T/m",
            umount_wait_says: Some("by its helper /sbin/umount.ramfs"),
            ..DEFAULT
        },
        Case {
            name: "`--fake`",
            setup: TMPFS_M,
            args: "--fake $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-N PID`: a mount in another namespace",
            setup: "mkdir n && in_namespace 'mount -t tmpfs umw-compat n'",
            args: "-N $ns $T/n",
            ..DEFAULT
        },
        Case {
            name: "`-N` of a namespace that does not exist",
            setup: TMPFS_M,
            args: "-N /nonexistent $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-A -t ext4` on a tmpfs mounted twice",
            setup: "mkdir m b && mount -t tmpfs umw-compat m && mount --bind m b",
            args: "-A -t ext4 $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-c`",
            setup: TMPFS_M,
            args: "-c $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-n -i`",
            setup: TMPFS_M,
            args: "-n -i $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-f`",
            setup: TMPFS_M,
            args: "-f $T/m",
            ..DEFAULT
        },
        Case {
            name: "`-t ext4` with a tmpfs target",
            setup: TMPFS_M,
            args: "-t ext4 $T/m",
            ..DEFAULT
        },
        Case {
            name: "a tmpfs, without /proc",
            setup: "mkdir m && mount -t tmpfs umw-compat m && no_proc",
            args: "$T/m",
            ..DEFAULT
        },
        Case {
            name: "ext4 on a loop device, without /proc",
            setup: "mkdir m && image d && attach d && mount $dev m && no_proc",
            args: "$T/m",
            ..DEFAULT
        },
        Case {
            name: "busy (a file held open), without /proc",
            setup: "mkdir m && mount -t tmpfs umw-compat m && echo x >m/f && hold m/f && no_proc",
            args: "$T/m",
            ..DEFAULT
        },
        Case {
            name: "`-d`, ext4 on a loop device, without /proc",
            setup: "mkdir m && image d && attach d && mount $dev m && no_proc",
            args: "-d $T/m",
            intended: Some(
                "umount(8) (util-linux 2.38.1) fails without /proc (\"umount failed: \
                 No such file or directory\") and leaves the mount and its loop device; \
                 umount-wait unmounts, waits and detaches (the loop device told by sysfs)",
            ),
            ..DEFAULT
        },
        Case {
            name: "`-a -t tmpfs`, without /proc",
            setup: "isolate tmpfs && mkdir t1 t2 && mount -t tmpfs umw-compat t1 && \
                    mount -t tmpfs umw-compat t2 && no_proc",
            args: "-a -t tmpfs",
            intended: Some(
                "umount(8) (util-linux 2.38.1) finds no mount table, unmounts nothing and \
                 exits 0; umount-wait lists the mounts with listmount(2) (Linux 6.8) and \
                 unmounts them (before 6.8: exit 2, nothing unmounted, /proc named)",
            ),
            ..DEFAULT
        },
    ]
}

/// Helpers for the setups, then the end state. `$TOOL` is the command.
const PRELUDE: &str = r#"
set -u
T=$(mktemp -d /tmp/umw-compat.XXXXXX)
loops= pids= dev= ns=
finish() {
	for p in $pids; do kill -9 $p 2>/dev/null; done
	wait 2>/dev/null
	under "$T/" /proc/self/mountinfo | sort -r | while read -r mp; do
		umount -l "$(printf '%b' "$mp")" 2>/dev/null
	done
	for l in $loops; do losetup -d $l 2>/dev/null; done
	rm -rf "$T"
}
trap finish EXIT
# under PREFIX MOUNTINFO: the mount points at or below PREFIX (escaped).
under() {
	awk -v p="$1" 'index($5, p) == 1 { print $5 }' "$2"
}
# ready: a FIFO that a holder writes to once it holds.
ready() { rm -f "$T/.ready" && mkfifo "$T/.ready"; }
hold() {
	ready
	sh -c 'exec 3<"$1" && echo >"$2" && exec sleep 1000000' _ "$T/$1" "$T/.ready" &
	pids="$pids $!"
	read -r _ <"$T/.ready"
}
hold_cwd() {
	ready
	sh -c 'cd "$1" && echo >"$2" && exec sleep 1000000' _ "$T/$1" "$T/.ready" &
	pids="$pids $!"
	read -r _ <"$T/.ready"
}
# in_namespace SHELL: a process in a mount namespace of its own ($ns), where
# SHELL has run (in $T).
in_namespace() {
	ready
	unshare -m --propagation private sh -c 'cd "$1" && eval "$2" && echo >"$3" && exec sleep 1000000' \
		_ "$T" "$1" "$T/.ready" &
	ns=$!
	pids="$pids $ns"
	read -r _ <"$T/.ready"
}
# helper TYPE CODE: /sbin/umount.TYPE, in this namespace only (an overlay on
# /usr/sbin): it logs its arguments, then exits CODE; with 0 it unmounts
# first (umount -i).
helper() {
	mkdir -p "$T/.helpers" && echo "$2" >"$T/.helper.code" || return 1
	printf '#!/bin/sh\necho "$*" >>"%s/.helper.log"\ncode=$(cat "%s/.helper.code")\n[ "$code" = 0 ] && exec umount -i "$@"\nexit "$code"\n' \
		"$T" "$T" >"$T/.helpers/umount.$1" && chmod 755 "$T/.helpers/umount.$1" &&
		mount -t overlay umw-compat-helpers -o "lowerdir=$T/.helpers:/usr/sbin" /usr/sbin
}
# fuse_as_nobody DIR: a FUSE mount (bindfs) on DIR made by nobody, with
# /dev/fuse open to users in this namespace only.
fuse_as_nobody() {
	chmod 755 "$T" && mkdir -p .src "$1" && chown nobody .src "$1" &&
		mknod .fuse c 10 229 && chmod 666 .fuse && mount --bind .fuse /dev/fuse &&
		setpriv --reuid 65534 --regid 65534 --clear-groups bindfs --no-allow-other .src "$1"
}
# fstab_line LINE: /etc/fstab with LINE added, in this namespace only.
fstab_line() {
	cp /etc/fstab .fstab && echo "$1" >>.fstab && mount --bind .fstab /etc/fstab
}
image() { truncate -s 32M "$T/$1.img" && mkfs.ext4 -q -F "$T/$1.img"; }
attach() { dev=$(losetup -f --show "$T/$1.img") && loops="$loops $dev"; }
# isolate TYPE: no mount of TYPE outside $T in this namespace (for -a).
isolate() {
	awk -v p="$T/" -v type="$1" '{ for (i = 7; $i != "-"; i++); if ($(i + 1) == type && index($5, p) != 1) print $5 }' \
		/proc/self/mountinfo | sort -r | while read -r mp; do
		umount -l "$(printf '%b' "$mp")" || exit 1
	done
}
# mounts MOUNTINFO: the mounts under $T, as "path(type[,ro])".
mounts() {
	awk -v p="$T/" '{ for (i = 7; $i != "-"; i++); if (index($5, p) == 1) {
		split($6, o, ","); printf "%s%s(%s%s)", sep, substr($5, length(p)), $(i + 1), o[1] == "ro" ? ",ro" : ""; sep = " " } }' "$1"
}
# no_proc: an empty tmpfs over /proc for the command, as in an initramfs
# or a chroot without it; state uncovers it.
no_proc() { mount -t tmpfs umw-no-proc /proc; }
state() {
	[ -e /proc/self ] || "$SELF" --uncover-proc
	echo "mounts: $(mounts /proc/self/mountinfo)"
	[ -z "$ns" ] || echo "namespace: $(mounts /proc/$ns/mountinfo)"
	[ ! -f "$T/.helper.log" ] || echo "helper: $(sed "s|$T||g" "$T/.helper.log" | paste -sd ';')"
	n=0
	for l in $loops; do
		n=$((n + 1))
		bound=free
		[ -e /sys/block/${l#/dev/}/loop ] && bound=bound
		echo "loop$n: $bound, $("$SELF" --claim $l)"
	done
}
cd "$T" || exit 1
"#;

/// The script of one run, for `tool` (a path, or `umount`).
fn script(case: &Case, tool: &str, extra: &str) -> String {
    let run_as = if case.unprivileged {
        "setpriv --reuid 65534 --regid 65534 --clear-groups "
    } else {
        ""
    };
    format!(
        "{PRELUDE}
if ! {{ {setup}
}} >\"$T/.setup.log\" 2>&1; then
	echo 'setup failed:'; cat \"$T/.setup.log\"; exit 1
fi
rm -f \"$T/.setup.log\"
cd {cwd} || exit 1
err=$({run_as}{tool} {args} {extra} 2>&1 >\"$T/.out\")
echo \"rc=$?\"
cd /
printf '%s\\n' \"$err\" | sed 's/^/err: /'
sed 's/^/out: /' \"$T/.out\"
rm -f \"$T/.out\"
state
",
        setup = if case.setup.is_empty() {
            ":"
        } else {
            case.setup
        },
        cwd = case.cwd,
        args = case.args,
    )
}

/// What one run left: its exit code and the end state.
#[derive(Debug)]
struct Outcome {
    code: i32,
    state: Vec<String>,
    errors: Vec<String>,
    /// What it wrote on standard output.
    output: Vec<String>,
}

fn run(case: &Case, tool: &str, extra: &str) -> Outcome {
    let self_exe = std::env::current_exe().expect("the test's own path");
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(script(case, tool, extra))
        .env("SELF", self_exe)
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rc="))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{}: {tool}: no exit code in\n{stdout}{}",
                case.name,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let errors: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("err: "))
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let mut state: Vec<String> = stdout
        .lines()
        .filter(|l| !l.starts_with("rc=") && !l.starts_with("err: ") && !l.starts_with("out: "))
        .map(str::to_string)
        .collect();
    if case.silence {
        let said = if errors.is_empty() {
            "silent"
        } else {
            "a message"
        };
        state.push(format!("stderr: {said}"));
    }
    let output = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("out: "))
        .map(str::to_string)
        .collect();
    Outcome {
        code,
        state,
        errors,
        output,
    }
}

/// The end state in a few words, for the table.
fn describe(state: &[String]) -> String {
    let parts: Vec<String> = state
        .iter()
        .map(|line| match line.split_once(": ") {
            Some(("mounts", "")) => "nothing mounted".to_string(),
            Some(("mounts", m)) => format!("left: {m}"),
            Some(("namespace", "")) => "nothing in the other namespace".to_string(),
            Some(("namespace", m)) => format!("other namespace: {m}"),
            Some(("stderr", said)) => said.to_string(),
            Some(("helper", args)) => format!("helper run: `{args}`"),
            _ => line.clone(),
        })
        .collect();
    parts.join("; ")
}

/// `--claim DEV`, run by the scripts: whether DEV can be opened `O_EXCL`.
fn claim(device: &Path) -> &'static str {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::EXCL.bits() as i32)
        .open(device)
    {
        Ok(_) => "not claimed",
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => "claimed",
        Err(_) => "unknown",
    }
}

/// `--bind-symlink FROM TO`, run by the scripts: a bind mount of the
/// symbolic link FROM on the symbolic link TO, neither followed (the new
/// mount API's `open_tree` and `move_mount`).
fn bind_symlink(from: &Path, to: &Path) -> rustix::io::Result<()> {
    use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
    let tree = open_tree(
        rustix::fs::CWD,
        from,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    move_mount(
        &tree,
        "",
        rustix::fs::CWD,
        to,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

/// Why this host cannot run the comparison, if it cannot.
fn cannot_run() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    for tool in [
        "umount",
        "unshare",
        "setpriv",
        "losetup",
        "mkfs.ext4",
        "bindfs",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Where ci/setup puts the newest util-linux umount Debian serves.
const NEWEST_UMOUNT: &str = "/var/cache/umw-util-linux/umount";

/// A util-linux umount(8) to compare with.
struct Reference {
    /// How the scripts run it.
    command: String,
    /// Its version, as `--version` says it ("2.38.1").
    version: String,
}

impl Reference {
    /// `command`'s version, or why it cannot be run.
    fn probe(command: &str) -> Result<Reference, String> {
        let out = Command::new("sh")
            .args(["-c", &format!("{command} --version")])
            .output()
            .map_err(|e| format!("running {command} --version: {e}"))?;
        let says = String::from_utf8_lossy(&out.stdout);
        let version = says
            .split_once("util-linux ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .filter(|_| out.status.success())
            .ok_or_else(|| {
                format!(
                    "{command} --version says {:?} {:?}",
                    says.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })?;
        Ok(Reference {
            command: command.to_string(),
            version: version.to_string(),
        })
    }

    fn name(&self) -> String {
        format!("umount(8) {}", self.version)
    }
}

/// The umount(8)s to compare with: the system's and the newest Debian
/// serves (`UMW_UMOUNT_NEWEST`, or where ci/setup puts it). Without the
/// newest, `Err` says why.
fn references() -> (Vec<Reference>, Result<(), String>) {
    let system = Reference::probe("umount").unwrap_or_else(|why| panic!("{why}"));
    let newest = std::env::var("UMW_UMOUNT_NEWEST").unwrap_or_else(|_| NEWEST_UMOUNT.into());
    if !Path::new(&newest).exists() {
        let why = format!("{newest} does not exist (ci/setup installs it)");
        return (vec![system], Err(why));
    }
    match Reference::probe(&newest) {
        Ok(newest) => (vec![system, newest], Ok(())),
        Err(why) => (vec![system], Err(why)),
    }
}

/// The end state of every run in a few words: one description when they
/// all agree, else each with the runs that left it.
fn end_state(runs: &[(String, &Outcome)]) -> String {
    let mut groups: Vec<(&Vec<String>, Vec<&str>)> = Vec::new();
    for (name, outcome) in runs {
        match groups
            .iter_mut()
            .find(|(state, _)| *state == &outcome.state)
        {
            Some((_, names)) => names.push(name),
            None => groups.push((&outcome.state, vec![name])),
        }
    }
    if let [(state, _)] = &groups[..] {
        return describe(state);
    }
    groups
        .iter()
        .map(|(state, names)| format!("{}: {}", names.join(" and "), describe(state)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One case run with every reference and with umount-wait: its table row,
/// and what is wrong with it, if anything.
fn compare(case: &Case, references: &[Reference]) -> (String, Option<String>) {
    let theirs: Vec<Outcome> = references
        .iter()
        .map(|r| run(case, &r.command, ""))
        .collect();
    let ours = run(case, BIN, case.umount_wait_only);
    let differ = theirs
        .iter()
        .any(|t| t.code != ours.code || t.state != ours.state);
    let mut runs: Vec<(String, &Outcome)> = references
        .iter()
        .map(Reference::name)
        .zip(&theirs)
        .collect();
    runs.push(("umount-wait".into(), &ours));

    let mut command = format!("`umount-wait {}`", case.args);
    if !case.umount_wait_only.is_empty() {
        command += &format!(" (`{}` to umount-wait only)", case.umount_wait_only);
    }
    if case.cwd != "/" {
        command += &format!(" in `{}`", case.cwd);
    }
    let codes: String = runs.iter().map(|(_, o)| format!(" {} |", o.code)).collect();
    let why = match (differ, case.intended, case.open) {
        (true, Some(why), _) => format!("intended: {why}"),
        (true, None, Some(what)) => format!("**open**: {what}"),
        (true, None, None) => "**not intended**".into(),
        (false, _, _) => String::new(),
    };
    let row = format!(
        "| {} | {} |{codes} {} | {why} |\n",
        case.name,
        command.replace('|', "\\|"),
        end_state(&runs),
    );
    let unsaid = case.umount_wait_says.filter(|words| {
        !ours
            .output
            .iter()
            .chain(&ours.errors)
            .any(|l| l.contains(words))
    });
    let verdict = match (differ, case.intended.or(case.open)) {
        (true, None) => Some("differ, and no reason is given"),
        (false, Some(_)) => Some("a reason is given, but they do not differ"),
        _ if unsaid.is_some() => Some("umount-wait does not say what it should"),
        _ => None,
    };
    let summary: Vec<String> = runs
        .iter()
        .map(|(name, o)| format!("{name} {} {:?}", o.code, o.state))
        .collect();
    println!(
        "case {}: {}{}",
        case.name,
        summary.join(", "),
        if verdict.is_some() { "  <- FAILED" } else { "" }
    );
    let problem = verdict.map(|verdict| {
        let details: Vec<String> = runs
            .iter()
            .map(|(name, o)| format!("  {name}: {} {:?} {:?}", o.code, o.state, o.errors))
            .collect();
        let said = match unsaid {
            Some(words) => format!(
                "\n  umount-wait should say {words:?}, said {:?}",
                ours.output
            ),
            None => String::new(),
        };
        format!("{}: {verdict}\n{}{said}", case.name, details.join("\n"))
    });
    (row, problem)
}

const TABLE_START: &str = "<!-- compat table: made by tests/compat.rs -->";
const TABLE_END: &str = "<!-- end of compat table -->";

/// Compares `table` with README.md's (writes it with `UMW_COMPAT_UPDATE=1`);
/// the problem, if they differ.
fn check_readme(table: &str) -> Option<String> {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("reading README.md");
    let (before, rest) = readme
        .split_once(TABLE_START)
        .expect("README.md has the compat table's start marker");
    let (old, after) = rest
        .split_once(TABLE_END)
        .expect("README.md has the compat table's end marker");
    let new = format!("\n{table}");
    if old == new {
        return None;
    }
    if std::env::var("UMW_COMPAT_UPDATE").is_ok_and(|v| v == "1") {
        std::fs::write(
            &readme_path,
            format!("{before}{TABLE_START}{new}{TABLE_END}{after}"),
        )
        .expect("writing README.md");
        println!("compat: README.md's table updated");
        return None;
    }
    Some("README.md's table is not this one (UMW_COMPAT_UPDATE=1 writes it)".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match &args[..] {
        [flag, device] if flag == "--claim" => {
            println!("{}", claim(Path::new(device)));
            return;
        }
        [flag, from, to] if flag == "--bind-symlink" => {
            if let Err(e) = bind_symlink(Path::new(from), Path::new(to)) {
                eprintln!("bind mount of {from} on {to}: {e}");
                std::process::exit(1);
            }
            return;
        }
        _ => {}
    }
    // `no_proc`'s cover taken off: umount(8) (util-linux 2.38.1) cannot
    // unmount it without /proc ("umount failed: No such file or directory").
    if args == ["--uncover-proc"] {
        let uncovered = rustix::mount::unmount("/proc", rustix::mount::UnmountFlags::DETACH);
        std::process::exit(i32::from(uncovered.is_err()));
    }
    let required = std::env::var("UMW_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1");
    if let Some(why) = cannot_run() {
        if required {
            eprintln!("compat: cannot run ({why}) and UMW_REQUIRE_PRIVILEGED=1: failing");
            std::process::exit(1);
        }
        eprintln!("compat: SKIPPED: {why} (set UMW_REQUIRE_PRIVILEGED=1 to make this a failure)");
        return;
    }
    let (references, newest) = references();
    if let Err(why) = &newest {
        if required {
            eprintln!(
                "compat: no newest util-linux umount ({why}) and UMW_REQUIRE_PRIVILEGED=1: failing"
            );
            std::process::exit(1);
        }
        eprintln!(
            "compat: the newest util-linux umount is SKIPPED: {why}; compared with the \
             system's only, README.md's table not checked (set UMW_REQUIRE_PRIVILEGED=1 to \
             make this a failure)"
        );
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let all = cases();
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();

    let names: String = references
        .iter()
        .map(|r| format!(" {} |", r.name()))
        .collect();
    let mut table = format!(
        "| case | command |{names} umount-wait | end state | why they differ |\n\
         | --- | --- |{} --- | --- | --- |\n",
        " --- |".repeat(references.len())
    );
    let mut problems = Vec::new();
    for case in &selected {
        let (row, problem) = compare(case, &references);
        table += &row;
        problems.extend(problem);
    }
    println!("\n{table}");

    if selected.len() == all.len() && newest.is_ok() {
        problems.extend(check_readme(&table));
    }
    if !problems.is_empty() {
        eprintln!(
            "compat: {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
        // The last line as libtest's, which ci/test counts.
        println!(
            "compat test result: FAILED. {} passed; {} failed",
            selected.len().saturating_sub(problems.len()),
            problems.len()
        );
        std::process::exit(1);
    }
    println!(
        "compat test result: ok. {} passed; 0 failed",
        selected.len()
    );
}
