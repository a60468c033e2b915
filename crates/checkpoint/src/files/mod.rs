//! File descriptors beyond regular files: pipes and FIFOs with their
//! buffered data, unix sockets (pairs, listeners, queued data), eventfd,
//! signalfd, timerfd, epoll, inotify, memfd, unlinked files, the
//! terminal of a shell job and a container's console ([`crate::console`]);
//! and the refusals, by name and with the option that would allow them, of
//! what is not restored (TCP, other anon inodes…). The locks an fd holds
//! are read here too, by [`crate::locks`], which owns them. The image
//! types are in [`crate::fd_image`].
//!
//! - `dump`: reads each fd of a stopped task (fdinfo, `pidfd_getfd` copies,
//!   sock_diag), never consuming data the task has not read.
//! - `restore`: makes each again in our process before the fork.
//! - `unix_diag`: the sock_diag query for unix sockets.
//! - `inet`: TCP listeners and UDP sockets.
//! - `ns`: a container's sockets and inotify watches, made in its network
//!   namespace and under its root.

mod dump;
mod inet;
mod ns;
mod restore;
mod unix_diag;

pub use dump::collect;
pub(crate) use dump::ctty_of;
pub use ns::{refuse_foreign_netns_sockets, Place};
pub use restore::{add_epoll_watches, Builder};
