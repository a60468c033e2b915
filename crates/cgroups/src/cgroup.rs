//! [`Cgroup`]: one cgroup across every hierarchy it lives in. It stores only
//! resolved absolute directories (serializable into the runtime's state.json),
//! so `delete` reloads it without resolving a relative path again from a
//! process that may sit in another cgroup.

use std::{
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    dir::{CgroupDir, FileError},
    hierarchy::Hierarchy,
    path::{resolve, OwnCgroups},
    Error,
};

/// A directory in one v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct V1Dir {
    /// The hierarchy's mount point (its root cgroup, never written).
    pub(crate) mount: PathBuf,
    /// Our directory below `mount`; never empty.
    pub(crate) rel: PathBuf,
    /// The hierarchy's controllers.
    pub(crate) controllers: Vec<String>,
}

/// The directory in the unified hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UnifiedDir {
    /// The hierarchy's mount point (its root cgroup, never written).
    pub(crate) mount: PathBuf,
    /// Our directory below `mount`; never empty.
    pub(crate) rel: PathBuf,
    /// The controllers this cgroup can have: enabled in the root's
    /// `cgroup.subtree_control` and not bound to a v1 hierarchy.
    pub(crate) controllers: Vec<String>,
}

impl V1Dir {
    pub(crate) fn path(&self) -> PathBuf {
        self.mount.join(&self.rel)
    }
}

impl UnifiedDir {
    pub(crate) fn path(&self) -> PathBuf {
        self.mount.join(&self.rel)
    }
}

/// One cgroup across every hierarchy it lives in: a directory per v1
/// hierarchy and one in the unified hierarchy. Serialize it into the
/// container's state so a later `delete` can reload it as it was.
///
/// Deserializing checks that every directory lies strictly below its mount:
/// a state file edited to name a hierarchy root must not make `destroy`
/// kill every process and remove every cgroup of the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CgroupRepr")]
pub struct Cgroup {
    /// `linux.cgroupsPath` as given, for messages.
    pub(crate) path: String,
    pub(crate) v1: Vec<V1Dir>,
    pub(crate) unified: Option<UnifiedDir>,
}

/// [`Cgroup`] as stored, before [`Cgroup::try_from`] checks it.
#[derive(Deserialize)]
struct CgroupRepr {
    path: String,
    v1: Vec<V1Dir>,
    unified: Option<UnifiedDir>,
}

impl TryFrom<CgroupRepr> for Cgroup {
    type Error = String;

    fn try_from(r: CgroupRepr) -> Result<Self, String> {
        let rels =
            r.v1.iter()
                .map(|d| (&d.mount, &d.rel))
                .chain(r.unified.iter().map(|u| (&u.mount, &u.rel)));
        for (mount, rel) in rels {
            let below = !rel.as_os_str().is_empty()
                && rel
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !below || !mount.is_absolute() {
                return Err(format!(
                    "cgroup directory {:?} under {} is not strictly below its mount",
                    rel,
                    mount.display()
                ));
            }
        }
        Ok(Cgroup {
            path: r.path,
            v1: r.v1,
            unified: r.unified,
        })
    }
}

impl Cgroup {
    /// Resolves OCI `linux.cgroupsPath` in every hierarchy of `h`: absolute
    /// paths go under each hierarchy's root; relative ones under the calling
    /// process's own cgroup of each hierarchy (read from /proc/self/cgroup),
    /// as runc's cgroupfs driver does. Paths whose `..` would climb out, and
    /// paths naming the root or our own cgroup, are refused.
    pub fn new(h: &Hierarchy, cgroups_path: &str) -> Result<Cgroup, Error> {
        let own = if cgroups_path.starts_with('/') {
            OwnCgroups::default()
        } else {
            OwnCgroups::read()?
        };
        Self::with_own_cgroups(h, cgroups_path, &own)
    }

    /// [`Cgroup::new`] with our own cgroups given (parsed /proc/self/cgroup);
    /// pure, for tests and for resolving on behalf of another process.
    pub fn with_own_cgroups(
        h: &Hierarchy,
        cgroups_path: &str,
        own: &OwnCgroups,
    ) -> Result<Cgroup, Error> {
        let relative = !cgroups_path.starts_with('/');
        let mut v1 = Vec::with_capacity(h.v1_mounts().len());
        for m in h.v1_mounts() {
            let own_path = if relative {
                Some(own.v1_path(&m.controllers)?)
            } else {
                None
            };
            v1.push(V1Dir {
                mount: m.mount_point.clone(),
                rel: resolve(cgroups_path, own_path, &m.root)?,
                controllers: m.controllers.clone(),
            });
        }
        let unified = match h.unified() {
            None => None,
            Some(u) => {
                let own_path = if relative {
                    Some(own.unified_path()?)
                } else {
                    None
                };
                let bound_to_v1 =
                    |c: &String| h.v1_mounts().iter().any(|m| m.controllers.contains(c));
                Some(UnifiedDir {
                    mount: u.mount_point.clone(),
                    rel: resolve(cgroups_path, own_path, &u.root)?,
                    controllers: u
                        .subtree_control
                        .iter()
                        .filter(|c| !bound_to_v1(c))
                        .cloned()
                        .collect(),
                })
            }
        };
        Ok(Cgroup {
            path: cgroups_path.to_owned(),
            v1,
            unified,
        })
    }

    /// `linux.cgroupsPath` as given to [`Cgroup::new`].
    pub fn cgroups_path(&self) -> &str {
        &self.path
    }

    /// Creates the directories (`mkdir -p`) in every hierarchy. An existing
    /// directory is fine. A v1 cpuset directory we create gets its parent's
    /// `cpuset.cpus`/`cpuset.mems`; in the unified hierarchy every non-root
    /// ancestor gets our controllers in `cgroup.subtree_control` (a
    /// controller it refuses, for example because the ancestor holds
    /// processes, is left out with a warning). Nothing is remembered.
    pub fn create(&self) -> Result<(), Error> {
        for d in &self.v1 {
            let cpuset = d.controllers.iter().any(|c| c == "cpuset");
            // Usually the parent exists: make the last directory in it.
            if create_in_existing_parent(d, cpuset)? {
                continue;
            }
            let mut cur = CgroupDir::open(&d.mount)?;
            for name in components(&d.rel) {
                let created = cur.mkdir_child(name)?;
                let child = cur.open_child(name)?;
                if created && cpuset {
                    crate::v1::cpuset::copy_from_parent(&cur, &child)?;
                }
                cur = child;
            }
        }
        if let Some(u) = &self.unified {
            let mut enable = u.controllers.clone();
            let mut cur = CgroupDir::open(&u.mount)?;
            for (i, name) in components(&u.rel).enumerate() {
                if i > 0 {
                    enable_controllers(&cur, &mut enable);
                }
                cur.mkdir_child(name)?;
                cur = cur.open_child(name)?;
            }
        }
        Ok(())
    }

    /// Moves process `pid` into this cgroup in every hierarchy
    /// (`cgroup.procs`), v1 first, the unified hierarchy last.
    pub fn add_task(&self, pid: i32) -> Result<(), Error> {
        let pid = pid.to_string();
        for path in self.paths() {
            CgroupDir::open(&path)?.write("cgroup.procs", &pid)?;
        }
        Ok(())
    }

    /// The v1 `tasks` file of every v1 directory, open for writing, with
    /// its directory for messages. A single-threaded child moves itself by
    /// writing `0` to each: the kernel then skips the global threadgroup
    /// lock that a pid written to `cgroup.procs` takes, whose write side
    /// waits for an RCU grace period (about 10 ms here, on every start).
    pub fn v1_self_attach_files(&self) -> Result<Vec<(PathBuf, OwnedFd)>, Error> {
        let mut files = Vec::with_capacity(self.v1.len());
        for d in &self.v1 {
            let dir = CgroupDir::open(&d.path())?;
            files.push((d.path(), dir.open_for_write("tasks")?));
        }
        Ok(files)
    }

    /// An `O_RDONLY | O_DIRECTORY | O_CLOEXEC` fd of the unified directory,
    /// for `clone3(CLONE_INTO_CGROUP)`; `None` without a unified hierarchy.
    /// On hybrid hosts the child still has to join the v1 hierarchies
    /// through [`Cgroup::add_task`].
    pub fn unified_dir(&self) -> Result<Option<OwnedFd>, Error> {
        match &self.unified {
            None => Ok(None),
            Some(u) => Ok(Some(CgroupDir::open(&u.path())?.into())),
        }
    }

    /// Every process in the cgroup, over all hierarchies, sorted, without
    /// duplicates. Absent directories count as empty.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let mut all = Vec::new();
        for path in self.paths() {
            match CgroupDir::open(&path).and_then(|d| d.procs()) {
                Ok(p) => all.extend(p),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Whether any of the directories exists.
    pub fn exists(&self) -> bool {
        self.paths().iter().any(|p| p.is_dir())
    }

    /// Every directory this cgroup has: the v1 ones in mount order, then the
    /// unified one (for leak checks and `add_task`).
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.v1.iter().map(V1Dir::path).collect();
        out.extend(self.unified.as_ref().map(UnifiedDir::path));
        out
    }

    /// How many device programs are attached to the unified directory itself
    /// (0 without one); for leak checks and tests of re-apply.
    pub fn attached_device_programs(&self) -> Result<usize, Error> {
        let Some(u) = &self.unified else { return Ok(0) };
        Ok(crate::v2::devices::attached(&CgroupDir::open(&u.path())?)?)
    }

    /// The controllers available in the unified directory.
    pub fn unified_controllers(&self) -> &[String] {
        self.unified
            .as_ref()
            .map_or(&[], |u| u.controllers.as_slice())
    }
}

/// `mkdir` of `d`'s last component in its parent when the parent exists:
/// one open instead of a walk from the mount. False, with nothing done,
/// when the parent is missing or is the mount itself: the walk makes it.
fn create_in_existing_parent(d: &V1Dir, cpuset: bool) -> Result<bool, Error> {
    let mut names: Vec<&str> = components(&d.rel).collect();
    let Some(last) = names.pop() else {
        return Ok(false);
    };
    if names.is_empty() {
        return Ok(false);
    }
    let parent = match CgroupDir::open(&d.mount.join(names.join("/"))) {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if parent.mkdir_child(last)? && cpuset {
        crate::v1::cpuset::copy_from_parent(&parent, &parent.open_child(last)?)?;
    }
    Ok(true)
}

/// The components of a relative path we built from `&str`s.
pub(crate) fn components(rel: &Path) -> impl Iterator<Item = &str> {
    rel.components().filter_map(|c| match c {
        std::path::Component::Normal(s) => s.to_str(),
        _ => None,
    })
}

/// Writes `+c` for every controller in `enable` to `dir`'s
/// `cgroup.subtree_control`, in one write; if the kernel refuses, one by one,
/// dropping (with a warning) the ones it refuses so deeper levels don't try.
fn enable_controllers(dir: &CgroupDir, enable: &mut Vec<String>) {
    if enable.is_empty() {
        return;
    }
    let all: Vec<String> = enable.iter().map(|c| format!("+{c}")).collect();
    if dir.write("cgroup.subtree_control", &all.join(" ")).is_ok() {
        return;
    }
    enable.retain(|c| match dir.write("cgroup.subtree_control", &format!("+{c}")) {
        Ok(()) => true,
        Err(e) => {
            let e: &FileError = &e;
            tracing::warn!(path = %dir.path().display(), controller = %c, error = %e, "controller unavailable");
            false
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const SELF: &str = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

    #[test]
    fn relative_paths_differ_per_hierarchy_and_round_trip_through_json() {
        let h = Hierarchy::from_mountinfo(HOST)
            .unwrap()
            .with_unified_controllers(&["hugetlb"], &[]);
        let cg = Cgroup::with_own_cgroups(&h, "ctr", &OwnCgroups::parse(SELF)).unwrap();
        assert_eq!(
            cg.paths(),
            [
                PathBuf::from("/sys/fs/cgroup/cpu/ctr"),
                PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/ctr"),
                PathBuf::from("/sys/fs/cgroup/unified/ctr"),
            ]
        );
        assert!(
            cg.unified_controllers().is_empty(),
            "hugetlb is not in the root's subtree_control"
        );
        let json = serde_json::to_string(&cg).unwrap();
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cg);
    }

    #[test]
    fn a_stored_cgroup_naming_a_root_is_refused() {
        let h = Hierarchy::from_mountinfo(HOST).unwrap();
        let cg = Cgroup::with_own_cgroups(&h, "/x", &OwnCgroups::default()).unwrap();
        let json = serde_json::to_string(&cg).unwrap();
        for evil in ["\"\"", "\"..\"", "\"x/../..\"", "\"/etc\""] {
            let bad = json.replacen("\"x\"", evil, 1);
            assert_ne!(bad, json);
            let err = serde_json::from_str::<Cgroup>(&bad).unwrap_err();
            assert!(
                err.to_string().contains("not strictly below its mount"),
                "{err}"
            );
        }
    }

    #[test]
    fn absolute_paths_and_escapes() {
        let h = Hierarchy::from_mountinfo(HOST).unwrap();
        let cg = Cgroup::with_own_cgroups(&h, "/a/b", &OwnCgroups::default()).unwrap();
        assert_eq!(cg.paths()[1], Path::new("/sys/fs/cgroup/memory/a/b"));
        let err = Cgroup::with_own_cgroups(&h, "/a/../../x", &OwnCgroups::default()).unwrap_err();
        assert!(err.to_string().contains("/a/../../x"), "{err}");
    }
}
