//! Dump side of process trees: seize every process of the tree, find fds
//! that share an open file description, then kill or release the tree.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt as _;

use super::{read_ids, Plan};
use crate::collect::{read_proc, thread_ids, unsupported, DumpError, Seized};
use crate::image::{ProcEntry, TaskFd, TaskImage};
use crate::inject::{self, InjectError, Injector};
use crate::proc as procfs;
use crate::sys;

/// Rounds of "list every process's children, seize the new ones" before
/// giving up on a tree that forks faster than we stop it.
const SEIZE_ROUNDS: usize = 16;

/// Every live process of a tree stopped under our ptrace (each with all its
/// threads), and every process's ids, zombies included, root first and
/// each after its parent. Dropped without [`SeizedTree::kill`] or
/// [`SeizedTree::release`], every process runs on as it was.
pub(crate) struct SeizedTree {
    procs: Vec<Seized>,
    entries: Vec<ProcEntry>,
}

impl SeizedTree {
    /// Seizes `root` and its descendants. A process is stopped (every
    /// thread) before its children are listed, and a stopped process forks
    /// nothing, so listing again until a round finds nobody new gives the
    /// whole tree, processes forked during the seize included. Refuses, by
    /// process, a tree whose sessions or groups cannot be recreated.
    pub fn seize(root: i32) -> Result<Self, DumpError> {
        let mut tree = SeizedTree {
            procs: Vec::new(),
            entries: Vec::new(),
        };
        refuse_vfork_parent(root)?;
        let seized = Seized::new(root)?;
        tree.entries.push(ids(root)?.0);
        tree.procs.push(seized);
        for _ in 0..SEIZE_ROUNDS {
            let mut found = false;
            let mut i = 0;
            while i < tree.procs.len() {
                let parent = tree.procs[i].pid;
                for child in tree.children(i)? {
                    if tree.entries.iter().all(|e| e.pid != child) {
                        found |= tree.add(child, parent)?;
                    }
                }
                i += 1;
            }
            if !found {
                tree.refuse_shared_tables()?;
                Plan::new(&tree.entries).map_err(|e| unsupported(e.pid, None, e.what))?;
                return Ok(tree);
            }
        }
        Err(unsupported(
            root,
            None,
            "processes created faster than they can be stopped",
        ))
    }

    /// Refuses a process that shares its memory (`vfork`, `CLONE_VM`) or
    /// its fd table (`CLONE_FILES`) with its parent: each process is
    /// restored with its own.
    fn refuse_shared_tables(&self) -> Result<(), DumpError> {
        for p in &self.procs[1..] {
            let parent = self
                .entries
                .iter()
                .find(|e| e.pid == p.pid)
                .map_or(0, |e| e.ppid);
            for (kind, what) in [(sys::KCMP_VM, "memory"), (sys::KCMP_FILES, "fd table")] {
                let same = sys::kcmp(parent, p.pid, kind).map_err(|source| DumpError::Trace {
                    pid: p.pid,
                    op: format!("kcmp with its parent {parent}"),
                    source,
                })?;
                if same {
                    let why =
                        format!("shares its {what} with its parent {parent} (vfork or clone)");
                    return Err(unsupported(p.pid, None, why));
                }
            }
        }
        Ok(())
    }

    /// The children of process `i`, from each thread's `children` file.
    fn children(&self, i: usize) -> Result<Vec<i32>, DumpError> {
        let p = &self.procs[i];
        let mut out = Vec::new();
        for tid in p.tids() {
            let text = read_proc(p.pid, &format!("task/{tid}/children"))?;
            out.extend(
                text.split_whitespace()
                    .filter_map(|w| w.parse::<i32>().ok()),
            );
        }
        Ok(out)
    }

    /// Seizes `pid`, a child of `parent`, or records it as a zombie; skips
    /// it if it is gone (reaped by a `SIGCHLD`-ignoring parent). Whether it
    /// was new to the tree.
    fn add(&mut self, pid: i32, parent: i32) -> Result<bool, DumpError> {
        let Some((entry, state)) = ids_if_alive(pid)? else {
            return Ok(false);
        };
        if state != 'Z' {
            refuse_vfork_parent(pid)?;
            match Seized::new(pid) {
                Ok(s) => {
                    // Stopped now: its ids can no longer change.
                    let Some((entry, _)) = ids_if_alive(pid)? else {
                        return Ok(false);
                    };
                    self.check_parent(&entry, parent)?;
                    self.entries.push(entry);
                    self.procs.push(s);
                    return Ok(true);
                }
                // It may have exited since: a zombie cannot be seized.
                Err(e) => match ids_if_alive(pid)? {
                    Some((entry, 'Z')) => {
                        self.check_parent(&entry, parent)?;
                        self.entries.push(entry);
                        return Ok(true);
                    }
                    None => return Ok(false),
                    Some(_) => return Err(e),
                },
            }
        }
        self.check_parent(&entry, parent)?;
        self.entries.push(entry);
        Ok(true)
    }

    fn check_parent(&self, e: &ProcEntry, parent: i32) -> Result<(), DumpError> {
        if e.ppid != parent {
            return Err(unsupported(
                e.pid,
                None,
                format!("listed as a child of {parent} but its parent is {}", e.ppid),
            ));
        }
        Ok(())
    }

    /// The seized processes, root first, each after its parent.
    pub fn procs_mut(&mut self) -> impl Iterator<Item = &mut Seized> {
        self.procs.iter_mut()
    }

    /// Every process's ids, zombies included, in tree order.
    pub fn entries(&self) -> Vec<ProcEntry> {
        self.entries.clone()
    }

    /// Groups of fds of `tasks` that share one open file description
    /// (`kcmp(KCMP_FILE)`), each of two fds or more. Only fds on the same
    /// device and inode are compared, so a tree of many fds costs few calls.
    pub fn shared_fds(&self, tasks: &[TaskImage]) -> Result<Vec<Vec<TaskFd>>, DumpError> {
        let mut by_inode: HashMap<(u64, u64), Vec<TaskFd>> = HashMap::new();
        for t in tasks {
            for f in &t.fds {
                let path = format!("/proc/{}/fd/{}", t.pid, f.fd);
                let md = std::fs::metadata(&path).map_err(|source| DumpError::Proc {
                    pid: t.pid,
                    path: path.into(),
                    source,
                })?;
                by_inode
                    .entry((md.dev(), md.ino()))
                    .or_default()
                    .push(TaskFd {
                        pid: t.pid,
                        fd: f.fd,
                    });
            }
        }
        let mut groups: Vec<Vec<TaskFd>> = Vec::new();
        for fds in by_inode.into_values().filter(|v| v.len() > 1) {
            let mut local: Vec<Vec<TaskFd>> = Vec::new();
            for f in fds {
                let mut placed = false;
                for g in local.iter_mut() {
                    let same = sys::kcmp_file_between(g[0].pid, f.pid, g[0].fd, f.fd).map_err(
                        |source| DumpError::Trace {
                            pid: f.pid,
                            op: format!("kcmp fd {} with fd {} of pid {}", f.fd, g[0].fd, g[0].pid),
                            source,
                        },
                    )?;
                    if same {
                        g.push(f);
                        placed = true;
                        break;
                    }
                }
                if !placed {
                    local.push(vec![f]);
                }
            }
            groups.extend(local.into_iter().filter(|g| g.len() > 1));
        }
        groups.sort_by_key(|g| (g[0].pid, g[0].fd));
        Ok(groups)
    }

    /// Puts every process back as it was and lets it run.
    pub fn release(self) -> Result<(), DumpError> {
        let mut first_err = Ok(());
        for p in self.procs.into_iter().rev() {
            let r = p.release();
            if first_err.is_ok() {
                first_err = r;
            }
        }
        first_err
    }

    /// Kills every process, children before parents, and has each parent
    /// in the tree reap its children (an injected `wait4`), so no zombie
    /// outlives the tree; the root is reaped by its own parent (by us when
    /// we are that parent, as the tests are).
    pub fn kill(self) {
        let SeizedTree { procs, entries } = self;
        for p in procs.into_iter().rev() {
            let kids: Vec<i32> = entries[1..]
                .iter()
                .filter(|e| e.ppid == p.pid)
                .map(|e| e.pid)
                .collect();
            if !kids.is_empty() {
                if let Err(e) = reap_in(&p, &kids) {
                    tracing::warn!(pid = p.pid, error = %e, "children of a killed process not reaped");
                }
            }
            p.kill();
        }
    }
}

/// Refuses `pid` if a child shares its memory: a `vfork` parent waits in
/// the kernel until the child execs or exits, where no ptrace stop can
/// reach it, so seizing it would wait for ever.
fn refuse_vfork_parent(pid: i32) -> Result<(), DumpError> {
    for tid in thread_ids(pid)? {
        let text = read_proc(pid, &format!("task/{tid}/children")).unwrap_or_default();
        for kid in text
            .split_whitespace()
            .filter_map(|w| w.parse::<i32>().ok())
        {
            if let Ok(true) = sys::kcmp(pid, kid, sys::KCMP_VM) {
                let why = format!("shares its memory with its parent {pid} (vfork or clone)");
                return Err(unsupported(kid, None, why));
            }
        }
    }
    Ok(())
}

/// Runs `wait4(kid, NULL, __WALL)` in `p` for each of `kids` (each already
/// dead: a zombie, or killed and waited for by us as its tracer).
fn reap_in(p: &Seized, kids: &[i32]) -> Result<(), DumpError> {
    let trace = |op: &'static str| DumpError::trace(p.pid, op);
    // It dies next: no need to put its mask back.
    sys::ptrace_set_sigmask(p.pid, !0).map_err(trace("PTRACE_SETSIGMASK"))?;
    let ip = syscall_ip(p.pid).map_err(trace("find a syscall instruction"))?;
    let inj = Injector::new(p.pid, ip, p.leader_regs());
    for &kid in kids {
        let wall = libc::__WALL as u64;
        // ECHILD: reaped already (a parent that ignores SIGCHLD).
        match inj.syscall(libc::SYS_wait4, [kid as u64, 0, wall, 0, 0, 0]) {
            Ok(_) | Err(InjectError::Failed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The address of a `syscall` instruction in `pid`'s vdso.
pub(crate) fn syscall_ip(pid: i32) -> io::Result<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let maps =
        procfs::parse_smaps(&maps).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let vdso = maps
        .iter()
        .find(|m| m.path.as_deref() == Some("[vdso]"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no [vdso]"))?;
    let mut text = vec![0u8; (vdso.end - vdso.start) as usize];
    sys::process_vm_readv(pid, &mut text, &[(vdso.start, vdso.end - vdso.start)])?;
    let off = inject::find_syscall_insn(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no syscall in the vdso"))?;
    Ok(vdso.start + off)
}

fn ids(pid: i32) -> Result<(ProcEntry, char), DumpError> {
    read_ids(pid).map_err(|source| DumpError::Proc {
        pid,
        path: format!("/proc/{pid}/stat").into(),
        source,
    })
}

/// [`read_ids`], `None` when the process is gone.
fn ids_if_alive(pid: i32) -> Result<Option<(ProcEntry, char)>, DumpError> {
    match read_ids(pid) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => Ok(None),
        r => r.map(Some).map_err(|source| DumpError::Proc {
            pid,
            path: format!("/proc/{pid}/stat").into(),
            source,
        }),
    }
}
