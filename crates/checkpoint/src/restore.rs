//! Restore: bring a dumped process back under its original pid.
//!
//! We fork a child with `clone3` and `set_tid` (the dumped pid); it asks to
//! be traced and stops. Everything after that runs as syscalls injected into
//! it through ptrace ([`crate::inject`]), so no code of ours has to survive
//! in its address space while that space is replaced:
//!
//! 1. unregister the rseq area the child inherited from us (trap 2);
//! 2. close the fds it inherited, except the files we opened for it before
//!    the fork (checked by device and inode against the image, or made
//!    by `files`: pipes, sockets, eventfds…), which sit at
//!    numbers above every fd of the image;
//! 3. unmap everything but its vdso, then move `[vvar]`, `[vvar_vclock]`,
//!    `[vdso]` to the dumped addresses, keeping their layout (trap 1);
//! 4. map every mapping of the image (writable while we fill it); have the
//!    task make a userfaultfd, take a copy and register its private
//!    anonymous mappings; fill them with `UFFDIO_COPY` and the rest with
//!    `process_vm_writev`, straight from the page file mapped window by
//!    window into our memory, on a few threads ([`crate::pages`], trap 4);
//!    unregister; then set the final protections (trap 3);
//! 5. `PR_SET_MM_MAP` (brk, stack, args, env, auxv, exe link), signal
//!    handlers, comm, fds, epoll watches, cwd; close our extra fds; take
//!    the file locks again ([`crate::locks`]: after that close, which
//!    would drop POSIX locks); register the dumped rseq area; clear the
//!    parent-death signal;
//! 6. set xstate, registers with FS/GS base (trap 5) and the signal mask,
//!    and detach (after step 7, which runs once every thread exists).
//!
//! Threads: the leader is rebuilt as above; each other thread is made by an
//! injected `clone3` with `CLONE_THREAD | CLONE_PTRACE` and `set_tid` (its
//! dumped tid), stops before running anything, and gets its robust list,
//! `clear_child_tid` and rseq from syscalls injected into it; then every
//! thread gets its registers, xstate and signal mask, and all are detached.
//!
//! 7. the kernel state of [`crate::state`] (limits, timers, madvise
//!    flags and memory locks, alternate stacks, seccomp, credentials, parent-death signals,
//!    pending signals: its module doc gives the order).
//!
//! Trees: [`crate::tree`] forks the root with [`fork_root`], makes every
//! other process from inside its parent, sets sessions, groups and zombies,
//! then runs steps 1-7 in each process and resumes them all.
//!
//! A tree that had a time namespace of its own gets a new one whose clocks
//! go on from the dumped readings: the root is made in it by a helper
//! child ([`crate::timens`]), and every other process is made by its
//! parent there.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::container::IntoTask;
use crate::image::*;
use crate::inject::{self, InjectError, Injector};
use crate::pages;
use crate::proc as procfs;
use crate::sys::{self, WaitStatus};

/// A restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The image could not be read or is inconsistent.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The image holds something this version cannot restore.
    #[error("{0}; not supported yet")]
    Unsupported(String),
    /// A file the image refers to could not be opened.
    #[error("open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A path no longer names the file that was dumped.
    #[error("{path} was replaced since the dump ({difference})")]
    Replaced {
        /// The path.
        path: String,
        /// How the file found differs ([`FileId::difference`]).
        difference: String,
    },
    /// The dumped pid is taken by another process.
    #[error("pid {0} is in use")]
    PidInUse(i32),
    /// A ptrace or memory call on the new task failed.
    #[error("pid {pid}: {op}")]
    Trace {
        /// The task.
        pid: i32,
        /// What was attempted.
        op: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A syscall run inside the new task failed.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// A file lock of the image could not be taken again (another process
    /// holds a conflicting one now).
    #[error(
        "pid {pid} fd {fd}: cannot take the {lock} on {path} again{}",
        conflict_hint(source)
    )]
    Lock {
        /// The task, as the image names it.
        pid: i32,
        /// Its fd the lock is held through.
        fd: i32,
        /// The file.
        path: String,
        /// The lock ([`crate::locks::FileLock`]'s display).
        lock: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The action script failed at a stage.
    #[error(transparent)]
    Action(#[from] crate::action::ActionError),
}

/// Why a lock is refused, when the errno says it is taken.
fn conflict_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) => ": another process holds a conflicting lock",
        _ => "",
    }
}

impl RestoreError {
    /// A `Trace` error for what `op` did to task `pid`, as a `map_err`
    /// argument.
    pub(crate) fn trace(pid: i32, op: impl Into<String>) -> impl FnOnce(io::Error) -> RestoreError {
        let op = op.into();
        move |source| RestoreError::Trace { pid, op, source }
    }
}

/// A restored, running process.
#[derive(Clone, Copy, Debug)]
pub struct Restored {
    /// Its pid (the dumped one).
    pub pid: i32,
    /// Bytes of page data written.
    pub page_bytes: u64,
    /// From reading the image to the detach.
    pub elapsed: Duration,
    /// Spent writing pages.
    pub pages_elapsed: Duration,
}

/// How to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore a shell job: the process's terminal (dumped with
    /// `--shell-job`) is replaced by ours.
    pub shell_job: bool,
    /// The terminal to give it; by default the one on our stdin, stdout
    /// or stderr.
    pub terminal: Option<PathBuf>,
    /// Run this at pre-restore, post-restore and network-unlock
    /// ([`crate::action`]).
    pub action_script: Option<PathBuf>,
}

/// Restores the image in `dir`. The root is our child and runs when this
/// returns, with every process of its tree; [`wait`] waits for it.
pub fn restore(dir: &Path) -> Result<Restored, RestoreError> {
    restore_with(dir, &RestoreOptions::default())
}

/// [`restore`] with options.
pub fn restore_with(dir: &Path, opts: &RestoreOptions) -> Result<Restored, RestoreError> {
    restore_impl(dir, opts, None)
}

/// Restores the image in `dir` into the task a container runtime prepared
/// ([`crate::container`]): its pid stays the task's, and it runs when this
/// returns.
pub fn restore_into(dir: &Path, into: &mut IntoTask<'_>) -> Result<Restored, RestoreError> {
    restore_impl(dir, &RestoreOptions::default(), Some(into))
}

fn restore_impl(
    dir: &Path,
    opts: &RestoreOptions,
    into: Option<&mut IntoTask<'_>>,
) -> Result<Restored, RestoreError> {
    let image = ImageDir::open(dir)?;
    let keep_stdio = into.as_ref().is_some_and(|t| t.keep_stdio);
    let root = into.as_ref().map(|t| t.root);
    let time_ns = image.inventory.time_ns.as_ref();
    let console = into.as_ref().and_then(|t| t.console);
    if let Some(c) = &image.inventory.console {
        let Some(fd) = console else {
            return Err(RestoreError::Unsupported(
                "the image holds a container's console, and no terminal was made for it (process.terminal, --console-socket)".into(),
            ));
        };
        if !c.controlling {
            return Err(RestoreError::Unsupported(
                "a console that was not the session's controlling terminal".into(),
            ));
        }
        crate::console::apply(fd, c).map_err(|e| RestoreError::Open {
            path: "the container's console".into(),
            source: e.into(),
        })?;
    }
    let net = into.as_ref().and_then(|t| t.net);
    let make_root = |pid: i32, held: &[(BorrowedFd<'_>, i32)]| match into {
        Some(t) => {
            let task = (t.place_files)(held).map_err(|source| RestoreError::Trace {
                pid,
                op: "hand the files to the prepared task".into(),
                source,
            })?;
            crate::timens::check_prepared(task, time_ns)?;
            Ok(task)
        }
        // In a new time namespace if the tree had one ([`crate::timens`]),
        // in a new pid namespace if it had one ([`crate::tree`]'s `ns`).
        None => match (time_ns, image.inventory.pid_ns) {
            (Some(_), true) => Err(RestoreError::Unsupported(
                "a tree with a pid namespace and a time namespace of its own".into(),
            )),
            (Some(clocks), false) => crate::timens::fork_root(pid, clocks),
            (None, true) => fork_root_in_new_pid_ns(image.inventory.mount_ns),
            (None, false) => fork_root(pid),
        },
    };
    let how = crate::tree::restore::How {
        opts,
        root,
        net,
        keep_stdio,
        console,
    };
    crate::tree::restore::restore_tree(&image, &how, make_root)
}

/// Makes the root of a restored tree: a child of ours with pid `pid`
/// (`clone3` with `set_tid`) that asks to be traced and stops itself
/// (`SIGSTOP`), its memory and fds a copy of ours. Returns its pid; the
/// caller waits for the stop ([`crate::tree`]).
pub fn fork_root(pid: i32) -> Result<i32, RestoreError> {
    let child = sys::fork_traced_child(Some(pid)).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) => RestoreError::PidInUse(pid),
        _ => RestoreError::Trace {
            pid,
            op: "clone3 with set_tid".into(),
            source: e,
        },
    })?;
    Ok(child.pid)
}

/// As [`fork_root`], the child pid 1 of a new pid namespace (an image of a
/// tree that had its own, [`crate::tree::ns`]); with `mount_ns`, in a new
/// mount namespace too (a private copy of ours) with a procfs of that pid
/// namespace on /proc. Returns its pid as we see it.
pub fn fork_root_in_new_pid_ns(mount_ns: bool) -> Result<i32, RestoreError> {
    let proc = if mount_ns {
        sys::ProcMount::New
    } else {
        sys::ProcMount::Ours
    };
    let child = sys::fork_traced_in_new_pid_ns(proc).map_err(|source| RestoreError::Trace {
        pid: 1,
        op: "clone3 with CLONE_NEWPID".into(),
        source,
    })?;
    Ok(child.pid)
}

/// Waits for the root's first stop and sets our ptrace options on it.
pub(crate) fn await_root(pid: i32) -> Result<(), RestoreError> {
    let trace = |op: &'static str| RestoreError::trace(pid, op);
    match sys::waitpid(pid).map_err(trace("waitpid"))? {
        WaitStatus::Stopped { sig, .. } if sig == libc::SIGSTOP => {}
        status => {
            return Err(RestoreError::Trace {
                pid,
                op: format!("child did not stop ({status:?})"),
                source: io::ErrorKind::Other.into(),
            })
        }
    }
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
    sys::ptrace_setoptions(pid, opts as u32).map_err(trace("PTRACE_SETOPTIONS"))
}

/// What one task needs from us, ready before the root is forked.
pub(crate) struct Prepared {
    /// Each thread's xstate, in image order.
    pub xstates: Vec<Vec<u8>>,
    /// The page file.
    pub pages: fs::File,
    /// Files it inherits from us.
    pub files: Files,
}

/// What a container runtime gave for its prepared task, all `None` for a
/// bare restore: its root (the image's paths are opened under it), its
/// console (the new pty), its network namespace (sockets and inotify
/// watches are made there, under the root).
#[derive(Clone, Copy, Default)]
pub(crate) struct Inside<'a> {
    pub root: Option<BorrowedFd<'a>>,
    pub console: Option<BorrowedFd<'a>>,
    pub net: Option<BorrowedFd<'a>>,
}

/// Reads and checks what `task` needs and opens its files at numbers from
/// `base` up (fds sharing a description with one opened before reuse it).
pub(crate) fn prepare(
    image: &ImageDir,
    task: &TaskImage,
    base: i32,
    shared: &mut crate::tree::SharedFiles,
    opts: &RestoreOptions,
    inside: Inside<'_>,
) -> Result<Prepared, RestoreError> {
    let xstates = task
        .threads
        .iter()
        .map(|t| {
            t.xstate_bytes()
                .map_err(|e| RestoreError::Unsupported(format!("thread {} xstate: {e}", t.tid)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pages_path = image.pages_path(task);
    let pages = fs::File::open(&pages_path).map_err(|source| RestoreError::Open {
        path: pages_path.clone(),
        source,
    })?;
    let pages_len = pages.metadata().map(|m| m.len()).unwrap_or(0);
    if pages_len != task.pages_size {
        return Err(ImageError::Invalid {
            what: pages_path.display().to_string(),
            reason: format!("{pages_len} bytes, the task file says {}", task.pages_size),
        }
        .into());
    }
    let files = Files::open(task, base, shared, &image.dir, opts, inside)?;
    Ok(Prepared {
        xstates,
        pages,
        files,
    })
}

/// Gives every thread of `task` (the leader `pid`, the others `threads`,
/// in image order) its CPU state and mask, and lets it run: the others
/// first, the leader last.
pub(crate) fn resume_task(
    pid: i32,
    task: &TaskImage,
    xstates: &[Vec<u8>],
    threads: &[i32],
) -> Result<(), RestoreError> {
    let tids = threads.iter().copied().chain([pid]);
    let states = task.threads[1..].iter().zip(&xstates[1..]);
    for (tid, (t, xstate)) in tids.zip(states.chain([(&task.threads[0], &xstates[0])])) {
        let trace = |op: &'static str| RestoreError::trace(tid, op);
        sys::ptrace_set_xstate(tid, xstate).map_err(trace("PTRACE_SETREGSET NT_X86_XSTATE"))?;
        let regs: libc::user_regs_struct = t.regs.clone().into();
        sys::ptrace_set_sigmask(tid, t.sigmask).map_err(trace("PTRACE_SETSIGMASK"))?;
        inject::resume(pid, tid, &regs).map_err(trace("resume"))?;
    }
    Ok(())
}

/// Waits for a restored child; returns its exit status, 128 + N when
/// killed by signal N.
pub fn wait(pid: i32) -> io::Result<i32> {
    loop {
        match sys::waitpid(pid)? {
            WaitStatus::Exited(c) => return Ok(c),
            WaitStatus::Signaled(s) => return Ok(128 + s),
            WaitStatus::Stopped { .. } => {}
        }
    }
}

/// Files the new task needs, opened by us before the fork and moved to fd
/// numbers above every fd of the image, so the child inherits them there.
pub(crate) struct Files {
    /// First number of ours; every image fd is below.
    base: i32,
    /// Kept open until the child has its copies.
    held: Vec<OwnedFd>,
    /// Source fd of each file mapping, by (dev, ino, writable).
    maps: HashMap<(u64, u64, bool), i32>,
    /// Source fd of each image fd, in image order.
    fds: Vec<i32>,
    exe: i32,
    cwd: i32,
}

/// Opens `id` with open(2) `flags`: by its path, or under `root` (a
/// container's, [`crate::container::open_in_root`]).
fn open_checked(
    id: &FileId,
    flags: i32,
    root: Option<BorrowedFd<'_>>,
) -> Result<fs::File, RestoreError> {
    let acc = flags & libc::O_ACCMODE;
    let opened = match root {
        Some(root) => crate::container::open_in_root(
            root,
            &id.path,
            rustix::fs::OFlags::from_bits_retain(flags as u32),
        ),
        None => fs::OpenOptions::new()
            .read(acc != libc::O_WRONLY)
            .write(acc != libc::O_RDONLY)
            .custom_flags((flags & !libc::O_ACCMODE) | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(&id.path),
    };
    let f = opened.map_err(|source| RestoreError::Open {
        path: id.path.clone().into(),
        source,
    })?;
    let md = f.metadata().map_err(|source| RestoreError::Open {
        path: id.path.clone().into(),
        source,
    })?;
    check_same(id, &md)?;
    Ok(f)
}

/// Fails with [`RestoreError::Replaced`] unless `md`, of the file now at
/// `id`'s path, is the file `id` names ([`FileId::difference`]).
pub(crate) fn check_same(id: &FileId, md: &fs::Metadata) -> Result<(), RestoreError> {
    match id.difference(md) {
        None => Ok(()),
        Some(difference) => Err(RestoreError::Replaced {
            path: id.path.clone(),
            difference,
        }),
    }
}

impl Files {
    fn open(
        task: &TaskImage,
        base: i32,
        shared: &mut crate::tree::SharedFiles,
        dir: &Path,
        opts: &RestoreOptions,
        inside: Inside<'_>,
    ) -> Result<Self, RestoreError> {
        let Inside { root, console, net } = inside;
        let place = root
            .zip(net)
            .map(|(root, net)| crate::files::Place { root, net });
        let mut files = Files {
            base,
            held: Vec::new(),
            maps: HashMap::new(),
            fds: Vec::new(),
            exe: -1,
            cwd: -1,
        };
        for v in &task.vmas {
            if let Backing::File { file, .. } = &v.backing {
                let writable = v.shared && v.prot & libc::PROT_WRITE as u32 != 0;
                let key = (file.dev, file.ino, writable);
                if !files.maps.contains_key(&key) {
                    let acc = if writable {
                        libc::O_RDWR
                    } else {
                        libc::O_RDONLY
                    };
                    let f = open_checked(file, acc, root)?;
                    let n = files.keep(f.into())?;
                    files.maps.insert(key, n);
                }
            }
        }
        let exe = open_checked(&task.exe, libc::O_RDONLY, root)?;
        files.exe = files.keep(exe.into())?;
        let cwd = FileId {
            path: task.cwd.clone(),
            dev: 0,
            ino: 0,
            stamp: None,
        };
        let cwd_dir = match root {
            Some(root) => crate::container::open_in_root(
                root,
                &cwd.path,
                rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
            ),
            None => fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(&cwd.path),
        }
        .map_err(|source| RestoreError::Open {
            path: cwd.path.into(),
            source,
        })?;
        files.cwd = files.keep(cwd_dir.into())?;
        let mut made = crate::files::Builder::new(task, dir, opts, console, place)?;
        for fd in &task.fds {
            let at = TaskFd {
                pid: task.pid,
                fd: fd.fd,
            };
            if let Some(n) = shared.source(at) {
                files.fds.push(n);
                continue;
            }
            let (file, pos) = match &fd.kind {
                FdKind::Path { file, pos } => (file, pos),
                FdKind::Dup { fd: of } => {
                    let earlier = task.fds.iter().position(|f| f.fd == *of);
                    let Some(&n) = earlier.and_then(|i| files.fds.get(i)) else {
                        return Err(RestoreError::Unsupported(format!(
                            "fd {} a dup of fd {of}, which comes later or not at all",
                            fd.fd
                        )));
                    };
                    shared.opened(at, n);
                    files.fds.push(n);
                    continue;
                }
                _ => {
                    let f = made.open(fd)?;
                    let n = files.keep(f)?;
                    shared.opened(at, n);
                    files.fds.push(n);
                    continue;
                }
            };
            let acc = fd.flags & libc::O_ACCMODE as u32;
            let keep_flags = libc::O_APPEND
                | libc::O_NONBLOCK
                | libc::O_DIRECT
                | libc::O_NOATIME
                | libc::O_DIRECTORY;
            let f = open_checked(file, acc as i32 | (fd.flags as i32 & keep_flags), root)?;
            if f.metadata().map(|m| m.is_file()).unwrap_or(false) {
                rustix::fs::seek(&f, rustix::fs::SeekFrom::Start(*pos)).map_err(|e| {
                    RestoreError::Open {
                        path: file.path.clone().into(),
                        source: e.into(),
                    }
                })?;
            }
            let n = files.keep(f.into())?;
            shared.opened(at, n);
            files.fds.push(n);
        }
        Ok(files)
    }

    /// Every file we hold for the task, with the number it has here (and
    /// in a task forked from us).
    pub(crate) fn numbered(&self) -> Vec<(BorrowedFd<'_>, i32)> {
        self.held
            .iter()
            .map(|f| (f.as_fd(), f.as_raw_fd()))
            .collect()
    }

    fn keep(&mut self, fd: OwnedFd) -> Result<i32, RestoreError> {
        let high =
            rustix::io::fcntl_dupfd_cloexec(&fd, self.base).map_err(|e| RestoreError::Open {
                path: "fcntl(F_DUPFD_CLOEXEC)".into(),
                source: e.into(),
            })?;
        let n = high.as_raw_fd();
        self.held.push(high);
        Ok(n)
    }
}

const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Injects into `pid` everything between the first stop and the final
/// registers. Returns the time spent writing pages.
pub(crate) fn rebuild(
    pid: i32,
    task: &TaskImage,
    files: &Files,
    pages: &fs::File,
    threads: &mut Vec<i32>,
    keep: &[i32],
) -> Result<Duration, RestoreError> {
    let trace = |op: &'static str| RestoreError::trace(pid, op);
    let base_regs = sys::ptrace_getregs(pid).map_err(trace("PTRACE_GETREGS"))?;
    let maps_text = fs::read_to_string(format!("/proc/{pid}/maps")).map_err(trace("read maps"))?;
    let maps = procfs::parse_smaps(&maps_text)
        .map_err(|e| RestoreError::Unsupported(format!("our own maps: {e}")))?;
    let ours: Vec<_> = maps
        .iter()
        .filter(|m| {
            matches!(
                m.path.as_deref(),
                Some("[vdso]" | "[vvar]" | "[vvar_vclock]")
            )
        })
        .collect();
    let theirs: Vec<_> = task
        .vmas
        .iter()
        .filter(|v| matches!(v.backing, Backing::Vdso { .. }))
        .collect();
    let (Some(our_vdso), Some(_)) = (
        ours.iter().find(|m| m.path.as_deref() == Some("[vdso]")),
        theirs
            .iter()
            .find(|v| matches!(&v.backing, Backing::Vdso { name } if name == "[vdso]")),
    ) else {
        return Err(RestoreError::Unsupported(
            "an image or a kernel without [vdso]".into(),
        ));
    };
    let layout_ok = ours.len() == theirs.len()
        && ours.iter().zip(&theirs).all(|(o, t)| {
            matches!(&t.backing, Backing::Vdso { name } if Some(name.as_str()) == o.path.as_deref())
                && o.end - o.start == t.len()
                && o.start.wrapping_sub(ours[0].start) == t.start.wrapping_sub(theirs[0].start)
        });
    if !layout_ok {
        return Err(RestoreError::Unsupported(
            "a vdso layout that differs from this kernel's".into(),
        ));
    }
    let mut text = vec![0u8; (our_vdso.end - our_vdso.start) as usize];
    sys::process_vm_readv(
        pid,
        &mut text,
        &[(our_vdso.start, our_vdso.end - our_vdso.start)],
    )
    .map_err(trace("read the vdso"))?;
    let off = inject::find_syscall_insn(&text)
        .ok_or_else(|| RestoreError::Unsupported("a vdso without a syscall instruction".into()))?;
    let mut inj = Injector::new(pid, our_vdso.start + off, base_regs);

    // 1. Trap 2: the rseq area glibc registered for us is about to vanish.
    if let Some((addr, len, sig)) = sys::ptrace_get_rseq(pid).map_err(trace("rseq config"))? {
        let args = [
            addr,
            len.into(),
            sys::RSEQ_FLAG_UNREGISTER,
            sig.into(),
            0,
            0,
        ];
        inj.syscall(libc::SYS_rseq, args)?;
    }
    // 2. Only the files we opened for it stay (and the stdio a container
    // runtime gave it, `keep`): close every range between kept fds.
    let mut first = 0u64;
    let mut kept: Vec<u64> = keep.iter().map(|&k| k as u64).collect();
    kept.sort_unstable();
    for end in kept.into_iter().chain([files.base as u64]) {
        if first < end {
            inj.syscall(libc::SYS_close_range, [first, end - 1, 0, 0, 0, 0])?;
        }
        first = end + 1;
    }

    // 3. Unmap all but the vdso block, then move the block (trap 1).
    let block = (ours[0].start, ours[ours.len() - 1].end);
    let target = (theirs[0].start, theirs[theirs.len() - 1].end);
    for (s, e) in [(0, block.0), (block.1, TASK_SIZE)] {
        if e > s {
            inj.syscall(libc::SYS_munmap, [s, e - s, 0, 0, 0, 0])?;
        }
    }
    if block.0 != target.0 {
        let size = block.1 - block.0;
        let mut from = block.0;
        if block.0 < target.1 && target.0 < block.1 {
            // Overlapping moves would unmap each other: go through a hole.
            let tmp = free_range(task, size, &[block, target])?;
            move_block(&inj, &ours, from, tmp)?;
            from = tmp;
        }
        move_block(&inj, &ours, from, target.0)?;
        inj.set_syscall_ip(our_vdso.start - block.0 + target.0 + off);
    }
    let scratch = free_range(task, PAGE_SIZE, &[target])?;
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64;
    inj.syscall(libc::SYS_mmap, [scratch, PAGE_SIZE, rw, anon, u64::MAX, 0])?;

    // 4. Memory.
    for v in task.vmas.iter() {
        match v.backing {
            Backing::Sysv { shmid, offset } => {
                let avoid = [target, (scratch, scratch + PAGE_SIZE)];
                attach_shm(&inj, task, v, shmid, offset, scratch, &avoid)?;
            }
            _ => map_vma(&inj, v, files)?,
        }
    }
    let started = Instant::now();
    let uffd = open_uffd(&inj, task)?;
    let runs: Vec<pages::Run> = task
        .vmas
        .iter()
        .flat_map(|v| {
            let fast = uffd.as_ref().is_some_and(|u| u.1.contains(&v.start));
            v.pages.iter().map(move |&run| pages::Run { run, fast })
        })
        .collect();
    pages::restore(pid, &runs, pages, uffd.as_ref().map(|u| &u.0))
        .map_err(trace("copy the page data"))?;
    if let Some((uffd, registered)) = uffd {
        for v in task.vmas.iter().filter(|v| registered.contains(&v.start)) {
            uffd.unregister(v.start, v.len())
                .map_err(trace("UFFDIO_UNREGISTER"))?;
        }
    }
    let pages_elapsed = started.elapsed();
    for v in &task.vmas {
        if !v.pages.is_empty() && v.prot & libc::PROT_WRITE as u32 == 0 {
            inj.syscall(
                libc::SYS_mprotect,
                [v.start, v.len(), v.prot.into(), 0, 0, 0],
            )?;
        }
    }

    // 5. The rest of the task's state.
    let mm = &task.mm;
    let auxv_at = scratch + 256;
    let auxv_bytes: Vec<u8> = mm.auxv.iter().flat_map(|w| w.to_le_bytes()).collect();
    if auxv_bytes.len() > (PAGE_SIZE - 256) as usize {
        return Err(RestoreError::Unsupported("an auxv over 3840 bytes".into()));
    }
    let mut mm_map: Vec<u8> = [
        mm.start_code,
        mm.end_code,
        mm.start_data,
        mm.end_data,
        mm.start_brk,
        mm.brk,
        mm.start_stack,
        mm.arg_start,
        mm.arg_end,
        mm.env_start,
        mm.env_end,
        auxv_at,
    ]
    .iter()
    .flat_map(|w| w.to_le_bytes())
    .collect();
    mm_map.extend((auxv_bytes.len() as u32).to_le_bytes());
    mm_map.extend((files.exe as u32).to_le_bytes());
    poke(pid, scratch, &mm_map).map_err(trace("write prctl_mm_map"))?;
    poke(pid, auxv_at, &auxv_bytes).map_err(trace("write auxv"))?;
    let size = mm_map.len() as u64;
    inj.syscall(
        libc::SYS_prctl,
        [
            libc::PR_SET_MM as u64,
            sys::PR_SET_MM_MAP,
            scratch,
            size,
            0,
            0,
        ],
    )?;

    for a in &task.sigactions {
        let act: Vec<u8> = [a.handler, a.flags, a.restorer, a.mask]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        poke(pid, scratch, &act).map_err(trace("write a sigaction"))?;
        inj.syscall(
            libc::SYS_rt_sigaction,
            [a.signo.into(), scratch, 0, 8, 0, 0],
        )?;
    }
    let mut comm = task
        .comm
        .as_bytes()
        .iter()
        .take(15)
        .copied()
        .collect::<Vec<_>>();
    comm.push(0);
    poke(pid, scratch, &comm).map_err(trace("write comm"))?;
    inj.syscall(
        libc::SYS_prctl,
        [libc::PR_SET_NAME as u64, scratch, 0, 0, 0, 0],
    )?;
    for (fd, &src) in task.fds.iter().zip(&files.fds) {
        let flags = if fd.cloexec {
            libc::O_CLOEXEC as u64
        } else {
            0
        };
        inj.syscall(libc::SYS_dup3, [src as u64, fd.fd as u64, flags, 0, 0, 0])?;
    }
    crate::files::add_epoll_watches(&inj, scratch, task)?;
    inj.syscall(libc::SYS_fchdir, [files.cwd as u64, 0, 0, 0, 0, 0])?;
    inj.syscall(
        libc::SYS_close_range,
        [files.base as u64, u32::MAX.into(), 0, 0, 0, 0],
    )?;
    // After that close: closing any fd of a file drops the POSIX locks
    // the process holds on it, and our copies sat on the same files.
    crate::locks::take(&inj, scratch, task)?;
    let leader = &task.threads[0];
    set_thread_state(&inj, leader, false)?;
    for t in &task.threads[1..] {
        clone_thread(&inj, scratch, t, threads, task.pid)?;
    }
    inj.syscall(libc::SYS_munmap, [scratch, PAGE_SIZE, 0, 0, 0, 0])?;
    if let Some(r) = &task.threads[0].rseq {
        inj.syscall(
            libc::SYS_rseq,
            [r.addr, r.len.into(), 0, r.signature.into(), 0, 0],
        )?;
    }
    inj.syscall(
        libc::SYS_prctl,
        [libc::PR_SET_PDEATHSIG as u64, 0, 0, 0, 0, 0],
    )?;
    if pid != task.pid {
        // A container runtime's init may have made itself non-dumpable
        // while it was the runtime; now it is the dumped program.
        inj.syscall(
            libc::SYS_prctl,
            [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0],
        )?;
    }
    Ok(pages_elapsed)
}

/// Runs in a thread (through `inj`) the syscalls that set what belongs to
/// it alone: `clear_child_tid`, the robust futex list and, with `rseq`,
/// its rseq area (the leader registers its own last, trap 2).
fn set_thread_state(inj: &Injector, t: &ThreadImage, rseq: bool) -> Result<(), RestoreError> {
    inj.syscall(libc::SYS_set_tid_address, [t.clear_tid, 0, 0, 0, 0, 0])?;
    if let Some(r) = &t.robust_list {
        inj.syscall(libc::SYS_set_robust_list, [r.head, r.len, 0, 0, 0, 0])?;
    }
    if let (true, Some(r)) = (rseq, &t.rseq) {
        inj.syscall(
            libc::SYS_rseq,
            [r.addr, r.len.into(), 0, r.signature.into(), 0, 0],
        )?;
    }
    Ok(())
}

/// `clone3` flags of a restored thread: the leader's address space, files,
/// fs, signal handlers and SysV undo list, in its thread group, and traced
/// by us from birth (`CLONE_PTRACE`: it stops with `SIGSTOP` before running
/// any instruction, so it never runs on the leader's stack).
const THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_PTRACE) as u64;

/// Creates thread `t` in the task with an injected `clone3` (`set_tid`: its
/// dumped tid), waits for its first stop and sets its own state; returns
/// its tid, pushed on `created` as soon as it exists. Registers, xstate and
/// mask come with the leader's, at the end.
fn clone_thread(
    inj: &Injector,
    scratch: u64,
    t: &ThreadImage,
    created: &mut Vec<i32>,
    task_pid: i32,
) -> Result<(), RestoreError> {
    let pid = inj.pid();
    let trace = |op: &'static str| RestoreError::trace(t.tid, op);
    let set_tid_at = scratch + 512;
    // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal,
    // stack, stack_size, tls, set_tid, set_tid_size, cgroup.
    let args: Vec<u8> = [THREAD_FLAGS, 0, 0, 0, 0, 0, 0, 0, set_tid_at, 1, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    poke(pid, scratch, &args).map_err(trace("write clone_args"))?;
    poke(pid, set_tid_at, &t.tid.to_le_bytes()).map_err(trace("write set_tid"))?;
    let ns_tid = inj.syscall(libc::SYS_clone3, [scratch, args.len() as u64, 0, 0, 0, 0])? as i32;
    // In a container's pid namespace the task sees its own ids; we need
    // the host's.
    let tid = if inj.pid() == task_pid {
        ns_tid
    } else {
        crate::container::host_tid(inj.pid(), ns_tid).map_err(trace("find the new thread"))?
    };
    created.push(tid);
    if ns_tid != t.tid {
        return Err(RestoreError::Trace {
            pid: t.tid,
            op: format!("clone3 made thread {ns_tid}"),
            source: io::ErrorKind::Other.into(),
        });
    }
    match sys::waitpid(tid).map_err(trace("waitpid"))? {
        WaitStatus::Stopped { sig, .. } if sig == libc::SIGSTOP => {}
        status => {
            return Err(RestoreError::Trace {
                pid: tid,
                op: format!("new thread did not stop ({status:?})"),
                source: io::ErrorKind::Other.into(),
            })
        }
    }
    let regs = sys::ptrace_getregs(tid).map_err(trace("PTRACE_GETREGS"))?;
    let tinj = Injector::new(tid, inj.syscall_ip(), regs);
    set_thread_state(&tinj, t, true)
}

fn poke(pid: i32, addr: u64, data: &[u8]) -> io::Result<()> {
    sys::process_vm_writev(pid, &[data], &[(addr, data.len() as u64)]).map(drop)
}

/// A page-aligned range of `size` bytes overlapping no mapping of the image
/// and none of `avoid`.
fn free_range(task: &TaskImage, size: u64, avoid: &[(u64, u64)]) -> Result<u64, RestoreError> {
    let taken = |s: u64| {
        let e = s + size;
        task.vmas.iter().any(|v| s < v.end && v.start < e)
            || avoid.iter().any(|&(a, b)| s < b && a < e)
    };
    (1..0x7fffu64)
        .map(|n| n << 32)
        .find(|&s| !taken(s))
        .ok_or_else(|| RestoreError::Unsupported("an address space with no free hole".into()))
}

/// Moves the vdso block (mappings `ours`, which started at `ours[0].start`
/// and now start at `from`) to start at `to`.
fn move_block(
    inj: &Injector,
    ours: &[&procfs::MapEntry],
    from: u64,
    to: u64,
) -> Result<(), RestoreError> {
    let flags = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64;
    for m in ours {
        let len = m.end - m.start;
        let rel = m.start - ours[0].start;
        inj.syscall(libc::SYS_mremap, [from + rel, len, len, flags, to + rel, 0])?;
    }
    Ok(())
}

fn map_vma(inj: &Injector, v: &Vma, files: &Files) -> Result<(), RestoreError> {
    let mut prot = u64::from(v.prot);
    if !v.pages.is_empty() {
        prot |= libc::PROT_WRITE as u64; // trap 3: filled before the final mprotect
    }
    let share = if v.shared {
        libc::MAP_SHARED
    } else {
        libc::MAP_PRIVATE
    };
    let args = match &v.backing {
        Backing::Vdso { .. } | Backing::Sysv { .. } => return Ok(()),
        Backing::Anon { .. } => {
            let mut flags = share | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
            if v.vm_flags.iter().any(|f| f == "gd") {
                flags |= libc::MAP_GROWSDOWN;
            }
            [v.start, v.len(), prot, flags as u64, u64::MAX, 0]
        }
        Backing::File { file, offset } => {
            let writable = v.shared && v.prot & libc::PROT_WRITE as u32 != 0;
            let fd = files.maps[&(file.dev, file.ino, writable)];
            let flags = (share | libc::MAP_FIXED) as u64;
            [v.start, v.len(), prot, flags, fd as u64, *offset]
        }
    };
    inj.syscall(libc::SYS_mmap, args)?;
    Ok(())
}

/// Attaches SysV segment `shmid` (made again in the task's IPC namespace
/// by [`crate::sysv::restore`]) where mapping `v` was, with an injected
/// `shmat`: the whole segment straight there (`SHM_REMAP`), or, for a part
/// (`offset`, a mapping split by `munmap`), at a free place first, the
/// part moved with `mremap` and the rest detached. Read-only when the
/// mapping could not be made writable (no `mw` in its flags, as after
/// `SHM_RDONLY`); then its protection as dumped. The kernel counts each
/// mapping as an attach.
fn attach_shm(
    inj: &Injector,
    task: &TaskImage,
    v: &Vma,
    shmid: i32,
    offset: u64,
    scratch: u64,
    avoid: &[(u64, u64)],
) -> Result<(), RestoreError> {
    let pid = inj.pid();
    let id = shmid as u64;
    inj.syscall(
        libc::SYS_shmctl,
        [id, libc::IPC_STAT as u64, scratch, 0, 0, 0],
    )?;
    let mut segsz = [0u8; 8];
    sys::process_vm_readv(
        pid,
        &mut segsz,
        &[(scratch + sys::SHMID_DS_SEGSZ_OFFSET, 8)],
    )
    .map_err(RestoreError::trace(pid, "read shmid_ds"))?;
    let size = u64::from_le_bytes(segsz).next_multiple_of(PAGE_SIZE);
    if offset.checked_add(v.len()).is_none_or(|e| e > size) {
        return Err(RestoreError::Unsupported(format!(
            "mapping {:#x}-{:#x} beyond SysV segment {shmid} ({size} bytes now)",
            v.start, v.end
        )));
    }
    let writable = v.vm_flags.iter().any(|f| f == "mw");
    let exec = v.prot & libc::PROT_EXEC as u32 != 0;
    let mut flags = if writable { 0 } else { sys::SHM_RDONLY };
    let mut prot = libc::PROT_READ as u32;
    if writable {
        prot |= libc::PROT_WRITE as u32;
    }
    if exec {
        flags |= sys::SHM_EXEC;
        prot |= libc::PROT_EXEC as u32;
    }
    if offset == 0 && v.len() == size {
        let args = [id, v.start, (flags | sys::SHM_REMAP) as u64, 0, 0, 0];
        inj.syscall(libc::SYS_shmat, args)?;
    } else {
        let tmp = free_range(task, size, avoid)?;
        inj.syscall(libc::SYS_shmat, [id, tmp, flags as u64, 0, 0, 0])?;
        let mflags = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64;
        let len = v.len();
        inj.syscall(
            libc::SYS_mremap,
            [tmp + offset, len, len, mflags, v.start, 0],
        )?;
        inj.syscall(libc::SYS_munmap, [tmp, size, 0, 0, 0, 0])?;
    }
    if prot != v.prot {
        inj.syscall(
            libc::SYS_mprotect,
            [v.start, v.len(), v.prot.into(), 0, 0, 0],
        )?;
    }
    Ok(())
}

/// Has the task make a userfaultfd, takes a copy of it (`pidfd_getfd`)
/// and closes the task's own, then registers every private anonymous
/// mapping that has pages: [`pages::restore`] fills those with
/// `UFFDIO_COPY`. Returns the fd and the start of each registered mapping,
/// or `None` when this kernel or task cannot have one (the pages then go
/// with `process_vm_writev`). Closing our copy, which comes after
/// `UFFDIO_UNREGISTER`, leaves the task no trace of it.
fn open_uffd(
    inj: &Injector,
    task: &TaskImage,
) -> Result<Option<(sys::Uffd, Vec<u64>)>, RestoreError> {
    let pid = inj.pid();
    let fd = match inj.syscall(
        libc::SYS_userfaultfd,
        [sys::USERFAULTFD_FLAGS, 0, 0, 0, 0, 0],
    ) {
        Ok(fd) => fd,
        Err(InjectError::Failed { source, .. }) => {
            tracing::debug!(pid, %source, "no userfaultfd: pages go by process_vm_writev");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let ours = sys::pidfd_getfd(pid, fd as i32);
    inj.syscall(libc::SYS_close, [fd, 0, 0, 0, 0, 0])?;
    let uffd = match ours.and_then(sys::Uffd::new) {
        Ok(u) => u,
        Err(source) => {
            tracing::debug!(pid, %source, "userfaultfd unusable: pages go by process_vm_writev");
            return Ok(None);
        }
    };
    let mut registered = Vec::new();
    for v in &task.vmas {
        if v.pages.is_empty() || v.shared || !matches!(v.backing, Backing::Anon { .. }) {
            continue;
        }
        match uffd.register_missing(v.start, v.len()) {
            Ok(()) => registered.push(v.start),
            Err(source) => {
                tracing::debug!(pid, start = v.start, %source, "UFFDIO_REGISTER failed");
            }
        }
    }
    Ok(Some((uffd, registered)))
}
