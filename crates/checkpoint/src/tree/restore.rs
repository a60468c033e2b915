//! Restore side of process trees. After [`crate::restore::fork_root`]:
//!
//! 1. every other process is made by an injected `clone3` in its parent
//!    (`set_tid`: its pid; `CLONE_PTRACE`: it stops before running),
//!    while each parent is still a copy of us, so every process starts
//!    with our fd table (the files opened for all tasks, shared
//!    descriptions once) and our memory, which its own rebuild replaces;
//!    session leaders call `setsid` in the order [`Plan`] gives;
//! 2. each process joins its group with `setpgid` (leaders first);
//! 3. zombies exit with their status (`exit_group`, or their signal);
//!    once we, their tracer, have waited, they are zombies of their
//!    parent, whose `SIGCHLD` from that is taken back (`rt_sigtimedwait`);
//! 4. each live process is rebuilt ([`crate::restore`], steps 1-6), then
//!    gets its kernel state ([`crate::state`]);
//! 5. all are resumed, children before parents.
//!
//! Every process's signals stay blocked (`PTRACE_SETSIGMASK`) until its
//! own mask is set in step 5, so nothing is delivered in between.

use std::collections::HashMap;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use super::dump::syscall_ip;
use super::{entries, Plan, SharedFiles, Step};
use crate::image::ImageDir;
use crate::inject::{InjectError, Injector};
use crate::restore::{self as rs, RestoreError, Restored};
use crate::sys::{self, WaitStatus};

/// How a tree is restored: the options, the root directory files are
/// opened under (a container's), whether the root keeps the stdio the
/// runtime gave it, the pty the runtime made for the container's console.
pub(crate) struct How<'a> {
    pub opts: &'a rs::RestoreOptions,
    pub root: Option<BorrowedFd<'a>>,
    /// The network namespace a container's sockets are made in.
    pub net: Option<BorrowedFd<'a>>,
    pub keep_stdio: bool,
    pub console: Option<BorrowedFd<'a>>,
}

/// Restores every process of `image`. `make_root(pid, files)` makes the
/// root, stopped by a `SIGSTOP` of its own under our ptrace, holding the
/// `files` we opened at the same numbers ([`rs::fork_root`] forks us; a
/// container runtime hands them to the task it prepared).
pub(crate) fn restore_tree(
    image: &ImageDir,
    how: &How<'_>,
    make_root: impl FnOnce(i32, &[(BorrowedFd<'_>, i32)]) -> Result<i32, RestoreError>,
) -> Result<Restored, RestoreError> {
    let started = Instant::now();
    let script = how.opts.action_script.as_deref();
    let root_pid = image.inventory.root_pid;
    crate::action::run(script, crate::action::Stage::PreRestore, root_pid)?;
    let tree = entries(&image.inventory);
    let plan = Plan::new(&tree).map_err(|e| RestoreError::Unsupported(e.to_string()))?;
    // Every task's files sit above every image fd of every task.
    let base = image
        .tasks
        .iter()
        .flat_map(|t| t.fds.iter().map(|f| f.fd + 1))
        .max()
        .unwrap_or(0)
        .max(3);
    let mut shared = SharedFiles::new(&image.inventory.shared_fds);
    let prepared = image
        .tasks
        .iter()
        .map(|t| {
            rs::prepare(
                image,
                t,
                base,
                &mut shared,
                how.opts,
                rs::Inside {
                    root: how.root,
                    console: how.console,
                    net: how.net,
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut guard = Guard::default();
    let held: Vec<_> = prepared.iter().flat_map(|p| p.files.numbered()).collect();
    let root = make_root(plan.root, &held)?;
    drop(held);
    guard.procs.push(root);
    // Each image pid and the pid we see it under, for /proc and ptrace:
    // the root's is whatever `make_root` gave (a container's task, seen
    // from outside its pid namespace); the others are made with their
    // image pids in the root's pid namespace, and found under ours.
    let mut hosts: HashMap<i32, i32> = HashMap::from([(plan.root, root)]);
    rs::await_root(root)?;
    sys::ptrace_set_sigmask(root, !0).map_err(RestoreError::trace(root, "PTRACE_SETSIGMASK"))?;
    let mut maker = Maker {
        ip: None,
        scratch: HashMap::new(),
    };
    for step in &plan.steps {
        let live = |pid: i32| hosts.get(&pid).copied().unwrap_or(pid);
        match *step {
            Step::Create { pid, parent } => {
                let exit_signal = tree
                    .iter()
                    .find(|e| e.pid == pid)
                    .and_then(|e| e.exit_signal);
                let host = maker.create(live(parent), pid, exit_signal, &mut guard)?;
                hosts.insert(pid, host);
            }
            // A container's init may lead its session already (its
            // runtime made it the session leader of a new pty).
            Step::Setsid(pid) if sid_of(live(pid))? == live(pid) => {}
            Step::Setsid(pid) => {
                maker.inj(live(pid))?.syscall(libc::SYS_setsid, [0; 6])?;
            }
        }
    }
    let live = |pid: i32| hosts.get(&pid).copied().unwrap_or(pid);
    // A process in the restorer's group (`None`) is there already: every
    // process was made before any `setpgid`, and a `setsid` moves only
    // processes whose group is in the tree.
    for &(pid, group) in &plan.groups {
        let Some(want) = group else { continue };
        if pgid_of(live(pid))? != live(want) {
            let args = [0, want as u64, 0, 0, 0, 0];
            maker.inj(live(pid))?.syscall(libc::SYS_setpgid, args)?;
        }
    }
    // Each parent of zombies, with the exit signals their ends queued.
    let mut parents: Vec<(i32, u64)> = Vec::new();
    for &(pid, parent, status) in &plan.zombies {
        maker.exit_zombie(live(pid), status)?;
        let sig = tree
            .iter()
            .find(|e| e.pid == pid)
            .and_then(|e| e.exit_signal)
            .unwrap_or(libc::SIGCHLD);
        let bit = if (1..=64).contains(&sig) {
            1u64 << (sig - 1)
        } else {
            0
        };
        match parents.iter_mut().find(|(p, _)| *p == parent) {
            Some((_, set)) => *set |= bit,
            None => parents.push((parent, bit)),
        }
    }
    for (parent, set) in parents {
        maker.take_signals(live(parent), set)?;
    }

    let (mut page_bytes, mut pages_elapsed) = (0, Duration::ZERO);
    for (task, prep) in image.tasks.iter().zip(&prepared) {
        let pid = live(task.pid);
        guard.threads.push((pid, Vec::new()));
        let threads = &mut guard.threads.last_mut().expect("pushed above").1;
        let keep: Vec<i32> = if task.pid == image.inventory.root_pid {
            if how.keep_stdio {
                vec![0, 1, 2]
            } else {
                Vec::new()
            }
        } else {
            let inherited = image.inventory.inherited_stdio.iter();
            inherited
                .filter(|f| f.pid == task.pid)
                .map(|f| f.fd)
                .collect()
        };
        pages_elapsed += rs::rebuild(pid, task, &prep.files, &prep.pages, threads, &keep)?;
        page_bytes += task.pages_size;
    }
    // Our copies of the files close here: each process has its own.
    let xstates: Vec<_> = prepared.into_iter().map(|p| p.xstates).collect();
    for task in &image.tasks {
        let pid = live(task.pid);
        let threads = guard.threads.iter().find(|(p, _)| *p == pid);
        let all_tids: Vec<i32> = [pid]
            .into_iter()
            .chain(threads.into_iter().flat_map(|(_, t)| t.iter().copied()))
            .collect();
        crate::state::restore::restore(pid, task, &all_tids)?;
    }
    crate::action::run(script, crate::action::Stage::PostRestore, root_pid)?;
    crate::action::run(script, crate::action::Stage::NetworkUnlock, root_pid)?;
    for (task, xstates) in image.tasks.iter().zip(&xstates).rev() {
        let threads = guard
            .threads
            .iter()
            .find(|(p, _)| *p == live(task.pid))
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        rs::resume_task(live(task.pid), task, xstates, &threads)?;
    }
    guard.procs.clear();
    tracing::info!(pid = root, processes = image.tasks.len(), "restored");
    Ok(Restored {
        pid: root,
        page_bytes,
        elapsed: started.elapsed(),
        pages_elapsed,
    })
}

/// Runs the creation steps: syscalls injected into processes that are
/// still copies of us, so one `syscall` address (our vdso's, which each
/// inherits) and one scratch page per lineage serve them all.
struct Maker {
    ip: Option<u64>,
    /// Scratch page of each process; a child inherits its parent's.
    scratch: HashMap<i32, u64>,
}

impl Maker {
    fn inj(&mut self, pid: i32) -> Result<Injector, RestoreError> {
        let trace = |op: &'static str| RestoreError::trace(pid, op);
        let ip = match self.ip {
            Some(ip) => ip,
            None => *self
                .ip
                .insert(syscall_ip(pid).map_err(trace("find a syscall instruction"))?),
        };
        let regs = sys::ptrace_getregs(pid).map_err(trace("PTRACE_GETREGS"))?;
        Ok(Injector::new(pid, ip, regs))
    }

    fn scratch(&mut self, pid: i32) -> Result<u64, RestoreError> {
        if let Some(&s) = self.scratch.get(&pid) {
            return Ok(s);
        }
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let s = self
            .inj(pid)?
            .syscall(libc::SYS_mmap, [0, 4096, rw, anon, u64::MAX, 0])?;
        self.scratch.insert(pid, s);
        Ok(s)
    }

    /// Has `parent` make `pid` with `clone3` (`set_tid`, `CLONE_PTRACE`:
    /// traced by us, stopped before its first instruction).
    fn create(
        &mut self,
        parent: i32,
        pid: i32,
        exit_signal: Option<i32>,
        guard: &mut Guard,
    ) -> Result<i32, RestoreError> {
        let scratch = self.scratch(parent)?;
        let inj = self.inj(parent)?;
        let set_tid_at = scratch + 512;
        // struct clone_args: flags, pidfd, child_tid, parent_tid,
        // exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup.
        let flags = libc::CLONE_PTRACE as u64;
        let exit_signal = exit_signal.unwrap_or(libc::SIGCHLD) as u64;
        let args: Vec<u8> = [flags, 0, 0, 0, exit_signal, 0, 0, 0, set_tid_at, 1, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let poke = |at: u64, data: &[u8]| {
            sys::process_vm_writev(parent, &[data], &[(at, data.len() as u64)]).map_err(|source| {
                RestoreError::Trace {
                    pid: parent,
                    op: "write clone_args".into(),
                    source,
                }
            })
        };
        poke(scratch, &args)?;
        poke(set_tid_at, &pid.to_le_bytes())?;
        let made = match inj.syscall(libc::SYS_clone3, [scratch, args.len() as u64, 0, 0, 0, 0]) {
            Ok(made) => made as i32,
            Err(InjectError::Failed { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                return Err(RestoreError::PidInUse(pid))
            }
            Err(e) => return Err(e.into()),
        };
        // `made` is the pid in the parent's namespace; ours may differ.
        let host = host_child(parent, made)?;
        guard.procs.push(host);
        if made != pid {
            return Err(RestoreError::Trace {
                pid,
                op: format!("clone3 made process {made}"),
                source: io::ErrorKind::Other.into(),
            });
        }
        match sys::waitpid(host) {
            Ok(WaitStatus::Stopped { sig, .. }) if sig == libc::SIGSTOP => {}
            other => {
                return Err(RestoreError::Trace {
                    pid,
                    op: format!("new process did not stop ({other:?})"),
                    source: io::ErrorKind::Other.into(),
                })
            }
        }
        self.scratch.insert(host, scratch);
        Ok(host)
    }

    /// Makes `pid` exit with wait status `status`: `exit_group(code)`, or
    /// its terminating signal (with no core file), then waits for it as
    /// its tracer, which leaves it a zombie of its parent.
    fn exit_zombie(&mut self, pid: i32, status: i32) -> Result<(), RestoreError> {
        let trace = |op: String| RestoreError::trace(pid, op);
        let (code, sig) = ((status >> 8) & 0xff, status & 0x7f);
        if sig == 0 {
            let ip = self.inj(pid)?.syscall_ip();
            let mut regs = sys::ptrace_getregs(pid).map_err(trace("PTRACE_GETREGS".into()))?;
            regs.rip = ip;
            regs.rax = libc::SYS_exit_group as u64;
            regs.orig_rax = u64::MAX;
            regs.rdi = code as u64;
            sys::ptrace_setregs(pid, &regs).map_err(trace("PTRACE_SETREGS".into()))?;
        } else {
            let none = rustix::process::Rlimit {
                current: Some(0),
                maximum: Some(0),
            };
            let p = rustix::process::Pid::from_raw(pid);
            rustix::process::prlimit(p, rustix::process::Resource::Core, none)
                .map_err(|e| trace("prlimit RLIMIT_CORE".into())(e.into()))?;
            sys::ptrace_set_sigmask(pid, 0).map_err(trace("PTRACE_SETSIGMASK".into()))?;
            sys::tgkill(pid, pid, sig).map_err(trace(format!("signal {sig}")))?;
        }
        sys::ptrace_cont(pid, 0).map_err(trace("PTRACE_CONT".into()))?;
        for _ in 0..8 {
            match sys::waitpid(pid).map_err(trace("waitpid".into()))? {
                WaitStatus::Exited(c) if sig == 0 && c == code => return Ok(()),
                WaitStatus::Signaled(s) if s == sig => return Ok(()),
                WaitStatus::Stopped { sig: s, event: 0 } => {
                    sys::ptrace_cont(pid, s).map_err(trace("PTRACE_CONT".into()))?
                }
                WaitStatus::Stopped { .. } => {
                    sys::ptrace_cont(pid, 0).map_err(trace("PTRACE_CONT".into()))?
                }
                other => {
                    return Err(RestoreError::Trace {
                        pid,
                        op: format!("zombie ended as {other:?}, not wait status {status:#x}"),
                        source: io::ErrorKind::Other.into(),
                    })
                }
            }
        }
        Err(RestoreError::Unsupported(format!(
            "pid {pid}: a zombie whose wait status {status:#x} cannot be made"
        )))
    }

    /// Takes back the signals of `set` (`SIGCHLD`, or a `clone` child's
    /// exit signal) that its zombies' ends queued in `pid` (blocked, so
    /// pending): the dumped process had none from them.
    fn take_signals(&mut self, pid: i32, set: u64) -> Result<(), RestoreError> {
        if set == 0 {
            return Ok(());
        }
        let scratch = self.scratch(pid)?;
        let inj = self.inj(pid)?;
        // The sigset_t, then a zero timespec.
        let mut data = set.to_le_bytes().to_vec();
        data.extend([0u8; 16]);
        sys::process_vm_writev(pid, &[&data], &[(scratch, data.len() as u64)]).map_err(
            |source| RestoreError::Trace {
                pid,
                op: "write a sigset".into(),
                source,
            },
        )?;
        let args = [scratch, 0, scratch + 8, 8, 0, 0];
        // One per signal at most: standard signals do not queue twice.
        for _ in 0..=set.count_ones() {
            match inj.syscall(libc::SYS_rt_sigtimedwait, args) {
                Ok(_) => {}
                Err(InjectError::Failed { source, .. })
                    if source.raw_os_error() == Some(libc::EAGAIN) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The pid we see for the child `made` (its pid in its own namespace) of
/// `parent` (ours): found in the parent's `children` (in our namespace)
/// by its `NSpid`. The parent has one thread yet, its leader.
fn host_child(parent: i32, made: i32) -> Result<i32, RestoreError> {
    let trace = |op: String| RestoreError::trace(made, op);
    let path = format!("/proc/{parent}/task/{parent}/children");
    let text = std::fs::read_to_string(&path).map_err(trace(format!("read {path}")))?;
    for c in text
        .split_whitespace()
        .filter_map(|w| w.parse::<i32>().ok())
    {
        if crate::container::ns_tid(c, c).ok() == Some(made) {
            return Ok(c);
        }
    }
    Err(trace(format!("find child {made} of {parent}"))(
        io::ErrorKind::NotFound.into(),
    ))
}

/// The session of `pid`, as we see it.
fn sid_of(pid: i32) -> Result<i32, RestoreError> {
    super::read_ids(pid)
        .map(|(e, _)| e.sid)
        .map_err(RestoreError::trace(pid, "read its session"))
}

/// `getpgid(pid)`.
fn pgid_of(pid: i32) -> Result<i32, RestoreError> {
    sys::getpgid(pid).map_err(|source| RestoreError::Trace {
        pid,
        op: "getpgid".into(),
        source,
    })
}

/// Kills every process made so far unless the restore completed, and
/// reaps what it can: as their tracer we see each exit; the root is our
/// child; the others, reparented to us when we are a subreaper (the
/// tests), are reaped after.
#[derive(Default)]
struct Guard {
    procs: Vec<i32>,
    threads: Vec<(i32, Vec<i32>)>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.procs.is_empty() {
            return;
        }
        for &pid in &self.procs {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        for (_, threads) in &self.threads {
            for &tid in threads {
                let _ = rs::wait(tid);
            }
        }
        for &pid in &self.procs {
            let _ = rs::wait(pid);
        }
        for &pid in &self.procs[1..] {
            let _ = sys::reap_if_exited(pid);
        }
    }
}
