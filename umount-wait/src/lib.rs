//! Unmount a filesystem and return only when its superblock is shut down.
//!
//! Three ways to wait, chosen once per process by [`sys::probe`],
//! [`sys::notify_supported`] and [`Mode::choose`]:
//!
//! - the **notification path**: `umount2(target, flags | UMOUNT_NOTIFY)`
//!   detaches and returns a descriptor that polls readable once the
//!   superblock is dead; it is polled with the deadline and the caller's
//!   cancellation in the calling thread, no child process. This is the
//!   form a PID 1 can embed: its wait is bounded by its own deadline
//!   ([`Options::timeout`]), where `UMOUNT_WAIT`'s killable sleep could
//!   never be left by the global init. [`shutdown::run`] polls one such
//!   descriptor per filesystem;
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
pub mod helper;
pub mod kmsg;
pub mod loopdev;
pub mod mountinfo;
pub mod outcome;
pub mod release;
pub mod select;
pub mod shutdown;
pub mod sys;
pub mod target;
pub mod verdict;
pub mod wait;

pub use blockers::Blocker;
pub use cancel::Cancel;
pub use outcome::{Error, ErrorKind, Outcome, Report, State, Unconfirmed, WaitPath};
pub use target::Target;
pub use wait::{unmount, Mode, Options, Progress};
