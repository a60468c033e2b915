//! File locks (`--file-locks`): POSIX record locks (`fcntl(F_SETLK)`),
//! open file description locks (`F_OFD_SETLK`) and `flock` locks, dumped
//! with the fd that holds them and taken again at restore.
//!
//! Who owns a lock decides where it is recorded and who takes it back:
//!
//! | kind  | owner | `lock:` line of /proc/PID/fdinfo/FD shown on |
//! |-------|-------|-----------------------------------------------|
//! | POSIX | the process (its fd table) | the owner's fds of the open file the lock was taken through (its dups too), never a child's copy |
//! | OFD   | the open file description | every fd, in any process, of that description |
//! | flock | the open file description | the same |
//!
//! (fs/locks.c `show_fd_locks`: a lock is shown on an fd whose file is the
//! one the lock was taken through and whose owner is that fd table or that
//! file.) So each task records the locks its own fdinfo shows, on the fd
//! that shows them ([`crate::image::FdImage::locks`]); a dup shows what its
//! original does and records nothing. An OFD or flock lock on a description
//! shared by several processes of a tree is recorded by each; taking it
//! again through the same description is a no-op for the kernel.
//!
//! Restore (`take`): once every fd of the task is in place and before it
//! runs, the task itself calls `fcntl(F_SETLK)`, `fcntl(F_OFD_SETLK)` or
//! `flock(LOCK_NB)` on its fd, injected ([`crate::inject`]): a POSIX lock
//! belongs to the calling process, so only the task can take it; OFD and
//! flock locks belong to the description, which the task holds, so the
//! same call serves. A lock that cannot be taken (another process holds a
//! conflicting one now: with `leave_running`, the dumped process itself
//! until it exits) fails the restore, naming the fd, the file and the lock;
//! the restore then kills what it made, which drops every lock taken.
//!
//! Refused at dump time by name: leases and delegations, mandatory locks,
//! locks on fds that are neither files nor directories nor memfds, a lock
//! that /proc/locks gives to a process of the tree but no dumped fd shows
//! (taken through a file the image does not hold: the stdio a container
//! runtime passed, a file kept only by a mapping), and a process of the
//! tree waiting for a lock. A lock held by a process outside the tree on a
//! file the tree uses is not the tree's: it is not dumped. A process
//! stopped inside a blocking `F_SETLKW` or `flock` is no longer waiting
//! once seized (the wait is interrupted and restarts when it runs again),
//! so it asks for its lock again after the restore.

use std::collections::HashSet;
use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::collect::DumpError;
use crate::image::{FdImage, FdKind, TaskImage};
use crate::inject::{InjectError, Injector};
use crate::restore::RestoreError;

/// Which API took a lock, and so who owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// `fcntl(F_SETLK)`: owned by the process.
    Posix,
    /// `fcntl(F_OFD_SETLK)`: owned by the open file description.
    Ofd,
    /// `flock`: owned by the open file description; always the whole file.
    Flock,
}

/// Shared (read) or exclusive (write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockType {
    /// `F_RDLCK`, `LOCK_SH`.
    Read,
    /// `F_WRLCK`, `LOCK_EX`.
    Write,
}

/// One lock held through an fd.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileLock {
    /// Which API took it.
    pub kind: LockKind,
    /// Read or write.
    #[serde(rename = "type")]
    pub lock_type: LockType,
    /// First byte locked.
    pub start: u64,
    /// Last byte locked, `None` for "to the end of the file, however it
    /// grows" (`l_len` 0; always so for flock).
    pub end: Option<u64>,
}

impl std::fmt::Display for FileLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ty = match self.lock_type {
            LockType::Read => "read",
            LockType::Write => "write",
        };
        let range = match self.end {
            Some(end) => format!("bytes {}-{end}", self.start),
            None => format!("bytes {}-EOF", self.start),
        };
        match self.kind {
            LockKind::Flock => {
                let op = match self.lock_type {
                    LockType::Read => "LOCK_SH",
                    LockType::Write => "LOCK_EX",
                };
                write!(f, "flock {op}")
            }
            LockKind::Posix => write!(f, "POSIX {ty} lock on {range}"),
            LockKind::Ofd => write!(f, "OFD {ty} lock on {range}"),
        }
    }
}

/// A `lock:` line of fdinfo, or a line of /proc/locks, read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Line {
    lock: FileLock,
    /// The pid the kernel shows: the owner of a POSIX lock, the process
    /// that took a flock, -1 for OFD.
    pid: i32,
    /// `MAJOR:MINOR:INO` of the file, as the kernel prints it.
    file: String,
}

/// Why a line is not a lock we restore: what it is, for the refusal.
type NotOurs = String;

/// Reads the part of a lock line after its `N:` id: `KIND ADVISORY TYPE
/// PID MAJ:MIN:INO START END`. Leases, delegations, mandatory and unknown
/// locks are named in the error.
fn parse(body: &str) -> Result<Line, NotOurs> {
    let w: Vec<&str> = body.split_whitespace().collect();
    let bad = || format!("an unreadable lock ({body})");
    let kind = match w.first().copied() {
        Some("POSIX") => LockKind::Posix,
        Some("OFDLCK") => LockKind::Ofd,
        Some("FLOCK") => LockKind::Flock,
        Some("LEASE") => return Err(format!("a lease ({body})")),
        Some("DELEG") => return Err(format!("a delegation ({body})")),
        _ => return Err(bad()),
    };
    if w.len() != 7 {
        return Err(bad());
    }
    match w[1] {
        "ADVISORY" => {}
        "MANDATORY" => return Err(format!("a mandatory lock ({body})")),
        _ => return Err(bad()),
    }
    let lock_type = match w[2] {
        "READ" => LockType::Read,
        "WRITE" => LockType::Write,
        _ => return Err(bad()),
    };
    let pid = w[3].parse().map_err(|_| bad())?;
    let start = w[5].parse().map_err(|_| bad())?;
    let end = match w[6] {
        "EOF" => None,
        n => Some(n.parse::<u64>().map_err(|_| bad())?),
    };
    if end.is_some_and(|e| e < start) {
        return Err(bad());
    }
    Ok(Line {
        lock: FileLock {
            kind,
            lock_type,
            start,
            end,
        },
        pid,
        file: w[4].to_owned(),
    })
}

/// The part of a `lock:` line of fdinfo after `lock:` and the `N:` id.
fn fdinfo_bodies(info: &str) -> impl Iterator<Item = &str> {
    info.lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .map(|l| l.trim_start().split_once(' ').map_or("", |(_, b)| b.trim()))
}

/// The locks fdinfo `info` shows on fd `fd` (`link`) of `pid`. Without
/// `file_locks` any lock is refused, naming the option.
pub(crate) fn of_fd(
    pid: i32,
    fd: i32,
    link: &str,
    info: &str,
    file_locks: bool,
) -> Result<Vec<FileLock>, DumpError> {
    let mut out = Vec::new();
    for body in fdinfo_bodies(info) {
        if !file_locks {
            let first = info
                .lines()
                .find_map(|l| l.strip_prefix("lock:"))
                .unwrap_or("")
                .trim();
            return Err(DumpError::NeedsOption {
                pid,
                fd: Some(fd),
                what: format!("{link} holds a file lock ({first})"),
                option: "--file-locks",
            });
        }
        let line = parse(body).map_err(|what| DumpError::Unsupported {
            pid,
            fd: Some(fd),
            what: format!("{link}: {what}"),
        })?;
        out.push(line.lock);
    }
    Ok(out)
}

/// Refuses locks on an fd that is not a file the restore reopens or
/// recreates (a pipe, a socket, an anon inode…).
pub(crate) fn check_kind(
    pid: i32,
    fd: &FdImage,
    link: &str,
    locks: &[FileLock],
) -> Result<(), DumpError> {
    let file = matches!(
        fd.kind,
        FdKind::Path { .. } | FdKind::Memfd(_) | FdKind::Unlinked(_)
    );
    match locks.first() {
        Some(l) if !file => Err(DumpError::Unsupported {
            pid,
            fd: Some(fd.fd),
            what: format!("a {l} on {link}"),
        }),
        _ => Ok(()),
    }
}

/// `MAJOR:MINOR:INO` as the kernel prints a lock's file, from a
/// userspace `st_dev` and `st_ino`.
fn kernel_file(dev: u64, ino: u64) -> String {
    format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev))
}

/// The file of a dumped fd, as the kernel names it in a lock line.
fn file_of(fd: &FdImage) -> Option<String> {
    match &fd.kind {
        FdKind::Path { file, .. } => Some(kernel_file(file.dev, file.ino)),
        FdKind::Memfd(m) => Some(kernel_file(m.data.dev, m.data.ino)),
        FdKind::Unlinked(u) => Some(kernel_file(u.data.dev, u.data.ino)),
        _ => None,
    }
}

/// Checks /proc/locks against the dumped tree `tasks` (pids as we see
/// them): every POSIX or flock lock the kernel gives to a process of the
/// tree must be one the image holds (a POSIX lock as its owner's, a flock
/// on some fd of that file), and no process of the tree may wait for a
/// lock. OFD locks show no pid there; fdinfo found them all.
pub(crate) fn check_tree(tasks: &[TaskImage], file_locks: bool) -> Result<(), DumpError> {
    let text = fs::read_to_string("/proc/locks").map_err(|source| DumpError::Proc {
        pid: tasks.first().map_or(0, |t| t.pid),
        path: "/proc/locks".into(),
        source,
    })?;
    check_proc_locks(&text, tasks, file_locks)
}

/// [`check_tree`] on the text of /proc/locks.
fn check_proc_locks(text: &str, tasks: &[TaskImage], file_locks: bool) -> Result<(), DumpError> {
    let pids: HashSet<i32> = tasks.iter().map(|t| t.pid).collect();
    // (owner pid or 0 for a flock, file, lock) of every lock dumped.
    let mut dumped: HashSet<(i32, String, FileLock)> = HashSet::new();
    for t in tasks {
        for fd in &t.fds {
            let Some(file) = file_of(fd) else { continue };
            for l in &fd.locks {
                let owner = if l.kind == LockKind::Posix { t.pid } else { 0 };
                dumped.insert((owner, file.clone(), l.clone()));
            }
        }
    }
    for raw in text.lines() {
        let body = raw
            .trim_start()
            .split_once(' ')
            .map_or("", |(_, b)| b.trim());
        if let Some(waiting) = body.strip_prefix("->") {
            let pid = waiting
                .split_whitespace()
                .nth(3)
                .and_then(|p| p.parse().ok());
            if let Some(pid) = pid.filter(|p| pids.contains(p)) {
                return Err(DumpError::Unsupported {
                    pid,
                    fd: None,
                    what: format!("waits for a file lock ({})", waiting.trim()),
                });
            }
            continue;
        }
        let pid = body.split_whitespace().nth(3).and_then(|p| p.parse().ok());
        let Some(pid) = pid.filter(|p: &i32| pids.contains(p)) else {
            continue;
        };
        let line = match parse(body) {
            Ok(l) if l.lock.kind == LockKind::Ofd => continue,
            Ok(l) => l,
            Err(what) => {
                return Err(DumpError::Unsupported {
                    pid,
                    fd: None,
                    what: format!("holds {what}"),
                })
            }
        };
        let owner = if line.lock.kind == LockKind::Posix {
            pid
        } else {
            0
        };
        if dumped.contains(&(owner, line.file.clone(), line.lock.clone())) {
            continue;
        }
        let what = format!(
            "holds a {} (file {}) through no fd of the image",
            line.lock, line.file
        );
        return Err(if file_locks {
            DumpError::Unsupported {
                pid,
                fd: None,
                what,
            }
        } else {
            DumpError::NeedsOption {
                pid,
                fd: None,
                what,
                option: "--file-locks",
            }
        });
    }
    Ok(())
}

/// `struct flock` of x86_64: `l_type`, `l_whence` (i16 each), 4 bytes of
/// padding, `l_start`, `l_len` (i64), `l_pid` (i32), 4 bytes of padding.
fn flock_struct(l: &FileLock) -> Result<[u8; 32], String> {
    let ty = match l.lock_type {
        LockType::Read => libc::F_RDLCK,
        LockType::Write => libc::F_WRLCK,
    };
    let start = i64::try_from(l.start).map_err(|_| format!("start {}", l.start))?;
    let len = match l.end {
        None => 0,
        Some(end) => end
            .checked_sub(l.start)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| format!("range {}-{end}", l.start))?,
    };
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&(ty as i16).to_le_bytes());
    b[2..4].copy_from_slice(&(libc::SEEK_SET as i16).to_le_bytes());
    b[8..16].copy_from_slice(&start.to_le_bytes());
    b[16..24].copy_from_slice(&len.to_le_bytes());
    // l_pid stays 0: F_OFD_SETLK requires it.
    Ok(b)
}

/// What a lock's fd is, for an error: its path, or the kind of file.
fn fd_name(fd: &FdImage) -> String {
    match &fd.kind {
        FdKind::Path { file, .. } => file.path.clone(),
        FdKind::Memfd(m) => format!("memfd:{}", m.name),
        FdKind::Unlinked(u) => format!("{} (deleted)", u.path),
        other => other.describe(),
    }
}

/// Takes every lock of `task` again, as the task (through `inj`), on its
/// own fd numbers; `scratch` is a page of the task's we may write. Runs
/// once every fd is in place, before the task runs.
pub(crate) fn take(inj: &Injector, scratch: u64, task: &TaskImage) -> Result<(), RestoreError> {
    for fd in &task.fds {
        for l in &fd.locks {
            let failed = |source: io::Error| RestoreError::Lock {
                pid: task.pid,
                fd: fd.fd,
                path: fd_name(fd),
                lock: l.to_string(),
                source,
            };
            let (nr, args) = match l.kind {
                LockKind::Flock => {
                    let op = match l.lock_type {
                        LockType::Read => libc::LOCK_SH,
                        LockType::Write => libc::LOCK_EX,
                    };
                    let op = (op | libc::LOCK_NB) as u64;
                    (libc::SYS_flock, [fd.fd as u64, op, 0, 0, 0, 0])
                }
                LockKind::Posix | LockKind::Ofd => {
                    let s = flock_struct(l).map_err(|what| {
                        RestoreError::Unsupported(format!(
                            "pid {} fd {}: a {l} with {what}",
                            task.pid, fd.fd
                        ))
                    })?;
                    crate::sys::process_vm_writev(inj.pid(), &[&s], &[(scratch, 32)])
                        .map_err(RestoreError::trace(inj.pid(), "write a struct flock"))?;
                    let cmd = if l.kind == LockKind::Posix {
                        libc::F_SETLK
                    } else {
                        libc::F_OFD_SETLK
                    };
                    (
                        libc::SYS_fcntl,
                        [fd.fd as u64, cmd as u64, scratch, 0, 0, 0],
                    )
                }
            };
            match inj.syscall(nr, args) {
                Ok(_) => {}
                Err(InjectError::Failed { source, .. }) => return Err(failed(source)),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_lock_lines_parse() {
        let info = "pos:\t0\nflags:\t0100002\nmnt_id:\t27\nino:\t10027494\n\
                    lock:\t1: POSIX  ADVISORY  WRITE 16987 fe:00:10027494 0 9\n\
                    lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:10027494 100 EOF\n\
                    lock:\t3: FLOCK  ADVISORY  WRITE 16987 fe:00:10027494 0 EOF\n";
        let locks = of_fd(1, 3, "/f", info, true).unwrap();
        let want = |kind, lock_type, start, end| FileLock {
            kind,
            lock_type,
            start,
            end,
        };
        assert_eq!(
            locks,
            [
                want(LockKind::Posix, LockType::Write, 0, Some(9)),
                want(LockKind::Ofd, LockType::Read, 100, None),
                want(LockKind::Flock, LockType::Write, 0, None),
            ]
        );
        assert_eq!(locks[0].to_string(), "POSIX write lock on bytes 0-9");
        assert_eq!(locks[2].to_string(), "flock LOCK_EX");
        let line = parse("POSIX  ADVISORY  WRITE 16987 fe:00:10027494 0 9").unwrap();
        assert_eq!((line.pid, line.file.as_str()), (16987, "fe:00:10027494"));
    }

    #[test]
    fn refusals_name_the_lock_and_the_option() {
        let info = "lock:\t1: FLOCK  ADVISORY  WRITE 7 fe:00:12 0 EOF\n";
        let e = of_fd(7, 3, "/x/locked", info, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pid 7 fd 3: /x/locked holds a file lock (1: FLOCK  ADVISORY  WRITE 7 fe:00:12 0 EOF); pass --file-locks"
        );
        let lease = "lock:\t1: LEASE  ACTIVE    READ 7 fe:00:12 0 EOF\n";
        let e = of_fd(7, 3, "/x/f", lease, true).unwrap_err().to_string();
        assert!(e.starts_with("pid 7 fd 3: /x/f: a lease ("), "{e}");
        let mandatory = "lock:\t1: POSIX  MANDATORY WRITE 7 fe:00:12 0 EOF\n";
        let e = of_fd(7, 3, "/x/f", mandatory, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a mandatory lock"), "{e}");
        assert!(of_fd(7, 3, "/x/f", "pos:\t0\n", false).unwrap().is_empty());
    }

    #[test]
    fn struct_flock_is_laid_out_for_x86_64() {
        let l = FileLock {
            kind: LockKind::Posix,
            lock_type: LockType::Write,
            start: 10,
            end: Some(19),
        };
        let b = flock_struct(&l).unwrap();
        assert_eq!(b[0..2], (libc::F_WRLCK as i16).to_le_bytes());
        assert_eq!(b[8..16], 10i64.to_le_bytes());
        assert_eq!(b[16..24], 10i64.to_le_bytes());
        let eof = FileLock { end: None, ..l };
        assert_eq!(flock_struct(&eof).unwrap()[16..24], 0i64.to_le_bytes());
        assert_eq!(std::mem::size_of::<libc::flock>(), 32);
    }

    /// A task of `pid` holding `locks` through fd 3 on file 254:0 inode 12.
    fn task_with(pid: i32, locks: Vec<FileLock>) -> TaskImage {
        let mut t: TaskImage = serde_json::from_value(serde_json::json!({
            "pid": pid, "comm": "t", "exe": {"path": "/t", "dev": 0, "ino": 0}, "cwd": "/",
            "threads": [], "mm": {"start_code": 0, "end_code": 0, "start_data": 0,
            "end_data": 0, "start_brk": 0, "brk": 0, "start_stack": 0, "arg_start": 0,
            "arg_end": 0, "env_start": 0, "env_end": 0, "auxv": []},
            "vmas": [], "sigactions": [], "fds": [], "pages_file": "p", "pages_size": 0
        }))
        .unwrap();
        let file = crate::image::FileId {
            path: "/locked".into(),
            dev: libc::makedev(254, 0),
            ino: 12,
            stamp: None,
        };
        t.fds.push(FdImage {
            fd: 3,
            flags: 2,
            cloexec: false,
            kind: FdKind::Path { file, pos: 0 },
            locks,
        });
        t
    }

    #[test]
    fn proc_locks_is_checked_against_the_image() {
        let posix = parse("POSIX  ADVISORY  WRITE 7 fe:00:12 0 9").unwrap().lock;
        let flock = parse("FLOCK  ADVISORY  WRITE 5 fe:00:12 0 EOF")
            .unwrap()
            .lock;
        let tasks = [task_with(7, vec![posix.clone(), flock])];
        // Ours, dumped (the flock taken by a process since gone); others'.
        let text = "1: POSIX  ADVISORY  WRITE 7 fe:00:12 0 9\n\
                    2: FLOCK  ADVISORY  WRITE 5 fe:00:12 0 EOF\n\
                    3: OFDLCK ADVISORY  READ -1 fe:00:13 0 EOF\n\
                    4: POSIX  ADVISORY  WRITE 99 fe:00:14 0 EOF\n";
        check_proc_locks(text, &tasks, true).unwrap();
        // Not through a dumped fd: another range, another file.
        let e = check_proc_locks("1: POSIX  ADVISORY  WRITE 7 fe:00:12 20 29\n", &tasks, true);
        assert_eq!(
            e.unwrap_err().to_string(),
            "pid 7: holds a POSIX write lock on bytes 20-29 (file fe:00:12) through no fd of the image; not supported yet"
        );
        let e = check_proc_locks("1: FLOCK  ADVISORY  READ 7 fe:00:15 0 EOF\n", &tasks, false);
        assert!(e.unwrap_err().to_string().ends_with("; pass --file-locks"));
        // The same POSIX lock owned by another process of the tree.
        let two = [task_with(7, vec![posix]), task_with(8, vec![])];
        let e = check_proc_locks("1: POSIX  ADVISORY  WRITE 8 fe:00:12 0 9\n", &two, true);
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("pid 8: holds a POSIX"));
        // A waiter of the tree; a lease.
        let text = "1: POSIX  ADVISORY  WRITE 99 fe:00:12 0 9\n\
                    1: -> POSIX  ADVISORY  WRITE 7 fe:00:12 0 9\n";
        let e = check_proc_locks(text, &tasks, true)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("pid 7: waits for a file lock (POSIX"), "{e}");
        let e = check_proc_locks("1: LEASE  ACTIVE    READ 7 fe:00:12 0 EOF\n", &tasks, true);
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("pid 7: holds a lease"));
    }

    proptest::proptest! {
        #[test]
        fn lock_lines_never_panic(body in ".{0,120}") {
            let _ = parse(&body);
            let _ = of_fd(1, 1, "/f", &format!("lock:\t{body}\n"), true);
            let _ = check_proc_locks(&format!("1: {body}\n"), &[], true);
        }
    }
}
