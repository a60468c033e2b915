//! Pids of a tree as its own pid namespace sees them.
//!
//! A dump reads every process through its host pid (/proc, ptrace and
//! `kcmp` all work on the dumper's pids); a tree that lives in a pid
//! namespace of its own (a container's, or one made by `unshare -pf`) is
//! recorded with the ids that namespace gives: `NSpid`, `NSpgid` and
//! `NSsid` of /proc/PID/status at the level of the root's pid namespace.
//! Its root is pid 1 there, and a parent, group or session outside the
//! namespace reads as 0 (the kernel's answer), which [`super::Plan`] takes
//! as one inherited from outside the tree.
//!
//! A process of the tree that lives in a pid namespace nested inside the
//! root's is refused by name: a restore would have to make that namespace
//! too.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::collect::{unsupported, DumpError};
use crate::container;
use crate::image::{ImageError, ProcEntry, TaskFd, TaskImage};

/// The three id lists of /proc/`pid`/status, one id per pid namespace
/// level, the dumper's first: `NSpid`, `NSpgid`, `NSsid`.
fn ns_fields(pid: i32) -> Result<[Vec<i32>; 3], DumpError> {
    let path = format!("/proc/{pid}/status");
    let err = |source| DumpError::Proc {
        pid,
        path: path.clone().into(),
        source,
    };
    let text = fs::read_to_string(&path).map_err(err)?;
    let field = |name: &str| {
        crate::proc::status_field(&text, name)
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .ok_or_else(|| err(std::io::Error::other(format!("no {name}"))))
    };
    Ok([field("NSpid")?, field("NSpgid")?, field("NSsid")?])
}

/// Host pid to namespace pid, for every process of a tree.
#[derive(Debug, Default)]
pub(crate) struct NsPids {
    map: HashMap<i32, i32>,
}

impl NsPids {
    /// The namespace pid of host pid `pid`, which must be in the tree.
    pub fn get(&self, pid: i32) -> i32 {
        self.map.get(&pid).copied().unwrap_or(0)
    }

    /// Rewrites `entries` (host pids, root first) into the ids of the
    /// root's pid namespace and returns the mapping.
    pub fn translate(entries: &mut [ProcEntry]) -> Result<NsPids, DumpError> {
        let Some(root) = entries.first() else {
            return Ok(NsPids::default());
        };
        let level = ns_fields(root.pid)?[0].len();
        let mut map = HashMap::new();
        let mut ids = Vec::with_capacity(entries.len());
        for e in entries.iter() {
            let [pid, pgid, sid] = ns_fields(e.pid)?;
            if pid.len() != level || pgid.len() != level || sid.len() != level {
                let why = "lives in a pid namespace nested in the tree's";
                return Err(unsupported(e.pid, None, why));
            }
            map.insert(e.pid, pid[level - 1]);
            ids.push((pid[level - 1], pgid[level - 1], sid[level - 1]));
        }
        let ns = NsPids { map };
        for (i, (e, (pid, pgid, sid))) in entries.iter_mut().zip(ids).enumerate() {
            // The root's parent is outside the namespace: 0, as the
            // kernel shows it there.
            e.ppid = if i == 0 { 0 } else { ns.get(e.ppid) };
            (e.pid, e.pgid, e.sid) = (pid, pgid, sid);
        }
        Ok(ns)
    }

    /// Rewrites a task's pid, its threads' tids and the threads its POSIX
    /// timers signal (each read from /proc/PID/task/TID/status).
    pub fn task(&self, task: &mut TaskImage) -> Result<(), DumpError> {
        let host = task.pid;
        let proc_err = |tid: i32| {
            move |source| DumpError::Proc {
                pid: host,
                path: format!("/proc/{host}/task/{tid}/status").into(),
                source,
            }
        };
        task.pid = self.get(host);
        for t in &mut task.state.posix_timers {
            if t.tid != 0 {
                t.tid = container::ns_tid(host, t.tid).map_err(proc_err(t.tid))?;
            }
        }
        for t in &mut task.threads {
            t.tid = container::ns_tid(host, t.tid).map_err(proc_err(t.tid))?;
        }
        Ok(())
    }

    /// Rewrites the pids of fd lists.
    pub fn fds(&self, fds: &mut [TaskFd]) {
        for f in fds {
            f.pid = self.get(f.pid);
        }
    }
}

/// Renames the files of each task (`pages-<pid>.img`, `files-<pid>.img`)
/// from host pid to namespace pid, through temporary names first: a
/// namespace pid may be another task's host pid.
pub(crate) fn rename_files(dir: &Path, pairs: &[(i32, i32)]) -> Result<(), DumpError> {
    let names = |pid: i32| {
        [
            format!("pages-{pid}.img"),
            crate::fd_image::files_file_name(pid),
        ]
    };
    let rename = |from: &Path, to: &Path| {
        fs::rename(from, to).map_err(|source| ImageError::Io {
            op: "rename",
            path: to.to_owned(),
            source,
        })
    };
    let mut moved = Vec::new();
    for &(host, ns) in pairs {
        for (from, to) in names(host).into_iter().zip(names(ns)) {
            let from = dir.join(from);
            if from.exists() {
                let tmp = dir.join(format!("{to}.ns-tmp"));
                rename(&from, &tmp)?;
                moved.push((tmp, dir.join(to)));
            }
        }
    }
    for (tmp, to) in moved {
        rename(&tmp, &to)?;
    }
    Ok(())
}

/// How `pid` (the root of a bare dump) sits in pid namespaces: `Ok(false)`
/// in the dumper's own, `Ok(true)` as pid 1 of another; refused otherwise.
pub(crate) fn own_pid_ns(pid: i32) -> Result<bool, DumpError> {
    let link = |p: &str| {
        let path = format!("/proc/{p}/ns/pid");
        fs::read_link(&path).map_err(|source| DumpError::Proc {
            pid,
            path: path.into(),
            source,
        })
    };
    if link(&pid.to_string())? == link("self")? {
        return Ok(false);
    }
    let nspid = &ns_fields(pid)?[0];
    match nspid.last() {
        Some(1) => Ok(true),
        n => Err(unsupported(
            pid,
            None,
            format!(
                "in a pid namespace other than the dumper's as pid {}, not its pid 1",
                n.copied().unwrap_or(0)
            ),
        )),
    }
}

/// Refuses a process of the tree (host pids) that lives in a pid namespace
/// nested in the root's: a restore makes every process in one namespace.
pub(crate) fn refuse_nested(entries: &[ProcEntry]) -> Result<(), DumpError> {
    let Some(root) = entries.first() else {
        return Ok(());
    };
    let level = ns_fields(root.pid)?[0].len();
    for e in &entries[1..] {
        if ns_fields(e.pid)?[0].len() != level {
            let why = "lives in a pid namespace nested in the tree's";
            return Err(unsupported(e.pid, None, why));
        }
    }
    Ok(())
}

/// Whether `pid` (pid 1 of its own pid namespace) is in a mount namespace
/// other than the dumper's. If so, its mounts must be the dumper's but for
/// /proc (as `unshare -pf --mount-proc` makes them): a restore makes a
/// private copy of the restorer's mount namespace and mounts a procfs of
/// the new pid namespace on /proc. Any other mount point is refused by
/// name.
pub(crate) fn own_mount_ns(pid: i32) -> Result<bool, DumpError> {
    let read = |p: &str, what: &str| {
        let path = format!("/proc/{p}/{what}");
        let r = if what == "mountinfo" {
            fs::read_to_string(&path)
        } else {
            fs::read_link(&path).map(|l| l.to_string_lossy().into_owned())
        };
        r.map_err(|source| DumpError::Proc {
            pid,
            path: path.into(),
            source,
        })
    };
    let me = pid.to_string();
    if read(&me, "ns/mnt")? == read("self", "ns/mnt")? {
        return Ok(false);
    }
    let points = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| *m != "/proc" && !m.starts_with("/proc/"))
            .map(str::to_owned)
            .collect()
    };
    let (theirs, ours) = (
        points(&read(&me, "mountinfo")?),
        points(&read("self", "mountinfo")?),
    );
    if let Some(m) = theirs.iter().find(|m| !ours.contains(m)) {
        let why = format!("mount on {m} in its own mount namespace");
        return Err(unsupported(pid, None, why));
    }
    Ok(true)
}
