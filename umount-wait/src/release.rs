//! `--all`: what keeps a filesystem busy besides its mounts and its
//! processes, released before it is unmounted: swap files on it, swap on
//! loop devices backed by files on it, and loop devices backed by files on
//! it that nothing mounts (those that are mounted are filesystems of their
//! own, unmounted first and then detached). Each release is confirmed:
//! the swap area gone from `/proc/swaps`, the loop device unbound
//! ([`loopdev::detach`]).

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::io::Errno;

use crate::blockers::{self, Superblock};
use crate::cancel::Cancel;
use crate::loopdev::{self, LoopDetach, LoopDevice, Told};
use crate::mountinfo::{DevId, Mount, Table};
use crate::sys;

/// One thing released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released {
    /// A swap area turned off: a file on the filesystem, or a loop device
    /// backed by one.
    Swap {
        path: PathBuf,
        outcome: Result<(), Errno>,
    },
    /// A loop device backed by a file on the filesystem, detached.
    Loop(LoopDetach),
}

impl Released {
    /// Released and confirmed so.
    pub fn done(&self) -> bool {
        match self {
            Released::Swap { outcome, .. } => outcome.is_ok(),
            Released::Loop(d) => matches!(d.outcome, loopdev::LoopOutcome::Detached { .. }),
        }
    }
}

/// What backs onto a filesystem: swap areas to turn off (files on it,
/// loop devices backed by files on it) and loop devices to detach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backing {
    pub swaps: Vec<PathBuf>,
    pub loops: Vec<LoopDevice>,
}

impl Backing {
    /// Nothing backs onto the filesystem.
    pub fn is_empty(&self) -> bool {
        self.swaps.is_empty() && self.loops.is_empty()
    }
}

/// What may back onto the filesystems of one mount table: the bound loop
/// devices that it does not mount (one that is mounted is a filesystem of
/// its own, which goes first), each with the file the loop driver has
/// open, and the swap areas in use. Read once for a pass of `--all`
/// ([`Backers::read`]) and matched against each filesystem of the pass
/// ([`Backers::of`]): a pass over N filesystems reads sysfs and
/// `/proc/swaps` and starts the child of [`loopdev::backing_files`] once,
/// not N times. What a release in the pass changes concerns only the
/// filesystem it was made for: a loop device or a swap area backs onto
/// one filesystem.
#[derive(Clone, Debug, Default)]
pub struct Backers {
    loops: Vec<(LoopDevice, loopdev::BackingFile)>,
    /// Each swap area, and whether it is a file (else a block device).
    swaps: Vec<(PathBuf, bool)>,
}

impl Backers {
    /// What `mounts` leaves to back onto its filesystems now. A loop
    /// device's backing file is told by what the loop driver has open,
    /// never by its path ([`loopdev::backing_files`], until `deadline`):
    /// one not told in time is left alone.
    pub fn read(mounts: &Table, deadline: Instant) -> Backers {
        let mounted: HashSet<DevId> = mounts.iter().map(|m| m.dev).collect();
        let bound: Vec<LoopDevice> = loopdev::bound()
            .into_iter()
            .filter(|lo| !mounted.contains(&lo.dev))
            .collect();
        let files = loopdev::backing_files(&bound, &mounted, deadline);
        let loops = bound
            .into_iter()
            .zip(files)
            .filter_map(|(lo, told)| match told {
                Told::File(file) => Some((lo, file)),
                Told::Failed | Told::Late => None,
            })
            .collect();
        Backers {
            loops,
            swaps: blockers::swaps(),
        }
    }

    /// What of it backs onto `mount`'s filesystem (`mounts`: the table it
    /// was read with): swap areas to turn off (files on it, loop devices
    /// backed by files on it) and loop devices to detach.
    pub fn of(&self, mount: &Mount, mounts: &Table) -> Backing {
        let sb = Superblock::in_table(mount, mounts);
        let loops: Vec<LoopDevice> = self
            .loops
            .iter()
            .filter(|(_, file)| sb.holds_backing(file))
            .map(|(lo, _)| lo.clone())
            .collect();
        let swaps = self
            .swaps
            .iter()
            .filter(|(path, file)| match file {
                true => sb.holds(path),
                false => loops.iter().any(|lo| &lo.node == path),
            })
            .map(|(path, _)| path.clone())
            .collect();
        Backing { swaps, loops }
    }
}

/// Releases what backs onto `mount`'s filesystem ([`Backers::of`]), swap
/// first: a loop device with swap on it cannot be detached. `deadline`:
/// the run's, if it has one; where it has none, a loop device is waited
/// for [`crate::wait::CLAIM_GRACE`], and swap for as long as reading its
/// pages back takes.
pub fn release(
    mount: &Mount,
    mounts: &Table,
    backers: &Backers,
    deadline: Option<Instant>,
    cancel: Cancel<'_>,
) -> Vec<Released> {
    let Backing { swaps, loops } = backers.of(mount, mounts);
    let mut released: Vec<Released> = swaps
        .into_iter()
        .map(|path| {
            let outcome =
                swap_off(&path, deadline, cancel).and_then(|()| match still_swap(&path) {
                    true => Err(Errno::BUSY),
                    false => Ok(()),
                });
            Released::Swap { path, outcome }
        })
        .collect();
    let deadline = loop_deadline(deadline);
    released.extend(
        loops
            .iter()
            .map(|lo| Released::Loop(loopdev::detach(lo, deadline, cancel))),
    );
    released
}

/// The deadline of a step on a loop device (its detach, the driver asked
/// for its file) in a run whose own deadline is `deadline`: that one, or
/// [`crate::wait::CLAIM_GRACE`] from now where the run has none.
pub fn loop_deadline(deadline: Option<Instant>) -> Instant {
    deadline.unwrap_or_else(|| crate::duration::deadline(Instant::now(), crate::wait::CLAIM_GRACE))
}

/// `swapoff(2)` of `path`, which reads every page swapped out there back
/// into memory: on a disk that does not answer (a suspended device
/// mapper device, a dead path) it sleeps until the disk answers. Where the
/// run has a `deadline` or can be cancelled, it is made in a child process
/// ([`crate::wait::step_in_child`]): killed at the deadline (swap then
/// stays on, or is still being turned off by a child given up past
/// SIGKILL): ETIMEDOUT.
fn swap_off(path: &Path, deadline: Option<Instant>, cancel: Cancel<'_>) -> Result<(), Errno> {
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::INVAL)?;
    crate::wait::step_in_child(deadline, cancel, || sys::swap_off(&path))
}

/// Whether `path` is still listed in `/proc/swaps`.
fn still_swap(path: &std::path::Path) -> bool {
    blockers::swaps().iter().any(|(p, _)| p == path)
}
