//! Process trees: which processes a dump takes, how their ids are read, and
//! the plan that recreates them with their parents, sessions, process
//! groups and zombies.
//!
//! - [`dump`]: seize every descendant of the root (each process stopped,
//!   every thread, before its children are listed), find fds that share an
//!   open file description across the tree, kill or release the tree.
//! - [`restore`]: create every process from inside its parent, set
//!   sessions and groups, let zombies exit, rebuild each process, resume.
//!
//! Sessions and process groups ([`Plan::new`]): a session or group is
//! recreated when its leader (the process whose pid is its id) is in the
//! tree. The root's own session and group may instead be inherited from
//! outside the tree (the harness that started a probe, the shell of a job):
//! those restore as the restorer's session and group, for the root and for
//! every process that shared them. Any other session or group whose leader
//! is not in the tree (it exited, or lives outside) is refused at dump time,
//! naming the process. A shell job (`cmd &` under a job-control shell) has
//! its own group (the root leads it: recreated) in the shell's session
//! (inherited: the restorer's).
//!
//! Pids: every pid in an image is as [`read_ids`] reads it (the dumper's
//! pid namespace), or, for a tree in a pid namespace of its own (a
//! container's, or a bare tree whose root is pid 1 of its namespace), as
//! that namespace sees it ([`ns`]). The dump walks the tree by host pids
//! and maps at the end; a restore makes each process from inside its
//! parent, so `set_tid` takes the namespace pid, and maps every image pid
//! to the host pid it got for /proc and ptrace ([`restore`]).

pub(crate) mod dump;
pub(crate) mod ns;
pub(crate) mod restore;

use std::collections::HashMap;

use crate::image::{Inventory, ProcEntry, TaskFd};

/// A tree the image cannot recreate: the process and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TreeError {
    /// The process concerned.
    pub pid: i32,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}: {}", self.pid, self.what)
    }
}

/// One step of creating the tree, after the root is forked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `parent` makes `pid` (an injected `clone3` with `set_tid`).
    Create {
        /// The new process.
        pid: i32,
        /// Its parent, which already exists.
        parent: i32,
    },
    /// `pid` calls `setsid`.
    Setsid(i32),
}

/// How the tree is recreated: creation steps in order, then the process
/// group of each process (leaders first; `None` is the restorer's group),
/// then the zombies' exits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The root's pid.
    pub root: i32,
    /// Creation steps, parents before children.
    pub steps: Vec<Step>,
    /// Each process and the group it must end in, group leaders first.
    pub groups: Vec<(i32, Option<i32>)>,
    /// Zombies: pid, parent, wait status.
    pub zombies: Vec<(i32, i32, i32)>,
}

/// The tree of an inventory; an image from before trees (no `tree`) holds
/// one process in the restorer's session and group.
pub(crate) fn entries(inv: &Inventory) -> Vec<ProcEntry> {
    if !inv.tree.is_empty() {
        return inv.tree.clone();
    }
    vec![ProcEntry {
        pid: inv.root_pid,
        ppid: 0,
        pgid: 0,
        sid: 0,
        zombie: None,
        exit_signal: None,
    }]
}

/// Checks an inventory's tree and fd groups against its task list: the
/// reader's part of [`Plan::new`].
pub(crate) fn check_inventory(inv: &Inventory) -> Result<(), String> {
    let tree = entries(inv);
    if tree[0].pid != inv.root_pid {
        return Err(format!("tree starts at {}, not the root", tree[0].pid));
    }
    Plan::new(&tree).map_err(|e| e.to_string())?;
    let mut live: Vec<i32> = tree
        .iter()
        .filter(|e| e.zombie.is_none())
        .map(|e| e.pid)
        .collect();
    let mut tasks = inv.tasks.clone();
    live.sort_unstable();
    tasks.sort_unstable();
    if live != tasks {
        return Err("task list differs from the live processes of the tree".into());
    }
    for group in &inv.shared_fds {
        if group.len() < 2 {
            return Err("a shared fd group of fewer than two fds".into());
        }
        for f in group {
            if tasks.binary_search(&f.pid).is_err() || f.fd < 0 {
                return Err(format!("shared fd {} of pid {}: no such task", f.fd, f.pid));
            }
        }
    }
    for f in &inv.inherited_stdio {
        if !(0..=2).contains(&f.fd) || f.pid == inv.root_pid || tasks.binary_search(&f.pid).is_err()
        {
            return Err(format!(
                "inherited fd {} of pid {}: not stdio of a child",
                f.fd, f.pid
            ));
        }
    }
    if inv.mount_ns && !inv.pid_ns {
        return Err("a mount namespace of its own without a pid namespace".into());
    }
    if inv.pid_ns && inv.root_pid != 1 {
        return Err(format!(
            "root {} of its own pid namespace, not pid 1",
            inv.root_pid
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for f in inv.shared_fds.iter().flatten() {
        if !seen.insert(f) {
            return Err(format!("fd {} of pid {} in two shared groups", f.fd, f.pid));
        }
    }
    Ok(())
}

impl Plan {
    /// Plans the recreation of `tree` (root first, each process after its
    /// parent), or says which process cannot be recreated and why.
    pub fn new(tree: &[ProcEntry]) -> Result<Plan, TreeError> {
        let Some(root) = tree.first() else {
            return Err(TreeError {
                pid: 0,
                what: "empty tree".into(),
            });
        };
        let err = |pid: i32, what: String| Err(TreeError { pid, what });
        let mut index = HashMap::new();
        for (i, e) in tree.iter().enumerate() {
            if e.pid <= 0 || index.insert(e.pid, i).is_some() {
                return err(e.pid, "bad or repeated pid".into());
            }
            if i > 0 {
                match index.get(&e.ppid).map(|&p| &tree[p]) {
                    Some(p) if p.pid != e.pid && p.zombie.is_none() => {}
                    _ => {
                        return err(
                            e.pid,
                            format!("parent {} not before it in the tree", e.ppid),
                        )
                    }
                }
            }
        }
        let get = |pid: i32| index.get(&pid).map(|&i| &tree[i]);
        let outside_sid = get(root.sid).is_none().then_some(root.sid);
        let outside_pgid = get(root.pgid).is_none().then_some(root.pgid);
        for e in tree {
            if e.exit_signal.is_some_and(|s| !(0..=64).contains(&s)) {
                return err(e.pid, format!("exit signal {:?}", e.exit_signal));
            }
            if e.zombie
                .is_some_and(|status| status & !0xff7f != 0 || status & 0x80 != 0)
            {
                let status = e.zombie.unwrap_or_default();
                return err(
                    e.pid,
                    format!("zombie with wait status {status:#x} (a core dump, or not an exit)"),
                );
            }
            if e.sid == e.pid && e.pgid != e.pid {
                return err(e.pid, format!("session leader in process group {}", e.pgid));
            }
            match get(e.sid) {
                Some(l) if l.sid == l.pid => {}
                None if Some(e.sid) == outside_sid => {}
                _ => {
                    return err(
                        e.pid,
                        format!("session {} whose leader is not in the tree", e.sid),
                    )
                }
            }
            let group_sid = match get(e.pgid) {
                Some(l) if l.pgid == l.pid => l.sid,
                None if Some(e.pgid) == outside_pgid => root.sid,
                _ => {
                    return err(
                        e.pid,
                        format!("process group {} whose leader is not in the tree", e.pgid),
                    )
                }
            };
            if group_sid != e.sid {
                return err(
                    e.pid,
                    format!("process group {} of another session", e.pgid),
                );
            }
        }
        let mut plan = Plan {
            root: root.pid,
            steps: Vec::new(),
            groups: Vec::new(),
            zombies: Vec::new(),
        };
        let mut children: HashMap<i32, Vec<&ProcEntry>> = HashMap::new();
        for c in &tree[1..] {
            children.entry(c.ppid).or_default().push(c);
        }
        let walk = Walk {
            children,
            outside_sid,
        };
        walk.walk(root, None, &mut plan.steps, 0)?;
        for e in tree {
            if let Some(status) = e.zombie {
                plan.zombies.push((e.pid, e.ppid, status));
            }
        }
        let group = |e: &ProcEntry| (e.pid, (Some(e.pgid) != outside_pgid).then_some(e.pgid));
        plan.groups = tree.iter().filter(|e| e.pgid == e.pid).map(group).collect();
        plan.groups
            .extend(tree.iter().filter(|e| e.pgid != e.pid).map(group));
        Ok(plan)
    }
}

/// The depth-first walk that orders creation and `setsid` calls.
struct Walk<'a> {
    /// Each process's children, in tree order.
    children: HashMap<i32, Vec<&'a ProcEntry>>,
    outside_sid: Option<i32>,
}

/// Deepest tree [`Walk`] follows (its recursion depth).
const MAX_DEPTH: usize = 512;

impl Walk<'_> {
    /// A session id as the plan sees it: `None` for the restorer's.
    fn resolve(&self, sid: i32) -> Option<i32> {
        (Some(sid) != self.outside_sid).then_some(sid)
    }

    /// Plans `e`'s children (`e` exists, in session `inherited`). A process
    /// takes its parent's session at the moment it is made, so a session
    /// leader makes the children that stay in its old session before its
    /// `setsid`, the others after.
    fn walk(
        &self,
        e: &ProcEntry,
        inherited: Option<i32>,
        steps: &mut Vec<Step>,
        depth: usize,
    ) -> Result<(), TreeError> {
        let err = |what: String| Err(TreeError { pid: e.pid, what });
        if depth > MAX_DEPTH {
            return err(format!("a tree deeper than {MAX_DEPTH}"));
        }
        let leader = e.sid == e.pid;
        if !leader && self.resolve(e.sid) != inherited {
            return err(format!(
                "session {} differs from its parent's and it does not lead it",
                e.sid
            ));
        }
        let kids: &[&ProcEntry] = self.children.get(&e.pid).map_or(&[], |k| k.as_slice());
        let early = |c: &&ProcEntry| leader && c.sid != c.pid && self.resolve(c.sid) == inherited;
        for c in kids.iter().filter(|c| early(c)) {
            steps.push(Step::Create {
                pid: c.pid,
                parent: e.pid,
            });
            self.walk(c, inherited, steps, depth + 1)?;
        }
        let session = if leader {
            steps.push(Step::Setsid(e.pid));
            Some(e.pid)
        } else {
            inherited
        };
        for c in kids.iter().filter(|c| !early(c)) {
            steps.push(Step::Create {
                pid: c.pid,
                parent: e.pid,
            });
            self.walk(c, session, steps, depth + 1)?;
        }
        Ok(())
    }
}

/// Reads `pid`'s state, parent, group, session and, for a zombie, its
/// wait status from /proc/PID/stat. The one place a dump turns a process
/// into image ids (a dump of a pid namespace maps them here).
pub(crate) fn read_ids(pid: i32) -> std::io::Result<(ProcEntry, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_ids(pid, &text).ok_or_else(|| std::io::ErrorKind::InvalidData.into())
}

/// Parses /proc/PID/stat: state (field 3), ppid, pgrp, session (4-6),
/// exit_signal (38) and exit_code (52, a wait status, for a zombie). Counted from the last `)`,
/// as `comm` may hold anything.
pub(crate) fn parse_stat_ids(pid: i32, text: &str) -> Option<(ProcEntry, char)> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let n = |field: usize| -> Option<i32> { f.get(field - 3)?.parse().ok() };
    let state = f.first()?.chars().next()?;
    let zombie = match state {
        'Z' => Some(n(52)?),
        _ => None,
    };
    let exit_signal = n(38)?;
    Some((
        ProcEntry {
            pid,
            ppid: n(4)?,
            pgid: n(5)?,
            sid: n(6)?,
            zombie,
            exit_signal: (exit_signal != libc::SIGCHLD).then_some(exit_signal),
        },
        state,
    ))
}

/// Fds of the image that share one open file description: at restore the
/// first one opened is the source of the others.
#[derive(Debug, Default)]
pub(crate) struct SharedFiles {
    group_of: HashMap<TaskFd, usize>,
    source: HashMap<usize, i32>,
}

impl SharedFiles {
    /// From the inventory's groups.
    pub fn new(groups: &[Vec<TaskFd>]) -> Self {
        let mut s = SharedFiles::default();
        for (i, g) in groups.iter().enumerate() {
            for f in g {
                s.group_of.insert(*f, i);
            }
        }
        s
    }

    /// The fd of ours already open on `f`'s description, if another fd of
    /// its group was opened first.
    pub fn source(&self, f: TaskFd) -> Option<i32> {
        self.source.get(self.group_of.get(&f)?).copied()
    }

    /// Records that `f`'s description is open as our fd `ours`.
    pub fn opened(&mut self, f: TaskFd, ours: i32) {
        if let Some(&g) = self.group_of.get(&f) {
            self.source.entry(g).or_insert(ours);
        }
    }
}

#[cfg(test)]
mod tests;
