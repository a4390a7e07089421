//! `--all`: what keeps a filesystem busy besides its mounts and its
//! processes, released before it is unmounted: swap files on it, swap on
//! loop devices backed by files on it, and loop devices backed by files on
//! it that nothing mounts (those that are mounted are filesystems of their
//! own, unmounted first and then detached). Each release is confirmed:
//! the swap area gone from `/proc/swaps`, the loop device unbound
//! ([`loopdev::detach`]).

use std::path::PathBuf;
use std::time::Instant;

use rustix::io::Errno;

use crate::blockers::{self, Superblock};
use crate::cancel::Cancel;
use crate::loopdev::{self, LoopDetach};
use crate::mountinfo::Mount;
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

/// Releases what backs onto `mount`'s filesystem (`mounts`: the mount
/// table), swap first: a loop device with swap on it cannot be detached.
pub fn release(
    mount: &Mount,
    mounts: &[Mount],
    deadline: Instant,
    cancel: Cancel<'_>,
) -> Vec<Released> {
    let sb = Superblock::in_table(mount, mounts);
    let loops: Vec<_> = loopdev::bound()
        .into_iter()
        .filter(|lo| sb.holds(&lo.backing_file) && !mounts.iter().any(|m| m.dev == lo.dev))
        .collect();
    let mut released = Vec::new();
    for (path, file) in blockers::swaps() {
        let ours = match file {
            true => sb.holds(&path),
            false => loops.iter().any(|lo| lo.node == path),
        };
        if ours {
            let outcome = sys::swap_off(&path).and_then(|()| match still_swap(&path) {
                true => Err(Errno::BUSY),
                false => Ok(()),
            });
            released.push(Released::Swap { path, outcome });
        }
    }
    released.extend(
        loops
            .iter()
            .map(|lo| Released::Loop(loopdev::detach(lo, deadline, cancel))),
    );
    released
}

/// Whether `path` is still listed in `/proc/swaps`.
fn still_swap(path: &std::path::Path) -> bool {
    blockers::swaps().iter().any(|(p, _)| p == path)
}
