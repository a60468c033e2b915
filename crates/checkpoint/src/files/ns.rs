//! Sockets and inotify watches of a container: made by a thread of ours
//! that entered the container's network namespace and took its root
//! directory as its own.
//!
//! A socket belongs to the network namespace of the thread that called
//! `socket()` (abstract unix names and inet ports live there), and a named
//! unix socket keeps the very path `bind` was given (`getsockname`,
//! /proc/net/unix), so it must be bound with the container's path, resolved
//! in the container's tree. A thread that calls `unshare(CLONE_FS)`,
//! `fchdir` to the container's root (an `O_PATH` fd of /proc/INIT/root) and
//! `chroot(".")` resolves every path, symlinks included, inside that root,
//! as the container's own processes do; `setns` puts it in the container's
//! network namespace. The fds it makes are in our fd table, shared by every
//! thread. The same thread adds inotify watches by path. On the dump side,
//! a `NETLINK_SOCK_DIAG` socket opened by a thread in the task's network
//! namespace answers about that namespace's sockets, from any thread.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::collect::DumpError;
use crate::restore::RestoreError;
use crate::sys;

/// Where a container's sockets are made: its root and network namespace.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// The container's root directory.
    pub root: BorrowedFd<'a>,
    /// Its network namespace (/proc/INIT/ns/net).
    pub net: BorrowedFd<'a>,
}

thread_local! {
    /// /proc/net/unix of the namespace a [`Place`] thread entered, read
    /// before its chroot (the container's /proc is another pid namespace's,
    /// where our thread has no /proc/thread-self).
    static UNIX_TABLE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// /proc/net/unix as the calling thread's network namespace shows it.
pub(super) fn unix_table() -> io::Result<String> {
    if let Some(t) = UNIX_TABLE.with(|t| t.borrow().clone()) {
        return Ok(t);
    }
    std::fs::read_to_string("/proc/thread-self/net/unix")
}

/// Runs `f` in `place` (or here, when `None`): on a new thread that joined
/// the container's network namespace and made its root our root.
pub(super) fn run_in<T: Send>(
    place: Option<Place<'_>>,
    f: impl FnOnce() -> Result<T, RestoreError> + Send,
) -> Result<T, RestoreError> {
    let Some(place) = place else {
        return f();
    };
    let entered = |source| RestoreError::Open {
        path: "the container's network namespace and root".into(),
        source,
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(place).map_err(entered)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(entered(io::Error::other("the thread panicked"))))
    })
}

fn enter(place: Place<'_>) -> io::Result<()> {
    move_into_link_name_space(place.net, Some(LinkNameSpaceType::Network))?;
    let table = std::fs::read_to_string("/proc/thread-self/net/unix")?;
    UNIX_TABLE.with(|t| *t.borrow_mut() = Some(table));
    sys::unshare_fs()?;
    rustix::process::fchdir(place.root)?;
    rustix::process::chroot(".")?;
    Ok(())
}

/// A `NETLINK_SOCK_DIAG` socket of the network namespace of `pid`.
pub(super) fn diag_socket_of(pid: i32) -> io::Result<OwnedFd> {
    let ns = rustix::fs::open(
        format!("/proc/{pid}/ns/net"),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let ours = rustix::fs::stat("/proc/thread-self/ns/net")?;
    let theirs = rustix::fs::fstat(&ns)?;
    if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino) {
        return super::unix_diag::netlink_socket();
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
            super::unix_diag::netlink_socket()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a thread opening sock_diag panicked")))
    })
}

/// A bare dump restores sockets in the restorer's network namespace: one
/// of a task in another namespace than ours (its abstract names and ports
/// are that namespace's) is refused, naming the fd. A container's dump
/// records them for its own namespace.
pub fn refuse_foreign_netns_sockets(pid: i32) -> Result<(), DumpError> {
    let link = |path: String| {
        std::fs::read_link(&path).map_err(|source| DumpError::Proc {
            pid,
            path: path.into(),
            source,
        })
    };
    let theirs = link(format!("/proc/{pid}/ns/net"))?;
    if theirs == link("/proc/self/ns/net".into())? {
        return Ok(());
    }
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|source| DumpError::Proc {
        pid,
        path: dir.clone().into(),
        source,
    })?;
    for e in entries.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if target.starts_with("socket:[") {
            return Err(DumpError::Unsupported {
                pid,
                fd: e.file_name().to_str().and_then(|n| n.parse().ok()),
                what: format!(
                    "{target} in another network namespace ({}) than the dumper's",
                    theirs.display()
                ),
            });
        }
    }
    Ok(())
}
