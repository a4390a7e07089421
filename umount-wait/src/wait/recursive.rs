//! `-R`: a mount and every mount below it, children first as umount(8)
//! takes them, each through
//! [`unmount_target`], so that a submount whose filesystem stays mounted
//! above it (a bind of the tree's own filesystem) goes without a wait and
//! the filesystem is waited for once, with its last mount.

use std::path::PathBuf;

use rustix::io::Errno;

use super::{unmount_target, Options, Progress, Watcher};
use crate::mountinfo::{Mount, Snapshot};
use crate::outcome::{Error, ErrorKind, Outcome, Report, WaitPath};
use crate::target::Target;

/// Unmounts the mounts below `target`, each child in mount order with the
/// mounts below it first
/// ([`Table::submounts_children_first`](crate::mountinfo::Table::submounts_children_first),
/// the order of umount(8) -R), then `target`.
/// Each submount's result goes to `submount_done` as it comes. The first
/// submount that is not gone (shut down, or unmounted while its filesystem
/// stays mounted above) stops the run: `target` is then left untouched,
/// with an error that names that submount.
///
/// The submounts come from `table` as read before; where it lists some
/// and has changed since (an unmount before this one may have taken some
/// along), it is read again. Where it lists none, a mount put below since
/// makes the unmount of `target` fail busy: nothing is unmounted that
/// was not seen.
pub fn unmount_recursive(
    target: &Target,
    path: WaitPath,
    options: &Options<'_>,
    observer: &dyn Fn(Progress<'_>),
    watcher: &mut Watcher,
    table: &mut Snapshot,
    submount_done: &mut dyn FnMut(&Result<Report, Error>, WaitPath),
) -> Result<Report, Error> {
    let id = target.mount.id;
    let subs: Vec<Mount> = match table.table().submounts_children_first(id).is_empty() {
        true => Vec::new(),
        false => table
            .current()
            .map_err(|e| {
                let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
                Error::from_errno(&target.given, "reading /proc/self/mountinfo", errno)
            })?
            .submounts_children_first(id)
            .into_iter()
            .cloned()
            .collect(),
    };
    for sub in &subs {
        let sub_target = Target::of_mount(sub);
        let result = unmount_target(&sub_target, path, options, observer, watcher, table);
        submount_done(&result, super::path_for(&sub_target, path, options));
        let gone = matches!(
            &result,
            Ok(Report {
                outcome: Outcome::ShutDown | Outcome::Unmounted { .. },
                ..
            })
        );
        if !gone {
            return Err(Error::new(
                &target.given,
                ErrorKind::SubmountFailed {
                    submount: PathBuf::from(&sub.mount_point),
                },
                None,
            ));
        }
    }
    unmount_target(target, path, options, observer, watcher, table)
}
