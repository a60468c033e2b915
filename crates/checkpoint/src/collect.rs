//! Dump: freeze a process with ptrace, read its state, write an image.
//!
//! Order: seize and interrupt (the task stops where it is, no code of ours
//! runs in it); refuse what we cannot restore yet, by name; read registers,
//! xstate, signal mask and rseq; read maps; run `rt_sigaction` and `brk(0)`
//! inside the task (see [`crate::inject`]) for what /proc does not show;
//! read the pages pagemap says exist with large `process_vm_readv` vectors
//! and write them once ([`crate::pages`], trap 4: never a round trip per
//! page) while another thread reads smaps for the `VmFlags`; write the task file, then the inventory last, so a dump that
//! fails half way leaves no image that opens. Then kill the task, or let it
//! go on with `leave_running`.
//!
//! Supported so far: a process tree ([`crate::tree`]), each process with any number of threads (each one's
//! registers, xstate, signal mask, rseq, robust list and clear_child_tid),
//! private and file-backed memory, signal handlers, the kernel state of
//! [`crate::state`] (pending signals, alternate stacks, itimers, POSIX
//! timers, credentials, umask, rlimits, scheduling, personality,
//! no_new_privs, seccomp filters, subreaper, parent-death signal, thread
//! names, madvise flags and memory locks…; it refuses what it cannot
//! restore by name), cwd, and fds: regular files, directories, memory
//! devices, pipes, FIFOs, unix sockets, eventfd, signalfd, timerfd, epoll,
//! inotify, memfd, unlinked files and, with `shell_job`, the terminal
//! (`files`), with `file_locks` the file locks they hold
//! ([`crate::locks`]), and the clocks of a time namespace of the tree's own
//! ([`crate::timens`]). Everything else is refused
//! with an error naming the pid and the resource.

use std::fs;
use std::io;
use std::os::fd::AsFd as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::action::{self, Stage};
use crate::container::DumpExtra;
use crate::image::{self, *};
use crate::inject::{self, InjectError, Injector};
use crate::pages;
use crate::proc::{self as procfs, MapEntry};
use crate::sys::{self, WaitStatus};

/// What to dump and how.
#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    /// The process.
    pub pid: i32,
    /// Where the image goes (created if missing; must hold no image).
    pub images_dir: PathBuf,
    /// Let the process run on after the dump instead of killing it.
    pub leave_running: bool,
    /// Dump a process whose terminal is its controlling tty (a shell job):
    /// the restore gives it the restorer's terminal instead.
    pub shell_job: bool,
    /// Dump established TCP connections: not supported yet, refused.
    pub tcp_established: bool,
    /// Dump unix sockets connected outside the tree: not supported yet,
    /// refused.
    pub ext_unix_sk: bool,
    /// Dump file locks (POSIX, OFD, flock: [`crate::locks`]); without it a
    /// process holding one is refused, naming the option.
    pub file_locks: bool,
    /// Run this at pre-dump, network-lock, post-dump and network-unlock
    /// ([`crate::action`]).
    pub action_script: Option<PathBuf>,
}

/// What a dump did.
#[derive(Clone, Debug)]
pub struct DumpStats {
    /// Mappings dumped.
    pub vmas: usize,
    /// Bytes of page data written.
    pub page_bytes: u64,
    /// Time from seize to the inventory written.
    pub elapsed: Duration,
    /// Time spent reading and writing pages.
    pub pages_elapsed: Duration,
}

/// A dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The process has something this version cannot dump.
    #[error("pid {pid}{}: {what}; not supported yet", fd.map(|f| format!(" fd {f}")).unwrap_or_default())]
    Unsupported {
        /// The task.
        pid: i32,
        /// The fd concerned, if any.
        fd: Option<i32>,
        /// What it is.
        what: String,
    },
    /// The process has something dumped only with an option.
    #[error("pid {pid}{}: {what}; pass {option}", fd.map(|f| format!(" fd {f}")).unwrap_or_default())]
    NeedsOption {
        /// The task.
        pid: i32,
        /// The fd concerned, if any.
        fd: Option<i32>,
        /// What it is.
        what: String,
        /// The option (`--shell-job`, `--tcp-established`, …).
        option: &'static str,
    },
    /// A /proc file of the task could not be read or parsed.
    #[error("pid {pid}: read {}", path.display())]
    Proc {
        /// The task.
        pid: i32,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A ptrace or memory-reading call on the task failed.
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
    /// A syscall run inside the task failed.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// The action script failed at a stage.
    #[error(transparent)]
    Action(#[from] crate::action::ActionError),
    /// Writing the image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl DumpError {
    /// A `Trace` error for what `op` did to task `pid`, as a `map_err`
    /// argument.
    pub(crate) fn trace(pid: i32, op: impl Into<String>) -> impl FnOnce(io::Error) -> DumpError {
        let op = op.into();
        move |source| DumpError::Trace { pid, op, source }
    }
}

/// Dumps `opts.pid` to `opts.images_dir`.
pub fn dump(opts: &DumpOptions) -> Result<DumpStats, DumpError> {
    dump_with(opts, &DumpExtra::default())
}

/// As [`dump`], recording a container's process as `extra` says
/// ([`crate::container`]).
pub fn dump_with(opts: &DumpOptions, extra: &DumpExtra<'_>) -> Result<DumpStats, DumpError> {
    let started = Instant::now();
    let pid = opts.pid;
    let dir = &opts.images_dir;
    if let Some(fd) = extra.console {
        // Refused before an image is begun (read again once seized).
        crate::console::dump(pid, fd)?;
    }
    fs::create_dir_all(dir).map_err(|source| ImageError::Io {
        op: "create",
        path: dir.clone(),
        source,
    })?;
    refuse_unimplemented_options(opts)?;
    let script = opts.action_script.as_deref();
    action::run(script, Stage::PreDump, pid)?;
    // Every process of the tree, every thread stopped, before anything is
    // read ([`crate::tree`]).
    // A bare tree whose root is pid 1 of a pid namespace of its own is
    // recorded in that namespace's pids, as a container's ([`crate::tree`]'s
    // `ns`); refused, before anything is stopped, if it is not its pid 1.
    let own = !extra.ns_pids && crate::tree::ns::own_pid_ns(pid)?;
    let ns = NsMode {
        pid_ns: extra.ns_pids || own,
        mount_ns: own && crate::tree::ns::own_mount_ns(pid)?,
    };
    let tree = crate::tree::dump::SeizedTree::seize(pid)?;
    // After network-lock (even a failed one) the network is unlocked
    // whenever the tree runs on.
    // (A failed lock drops the closure, and with it `tree`: the seize is
    // undone before the unlock runs.)
    let dumped = action::run(script, Stage::NetworkLock, pid)
        .map_err(DumpError::from)
        .and_then(|()| dump_seized(opts, extra, ns, tree, started));
    match dumped {
        Ok(stats) => {
            if opts.leave_running {
                action::run(script, Stage::NetworkUnlock, pid)?;
            }
            Ok(stats)
        }
        Err(e) => {
            // The tree runs on (the seize was undone as it dropped): let
            // its network go too. The first error is the one to report.
            if let Err(a) = action::run(script, Stage::NetworkUnlock, pid) {
                tracing::warn!("{a}");
            }
            Err(e)
        }
    }
}

/// Which pid namespace the image's pids are in, and whether the root had
/// a mount namespace of its own (for its /proc).
#[derive(Clone, Copy, Debug)]
struct NsMode {
    pid_ns: bool,
    mount_ns: bool,
}

/// The dump of a seized tree, from the thaw hook to the kill or release.
fn dump_seized(
    opts: &DumpOptions,
    extra: &DumpExtra<'_>,
    NsMode { pid_ns, mount_ns }: NsMode,
    mut tree: crate::tree::dump::SeizedTree,
    started: Instant,
) -> Result<DumpStats, DumpError> {
    let pid = opts.pid;
    let dir = &opts.images_dir;
    if let Some(hook) = extra.on_seized {
        hook().map_err(|source| DumpError::Trace {
            pid,
            op: "after the seize (thaw)".into(),
            source,
        })?;
    }
    crate::tree::ns::refuse_nested(&tree.entries())?;
    // The tree's clocks, read while it is stopped, if it has a time
    // namespace of its own ([`crate::timens`]).
    let procs: Vec<(i32, Vec<i32>)> = tree.procs_mut().map(|s| (s.pid, s.tids())).collect();
    let time_ns = crate::timens::dump(&procs)?;
    if pid_ns && !extra.ns_pids && time_ns.is_some() {
        return Err(unsupported(
            pid,
            None,
            "a pid namespace and a time namespace of its own (bare restore makes one or the other)",
        ));
    }
    if !extra.ns_pids {
        let pids: Vec<i32> = tree.procs_mut().map(|s| s.pid).collect();
        refuse_other_ipc_ns(&pids)?;
    }
    if !extra.sysv_ipc {
        for seized in tree.procs_mut() {
            refuse_attached_shm(seized.pid)?;
        }
    }
    let console = extra
        .console
        .map(|fd| crate::console::dump(pid, fd))
        .transpose()?;
    let console_id = console.as_ref().map(|c| c.0);
    let mut tasks = Vec::new();
    let mut inherited_stdio = Vec::new();
    let (mut page_bytes, mut pages_elapsed) = (0, Duration::ZERO);
    for seized in tree.procs_mut() {
        if !extra.ns_pids {
            refuse_foreign_userns(seized.pid)?;
            crate::files::refuse_foreign_netns_sockets(seized.pid)?;
        }
        let skip: Vec<i32> = match (extra.inherit_stdio, seized.pid == pid) {
            (false, _) => Vec::new(),
            (true, true) => vec![0, 1, 2],
            // A child's stdio that is the root's: the runtime's, as the
            // root's is; it inherits it again at restore.
            (true, false) => (0..=2)
                .filter(|&n| sys::kcmp_file_between(pid, seized.pid, n, n).unwrap_or(false))
                .collect(),
        };
        if seized.pid != pid {
            inherited_stdio.extend(skip.iter().map(|&fd| TaskFd {
                pid: seized.pid,
                fd,
            }));
        }
        let (task, bytes, elapsed) = collect_task(seized, dir, opts, &skip, console_id)?;
        (page_bytes, pages_elapsed) = (page_bytes + bytes, pages_elapsed + elapsed);
        tasks.push(task);
    }
    // Host pids still: /proc/locks names holders by them.
    crate::locks::check_tree(&tasks, opts.file_locks)?;
    let (mut entries, mut shared_fds) = (tree.entries(), tree.shared_fds(&tasks)?);
    if pid_ns {
        let ns = crate::tree::ns::NsPids::translate(&mut entries)?;
        let mut pairs = Vec::new();
        for task in &mut tasks {
            let host = task.pid;
            if extra.ns_pids {
                // A container's ids as its own user namespace sees them:
                // the restore sets them inside its new one.
                if let Some(creds) = &mut task.state.creds {
                    crate::state::dump::creds_in_own_userns(host, creds)?;
                }
            }
            ns.task(task)?;
            task.pages_file = format!("pages-{}.img", task.pid);
            pairs.push((host, task.pid));
        }
        crate::tree::ns::rename_files(dir, &pairs)?;
        shared_fds.iter_mut().for_each(|g| ns.fds(g));
        ns.fds(&mut inherited_stdio);
    }
    for task in &tasks {
        image::write_file(
            dir,
            &TaskImage::file_name(task.pid),
            &encode(Kind::Task, task),
        )?;
    }
    let inventory = Inventory {
        kernel_release: kernel_release(),
        corral_version: env!("CARGO_PKG_VERSION").to_owned(),
        root_pid: tasks[0].pid,
        tasks: tasks.iter().map(|t| t.pid).collect(),
        tree: entries,
        shared_fds,
        time_ns,
        console: console.map(|c| c.1),
        // A container that joined another's pid namespace has its pids in
        // it, but is not that namespace's pid 1.
        pid_ns: pid_ns && tasks[0].pid == 1,
        mount_ns,
        inherited_stdio,
    };
    image::write_file(dir, INVENTORY_FILE, &encode(Kind::Inventory, &inventory))?;
    action::run(opts.action_script.as_deref(), Stage::PostDump, pid)?;
    if opts.leave_running {
        tree.release()?;
    } else {
        tree.kill();
    }
    tracing::info!(pid, page_bytes, "dumped");
    Ok(DumpStats {
        vmas: tasks.iter().map(|t| t.vmas.len()).sum(),
        page_bytes,
        elapsed: started.elapsed(),
        pages_elapsed,
    })
}

/// A task attached to a SysV segment is dumped only with its IPC
/// namespace's objects ([`DumpExtra::sysv_ipc`]): else refused, by name,
/// before anything is written.
fn refuse_attached_shm(pid: i32) -> Result<(), DumpError> {
    let maps = parse_maps(pid, "maps")?;
    let shm = maps
        .iter()
        .filter(|m| m.path.as_deref().is_some_and(|p| p.starts_with("/SYSV")));
    for m in shm {
        if let Backing::Sysv { shmid, .. } = vma_of(pid, m)?.backing {
            return Err(unsupported(
                pid,
                None,
                format!(
                    "mapping {:#x}-{:#x}: SysV shared memory segment {shmid} (shmat), outside a container that owns its IPC namespace",
                    m.start, m.end
                ),
            ));
        }
    }
    Ok(())
}

/// A bare tree is restored in the restorer's IPC namespace: a process of
/// another one that holds SysV objects would lose them. Refused by name.
fn refuse_other_ipc_ns(pids: &[i32]) -> Result<(), DumpError> {
    let ours = fs::metadata("/proc/self/ns/ipc").map_err(|source| DumpError::Proc {
        pid: std::process::id() as i32,
        path: "/proc/self/ns/ipc".into(),
        source,
    })?;
    for &pid in pids {
        let path = PathBuf::from(format!("/proc/{pid}/ns/ipc"));
        let proc_err = |source| DumpError::Proc {
            pid,
            path: path.clone(),
            source,
        };
        let ns = fs::File::open(&path).map_err(proc_err)?;
        let md = ns.metadata().map_err(proc_err)?;
        if (md.dev(), md.ino()) == (ours.dev(), ours.ino()) {
            continue;
        }
        let objects = crate::sysv::list(ns.as_fd()).map_err(|e| {
            unsupported(
                pid,
                None,
                format!("listing the SysV IPC objects of its IPC namespace: {e}"),
            )
        })?;
        if let Some(obj) = objects.first() {
            return Err(unsupported(
                pid,
                None,
                format!("an IPC namespace other than the dumper's, holding SysV IPC {obj}"),
            ));
        }
    }
    Ok(())
}

/// Refuses a task in a user namespace other than ours: a bare restore
/// makes it in ours, where its ids and capabilities mean something else.
/// (A container's init is restored into the container's new user
/// namespace, its credentials as that namespace sees them.)
fn refuse_foreign_userns(pid: i32) -> Result<(), DumpError> {
    let ns = |path: String| {
        fs::read_link(&path).map_err(|source| DumpError::Proc {
            pid,
            path: path.into(),
            source,
        })
    };
    let theirs = ns(format!("/proc/{pid}/ns/user"))?;
    if theirs != ns("/proc/self/ns/user".into())? {
        return Err(unsupported(
            pid,
            None,
            format!(
                "in another user namespace ({}) than the dumper's",
                theirs.display()
            ),
        ));
    }
    Ok(())
}

/// Options accepted by name (runc's) whose feature does not exist yet:
/// refused, never silently ignored.
fn refuse_unimplemented_options(opts: &DumpOptions) -> Result<(), DumpError> {
    let set = [
        ("--tcp-established", opts.tcp_established),
        ("--ext-unix-sk", opts.ext_unix_sk),
    ];
    match set.iter().find(|(_, on)| *on) {
        Some((name, _)) => Err(unsupported(opts.pid, None, *name)),
        None => Ok(()),
    }
}

/// `uname -r`.
pub fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// A process whose every thread is stopped under our ptrace. Dropping it
/// without [`Seized::kill`] or [`Seized::release`] puts each thread's
/// registers and signal mask back and detaches, so a failed dump leaves
/// the process running as it was.
pub(crate) struct Seized {
    pub(crate) pid: i32,
    /// Every thread, the leader first.
    threads: Vec<Stopped>,
    done: bool,
}

/// One thread in a ptrace stop, with what we change while it is stopped.
struct Stopped {
    tid: i32,
    regs: libc::user_regs_struct,
    sigmask: u64,
}

/// Rounds of "list the threads, seize the new ones" before giving up on a
/// process that creates threads faster than we stop them.
const SEIZE_ROUNDS: usize = 16;

impl Seized {
    pub(crate) fn new(pid: i32) -> Result<Self, DumpError> {
        let mut s = Seized {
            pid,
            threads: Vec::new(),
            done: false,
        };
        // A thread not yet stopped may start another: list again until a
        // round finds none new (stopped threads start nothing).
        for _ in 0..SEIZE_ROUNDS {
            let tids = thread_ids(pid)?;
            let new: Vec<i32> = tids
                .into_iter()
                .filter(|t| !s.threads.iter().any(|o| o.tid == *t))
                .collect();
            if new.is_empty() {
                return Ok(s);
            }
            for tid in new {
                if let Some(t) = stop_thread(pid, tid)? {
                    s.threads.push(t);
                }
            }
        }
        Err(unsupported(
            pid,
            None,
            "threads created faster than they can be stopped",
        ))
    }

    fn put_back(&self, t: &Stopped) -> Result<(), DumpError> {
        let tid = t.tid;
        let trace = |op: &'static str| DumpError::trace(tid, op);
        sys::ptrace_set_sigmask(tid, t.sigmask).map_err(trace("PTRACE_SETSIGMASK"))?;
        inject::resume(self.pid, tid, &t.regs).map_err(trace("resume"))
    }

    pub(crate) fn release(mut self) -> Result<(), DumpError> {
        self.done = true;
        let mut first_err = Ok(());
        for t in &self.threads {
            let r = self.put_back(t);
            if first_err.is_ok() {
                first_err = r;
            }
        }
        first_err
    }

    /// Every thread id, the leader first.
    pub(crate) fn tids(&self) -> Vec<i32> {
        self.threads.iter().map(|t| t.tid).collect()
    }

    /// The leader's registers as seized (for syscalls injected into it).
    pub(crate) fn leader_regs(&self) -> libc::user_regs_struct {
        self.threads[0].regs
    }

    pub(crate) fn kill(mut self) {
        self.done = true;
        let pidfd = sys::pidfd_open(self.pid);
        let _ = sys::kill(self.pid, libc::SIGKILL);
        // Tearing down a big address space takes its exit ~80 ms per GiB
        // here; freeing it from our side as well takes a third off that.
        if let Ok(fd) = &pidfd {
            let _ = sys::process_mrelease(fd.as_fd());
        }
        // As their tracer we see each thread die (the leader last: its exit
        // is reported once the others are gone); reaping the process is its
        // parent's business.
        for t in self.threads.iter().rev() {
            while let Ok(WaitStatus::Stopped { .. }) = sys::waitpid(t.tid) {
                let _ = sys::ptrace_cont(t.tid, 0);
            }
        }
    }
}

impl Drop for Seized {
    fn drop(&mut self) {
        if !self.done {
            for t in &self.threads {
                let _ = self.put_back(t);
            }
        }
    }
}

/// The thread ids of `pid` (/proc/PID/task), the leader first.
pub(crate) fn thread_ids(pid: i32) -> Result<Vec<i32>, DumpError> {
    let dir = PathBuf::from(format!("/proc/{pid}/task"));
    let proc_err = |source| DumpError::Proc {
        pid,
        path: dir.clone(),
        source,
    };
    let mut tids = Vec::new();
    for e in fs::read_dir(&dir).map_err(proc_err)? {
        let name = e.map_err(proc_err)?.file_name();
        if let Some(tid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) {
            tids.push(tid);
        }
    }
    tids.sort_by_key(|&t| (t != pid, t));
    Ok(tids)
}

/// Seizes and interrupts thread `tid` of `pid` and waits for it to stop.
/// `None` when a thread other than the leader exited in between.
fn stop_thread(pid: i32, tid: i32) -> Result<Option<Stopped>, DumpError> {
    let trace = |op: &str| DumpError::trace(tid, op.to_owned());
    match sys::ptrace_seize(tid, libc::PTRACE_O_TRACESYSGOOD as u32) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) && tid != pid => return Ok(None),
        r => r.map_err(trace("PTRACE_SEIZE"))?,
    }
    sys::ptrace_interrupt(tid).map_err(trace("PTRACE_INTERRUPT"))?;
    loop {
        match sys::waitpid(tid).map_err(trace("waitpid"))? {
            WaitStatus::Stopped { event, .. } if event == sys::PTRACE_EVENT_STOP => break,
            // A signal arrived first: let the thread have it; our
            // interrupt stays pending and stops it right after.
            WaitStatus::Stopped { sig, .. } => {
                sys::ptrace_cont(tid, sig).map_err(trace("PTRACE_CONT"))?
            }
            _ if tid != pid => return Ok(None),
            status => {
                return Err(DumpError::Trace {
                    pid,
                    op: format!("task ended while seized ({status:?})"),
                    source: io::Error::from_raw_os_error(libc::ESRCH),
                })
            }
        }
    }
    Ok(Some(Stopped {
        tid,
        regs: sys::ptrace_getregs(tid).map_err(trace("PTRACE_GETREGS"))?,
        sigmask: sys::ptrace_get_sigmask(tid).map_err(trace("PTRACE_GETSIGMASK"))?,
    }))
}

pub(crate) fn read_proc(pid: i32, name: &str) -> Result<String, DumpError> {
    let path = PathBuf::from(format!("/proc/{pid}/{name}"));
    fs::read_to_string(&path).map_err(|source| DumpError::Proc { pid, path, source })
}

fn read_link(pid: i32, name: &str) -> Result<String, DumpError> {
    let path = PathBuf::from(format!("/proc/{pid}/{name}"));
    fs::read_link(&path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|source| DumpError::Proc { pid, path, source })
}

fn file_id(pid: i32, link: &str) -> Result<FileId, DumpError> {
    let path = PathBuf::from(format!("/proc/{pid}/{link}"));
    let md = fs::metadata(&path).map_err(|source| DumpError::Proc {
        pid,
        path: path.clone(),
        source,
    })?;
    Ok(FileId::of(read_link(pid, link)?, &md))
}

pub(crate) fn unsupported(pid: i32, fd: Option<i32>, what: impl Into<String>) -> DumpError {
    DumpError::Unsupported {
        pid,
        fd,
        what: what.into(),
    }
}

pub(crate) fn collect_task(
    s: &mut Seized,
    dir: &Path,
    opts: &DumpOptions,
    skip_fds: &[i32],
    console: Option<(u64, u64)>,
) -> Result<(TaskImage, u64, Duration), DumpError> {
    let pid = s.pid;
    let status = read_proc(pid, "status")?;
    let fds = crate::files::collect(pid, opts, dir, skip_fds, console)?;
    // maps, not smaps: smaps walks every page table to count Rss (20-50 ms
    // for 1 GiB here); its VmFlags are read beside the page copy below.
    let maps = parse_maps(pid, "maps")?;
    let mut vmas = maps
        .iter()
        .filter(|m| m.path.as_deref() != Some("[vsyscall]"))
        .map(|m| vma_of(pid, m))
        .collect::<Result<Vec<_>, _>>()?;

    // Before any other injected syscall: it suspends seccomp filters.
    let stopped: Vec<_> = s
        .threads
        .iter()
        .map(|t| crate::state::dump::Thread {
            tid: t.tid,
            regs: t.regs,
            sigmask: t.sigmask,
        })
        .collect();
    let (state, thread_states) = crate::state::dump::collect(pid, &stopped, &maps)?;

    let caught = parse_mask(procfs::status_field(&status, "SigCgt"));
    let ignored = parse_mask(procfs::status_field(&status, "SigIgn"));
    let (sigactions, brk, clear_tids) = inject_queries(s, &maps, caught)?;
    let sigactions = merge_ignored(sigactions, ignored);

    let stat = procfs::parse_stat_mm(&read_proc(pid, "stat")?).ok_or_else(|| DumpError::Proc {
        pid,
        path: format!("/proc/{pid}/stat").into(),
        source: io::ErrorKind::InvalidData.into(),
    })?;
    let auxv_path = PathBuf::from(format!("/proc/{pid}/auxv"));
    let auxv = fs::read(&auxv_path).map_err(|source| DumpError::Proc {
        pid,
        path: auxv_path,
        source,
    })?;
    let mm = MmFields {
        start_code: stat.start_code,
        end_code: stat.end_code,
        start_data: stat.start_data,
        end_data: stat.end_data,
        start_brk: stat.start_brk,
        brk,
        start_stack: stat.start_stack,
        arg_start: stat.arg_start,
        arg_end: stat.arg_end,
        env_start: stat.env_start,
        env_end: stat.env_end,
        auxv: auxv
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect(),
    };

    let pages_started = Instant::now();
    let pages_file = format!("pages-{pid}.img");
    let (pages_size, smaps) = std::thread::scope(|scope| {
        let smaps = scope.spawn(|| parse_maps(pid, "smaps"));
        let size = dump_pages(pid, &mut vmas, &dir.join(&pages_file));
        let smaps = smaps.join().expect("parse_maps does not panic");
        Ok::<_, DumpError>((size?, smaps?))
    })?;
    set_vm_flags(pid, &mut vmas, smaps)?;
    let pages_elapsed = pages_started.elapsed();

    let task = TaskImage {
        pid,
        comm: read_proc(pid, "comm")?.trim_end_matches('\n').to_owned(),
        exe: file_id(pid, "exe")?,
        cwd: read_link(pid, "cwd")?,
        threads: s
            .threads
            .iter()
            .zip(clear_tids)
            .zip(thread_states)
            .map(|((t, clear_tid), st)| thread_image(t, clear_tid, st))
            .collect::<Result<_, _>>()?,
        mm,
        vmas,
        sigactions,
        fds,
        pages_file,
        pages_size,
        state,
    };
    Ok((task, pages_size, pages_elapsed))
}

/// What ptrace and `get_robust_list` tell of a stopped thread.
fn thread_image(
    t: &Stopped,
    clear_tid: u64,
    state: crate::state::ThreadState,
) -> Result<ThreadImage, DumpError> {
    let tid = t.tid;
    let trace = |op: &'static str| DumpError::trace(tid, op);
    let xstate = sys::ptrace_get_xstate(tid).map_err(trace("PTRACE_GETREGSET NT_X86_XSTATE"))?;
    let rseq = sys::ptrace_get_rseq(tid)
        .map_err(trace("PTRACE_GET_RSEQ_CONFIGURATION"))?
        .map(|(addr, len, signature)| Rseq {
            addr,
            len,
            signature,
        });
    let (head, len) = sys::get_robust_list(tid).map_err(trace("get_robust_list"))?;
    Ok(ThreadImage {
        tid,
        regs: Regs::from(&t.regs),
        xstate: hex_encode(&xstate),
        sigmask: t.sigmask,
        rseq,
        clear_tid,
        robust_list: (head != 0).then_some(RobustList { head, len }),
        state,
    })
}

/// Parses /proc/PID/`name` (`maps` or `smaps`).
fn parse_maps(pid: i32, name: &str) -> Result<Vec<MapEntry>, DumpError> {
    procfs::parse_smaps(&read_proc(pid, name)?).map_err(|e| DumpError::Proc {
        pid,
        path: format!("/proc/{pid}/{name}").into(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })
}

/// Copies the `VmFlags` of smaps onto the mappings read from maps. The task
/// is stopped, so both list the same mappings; a difference is an error.
fn set_vm_flags(pid: i32, vmas: &mut [Vma], smaps: Vec<MapEntry>) -> Result<(), DumpError> {
    let mut smaps = smaps
        .into_iter()
        .filter(|m| m.path.as_deref() != Some("[vsyscall]"));
    for v in vmas.iter_mut() {
        match smaps.next() {
            Some(m) if (m.start, m.end) == (v.start, v.end) => v.vm_flags = m.vm_flags,
            _ => {
                return Err(DumpError::Proc {
                    pid,
                    path: format!("/proc/{pid}/smaps").into(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("mapping {:#x}-{:#x} not in smaps", v.start, v.end),
                    ),
                })
            }
        }
    }
    Ok(())
}

fn parse_mask(field: Option<&str>) -> u64 {
    field
        .and_then(|f| u64::from_str_radix(f, 16).ok())
        .unwrap_or(0)
}

fn merge_ignored(mut acts: Vec<SigAction>, ignored: u64) -> Vec<SigAction> {
    for signo in 1..=64u32 {
        if ignored & (1 << (signo - 1)) != 0 && !acts.iter().any(|a| a.signo == signo) {
            acts.push(SigAction {
                signo,
                handler: libc::SIG_IGN as u64,
                flags: 0,
                restorer: 0,
                mask: 0,
            });
        }
    }
    acts.sort_by_key(|a| a.signo);
    acts
}

fn vma_of(pid: i32, m: &MapEntry) -> Result<Vma, DumpError> {
    let range = format!("mapping {:#x}-{:#x}", m.start, m.end);
    let backing = match m.path.as_deref() {
        Some(p @ ("[vdso]" | "[vvar]" | "[vvar_vclock]")) => Backing::Vdso { name: p.to_owned() },
        None | Some("[heap]" | "[stack]") => Backing::Anon {
            name: m.path.clone(),
        },
        Some(p) if p.starts_with("[anon:") => Backing::Anon {
            name: m.path.clone(),
        },
        // shmat: the segment's file, /SYSV<key as 8 hex digits>, whose
        // inode number is the shmid.
        Some(p)
            if m.shared
                && p.strip_prefix("/SYSV")
                    .and_then(|k| k.strip_suffix(" (deleted)"))
                    .is_some_and(|k| k.len() == 8 && k.bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            let shmid = i32::try_from(m.ino)
                .map_err(|_| unsupported(pid, None, format!("{range} of {p}: inode {}", m.ino)))?;
            Backing::Sysv {
                shmid,
                offset: m.offset,
            }
        }
        Some(p) if p.starts_with('/') && !p.ends_with(" (deleted)") && m.ino != 0 => {
            let link = format!("map_files/{:x}-{:x}", m.start, m.end);
            let file = file_id(pid, &link)?;
            if (file.dev, file.ino) != (m.dev, m.ino) {
                return Err(unsupported(
                    pid,
                    None,
                    format!("{range} of {p}: file replaced"),
                ));
            }
            Backing::File {
                file,
                offset: m.offset,
            }
        }
        Some(p) => return Err(unsupported(pid, None, format!("{range} of {p}"))),
    };
    if m.shared && matches!(backing, Backing::Anon { .. }) {
        return Err(unsupported(
            pid,
            None,
            format!("{range}: shared anonymous memory"),
        ));
    }
    Ok(Vma {
        start: m.start,
        end: m.end,
        prot: m.prot,
        shared: m.shared,
        backing,
        vm_flags: m.vm_flags.clone(),
        pages: Vec::new(),
    })
}

/// Reads what /proc does not show by running syscalls in the task: the
/// handlers of `caught` signals (`rt_sigaction`), the program break
/// (`brk(0)`) and each thread's `clear_child_tid` (`PR_GET_TID_ADDRESS`,
/// run in that thread). A thread's signals are blocked while it runs ours,
/// so none is delivered between them.
fn inject_queries(
    s: &mut Seized,
    maps: &[MapEntry],
    caught: u64,
) -> Result<(Vec<SigAction>, u64, Vec<u64>), DumpError> {
    let pid = s.pid;
    let trace = |op: &'static str| DumpError::trace(pid, op);
    let vdso = maps
        .iter()
        .find(|m| m.path.as_deref() == Some("[vdso]"))
        .ok_or_else(|| unsupported(pid, None, "no [vdso] mapping"))?;
    let mut text = vec![0u8; (vdso.end - vdso.start) as usize];
    sys::process_vm_readv(pid, &mut text, &[(vdso.start, vdso.end - vdso.start)])
        .map_err(trace("read the vdso"))?;
    let off = inject::find_syscall_insn(&text)
        .ok_or_else(|| unsupported(pid, None, "vdso without a syscall instruction"))?;
    let leader = &s.threads[0];
    sys::ptrace_set_sigmask(pid, !0).map_err(trace("PTRACE_SETSIGMASK"))?;
    let inj = Injector::new(pid, vdso.start + off, leader.regs);
    let brk = inj.syscall(libc::SYS_brk, [0; 6])?;
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let scratch = inj.syscall(libc::SYS_mmap, [0, 4096, prot, flags, u64::MAX, 0])?;
    let read_u64s = |at: u64, n: usize| -> Result<Vec<u64>, DumpError> {
        let mut raw = vec![0u8; n * 8];
        sys::process_vm_readv(pid, &mut raw, &[(at, n as u64 * 8)])
            .map_err(trace("read the scratch page"))?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect())
    };
    let mut acts = Vec::new();
    let mut clear_tids = Vec::new();
    let result = (|| {
        for signo in (1..=64u32).filter(|n| caught & (1 << (n - 1)) != 0) {
            inj.syscall(libc::SYS_rt_sigaction, [signo.into(), 0, scratch, 8, 0, 0])?;
            let w = read_u64s(scratch, 4)?;
            acts.push(SigAction {
                signo,
                handler: w[0],
                flags: w[1],
                restorer: w[2],
                mask: w[3],
            });
        }
        for t in &s.threads {
            let tid = t.tid;
            let trace = |op: &'static str| DumpError::trace(tid, op);
            if tid != pid {
                sys::ptrace_set_sigmask(tid, !0).map_err(trace("PTRACE_SETSIGMASK"))?;
            }
            let inj = Injector::new(tid, vdso.start + off, t.regs);
            let args = [sys::PR_GET_TID_ADDRESS, scratch, 0, 0, 0, 0];
            let got = inj.syscall(libc::SYS_prctl, args);
            if tid != pid {
                sys::ptrace_set_sigmask(tid, t.sigmask).map_err(trace("PTRACE_SETSIGMASK"))?;
            }
            got?;
            clear_tids.push(read_u64s(scratch, 1)?[0]);
        }
        Ok::<_, DumpError>(())
    })();
    inj.syscall(libc::SYS_munmap, [scratch, 4096, 0, 0, 0, 0])?;
    result?;
    sys::ptrace_set_sigmask(pid, leader.sigmask).map_err(trace("PTRACE_SETSIGMASK"))?;
    Ok((acts, brk, clear_tids))
}

/// Pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE_OR_SHARED: u64 = 1 << 61;

/// Which pages of `v` hold data of the process's own: in an anonymous
/// private mapping every present or swapped page; in a private file
/// mapping only the pages copied on write (a page-cache page still shared
/// with the file is read back from the file). Shared mappings keep their
/// contents in the file; the vdso is the kernel's.
fn wants_pages(v: &Vma) -> Option<bool> {
    match (&v.backing, v.shared) {
        (Backing::Vdso { .. } | Backing::Sysv { .. }, _) | (_, true) => None,
        (Backing::Anon { .. }, false) => Some(false),
        (Backing::File { .. }, false) => Some(true),
    }
}

/// Finds the pages to dump of each mapping (pagemap), fills each mapping's
/// `pages`, then has [`pages::dump`] read them all and write them to `path`.
/// Returns the size.
fn dump_pages(pid: i32, vmas: &mut [Vma], path: &Path) -> Result<u64, DumpError> {
    let pm_path = PathBuf::from(format!("/proc/{pid}/pagemap"));
    let proc_err = |path: &Path| {
        let path = path.to_owned();
        move |source| DumpError::Proc { pid, path, source }
    };
    let pagemap = fs::File::open(&pm_path).map_err(proc_err(&pm_path))?;
    let mem_path = PathBuf::from(format!("/proc/{pid}/mem"));
    let mem = fs::File::open(&mem_path).map_err(proc_err(&mem_path))?;
    let io_err = |source| ImageError::Io {
        op: "write",
        path: path.to_owned(),
        source,
    };
    let out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err)?;
    let mut offset = 0u64;
    let mut entries = Vec::new();
    let mut runs = Vec::new();
    for v in vmas.iter_mut() {
        let Some(cow_only) = wants_pages(v) else {
            continue;
        };
        let npages = (v.len() / PAGE_SIZE) as usize;
        entries.resize(npages * 8, 0u8);
        pagemap
            .read_exact_at(&mut entries, v.start / PAGE_SIZE * 8)
            .map_err(proc_err(&pm_path))?;
        let want = |i: usize| {
            let e = u64::from_le_bytes(entries[i * 8..i * 8 + 8].try_into().expect("8"));
            e & PM_SWAPPED != 0
                || (e & PM_PRESENT != 0 && !(cow_only && e & PM_FILE_OR_SHARED != 0))
        };
        let readable = v.prot & libc::PROT_READ as u32 != 0;
        let mut i = 0;
        while i < npages {
            if !want(i) {
                i += 1;
                continue;
            }
            let first = i;
            while i < npages && want(i) {
                i += 1;
            }
            let run = PageRun {
                addr: v.start + first as u64 * PAGE_SIZE,
                npages: (i - first) as u64,
                offset,
            };
            offset += run.npages * PAGE_SIZE;
            v.pages.push(run);
            runs.push(pages::Run {
                run,
                fast: readable,
            });
        }
    }
    pages::dump(pid, &runs, &mem, &out).map_err(io_err)?;
    Ok(offset)
}
