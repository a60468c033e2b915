//! What a container runtime needs beyond a bare process dump: pids as the
//! container's pid namespace sees them, stdio left to the runtime, and a
//! restore into a task the runtime prepared (its namespaces, mounts and
//! cgroup made, its root switched) instead of a child we fork.
//!
//! Dump ([`crate::collect::dump_with`] with [`DumpExtra`]): the init's
//! whole tree is read through host pids, as always; the image records the
//! ids of the container's pid namespace ([`crate::tree`]'s `ns`: `NSpid`,
//! `NSpgid`, `NSsid` of /proc/PID/status), so pid 1 of a container is 1 in
//! the image. With `inherit_stdio`, the init's fds 0–2 are not dumped: they
//! belong to whoever runs the container (runc gives a restored container
//! the restoring runtime's stdio, and so do we); nor are those of another
//! process that are the init's (a child that inherited them), which at
//! restore inherits the new init's again.
//! A container with a terminal is dumped with its `console` instead: fds
//! on it, whatever their number, become the pty the restoring runtime
//! makes ([`crate::console`]).
//!
//! Restore ([`crate::restore::restore_into`] with [`IntoTask`]): the files
//! the image needs are opened under the container's root (`openat2` with
//! `RESOLVE_IN_ROOT`, never through a host path), handed to the runtime,
//! which passes them to its prepared task at the same fd numbers; the task
//! then stops itself under our ptrace (`PTRACE_TRACEME`, `SIGSTOP`), and the
//! restore replaces its memory and state as it does for a forked child.
//! Every other process is made from inside its parent, inside the
//! container's pid namespace, as a bare tree's are.

use std::fs;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// How [`crate::collect::dump_with`] records a container's process.
#[derive(Clone, Copy, Default)]
pub struct DumpExtra<'a> {
    /// Record pids and tids as the task's own pid namespace sees them.
    pub ns_pids: bool,
    /// Leave fds 0, 1 and 2 out: the restoring runtime provides them.
    pub inherit_stdio: bool,
    /// Called once every task is stopped under our ptrace, before any code
    /// is injected: a runtime that froze the container through cgroup v2
    /// thaws it here (a task still frozen would not run the injected
    /// calls; one in a ptrace stop stays there).
    pub on_seized: Option<&'a dyn Fn() -> io::Result<()>>,
    /// The caller dumps the SysV IPC objects of the task's IPC namespace
    /// ([`crate::sysv::dump`]; a container that owns its namespace): a
    /// segment the task attached is recorded as a reference to it
    /// (`Backing::Sysv`). Without it such a task is refused.
    pub sysv_ipc: bool,
    /// The container's console (the pty slave its runtime made, e.g.
    /// /dev/console opened in the container): fds on it are recorded as
    /// the console, its settings with them ([`crate::console`]).
    pub console: Option<BorrowedFd<'a>>,
}

impl std::fmt::Debug for DumpExtra<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpExtra")
            .field("ns_pids", &self.ns_pids)
            .field("inherit_stdio", &self.inherit_stdio)
            .field("on_seized", &self.on_seized.is_some())
            .field("sysv_ipc", &self.sysv_ipc)
            .field("console", &self.console)
            .finish()
    }
}

/// Hands `(file, fd number)` pairs to a prepared task; returns its pid.
pub type PlaceFiles<'a> = dyn FnMut(&[(BorrowedFd<'_>, i32)]) -> io::Result<i32> + 'a;

/// A task prepared by a container runtime, for
/// [`crate::restore::restore_into`].
pub struct IntoTask<'a> {
    /// The container's root (e.g. `/proc/INIT/root` opened `O_PATH`): the
    /// image's paths are resolved under it.
    pub root: BorrowedFd<'a>,
    /// The task's network namespace (/proc/INIT/ns/net): unix sockets are
    /// made and inotify watches added in it and under `root` (see
    /// `files::ns`). `None`: in ours, by host paths.
    pub net: Option<BorrowedFd<'a>>,
    /// Called with every file the task needs and the fd number it must
    /// have there; gets them into the task (whose fds below the lowest of
    /// those numbers are closed later, but 0–2 with `keep_stdio`), has it
    /// stop under our ptrace (`PTRACE_TRACEME` then `SIGSTOP`: the caller
    /// must be its parent), and returns its pid.
    pub place_files: &'a mut PlaceFiles<'a>,
    /// The task's fds 0–2 stay (the image was dumped with `inherit_stdio`).
    pub keep_stdio: bool,
    /// The pty slave the runtime made for the task (its controlling
    /// terminal): the image's console fds become it, and it gets the
    /// image's console settings ([`crate::console`]).
    pub console: Option<BorrowedFd<'a>>,
}

/// The last `NSpid` of /proc/`pid`/task/`tid`/status: the id in the task's
/// own pid namespace.
pub fn ns_tid(pid: i32, tid: i32) -> io::Result<i32> {
    let path = format!("/proc/{pid}/task/{tid}/status");
    let text = fs::read_to_string(&path)?;
    crate::proc::status_field(&text, "NSpid")
        .and_then(|f| f.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: no NSpid")))
}

/// The host tid of the thread of `pid` whose id in its own pid namespace is
/// `ns_tid`.
pub fn host_tid(pid: i32, ns_tid_wanted: i32) -> io::Result<i32> {
    for e in fs::read_dir(format!("/proc/{pid}/task"))? {
        let Some(tid) = e?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if ns_tid(pid, tid)? == ns_tid_wanted {
            return Ok(tid);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("pid {pid}: no thread {ns_tid_wanted} in its namespace"),
    ))
}

/// Opens `path` (absolute, as the container sees it) under `root`: `..`
/// and symlinks stay inside it, magic links are refused.
pub fn open_in_root(root: BorrowedFd<'_>, path: &str, flags: OFlags) -> io::Result<fs::File> {
    let rel = Path::new(path).strip_prefix("/").unwrap_or(Path::new(path));
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd: OwnedFd = rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(fd.into())
}
