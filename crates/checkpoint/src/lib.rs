//! Native checkpoint/restore of Linux processes, without CRIU.
//!
//! - [`action`]: `--action-script`, run at each stage of a dump or restore.
//! - [`check`]: which kernel features checkpoint/restore needs and whether
//!   this kernel has them (`corral cr check`).
//! - [`collect`]: dump a running process to an image directory.
//! - [`container`]: what a container runtime adds (namespace pids, its own
//!   stdio, restore into a task it prepared).
//! - [`locks`]: file locks (POSIX, OFD, flock) held through the fds,
//!   dumped with `--file-locks` and taken again by the restored task.
//! - [`image`]: the image format (docs/image-format.md), reader and writer.
//! - [`restore`]: bring an image back as a running process.
//! - [`state`]: per-task kernel state (pending signals, timers, credentials,
//!   limits, seccomp…), dumped and restored.
//! - [`fd_image`]: the image types of the fd kinds beyond regular files;
//!   `files` dumps and restores them (pipes, unix sockets, eventfd,
//!   signalfd, timerfd, epoll, inotify, memfd, unlinked files, terminals)
//!   and refuses the rest by name.
//! - [`sysv`]: the SysV IPC objects of an IPC namespace (shared memory,
//!   semaphores, message queues), dumped and recreated under their ids.
//! - `pages`: page data between a task and its page file, the hot path.
//! - `sys`: the raw system calls; every `unsafe` block of the crate.
//! - [`timens`]: time namespaces: a tree's CLOCK_MONOTONIC and
//!   CLOCK_BOOTTIME go on across a dump and restore.
//! - [`tree`]: process trees: seizing every descendant, sessions, process
//!   groups, zombies, fds shared between processes.
//!
//! Kernel facts and the traps this code avoids are in CHECKPOINT-NOTES.md
//! (shared with the project); comments cite them as "trap N".

pub mod action;
pub mod check;
pub mod collect;
pub mod console;
pub mod container;
pub mod fd_image;
mod files;
pub mod image;
pub mod inject;
pub mod locks;
mod pages;
pub mod proc;
pub mod restore;
pub mod state;
mod sys;
pub mod sysv;
pub mod timens;
pub mod tree;

pub use pages::copied as page_bytes_copied;
