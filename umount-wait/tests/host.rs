//! Host integration tests: root, in a private mount namespace, on the host's
//! real kernel (without UMOUNT_WAIT this exercises the fallback path), on
//! tmpfs and on loop-mounted ext4.
//!
//! Without root they skip with a message; with `UMW_REQUIRE_PRIVILEGED=1`
//! a skip is a failure. `UMW_S1_RUNS` sets the runs of the S1 race (8),
//! `UMW_BTRFS_RUNS` those of the btrfs lazy unmount (4): enough for the
//! mechanism; statistics take more (`UMW_S1_RUNS=200`).
//! The `--all` tests run with `--include` set to their own scratch
//! directory: in this namespace too, nothing else may be unmounted.
//!
//! The process unshares its mount namespace first (single-threaded, which is
//! why this file has its own `main`), so nothing mounted here is visible to
//! the host, and whatever is left behind vanishes with the process.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use umount_wait::mountinfo;

const BIN: &str = env!("CARGO_BIN_EXE_umount-wait");

/// Exit codes the command promises (docs/bench-contract.md).
const EXIT_OK: i32 = 0;
const EXIT_USAGE: i32 = 1;
const EXIT_SYSTEM: i32 = 2;
const EXIT_UNCONFIRMED: i32 = 3;
const EXIT_FAILURE: i32 = 32;
const EXIT_SOME_FAILED: i32 = 64;
/// A process that died by SIGINT, as a shell's `$?` says (128 + 2).
const DIED_BY_SIGINT: i32 = 128 + 2;

/// The exit code as a shell gives it: 128 + N for a death by signal N.
fn shell_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|n| 128 + n))
        .unwrap_or(-1)
}

fn main() {
    let required = std::env::var("UMW_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1");
    if let Err(why) = enter_private_namespace() {
        if required {
            eprintln!("host tests: cannot run ({why}) and UMW_REQUIRE_PRIVILEGED=1: failing");
            std::process::exit(1);
        }
        eprintln!(
            "host tests: SKIPPED: {why} (set UMW_REQUIRE_PRIVILEGED=1 to make this a failure)"
        );
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: &[(&str, fn())] = &[
        (
            "probe_reports_the_path_of_this_kernel",
            probe_reports_the_path_of_this_kernel,
        ),
        (
            "kernel_path_child_reports_the_call_result",
            kernel_path_child_reports_the_call_result,
        ),
        (
            "mode_kernel_follows_the_kernel",
            mode_kernel_follows_the_kernel,
        ),
        (
            "mode_notify_follows_the_kernel",
            mode_notify_follows_the_kernel,
        ),
        ("tmpfs_unmount_shuts_down", tmpfs_unmount_shuts_down),
        (
            "library_takes_a_cancel_handle_and_leaves_signals_alone",
            library_takes_a_cancel_handle_and_leaves_signals_alone,
        ),
        (
            "tmpfs_lazy_waits_for_open_file",
            tmpfs_lazy_waits_for_open_file,
        ),
        (
            "ext4_lazy_waits_for_open_file_and_frees_device",
            ext4_lazy_waits_for_open_file_and_frees_device,
        ),
        (
            "btrfs_lazy_returns_only_when_its_devices_are_free",
            btrfs_lazy_returns_only_when_its_devices_are_free,
        ),
        (
            "timeout_with_copy_in_other_namespace",
            timeout_with_copy_in_other_namespace,
        ),
        (
            "read_only_through_other_namespace_after_timeout",
            read_only_through_other_namespace_after_timeout,
        ),
        (
            "without_inotify_the_unmount_goes_on",
            without_inotify_the_unmount_goes_on,
        ),
        (
            "read_only_through_other_namespace_never_a_mount_stacked_on_it",
            read_only_through_other_namespace_never_a_mount_stacked_on_it,
        ),
        (
            "all_names_the_holder_of_what_it_leaves_read_write",
            all_names_the_holder_of_what_it_leaves_read_write,
        ),
        (
            "last_shutdown_reads_a_pstore_directory",
            last_shutdown_reads_a_pstore_directory,
        ),
        (
            "sigint_during_wait_is_detached_unconfirmed",
            sigint_during_wait_is_detached_unconfirmed,
        ),
        (
            "sigint_with_json_prints_the_report_then_dies",
            sigint_with_json_prints_the_report_then_dies,
        ),
        (
            "a_signal_the_caller_ignores_stays_ignored",
            a_signal_the_caller_ignores_stays_ignored,
        ),
        (
            "status_line_on_a_terminal_and_progress_with_verbose",
            status_line_on_a_terminal_and_progress_with_verbose,
        ),
        (
            "timeout_bounds_a_filesystem_that_does_not_answer",
            timeout_bounds_a_filesystem_that_does_not_answer,
        ),
        (
            "a_silent_fuse_daemon_does_not_outlast_the_timeout",
            a_silent_fuse_daemon_does_not_outlast_the_timeout,
        ),
        (
            "a_loop_backing_path_through_a_silent_fuse_mount_does_not_hang_all",
            a_loop_backing_path_through_a_silent_fuse_mount_does_not_hang_all,
        ),
        (
            "a_loop_over_a_fuse_file_whose_daemon_reads_and_never_answers",
            a_loop_over_a_fuse_file_whose_daemon_reads_and_never_answers,
        ),
        (
            "an_unmount_asleep_past_sigkill_does_not_outlast_the_timeout",
            an_unmount_asleep_past_sigkill_does_not_outlast_the_timeout,
        ),
        (
            "a_disk_whose_io_never_completes_does_not_outlast_the_timeout",
            a_disk_whose_io_never_completes_does_not_outlast_the_timeout,
        ),
        (
            "an_unmount_helper_keeps_out_of_the_report_and_within_the_timeout",
            an_unmount_helper_keeps_out_of_the_report_and_within_the_timeout,
        ),
        (
            "a_label_carried_by_two_devices_names_the_mounted_one",
            a_label_carried_by_two_devices_names_the_mounted_one,
        ),
        (
            "a_final_writeback_that_fails_is_not_a_plain_shut_down",
            a_final_writeback_that_fails_is_not_a_plain_shut_down,
        ),
        (
            "a_frozen_filesystem_is_thawed_and_shut_down",
            a_frozen_filesystem_is_thawed_and_shut_down,
        ),
        (
            "no_program_of_another_namespace_runs_under_n",
            no_program_of_another_namespace_runs_under_n,
        ),
        (
            "a_tag_probe_over_a_device_that_does_not_answer_is_given_up",
            a_tag_probe_over_a_device_that_does_not_answer_is_given_up,
        ),
        (
            "busy_target_names_a_holder_whose_leader_has_exited",
            busy_target_names_a_holder_whose_leader_has_exited,
        ),
        (
            "a_wait_names_a_namespace_kept_by_a_thread_whose_leader_has_exited",
            a_wait_names_a_namespace_kept_by_a_thread_whose_leader_has_exited,
        ),
        (
            "a_scan_past_its_deadline_says_it_is_incomplete",
            a_scan_past_its_deadline_says_it_is_incomplete,
        ),
        ("quiet_hides_not_mounted", quiet_hides_not_mounted),
        (
            "busy_target_is_untouched_and_names_holder",
            busy_target_is_untouched_and_names_holder,
        ),
        (
            "busy_target_names_mappings_swap_files_and_loop_devices",
            busy_target_names_mappings_swap_files_and_loop_devices,
        ),
        (
            "busy_btrfs_names_its_processes",
            busy_btrfs_names_its_processes,
        ),
        ("read_only_when_busy", read_only_when_busy),
        (
            "a_mount_moved_after_resolution_is_left_alone",
            a_mount_moved_after_resolution_is_left_alone,
        ),
        (
            "a_filesystem_that_stays_mounted_here_is_not_waited_for",
            a_filesystem_that_stays_mounted_here_is_not_waited_for,
        ),
        (
            "a_lasting_wait_names_its_holders_once_without_a_terminal",
            a_lasting_wait_names_its_holders_once_without_a_terminal,
        ),
        (
            "bind_of_a_deleted_directory_is_no_error",
            bind_of_a_deleted_directory_is_no_error,
        ),
        (
            "working_directory_on_the_target_is_refused_untouched",
            working_directory_on_the_target_is_refused_untouched,
        ),
        (
            "the_callers_root_is_refused_untouched",
            the_callers_root_is_refused_untouched,
        ),
        (
            "recursive_unmounts_children_first_as_umount8",
            recursive_unmounts_children_first_as_umount8,
        ),
        (
            "a_tree_with_a_bind_of_its_own_filesystem_is_waited_for_once",
            a_tree_with_a_bind_of_its_own_filesystem_is_waited_for_once,
        ),
        (
            "bad_inputs_leave_everything_mounted",
            bad_inputs_leave_everything_mounted,
        ),
        (
            "a_timeout_past_the_clock_is_no_overflow",
            a_timeout_past_the_clock_is_no_overflow,
        ),
        ("odd_names_and_symlinks", odd_names_and_symlinks),
        (
            "permission_denied_for_unprivileged_user",
            permission_denied_for_unprivileged_user,
        ),
        ("s1_dying_namespaces", s1_dying_namespaces),
        (
            "all_shuts_down_a_tree_and_detaches_loops",
            all_shuts_down_a_tree_and_detaches_loops,
        ),
        (
            "all_remounts_busy_read_only_and_names_holder",
            all_remounts_busy_read_only_and_names_holder,
        ),
        (
            "all_writes_each_stderr_line_whole",
            all_writes_each_stderr_line_whole,
        ),
        (
            "all_a_survivor_first_in_the_order_leaves_nothing_read_write",
            all_a_survivor_first_in_the_order_leaves_nothing_read_write,
        ),
        (
            "all_two_survivors_three_healthy_within_the_deadline",
            all_two_survivors_three_healthy_within_the_deadline,
        ),
        (
            "all_a_busy_mount_is_retried_when_the_mount_table_changes",
            all_a_busy_mount_is_retried_when_the_mount_table_changes,
        ),
        (
            "all_turns_swap_off_and_detaches_unmounted_loop_devices",
            all_turns_swap_off_and_detaches_unmounted_loop_devices,
        ),
        (
            "all_read_only_refused_is_shut_down_by_ioctl",
            all_read_only_refused_is_shut_down_by_ioctl,
        ),
        (
            "read_only_keeps_every_attribute_of_a_users_busy_mount",
            read_only_keeps_every_attribute_of_a_users_busy_mount,
        ),
        (
            "read_only_never_reaches_a_mount_put_in_the_targets_place",
            read_only_never_reaches_a_mount_put_in_the_targets_place,
        ),
        (
            "all_a_busy_bind_of_an_unselected_filesystem_is_never_stopped",
            all_a_busy_bind_of_an_unselected_filesystem_is_never_stopped,
        ),
        (
            "a_hidden_holder_of_a_deleted_root_is_no_shutdown",
            a_hidden_holder_of_a_deleted_root_is_no_shutdown,
        ),
        (
            "without_proc_targets_are_unmounted_and_confirmed",
            without_proc_targets_are_unmounted_and_confirmed,
        ),
        (
            "a_run_that_unmounts_proc_goes_on_without_it",
            a_run_that_unmounts_proc_goes_on_without_it,
        ),
        (
            "without_proc_a_held_filesystem_says_what_was_missing",
            without_proc_a_held_filesystem_says_what_was_missing,
        ),
        (
            "without_proc_all_lists_the_mounts_or_refuses",
            without_proc_all_lists_the_mounts_or_refuses,
        ),
        (
            "without_proc_an_exchange_cannot_redirect_the_unmount",
            without_proc_an_exchange_cannot_redirect_the_unmount,
        ),
        (
            "without_proc_a_mount_moved_after_resolution_is_left_alone",
            without_proc_a_mount_moved_after_resolution_is_left_alone,
        ),
        (
            "namespace_with_a_fake_proc_is_refused",
            namespace_with_a_fake_proc_is_refused,
        ),
        (
            "all_a_holder_out_of_reach_keeps_a_read_only_filesystem",
            all_a_holder_out_of_reach_keeps_a_read_only_filesystem,
        ),
        (
            "all_a_holder_out_of_reach_of_a_tmpfs_leaves_it_writable",
            all_a_holder_out_of_reach_of_a_tmpfs_leaves_it_writable,
        ),
        (
            "all_a_mount_its_path_no_longer_leads_to_is_named_untouched",
            all_a_mount_its_path_no_longer_leads_to_is_named_untouched,
        ),
        (
            "all_releases_nothing_of_a_mount_its_path_no_longer_leads_to",
            all_releases_nothing_of_a_mount_its_path_no_longer_leads_to,
        ),
        (
            "all_a_mount_moved_deeper_than_path_max_is_unmounted",
            all_a_mount_moved_deeper_than_path_max_is_unmounted,
        ),
        (
            "an_exchange_between_check_and_unmount_cannot_redirect_it",
            an_exchange_between_check_and_unmount_cannot_redirect_it,
        ),
        (
            "read_only_of_a_fuse_mount_needs_no_answer_from_its_daemon",
            read_only_of_a_fuse_mount_needs_no_answer_from_its_daemon,
        ),
        (
            "all_a_retry_says_the_filesystem_was_made_read_only",
            all_a_retry_says_the_filesystem_was_made_read_only,
        ),
        (
            "a_users_fuse_mount_without_allow_other_is_unmounted_by_root",
            a_users_fuse_mount_without_allow_other_is_unmounted_by_root,
        ),
        (
            "a_filesystem_held_out_of_view_is_not_waited_for_for_ever",
            a_filesystem_held_out_of_view_is_not_waited_for_for_ever,
        ),
        (
            "all_many_mappings_do_not_stretch_the_deadline",
            all_many_mappings_do_not_stretch_the_deadline,
        ),
        (
            "names_that_would_read_as_others_are_escaped",
            names_that_would_read_as_others_are_escaped,
        ),
        (
            "fake_all_prints_the_order_and_touches_nothing",
            fake_all_prints_the_order_and_touches_nothing,
        ),
        (
            "fake_says_what_the_real_run_does",
            fake_says_what_the_real_run_does,
        ),
        (
            "all_refuses_bad_prefixes_untouched",
            all_refuses_bad_prefixes_untouched,
        ),
        ("all_many_mounts_timing", all_many_mounts_timing),
        (
            "all_reads_the_mount_table_once_a_pass",
            all_reads_the_mount_table_once_a_pass,
        ),
        (
            "all_reads_what_backs_onto_filesystems_once_a_pass",
            all_reads_what_backs_onto_filesystems_once_a_pass,
        ),
        (
            "all_one_scan_for_the_waits_its_deadline_ends",
            all_one_scan_for_the_waits_its_deadline_ends,
        ),
        (
            "many_targets_read_the_mount_table_once",
            many_targets_read_the_mount_table_once,
        ),
        (
            "targets_of_one_filesystem_wait_for_the_last",
            targets_of_one_filesystem_wait_for_the_last,
        ),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        eprintln!("test {name} ...");
        let start = Instant::now();
        match catch_unwind(AssertUnwindSafe(test)) {
            Ok(()) => eprintln!("test {name} ... ok ({:.1}s)", start.elapsed().as_secs_f64()),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    eprintln!(
        "\nhost test result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        eprintln!("failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}

fn enter_private_namespace() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root".into());
    }
    // SAFETY: CLONE_NEWNS only; this process is single-threaded here and
    // nothing depends on sharing its filesystem context.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------- helpers

/// A scratch directory, removed (after unmounting what is left) on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("umw-host-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }

    fn dir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mounts = mountinfo::read(None).unwrap_or_default();
        let mut ours: Vec<_> = mounts
            .iter()
            .filter(|m| m.mount_point.starts_with(&self.dir))
            .collect();
        ours.reverse();
        for m in ours {
            let _ = rustix::mount::unmount(&m.mount_point, UnmountFlags::DETACH);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A loop device over a fresh ext4 image, detached on drop.
struct LoopExt4 {
    device: PathBuf,
}

impl LoopExt4 {
    fn new(scratch: &Scratch, mib: u64) -> LoopExt4 {
        let image = scratch.path("ext4.img");
        fs::File::create(&image)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        run_ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image),
        );
        let device = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        LoopExt4 { device }
    }

    fn mount(&self, at: &Path) {
        rustix::mount::mount(&self.device, at, "ext4", MountFlags::empty(), None).unwrap_or_else(
            |e| {
                panic!(
                    "mounting {} on {}: {e}",
                    self.device.display(),
                    at.display()
                )
            },
        );
    }
}

/// A loop device over a fresh btrfs image, or None (with the reason)
/// where mkfs.btrfs is missing.
fn loop_btrfs(scratch: &Scratch, mib: u64) -> Result<LoopExt4, String> {
    let image = scratch.path("btrfs.img");
    fs::File::create(&image)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    let mkfs = Command::new("mkfs.btrfs")
        .args(["-q", "-f"])
        .arg(&image)
        .output()
        .map_err(|e| format!("mkfs.btrfs: {e}"))?;
    if !mkfs.status.success() {
        return Err(format!(
            "mkfs.btrfs: {}",
            String::from_utf8_lossy(&mkfs.stderr)
        ));
    }
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image),
    );
    let device = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    Ok(LoopExt4 { device })
}

/// [`loop_btrfs`] of 300 MiB, or None after saying why not.
fn loop_btrfs_or_say_why(scratch: &Scratch) -> Option<LoopExt4> {
    loop_btrfs(scratch, 300)
        .map_err(|why| eprintln!("    btrfs not checked: {why}"))
        .ok()
}

impl Drop for LoopExt4 {
    fn drop(&mut self) {
        // The filesystem may still be dying; give it a moment to let go.
        let deadline = Instant::now() + Duration::from_secs(10);
        while excl_busy(&self.device) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        // Quiet: --all may have detached it already.
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.device)
            .stderr(Stdio::null())
            .status();
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mount_tmpfs(at: &Path) {
    rustix::mount::mount("umw-test", at, "tmpfs", MountFlags::empty(), None)
        .unwrap_or_else(|e| panic!("mounting tmpfs on {}: {e}", at.display()));
}

/// The `major:minor` of the mount on `at`, as the plan shows it.
fn dev_of(at: &Path) -> String {
    let mounts = mountinfo::read(None).unwrap();
    let m = mounts.iter().rev().find(|m| m.mount_point == at);
    m.unwrap_or_else(|| panic!("nothing mounted on {}", at.display()))
        .dev
        .to_string()
}

fn is_mounted(at: &Path) -> bool {
    mountinfo::read(None)
        .unwrap()
        .iter()
        .any(|m| m.mount_point == at)
}

/// `open(dev, O_RDONLY|O_EXCL)` = EBUSY: something still claims the device.
fn excl_busy(device: &Path) -> bool {
    matches!(umount_wait::sys::try_claim(device), Err(Errno::BUSY))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn umw<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_command(Command::new(BIN).args(args))
}

/// Runs `cmd` to its end; what it printed, its exit code, how long it took.
/// `--all --include DIR --json`, and `more`: the shutdown mode on a tree
/// of the test's own.
fn umw_all(dir: &Path, more: &[&str]) -> Run {
    let args = [
        OsStr::new("--all"),
        OsStr::new("--include"),
        dir.as_os_str(),
    ];
    umw(args
        .into_iter()
        .chain([OsStr::new("--json")])
        .chain(more.iter().map(OsStr::new)))
}

fn run_command(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    Run {
        code: shell_code(out.status),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn assert_code(run: &Run, code: i32, what: &str) {
    assert_eq!(
        run.code, code,
        "{what}: exit {} (wanted {code})\nstdout: {}\nstderr: {}",
        run.code, run.stdout, run.stderr
    );
}

/// A child process that is killed (SIGKILL) and reaped when dropped: a test
/// that panics leaves no holder behind to keep the next test's mount or
/// loop device busy.
struct Holder {
    child: Child,
}

impl Holder {
    fn spawn(cmd: &mut Command) -> Holder {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        Holder { child }
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL and returns at once: the process may still be dying.
    fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Kills it and waits until it is gone.
    fn stop(&mut self) {
        self.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process holding a file open (its fd 3) until [`FileHolder::release`],
/// so that a test decides when the filesystem is let go, not a timer.
struct FileHolder {
    holder: Holder,
    /// Its stdin: closed by `release`, which ends its `read` and the
    /// process with it.
    stdin: Option<std::process::ChildStdin>,
}

/// Opens `path` in a new process and returns once the process holds it.
fn hold_open(path: &Path) -> FileHolder {
    hold_open_as(path, "<")
}

/// [`hold_open`] for writing (appending): the filesystem then refuses to
/// become read-only.
fn hold_open_for_writing(path: &Path) -> FileHolder {
    hold_open_as(path, ">>")
}

fn hold_open_as(path: &Path, redirect: &str) -> FileHolder {
    let script = format!("exec 3{redirect}\"$1\" && read -r _");
    let mut holder = Holder::spawn(
        Command::new("sh")
            .args(["-c", &script, "sh"])
            .arg(path)
            .stdin(Stdio::piped()),
    );
    let stdin = holder.child.stdin.take();
    let fd = format!("/proc/{}/fd/3", holder.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_link(&fd).ok().as_deref() != Some(path) {
        assert!(
            Instant::now() < deadline,
            "the holder did not open {path:?}"
        );
        sleep(Duration::from_millis(5));
    }
    FileHolder { holder, stdin }
}

impl FileHolder {
    fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Lets go of the file: the process exits.
    fn release(&mut self) {
        self.stdin = None;
    }

    /// After a command returned: the holder no longer holds its file. It
    /// closes it in do_exit(), before it is a zombie: ask whether it still
    /// holds the file, not whether it has exited yet. Then reaps it.
    fn assert_released(&mut self) {
        assert!(
            fs::read_link(format!("/proc/{}/fd/3", self.pid())).is_err(),
            "returned while the holder still held the file"
        );
        let _ = self.holder.child.wait();
    }
}

/// A process alone in its own mount namespace (a copy of ours), which keeps
/// the filesystems mounted there alive until it dies. Writes `write_mib`
/// MiB into `dir` first; returns once it sleeps.
fn namespace_holder(dir: &Path, name: &str, write_mib: u32) -> Holder {
    namespace_shell(&format!(
        "dd if=/dev/zero of='{}/{name}' bs=1M count={write_mib} status=none && exec sleep 600",
        dir.display()
    ))
}

/// [`namespace_holder`], which then mounts a tmpfs on `dir` in its
/// namespace: its copy of the filesystem at `dir` is covered there.
fn namespace_holder_covered(dir: &Path) -> Holder {
    namespace_shell(&format!(
        "mount -t tmpfs umw-stacked '{}' && exec sleep 600",
        dir.display()
    ))
}

/// `sh -c script` in a mount namespace of its own, a copy of ours; returns
/// once the script has come to its `exec sleep`.
fn namespace_shell(script: &str) -> Holder {
    let holder = Holder::spawn(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
    ]));
    let comm = format!("/proc/{}/comm", holder.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(&comm)
        .map(|c| c.trim() != "sleep")
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "namespace holder did not start");
        sleep(Duration::from_millis(5));
    }
    holder
}

/// A process that sleeps with its working directory in `dir`.
fn cwd_holder(dir: &Path) -> Holder {
    Holder::spawn(Command::new("sleep").arg("600").current_dir(dir))
}

/// Which of a background command's outputs to watch for a line.
#[derive(Clone, Copy)]
enum Watch {
    Stdout,
    Stderr,
}

/// A command running in the background, with one of its outputs read as
/// it comes, so that a test acts when the command says it is ready (its
/// "waiting" line) instead of after a guessed sleep.
struct Background {
    holder: Holder,
    watch: Watch,
    /// What the watched output said so far.
    seen: Vec<u8>,
    start: Instant,
}

impl Background {
    fn spawn(cmd: &mut Command, watch: Watch) -> Background {
        let start = Instant::now();
        let holder = Holder::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
        Background {
            holder,
            watch,
            seen: Vec::new(),
            start,
        }
    }

    fn watched(&mut self) -> &mut dyn Read {
        match self.watch {
            Watch::Stdout => self.holder.child.stdout.as_mut().unwrap(),
            Watch::Stderr => self.holder.child.stderr.as_mut().unwrap(),
        }
    }

    /// Reads the watched output until it contains `needle`; false when it
    /// ends first (the command exited).
    fn wait_for(&mut self, needle: &str) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            if String::from_utf8_lossy(&self.seen).contains(needle) {
                return true;
            }
            match self.watched().read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading the command's output: {e}"),
            }
        }
    }

    fn said(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.holder.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits for the command to end and collects what it printed.
    fn finish(mut self) -> Run {
        let child = &mut self.holder.child;
        let mut watched = std::mem::take(&mut self.seen);
        let mut other = Vec::new();
        let (w, o): (&mut dyn Read, &mut dyn Read) = match self.watch {
            Watch::Stdout => (
                child.stdout.as_mut().unwrap(),
                child.stderr.as_mut().unwrap(),
            ),
            Watch::Stderr => (
                child.stderr.as_mut().unwrap(),
                child.stdout.as_mut().unwrap(),
            ),
        };
        w.read_to_end(&mut watched).unwrap();
        o.read_to_end(&mut other).unwrap();
        let status = child.wait().unwrap();
        let (stdout, stderr) = match self.watch {
            Watch::Stdout => (watched, other),
            Watch::Stderr => (other, watched),
        };
        Run {
            code: shell_code(status),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: self.start.elapsed(),
        }
    }
}

fn field<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":");
    let start = json.find(&key)? + key.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

fn field_ms(json: &str, name: &str) -> f64 {
    field(json, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {json}"))
}

/// Whether this kernel has `UMOUNT_NOTIFY`: the empty path passes the flag
/// check (ENOENT) only where the flag exists.
fn kernel_has_umount_notify() -> bool {
    let flags = UnmountFlags::from_bits_retain(umount_wait::sys::UMOUNT_NOTIFY);
    rustix::mount::unmount("", flags) == Err(Errno::NOENT)
}

/// Whether this kernel has `UMOUNT_WAIT`, found by using it: `umount2` of a
/// fresh tmpfs with the flag, which unmounts it where the flag exists and
/// fails with EINVAL where it does not. Independent of `sys::probe()`,
/// which the command itself relies on.
fn kernel_has_umount_wait() -> bool {
    let s = Scratch::new("flag-check");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let flags = UnmountFlags::from_bits_retain(umount_wait::sys::UMOUNT_WAIT);
    match rustix::mount::unmount(&m, flags) {
        Ok(()) => true,
        Err(Errno::INVAL) => false,
        Err(e) => panic!("umount2({}, UMOUNT_WAIT): {e}", m.display()),
    }
}

// ---------------------------------------------------------------- tests

fn probe_reports_the_path_of_this_kernel() {
    let run = umw(["--probe"]);
    assert_code(&run, EXIT_OK, "--probe");
    let first = run
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches(':');
    let expected = match (kernel_has_umount_notify(), kernel_has_umount_wait()) {
        (true, _) => "notify",
        (false, true) => "kernel",
        (false, false) => "fallback",
    };
    assert_eq!(first, expected, "{}", run.stdout);
    eprintln!("    this kernel: {}", run.stdout.trim());
}

/// The kernel path's machinery end to end, through the library: the child
/// makes `umount2(target, UMOUNT_WAIT)` and the parent reaps it and reports
/// its result. Without the flag the kernel refuses with EINVAL before any
/// change: the child's errno comes back as it was, the target untouched.
/// With it, the tmpfs shuts down. Either way no child is left behind.
fn kernel_path_child_reports_the_call_result() {
    use umount_wait::{target, ErrorKind, Outcome, State, WaitPath};
    let s = Scratch::new("kernel-child");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let mounts = mountinfo::read(None).unwrap();
    let t = target::resolve(&m, true, &mounts).unwrap();
    let result = umount_wait::unmount(
        &t,
        WaitPath::Kernel,
        &umount_wait::Options {
            timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        },
        &|_| {},
    );
    if kernel_has_umount_wait() {
        let report = result.unwrap();
        assert_eq!(report.outcome, Outcome::ShutDown);
        assert!(!is_mounted(&m));
    } else {
        let error = result.unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotMountPoint, "{error}");
        assert_eq!(error.errno, Some(Errno::INVAL), "{error}");
        assert_eq!(error.state, State::Untouched, "{error}");
        assert!(is_mounted(&m));
    }
    assert_eq!(
        rustix::process::wait(rustix::process::WaitOptions::NOHANG).map(|w| w.is_some()),
        Err(Errno::CHILD),
        "a child process was left behind"
    );
}

/// `--mode MODE` on a tmpfs: the path named `MODE` where the kernel `has`
/// its flag (the report's path says so), else exit 2 with the `flag`
/// named and the target untouched.
fn mode_follows_the_kernel(mode: &str, has: bool, flag: &str) {
    let s = Scratch::new(&format!("mode-{mode}"));
    let m = s.dir("m");
    mount_tmpfs(&m);
    let run = umw([
        OsStr::new("--mode"),
        OsStr::new(mode),
        OsStr::new("--json"),
        m.as_os_str(),
    ]);
    if has {
        assert_code(&run, EXIT_OK, &format!("--mode {mode} with {flag}"));
        assert_eq!(field(&run.stdout, "path"), Some(mode), "{}", run.stdout);
        assert!(!is_mounted(&m));
        return;
    }
    assert_code(&run, EXIT_SYSTEM, &format!("--mode {mode} without {flag}"));
    assert!(
        run.stderr.contains(&format!("no {flag}")) && run.stderr.contains("untouched"),
        "{}",
        run.stderr
    );
    assert!(is_mounted(&m));
}

/// `--mode kernel` takes the kernel path where the flag exists, and fails
/// untouched where it does not.
fn mode_kernel_follows_the_kernel() {
    mode_follows_the_kernel("kernel", kernel_has_umount_wait(), "UMOUNT_WAIT");
}

/// `--mode notify` takes the kernel's UMOUNT_NOTIFY where it exists (one
/// descriptor polled), and fails untouched where it does not; `--all`
/// too (one descriptor per filesystem, polled together).
fn mode_notify_follows_the_kernel() {
    let s = Scratch::new("mode-notify-all");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let run = umw(["--mode", "notify", "--all", "--include"]
        .map(OsStr::new)
        .into_iter()
        .chain([m.as_os_str()]));
    if kernel_has_umount_notify() {
        assert_code(&run, EXIT_OK, "--mode notify --all");
        assert!(!is_mounted(&m));
    } else {
        assert_code(
            &run,
            EXIT_SYSTEM,
            "--mode notify --all without UMOUNT_NOTIFY",
        );
        assert!(run.stderr.contains("UMOUNT_NOTIFY"), "{}", run.stderr);
        assert!(is_mounted(&m));
    }
    mode_follows_the_kernel("notify", kernel_has_umount_notify(), "UMOUNT_NOTIFY");
}

fn tmpfs_unmount_shuts_down() {
    let s = Scratch::new("tmpfs");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let run = umw([OsStr::new("--json"), m.as_os_str()]);
    assert_code(&run, EXIT_OK, "plain tmpfs");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("shut_down"),
        "{}",
        run.stdout
    );
    assert_eq!(
        field(&run.stdout, "path"),
        Some(if kernel_has_umount_wait() {
            "kernel"
        } else {
            "fallback"
        }),
        "{}",
        run.stdout
    );
    for key in [
        "target",
        "source",
        "path",
        "outcome",
        "umount_ms",
        "wait_ms",
        "blockers",
    ] {
        assert!(
            run.stdout.contains(&format!("\"{key}\":")),
            "JSON lacks {key}: {}",
            run.stdout
        );
    }
    assert!(!is_mounted(&m));
}

/// `umount-wait -l -v --json` on `m` while a process holds `file` open.
/// The command must say that it waits (its progress line, a second in) and
/// so not have returned while the file was held; only then is the holder
/// released. Returns the run and the holder, to check that it let go.
fn lazy_while_held(m: &Path, file: &Path) -> (Run, FileHolder) {
    let mut holder = hold_open(file);
    let mut cmd = Background::spawn(
        Command::new(BIN)
            .args(["-l", "-v", "--json", "--timeout", "60s"])
            .arg(m),
        Watch::Stderr,
    );
    let waiting = cmd.wait_for(": waiting ");
    holder.release();
    let run = cmd.finish();
    assert!(
        waiting,
        "returned while the file was held (exit {}):\n{}{}",
        run.code, run.stdout, run.stderr
    );
    (run, holder)
}

/// The handler of `sig` in this process: SIG_DFL, SIG_IGN or a function.
fn disposition(sig: i32) -> usize {
    let mut old = std::mem::MaybeUninit::<nix::libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`.
    let rc = unsafe { nix::libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: filled by the successful call above.
    unsafe { old.assume_init() }.sa_sigaction
}

/// The library ends a wait when the caller's cancellation handle becomes
/// readable (here a socket that the observer writes to at the first
/// progress report: no timing), reports it as cancelled, and touches no
/// process state: SIGINT and SIGTERM keep the action they had, the
/// signal mask is unchanged. A handle already readable leaves the next
/// target untouched.
fn library_takes_a_cancel_handle_and_leaves_signals_alone() {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use umount_wait::{target, Cancel, ErrorKind, Outcome, State, Unconfirmed, WaitPath};
    let (sigint, sigterm) = (nix::libc::SIGINT, nix::libc::SIGTERM);
    // What the test runner inherited: SIG_DFL, or SIG_IGN when it was
    // started in the background by a non-interactive shell. The library
    // must leave either as it found it.
    let (int_before, term_before) = (disposition(sigint), disposition(sigterm));
    let mask = nix::sys::signal::SigSet::thread_get_mask().unwrap();

    let s = Scratch::new("cancel");
    let held = s.dir("held");
    mount_tmpfs(&held);
    let next = s.dir("next");
    mount_tmpfs(&next);
    let mut holder = namespace_holder(&held, "f", 0);
    let (stop, handle) = UnixStream::pair().unwrap();
    let options = umount_wait::Options {
        timeout: Some(Duration::from_secs(60)),
        cancel: Cancel::on_readable(handle.as_fd()),
        ..Default::default()
    };
    let path = if kernel_has_umount_wait() {
        WaitPath::Kernel
    } else {
        WaitPath::Fallback
    };
    let mounts = mountinfo::read(None).unwrap();
    let t = target::resolve(&held, true, &mounts).unwrap();
    let observer = |_: umount_wait::Progress<'_>| {
        let _ = (&stop).write_all(b"x");
    };
    let report = umount_wait::unmount(&t, path, &options, &observer).unwrap();
    holder.stop();
    assert_eq!(
        report.outcome,
        Outcome::DetachedUnconfirmed(Unconfirmed::Cancelled)
    );
    assert!(!is_mounted(&held));

    let t = target::resolve(&next, true, &mounts).unwrap();
    let error = umount_wait::unmount(&t, path, &options, &|_| {}).unwrap_err();
    assert_eq!(
        (error.kind, error.state),
        (ErrorKind::Interrupted, State::Untouched)
    );
    assert!(is_mounted(&next));

    assert_eq!(disposition(sigint), int_before, "SIGINT handler installed");
    assert_eq!(
        disposition(sigterm),
        term_before,
        "SIGTERM handler installed"
    );
    assert_eq!(nix::sys::signal::SigSet::thread_get_mask().unwrap(), mask);
}

fn tmpfs_lazy_waits_for_open_file() {
    let s = Scratch::new("tmpfs-lazy");
    let m = s.dir("m");
    mount_tmpfs(&m);
    fs::write(m.join("f"), b"data").unwrap();
    let (run, mut holder) = lazy_while_held(&m, &m.join("f"));
    assert_code(&run, EXIT_OK, "lazy with open file");
    holder.assert_released();
    eprintln!(
        "    lazy tmpfs: wait_ms={}",
        field_ms(&run.stdout, "wait_ms")
    );
}

fn ext4_lazy_waits_for_open_file_and_frees_device() {
    let s = Scratch::new("ext4-lazy");
    let dev = LoopExt4::new(&s, 64);
    let m = s.dir("m");
    dev.mount(&m);
    let mut f = fs::File::create(m.join("f")).unwrap();
    f.write_all(&vec![7u8; 4 << 20]).unwrap();
    drop(f);
    let (run, mut holder) = lazy_while_held(&m, &m.join("f"));
    let busy = excl_busy(&dev.device);
    assert_code(&run, EXIT_OK, "lazy ext4 with open file");
    assert!(
        !busy,
        "device still claimed right after return: {}",
        run.stdout
    );
    holder.assert_released();
    assert_eq!(
        field(&run.stdout, "device_node"),
        Some(dev.device.to_str().unwrap()),
        "{}",
        run.stdout
    );
    eprintln!(
        "    lazy ext4: wait_ms={} claim_attempts={}",
        field_ms(&run.stdout, "wait_ms"),
        field(&run.stdout, "claim_attempts").unwrap_or("?")
    );
}

/// btrfs has an anonymous `s_dev`, and `IN_UNMOUNT` comes before its
/// `close_ctree()` (the last commit, the devices closed): the member
/// devices' claims say when it is done. The issue's case: 2000 small files
/// written, one held open, a lazy unmount, the holder lets go; right after
/// the command returns, the device must be free. `UMW_BTRFS_RUNS` runs
/// (4). Skipped with a message where btrfs cannot be made or mounted.
fn btrfs_lazy_returns_only_when_its_devices_are_free() {
    let s = Scratch::new("btrfs");
    let Some(dev) = loop_btrfs_or_say_why(&s) else {
        return;
    };
    let m = s.dir("m");
    let runs: usize = std::env::var("UMW_BTRFS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let mut claimed = 0;
    for run in 0..runs {
        if let Err(e) = rustix::mount::mount(&dev.device, &m, "btrfs", MountFlags::empty(), None) {
            assert_eq!(run, 0, "mounting btrfs again: {e}");
            eprintln!("    btrfs not checked: mount: {e}");
            return;
        }
        let files = m.join(format!("files{run}"));
        fs::create_dir(&files).unwrap();
        for i in 0..2000 {
            fs::write(files.join(i.to_string()), b"small").unwrap();
        }
        let (run_result, mut holder) = lazy_while_held(&m, &files.join("0"));
        let busy = excl_busy(&dev.device);
        assert_code(&run_result, EXIT_OK, "btrfs -l with an open file");
        holder.assert_released();
        assert!(
            run_result
                .stdout
                .contains(&format!("\"device_nodes\":[\"{}\"]", dev.device.display())),
            "{}",
            run_result.stdout
        );
        if busy {
            claimed += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while excl_busy(&dev.device) {
            assert!(
                Instant::now() < deadline,
                "btrfs never let go of its device"
            );
            sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(
        claimed, 0,
        "device claimed right after return in {claimed} of {runs} runs"
    );
}

fn timeout_with_copy_in_other_namespace() {
    let s = Scratch::new("timeout");
    let dev = LoopExt4::new(&s, 64);
    let m = s.dir("m");
    dev.mount(&m);
    let mut holder = namespace_holder(&m, "f", 1);
    let run = umw([
        OsStr::new("--timeout"),
        OsStr::new("500ms"),
        OsStr::new("--json"),
        m.as_os_str(),
    ]);
    let busy = excl_busy(&dev.device);
    holder.stop();
    assert_code(&run, EXIT_UNCONFIRMED, "timeout with a copy alive");
    assert!(busy, "the copy should still hold the device");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("detached_unconfirmed"),
        "{}",
        run.stdout
    );
    let pid = format!("\"pid\":{}", holder.id());
    assert!(
        run.stdout.contains("\"kind\":\"mount\"") && run.stdout.contains(&pid),
        "blocker not named: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("detached, shutdown not confirmed")
            && run.stderr.contains("mount namespace"),
        "{}",
        run.stderr
    );
    assert_eq!(
        field(&run.stdout, "reason"),
        Some("timed out after 500ms"),
        "{}",
        run.stdout
    );
    assert!(
        run.elapsed >= Duration::from_millis(500),
        "{:?}",
        run.elapsed
    );
    assert!(!is_mounted(&m));
}

/// `umount-wait -r --timeout 500ms --json m` while `holder`'s namespace keeps the
/// filesystem: the run, and the holder's mountinfo right after it.
fn read_only_after_timeout(m: &Path, holder: &Holder) -> (Run, String) {
    let run = umw([
        OsStr::new("-r"),
        OsStr::new("--timeout"),
        OsStr::new("500ms"),
        OsStr::new("--json"),
        m.as_os_str(),
    ]);
    let theirs = fs::read_to_string(format!("/proc/{}/mountinfo", holder.id())).unwrap();
    (run, theirs)
}

/// `-r` with a wait that ends unconfirmed: the filesystem, detached here
/// but alive in the holder's namespace, is made read-only there, its journal
/// committed: the disk is clean while the filesystem still lives.
fn read_only_through_other_namespace_after_timeout() {
    let s = Scratch::new("ro-through");
    let dev = LoopExt4::new(&s, 64);
    let m = s.dir("m");
    dev.mount(&m);
    let mut holder = namespace_holder(&m, "f", 1);
    let (run, theirs) = read_only_after_timeout(&m, &holder);
    let header = Command::new("dumpe2fs")
        .arg("-h")
        .arg(&dev.device)
        .output()
        .unwrap();
    holder.stop();
    assert_code(&run, EXIT_UNCONFIRMED, "timeout with a copy alive, -r");
    let through = "\"read_only_through\":{\"kind\":\"mount\",";
    assert!(run.stdout.contains(through), "{}", run.stdout);
    assert!(
        run.stderr.contains("made read-only where it stays"),
        "{}",
        run.stderr
    );
    // The holder's mount: " - ext4 /dev/loopN ro,..." (the superblock's options).
    let line = theirs
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(m.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no {} in the holder's mountinfo:\n{theirs}", m.display()));
    let super_options = line.rsplit(' ').next().unwrap();
    assert!(
        super_options.split(',').any(|o| o == "ro"),
        "still read-write in the holder's namespace: {line}"
    );
    let header = String::from_utf8_lossy(&header.stdout);
    assert!(
        !header.contains("needs_recovery"),
        "the journal still needs recovery while read-only:\n{header}"
    );
}

/// The user the inotify tests run the command as: root's instances are
/// the whole machine's, nobody's are this test's to take.
const NOBODY: u32 = 65534;

/// Every inotify instance `uid` may have, held by a process of that user
/// (forked from this one) until drop, when it is killed and reaped: then
/// `inotify_init1()` fails with EMFILE in any process of that user, and
/// root's processes elsewhere on the machine are not affected.
struct InotifyTaken {
    pid: nix::unistd::Pid,
    /// The child's end of it blocks until this one closes.
    _hold: std::os::unix::net::UnixStream,
}

impl InotifyTaken {
    fn new(uid: u32) -> Result<InotifyTaken, String> {
        use std::os::unix::net::UnixStream;
        let limit = "/proc/sys/fs/inotify/max_user_instances";
        let max: u64 = fs::read_to_string(limit)
            .map_err(|e| format!("{limit}: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("{limit}: {e}"))?;
        if max > 1 << 16 {
            return Err(format!("{limit} is {max}: too many to take"));
        }
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        // SAFETY: this process is single-threaded (see main); the child
        // runs only the code below and ends with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                // Descriptors enough that the instance limit, not the
                // descriptor limit, ends the loop.
                let _ = rustix::process::setrlimit(
                    rustix::process::Resource::Nofile,
                    rustix::process::Rlimit {
                        current: Some(max + 64),
                        maximum: Some(max + 64),
                    },
                );
                // SAFETY: plain system calls in the child.
                let dropped = unsafe {
                    nix::libc::setgroups(0, std::ptr::null()) == 0
                        && nix::libc::setgid(uid) == 0
                        && nix::libc::setuid(uid) == 0
                };
                let mut taken = Vec::new();
                let errno = loop {
                    match rustix::fs::inotify::init(rustix::fs::inotify::CreateFlags::CLOEXEC) {
                        Ok(fd) if dropped => taken.push(fd),
                        Ok(_) => break 0,
                        Err(e) => break e.raw_os_error(),
                    }
                };
                let _ = writeln!(theirs, "{} {errno}", taken.len());
                // Until the parent is done with it (EOF) or kills it.
                let _ = theirs.read(&mut [0u8; 1]);
                // SAFETY: ends the child without running the parent's code.
                unsafe { nix::libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(theirs);
                let mut line = String::new();
                let mut byte = [0u8; 1];
                while ours.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                    line.push(char::from(byte[0]));
                }
                let taken = InotifyTaken {
                    pid: child,
                    _hold: ours,
                };
                match line.split_once(' ') {
                    Some((_, errno)) if errno == nix::libc::EMFILE.to_string() => Ok(taken),
                    _ => Err(format!(
                        "taking uid {uid}'s inotify instances: {line:?} (count, errno)"
                    )),
                }
            }
        }
    }
}

impl Drop for InotifyTaken {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// The command as `NOBODY`, with the capabilities it needs to unmount
/// (`CAP_SYS_ADMIN`) and to open the block devices (`CAP_DAC_OVERRIDE`).
fn umw_as_nobody<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let caps = "+sys_admin,+dac_override";
    run_command(
        Command::new("setpriv")
            .arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(format!("--inh-caps={caps}"))
            .arg(format!("--ambient-caps={caps}"))
            .arg(BIN)
            .args(args),
    )
}

/// Without inotify (here: every instance of the user taken, EMFILE) the
/// fallback cannot watch the mount root, and unmounts anyway: an ext4 on
/// a loop device is confirmed shut down by its block device's claim (exit
/// 0, the device free on return); a tmpfs, which has no device, is
/// detached, shutdown not confirmed (exit 3, the reason says why); under
/// `--all` both go, and a busy one is made read-only: nothing stays
/// mounted read-write. Before, each was
/// left untouched ("adding an inotify watch", exit 2), and `--all` left
/// everything read-write.
fn without_inotify_the_unmount_goes_on() {
    let s = Scratch::new("no-inotify");
    let dev = LoopExt4::new(&s, 64);
    let e = s.dir("e");
    let t = s.dir("t");
    let taken = match InotifyTaken::new(NOBODY) {
        Ok(taken) => taken,
        Err(why) => panic!("cannot take the inotify instances: {why}"),
    };
    let fallback = [OsStr::new("--mode"), OsStr::new("fallback")];

    dev.mount(&e);
    fs::write(e.join("f"), vec![7u8; 1 << 20]).unwrap();
    let run = umw_as_nobody(
        fallback
            .iter()
            .copied()
            .chain([OsStr::new("--json"), e.as_os_str()]),
    );
    let busy = excl_busy(&dev.device);
    assert_code(&run, EXIT_OK, "ext4 without inotify");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("shut_down"),
        "{}",
        run.stdout
    );
    assert!(!busy, "device still claimed right after return");
    assert!(!is_mounted(&e));

    mount_tmpfs(&t);
    let run = umw_as_nobody(
        fallback
            .iter()
            .copied()
            .chain([OsStr::new("--json"), t.as_os_str()]),
    );
    assert_code(&run, EXIT_UNCONFIRMED, "tmpfs without inotify");
    assert!(run.stdout.contains("no inotify watch"), "{}", run.stdout);
    assert!(!is_mounted(&t));

    dev.mount(&e);
    mount_tmpfs(&t);
    // And one kept busy: read-only, as with inotify.
    let b = s.dir("b");
    mount_tmpfs(&b);
    let mut cwd = cwd_holder(&b);
    let run = umw_as_nobody(fallback.iter().copied().chain([
        OsStr::new("--all"),
        OsStr::new("--include"),
        s.dir.as_os_str(),
        OsStr::new("--json"),
    ]));
    let busy = excl_busy(&dev.device);
    let b_writable = fs::write(b.join("x"), b"x").is_ok();
    cwd.stop();
    drop(taken);
    assert_code(&run, EXIT_SOME_FAILED, "--all without inotify");
    assert!(!busy, "device still claimed right after --all returned");
    assert!(
        !is_mounted(&e) && !is_mounted(&t),
        "left mounted: {}",
        run.stdout
    );
    assert!(!b_writable, "the busy one left read-write: {}", run.stdout);
}

/// `-r` after a wait that ended unconfirmed makes the filesystem
/// read-only through a holder's mount of it, reached by
/// `/proc/PID/root/MOUNT_POINT`. When the holder has mounted something
/// else on that mount point, the path leads to that other mount, which
/// must not be made read-only in its place: here nothing can be reached,
/// so nothing is made read-only (`read_only_through` null) and the
/// holder's tmpfs stays writable. Before, the tmpfs was made read-only
/// and reported as the way through.
fn read_only_through_other_namespace_never_a_mount_stacked_on_it() {
    let s = Scratch::new("ro-stacked");
    let dev = LoopExt4::new(&s, 64);
    let m = s.dir("m");
    dev.mount(&m);
    let mut holder = namespace_holder_covered(&m);
    let (run, theirs) = read_only_after_timeout(&m, &holder);
    holder.stop();
    assert_code(&run, EXIT_UNCONFIRMED, "timeout with a covered copy, -r");
    assert_eq!(
        field(&run.stdout, "read_only_through"),
        Some("null"),
        "{}",
        run.stdout
    );
    let stacked = theirs
        .lines()
        .find(|l| l.contains(" - tmpfs umw-stacked "))
        .unwrap_or_else(|| panic!("no stacked tmpfs in the holder's mountinfo:\n{theirs}"));
    let options = stacked.split(' ').nth(5).unwrap();
    assert!(
        options.split(',').any(|o| o == "rw"),
        "the mount stacked on the holder's copy was made read-only: {stacked}"
    );
}

/// `cmd` with SIGINT and SIGTERM at their default action, whatever the test
/// runner inherited: started in the background by a non-interactive shell,
/// it ignores SIGINT, which the command (and a shell, which cannot trap a
/// signal ignored on entry) would then keep ignored.
fn stop_signals_default(cmd: &mut Command) -> &mut Command {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: sigaction is async-signal-safe, as a pre_exec hook must be.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [Signal::SIGINT, Signal::SIGTERM] {
                signal(sig, SigHandler::SigDfl).map_err(std::io::Error::from)?;
            }
            Ok(())
        })
    }
}

/// `umount-wait -v ARGS M` on a tmpfs kept alive by a copy in another
/// namespace, SIGINT and SIGTERM at their default, sent SIGINT once it
/// says that it waits (the mount is detached by then, and the signal
/// cannot come before the command is ready for it). Its run.
fn interrupted_wait(name: &str, args: &[&str]) -> Run {
    let s = Scratch::new(name);
    let m = s.dir("m");
    mount_tmpfs(&m);
    let mut holder = namespace_holder(&m, "f", 0);
    let mut cmd = Background::spawn(
        stop_signals_default(Command::new(BIN).arg("-v").args(args).arg(&m)),
        Watch::Stderr,
    );
    let waiting = cmd.wait_for(": waiting ");
    assert!(waiting, "no waiting line: {}", cmd.said());
    cmd.signal(rustix::process::Signal::INT);
    let run = cmd.finish();
    holder.stop();
    run
}

fn sigint_during_wait_is_detached_unconfirmed() {
    // -t: a SIGINT that does not end the wait fails the test as "timed
    // out" instead of hanging it.
    let run = interrupted_wait("sigint", &["--timeout", "60s"]);
    // Reported, then dead by the signal, as umount(8) would be: a calling
    // script stops too.
    assert_code(&run, DIED_BY_SIGINT, "SIGINT during the wait");
    assert!(
        run.stderr.contains("interrupted by SIGINT")
            && run.stderr.contains("detached, shutdown not confirmed"),
        "{}",
        run.stderr
    );
}

/// With --json the report is printed whole before the command dies by the
/// signal: a script that reads it gets it, and stops like umount(8)'s.
fn sigint_with_json_prints_the_report_then_dies() {
    let run = interrupted_wait("sigint-json", &["--json", "--timeout", "60s"]);
    assert_code(&run, DIED_BY_SIGINT, "SIGINT during the wait, --json");
    assert!(
        run.stdout.contains("\"reason\":\"interrupted by SIGINT\"")
            && run.stdout.trim_end().ends_with('}'),
        "no whole JSON report before the death: {}",
        run.stdout
    );
}

/// `sh -c "trap '' SIG; exec umount-wait -v ARGS M"` on `m`, kept alive by a
/// copy in another namespace; `send` once it says that it waits. Its run.
fn wait_with_ignored(ignored: &str, send: rustix::process::Signal, args: &[&str], m: &Path) -> Run {
    let mut holder = namespace_holder(m, "f", 0);
    let script = format!("trap '' {ignored}; exec \"$0\" -v \"$@\"");
    let mut cmd = Background::spawn(
        stop_signals_default(
            Command::new("sh")
                .args(["-c", &script, BIN])
                .args(args)
                .arg(m),
        ),
        Watch::Stderr,
    );
    let waiting = cmd.wait_for(": waiting ");
    assert!(waiting, "no waiting line: {}", cmd.said());
    cmd.signal(send);
    let run = cmd.finish();
    holder.stop();
    run
}

/// A caller that ignores SIGTERM or SIGINT (`trap '' TERM`, as init scripts
/// shield themselves; a shell's background job ignores SIGINT) keeps it
/// ignored: the wait goes on to its --timeout. The other signal still ends
/// it.
fn a_signal_the_caller_ignores_stays_ignored() {
    use rustix::process::Signal;
    let s = Scratch::new("ignored");
    let m = s.dir("m");
    for (ignored, signal, name) in [
        ("TERM", Signal::TERM, "SIGTERM"),
        ("INT", Signal::INT, "SIGINT"),
    ] {
        mount_tmpfs(&m);
        let run = wait_with_ignored(ignored, signal, &["--timeout", "3s"], &m);
        assert_code(
            &run,
            EXIT_UNCONFIRMED,
            &format!("{name} ignored, then sent"),
        );
        assert!(
            run.stderr.contains("timed out after 3s") && !run.stderr.contains("interrupted"),
            "{name} ignored by the caller ended the wait:\n{}",
            run.stderr
        );
    }
    // SIGTERM ignored, SIGINT not: SIGINT ends the wait as documented.
    mount_tmpfs(&m);
    let run = wait_with_ignored("TERM", Signal::INT, &["--timeout", "60s"], &m);
    assert_code(&run, DIED_BY_SIGINT, "SIGINT with SIGTERM ignored");
    assert!(
        run.stderr.contains("interrupted by SIGINT"),
        "{}",
        run.stderr
    );
}

fn status_line_on_a_terminal_and_progress_with_verbose() {
    let s = Scratch::new("status");
    let m = s.dir("m");
    mount_tmpfs(&m);
    fs::write(m.join("f"), b"data").unwrap();

    // -v without a terminal: a line a second, naming the holder, which
    // lets go only once the first line has come.
    let mut holder = hold_open(&m.join("f"));
    let mut cmd = Background::spawn(
        Command::new(BIN)
            .args(["-l", "-v", "--timeout", "60s"])
            .arg(&m),
        Watch::Stderr,
    );
    let named = format!(", held by pid {} (sh): fd 3 ", holder.pid());
    let waiting = cmd.wait_for(&named);
    holder.release();
    let run = cmd.finish();
    assert!(waiting, "no waiting line naming the holder: {}", run.stderr);
    assert_code(&run, EXIT_OK, "-l -v");
    assert!(run.stderr.contains(": waiting "), "{}", run.stderr);
    assert!(
        run.stderr.contains("shut down (fallback path")
            || run.stderr.contains("shut down (kernel path"),
        "{}",
        run.stderr
    );

    // On a terminal (script(1) gives it a pty): a status line, cleared at the end.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("    script(1) not installed: terminal status line not checked");
        return;
    }
    mount_tmpfs(&m);
    fs::write(m.join("f"), b"data").unwrap();
    let mut holder = hold_open(&m.join("f"));
    let line = format!("{BIN} -l --timeout 60s {}", m.display());
    let mut cmd = Background::spawn(
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("TERM", "xterm"),
        Watch::Stdout,
    );
    let waiting = cmd.wait_for(": waiting ");
    holder.release();
    let run = cmd.finish();
    let text = &run.stdout;
    assert!(waiting, "no status line: {text:?}");
    assert_eq!(run.code, EXIT_OK, "{text}");
    assert!(
        text.contains("\r\x1b[2Kumount-wait: ") && text.contains(": waiting "),
        "{text:?}"
    );
    assert!(
        text.ends_with("\r\x1b[2K"),
        "status line not cleared: {text:?}"
    );
    assert!(!is_mounted(&m));
}

/// A FUSE filesystem (bindfs) whose daemon is stopped (SIGSTOP), with
/// attributes never cached: every request to it waits for ever.
/// `--timeout 3s`
/// must bound every step, not only the wait after the unmount: the
/// target's lookup (`statx`, without sync), the watch (its permission
/// check asks the daemon), `umount2`. Here the watch cannot be added
/// before the deadline: the target is left untouched ("deadline reached
/// before unmounting", exit 32), in about 3 s. Run under timeout(1): 20 s
/// is the generous bound. Before, the command hung in `statx`.
fn timeout_bounds_a_filesystem_that_does_not_answer() {
    let required = std::env::var("UMW_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1");
    if Command::new("bindfs").arg("--version").output().is_err() {
        assert!(!required, "bindfs is not installed (ci/setup installs it)");
        eprintln!("    bindfs not installed: not checked");
        return;
    }
    let s = Scratch::new("fuse-stopped");
    let src = s.dir("src");
    fs::write(src.join("f"), b"data").unwrap();
    let m = s.dir("m");
    let daemon = Holder::spawn(
        Command::new("bindfs")
            .args(["-f", "-o", "attr_timeout=0,entry_timeout=0"])
            .arg(&src)
            .arg(&m),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(&m) {
        assert!(Instant::now() < deadline, "bindfs did not mount");
        sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["-s", "KILL", "20"])
        .arg(BIN)
        .args(["--mode", "fallback", "--timeout", "3s", "--json"])
        .arg(&m)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    drop(daemon);
    assert_eq!(
        out.status.code(),
        Some(EXIT_FAILURE),
        "after {elapsed:?}: {stdout}{stderr}"
    );
    assert!(
        stderr.contains("deadline reached before unmounting (untouched)"),
        "{stderr}"
    );
    assert_eq!(field(&stdout, "outcome"), Some("untouched"), "{stdout}");
    eprintln!(
        "    --timeout 3s on a stopped FUSE daemon: {:.2} s",
        elapsed.as_secs_f64()
    );
}

fn quiet_hides_not_mounted() {
    let s = Scratch::new("quiet");
    let plain = s.dir("plain");
    let run = umw([OsStr::new("-q"), plain.as_os_str()]);
    assert_code(&run, EXIT_FAILURE, "-q on a directory that is not mounted");
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(
        umw([plain.as_os_str()])
            .stderr
            .contains(": not mounted (untouched)"),
        "umount(8)'s words"
    );

    // A bind mount whose filesystem stays: nothing said with -q (before:
    // "unmounted; its filesystem stays mounted at ..."), and with -v
    // umount(8)'s "X unmounted" line for the last one.
    let m = s.dir("m");
    let b = s.dir("b");
    mount_tmpfs(&m);
    rustix::mount::mount_bind(&m, &b).unwrap();
    let run = umw([OsStr::new("-q"), b.as_os_str()]);
    assert_code(&run, EXIT_OK, "-q on a bind mount");
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = umw([OsStr::new("-v"), m.as_os_str()]);
    assert_code(&run, EXIT_OK, "-v");
    assert!(
        run.stderr
            .contains(&format!("umount-wait: {} unmounted", m.display())),
        "{}",
        run.stderr
    );
}

fn busy_target_is_untouched_and_names_holder() {
    let s = Scratch::new("busy");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let mut holder = cwd_holder(&m);
    let run = umw([OsStr::new("--json"), m.as_os_str()]);
    holder.stop();
    assert_code(&run, EXIT_FAILURE, "busy target");
    assert!(
        run.stderr.contains("target is busy (untouched)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("pid {} (sleep): cwd", holder.id())),
        "{}",
        run.stderr
    );
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("untouched"),
        "{}",
        run.stdout
    );
    assert!(is_mounted(&m));
}

/// `umount-wait TARGET` on a busy target, whose holders must be named:
/// exit 32, untouched, and `wanted` in what it says.
fn assert_busy_names(m: &Path, wanted: &str, what: &str) {
    let run = umw([m.as_os_str()]);
    assert_code(&run, EXIT_FAILURE, what);
    assert!(
        run.stderr.contains("target is busy (untouched)") && run.stderr.contains(wanted),
        "{what}: {wanted:?} not named:\n{}",
        run.stderr
    );
    assert!(is_mounted(m), "{what}: unmounted");
}

/// Holders that no open file, working directory or root shows: a program
/// run from the filesystem (mapped, no descriptor open), a swap file on
/// it, a loop device over a file on it. Each keeps it busy, and each must
/// be named. Before, none was.
fn busy_target_names_mappings_swap_files_and_loop_devices() {
    let s = Scratch::new("busy-unseen");
    let m = s.dir("m");
    mount_tmpfs(&m);

    // A copy of sleep(1) run from the tmpfs, its working directory
    // elsewhere: only its mappings are there.
    let exe = m.join("umw-sleep");
    fs::copy("/bin/sleep", &exe).unwrap();
    let mut mapped = Holder::spawn(Command::new(&exe).arg("600").current_dir("/"));
    let maps = format!("/proc/{}/maps", mapped.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(&maps).is_ok_and(|text| text.contains(exe.to_str().unwrap())) {
        assert!(Instant::now() < deadline, "the program did not start");
        sleep(Duration::from_millis(5));
    }
    let named = format!("pid {} (umw-sleep): mapped {}", mapped.id(), exe.display());
    assert_busy_names(&m, &named, "a program run from the target");
    mapped.stop();

    // A loop device over an image on the tmpfs.
    let image = m.join("image");
    fs::File::create(&image).unwrap().set_len(1 << 20).unwrap();
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image),
    );
    let lo = LoopExt4 {
        device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
    };
    let named = format!(
        "loop device {} over {}",
        lo.device.display(),
        image.display()
    );
    assert_busy_names(&m, &named, "a loop device over a file on the target");
    drop(lo);

    // A swap file on ext4 (tmpfs cannot hold one).
    let dev = LoopExt4::new(&s, 64);
    let e = s.dir("e");
    dev.mount(&e);
    let swapfile = e.join("swapfile");
    run_ok(
        Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", swapfile.display()))
            .args(["bs=1M", "count=16", "status=none"]),
    );
    fs::set_permissions(
        &swapfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    run_ok(Command::new("mkswap").arg("-q").arg(&swapfile));
    let swap = match SwapOn::new(&swapfile) {
        Ok(swap) => swap,
        Err(why) => {
            eprintln!("    swap file not checked: {why}");
            return;
        }
    };
    let named = format!("swap file {}", swapfile.display());
    assert_busy_names(&e, &named, "a swap file on the target");
    drop(swap);
    // Before the loop device is detached.
    rustix::mount::unmount(&e, UnmountFlags::empty()).unwrap();
}

/// A swap file in use, turned off on drop.
struct SwapOn {
    file: PathBuf,
}

impl SwapOn {
    fn new(file: &Path) -> Result<SwapOn, String> {
        // The lowest priority: the machine's own swap, if any, comes first.
        let out = Command::new("swapon")
            .args(["-p", "0"])
            .arg(file)
            .output()
            .map_err(|e| format!("swapon: {e}"))?;
        if !out.status.success() {
            return Err(format!("swapon: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(SwapOn {
            file: file.to_path_buf(),
        })
    }
}

impl Drop for SwapOn {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.file).status();
    }
}

/// btrfs gives a file the `st_dev` of its subvolume, never the one in
/// mountinfo: a process with its working directory there must be named
/// all the same (found by its mount, not its device). Before, it was not.
fn busy_btrfs_names_its_processes() {
    let s = Scratch::new("busy-btrfs");
    let Some(dev) = loop_btrfs_or_say_why(&s) else {
        return;
    };
    let m = s.dir("m");
    if let Err(e) = rustix::mount::mount(&dev.device, &m, "btrfs", MountFlags::empty(), None) {
        eprintln!("    btrfs not checked: mount: {e}");
        return;
    }
    let mut holder = cwd_holder(&m);
    let named = format!("pid {} (sleep): cwd", holder.id());
    assert_busy_names(&m, &named, "a working directory on btrfs");
    holder.stop();
    // Before the loop device is detached.
    rustix::mount::unmount(&m, UnmountFlags::empty()).unwrap();
}

fn read_only_when_busy() {
    let s = Scratch::new("read-only");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let mut holder = cwd_holder(&m);
    let run = umw([OsStr::new("-r"), OsStr::new("--json"), m.as_os_str()]);
    holder.stop();
    assert_code(&run, EXIT_FAILURE, "-r on a busy target");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("remounted_read_only"),
        "{}",
        run.stdout
    );
    assert!(
        fs::write(m.join("x"), b"x").is_err(),
        "still writable after -r"
    );
}

/// The target is resolved, then its mount is moved away and another one
/// mounted at its path. Neither may be unmounted: the path no longer
/// leads to the mount resolved (refused untouched, "moved or replaced"),
/// on the fallback path and on this kernel's own path. Before, the
/// fallback watched and unmounted the newcomer and reported the resolved
/// mount shut down.
fn a_mount_moved_after_resolution_is_left_alone() {
    use umount_wait::{target, ErrorKind, State, WaitPath};
    let s = Scratch::new("moved");
    let p = s.dir("p");
    let q = s.dir("q");
    let mut paths = vec![WaitPath::Fallback];
    if kernel_has_umount_wait() {
        paths.push(WaitPath::Kernel);
    }
    for path in paths {
        mount_tmpfs(&p);
        fs::write(p.join("first"), b"").unwrap();
        let mounts = mountinfo::read(None).unwrap();
        let t = target::resolve(&p, true, &mounts).unwrap();
        rustix::mount::mount_move(&p, &q).unwrap();
        mount_tmpfs(&p);
        let options = umount_wait::Options {
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let result = umount_wait::unmount(&t, path, &options, &|_| {});
        let still = |dir: &Path| is_mounted(dir);
        let (at_p, at_q) = (still(&p), still(&q));
        let _ = rustix::mount::unmount(&p, UnmountFlags::empty());
        let _ = rustix::mount::unmount(&q, UnmountFlags::empty());
        let error = match result {
            Ok(report) => panic!(
                "{}: acted on the mount at the path: {:?}",
                path.name(),
                report.outcome
            ),
            Err(e) => e,
        };
        assert_eq!(error.kind, ErrorKind::Moved, "{}: {error}", path.name());
        assert_eq!(error.state, State::Untouched, "{error}");
        assert!(
            at_p && at_q,
            "{}: a mount went (p {at_p}, q {at_q})",
            path.name()
        );
    }
}

/// A mount whose filesystem stays mounted elsewhere in this namespace can
/// never see it shut down: unmounted without a wait, said on stderr,
/// outcome "unmounted", exit 0, on either path. A bind mount of a tmpfs
/// directory while the tmpfs stays; a bind of a file on the root's
/// filesystem. `--timeout` only bounds the old behaviour (exit 3 after it).
fn a_filesystem_that_stays_mounted_here_is_not_waited_for() {
    let s = Scratch::new("stays");
    let t = s.dir("t");
    mount_tmpfs(&t);
    fs::create_dir(t.join("d")).unwrap();
    let b = s.dir("b");
    rustix::mount::mount_bind(t.join("d"), &b).unwrap();
    let run = umw([
        OsStr::new("--timeout"),
        OsStr::new("5s"),
        OsStr::new("--json"),
        b.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "bind of a directory of a tmpfs that stays");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("unmounted"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains(&format!("its filesystem stays mounted at {}", t.display())),
        "{}",
        run.stderr
    );
    assert!(!is_mounted(&b) && is_mounted(&t));

    // A file of the root's filesystem (/etc/hostname, read only here),
    // bound on a scratch file.
    let root_dev = mountinfo::read(None)
        .unwrap()
        .into_iter()
        .find(|m| m.mount_point == Path::new("/"))
        .map(|m| m.dev)
        .unwrap();
    let file = Path::new("/etc/hostname");
    if umount_wait::sys::stat_dev(file).ok().map(|(d, _)| d) != Some(root_dev) {
        eprintln!("    /etc/hostname is not on /'s filesystem: bind of a file not checked");
        return;
    }
    let f = s.path("f");
    fs::write(&f, b"").unwrap();
    rustix::mount::mount_bind(file, &f).unwrap();
    let run = umw([
        OsStr::new("--timeout"),
        OsStr::new("5s"),
        OsStr::new("--json"),
        f.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "bind of a file on /");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("unmounted"),
        "{}",
        run.stdout
    );
    assert!(!is_mounted(&f));
}

/// A wait that lasts says what holds the filesystem once, even with no
/// terminal and no -v, so that a script's log shows why: one waiting line,
/// the holder named. The line is the readiness signal here; SIGINT then
/// ends the wait.
fn a_lasting_wait_names_its_holders_once_without_a_terminal() {
    let s = Scratch::new("log-holders");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let mut holder = namespace_holder(&m, "f", 0);
    let mut cmd = Background::spawn(
        stop_signals_default(Command::new(BIN).args(["--timeout", "60s"]).arg(&m)),
        Watch::Stderr,
    );
    let named = format!("pid {})", holder.id());
    let said = cmd.wait_for(": waiting ") && cmd.wait_for(&named);
    // The status seconds that follow must not repeat it. Letting some pass
    // can only miss a repetition on a slow machine, never invent one.
    sleep(Duration::from_millis(2500));
    cmd.signal(rustix::process::Signal::INT);
    let run = cmd.finish();
    holder.stop();
    assert!(said, "no waiting line naming the holder: {}", run.stderr);
    assert_code(&run, DIED_BY_SIGINT, "SIGINT after the waiting line");
    assert_eq!(
        run.stderr.matches(": waiting ").count(),
        1,
        "{}",
        run.stderr
    );
}

/// A bind mount of a directory deleted since: its final `dput()` ends the
/// watch on its root with `IN_IGNORED` but no `IN_UNMOUNT`. With the
/// filesystem still mounted here, the bind is unmounted and the command
/// says where the filesystem stays (exit 0, outcome "unmounted"); as its
/// last mount in view, on ext4 it is shut down (exit 0, "shut_down",
/// confirmed by its device claim), on tmpfs not confirmed (exit 3: nothing
/// tells its end from a holder out of view). Before, both were an error
/// ("ended without IN_UNMOUNT", exit 3).
fn bind_of_a_deleted_directory_is_no_error() {
    let s = Scratch::new("deleted-root");
    let t = s.dir("t");
    let b = s.dir("b");
    let bind_deleted = || {
        mount_tmpfs(&t);
        fs::create_dir(t.join("d")).unwrap();
        rustix::mount::mount_bind(t.join("d"), &b).unwrap();
        fs::remove_dir(t.join("d")).unwrap();
    };

    // The filesystem stays mounted at t. --mode fallback: the watch is
    // the point here, whatever the kernel offers.
    bind_deleted();
    let run = umw([
        OsStr::new("--mode"),
        OsStr::new("fallback"),
        OsStr::new("--json"),
        b.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "bind of a deleted directory, fs mounted");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("unmounted"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains(&format!("its filesystem stays mounted at {}", t.display())),
        "{}",
        run.stderr
    );
    assert!(!is_mounted(&b) && is_mounted(&t));

    // The bind is the filesystem's last mount in view. On tmpfs no event
    // and no block device can tell its shutdown from a holder out of
    // view (a_hidden_holder_of_a_deleted_root_is_no_shutdown): not
    // confirmed, no error.
    rustix::mount::unmount(&t, UnmountFlags::empty()).unwrap();
    bind_deleted();
    rustix::mount::unmount(&t, UnmountFlags::empty()).unwrap();
    let run = umw([
        OsStr::new("--mode"),
        OsStr::new("fallback"),
        OsStr::new("--json"),
        b.as_os_str(),
    ]);
    assert_code(
        &run,
        EXIT_UNCONFIRMED,
        "bind of a deleted directory, its last mount",
    );
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("detached_unconfirmed"),
        "{}",
        run.stdout
    );
    assert!(!is_mounted(&b));

    // The same on ext4: its block device claim, released, confirms it.
    let dev = LoopExt4::new(&s, 16);
    dev.mount(&t);
    fs::create_dir(t.join("d")).unwrap();
    rustix::mount::mount_bind(t.join("d"), &b).unwrap();
    fs::remove_dir(t.join("d")).unwrap();
    rustix::mount::unmount(&t, UnmountFlags::empty()).unwrap();
    let run = umw([
        OsStr::new("--mode"),
        OsStr::new("fallback"),
        OsStr::new("--json"),
        b.as_os_str(),
    ]);
    assert_code(
        &run,
        EXIT_OK,
        "bind of a deleted ext4 directory, its last mount",
    );
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("shut_down"),
        "{}",
        run.stdout
    );
    assert!(!is_mounted(&b) && !excl_busy(&dev.device));

    // Still mounted in another namespace only (made before the bind, so
    // that its copy does not hold the deleted directory): nothing is left
    // to report its end, so unconfirmed (exit 3), the holder named.
    mount_tmpfs(&t);
    let mut holder = namespace_holder(&t, "f", 0);
    fs::create_dir(t.join("d")).unwrap();
    rustix::mount::mount_bind(t.join("d"), &b).unwrap();
    fs::remove_dir(t.join("d")).unwrap();
    rustix::mount::unmount(&t, UnmountFlags::empty()).unwrap();
    let run = umw([
        OsStr::new("--mode"),
        OsStr::new("fallback"),
        OsStr::new("--json"),
        b.as_os_str(),
    ]);
    holder.stop();
    assert_code(
        &run,
        EXIT_UNCONFIRMED,
        "bind of a deleted directory, held elsewhere",
    );
    assert!(
        run.stdout.contains("the mount's root was deleted"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("\"pid\":{}", holder.id())),
        "{}",
        run.stdout
    );
}

/// The caller's working directory on the target keeps its superblock alive:
/// a lazy unmount would detach it and wait for ever. Refused before
/// anything changes, as the kernel path refuses it (EDEADLK), with words
/// that say why (not umount(8)'s "busy": nothing else holds it): exit 32,
/// untouched. `--timeout` only bounds the old behaviour (exit 3 after it).
fn working_directory_on_the_target_is_refused_untouched() {
    let s = Scratch::new("cwd");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let out = Command::new(BIN)
        .args(["-l", "--timeout", "5s", "--json"])
        .arg(&m)
        .current_dir(&m)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_FAILURE), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "this process's root or working directory is on this filesystem: \
             it could not shut down while we wait (untouched)"
        ),
        "{stderr}"
    );
    assert_eq!(field(&stdout, "outcome"), Some("untouched"), "{stdout}");
    assert!(is_mounted(&m));
}

/// `umount-wait /` where the root is a tmpfs (a child chrooted into one,
/// with /proc mounted inside, calling the library): umount(2) would only
/// remount it read-only and return 0, and the wait would never end. The
/// fallback refuses it as the kernel path does (EDEADLK), untouched, and
/// the filesystem still writable.
fn the_callers_root_is_refused_untouched() {
    use umount_wait::{target, ErrorKind, State, WaitPath};
    let s = Scratch::new("root");
    let m = s.dir("m");
    mount_tmpfs(&m);
    fs::create_dir(m.join("proc")).unwrap();
    rustix::mount::mount("proc", m.join("proc"), "proc", MountFlags::empty(), None).unwrap();
    let path = if kernel_has_umount_wait() {
        WaitPath::Kernel
    } else {
        WaitPath::Fallback
    };
    // SAFETY: this process is single-threaded (see main); the child only
    // runs this test's code and exits.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let verdict = catch_unwind(|| {
                rustix::process::chroot(&m).unwrap();
                rustix::process::chdir("/").unwrap();
                let mounts = mountinfo::read(None).unwrap();
                let t = target::resolve(Path::new("/"), true, &mounts).unwrap();
                let options = umount_wait::Options {
                    timeout: Some(Duration::from_secs(5)),
                    ..Default::default()
                };
                let result = umount_wait::unmount(&t, path, &options, &|_| {});
                let error = match result {
                    Ok(report) => panic!("not refused: {:?}", report.outcome),
                    Err(e) => e,
                };
                assert_eq!(error.kind, ErrorKind::PinnedByCaller, "{error}");
                assert_eq!(error.errno, Some(rustix::io::Errno::DEADLK), "{error}");
                assert_eq!(error.state, State::Untouched, "{error}");
                fs::write("/written", b"x").expect("the root was made read-only");
            });
            // SAFETY: ends the child without running the parent's code.
            unsafe { nix::libc::_exit(i32::from(verdict.is_err())) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(
                status,
                nix::sys::wait::WaitStatus::Exited(child, 0),
                "the chrooted child's check failed (its message is above)"
            );
        }
    }
    assert!(fs::write(m.join("after"), b"x").is_ok(), "left read-only");
    assert!(is_mounted(&m));
}

fn recursive_unmounts_children_first_as_umount8() {
    let s = Scratch::new("recursive");
    let a = s.dir("a");
    mount_tmpfs(&a);
    let b = a.join("b");
    fs::create_dir(&b).unwrap();
    mount_tmpfs(&b);
    let c = b.join("c");
    fs::create_dir(&c).unwrap();
    mount_tmpfs(&c);
    let d = a.join("d");
    fs::create_dir(&d).unwrap();
    mount_tmpfs(&d);
    let run = umw([OsStr::new("-R"), OsStr::new("--json"), a.as_os_str()]);
    assert_code(&run, EXIT_OK, "-R");
    let order: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| field(l, "target"))
        .collect();
    // umount(8) -R's order: each child in mount order, its own below it first.
    let expected: Vec<String> = [&c, &b, &d, &a]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(order, expected);
    assert!(!is_mounted(&a) && !is_mounted(&c));
}

/// A tree whose filesystem is also mounted below it (a bind of one of its
/// directories inside it) is unmounted as a whole and waited for once:
///
/// - `-R`: the bind goes first without a wait (the filesystem stays
///   mounted at the top), then the top, waited for (exit 0, `shut_down`);
/// - `-l` on the top alone: `MNT_DETACH` takes the bind below along, so
///   the filesystem stays mounted nowhere and the wait must last until
///   the last user lets go. Before, the bind below was taken for a mount
///   that stays: "unmounted; its filesystem stays mounted at .../b",
///   exit 0 at once, the filesystem still alive.
fn a_tree_with_a_bind_of_its_own_filesystem_is_waited_for_once() {
    let s = Scratch::new("tree-bind");
    let t = s.dir("t");
    let tree = || {
        mount_tmpfs(&t);
        fs::create_dir(t.join("x")).unwrap();
        fs::create_dir(t.join("b")).unwrap();
        rustix::mount::mount_bind(t.join("x"), t.join("b")).unwrap();
        fs::write(t.join("f"), b"data").unwrap();
    };

    tree();
    let run = umw([
        OsStr::new("-R"),
        OsStr::new("--timeout"),
        OsStr::new("30s"),
        OsStr::new("--json"),
        t.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "-R over a tree with a bind of its own fs");
    let outcomes: Vec<(&str, &str)> = run
        .stdout
        .lines()
        .map(|l| (field(l, "target").unwrap(), field(l, "outcome").unwrap()))
        .collect();
    let b = t.join("b");
    assert_eq!(
        outcomes,
        [
            (b.to_str().unwrap(), "unmounted"),
            (t.to_str().unwrap(), "shut_down")
        ],
        "{}",
        run.stdout
    );
    assert!(!is_mounted(&t) && !is_mounted(&b));

    // -R with a target inside another target's tree: it would be
    // unmounted with that tree, then not found. Refused as given twice,
    // before anything is unmounted.
    tree();
    let run = umw([OsStr::new("-R"), t.as_os_str(), b.as_os_str()]);
    assert_code(&run, EXIT_USAGE, "-R with a target inside the other's tree");
    assert!(
        run.stderr.contains("inside the tree of") && run.stderr.contains("nothing was unmounted"),
        "{}",
        run.stderr
    );
    assert!(is_mounted(&t) && is_mounted(&b));
    let run = umw([
        OsStr::new("--fake"),
        OsStr::new("-R"),
        t.as_os_str(),
        b.as_os_str(),
    ]);
    assert_code(
        &run,
        EXIT_USAGE,
        "--fake -R with a target inside the other's tree",
    );
    assert!(run.stderr.contains("inside the tree of"), "{}", run.stderr);
    rustix::mount::unmount(&b, UnmountFlags::empty()).unwrap();
    rustix::mount::unmount(&t, UnmountFlags::empty()).unwrap();

    tree();
    let (run, mut holder) = lazy_while_held(&t, &t.join("f"));
    assert_code(&run, EXIT_OK, "-l on a tree with a bind of its own fs");
    holder.assert_released();
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("shut_down"),
        "{}",
        run.stdout
    );
    assert!(!is_mounted(&t) && !is_mounted(&b));
}

fn bad_inputs_leave_everything_mounted() {
    let s = Scratch::new("bad");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let plain_dir = s.dir("plain");
    let m_str = m.to_str().unwrap().to_string();
    // m again, relative to the working directory: the same mount twice.
    let up = "../".repeat(std::env::current_dir().unwrap().components().count() - 1);
    let relative_m = format!("{up}{}", m_str.trim_start_matches('/'));
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![format!("{}/nonexistent", s.dir.display())],
            EXIT_FAILURE,
            "no such file or directory (untouched)",
        ),
        (
            vec![plain_dir.display().to_string()],
            EXIT_FAILURE,
            "not mounted (untouched)",
        ),
        // Relative targets are taken from the working directory, as by
        // umount(8).
        (
            vec!["relative/path".into()],
            EXIT_FAILURE,
            "no such file or directory (untouched)",
        ),
        (
            vec![m_str.clone(), m_str.clone()],
            EXIT_USAGE,
            "given twice",
        ),
        (
            vec![m_str.clone(), format!("{m_str}/")],
            EXIT_USAGE,
            "given twice",
        ),
        (
            vec![m_str.clone(), relative_m],
            EXIT_USAGE,
            "nothing was unmounted",
        ),
        (vec!["--bogus".into(), m_str.clone()], EXIT_USAGE, "--bogus"),
        (
            vec!["--timeout".into(), "5 parsecs".into(), m_str.clone()],
            EXIT_USAGE,
            "unknown unit",
        ),
        (
            vec!["--timeout".into(), "-1s".into(), m_str.clone()],
            EXIT_USAGE,
            "unexpected argument '-1'",
        ),
        (
            vec!["--timeout=-1s".into(), m_str.clone()],
            EXIT_USAGE,
            "'-1s' is not a duration",
        ),
        (vec!["".into()], EXIT_USAGE, "a value is required"),
        (
            vec![m_str.clone(), "".into()],
            EXIT_USAGE,
            "a value is required",
        ),
    ];
    for (args, code, message) in cases {
        assert!(
            !message.is_empty(),
            "{args:?}: an empty message matches anything"
        );
        let run = umw(&args);
        assert_code(&run, code, &format!("{args:?}"));
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(is_mounted(&m), "{args:?} unmounted {m_str}");
    }
    // A target that is gone by the time of the second of two targets: the
    // first still goes, the second fails, exit 64.
    let run = umw([m.as_os_str(), plain_dir.as_os_str()]);
    assert_code(&run, 64, "one good and one bad target");
    assert!(!is_mounted(&m));
}

/// A --timeout too long for the monotonic clock (3e15 hours: more seconds
/// than an i64 holds) is a deadline that never comes, not a panic: for a
/// target, for a target whose wait lasts (released once the command says
/// it waits), for -d's loop device, and for --all.
fn a_timeout_past_the_clock_is_no_overflow() {
    let far = "3000000000000000h";
    let s = Scratch::new("far-timeout");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let run = umw([OsStr::new("--timeout"), OsStr::new(far), m.as_os_str()]);
    assert_code(&run, EXIT_OK, "--timeout 3000000000000000h");
    assert!(!is_mounted(&m));

    mount_tmpfs(&m);
    fs::write(m.join("f"), b"data").unwrap();
    let mut holder = hold_open(&m.join("f"));
    let mut cmd = Background::spawn(
        Command::new(BIN)
            .args(["-l", "-v", "--timeout", far])
            .arg(&m),
        Watch::Stderr,
    );
    let waiting = cmd.wait_for(": waiting ");
    holder.release();
    let run = cmd.finish();
    assert!(waiting, "no waiting line: {}", run.stderr);
    assert_code(&run, EXIT_OK, "-l --timeout 3000000000000000h");
    holder.assert_released();

    let lo = LoopExt4::new(&s, 16);
    lo.mount(&m);
    let run = umw([
        OsStr::new("-d"),
        OsStr::new("--timeout"),
        OsStr::new(far),
        m.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "-d --timeout 3000000000000000h");
    assert!(
        !loop_bound(&lo.device),
        "{} still bound",
        lo.device.display()
    );

    let sub = s.dir("all/a");
    mount_tmpfs(&sub);
    let run = umw_all(&s.path("all"), &["--timeout", far]);
    assert_code(&run, EXIT_OK, "--all --timeout 3000000000000000h");
    assert!(!is_mounted(&sub));
}

fn odd_names_and_symlinks() {
    let s = Scratch::new("odd");
    let names: Vec<&[u8]> = vec![
        b"with space",
        b"new\nline",
        b"not\xffutf8",
        b"back\\slash",
        b"tab\there",
    ];
    for name in names {
        let m = s.dir(OsStr::from_bytes(name));
        mount_tmpfs(&m);
        let run = umw([OsStr::new("--json"), m.as_os_str()]);
        assert_code(&run, EXIT_OK, &format!("{name:?}"));
        assert!(!is_mounted(&m), "{name:?} still mounted");
        assert!(
            run.stdout.lines().count() == 1,
            "one JSON line: {}",
            run.stdout
        );
    }

    // Trailing slash: the same mount.
    let m = s.dir("trailing");
    mount_tmpfs(&m);
    let run = umw([format!("{}/", m.display())]);
    assert_code(&run, EXIT_OK, "trailing slash");
    assert!(!is_mounted(&m));

    // A symbolic link to a mount point: followed by default...
    let m = s.dir("real");
    mount_tmpfs(&m);
    let link = s.path("link");
    symlink(&m, &link).unwrap();
    let run = umw(["--no-follow".as_ref(), link.as_os_str()]);
    assert_code(&run, EXIT_FAILURE, "--no-follow on a symlink");
    assert!(
        run.stderr.contains("symbolic link") && run.stderr.contains("untouched"),
        "{}",
        run.stderr
    );
    assert!(is_mounted(&m));
    let run = umw(["--no-follow".to_string(), format!("{}/", link.display())]);
    assert_code(
        &run,
        EXIT_FAILURE,
        "--no-follow on a symlink with a trailing slash",
    );
    assert!(is_mounted(&m));
    // ...the link and the real path name the same mount...
    let run = umw([link.as_os_str(), m.as_os_str()]);
    assert_code(&run, EXIT_USAGE, "link and target together");
    assert!(is_mounted(&m));
    // ...and the link alone unmounts what it points to.
    let run = umw([link.as_os_str()]);
    assert_code(&run, EXIT_OK, "symlink followed");
    assert!(!is_mounted(&m));
}

/// A copy of the command in `s` that nobody may run: the build's own
/// directory may be one that other users cannot enter (a target directory
/// kept in root's home, as ci/test does).
fn copy_nobody_can_run(s: &Scratch) -> PathBuf {
    let copy = s.path("umount-wait");
    fs::copy(BIN, &copy).unwrap();
    fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    copy
}

/// umount(8)'s words for a caller who may not unmount: "must be
/// superuser to unmount", on a mount and on `/` alike (before: "permission
/// denied", and for `/` "target is busy", the root's own refusal coming
/// before the privilege check that umount(2) makes first).
fn permission_denied_for_unprivileged_user() {
    let s = Scratch::new("perm");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let bin = copy_nobody_can_run(&s);
    for target in [m.as_path(), Path::new("/")] {
        let out = Command::new(&bin)
            .args(["--mode", "fallback"])
            .arg(target)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(EXIT_USAGE), "{stderr}");
        assert!(
            stderr.contains("must be superuser to unmount (untouched)"),
            "{}: {stderr}",
            target.display()
        );
    }
    assert!(is_mounted(&m));
}

/// How the S1 scenario unmounts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum S1Mode {
    /// umount(2) from this process: the shortest gap after the kill.
    PlainSyscall,
    /// The library's fallback path from this process: the same gap.
    Library,
    /// umount(8) as a child process.
    PlainCommand,
    /// The umount-wait command as a child process: the same gap as umount(8).
    Command,
}

impl S1Mode {
    fn name(self) -> &'static str {
        match self {
            S1Mode::PlainSyscall => "plain-umount2",
            S1Mode::Library => "umount-wait-library",
            S1Mode::PlainCommand => "plain-umount8",
            S1Mode::Command => "umount-wait",
        }
    }

    fn waits(self) -> bool {
        matches!(self, S1Mode::Library | S1Mode::Command)
    }

    /// The plain unmount with the same gap after the kill, whose count says
    /// whether this mode's zero means anything.
    fn baseline(self) -> S1Mode {
        match self {
            S1Mode::Library => S1Mode::PlainSyscall,
            S1Mode::Command => S1Mode::PlainCommand,
            plain => plain,
        }
    }
}

/// Unmounts `m` the way `mode` says; returns the time umount-wait spent
/// waiting after umount(2), if it is one of the waiting modes.
fn s1_unmount(mode: S1Mode, m: &Path) -> Option<f64> {
    match mode {
        S1Mode::PlainSyscall => {
            rustix::mount::unmount(m, UnmountFlags::empty()).unwrap();
            None
        }
        S1Mode::PlainCommand => {
            run_ok(Command::new("umount").arg(m));
            None
        }
        S1Mode::Library => {
            let mounts = mountinfo::read(None).unwrap();
            let target = umount_wait::target::resolve(m, true, &mounts).unwrap();
            let options = umount_wait::Options::default();
            let report =
                umount_wait::unmount(&target, umount_wait::WaitPath::Fallback, &options, &|_| {})
                    .unwrap_or_else(|e| panic!("S1 library: {e}"));
            assert_eq!(report.outcome, umount_wait::Outcome::ShutDown);
            Some(report.wait_time.as_secs_f64() * 1000.0)
        }
        S1Mode::Command => {
            let r = umw([
                OsStr::new("--mode"),
                OsStr::new("fallback"),
                OsStr::new("--json"),
                m.as_os_str(),
            ]);
            assert_code(&r, EXIT_OK, "S1 umount-wait");
            Some(field_ms(&r.stdout, "wait_ms"))
        }
    }
}

/// DESIGN.md S1: 8 holders alone in their own mount namespaces, each wrote
/// 4 MiB, killed right before unmounting. Counts how often the block device
/// is still claimed (`open(dev, O_EXCL)` = EBUSY) right after the unmount
/// returns: for umount(2) and umount(8) (the baseline that shows the bug) and
/// for umount-wait, as a library call and as a command, each with the same
/// gap between the kill and the unmount as its baseline.
///
/// Fails when umount-wait ever returns with the device claimed, and when
/// the in-process baseline (umount(2)) never showed the bug: then the
/// library's zero would prove nothing. umount(8)'s gap is longer and often
/// shows nothing (0 of 20 on the host is common): the command's zero is
/// claimed only when its baseline reproduced, and said to be no evidence
/// otherwise.
fn s1_dying_namespaces() {
    let runs: usize = std::env::var("UMW_S1_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let s = Scratch::new("s1");
    let dev = LoopExt4::new(&s, 128);
    let m = s.dir("m");
    let mut failures = Vec::new();
    let mut busy_counts: Vec<(S1Mode, usize)> = Vec::new();
    for mode in [
        S1Mode::PlainSyscall,
        S1Mode::Library,
        S1Mode::PlainCommand,
        S1Mode::Command,
    ] {
        let mut busy_after_return = 0;
        let mut waits_ms = Vec::new();
        for run in 0..runs {
            dev.mount(&m);
            let mut holders: Vec<Holder> = (0..8)
                .map(|i| namespace_holder(&m, &format!("h{i}"), 4))
                .collect();
            for h in &mut holders {
                h.kill();
            }
            let waited = s1_unmount(mode, &m);
            if excl_busy(&dev.device) {
                busy_after_return += 1;
            }
            waits_ms.extend(waited);
            drop(holders);
            // Let this run's filesystem die before mounting again.
            let deadline = Instant::now() + Duration::from_secs(10);
            while excl_busy(&dev.device) {
                assert!(
                    Instant::now() < deadline,
                    "device still busy 10 s after run {run}"
                );
                sleep(Duration::from_millis(10));
            }
        }
        eprintln!(
            "# UMW-RACE s1 {} runs={runs} busy_after_return={busy_after_return}",
            mode.name()
        );
        if !waits_ms.is_empty() {
            waits_ms.sort_by(f64::total_cmp);
            let pct = |p: f64| waits_ms[((waits_ms.len() as f64 - 1.0) * p).round() as usize];
            let waited = waits_ms.iter().filter(|&&w| w > 1.0).count();
            eprintln!(
                "    {} wait_ms: min {:.2} median {:.2} p90 {:.2} max {:.2}; waited > 1 ms in {waited} of {runs} runs",
                mode.name(),
                waits_ms[0],
                pct(0.5),
                pct(0.9),
                waits_ms[waits_ms.len() - 1]
            );
        }
        busy_counts.push((mode, busy_after_return));
        if mode.waits() && busy_after_return > 0 {
            failures.push(format!(
                "{}: device claimed after return in {busy_after_return} of {runs} runs",
                mode.name()
            ));
        }
    }
    let busy_in = |mode: S1Mode| {
        busy_counts
            .iter()
            .find(|(m, _)| *m == mode)
            .map_or(0, |(_, n)| *n)
    };
    for mode in [S1Mode::Library, S1Mode::Command] {
        let baseline = mode.baseline();
        if busy_in(baseline) > 0 {
            eprintln!(
                "    {}: {} of {runs} with the bug, {}: {} of {runs}",
                baseline.name(),
                busy_in(baseline),
                mode.name(),
                busy_in(mode)
            );
        } else if mode == S1Mode::Library {
            failures.push(format!(
                "the baseline {} never left the device claimed in {runs} runs: \
                 the race did not reproduce, so {}'s zero proves nothing \
                 (more runs: UMW_S1_RUNS)",
                baseline.name(),
                mode.name()
            ));
        } else {
            eprintln!(
                "    {} never left the device claimed in {runs} runs: {}'s zero here is no evidence",
                baseline.name(),
                mode.name()
            );
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

// ---------------------------------------------------------------- --all

/// `/sys/block/loopN/loop` exists while the device is bound.
fn loop_bound(device: &Path) -> bool {
    let name = device.file_name().unwrap().to_str().unwrap();
    Path::new(&format!("/sys/block/{name}/loop")).exists()
}

/// The mounts outside `dir`, to check that `--all --include dir` left them.
fn mounts_outside(dir: &Path) -> Vec<u64> {
    mountinfo::read(None)
        .unwrap()
        .iter()
        .filter(|m| !m.mount_point.starts_with(dir))
        .map(|m| m.id)
        .collect()
}

fn all_shuts_down_a_tree_and_detaches_loops() {
    let s = Scratch::new("all-tree");
    // data: ext4 on a loop device; data/x bound at bind; data/inner.img
    // loop-mounted (autoclear) at img; t: tmpfs with t/sub inside.
    let data_dev = LoopExt4::new(&s, 64);
    let data = s.dir("data");
    data_dev.mount(&data);
    fs::create_dir(data.join("x")).unwrap();
    let bind = s.dir("bind");
    rustix::mount::mount_bind(data.join("x"), &bind).unwrap();
    let inner_image = data.join("inner.img");
    fs::File::create(&inner_image)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    run_ok(
        Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&inner_image),
    );
    let img = s.dir("img");
    // mount(8) -o loop sets the loop device up with autoclear.
    run_ok(
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(&inner_image)
            .arg(&img),
    );
    let inner = mountinfo::read(None)
        .unwrap()
        .iter()
        .find(|m| m.mount_point == img)
        .map(|m| PathBuf::from(&m.source))
        .unwrap();
    // An "app" alone in its own mount namespace wrote 4 MiB to the data
    // disk and is killed right before the run: its copy of the mount dies
    // asynchronously. Its namespace is made before t, so that its copies
    // hold the disks only: a copy of t/sub, dying as late as the app,
    // would settle t/sub after the others (the lines come in the order
    // filesystems are settled), which is not what this test is about.
    let mut app = namespace_holder(&img, "app", 4);
    let t = s.dir("t");
    mount_tmpfs(&t);
    let sub = t.join("sub");
    fs::create_dir(&sub).unwrap();
    mount_tmpfs(&sub);
    let outside = mounts_outside(&s.dir);
    app.kill();
    let run = umw_all(&s.dir, &["--timeout", "30s"]);
    app.stop();
    let busy = [&data_dev.device, &inner].map(|d| excl_busy(d));
    assert_code(&run, EXIT_OK, "--all over a tree");
    assert_eq!(busy, [false, false], "a device still claimed after return");
    assert!(!loop_bound(&data_dev.device) && !loop_bound(&inner));
    let lines: Vec<&str> = run.stdout.lines().collect();
    let order: Vec<&str> = lines.iter().filter_map(|l| field(l, "target")).collect();
    let shown = |p: &Path| p.display().to_string();
    // Deepest first; among equals the newest first. The bind mount goes
    // before data, without a wait (its filesystem is still mounted at data).
    assert_eq!(
        order,
        [
            shown(&sub),
            shown(&t),
            shown(&img),
            shown(&bind),
            shown(&data)
        ],
        "{}",
        run.stdout
    );
    let outcome = |i: usize| field(lines[i], "outcome").unwrap();
    assert_eq!(
        (0..5).map(outcome).collect::<Vec<_>>(),
        [
            "shut_down",
            "shut_down",
            "shut_down",
            "unmounted",
            "shut_down"
        ]
    );
    assert!(
        lines[2].contains("\"outcome\":\"detached\",\"autoclear\":true"),
        "{}",
        lines[2]
    );
    assert!(
        lines[4].contains("\"outcome\":\"detached\",\"autoclear\":false"),
        "{}",
        lines[4]
    );
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with("{\"summary\":{\"filesystems\":5,\"shut_down\":4,\"unmounted\":1,")
            && summary.contains("\"loop_devices_detached\":2,")
            && summary.contains("\"exit\":0"),
        "{summary}"
    );
    assert!(mountinfo::read(None)
        .unwrap()
        .iter()
        .all(|m| !m.mount_point.starts_with(&s.dir)));
    assert_eq!(
        mounts_outside(&s.dir),
        outside,
        "mounts outside the tree changed"
    );
    eprintln!(
        "    --all over 5 mounts, 2 loop devices, an app killed right before: {:.1} ms, waited {} ms for {}",
        field_ms(summary, "elapsed_ms"),
        field_ms(lines[2], "wait_ms"),
        shown(&img)
    );
}

fn all_remounts_busy_read_only_and_names_holder() {
    let s = Scratch::new("all-busy");
    let a = s.dir("a");
    mount_tmpfs(&a);
    let b = s.dir("b");
    mount_tmpfs(&b);
    let mut holder = cwd_holder(&a);
    let run = umw_all(&s.dir, &["-f"]);
    let writable = fs::write(a.join("x"), b"x").is_ok();
    holder.stop();
    assert_code(&run, EXIT_SOME_FAILED, "--all with one busy mount");
    assert!(!writable, "the busy mount is still writable");
    assert!(is_mounted(&a) && !is_mounted(&b));
    let line = run
        .stdout
        .lines()
        .find(|l| field(l, "target") == a.to_str())
        .unwrap();
    assert_eq!(
        field(line, "outcome"),
        Some("remounted_read_only"),
        "{line}"
    );
    assert!(line.contains(&format!("\"pid\":{}", holder.id())), "{line}");
    // Pass 1 unmounts b; pass 2 makes no progress; the last pass (3)
    // remounts a read-only.
    assert_eq!(field(line, "pass"), Some("3"), "{line}");
    assert!(run.stderr.contains("remounted read-only"), "{}", run.stderr);
}

/// Each line `--all` prints on stderr (the passes with -v, a filesystem
/// left busy and its holder, the summary) is one write(2): the
/// systemd-shutdown hook sends stderr to /dev/kmsg, where each write is a
/// kernel log record. A datagram socket keeps the writes apart as
/// /dev/kmsg does. Before, "umount-wait: ", the path and the rest of a
/// line were written apart.
fn all_writes_each_stderr_line_whole() {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;
    let s = Scratch::new("all-records");
    let a = s.dir("a");
    mount_tmpfs(&a);
    let b = s.dir("b");
    mount_tmpfs(&b);
    let mut holder = cwd_holder(&a);
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    let status = Command::new(BIN)
        .args(["--all", "-v", "--timeout", "2s", "--include"])
        .arg(&s.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::from(OwnedFd::from(theirs)))
        .status()
        .unwrap();
    holder.stop();
    assert_eq!(
        status.code(),
        Some(EXIT_SOME_FAILED),
        "--all with one busy mount"
    );
    ours.set_nonblocking(true).unwrap();
    let mut writes = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n) = ours.recv(&mut buf) {
        writes.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        writes.iter().any(|w| w.contains("filesystem(s)")),
        "no summary among {writes:?}"
    );
    for w in &writes {
        assert!(
            w.ends_with('\n') && w.matches('\n').count() == 1,
            "a write that is not one whole line: {w:?} (all: {writes:?})"
        );
    }
}

/// A filesystem `--all` leaves read-write (busy, its read-only remount
/// refused by a file open for writing, and tmpfs has no FS_IOC_SHUTDOWN)
/// names what held it, in the report and in `--json`, as a busy one does.
/// Before, the holders the scan found were dropped with the refusal.
fn all_names_the_holder_of_what_it_leaves_read_write() {
    let s = Scratch::new("all-left-rw");
    let a = s.dir("held");
    mount_tmpfs(&a);
    let b = s.dir("ok");
    mount_tmpfs(&b);
    let mut writer = hold_open_for_writing(&a.join("log"));
    let run = umw_all(&s.dir, &["--timeout", "5s"]);
    let pid = writer.pid();
    writer.release();
    assert_code(&run, EXIT_SOME_FAILED, "--all, one left read-write");
    let line = line_of(&run, &a);
    assert_eq!(field(line, "outcome"), Some("untouched"), "{line}");
    assert!(line.contains(&format!("\"pid\":{pid}")), "{line}");
    assert!(
        run.stderr.contains(&format!("held by: pid {pid} (sh)")),
        "{}",
        run.stderr
    );
}

/// `--last-shutdown=DIR` reads pstore's files as `--all` writes them
/// (pmsg-*, a record among another writer's bytes): the latest verdict
/// in text and JSON; nothing there is exit 4 and says "no verdict
/// recorded"; a damaged record alone is exit 5.
fn last_shutdown_reads_a_pstore_directory() {
    use umount_wait::verdict::{Filesystem, Holder, Left, Name, Verdict, VERSION};
    let s = Scratch::new("last-shutdown");
    let dir = s.dir("pstore");
    let arg = |d: &Path| format!("--last-shutdown={}", d.display());
    let run = umw([arg(&dir)]);
    assert_code(&run, 4, "--last-shutdown over an empty directory");
    assert!(run.stderr.contains("no verdict recorded"), "{}", run.stderr);
    let verdict = |time, exit| Verdict {
        version: VERSION,
        boot_id: Some("b00t".into()),
        time: Some(time),
        kernel: Some("7.3.0".into()),
        exit,
        stopped: None,
        passes: 3,
        elapsed_ms: 80.5,
        filesystems: vec![Filesystem {
            mount_point: Name::Text("/mnt/held".into()),
            source: Some(Name::Text("tmpfs".into())),
            fstype: Some("tmpfs".into()),
            outcome: "untouched".into(),
            left: Left::ReadWrite,
            reason: Some(
                "remounting read-only: Device or resource busy (os error 16) (untouched)".into(),
            ),
            held_by: vec![Holder {
                pid: Some(77),
                command: Some("sleep".into()),
                what: "pid 77 (sleep): fd 3 /mnt/held/f".into(),
            }],
            more_holders: 0,
        }],
        omitted_shut_down: 1,
        omitted_other: 0,
    };
    let mut damaged = verdict(1, 32).encode();
    let n = damaged.len();
    damaged[n - 5] ^= 0x20;
    fs::write(dir.join("pmsg-ramoops-0"), &damaged).unwrap();
    let run = umw([arg(&dir)]);
    assert_code(&run, 5, "--last-shutdown, a damaged record alone");
    assert!(
        run.stderr.contains("checksum does not match"),
        "{}",
        run.stderr
    );
    let mut bytes = b"\x00\x17logd binary record\xff".to_vec();
    bytes.extend(verdict(100, 64).encode());
    bytes.extend(b"\x01another writer");
    bytes.extend(&damaged);
    bytes.extend(verdict(50, 0).encode());
    fs::write(dir.join("pmsg-ramoops-0"), &bytes).unwrap();
    // Not a pmsg file: not read.
    fs::write(dir.join("dmesg-ramoops-0"), verdict(200, 2).encode()).unwrap();
    let run = umw([arg(&dir)]);
    assert_code(&run, 0, "--last-shutdown");
    assert!(
        run.stdout
            .contains("exit 64, 2 filesystem(s), 1 shut down, 1 left read-write"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("/mnt/held (tmpfs on tmpfs): left read-write: held by pid 77 (sleep)"),
        "{}",
        run.stdout
    );
    let run = umw([arg(&dir), "--json".into()]);
    assert_code(&run, 0, "--last-shutdown --json");
    assert_eq!(field(&run.stdout, "exit"), Some("64"), "{}", run.stdout);
    assert!(
        run.stdout.contains("\"left\":\"read_write\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"pid\":77,\"command\":\"sleep\""),
        "{}",
        run.stdout
    );
    // A file named is read whatever its name.
    let run = umw([arg(&dir.join("dmesg-ramoops-0"))]);
    assert_code(&run, 0, "--last-shutdown=FILE");
    assert!(run.stdout.contains("exit 2"), "{}", run.stdout);
}

/// Whether a file can be written in `dir` as the process `pid` sees it
/// (through `/proc/PID/root`): its copy of a mount in its own namespace.
fn writable_in(pid: u32, dir: &Path) -> bool {
    let inside = dir.strip_prefix("/").unwrap();
    let file = Path::new("/proc")
        .join(pid.to_string())
        .join("root")
        .join(inside)
        .join("umw-probe");
    fs::write(file, b"x").is_ok()
}

/// The line of `--all --json` about `target`.
fn line_of<'a>(run: &'a Run, target: &Path) -> &'a str {
    run.stdout
        .lines()
        .find(|l| field(l, "target") == target.to_str())
        .unwrap_or_else(|| panic!("no line for {target:?}: {}", run.stdout))
}

/// A filesystem that never dies (a copy held in another mount namespace)
/// comes first in the order of `--all` (it is the newest): the one after
/// it must not be left read-write. At the reserve before the deadline the
/// survivor is made read-only where it lives and the run goes on; it ends
/// within the deadline. Before, the survivor's wait took the whole
/// deadline, `older` was left untouched and writable, and the run ended
/// with it.
fn all_a_survivor_first_in_the_order_leaves_nothing_read_write() {
    let s = Scratch::new("all-survivor-first");
    let older = s.dir("older");
    mount_tmpfs(&older);
    let held = s.dir("held");
    mount_tmpfs(&held);
    // Only held is kept alive: the holder's copy of older goes.
    let mut copy = namespace_shell(&format!("umount '{}' && exec sleep 600", older.display()));
    let run = umw_all(&s.dir, &["--timeout", "2s"]);
    let held_writable = writable_in(copy.id(), &held);
    let older_writable = is_mounted(&older) && fs::write(older.join("x"), b"x").is_ok();
    copy.stop();
    assert_code(&run, EXIT_SOME_FAILED, "--all with a survivor first");
    let line = line_of(&run, &held);
    assert_eq!(field(line, "outcome"), Some("detached_unconfirmed"));
    assert!(
        line.contains("\"read_only_through\":{\"kind\":\"mount\""),
        "{line}"
    );
    assert!(!held_writable, "the survivor is writable in its namespace");
    assert!(!older_writable, "older left read-write: {}", run.stdout);
    assert_eq!(
        field(line_of(&run, &older), "outcome"),
        Some("shut_down"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"stopped\":\"deadline\""),
        "{}",
        run.stdout
    );
    // The deadline plus a second, a generous bound.
    assert!(run.elapsed < Duration::from_secs(3), "{:?}", run.elapsed);
}

/// Two filesystems that never die (held in another mount namespace by a
/// process that never lets go) among three healthy ones, `--timeout 2s`:
/// the three are shut down, the two are read-only where they live, and
/// the run ends within the deadline plus a second.
fn all_two_survivors_three_healthy_within_the_deadline() {
    let s = Scratch::new("all-two-survivors");
    let dev = LoopExt4::new(&s, 64);
    let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|n| s.dir(n));
    dev.mount(&a);
    fs::write(a.join("f"), vec![7u8; 1 << 20]).unwrap();
    for m in [&b, &c, &d, &e] {
        mount_tmpfs(m);
    }
    // b and d stay alive in the holder's namespace; its copies of a, c
    // and e go.
    let mut holder = namespace_shell(&format!(
        "umount '{}' && umount '{}' && umount '{}' && exec sleep 600",
        a.display(),
        c.display(),
        e.display()
    ));
    let run = umw_all(&s.dir, &["--timeout", "2s"]);
    let busy = excl_busy(&dev.device);
    let writable = [&b, &d].map(|m| writable_in(holder.id(), m));
    holder.stop();
    assert_code(&run, EXIT_SOME_FAILED, "--all with two survivors");
    for m in [&a, &c, &e] {
        let line = line_of(&run, m);
        assert_eq!(field(line, "outcome"), Some("shut_down"), "{}", run.stdout);
        // Settled in the first pass, beside the survivors' waits, not
        // after them in the reserve's pass.
        assert_eq!(field(line, "pass"), Some("1"), "{line}");
        assert!(!is_mounted(m));
    }
    assert!(!busy, "the ext4's device still claimed after return");
    for m in [&b, &d] {
        let line = line_of(&run, m);
        assert_eq!(field(line, "outcome"), Some("detached_unconfirmed"));
        assert!(
            line.contains("\"read_only_through\":{\"kind\":\"mount\""),
            "{line}"
        );
    }
    assert_eq!(writable, [false, false], "a survivor is still writable");
    assert!(run.elapsed < Duration::from_secs(3), "{:?}", run.elapsed);
    eprintln!(
        "    --all, two survivors and three healthy, --timeout 2s: {:.0} ms",
        run.elapsed.as_secs_f64() * 1000.0
    );
}

/// A mount that is busy (here: a mount below it that `--all` leaves
/// alone) is tried again as soon as the mount table changes, while the
/// wait for a survivor goes on: it is shut down before the survivor is
/// settled at the reserve. Before, the survivor's wait came first and the
/// busy mount waited for the reserve's pass (where it was made read-only
/// without a retry).
fn all_a_busy_mount_is_retried_when_the_mount_table_changes() {
    let s = Scratch::new("all-retry");
    let p = s.dir("p");
    mount_tmpfs(&p);
    let c = p.join("c");
    fs::create_dir(&c).unwrap();
    mount_tmpfs(&c);
    let held = s.dir("held");
    mount_tmpfs(&held);
    let mut holder = namespace_shell(&format!(
        "umount '{}' && umount '{}' && exec sleep 600",
        c.display(),
        p.display()
    ));
    let mut run = Background::spawn(
        Command::new(BIN)
            .args(["--all", "-v", "--json", "--timeout", "4s", "--include"])
            .arg(&s.dir)
            .arg("--exclude")
            .arg(&c),
        Watch::Stderr,
    );
    assert!(
        run.wait_for("trying again later"),
        "no retry: {}",
        run.said()
    );
    rustix::mount::unmount(&c, UnmountFlags::empty()).unwrap();
    let run = run.finish();
    let held_writable = writable_in(holder.id(), &held);
    holder.stop();
    assert_code(
        &run,
        EXIT_SOME_FAILED,
        "--all with a busy mount and a survivor",
    );
    let targets: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| field(l, "target"))
        .collect();
    assert_eq!(
        targets,
        [p.to_str().unwrap(), held.to_str().unwrap()],
        "{}",
        run.stdout
    );
    let line = line_of(&run, &p);
    assert_eq!(field(line, "outcome"), Some("shut_down"), "{line}");
    // A later pass than the first (which pass depends on when the table
    // changed: the run's own unmounts change it too).
    assert_ne!(field(line, "pass"), Some("1"), "{line}");
    assert!(!held_writable);
}

/// A swap file on a filesystem being shut down, swap on a loop device
/// backed by a file on it, and a loop device backed by a file on it that
/// nothing mounts: `--all` turns the swap off and detaches the loop
/// devices, each confirmed and reported with the filesystem
/// (`released`), and the filesystem then shuts down; `--fake` names them
/// in its plan. Before, they kept it busy: remounted read-only, exit 32.
fn all_turns_swap_off_and_detaches_unmounted_loop_devices() {
    let s = Scratch::new("all-release");
    let dev = LoopExt4::new(&s, 96);
    let data = s.dir("data");
    dev.mount(&data);
    let make = |name: &str, mib: u32| {
        let file = data.join(name);
        run_ok(
            Command::new("dd")
                .arg("if=/dev/zero")
                .arg(format!("of={}", file.display()))
                .arg("bs=1M")
                .arg(format!("count={mib}"))
                .arg("status=none"),
        );
        fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        file
    };
    let attach = |file: &Path| {
        let out = run_ok(Command::new("losetup").args(["--find", "--show"]).arg(file));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    };
    let swapfile = make("swapfile", 16);
    run_ok(Command::new("mkswap").arg("-q").arg(&swapfile));
    let swap_on_loop_file = make("swap.img", 16);
    let swap_loop = attach(&swap_on_loop_file);
    run_ok(Command::new("mkswap").arg("-q").arg(&swap_loop));
    let plain_loop = attach(&make("disk.img", 8));
    let swaps = [
        SwapOn::new(&swapfile).unwrap(),
        SwapOn::new(&swap_loop).unwrap(),
    ];
    // The plan names them, and changes nothing.
    let plan = umw([
        OsStr::new("--fake"),
        OsStr::new("--all"),
        OsStr::new("--include"),
        s.dir.as_os_str(),
    ]);
    assert_code(&plan, EXIT_OK, "--fake --all over swap and loop devices");
    for step in [
        format!("would turn swap off on {}", swapfile.display()),
        format!("would turn swap off on {}", swap_loop.display()),
        format!("would detach {} (backing ", plain_loop.display()),
    ] {
        assert!(plan.stdout.contains(&step), "{step} not in {}", plan.stdout);
    }
    assert!(fs::read_to_string("/proc/swaps")
        .unwrap()
        .contains(swapfile.to_str().unwrap()));
    let run = umw_all(&s.dir, &["--timeout", "30s"]);
    let busy = excl_busy(&dev.device);
    let bound = [&swap_loop, &plain_loop].map(|d| loop_bound(d));
    let in_use = fs::read_to_string("/proc/swaps").unwrap();
    // Whatever happened, nothing of it may outlive the test.
    drop(swaps);
    for lo in [&swap_loop, &plain_loop] {
        let _ = Command::new("losetup").arg("-d").arg(lo).status();
    }
    assert_code(&run, EXIT_OK, "--all over swap and loop devices");
    let line = line_of(&run, &data);
    assert_eq!(field(line, "outcome"), Some("shut_down"), "{line}");
    assert!(!busy, "the device still claimed after return");
    assert_eq!(bound, [false, false], "a loop device still bound: {line}");
    assert!(
        !in_use.contains(swapfile.to_str().unwrap())
            && !in_use.contains(swap_loop.to_str().unwrap()),
        "swap still in use: {in_use}"
    );
    for released in [
        format!(
            "{{\"kind\":\"swap\",\"path\":\"{}\",\"outcome\":\"off\"",
            swapfile.display()
        ),
        format!(
            "{{\"kind\":\"swap\",\"path\":\"{}\",\"outcome\":\"off\"",
            swap_loop.display()
        ),
        format!("{{\"kind\":\"loop\",\"device\":\"{}\"", swap_loop.display()),
        format!(
            "{{\"kind\":\"loop\",\"device\":\"{}\"",
            plain_loop.display()
        ),
    ] {
        assert!(line.contains(&released), "{released} not in {line}");
    }
}

/// A filesystem that can be neither unmounted nor made read-only (a file
/// open for writing on it) is shut down with `FS_IOC_SHUTDOWN`, its log
/// flushed, and reported so: a write then fails. Before, it was left
/// read-write with the error of the read-only remount.
fn all_read_only_refused_is_shut_down_by_ioctl() {
    let s = Scratch::new("all-ioctl");
    let dev = LoopExt4::new(&s, 64);
    let m = s.dir("m");
    dev.mount(&m);
    let mut writer = hold_open_for_writing(&m.join("log"));
    let run = umw_all(&s.dir, &[]);
    let write_after = fs::OpenOptions::new()
        .append(true)
        .open(m.join("log"))
        .and_then(|mut f| f.write_all(b"x"));
    writer.release();
    let _ = writer.holder.child.wait();
    assert_code(&run, EXIT_FAILURE, "--all, read-only refused");
    let line = line_of(&run, &m);
    assert_eq!(field(line, "outcome"), Some("shut_down_by_ioctl"), "{line}");
    assert!(run.stderr.contains("FS_IOC_SHUTDOWN"), "{}", run.stderr);
    assert!(write_after.is_err(), "still writable after the shutdown");
    // A shut-down filesystem still unmounts, and lets its device go.
    rustix::mount::unmount(&m, UnmountFlags::empty()).unwrap();
}

/// `--fake --all` prints the plan in the order of the run and touches
/// nothing: the newest first; a bind mount before its filesystem's last
/// mount, said to go without a wait; the loop device to detach. Before,
/// the bind mount was said to be waited for.
fn fake_all_prints_the_order_and_touches_nothing() {
    let s = Scratch::new("fake-all");
    let dev = LoopExt4::new(&s, 64);
    let data = s.dir("data");
    dev.mount(&data);
    fs::create_dir(data.join("x")).unwrap();
    let bind = s.dir("bind");
    rustix::mount::mount_bind(data.join("x"), &bind).unwrap();
    let t = s.dir("t");
    mount_tmpfs(&t);
    let before = mounts_outside(Path::new("/umw-nowhere"));
    let run = umw([
        OsStr::new("--fake"),
        OsStr::new("--all"),
        OsStr::new("--include"),
        s.dir.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "--fake --all");
    assert_eq!(
        mounts_outside(Path::new("/umw-nowhere")),
        before,
        "--fake changed the mount table"
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    let shown = |p: &Path| p.display().to_string();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines[0].starts_with(&format!("would unmount {} ", shown(&t))),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with(&format!("would unmount {} ", shown(&bind)))
            && lines[1].contains(&format!(
                "without a wait: its filesystem stays mounted at {}",
                shown(&data)
            )),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with(&format!("would unmount {} ", shown(&data)))
            && lines[2].ends_with(&format!(", then detach {}", shown(&dev.device))),
        "{}",
        run.stdout
    );
    for m in [&t, &bind, &data] {
        rustix::mount::unmount(m, UnmountFlags::empty()).unwrap();
    }
}

/// `--fake` takes the real run's decisions, then the real run does what
/// it said: `--all -t tmpfs` over a tmpfs with a ramfs on it (busy, made
/// read-only in the last pass), `-R` over a tree with a bind of its own
/// filesystem inside and `-A` over a tmpfs and a bind of it (the first
/// goes without a wait, the last one waits). Before, `--fake` was a
/// planner of its own and said each would be unmounted and waited for.
fn fake_says_what_the_real_run_does() {
    let s = Scratch::new("fake-real");
    let shown = |p: &Path| p.display().to_string();
    let lines = |run: &Run| -> Vec<String> { run.stdout.lines().map(String::from).collect() };

    // --all: a busy mount is made read-only, in the plan as in the run.
    let t = s.dir("t");
    mount_tmpfs(&t);
    let r = t.join("r");
    fs::create_dir(&r).unwrap();
    rustix::mount::mount("umw-test", &r, "ramfs", MountFlags::empty(), None).unwrap();
    let all = [
        OsStr::new("--all"),
        OsStr::new("-t"),
        OsStr::new("tmpfs"),
        OsStr::new("--include"),
        s.dir.as_os_str(),
    ];
    let plan = umw([OsStr::new("--fake")].into_iter().chain(all));
    assert_code(&plan, EXIT_OK, "--fake --all -t tmpfs over a busy tmpfs");
    assert!(is_mounted(&t) && is_mounted(&r), "--fake changed the table");
    assert_eq!(
        lines(&plan),
        [format!(
            "would remount {} (umw-test on {}, tmpfs) read-only: busy, {} is mounted on it",
            shown(&t),
            dev_of(&t),
            shown(&r)
        )],
        "{}",
        plan.stderr
    );
    let run = umw(all.into_iter().chain([OsStr::new("--json")]));
    assert_code(&run, EXIT_FAILURE, "--all -t tmpfs over a busy tmpfs");
    assert_eq!(
        field(line_of(&run, &t), "outcome"),
        Some("remounted_read_only"),
        "{}",
        run.stdout
    );
    rustix::mount::unmount(&r, UnmountFlags::empty()).unwrap();
    rustix::mount::unmount(&t, UnmountFlags::empty()).unwrap();

    // -R and -A: a bind of the filesystem goes without a wait, the last
    // mount waits.
    let b = t.join("b");
    let outside = s.dir("bind");
    for (option, bind) in [("-R", &b), ("-A", &outside)] {
        mount_tmpfs(&t);
        let x = t.join("x");
        fs::create_dir(&x).unwrap();
        if !bind.exists() {
            fs::create_dir(bind).unwrap();
        }
        rustix::mount::mount_bind(&x, bind).unwrap();
        let dev = dev_of(&t);
        let plan = umw([OsStr::new("--fake"), OsStr::new(option), t.as_os_str()]);
        assert_code(&plan, EXIT_OK, &format!("--fake {option}"));
        assert!(
            is_mounted(&t) && is_mounted(bind),
            "--fake changed the table"
        );
        assert_eq!(
            lines(&plan),
            [
                format!(
                    "would unmount {} (umw-test on {dev}, tmpfs) without a wait: \
                     its filesystem stays mounted at {}",
                    shown(bind),
                    shown(&t)
                ),
                format!(
                    "would unmount {} (umw-test on {dev}, tmpfs) by the fallback path",
                    shown(&t)
                ),
            ],
            "--fake {option}"
        );
        let run = umw([OsStr::new("--json"), OsStr::new(option), t.as_os_str()]);
        assert_code(&run, EXIT_OK, option);
        let outcomes: Vec<&str> = run
            .stdout
            .lines()
            .filter_map(|l| field(l, "outcome"))
            .collect();
        assert_eq!(
            outcomes,
            ["unmounted", "shut_down"],
            "{option}: {}",
            run.stdout
        );
        // The line names the mount that went, not the target given:
        // before, "T: unmounted; its filesystem stays mounted at T".
        let said = format!(
            "umount-wait: {}: unmounted; its filesystem stays mounted at {}",
            shown(bind),
            shown(&t)
        );
        assert!(run.stderr.contains(&said), "{option}: {}", run.stderr);
        assert!(!is_mounted(&t) && !is_mounted(bind));
    }
}

fn all_refuses_bad_prefixes_untouched() {
    let s = Scratch::new("all-usage");
    let m = s.dir("m");
    mount_tmpfs(&m);
    for args in [
        &["--all", "--include", "relative/path"][..],
        &["--all", "--exclude", ""][..],
        &["--all", "/mnt"][..],
        &["--include", "/tmp"][..],
    ] {
        let run = umw(args);
        assert_code(&run, EXIT_USAGE, &format!("{args:?}"));
    }
    assert!(is_mounted(&m));
}

fn all_many_mounts_timing() {
    let s = Scratch::new("all-many");
    let n = 100;
    for i in 0..n {
        // Three levels: every tenth mount has nine below it.
        let p = if i % 10 == 0 {
            s.dir(format!("m{i}"))
        } else {
            let top = s.path(format!("m{}", i - i % 10));
            let p = top.join(format!("s{i}"));
            fs::create_dir_all(&p).unwrap();
            p
        };
        mount_tmpfs(&p);
    }
    let run = umw_all(&s.dir, &[]);
    assert_code(&run, EXIT_OK, "--all over 100 tmpfs");
    let summary = run.stdout.lines().last().unwrap();
    assert!(summary.contains("\"shut_down\":100,"), "{summary}");
    eprintln!(
        "    --all over {n} tmpfs mounts: {:.1} ms inside the command, {:.1} ms with the process",
        field_ms(summary, "elapsed_ms"),
        run.elapsed.as_secs_f64() * 1000.0
    );
}

/// Runs the command with `args` to its end, counting how often it opened
/// `/proc/self/mountinfo`: an inotify watch (`IN_OPEN`) on that file of
/// its pid, added before it starts (a shell waits for a line, then
/// `exec`s it: the pid, and the file, stay). inotify merges an event with
/// the unread one before it when they are the same: two opens without a
/// close between count once, so the count is a floor.
fn mount_table_opens(args: &[&OsStr]) -> (Run, usize) {
    let (run, opens) = opens_while_running(args, &[]);
    (run, opens[0])
}

/// [`mount_table_opens`], and the opens of each of `files` (whoever opens
/// them: files of the whole system such as `/proc/swaps`), in order after
/// the mount table's.
fn opens_while_running(args: &[&OsStr], files: &[&Path]) -> (Run, Vec<usize>) {
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    let mut child = Command::new("sh")
        .args(["-c", "read go && exec \"$0\" \"$@\""])
        .arg(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watcher = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).unwrap();
    let table = PathBuf::from(format!("/proc/{}/mountinfo", child.id()));
    let wds: Vec<i32> = [table.as_path()]
        .into_iter()
        .chain(files.iter().copied())
        .map(|f| {
            inotify::add_watch(&watcher, f, WatchFlags::OPEN | WatchFlags::CLOSE_NOWRITE)
                .unwrap_or_else(|e| panic!("watching {}: {e}", f.display()))
        })
        .collect();
    let start = Instant::now();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    };
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut events = inotify::Reader::new(&watcher, &mut buf);
    let mut opens = vec![0; wds.len()];
    while let Ok(event) = events.next() {
        let which = wds.iter().position(|&wd| wd == event.wd());
        if let (Some(i), true) = (which, event.events().contains(ReadFlags::OPEN)) {
            opens[i] += 1;
        }
    }
    (run, opens)
}

/// Counts something (opens of files) over 10 and over 60 mounts or
/// targets, with `count_at(n)`: the counts must not grow with the number,
/// each at least 1 (else the watch saw nothing) and at most `limit`.
/// The watch sees every open of the file on the system, and another
/// process's (a loop device set up beside the test, as CI's background
/// jobs do) adds to a count, never takes from it: where the two numbers'
/// counts differ they are measured again, twice at most, and each count is
/// the least seen. A cost that grows with the number grows in every run.
fn counts_do_not_grow(what: &str, limit: usize, mut count_at: impl FnMut(usize) -> Vec<usize>) {
    let mut counts: Vec<Vec<usize>> = [10, 60].into_iter().map(&mut count_at).collect();
    for _ in 0..2 {
        if counts[0] == counts[1] {
            break;
        }
        eprintln!("    {what}: {counts:?} for 10 and 60; again");
        for (i, n) in [10, 60].into_iter().enumerate() {
            let again = count_at(n);
            for (c, a) in counts[i].iter_mut().zip(again) {
                *c = (*c).min(a);
            }
        }
    }
    eprintln!("    {what}: {counts:?} for 10 and 60");
    assert!(
        counts[0].iter().all(|&c| c >= 1),
        "{what}: the watch saw nothing"
    );
    assert_eq!(counts[0], counts[1], "{what}: they grow with the number");
    assert!(
        counts[1].iter().all(|&c| c <= limit),
        "{what}: {:?}, more than {limit}",
        counts[1]
    );
}

/// `n` tmpfs mounts side by side in `s`, mounted in order.
fn tmpfs_side_by_side(s: &Scratch, n: usize) -> Vec<PathBuf> {
    let points: Vec<PathBuf> = (0..n).map(|i| s.dir(format!("m{i}"))).collect();
    points.iter().for_each(|p| mount_tmpfs(p));
    points
}

/// `--all` reads the mount table once a pass, not once a mount: over 10
/// and over 60 tmpfs mounts (one pass each) the command opens
/// `/proc/self/mountinfo` as often. Each fallback unmount read the whole
/// table again (to see whether the caller's root or directory was on the
/// filesystem), which made `--all` quadratic in the number of mounts.
fn all_reads_the_mount_table_once_a_pass() {
    counts_do_not_grow("mount table opens", 4, |n| all_over_tmpfs_counting(n, &[]));
}

/// What may back onto the filesystems of a pass (swap areas, loop
/// devices) is read once a pass, not once a mount: over 10 and over 60
/// tmpfs mounts `/proc/swaps` and `/sys/block` are opened as often.
/// Before, each mount's release read both again (and, with a loop device
/// bound, started a child process to ask the driver for its file).
fn all_reads_what_backs_onto_filesystems_once_a_pass() {
    let files = [Path::new("/proc/swaps"), Path::new("/sys/block")];
    counts_do_not_grow("/proc/swaps and /sys/block opens", 2, |n| {
        all_over_tmpfs_counting(n, &files)[1..].to_vec()
    });
}

/// `--all --json` over `n` tmpfs in a scratch directory of its own: one
/// pass, each shut down. The opens of the mount table, then of `files`
/// ([`opens_while_running`]).
fn all_over_tmpfs_counting(n: usize, files: &[&Path]) -> Vec<usize> {
    let s = Scratch::new(&format!("all-counting-{n}"));
    tmpfs_side_by_side(&s, n);
    let args = [
        OsStr::new("--all"),
        OsStr::new("--include"),
        s.dir.as_os_str(),
        OsStr::new("--json"),
    ];
    let (run, count) = opens_while_running(&args, files);
    assert_code(&run, EXIT_OK, &format!("--all over {n} tmpfs"));
    let summary = run.stdout.lines().last().unwrap();
    assert!(
        summary.contains(&format!("\"shut_down\":{n},")),
        "{summary}"
    );
    assert!(summary.contains("\"passes\":1,"), "{summary}");
    count
}

/// The waits that `--all` ends at its deadline get the holders of their
/// filesystems from one scan for all of them, not one each: among 10 000
/// processes a scan takes about a second, and five survivors made `--all
/// --timeout 2s` end 6.5 s after it started (bench/holder-scan). Five
/// tmpfs stay alive in a holder's namespace. A scan reads each thread's
/// `/proc/PID/task/TID/maps` once, so the opens of the holder's count the
/// scans: one (before: five). Each survivor is still made read-only where it
/// stays.
fn all_one_scan_for_the_waits_its_deadline_ends() {
    let s = Scratch::new("all-one-scan");
    let points = tmpfs_side_by_side(&s, 5);
    let holder = namespace_shell("exec sleep 600");
    let maps = PathBuf::from(format!("/proc/{0}/task/{0}/maps", holder.id()));
    let args = [
        OsStr::new("--all"),
        OsStr::new("--include"),
        s.dir.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--timeout"),
        OsStr::new("2s"),
    ];
    let (run, opens) = opens_while_running(&args, &[&maps]);
    let writable: Vec<bool> = points.iter().map(|m| writable_in(holder.id(), m)).collect();
    drop(holder);
    assert_code(&run, EXIT_UNCONFIRMED, "--all with five survivors");
    for m in &points {
        let line = line_of(&run, m);
        assert_eq!(
            field(line, "outcome"),
            Some("detached_unconfirmed"),
            "{line}"
        );
        assert!(
            line.contains("\"read_only_through\":{\"kind\":\"mount\""),
            "{line}"
        );
    }
    assert!(writable.iter().all(|w| !w), "a survivor is still writable");
    assert_eq!(opens[1], 1, "scans of the holder's maps");
}

/// N targets on the command line read the mount table once, not once a
/// target (to see where each filesystem stays, and whether the caller
/// pins it): as often for 10 tmpfs targets as for 60, each shut down.
fn many_targets_read_the_mount_table_once() {
    counts_do_not_grow("mount table opens", 2, |n| {
        let s = Scratch::new(&format!("targets-reads-{n}"));
        let points = tmpfs_side_by_side(&s, n);
        let args: Vec<&OsStr> = [OsStr::new("--json")]
            .into_iter()
            .chain(points.iter().rev().map(|p| p.as_os_str()))
            .collect();
        let (run, count) = mount_table_opens(&args);
        assert_code(&run, EXIT_OK, &format!("{n} tmpfs targets"));
        let shut_down = run
            .stdout
            .lines()
            .filter(|l| field(l, "outcome") == Some("shut_down"))
            .count();
        assert_eq!(shut_down, n, "{}", run.stdout);
        assert!(points.iter().all(|p| !is_mounted(p)));
        vec![count]
    });
}

/// Targets that are mounts of one filesystem, read once: where the table
/// as read names another mount of it, that mount may be gone since (an
/// earlier target): the table is read again before the answer is taken.
/// Three binds of one tmpfs, given in order: the first two unmounted
/// without a wait, each saying where the filesystem stays (the next), the
/// last one waited for and shut down.
fn targets_of_one_filesystem_wait_for_the_last() {
    let s = Scratch::new("targets-binds");
    let t = s.dir("t");
    mount_tmpfs(&t);
    let (a, b) = (s.dir("a"), s.dir("b"));
    rustix::mount::mount_bind(&t, &a).unwrap();
    rustix::mount::mount_bind(&t, &b).unwrap();
    let run = umw([
        OsStr::new("--timeout"),
        OsStr::new("5s"),
        OsStr::new("--json"),
        t.as_os_str(),
        a.as_os_str(),
        b.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "three mounts of one tmpfs");
    let outcomes: Vec<Option<&str>> = run.stdout.lines().map(|l| field(l, "outcome")).collect();
    assert_eq!(
        outcomes,
        [Some("unmounted"), Some("unmounted"), Some("shut_down")],
        "{}",
        run.stdout
    );
    for (line, stays) in run.stdout.lines().zip([&a, &b]) {
        let reason = format!("its filesystem stays mounted at {}", stays.display());
        assert_eq!(field(line, "reason"), Some(&reason[..]), "{}", run.stdout);
    }
    assert!([&t, &a, &b].iter().all(|p| !is_mounted(p)));
}

// Security: an unprivileged user next to a root run. Each test does what
// the attacker did, and failed before its fix.

/// The mount's own options and its superblock's, as the mount table shows
/// them for the mount at `at` now.
fn options_at(at: &Path) -> (Vec<String>, Vec<String>) {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = table
        .lines()
        .rfind(|l| l.split(' ').nth(4) == at.to_str())
        .unwrap_or_else(|| panic!("{} is not mounted", at.display()));
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-").unwrap();
    let list = |s: &str| s.split(',').map(str::to_string).collect();
    (list(fields[5]), list(fields[dash + 3]))
}

/// The output of `path -u` run as nobody: the uid it runs with.
fn uid_of_program_run_by_nobody(program: &Path) -> String {
    let out = Command::new(program)
        .arg("-u")
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Item 1 (critical): a user's stick, mounted with nosuid and nodev as
/// udisks mounts media (and each other attribute a mount can have, and
/// the superblock's `sync`), with a setuid-root copy of `id` on it; the
/// user keeps a working directory there. `-r` and `--all` make it
/// read-only through a handle: every attribute of the mount and every
/// other flag of the superblock stay, and the user's `id` still runs as
/// the user. Before, the read-only remount by path (`MS_REMOUNT |
/// MS_RDONLY`) reset them: the options went from `rw,nosuid,nodev` to
/// `ro`, and nobody's `id -u` printed 0.
fn read_only_keeps_every_attribute_of_a_users_busy_mount() {
    let attribute_sets: &[(MountFlags, &[&str], &[&str])] = &[
        (
            MountFlags::NOSUID
                .union(MountFlags::NODEV)
                .union(MountFlags::NOSYMFOLLOW)
                .union(MountFlags::NOATIME)
                .union(MountFlags::SYNCHRONOUS),
            &["nosuid", "nodev", "nosymfollow", "noatime"],
            &["sync"],
        ),
        (
            MountFlags::NOEXEC.union(MountFlags::STRICTATIME),
            &["noexec"],
            &[],
        ),
    ];
    for how in ["-r", "--all"] {
        for (flags, mount_options, super_options) in attribute_sets {
            let s = Scratch::new("ro-attributes");
            let dev = LoopExt4::new(&s, 16);
            let stick = s.dir("stick");
            dev.mount(&stick);
            let id = stick.join("id");
            fs::copy("/usr/bin/id", &id).unwrap();
            run_ok(Command::new("chmod").arg("4755").arg(&id));
            rustix::mount::unmount(&stick, UnmountFlags::empty()).unwrap();
            rustix::mount::mount(&dev.device, &stick, "ext4", *flags, None).unwrap();
            let setuid_honoured = !flags.contains(MountFlags::NOSUID);
            let mut user = Holder::spawn(
                Command::new("sleep")
                    .arg("600")
                    .current_dir(&stick)
                    .uid(NOBODY)
                    .gid(NOBODY),
            );
            let run = match how {
                "-r" => umw([OsStr::new("-r"), OsStr::new("--json"), stick.as_os_str()]),
                _ => umw_all(&s.dir, &[]),
            };
            let (mount, superblock) = options_at(&stick);
            let id_uid = (!flags.contains(MountFlags::NOEXEC) && !setuid_honoured)
                .then(|| uid_of_program_run_by_nobody(&id));
            user.stop();
            rustix::mount::unmount(&stick, UnmountFlags::empty()).unwrap();
            let what = format!("{how} on a busy stick mounted {mount_options:?}");
            assert_code(&run, EXIT_FAILURE, &what);
            let line = if how == "-r" {
                run.stdout.as_str()
            } else {
                line_of(&run, &stick)
            };
            assert_eq!(
                field(line, "outcome"),
                Some("remounted_read_only"),
                "{what}: {line}"
            );
            assert!(
                mount.contains(&"ro".to_string()) && superblock.contains(&"ro".to_string()),
                "{what}: not read-only: {mount:?} {superblock:?}"
            );
            for o in *mount_options {
                assert!(
                    mount.contains(&o.to_string()),
                    "{what}: the mount lost {o}: {mount:?}"
                );
            }
            for o in *super_options {
                assert!(
                    superblock.contains(&o.to_string()),
                    "{what}: the superblock lost {o}: {superblock:?}"
                );
            }
            if let Some(uid) = id_uid {
                assert_eq!(
                    uid,
                    NOBODY.to_string(),
                    "{what}: the setuid-root id on the stick ran as uid {uid}"
                );
            }
        }
    }
}

/// Items 2 and 7: the read-only remount of a busy target acts on the
/// mount resolved, through a handle checked by its mount id and its
/// device, never on what the path leads to by then. (a) A user who owns a
/// directory on the path exchanges it (`renameat2(RENAME_EXCHANGE)`)
/// for one whose entry is a symbolic link to a mount that was not
/// selected; (b) the mount resolved went, and one that was not selected
/// was given its mount id (mount ids are reused) at its path. Before, the
/// remount followed the path: the unselected filesystem became read-only
/// in both cases, and the target stayed writable.
fn read_only_never_reaches_a_mount_put_in_the_targets_place() {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use umount_wait::{target, ErrorKind, WaitPath};
    let s = Scratch::new("ro-redirect");
    let other = s.dir("other");
    mount_tmpfs(&other);
    let user = s.dir("user");
    let m = s.dir("user/m");
    mount_tmpfs(&m);
    let options = umount_wait::Options {
        read_only_on_failure: true,
        ..Default::default()
    };
    let writable = |dir: &Path| fs::write(dir.join("probe"), b"x").is_ok();

    // (a) The exchange, made after the target was resolved.
    let t = target::resolve(&m, true, &mountinfo::read(None).unwrap()).unwrap();
    let evil = s.dir("evil");
    symlink(&other, evil.join("m")).unwrap();
    renameat_with(CWD, &user, CWD, &evil, RenameFlags::EXCHANGE).unwrap();
    let result = umount_wait::wait::remount_read_only(&t, WaitPath::Fallback, &options);
    renameat_with(CWD, &user, CWD, &evil, RenameFlags::EXCHANGE).unwrap();
    assert!(
        writable(&other),
        "a mount behind a symbolic link was made read-only"
    );
    match result {
        Err(e) => assert_eq!(e.kind, ErrorKind::Moved, "{e}"),
        Ok(r) => panic!("acted on what the path led to: {:?}", r.outcome),
    }

    // (b) The target as resolved, its id now another filesystem's.
    let other_mount = target::resolve(&other, true, &mountinfo::read(None).unwrap()).unwrap();
    let reused = umount_wait::Target {
        mount: mountinfo::Mount {
            id: other_mount.mount.id,
            ..t.mount.clone()
        },
        path: other.clone(),
        ..t.clone()
    };
    let result = umount_wait::wait::remount_read_only(&reused, WaitPath::Fallback, &options);
    assert!(
        writable(&other),
        "the mount with the reused id was made read-only"
    );
    match result {
        Err(e) => assert_eq!(e.kind, ErrorKind::Moved, "{e}"),
        Ok(r) => panic!("acted on the mount with a reused id: {:?}", r.outcome),
    }
    assert!(writable(&m));
    for dir in [&m, &other] {
        rustix::mount::unmount(dir, UnmountFlags::empty()).unwrap();
    }
}

/// Item 3: a bind of `other/share` (ext4, not selected) sits under the
/// selection, busy with a user's working directory, and then with a file
/// open for writing too. `--all` acts on that mount alone: made read-only
/// when it can be, else left as it is with an error; `other` stays
/// mounted, writable, never shut down. Before, the superblock was
/// remounted read-only, or, with the file open, shut down by
/// `FS_IOC_SHUTDOWN` (`other` went `rw,shutdown`, EIO on writes).
fn all_a_busy_bind_of_an_unselected_filesystem_is_never_stopped() {
    let outside = Scratch::new("unselected");
    let dev = LoopExt4::new(&outside, 32);
    let other = outside.dir("other");
    dev.mount(&other);
    fs::create_dir(other.join("share")).unwrap();
    let s = Scratch::new("bind-of-unselected");
    let b = s.dir("b");
    rustix::mount::mount_bind(other.join("share"), &b).unwrap();
    let other_writable = || fs::write(other.join("probe"), b"x").is_ok();

    let mut user = cwd_holder(&b);
    let mut writer = hold_open_for_writing(&b.join("log"));
    let run = umw_all(&s.dir, &[]);
    let still_writable = other_writable();
    writer.release();
    let _ = writer.holder.child.wait();
    let line = line_of(&run, &b).to_string();
    assert!(
        still_writable,
        "the unselected filesystem was stopped: {line}"
    );
    assert_ne!(
        field(&line, "outcome"),
        Some("shut_down_by_ioctl"),
        "{line}"
    );
    assert!(
        !options_at(&other).1.contains(&"ro".to_string()),
        "the unselected filesystem was made read-only"
    );
    // Read-only refused for this mount too (the file open for writing):
    // left as it is, and said so.
    assert_eq!(field(&line, "outcome"), Some("untouched"), "{line}");
    assert!(
        run.stderr.contains("remounting read-only") && run.stderr.contains("(untouched)"),
        "{}",
        run.stderr
    );
    assert_ne!(run.code, EXIT_OK, "{}", run.stderr);

    // Without the file open for writing: this mount alone read-only.
    let run = umw_all(&s.dir, &[]);
    let still_writable = other_writable();
    user.stop();
    let line = line_of(&run, &b).to_string();
    assert!(
        still_writable,
        "the unselected filesystem was stopped: {line}"
    );
    assert_eq!(field(&line, "outcome"), Some("mount_read_only"), "{line}");
    assert!(
        run.stderr
            .contains(&format!("stays mounted at {}", other.display())),
        "{}",
        run.stderr
    );
    assert!(
        fs::write(b.join("probe"), b"x").is_err(),
        "the bind is still writable"
    );
    rustix::mount::unmount(&b, UnmountFlags::empty()).unwrap();
    rustix::mount::unmount(&other, UnmountFlags::empty()).unwrap();
}

/// Item 5: the selected bind `sel/b` of `data/sub` is the last mount of
/// that tmpfs in view; a holder keeps a file open for writing on it
/// through its own copy, which it detached lazily (in no mount table), and
/// `sub` is deleted. The watch on the bind's root ends without
/// `IN_UNMOUNT`, and nothing else can confirm a shutdown: "detached, not
/// confirmed" (exit 3), while the holder still writes. Before: "shut
/// down", exit 0.
fn a_hidden_holder_of_a_deleted_root_is_no_shutdown() {
    let s = Scratch::new("hidden-holder");
    let data = s.dir("data");
    mount_tmpfs(&data);
    fs::create_dir(data.join("sub")).unwrap();
    let b = s.dir("sel/b");
    rustix::mount::mount_bind(data.join("sub"), &b).unwrap();
    let mut holder = namespace_shell(&format!(
        "exec 3>>'{data}/f' && umount -l '{b}' && umount -l '{data}' && exec sleep 600",
        data = data.display(),
        b = b.display()
    ));
    fs::remove_dir(data.join("sub")).unwrap();
    rustix::mount::unmount(&data, UnmountFlags::empty()).unwrap();
    let run = umw([
        OsStr::new("--mode"),
        OsStr::new("fallback"),
        OsStr::new("--timeout"),
        OsStr::new("10s"),
        OsStr::new("--json"),
        b.as_os_str(),
    ]);
    let alive = fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{}/fd/3", holder.id()))
        .and_then(|mut f| f.write_all(b"x"))
        .is_ok();
    holder.kill();
    assert!(
        alive,
        "the holder could no longer write: the test shows nothing"
    );
    assert_code(
        &run,
        EXIT_UNCONFIRMED,
        "the last bind in view, a hidden holder",
    );
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("detached_unconfirmed"),
        "{}",
        run.stdout
    );
    assert!(!is_mounted(&b));
}

/// Item 11: `-N PID` into a mount namespace whose owner mounted a tmpfs on
/// /proc there, with a mount table of their writing: it says the target
/// (a tmpfs) is a loop device's ext4, one that was never selected. `-d`
/// must not detach that loop device, nor unmount anything: the namespace's
/// /proc is refused, and a table whose device the filesystem contradicts
/// would be too. Before, the target was unmounted and the unselected loop
/// device detached.
fn namespace_with_a_fake_proc_is_refused() {
    let s = Scratch::new("fake-proc");
    let dev = LoopExt4::new(&s, 16);
    let rdev = fs::read_to_string(format!(
        "/sys/class/block/{}/dev",
        dev.device.file_name().unwrap().to_str().unwrap()
    ))
    .unwrap();
    let t = s.dir("t");
    let script = format!(
        "mount -t tmpfs umw-t '{t}' && \
         id=$(awk -v t='{t}' '$5 == t {{ print $1 }}' /proc/self/mountinfo) && \
         root=$(awk '$5 == \"/\" {{ print $1 \" \" $2 \" \" $3 }}' /proc/self/mountinfo) && \
         mount -t tmpfs umw-fake-proc /proc && mkdir /proc/self && \
         printf '%s / / rw - ext4 /dev/root rw\\n%s 1 {rdev} / {t} rw - ext4 {dev} rw\\n' \
           \"$root\" \"$id\" > /proc/self/mountinfo && exec sleep 600",
        t = t.display(),
        rdev = rdev.trim(),
        dev = dev.device.display(),
    );
    let mut holder = namespace_shell(&script);
    let run = umw([
        OsStr::new("-N"),
        OsStr::new(&holder.id().to_string()),
        OsStr::new("-d"),
        t.as_os_str(),
    ]);
    let still_mounted = fs::read_to_string(format!("/proc/{}/mountinfo", holder.id()))
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == t.to_str());
    holder.stop();
    let bound = umount_wait::loopdev::is_bound(umount_wait::mountinfo::DevId::from_dev_t(
        rustix::fs::stat(&dev.device).unwrap().st_rdev,
    ));
    assert!(
        bound,
        "an unselected loop device was detached: {}",
        run.stderr
    );
    assert!(still_mounted, "the target was unmounted: {}", run.stderr);
    assert_code(&run, EXIT_SYSTEM, "-N into a namespace with a fake /proc");
    assert!(
        run.stderr
            .contains("/proc/self/mountinfo is not the kernel's")
            && run.stderr.contains("nothing was unmounted"),
        "{}",
        run.stderr
    );
}

/// Item 6: a holder in a user and mount namespace of its own covers its
/// copy of the filesystem with a tmpfs (a directory of it kept open), so
/// that no holder's path reaches that copy. `--all` makes a filesystem's
/// last mount in view read-only before the unmount: the run ends
/// "detached, not confirmed", and the filesystem, still alive in the
/// holder, is read-only. Before, it stayed read-write.
fn all_a_holder_out_of_reach_keeps_a_read_only_filesystem() {
    let s = Scratch::new("out-of-reach");
    let dev = LoopExt4::new(&s, 16);
    let m = s.dir("m");
    dev.mount(&m);
    let (read_only, run) = all_with_a_holder_out_of_reach(&s, &m);
    let line = line_of(&run, &m);
    assert!(read_only, "left read-write in the holder: {line}");
    assert_eq!(
        field(line, "outcome"),
        Some("detached_unconfirmed"),
        "{line}"
    );
    assert_code(&run, EXIT_UNCONFIRMED, "--all, a holder out of reach");
}

/// The same holder out of reach, of a tmpfs: nothing of it outlives a
/// reboot, so `--all` leaves it as the holder has it, writable (a
/// container's service out of view may still write to it), and spends no
/// reconfiguration on it. Before, it was made read-only like a disk's.
fn all_a_holder_out_of_reach_of_a_tmpfs_leaves_it_writable() {
    let s = Scratch::new("out-of-reach-tmpfs");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let (read_only, run) = all_with_a_holder_out_of_reach(&s, &m);
    let line = line_of(&run, &m);
    assert!(!read_only, "made read-only in the holder: {line}");
    assert_eq!(
        field(line, "outcome"),
        Some("detached_unconfirmed"),
        "{line}"
    );
}

/// `--all` takes each mount as the table names it and leaves the check
/// that its mount point leads to it to the steps that act on it. A mount
/// hidden by another stacked on a directory above it (nothing there, or a
/// plain directory) is named untouched with the reason a lookup gives, as
/// when it was looked up before the steps, and nothing else is unmounted.
fn all_a_mount_its_path_no_longer_leads_to_is_named_untouched() {
    let s = Scratch::new("hidden-above");
    let a = s.dir("a");
    mount_tmpfs(&a);
    let b = a.join("b");
    fs::create_dir(&b).unwrap();
    mount_tmpfs(&b);
    // Stacked on `a`: `b`'s path now leads into it.
    mount_tmpfs(&a);
    let mounted_at = |p: &Path| {
        mountinfo::read(None)
            .unwrap()
            .iter()
            .filter(|m| m.mount_point == p)
            .count()
    };
    for (hidden_by, said) in [
        ("nothing", "no such file or directory"),
        ("a directory", "not mounted"),
    ] {
        if hidden_by == "a directory" {
            fs::create_dir(&b).unwrap();
        }
        let run = umw(
            [OsStr::new("--all"), OsStr::new("--include"), b.as_os_str()]
                .into_iter()
                .chain(["--json", "--timeout", "3s"].map(OsStr::new)),
        );
        let line = line_of(&run, &b);
        assert_eq!(
            field(line, "outcome"),
            Some("untouched"),
            "{hidden_by}: {line}"
        );
        let error = field(line, "error").unwrap_or_default();
        assert!(error.contains(said), "{hidden_by}: {line}");
        assert_eq!(mounted_at(&b), 1, "{hidden_by}: b unmounted");
        assert_eq!(
            mounted_at(&a),
            2,
            "{hidden_by}: a or what covers it unmounted"
        );
    }
}

/// A loop device backed by a file on a mount that a tmpfs stacked on a
/// directory above hides: `--all` over that mount alone detaches no loop
/// device of it (what backs onto a filesystem is released only once its
/// mount point leads to it, as `--all` looked it up first before it took
/// the table's word), and leaves the mount untouched. Before that check,
/// the loop device was detached and the mount left untouched.
fn all_releases_nothing_of_a_mount_its_path_no_longer_leads_to() {
    let s = Scratch::new("hidden-backer");
    let a = s.dir("a");
    let m = a.join("m");
    fs::create_dir(&m).unwrap();
    mount_tmpfs(&m);
    let image = m.join("disk.img");
    run_ok(
        Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", image.display()))
            .args(["bs=1M", "count=4", "status=none"]),
    );
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image),
    );
    let lo = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    // `m`'s path now leads into this tmpfs, where nothing is.
    mount_tmpfs(&a);
    let run = umw(
        [OsStr::new("--all"), OsStr::new("--include"), m.as_os_str()]
            .into_iter()
            .chain(["--json", "--timeout", "3s"].map(OsStr::new)),
    );
    let bound = loop_bound(&lo);
    let line = line_of(&run, &m).to_owned();
    let _ = Command::new("losetup").arg("-d").arg(&lo).status();
    assert!(
        bound,
        "the loop device backed by a file on {m:?} was detached: {line}"
    );
    assert_eq!(field(&line, "outcome"), Some("untouched"), "{line}");
    assert!(
        mountinfo::read(None)
            .unwrap()
            .iter()
            .any(|x| x.mount_point == m),
        "{m:?} unmounted: {line}"
    );
}

/// `umount-wait --all --timeout 3s` over `s` while a holder in a user and
/// mount namespace of its own keeps a copy of the filesystem mounted on
/// `m`, covered by a tmpfs there (a directory of it kept open). Whether
/// that copy was read-only after the run, and the run.
fn all_with_a_holder_out_of_reach(s: &Scratch, m: &Path) -> (bool, Run) {
    let holder = Holder::spawn(Command::new("unshare").args([
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &format!(
            "exec 3<'{m}' && mount -t tmpfs umw-stacked '{m}' && exec sleep 600",
            m = m.display()
        ),
    ]));
    let comm = format!("/proc/{}/comm", holder.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(&comm)
        .map(|c| c.trim() != "sleep")
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the holder did not start");
        sleep(Duration::from_millis(5));
    }
    let run = umw_all(&s.dir, &["--timeout", "3s"]);
    let kept = format!("/proc/{}/fd/3", holder.id());
    let read_only = rustix::fs::statvfs(kept.as_str())
        .unwrap()
        .f_flag
        .contains(rustix::fs::StatVfsMountFlags::RDONLY);
    drop(holder);
    (read_only, run)
}

/// Item 10: a user renames a directory above a mount that root made, so
/// that its mount point lies deeper than PATH_MAX. `--all` still unmounts
/// it and confirms its shutdown (the path reached one component at a
/// time). Before: "File name too long", the mount left read-write.
fn all_a_mount_moved_deeper_than_path_max_is_unmounted() {
    use rustix::fs::{mkdirat, openat, renameat, Mode, OFlags};
    let s = Scratch::new("deep");
    let short = s.dir("short");
    let m = s.dir("short/m");
    mount_tmpfs(&m);
    // A tree deeper than PATH_MAX, made one component at a time.
    let part = "d".repeat(200);
    let flags = OFlags::PATH | OFlags::DIRECTORY;
    let mut dir = rustix::fs::open(&s.dir, flags, Mode::empty()).unwrap();
    let mut deep = s.dir.clone();
    for _ in 0..22 {
        mkdirat(&dir, part.as_str(), Mode::from_raw_mode(0o755)).unwrap();
        dir = openat(&dir, part.as_str(), flags, Mode::empty()).unwrap();
        deep.push(&part);
    }
    renameat(rustix::fs::CWD, &short, &dir, "short").unwrap();
    let moved = deep.join("short/m");
    assert!(moved.as_os_str().len() > 4096);
    assert!(is_mounted(&moved), "the mount did not move along");
    let run = umw_all(&s.dir, &[]);
    let left = is_mounted(&moved);
    if left {
        let dir_fd = openat(&dir, "short", flags, Mode::empty()).unwrap();
        let _ = rustix::mount::unmount(
            format!(
                "/proc/self/fd/{}/m",
                std::os::fd::AsRawFd::as_raw_fd(&dir_fd)
            )
            .as_str(),
            UnmountFlags::DETACH,
        );
    }
    assert!(!left, "left mounted: {}{}", run.stdout, run.stderr);
    assert_code(&run, EXIT_OK, "--all over a mount deeper than PATH_MAX");
    assert_eq!(
        field(line_of(&run, &moved), "outcome"),
        Some("shut_down"),
        "{}",
        run.stdout
    );
}

/// A mount point or a process named with a right-to-left override shows
/// the override as `\u{202e}`, never raw (it would make the name read as
/// another's); two mount points whose names differ only in bytes that are
/// not UTF-8 stay two in --json (the arrays of their bytes).
fn names_that_would_read_as_others_are_escaped() {
    let s = Scratch::new("spoof");
    let m = s.dir("a\u{202e}fdp.txt");
    mount_tmpfs(&m);
    // A holder whose command name (its program's) has the override too.
    let program = s.path("x\u{202e}y");
    fs::copy("/bin/sleep", &program).unwrap();
    let mut holder = Holder::spawn(Command::new(&program).arg("600").current_dir(&m));
    let run = umw([
        OsStr::new("-l"),
        OsStr::new("--timeout"),
        OsStr::new("2s"),
        m.as_os_str(),
    ]);
    holder.stop();
    assert_code(&run, EXIT_UNCONFIRMED, "-l with a holder");
    assert!(
        !run.stderr.contains('\u{202e}'),
        "printed raw:\n{}",
        run.stderr
    );
    let shown = format!("'{}/a\\u{{202e}}fdp.txt'", s.dir.display());
    assert!(
        run.stderr
            .contains(&format!("umount-wait: {shown}: detached"))
            && run
                .stderr
                .contains(&format!("pid {} ('x\\u{{202e}}y'): cwd", holder.id())),
        "{}",
        run.stderr
    );

    let ff = s.dir(OsStr::from_bytes(b"n\xff"));
    let fe = s.dir(OsStr::from_bytes(b"n\xfe"));
    mount_tmpfs(&ff);
    mount_tmpfs(&fe);
    let run = umw([
        OsStr::new("--json"),
        OsStr::new("-v"),
        ff.as_os_str(),
        fe.as_os_str(),
    ]);
    assert_code(&run, EXIT_OK, "two names not UTF-8");
    let bytes = |p: &Path| {
        let list: Vec<String> = p.as_os_str().as_bytes().iter().map(u8::to_string).collect();
        format!("[{}]", list.join(","))
    };
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    for (line, m) in lines.iter().zip([&ff, &fe]) {
        assert!(
            line.starts_with(&format!(
                "{{\"target\":{},\"mount_point\":{},",
                bytes(m),
                bytes(m)
            )),
            "{line}"
        );
    }
    assert_ne!(
        lines[0].split(",\"source\"").next(),
        lines[1].split(",\"source\"").next()
    );
    assert!(
        run.stderr.contains("/n\\xff': unmounting") && run.stderr.contains("/n\\xfe': unmounting"),
        "{}",
        run.stderr
    );
}

/// Finding of the review of items 2 and 7: `umount2(2)` takes a path, and
/// a user who owns a directory on it can exchange that directory for a
/// symbolic link between the check and the call
/// (`renameat2(RENAME_EXCHANGE)`): by path, the call then unmounts a mount
/// nobody selected (shown here first, by path, as the command did it).
/// Through `sys::MountPoint` (the parent reached one component at a time,
/// then checked and unmounted through that handle) the exchange changes
/// nothing: the mount checked is the one unmounted.
fn an_exchange_between_check_and_unmount_cannot_redirect_it() {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use umount_wait::sys::{MountPoint, UnmountOptions};
    let s = Scratch::new("exchange");
    let other = s.dir("other");
    let other_boot = s.dir("other/boot");
    let target = s.dir("d/boot");
    let d = s.dir("d");
    let link = s.path("evil");
    symlink(&other, &link).unwrap();
    let no_follow = UnmountOptions {
        no_follow: true,
        ..Default::default()
    };
    for by_handle in [false, true] {
        mount_tmpfs(&other_boot);
        mount_tmpfs(&target);
        let mount_point = MountPoint::open(&target, false).unwrap();
        let st = mount_point.stat().unwrap();
        assert!(st.is_mount_root);
        // The user's exchange, after the check.
        renameat_with(CWD, &d, CWD, &link, RenameFlags::EXCHANGE).unwrap();
        let result = match by_handle {
            true => mount_point.unmount(no_follow, umount_wait::sys::proc_fd_usable()),
            false => rustix::mount::unmount(&target, UnmountFlags::NOFOLLOW),
        };
        renameat_with(CWD, &d, CWD, &link, RenameFlags::EXCHANGE).unwrap();
        let (selected_left, other_left) = (is_mounted(&target), is_mounted(&other_boot));
        for m in [&target, &other_boot] {
            let _ = rustix::mount::unmount(m, UnmountFlags::empty());
        }
        result.unwrap();
        if by_handle {
            assert!(other_left, "the unselected mount was unmounted");
            assert!(!selected_left, "the mount checked is still mounted");
        } else {
            assert!(
                !other_left && selected_left,
                "by path, the exchange did not redirect the unmount: the test shows nothing"
            );
        }
    }
}

/// Review finding: `-r` on a busy FUSE mount reconfigured its superblock
/// read-only, which syncs through the daemon: one that does not answer
/// (a user's) would hold a root run for ever. Now this mount alone is
/// made read-only (`mount_setattr(2)`, no sync): outcome
/// `mount_read_only`, the superblock left as it is. Before:
/// `remounted_read_only`, through the daemon.
fn read_only_of_a_fuse_mount_needs_no_answer_from_its_daemon() {
    let required = std::env::var("UMW_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1");
    if Command::new("bindfs").arg("--version").output().is_err() {
        assert!(!required, "bindfs is not installed (ci/setup installs it)");
        eprintln!("    bindfs not installed: not checked");
        return;
    }
    let s = Scratch::new("fuse-read-only");
    let src = s.dir("src");
    let m = s.dir("m");
    let _daemon = Holder::spawn(Command::new("bindfs").arg("-f").arg(&src).arg(&m));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(&m) {
        assert!(Instant::now() < deadline, "bindfs did not mount");
        sleep(Duration::from_millis(5));
    }
    let mut user = cwd_holder(&m);
    let run = umw([OsStr::new("-r"), OsStr::new("--json"), m.as_os_str()]);
    let (mount, superblock) = options_at(&m);
    user.stop();
    let _ = rustix::mount::unmount(&m, UnmountFlags::DETACH);
    assert_code(&run, EXIT_FAILURE, "-r on a busy FUSE mount");
    assert_eq!(
        field(&run.stdout, "outcome"),
        Some("mount_read_only"),
        "{}",
        run.stdout
    );
    assert!(mount.contains(&"ro".to_string()), "{mount:?}");
    assert!(superblock.contains(&"rw".to_string()), "{superblock:?}");
    assert!(
        run.stderr.contains("a daemon or a server answers for it"),
        "{}",
        run.stderr
    );
}

/// Review finding: `--all` makes a filesystem read-only before its
/// unmount; when that unmount then fails (busy), the retry said
/// "untouched" of a filesystem now read-only. It says so now. (An ext4:
/// a tmpfs is not made read-only first, nothing of it outlives a reboot.)
fn all_a_retry_says_the_filesystem_was_made_read_only() {
    let s = Scratch::new("retry-read-only");
    let dev = LoopExt4::new(&s, 16);
    let m = s.dir("m");
    dev.mount(&m);
    let mut user = cwd_holder(&m);
    let run = umw_all(&s.dir, &["-v"]);
    user.stop();
    assert!(
        run.stderr
            .contains("(still mounted, made read-only before the unmount was tried)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        field(line_of(&run, &m), "outcome"),
        Some("remounted_read_only"),
        "{}",
        run.stdout
    );
}
/// A FUSE filesystem whose daemon (this process, through the descriptor it
/// keeps) answers `FUSE_INIT` and nothing after: every request that needs
/// an answer (a lookup under its root, a `stat()` that does not come from
/// the cache) sleeps until the connection is aborted, as under a user's
/// daemon that stopped answering. Mounted `allow_other`, as a user's
/// `fusermount -o allow_other` does, with `source` as its source (the
/// `fsname` a user chooses). On drop the connection is aborted (the
/// descriptor closed) and the mount detached: nothing waits on it any more.
struct HungFuse {
    at: PathBuf,
    device: Option<std::os::fd::OwnedFd>,
}

impl HungFuse {
    fn mount(at: &Path, source: &Path) -> HungFuse {
        HungFuse::mount_for(at, source, None)
    }

    /// [`HungFuse::mount`]; with `owner`, that user's mount without
    /// `allow_other`, as a plain `fusermount` makes it: the kernel then
    /// refuses every other user, root too.
    fn mount_for(at: &Path, source: &Path, owner: Option<u32>) -> HungFuse {
        use rustix::fs::{Mode, OFlags};
        use std::os::fd::AsRawFd;
        let device = rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| panic!("opening /dev/fuse: {e}"));
        let options = match owner {
            None => format!(
                "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
                device.as_raw_fd()
            ),
            Some(uid) => format!(
                "fd={},rootmode=40000,user_id={uid},group_id={uid}",
                device.as_raw_fd()
            ),
        };
        rustix::mount::mount(
            source,
            at,
            "fuse",
            MountFlags::NOSUID | MountFlags::NODEV,
            std::ffi::CString::new(options).unwrap().as_c_str(),
        )
        .unwrap_or_else(|e| panic!("mounting FUSE on {}: {e}", at.display()));
        let fuse = HungFuse {
            at: at.to_path_buf(),
            device: Some(device),
        };
        fuse.answer_init();
        fuse
    }

    /// Reads `FUSE_INIT` (the first request, queued by the mount) and
    /// answers it: protocol 7.31, nothing else offered.
    fn answer_init(&self) {
        const FUSE_INIT: u32 = 26;
        let device = self.device.as_ref().unwrap();
        // The kernel refuses reads into less than FUSE_MIN_READ_BUFFER.
        let mut request = vec![0u8; 1 << 17];
        let n = rustix::io::read(device, &mut request).expect("reading FUSE_INIT");
        assert!(n >= 40, "short FUSE request: {n} bytes");
        let opcode = u32::from_ne_bytes(request[4..8].try_into().unwrap());
        assert_eq!(opcode, FUSE_INIT, "the first FUSE request");
        let unique = &request[8..16];
        // fuse_out_header, then fuse_init_out (64 bytes).
        let mut reply = Vec::with_capacity(16 + 64);
        reply.extend_from_slice(&(16u32 + 64).to_ne_bytes());
        reply.extend_from_slice(&0i32.to_ne_bytes());
        reply.extend_from_slice(unique);
        let mut init = [0u8; 64];
        init[0..4].copy_from_slice(&7u32.to_ne_bytes()); // major
        init[4..8].copy_from_slice(&31u32.to_ne_bytes()); // minor
        init[20..24].copy_from_slice(&4096u32.to_ne_bytes()); // max_write
        init[24..28].copy_from_slice(&1u32.to_ne_bytes()); // time_gran
        reply.extend_from_slice(&init);
        rustix::io::write(device, &reply).expect("answering FUSE_INIT");
    }
}

impl Drop for HungFuse {
    fn drop(&mut self) {
        // Closing the daemon's only descriptor aborts the connection:
        // whatever still waits for an answer gets ENOTCONN.
        self.device = None;
        let _ = rustix::mount::unmount(&self.at, UnmountFlags::DETACH);
    }
}

/// The command with `args`, killed (SIGKILL) after `bound`: a command that
/// hangs fails the test instead of hanging it.
fn umw_bounded(args: &[&OsStr], bound: Duration) -> Run {
    run_command(
        Command::new("timeout")
            .args(["-s", "KILL"])
            .arg(bound.as_secs().to_string())
            .arg(BIN)
            .args(args),
    )
}

/// The command with `args`, its output in files of `s`: when it has not
/// ended after `bound`, `rescue` runs (it must end whatever the command
/// waits for uninterruptibly), then the command is killed. The time is
/// that of its end, or the bound.
fn umw_rescued(s: &Scratch, args: &[&OsStr], bound: Duration, rescue: impl FnOnce()) -> Run {
    let (out, err) = (s.path("rescued.stdout"), s.path("rescued.stderr"));
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut status = None;
    while status.is_none() && start.elapsed() < bound {
        sleep(Duration::from_millis(20));
        status = child.try_wait().unwrap();
    }
    let elapsed = start.elapsed();
    let code = match status {
        Some(status) => status.code().unwrap_or(-1),
        None => {
            rescue();
            let _ = child.kill();
            let _ = child.wait();
            -1
        }
    };
    Run {
        code,
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
        elapsed,
    }
}

/// Detaches the loop device `device` (`losetup -d`) as soon as nothing
/// holds it any more, trying until `within`: a child of the command given
/// up on a filesystem that did not answer may hold it a moment after the
/// daemon went.
fn detach_loop_when_free(device: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while loop_bound(device) && Instant::now() < deadline {
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(device)
            .stderr(Stdio::null())
            .status();
        sleep(Duration::from_millis(50));
    }
}

/// How long a run over a filesystem that does not answer may take beyond
/// its `--timeout`: the children killed and reaped, the report written.
const HUNG_GRACE: Duration = Duration::from_secs(5);
/// When such a run is killed: it hung.
const HUNG_KILL: Duration = Duration::from_secs(20);

fn assert_within(run: &Run, timeout: Duration, what: &str) {
    assert!(
        run.code != 128 + 9 && run.elapsed < timeout + HUNG_GRACE,
        "{what}: exit {} after {:.1} s, --timeout {} s (killed at {} s: it hung)\nstdout: {}\nstderr: {}",
        run.code,
        run.elapsed.as_secs_f64(),
        timeout.as_secs(),
        HUNG_KILL.as_secs(),
        run.stdout,
        run.stderr
    );
}

/// A user's FUSE filesystem whose daemon answers nothing after `FUSE_INIT`,
/// with a source (`fsname`) that leads into itself: `--all --timeout 3`
/// over it, and the single-target form with `--timeout 3`, return within
/// their deadline. Before, both hung for ever in `stat()` of the source
/// (`request_wait_answer`), before anything was unmounted.
fn a_silent_fuse_daemon_does_not_outlast_the_timeout() {
    let timeout = Duration::from_secs(3);
    let mut failed = Vec::new();
    for form in ["--all", "single"] {
        let s = Scratch::new(&format!("fuse-silent-{}", form.trim_start_matches('-')));
        let m = s.dir("m");
        let _fuse = HungFuse::mount(&m, &m.join("dev/sdz"));
        let mut args = match form {
            "--all" => vec![
                OsStr::new("--all"),
                OsStr::new("--include"),
                s.dir.as_os_str(),
            ],
            _ => vec![m.as_os_str()],
        };
        args.extend(["--timeout", "3s", "--json"].map(OsStr::new));
        let run = umw_bounded(&args, HUNG_KILL);
        eprintln!(
            "    {form} --timeout 3s, FUSE source inside itself: exit {} in {:.2} s",
            run.code,
            run.elapsed.as_secs_f64()
        );
        let what = format!("{form} on a silent FUSE mount");
        if catch_unwind(AssertUnwindSafe(|| assert_within(&run, timeout, &what))).is_err() {
            failed.push(form);
        }
    }
    assert!(failed.is_empty(), "outlasted the timeout: {failed:?}");
}

/// A loop device whose backing file's path now leads through a silent
/// FUSE mount (mounted over the directory that holds the image, which
/// the loop device keeps using): `--all --timeout 3` over an unrelated
/// tmpfs returns within its deadline, and the tmpfs is shut down. Before,
/// every scan for loop devices looked the path up and hung for ever.
fn a_loop_backing_path_through_a_silent_fuse_mount_does_not_hang_all() {
    let timeout = Duration::from_secs(3);
    let s = Scratch::new("fuse-silent-loop");
    let images = s.dir("outside/images");
    mount_tmpfs(&images);
    let dir = images.join("dir");
    fs::create_dir(&dir).unwrap();
    let image = dir.join("disk.img");
    fs::File::create(&image).unwrap().set_len(4 << 20).unwrap();
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image),
    );
    let lo = LoopExt4 {
        device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
    };
    let _fuse = HungFuse::mount(&dir, Path::new("user-fuse"));
    let all = s.dir("all");
    let t = s.dir("all/t");
    mount_tmpfs(&t);
    let mut args = vec![
        OsStr::new("--all"),
        OsStr::new("--include"),
        all.as_os_str(),
    ];
    args.extend(["--timeout", "3s", "--json"].map(OsStr::new));
    let run = umw_bounded(&args, HUNG_KILL);
    assert_within(
        &run,
        timeout,
        "--all over a tmpfs, a loop device's backing path through a silent FUSE mount",
    );
    assert_code(&run, EXIT_OK, "--all over an unrelated tmpfs");
    assert!(!is_mounted(&t), "the tmpfs is still mounted");
    assert!(
        loop_bound(&lo.device),
        "the unrelated loop device was detached"
    );
    eprintln!(
        "    --all --timeout 3s, a loop backing path through silent FUSE: {:.2} s",
        run.elapsed.as_secs_f64()
    );
}

/// A program whose main thread calls `pthread_exit()` once its working
/// directory is `argv[1]`, while a second thread keeps `argv[2]` open and
/// lives on: the thread group's leader is then a zombie, whose
/// `/proc/PID/cwd`, `/proc/PID/fd` and `/proc/PID/ns/mnt` show nothing.
/// With a third argument it first moves to a mount namespace of its own
/// (a copy of the caller's, private), which the thread keeps alive.
const ZOMBIE_LEADER_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>
static void *hold(void *path) {
    if (open(path, O_RDONLY) < 0) return 0;
    write(1, "ready\n", 6);
    for (;;) pause();
}
int main(int argc, char **argv) {
    pthread_t t;
    if (argc > 3 && (unshare(CLONE_NEWNS) != 0
                     || mount(0, "/", 0, MS_REC | MS_PRIVATE, 0) != 0))
        return 1;
    if (argc < 3 || chdir(argv[1]) != 0) return 1;
    if (pthread_create(&t, 0, hold, argv[2]) != 0) return 1;
    pthread_exit(0);
}
"#;

/// [`ZOMBIE_LEADER_C`] compiled in `s`, started with `args` (as `uid`
/// when given), returned once its leader is a zombie.
fn zombie_leader(s: &Scratch, args: &[&OsStr], uid: Option<u32>) -> Holder {
    let source = s.path("zombie-leader.c");
    fs::write(&source, ZOMBIE_LEADER_C).unwrap();
    let program = s.path("zombie-leader");
    run_ok(
        Command::new("cc")
            .args(["-O", "-pthread", "-o"])
            .arg(&program)
            .arg(&source),
    );
    let mut cmd = Command::new(&program);
    cmd.args(args).stdout(Stdio::piped());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let mut holder = Holder::spawn(&mut cmd);
    let mut ready = [0u8; 6];
    holder
        .child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut ready)
        .expect("the holder did not start");
    let pid = holder.id();
    let leader = format!("/proc/{pid}/task/{pid}/stat");
    let deadline = Instant::now() + Duration::from_secs(30);
    // The leader is a zombie once pthread_exit() has run: `State` Z.
    while !fs::read_to_string(&leader)
        .unwrap_or_default()
        .rsplit(')')
        .next()
        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    {
        assert!(Instant::now() < deadline, "the leader did not exit");
        sleep(Duration::from_millis(5));
    }
    holder
}

/// A holder run as `NOBODY` whose thread-group leader has exited while
/// another thread keeps the target busy (its working directory and a file
/// open there): the busy target's report names the process. Before, only
/// `/proc/PID` was read, which shows nothing for an exited leader, and the
/// holder went unnamed.
fn busy_target_names_a_holder_whose_leader_has_exited() {
    let s = Scratch::new("busy-zombie-leader");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let file = m.join("held");
    fs::write(&file, b"data").unwrap();
    let mut holder = zombie_leader(&s, &[m.as_os_str(), file.as_os_str()], Some(NOBODY));
    let pid = holder.id();
    assert_busy_names(
        &m,
        &format!("pid {pid} (zombie-leader): cwd, fd "),
        "a holder whose leader exited",
    );
    holder.stop();
}

/// A mount namespace whose only process has an exited leader and a
/// thread that lives on keeps a copy of the target: the wait, which the
/// copy makes last until `--timeout`, names it (the namespace, through
/// the process). Before, `/proc/PID/ns/mnt` of the leader was all that
/// was read, and nothing was named.
fn a_wait_names_a_namespace_kept_by_a_thread_whose_leader_has_exited() {
    let s = Scratch::new("ns-zombie-leader");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let file = m.join("held");
    fs::write(&file, b"data").unwrap();
    // Its working directory and the file are the copy's, in its namespace.
    let mut holder = zombie_leader(
        &s,
        &[m.as_os_str(), file.as_os_str(), OsStr::new("ns")],
        None,
    );
    let run = umw([
        OsStr::new("--timeout"),
        OsStr::new("500ms"),
        OsStr::new("--json"),
        m.as_os_str(),
    ]);
    holder.stop();
    assert_code(&run, EXIT_UNCONFIRMED, "a copy kept by a thread");
    let pid = format!("\"pid\":{}", holder.id());
    assert!(
        run.stdout.contains("\"kind\":\"mount\"") && run.stdout.contains(&pid),
        "the namespace not named: {}",
        run.stdout
    );
}

/// A scan given a deadline that has passed returns at once, and says that
/// its list is incomplete (the last entry), though a holder is there: a
/// user's many processes, mappings or namespaces cannot stretch the
/// deadline of a shutdown. With time, the same scan names the holder.
fn a_scan_past_its_deadline_says_it_is_incomplete() {
    use umount_wait::blockers::{self, Blocker};
    let s = Scratch::new("scan-deadline");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let mut holder = cwd_holder(&m);
    let mount = mountinfo::read(None)
        .unwrap()
        .into_iter()
        .find(|mt| mt.mount_point == m)
        .unwrap();
    let late = blockers::find(&mount, None, Instant::now());
    let full = blockers::find(&mount, None, Instant::now() + Duration::from_secs(60));
    holder.stop();
    assert_eq!(late.last(), Some(&Blocker::Incomplete), "{late:?}");
    let named = |list: &[Blocker]| {
        list.iter()
            .any(|b| matches!(b, Blocker::Process { pid, .. } if *pid == holder.id() as i32))
    };
    assert!(named(&full), "{full:?}");
    assert!(!full.contains(&Blocker::Incomplete), "{full:?}");
    assert_eq!(
        Blocker::Incomplete.to_string(),
        "maybe more: the scan stopped at its deadline"
    );
}

/// A FUSE filesystem with one file, `disk.img` (4 MiB, zeros at first,
/// kept in the daemon's memory as it is written), served by a forked daemon that answers until [`ReadingFuse::go_silent`],
/// and from then on reads every request and answers none: a request it
/// has read is waited for uninterruptibly, so even SIGKILL does not end
/// the wait. Attributes are never cached (`attr_valid` 0): every `stat()`
/// asks the daemon. On drop the daemon is killed, which aborts the
/// connection, and the mount detached.
struct ReadingFuse {
    at: PathBuf,
    daemon: nix::unistd::Pid,
    /// A byte written here makes the daemon go silent.
    silence: std::os::unix::net::UnixStream,
}

const FUSE_IMAGE_SIZE: u64 = 4 << 20;

impl ReadingFuse {
    fn mount(at: &Path) -> ReadingFuse {
        ReadingFuse::mount_as(at, Path::new("user-fuse"), "fuse", "")
    }

    /// [`ReadingFuse::mount`] as a `fuseblk` filesystem on the block
    /// device `device` (as ntfs-3g and exfat-fuse mount): its unmount
    /// sends `FUSE_DESTROY`, which it waits for uninterruptibly once the
    /// daemon has read it.
    fn mount_blk(at: &Path, device: &Path) -> ReadingFuse {
        ReadingFuse::mount_as(at, device, "fuseblk", ",blksize=4096")
    }

    fn mount_as(at: &Path, source: &Path, fstype: &str, extra: &str) -> ReadingFuse {
        use rustix::fs::{Mode, OFlags};
        use std::os::fd::AsRawFd;
        let device = rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| panic!("opening /dev/fuse: {e}"));
        let options = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,allow_other{extra}",
            device.as_raw_fd()
        );
        rustix::mount::mount(
            source,
            at,
            fstype,
            MountFlags::NOSUID | MountFlags::NODEV,
            std::ffi::CString::new(options).unwrap().as_c_str(),
        )
        .unwrap_or_else(|e| panic!("mounting FUSE on {}: {e}", at.display()));
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: this process is single-threaded (see main); the child
        // serves and ends with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                fuse_serve(&device, &theirs);
                // SAFETY: ends the child without running the parent's code.
                unsafe { nix::libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => ReadingFuse {
                at: at.to_path_buf(),
                daemon: child,
                silence: ours,
            },
        }
    }

    /// From now on every WRITE is answered EIO, as by a disk that fails;
    /// the rest as before.
    fn fail_writes(&mut self) {
        self.silence.write_all(b"e").unwrap();
    }

    fn go_silent(&mut self) {
        self.silence.write_all(b"s").unwrap();
        // The daemon answers what it has read, then nothing: a request
        // answered after this is no matter.
    }
}

impl Drop for ReadingFuse {
    fn drop(&mut self) {
        // The daemon's descriptor was the last: its death aborts the
        // connection, and whatever waits for an answer gets ENOTCONN.
        let _ = nix::sys::signal::kill(self.daemon, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.daemon, None);
        let _ = rustix::mount::unmount(&self.at, UnmountFlags::DETACH);
    }
}

/// The daemon of [`ReadingFuse`]: answers on `device` until a byte comes
/// on `silence`, then reads and drops every request.
fn fuse_serve(device: &std::os::fd::OwnedFd, silence: &std::os::unix::net::UnixStream) {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut silent = false;
    let mut failing = false;
    let mut buf = vec![0u8; 1 << 17];
    let mut image = vec![0u8; FUSE_IMAGE_SIZE as usize];
    loop {
        if !silent {
            let mut fds = [
                PollFd::new(device.as_fd(), PollFlags::POLLIN),
                PollFd::new(silence.as_fd(), PollFlags::POLLIN),
            ];
            if nix::poll::poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                let mut what = [0u8; 1];
                match (&*silence).read(&mut what) {
                    Ok(1) if what[0] == b'e' => failing = true,
                    _ => silent = true,
                }
            }
        }
        let n = match rustix::io::read(device, &mut buf) {
            Ok(n) => n,
            Err(Errno::INTR | Errno::AGAIN | Errno::NOENT) => continue,
            Err(_) => return,
        };
        if silent || n < 40 {
            continue;
        }
        let word = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
        let long = |at: usize| u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap());
        let (opcode, unique, nodeid) = (word(4), long(8), long(16));
        let attr = |node: u64| {
            // struct fuse_attr (88 bytes).
            let mut a = [0u8; 88];
            let (mode, size, nlink) = match node {
                1 => (0o040755u32, 0u64, 2u32),
                _ => (0o100644, FUSE_IMAGE_SIZE, 1),
            };
            a[0..8].copy_from_slice(&node.to_ne_bytes());
            a[8..16].copy_from_slice(&size.to_ne_bytes());
            a[16..24].copy_from_slice(&(size / 512).to_ne_bytes());
            a[60..64].copy_from_slice(&mode.to_ne_bytes());
            a[64..68].copy_from_slice(&nlink.to_ne_bytes());
            a[80..84].copy_from_slice(&4096u32.to_ne_bytes());
            a
        };
        let body: Result<Vec<u8>, i32> = match opcode {
            // FORGET, BATCH_FORGET, INTERRUPT: no answer.
            2 | 42 | 36 => continue,
            // INIT: 7.31, nothing offered.
            26 => {
                let mut init = [0u8; 64];
                init[0..4].copy_from_slice(&7u32.to_ne_bytes());
                init[4..8].copy_from_slice(&31u32.to_ne_bytes());
                init[20..24].copy_from_slice(&4096u32.to_ne_bytes());
                init[24..28].copy_from_slice(&1u32.to_ne_bytes());
                Ok(init.to_vec())
            }
            // LOOKUP of disk.img in the root: fuse_entry_out, nothing cached.
            1 if nodeid == 1 && buf[40..n].starts_with(b"disk.img\0") => {
                let mut e = vec![0u8; 40];
                e[0..8].copy_from_slice(&2u64.to_ne_bytes());
                e.extend_from_slice(&attr(2));
                Ok(e)
            }
            1 => Err(nix::libc::ENOENT),
            // GETATTR: fuse_attr_out, nothing cached.
            3 => {
                let mut a = vec![0u8; 16];
                a.extend_from_slice(&attr(nodeid));
                Ok(a)
            }
            // OPEN, OPENDIR: fuse_open_out.
            14 | 27 => Ok(vec![0u8; 16]),
            // READ: what the file holds, up to its end.
            15 => {
                let (offset, size) = (long(48), u64::from(word(56)));
                let len = FUSE_IMAGE_SIZE.saturating_sub(offset).min(size);
                let at = offset.min(FUSE_IMAGE_SIZE) as usize;
                Ok(image[at..at + len as usize].to_vec())
            }
            16 if failing => Err(nix::libc::EIO),
            // WRITE (fuse_write_in, 40 bytes, then the data): kept within
            // the file's size; fuse_write_out says how much.
            16 => {
                let (offset, size) = (long(48), word(56) as usize);
                let data = &buf[80..n.min(80 + size)];
                let at = offset.min(FUSE_IMAGE_SIZE) as usize;
                let len = data.len().min(image.len() - at);
                image[at..at + len].copy_from_slice(&data[..len]);
                let mut out = vec![0u8; 8];
                out[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
                Ok(out)
            }
            // FLUSH, RELEASE, RELEASEDIR.
            25 | 18 | 29 => Ok(Vec::new()),
            _ => Err(nix::libc::ENOSYS),
        };
        let (error, body) = match body {
            Ok(body) => (0i32, body),
            Err(errno) => (-errno, Vec::new()),
        };
        let mut reply = Vec::with_capacity(16 + body.len());
        reply.extend_from_slice(&(16 + body.len() as u32).to_ne_bytes());
        reply.extend_from_slice(&error.to_ne_bytes());
        reply.extend_from_slice(&unique.to_ne_bytes());
        reply.extend_from_slice(&body);
        let _ = rustix::io::write(device, &reply);
    }
}

/// A loop device over a file on a user's FUSE filesystem whose daemon
/// then reads every request and answers none (the loop driver asks it for
/// the file's attributes, and that wait SIGKILL does not end): `--all
/// --timeout 3` over an unrelated tmpfs returns within its deadline, the
/// tmpfs shut down. Before, the scan for loop devices looked the backing
/// file up by its path and hung for ever in the lookup.
fn a_loop_over_a_fuse_file_whose_daemon_reads_and_never_answers() {
    let timeout = Duration::from_secs(3);
    let s = Scratch::new("fuse-reading-loop");
    let fuse_at = s.dir("outside/fuse");
    let mut fuse = ReadingFuse::mount(&fuse_at);
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show", "--read-only"])
            .arg(fuse_at.join("disk.img")),
    );
    let lo = LoopExt4 {
        device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
    };
    fuse.go_silent();
    let all = s.dir("all");
    let t = s.dir("all/t");
    mount_tmpfs(&t);
    let mut args = vec![
        OsStr::new("--all"),
        OsStr::new("--include"),
        all.as_os_str(),
    ];
    args.extend(["--timeout", "3s", "--json"].map(OsStr::new));
    // SIGKILL does not end a wait for an answer the daemon has read: at
    // the bound, the daemon is killed, which aborts the connection.
    let run = umw_rescued(&s, &args, HUNG_KILL, || drop(fuse));
    eprintln!(
        "    --all --timeout 3s, a loop over a file of a FUSE daemon that reads and never answers: exit {} in {:.2} s",
        run.code,
        run.elapsed.as_secs_f64()
    );
    // The daemon is gone (the connection aborted); a child of the command
    // given up on it may hold the loop device a moment longer.
    detach_loop_when_free(&lo.device, Duration::from_secs(10));
    assert!(
        !loop_bound(&lo.device),
        "{} left bound",
        lo.device.display()
    );
    drop(lo);
    assert_within(&run, timeout, "--all beside a loop over a silent FUSE file");
    assert_code(&run, EXIT_OK, "--all over an unrelated tmpfs");
    assert!(!is_mounted(&t), "the tmpfs is still mounted");
}

/// Issue 25 item 3: a step that sleeps in the kernel past SIGKILL. A
/// `fuseblk` filesystem (ntfs-3g, exfat-fuse) whose daemon reads every
/// request and answers none: its unmount, made in a child process, sends
/// `FUSE_DESTROY` once the mount is detached and waits for the answer
/// uninterruptibly. At the deadline the child was killed and then reaped
/// with a blocking wait, which lasted until the daemon died (the test's
/// rescue at 20 s). Now the child is given up one second after SIGKILL:
/// the single target and `--all` end within their `--timeout` plus a
/// grace, the filesystem "detached, shutdown not confirmed" (exit 3).
fn an_unmount_asleep_past_sigkill_does_not_outlast_the_timeout() {
    let timeout = Duration::from_secs(2);
    let mut failed = Vec::new();
    for form in ["single", "--all"] {
        let s = Scratch::new(&format!("fuseblk-silent-{}", form.trim_start_matches('-')));
        let image = s.path("blk.img");
        fs::File::create(&image).unwrap().set_len(1 << 20).unwrap();
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image),
        );
        let lo = LoopExt4 {
            device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
        };
        let m = s.dir("all/m");
        let mut fuse = ReadingFuse::mount_blk(&m, &lo.device);
        // A request waits for FUSE_INIT's answer: after it, the kernel
        // knows the connection set up and will send FUSE_DESTROY.
        fs::metadata(m.join(".")).unwrap();
        fuse.go_silent();
        let mut args = match form {
            "--all" => vec![
                OsStr::new("--all"),
                OsStr::new("--include"),
                s.dir.as_os_str(),
            ],
            _ => vec![m.as_os_str()],
        };
        args.extend(["--mode", "fallback", "--timeout", "2s", "--json"].map(OsStr::new));
        let run = umw_rescued(&s, &args, HUNG_KILL, || drop(fuse));
        eprintln!(
            "    {form} --timeout 2s, fuseblk whose daemon reads DESTROY and never answers: exit {} in {:.2} s",
            run.code,
            run.elapsed.as_secs_f64()
        );
        let checked = catch_unwind(AssertUnwindSafe(|| {
            assert_within(&run, timeout, form);
            assert_code(&run, EXIT_UNCONFIRMED, form);
            assert!(
                run.stderr.contains("sleeps in the kernel past SIGKILL"),
                "{form}: {}",
                run.stderr
            );
            assert!(!is_mounted(&m), "{form}: still mounted");
        }));
        // The daemon gone, the child given up ends and lets the loop
        // device go.
        detach_loop_when_free(&lo.device, Duration::from_secs(10));
        drop(lo);
        if checked.is_err() {
            failed.push(form);
        }
    }
    assert!(failed.is_empty(), "outlasted the timeout: {failed:?}");
}

/// Issue 25 item 3: the steps made in this process for a local
/// filesystem. An ext4 on a loop device whose backing file is served by a
/// FUSE daemon that then reads every request and answers none: the loop
/// device's writes never complete, as on a disk that stops answering, and
/// the final writeback sleeps uninterruptibly. `umount2` (a single
/// target), the read-only remount of `-r` on a busy mount, and `--all`
/// (its read-only remount before the unmount, then the unmount) were made
/// in this process and hung until the daemon died (the test's rescue at
/// 20 s). Now each is made in a child, given up at the deadline, and
/// `--all` tries no other step on a filesystem it gave a step up on:
/// every form ends within its `--timeout` plus a grace.
fn a_disk_whose_io_never_completes_does_not_outlast_the_timeout() {
    let timeout = Duration::from_secs(2);
    let mut failed = Vec::new();
    for form in ["single", "-r", "--all"] {
        let s = Scratch::new(&format!("stalled-disk-{}", form.trim_start_matches('-')));
        let fuse_at = s.dir("outside/fuse");
        let mut fuse = ReadingFuse::mount(&fuse_at);
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(fuse_at.join("disk.img")),
        );
        let lo = LoopExt4 {
            device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
        };
        run_ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&lo.device));
        let m = s.dir("all/m");
        let all = s.path("all");
        lo.mount(&m);
        // Dirty data for the final writeback; a holder for `-r`.
        fs::write(m.join("f"), vec![7u8; 64 << 10]).unwrap();
        let _holder = (form == "-r").then(|| fs::File::open(m.join("f")).unwrap());
        fuse.go_silent();
        let mut args = match form {
            "--all" => vec![
                OsStr::new("--all"),
                OsStr::new("--include"),
                all.as_os_str(),
            ],
            "-r" => vec![OsStr::new("-r"), m.as_os_str()],
            _ => vec![m.as_os_str()],
        };
        args.extend(["--mode", "fallback", "--timeout", "2s"].map(OsStr::new));
        let run = umw_rescued(&s, &args, HUNG_KILL, || drop(fuse));
        eprintln!(
            "    {form} --timeout 2s, ext4 on a disk whose writes never complete: exit {} in {:.2} s",
            run.code,
            run.elapsed.as_secs_f64()
        );
        let checked = catch_unwind(AssertUnwindSafe(|| {
            assert_within(&run, timeout, form);
            assert_ne!(run.code, EXIT_OK, "{form}: {}{}", run.stdout, run.stderr);
            assert!(
                run.stderr.contains("sleeps in the kernel past SIGKILL"),
                "{form}: {}",
                run.stderr
            );
        }));
        drop(_holder);
        // The daemon gone (killed by the rescue, or now), the writes fail
        // and every sleep ends: the filesystem goes, then the device.
        let _ = rustix::mount::unmount(&m, UnmountFlags::DETACH);
        detach_loop_when_free(&lo.device, Duration::from_secs(20));
        drop(lo);
        if let Err(e) = checked {
            eprintln!("{form}: {:?}", e.downcast_ref::<String>());
            failed.push(form);
        }
    }
    assert!(failed.is_empty(), "outlasted the timeout: {failed:?}");
}

/// An unmount helper (`/sbin/umount.TYPE`, here a script on an overlay of
/// /usr/sbin in a namespace of its own, for ramfs) in two ways a real one
/// can behave. (1) It prints to its standard output, as umount.nfs does:
/// that went into the command's, and `--json`'s output was no longer
/// JSON; now it goes to standard error. (2) It sleeps in the kernel past
/// SIGKILL (its read of a file whose FUSE daemon reads every request and
/// answers none, as umount.nfs in the writeback to a server that is
/// gone): killed at the deadline, it was reaped with a blocking wait,
/// which lasted until the daemon died (the test's rescue at 20 s); now it
/// is given up after a grace, the target "state unknown" (exit 3).
fn an_unmount_helper_keeps_out_of_the_report_and_within_the_timeout() {
    let s = Scratch::new("helper");
    let fuse_at = s.dir("fuse");
    let mut fuse = ReadingFuse::mount(&fuse_at);
    let helpers = s.dir("helpers");
    let m = s.dir("m");
    let script = |body: &str| format!("#!/bin/sh\n{body}\n");
    let stalled = fuse_at.join("disk.img");
    let mut failed = Vec::new();
    for (what, helper, args) in [
        (
            "a helper that prints",
            script("echo helper-output; exec umount -i \"$@\""),
            "--json",
        ),
        (
            "a helper asleep past SIGKILL",
            script(&format!("exec cat {} >/dev/null", stalled.display())),
            "--timeout 2s",
        ),
    ] {
        if what == "a helper asleep past SIGKILL" {
            fuse.go_silent();
        }
        fs::write(helpers.join("umount.ramfs"), helper).unwrap();
        fs::set_permissions(
            helpers.join("umount.ramfs"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let shell = format!(
            "mount -t ramfs umw-helper {m} && \
             mount -t overlay umw-helpers -o lowerdir={h}:/usr/sbin /usr/sbin && \
             {BIN} {args} {m}; echo rc=$? >&2",
            m = m.display(),
            h = helpers.display()
        );
        let (out, err) = (s.path("helper.stdout"), s.path("helper.stderr"));
        let start = Instant::now();
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &shell])
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut status = None;
        while status.is_none() && start.elapsed() < HUNG_KILL {
            sleep(Duration::from_millis(20));
            status = child.try_wait().unwrap();
        }
        let elapsed = start.elapsed();
        if status.is_none() {
            // The rescue: the daemon's death ends the helper's sleep.
            let _ = nix::sys::signal::kill(fuse.daemon, nix::sys::signal::Signal::SIGKILL);
            let _ = child.kill();
        }
        let _ = child.wait();
        let (stdout, stderr) = (
            fs::read_to_string(&out).unwrap_or_default(),
            fs::read_to_string(&err).unwrap_or_default(),
        );
        eprintln!(
            "    {what}: {:.2} s: {}",
            elapsed.as_secs_f64(),
            stderr.trim()
        );
        let ok = match what {
            "a helper that prints" => {
                !stdout.contains("helper-output")
                    && stderr.contains("helper-output")
                    && stderr.contains("rc=0")
                    && stdout.trim_start().starts_with('{')
            }
            _ => {
                elapsed < Duration::from_secs(2) + HUNG_GRACE
                    && stderr.contains("rc=3")
                    && stderr.contains("running the unmount helper")
            }
        };
        if !ok {
            eprintln!("{what}: stdout {stdout:?}");
            failed.push(what);
        }
    }
    drop(fuse);
    assert!(failed.is_empty(), "{failed:?}");
}

/// `LABEL=` carried by two devices: an ext4 image and its copy (a cloned
/// disk), on two loop devices. With only the copy mounted, the tag names
/// it: unmounted, exit 0. Before, the first device blkid(8) listed was
/// taken (the image not mounted): "not mounted", exit 32, the copy left
/// mounted; in the CI run of December 5 the compat test's own label met
/// another run's device so. With both mounted the tag does not say which:
/// refused, exit 32, both left mounted.
fn a_label_carried_by_two_devices_names_the_mounted_one() {
    let s = Scratch::new("two-labels");
    let label = format!("umw-two-{}", std::process::id() % 100_000);
    let image = s.path("d.img");
    fs::File::create(&image).unwrap().set_len(16 << 20).unwrap();
    run_ok(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", &label])
            .arg(&image),
    );
    let copy = s.path("e.img");
    fs::copy(&image, &copy).unwrap();
    let attach = |file: &Path| {
        let out = run_ok(Command::new("losetup").args(["--find", "--show"]).arg(file));
        LoopExt4 {
            device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
        }
    };
    let (first, second) = (attach(&image), attach(&copy));
    let (m, n) = (s.dir("m"), s.dir("n"));
    second.mount(&n);
    let tag = format!("LABEL={label}");
    let run = umw([OsStr::new(&tag)]);
    assert_code(&run, EXIT_OK, "the tag of the one device mounted");
    assert!(!is_mounted(&n), "the copy is still mounted");
    first.mount(&m);
    second.mount(&n);
    let run = umw([OsStr::new(&tag)]);
    let left = (is_mounted(&m), is_mounted(&n));
    let _ = rustix::mount::unmount(&m, UnmountFlags::empty());
    let _ = rustix::mount::unmount(&n, UnmountFlags::empty());
    assert_code(&run, EXIT_FAILURE, "a tag two mounted filesystems carry");
    assert!(
        run.stderr.contains("2 mounted filesystems carry this tag"),
        "{}",
        run.stderr
    );
    assert_eq!(left, (true, true), "one of them was unmounted");
}

/// Issue 26 item 2, I/O errors during the final writeback: an ext4 on a
/// loop device whose backing file's daemon answers every write with EIO
/// from the moment before the unmount, dirty data in the page cache. The
/// filesystem shuts down all the same (the claim is given up after a
/// failed `->put_super()`): before, a plain "shut down", silent, in
/// `--json` nothing; now the report quotes the kernel log's errors about
/// its device ("shut down, with errors ..." on standard error, and
/// `kernel_errors` in `--json`), exit 0 still: it did shut down.
fn a_final_writeback_that_fails_is_not_a_plain_shut_down() {
    let s = Scratch::new("failing-disk");
    let fuse_at = s.dir("outside/fuse");
    let mut fuse = ReadingFuse::mount(&fuse_at);
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show"])
            .arg(fuse_at.join("disk.img")),
    );
    let lo = LoopExt4 {
        device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
    };
    run_ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&lo.device));
    let m = s.dir("m");
    lo.mount(&m);
    fs::write(m.join("f"), vec![7u8; 256 << 10]).unwrap();
    fuse.fail_writes();
    let run = umw_bounded(
        &[
            OsStr::new("--mode"),
            OsStr::new("fallback"),
            OsStr::new("--timeout"),
            OsStr::new("10s"),
            OsStr::new("--json"),
            m.as_os_str(),
        ],
        HUNG_KILL,
    );
    let left = is_mounted(&m);
    let _ = rustix::mount::unmount(&m, UnmountFlags::DETACH);
    drop(fuse);
    drop(lo);
    eprintln!(
        "    a failing final writeback: exit {}: {}",
        run.code,
        run.stderr.trim()
    );
    assert!(!left, "still mounted: {}{}", run.stdout, run.stderr);
    assert_code(&run, EXIT_OK, "a filesystem shut down with write errors");
    assert!(
        run.stderr
            .contains("shut down, with errors in the kernel log"),
        "{}",
        run.stderr
    );
    let errors = field(&run.stdout, "kernel_errors").unwrap_or_default();
    assert!(
        errors.contains("error"),
        "kernel_errors: {errors:?}: {}",
        run.stdout
    );
}

/// Issue 26 item 2, a frozen filesystem (`fsfreeze -f`): on this kernel a
/// frozen superblock holds an active reference to itself, so umount(2)
/// only detaches it, and it stays alive and frozen, with no mount left to
/// thaw it through. Before, the single target and `--all` waited until
/// their `--timeout` (exit 3, "timed out after 5s", the loop device held
/// for ever); now the filesystem is thawed first (FITHAW, through the
/// checked handle on its root), shut down (exit 0), and the report says it
/// was frozen (`thawed` in `--json`).
fn a_frozen_filesystem_is_thawed_and_shut_down() {
    let mut failed = Vec::new();
    for form in ["single", "--all"] {
        let s = Scratch::new(&format!("frozen-{}", form.trim_start_matches('-')));
        let lo = LoopExt4::new(&s, 32);
        let m = s.dir("all/m");
        lo.mount(&m);
        fs::write(m.join("f"), vec![1u8; 1 << 20]).unwrap();
        run_ok(Command::new("fsfreeze").arg("-f").arg(&m));
        let all = s.path("all");
        let mut args = match form {
            "--all" => vec![
                OsStr::new("--all"),
                OsStr::new("--include"),
                all.as_os_str(),
            ],
            _ => vec![m.as_os_str()],
        };
        args.extend(["--mode", "fallback", "--timeout", "5s", "--json"].map(OsStr::new));
        let run = umw_bounded(&args, HUNG_KILL);
        eprintln!(
            "    {form}, a frozen ext4: exit {} in {:.2} s",
            run.code,
            run.elapsed.as_secs_f64()
        );
        let ok = run.code == EXIT_OK
            && run.stderr.contains("it was frozen (fsfreeze): thawed")
            && field(&run.stdout, "thawed") == Some("true")
            && !is_mounted(&m);
        if !ok {
            eprintln!("{form}: {}{}", run.stdout, run.stderr);
            failed.push(form);
            // The superblock outlived its mount, frozen: mount its device
            // again (the same superblock), thaw it there, unmount it.
            let again = s.dir("again");
            let _ = rustix::mount::unmount(&m, UnmountFlags::DETACH);
            if rustix::mount::mount(&lo.device, &again, "ext4", MountFlags::empty(), None).is_ok() {
                let _ = Command::new("fsfreeze").arg("-u").arg(&again).status();
                let _ = rustix::mount::unmount(&again, UnmountFlags::empty());
            }
        }
        drop(lo);
    }
    assert!(failed.is_empty(), "{failed:?}");
}

/// `-N`: root enters a mount namespace that someone else made, whose
/// /usr/sbin (so /sbin/umount.TYPE) and /usr/local/sbin (first in root's
/// PATH, so blkid) they mounted with programs of their own. Before, root
/// ran them: `umount-wait -N PID DIR` ran their umount.ramfs for a ramfs
/// there (and, once tags were tags under -N, `LABEL=x` their blkid). Now
/// no unmount helper runs under -N, and a tag is refused there (exit 1):
/// that namespace's /dev and udev links are its maker's too.
fn no_program_of_another_namespace_runs_under_n() {
    let s = Scratch::new("ns-programs");
    let m = s.dir("m");
    let fake = s.dir("fake");
    let marker = s.path("ran");
    let program = format!("#!/bin/sh\necho \"$0 $*\" >>{}\nexit 0\n", marker.display());
    for name in ["umount.ramfs", "blkid"] {
        fs::write(fake.join(name), &program).unwrap();
        fs::set_permissions(
            fake.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let ready = s.path("ready");
    let script = format!(
        "mount -t ramfs umw-ns {m} && \
         mount -t overlay umw-ns-sbin -o lowerdir={f}:/usr/sbin /usr/sbin && \
         mount --bind {f} /usr/local/sbin && touch {r} && exec sleep 60",
        m = m.display(),
        f = fake.display(),
        r = ready.display()
    );
    let mut holder = Holder::spawn(Command::new("unshare").args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the namespace was not made");
        sleep(Duration::from_millis(10));
    }
    let pid = holder.id().to_string();
    let by_dir = umw([OsStr::new("-N"), OsStr::new(&pid), m.as_os_str()]);
    // root's PATH as a login shell has it, /usr/local/sbin first.
    let by_tag = run_command(
        Command::new(BIN)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .args(["-N", &pid, "LABEL=umw-no-such-label"]),
    );
    let ran = fs::read_to_string(&marker).unwrap_or_default();
    holder.kill();
    assert!(ran.is_empty(), "root ran the namespace's programs: {ran}");
    assert_code(&by_dir, EXIT_OK, "a ramfs in the other namespace");
    assert_code(&by_tag, 1, "a tag under -N");
    assert!(
        by_tag
            .stderr
            .contains("not looked up in another mount namespace"),
        "{}",
        by_tag.stderr
    );
}

/// A tag without udev's link is looked up by blkid(8), which reads every
/// block device: a loop device over a file of a FUSE daemon that reads
/// every request and answers none (a user can make one with udisks) held
/// `umount-wait LABEL=x` for ever, --timeout or not (security review of
/// December 5). Now blkid is given up after 5 s: exit 2, untouched.
fn a_tag_probe_over_a_device_that_does_not_answer_is_given_up() {
    let s = Scratch::new("tag-probe");
    let fuse_at = s.dir("fuse");
    let mut fuse = ReadingFuse::mount(&fuse_at);
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show", "--read-only"])
            .arg(fuse_at.join("disk.img")),
    );
    let lo = LoopExt4 {
        device: PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()),
    };
    fuse.go_silent();
    let run = umw_rescued(
        &s,
        &[
            OsStr::new("--timeout"),
            OsStr::new("2s"),
            OsStr::new("LABEL=umw-nowhere"),
        ],
        HUNG_KILL,
        || drop(fuse),
    );
    eprintln!(
        "    LABEL= beside a device that does not answer: exit {} in {:.2} s",
        run.code,
        run.elapsed.as_secs_f64()
    );
    detach_loop_when_free(&lo.device, Duration::from_secs(10));
    drop(lo);
    assert!(
        run.elapsed < Duration::from_secs(5) + HUNG_GRACE,
        "held {:.1} s: {}",
        run.elapsed.as_secs_f64(),
        run.stderr
    );
    assert!(
        run.stderr.contains("blkid did not finish"),
        "{}",
        run.stderr
    );
}

/// Item 9: a user's FUSE mount without `allow_other` (a plain
/// `fusermount`) refuses root: `statx` with a type and mount id mask got
/// EACCES, so a single target was "permission denied" and `--all` left it
/// mounted (and made its parent read-only). umount(8) removes it. Now
/// root unmounts it too: statx is asked again with an empty mask, which
/// FUSE answers for anyone.
fn a_users_fuse_mount_without_allow_other_is_unmounted_by_root() {
    for all in [false, true] {
        let s = Scratch::new("fuse-private");
        let m = s.dir("m");
        let fuse = HungFuse::mount_for(&m, Path::new("umw-private"), Some(NOBODY));
        let run = match all {
            false => umw_bounded(
                &[
                    OsStr::new("--timeout"),
                    OsStr::new("3s"),
                    OsStr::new("--json"),
                    m.as_os_str(),
                ],
                Duration::from_secs(20),
            ),
            true => umw_bounded(
                &[
                    OsStr::new("--all"),
                    OsStr::new("--include"),
                    s.dir.as_os_str(),
                    OsStr::new("--timeout"),
                    OsStr::new("3s"),
                    OsStr::new("--json"),
                ],
                Duration::from_secs(20),
            ),
        };
        let left = is_mounted(&m);
        drop(fuse);
        let what = if all { "--all" } else { "a single target" };
        assert!(!left, "{what}: left mounted: {}{}", run.stdout, run.stderr);
        assert!(
            [EXIT_OK, EXIT_UNCONFIRMED].contains(&run.code),
            "{what}: exit {}: {}{}",
            run.code,
            run.stdout,
            run.stderr
        );
    }
}

/// Issue 25 item 2: what holds the filesystem is not visible from where
/// the command runs. In a container (a new mount and pid namespace, /proc
/// remounted) a tmpfs volume whose filesystem stays mounted outside; and
/// `/proc` itself in a private mount namespace (the proc superblock lives
/// on in the parent namespace, and nothing is visible any more). Without
/// `--timeout` the wait ends after a grace, "detached, not confirmed:
/// held where this process cannot see" (exit 3). Before, both waited for
/// ever (killed at 20 s here).
fn a_filesystem_held_out_of_view_is_not_waited_for_for_ever() {
    let s = Scratch::new("out-of-view");
    let vol = s.dir("vol");
    mount_tmpfs(&vol);
    let in_container = format!("{BIN} {vol}; echo rc=$?", vol = vol.display());
    let in_private_namespace = format!("{BIN} /proc; echo rc=$?");
    for (what, unshare, script) in [
        (
            "a container's volume",
            &[
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
            ][..],
            in_container,
        ),
        (
            "/proc",
            &["--mount", "--propagation", "private"][..],
            in_private_namespace,
        ),
    ] {
        let run = run_command(
            Command::new("timeout")
                .args(["-s", "KILL", "20", "unshare"])
                .args(unshare)
                .args(["sh", "-c", &script]),
        );
        assert!(
            run.stdout.contains("rc=3"),
            "{what}: {} after {:.1} s: {}{}",
            run.code,
            run.elapsed.as_secs_f64(),
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains("held where this process cannot see"),
            "{what}: {}",
            run.stderr
        );
    }
    assert!(is_mounted(&vol), "the volume outside was unmounted");
    rustix::mount::unmount(&vol, UnmountFlags::empty()).unwrap();
}

/// Item 8: a user stretches the deadline. A process maps 20 000 hard links
/// of one file on the target (no descriptor kept): the holder scan, which
/// compared each mapping with a list of those seen, made `--all --timeout
/// 3s` take 17.0 s here on a quiet host (the release build of 94c10b6,
/// against 0.46 s now). The scan is linear now and ends at its deadline:
/// the run stays within 3 times its deadline.
fn all_many_mappings_do_not_stretch_the_deadline() {
    let s = Scratch::new("mappings");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let script = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
d = sys.argv[1]
base = os.path.join(d, "f")
with open(base, "wb") as f: f.write(b"x" * 4096)
for i in range(20000):
    p = os.path.join(d, "link%d" % i)
    os.link(base, p)
    fd = os.open(p, os.O_RDONLY)
    assert libc.mmap(None, 4096, 1, 1, fd, 0) not in (None, ctypes.c_void_p(-1).value)
    os.close(fd)
print("ready", flush=True)
time.sleep(600)
"#;
    let mut holder = Holder::spawn(
        Command::new("python3")
            .args(["-c", script])
            .arg(&m)
            .stdout(Stdio::piped()),
    );
    // Its "ready" line: every mapping made.
    let mut ready = String::new();
    let mut out = std::io::BufReader::new(holder.child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut ready).unwrap();
    assert_eq!(ready.trim(), "ready", "the mapping process did not start");
    let run = umw_all(&s.dir, &["--timeout", "3s"]);
    holder.stop();
    let _ = rustix::mount::unmount(&m, UnmountFlags::DETACH);
    eprintln!(
        "    --all --timeout 3s, 20 000 mappings held: {:.2} s, exit {}",
        run.elapsed.as_secs_f64(),
        run.code
    );
    assert!(
        run.elapsed < Duration::from_secs(9),
        "--all --timeout 3s took {:.1} s: {}{}",
        run.elapsed.as_secs_f64(),
        run.stdout,
        run.stderr
    );
}

// ------------------------------------------------------- without /proc

/// An empty tmpfs over `/proc` in this process's private mount namespace,
/// as in an initramfs, a chroot or a container without `/proc`; `/proc`
/// is uncovered on drop. Commands run meanwhile see no `/proc` either.
struct NoProc;

impl NoProc {
    fn cover() -> NoProc {
        rustix::mount::mount("umw-no-proc", "/proc", "tmpfs", MountFlags::empty(), None)
            .unwrap_or_else(|e| panic!("covering /proc: {e}"));
        assert!(!Path::new("/proc/self").exists(), "/proc still shows");
        NoProc
    }
}

/// Whether the kernel has listmount(2) (Linux 6.8; the same number on
/// every architecture): asked with no buffer, it fails with EFAULT or
/// EINVAL where it exists.
fn kernel_has_listmount() -> bool {
    // SAFETY: null pointers and a zero count; the kernel writes nothing.
    let r = unsafe {
        nix::libc::syscall(
            458,
            std::ptr::null::<u8>(),
            std::ptr::null_mut::<u64>(),
            0usize,
            0u32,
        )
    };
    r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(nix::libc::ENOSYS)
}

impl Drop for NoProc {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount("/proc", UnmountFlags::DETACH);
    }
}

/// Issue 22 item 8: without `/proc` every run exited 2 ("reading
/// /proc/self/mountinfo") while umount(8) unmounted. The mount table comes
/// from listmount(2) and the unmount goes through the checked handle:
/// tmpfs and ext4 on a loop device unmounted and confirmed shut down
/// (exit 0, the device free right after), a symbolic link followed as
/// umount(8) follows it and refused with `--no-follow`.
fn without_proc_targets_are_unmounted_and_confirmed() {
    let s = Scratch::new("noproc-targets");
    let t = s.dir("tmpfs");
    let e = s.dir("ext4");
    let link = s.path("link");
    symlink(&t, &link).unwrap();
    mount_tmpfs(&t);
    let lo = LoopExt4::new(&s, 32);
    lo.mount(&e);
    let (refused, left, by_link, ext4, claimed) = {
        let _no_proc = NoProc::cover();
        let refused = umw([OsStr::new("--no-follow"), link.as_os_str()]);
        let left = umount_wait::sys::stat_target(&t, false).map(|st| st.is_mount_root);
        let by_link = umw([OsStr::new("--json"), link.as_os_str()]);
        let ext4 = umw([OsStr::new("--json"), e.as_os_str()]);
        (refused, left, by_link, ext4, excl_busy(&lo.device))
    };
    assert_ne!(
        refused.code, EXIT_OK,
        "--no-follow LINK: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("symbolic link"),
        "--no-follow LINK: {}",
        refused.stderr
    );
    assert_eq!(left, Ok(true), "--no-follow LINK unmounted its target");
    for (run, what) in [(&by_link, "tmpfs by a link"), (&ext4, "ext4")] {
        assert_code(run, EXIT_OK, what);
        assert_eq!(
            field(&run.stdout, "outcome"),
            Some("shut_down"),
            "{what}: {}",
            run.stdout
        );
    }
    assert!(!claimed, "ext4: the device was still claimed after return");
    assert!(
        !is_mounted(&t) && !is_mounted(&e),
        "a target is still mounted"
    );
}

/// Issue 25: whether `/proc/self/fd` names handles is asked once for a
/// run's targets, and again after the run unmounts `/proc` (or above or
/// below it). Here `/proc` is a procfs stacked on an empty tmpfs
/// ([`NoProc`]); the run unmounts it, then a tmpfs: that one goes
/// through its parent's handle without `/proc` and is confirmed shut
/// down, as `/proc` was. With the first answer kept, its unmount would have been
/// made through a `/proc/self/fd` path that leads nowhere any more.
fn a_run_that_unmounts_proc_goes_on_without_it() {
    let s = Scratch::new("unmounts-proc");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let (run, proc_left) = {
        let _no_proc = NoProc::cover();
        rustix::mount::mount("proc", "/proc", "proc", MountFlags::empty(), None)
            .unwrap_or_else(|e| panic!("mounting procfs over the tmpfs: {e}"));
        assert!(Path::new("/proc/self").exists());
        let run = umw([
            OsStr::new("--timeout"),
            OsStr::new("1s"),
            OsStr::new("--json"),
            OsStr::new("/proc"),
            m.as_os_str(),
        ]);
        let proc_left = Path::new("/proc/self").exists();
        if proc_left {
            let _ = rustix::mount::unmount("/proc", UnmountFlags::DETACH);
        }
        (run, proc_left)
    };
    assert!(!proc_left, "/proc was left mounted: {}", run.stderr);
    assert_code(&run, EXIT_OK, "/proc, then a tmpfs");
    assert_eq!(
        field(line_of(&run, &m), "outcome"),
        Some("shut_down"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(!is_mounted(&m), "{}", run.stderr);
}

/// Without `/proc` the holder scan cannot run: a busy target is left
/// untouched (exit 32) and a lazy unmount that cannot be confirmed ends
/// "detached, shutdown not confirmed" (exit 3), each saying that `/proc`
/// was missing, never exit 2. Without `--timeout`, the 5 s grace ends the
/// wait with a reason that names `/proc`.
fn without_proc_a_held_filesystem_says_what_was_missing() {
    let s = Scratch::new("noproc-held");
    let m = s.dir("m");
    mount_tmpfs(&m);
    let file = m.join("held");
    fs::write(&file, b"x").unwrap();
    let mut holder = hold_open(&file);
    let (busy, still_mounted, lazy) = {
        let _no_proc = NoProc::cover();
        let busy = umw([m.as_os_str()]);
        let still_mounted = umount_wait::sys::stat_target(&m, false).map(|st| st.is_mount_root);
        let lazy = umw([OsStr::new("-l"), m.as_os_str()]);
        (busy, still_mounted, lazy)
    };
    holder.release();
    assert_code(&busy, EXIT_FAILURE, "busy without /proc");
    assert!(
        busy.stderr.contains("target is busy (untouched)")
            && busy.stderr.contains("/proc is not mounted"),
        "busy: {}",
        busy.stderr
    );
    assert_eq!(still_mounted, Ok(true), "the busy target was unmounted");
    assert_code(&lazy, EXIT_UNCONFIRMED, "-l without /proc");
    assert!(
        lazy.stderr.contains("detached, shutdown not confirmed")
            && lazy
                .stderr
                .contains("/proc is not mounted, so what holds it could not be looked for"),
        "-l: {}",
        lazy.stderr
    );
    assert!(!is_mounted(&m), "-l left the mount in the table");
}

/// `--all` without `/proc`: where the kernel has listmount(2) (6.8), the
/// same run as with it (a tmpfs, ext4 on a loop device and a tmpfs on
/// that, deepest first, every one confirmed, the device free); where it
/// has not, refused untouched (exit 2) with `/proc` named.
fn without_proc_all_lists_the_mounts_or_refuses() {
    let s = Scratch::new("noproc-all");
    let top = s.dir("top");
    mount_tmpfs(&top);
    let e = top.join("ext4");
    fs::create_dir(&e).unwrap();
    let lo = LoopExt4::new(&s, 32);
    lo.mount(&e);
    let inner = e.join("inner");
    fs::create_dir(&inner).unwrap();
    mount_tmpfs(&inner);
    let (run, claimed) = {
        let _no_proc = NoProc::cover();
        let run = umw([
            OsStr::new("--all"),
            OsStr::new("--include"),
            top.as_os_str(),
        ]);
        (run, excl_busy(&lo.device))
    };
    if !kernel_has_listmount() {
        assert_code(&run, EXIT_SYSTEM, "--all without /proc nor listmount");
        assert!(run.stderr.contains("/proc"), "{}", run.stderr);
        assert!(is_mounted(&top) && is_mounted(&e) && is_mounted(&inner));
        return;
    }
    assert_code(&run, EXIT_OK, "--all without /proc");
    let shut_down = run.stderr.matches("unmounted; shut down").count();
    assert_eq!(shut_down, 3, "{}", run.stderr);
    let order: Vec<usize> = [&inner, &e, &top]
        .iter()
        .map(|m| {
            run.stderr
                .find(&format!("{} unmounted", m.display()))
                .unwrap()
        })
        .collect();
    assert!(order.is_sorted(), "not deepest first: {}", run.stderr);
    assert!(!claimed, "the device was still claimed after return");
    assert!(!is_mounted(&top) && !is_mounted(&e) && !is_mounted(&inner));
}

/// [`an_exchange_between_check_and_unmount_cannot_redirect_it`] without
/// `/proc`: the parent directory's handle cannot be named
/// `/proc/self/fd/N`, and the unmount is made from that handle
/// (`fchdir(2)`): the mount checked is still the one unmounted.
fn without_proc_an_exchange_cannot_redirect_the_unmount() {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use umount_wait::sys::{MountPoint, UnmountOptions};
    let s = Scratch::new("noproc-exchange");
    let other = s.dir("other");
    let other_boot = s.dir("other/boot");
    let target = s.dir("d/boot");
    let d = s.dir("d");
    let link = s.path("evil");
    symlink(&other, &link).unwrap();
    mount_tmpfs(&other_boot);
    mount_tmpfs(&target);
    let cwd = std::env::current_dir().unwrap();
    let result = {
        let _no_proc = NoProc::cover();
        let mount_point = MountPoint::open(&target, false).unwrap();
        assert!(mount_point.stat().unwrap().is_mount_root);
        renameat_with(CWD, &d, CWD, &link, RenameFlags::EXCHANGE).unwrap();
        let no_follow = UnmountOptions {
            no_follow: true,
            ..Default::default()
        };
        let result = mount_point.unmount(no_follow, umount_wait::sys::proc_fd_usable());
        renameat_with(CWD, &d, CWD, &link, RenameFlags::EXCHANGE).unwrap();
        result
    };
    let (selected_left, other_left) = (is_mounted(&target), is_mounted(&other_boot));
    for m in [&target, &other_boot] {
        let _ = rustix::mount::unmount(m, UnmountFlags::empty());
    }
    result.unwrap();
    assert_eq!(
        std::env::current_dir().unwrap(),
        cwd,
        "the working directory moved"
    );
    assert!(other_left, "the unselected mount was unmounted");
    assert!(!selected_left, "the mount checked is still mounted");
}

/// [`a_mount_moved_after_resolution_is_left_alone`] without `/proc`: the
/// table listed (listmount(2)), the mount moved and another put at its
/// path is refused (`moved or replaced`), both left mounted.
fn without_proc_a_mount_moved_after_resolution_is_left_alone() {
    use umount_wait::{target, ErrorKind, State, WaitPath};
    if !kernel_has_listmount() {
        eprintln!("    no listmount(2) on this kernel: not checked");
        return;
    }
    let s = Scratch::new("noproc-moved");
    let p = s.dir("p");
    let q = s.dir("q");
    mount_tmpfs(&p);
    let result = {
        let _no_proc = NoProc::cover();
        let mounts = mountinfo::read(None).unwrap();
        let t = target::resolve(&p, true, &mounts).unwrap();
        rustix::mount::mount_move(&p, &q).unwrap();
        mount_tmpfs(&p);
        let options = umount_wait::Options {
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        umount_wait::unmount(&t, WaitPath::Fallback, &options, &|_| {})
    };
    let (at_p, at_q) = (is_mounted(&p), is_mounted(&q));
    let _ = rustix::mount::unmount(&p, UnmountFlags::empty());
    let _ = rustix::mount::unmount(&q, UnmountFlags::empty());
    let error = result.expect_err("acted on the mount at the path");
    assert_eq!(error.kind, ErrorKind::Moved, "{error}");
    assert_eq!(error.state, State::Untouched, "{error}");
    assert!(at_p && at_q, "a mount went (p {at_p}, q {at_q})");
}
