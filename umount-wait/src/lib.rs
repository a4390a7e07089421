//! Unmount a filesystem and return only when its superblock is shut down.
//!
//! Two ways to wait, chosen once per process by [`sys::probe`]:
//!
//! - the **kernel path**: `umount2(target, flags | UMOUNT_WAIT)` sleeps in the
//!   kernel until the superblock is dead (`SB_DEAD`); the wait is killable
//!   only, so the call is made in a child process ([`child`]) that is killed
//!   at the deadline or when the caller cancels;
//! - the **fallback path** for kernels without `UMOUNT_WAIT`: an inotify watch on
//!   the mount root, added before unmounting, reports `IN_UNMOUNT` when the
//!   superblock itself shuts down; for a block device the exclusive claim is
//!   then checked with `open(dev, O_EXCL)`.
//!
//! The library never prints and owns no process state: no signal handlers,
//! no global flags. The caller passes a cancellation handle ([`Cancel`], a
//! descriptor that becomes readable when the wait should stop) and a
//! timeout. It returns a [`Report`] or an [`Error`] per target, and sends
//! [`Progress`] to an observer while a wait lasts.

pub mod backoff;
pub mod blockers;
pub mod cancel;
pub mod child;
pub mod cli;
pub mod device;
pub mod duration;
pub mod loopdev;
pub mod mountinfo;
pub mod outcome;
pub mod release;
pub mod select;
pub mod shutdown;
pub mod sys;
pub mod target;
pub mod wait;

pub use blockers::Blocker;
pub use cancel::Cancel;
pub use outcome::{Error, ErrorKind, Outcome, Report, State, Unconfirmed, WaitPath};
pub use target::Target;
pub use wait::{unmount, Mode, Options, Progress};
