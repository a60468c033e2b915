//! What libcgroup's tools (and `corral cgroup`) do to a group beyond what the
//! runtime needs: a group in some controllers only (`-g memory,pids:/x`),
//! settings by name with v1↔v2 translation ([`crate::settings`]), listing a
//! controller's files, a delete that refuses a busy group, and walking a
//! hierarchy for `tree` and `list`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{
    cgroup::{components, Cgroup, UnifiedDir, V1Dir},
    dir::{CgroupDir, FileError},
    hierarchy::Hierarchy,
    hybrid::Controller,
    path::{resolve, OwnCgroups},
    settings::{self, PlanError, Version},
    Error,
};

/// Whether the tools accept `name` after `-g`: a controller the kernel has
/// ([`Controller::from_name`]: every v1 name, and `io`).
pub fn is_known_controller(name: &str) -> bool {
    Controller::from_name(name).is_some()
}

/// The v2 name of a controller (`blkio` → `io`, `cpuacct` → `cpu`).
fn v2_name(c: &str) -> &str {
    match c {
        "blkio" => "io",
        "cpuacct" => "cpu",
        other => other,
    }
}

/// The v1 name of a controller (`io` → `blkio`).
fn v1_name(c: &str) -> &str {
    match c {
        "io" => "blkio",
        other => other,
    }
}

/// One directory of a group, for the tools: where it is and what it offers.
#[derive(Clone, Debug)]
pub struct GroupDir {
    /// The directory.
    pub path: PathBuf,
    /// The hierarchy's mount point.
    pub mount: PathBuf,
    /// v1 or v2.
    pub version: Version,
    /// The controllers it carries (v1) or has available (v2).
    pub controllers: Vec<String>,
}

/// One group below a hierarchy, for `tree` and `list`.
#[derive(Clone, Debug, Serialize)]
pub struct TreeNode {
    /// The path below the hierarchy root (`/` for the root).
    pub path: String,
    /// Depth below the starting group.
    pub depth: usize,
    /// Processes directly in it.
    pub pids: Vec<i32>,
    /// `memory.usage_in_bytes` or `memory.current`, where available.
    pub memory_bytes: Option<u64>,
    /// `pids.current`, where available.
    pub pids_current: Option<u64>,
}

impl Cgroup {
    /// The group at `path` (below each hierarchy's root, as libcgroup's
    /// tools take it: `x` is `/x`) in the hierarchies of `controllers` only;
    /// `*` or an empty list means every hierarchy. A controller name the
    /// kernel lacks, or one no hierarchy offers, is refused.
    pub fn with_controllers(
        h: &Hierarchy,
        path: &str,
        controllers: &[String],
    ) -> Result<Cgroup, Error> {
        let abs = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let mut cg = Cgroup::with_own_cgroups(h, &abs, &OwnCgroups::default())?;
        let all = controllers.is_empty() || controllers.iter().any(|c| c == "*");
        if all {
            return Ok(cg);
        }
        for c in controllers {
            if !is_known_controller(c) {
                return Err(Error::UnknownController { name: c.clone() });
            }
        }
        let in_v1 = |d: &V1Dir, c: &str| d.controllers.iter().any(|n| n == v1_name(c));
        let wanted_v1: Vec<&String> = controllers
            .iter()
            .filter(|c| cg.v1.iter().any(|d| in_v1(d, c)))
            .collect();
        let wanted_v2: Vec<String> = controllers
            .iter()
            .filter(|c| !wanted_v1.contains(c))
            .map(|c| v2_name(c).to_owned())
            .collect();
        if let Some(missing) = wanted_v2.iter().find(|c| {
            let core = matches!(c.as_str(), "freezer" | "devices");
            let offered = cg
                .unified
                .as_ref()
                .is_some_and(|u: &UnifiedDir| core || u.controllers.iter().any(|n| n == *c));
            !offered
        }) {
            return Err(Error::NotMounted {
                name: missing.clone(),
            });
        }
        cg.v1.retain(|d| controllers.iter().any(|c| in_v1(d, c)));
        if wanted_v2.is_empty() {
            cg.unified = None;
        } else if let Some(u) = cg.unified.as_mut() {
            u.controllers.retain(|c| wanted_v2.contains(c));
        }
        Ok(cg)
    }

    /// The same group in only the hierarchies where its directory exists
    /// (a group created with some controllers, opened with all).
    pub fn existing(&self) -> Cgroup {
        let mut cg = self.clone();
        cg.v1.retain(|d| d.path().is_dir());
        if cg.unified.as_ref().is_some_and(|u| !u.path().is_dir()) {
            cg.unified = None;
        }
        cg
    }

    /// The group's directories with their version and controllers.
    pub fn dirs(&self) -> Vec<GroupDir> {
        let mut out: Vec<GroupDir> = self
            .v1
            .iter()
            .map(|d| GroupDir {
                path: d.path(),
                mount: d.mount.clone(),
                version: Version::V1,
                controllers: d.controllers.clone(),
            })
            .collect();
        out.extend(self.unified.iter().map(|u| GroupDir {
            path: u.path(),
            mount: u.mount.clone(),
            version: Version::V2,
            controllers: u.controllers.clone(),
        }));
        out
    }

    /// The directory a setting lives in: the v1 hierarchy carrying its
    /// controller (after translation to v1), else the unified one if it
    /// offers the controller (or the file is a core one).
    fn dir_for(&self, name: &str) -> Result<GroupDir, Error> {
        let own = settings::controller_of(name)?;
        if own != "cgroup" && !is_known_controller(own) {
            return Err(Error::UnknownController {
                name: own.to_owned(),
            });
        }
        let dirs = self.dirs();
        let in_v1 = |ctrl: &str| {
            dirs.iter()
                .find(|d| d.version == Version::V1 && d.controllers.iter().any(|c| c == ctrl))
        };
        match settings::map(name, Version::V1) {
            Ok(m) => {
                if let Some(d) = in_v1(settings::controller_of(&m.file)?) {
                    return Ok(d.clone());
                }
            }
            // A v2-only name whose controller is v1-mounted here.
            Err(e) if in_v1(own).is_some() => return Err(e.into()),
            Err(_) => {}
        }
        let m = settings::map(name, Version::V2)?;
        let ctrl = v2_name(settings::controller_of(&m.file)?);
        let core = ctrl == "cgroup"
            || m.file.ends_with(".pressure")
            || m.file == "cpu.stat"
            || m.file == "memory.stat" && self.v1.is_empty();
        if let Some(d) = dirs
            .iter()
            .find(|d| d.version == Version::V2 && (core || d.controllers.iter().any(|c| c == ctrl)))
        {
            return Ok(d.clone());
        }
        Err(Error::NotMounted {
            name: format!("{ctrl} (for {name} in cgroup {})", self.path),
        })
    }

    /// Writes setting `name` (a v1 or v2 name, translated to the version
    /// of the hierarchy its controller lives in).
    pub fn set(&self, name: &str, value: &str) -> Result<(), Error> {
        let d = self.dir_for(name)?;
        let dir = CgroupDir::open(&d.path)?;
        let plan = settings::plan_write(name, value, d.version, |f| dir.read(f))
            .map_err(|e| plan_err(e, name, &d.path))?;
        for (file, v) in plan {
            dir.write(&file, &v).map_err(|e| {
                if e.is_not_found() {
                    Error::UnknownSetting {
                        name: name.to_owned(),
                        path: d.path.clone(),
                    }
                } else if file == name {
                    e.into()
                } else {
                    Error::SettingWrite {
                        name: name.to_owned(),
                        source: Box::new(e),
                    }
                }
            })?;
        }
        Ok(())
    }

    /// Reads setting `name`, converted back to the version it names.
    pub fn get(&self, name: &str) -> Result<String, Error> {
        let d = self.dir_for(name)?;
        let dir = CgroupDir::open(&d.path)?;
        let m = settings::map(name, d.version)?;
        let text = dir.read(&m.file).map_err(|e| {
            if e.is_not_found() {
                Error::UnknownSetting {
                    name: name.to_owned(),
                    path: d.path.clone(),
                }
            } else {
                e.into()
            }
        })?;
        settings::convert_read(name, &text, d.version, |f| dir.read(f))
            .map_err(|e| plan_err(e, name, &d.path))
    }

    /// The files of `controller` (v1 or v2 name) in this group, in the
    /// kernel's order, with the directory holding them.
    pub fn controller_files(&self, controller: &str) -> Result<Vec<String>, Error> {
        let dirs = self.dirs();
        let v1 = v1_name(controller);
        let d = dirs
            .iter()
            .find(|d| d.version == Version::V1 && d.controllers.iter().any(|c| c == v1))
            .or_else(|| {
                dirs.iter().find(|d| {
                    d.version == Version::V2
                        && d.controllers.iter().any(|c| c == v2_name(controller))
                })
            })
            .ok_or_else(|| Error::NotMounted {
                name: controller.to_owned(),
            })?;
        let prefix = match d.version {
            Version::V1 => format!("{v1}."),
            Version::V2 => format!("{}.", v2_name(controller)),
        };
        let files = CgroupDir::open(&d.path)?.files()?;
        Ok(files
            .into_iter()
            .filter(|f| f.starts_with(&prefix))
            .collect())
    }

    /// Moves every process of the group (and, with `recursive`, of its
    /// child groups) to the group's parent, then removes the directories,
    /// children first. Without `recursive` a group holding processes or
    /// child groups is refused before anything changes, naming what is
    /// in it.
    pub fn remove(&self, recursive: bool) -> Result<(), Error> {
        // Each present directory with its parent, opened once.
        let mut present = Vec::new();
        for path in self.paths() {
            let (Some(parent_path), Some(name)) =
                (path.parent(), path.file_name().and_then(|n| n.to_str()))
            else {
                continue;
            };
            let found = CgroupDir::open(parent_path).and_then(|p| {
                let d = p.open_child(name)?;
                Ok((p, d))
            });
            match found {
                Ok(pair) => present.push(pair),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        if present.is_empty() {
            return Err(FileError::OpenDir {
                path: self.paths().into_iter().next().unwrap_or_default(),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            }
            .into());
        }
        if !recursive {
            for (_, d) in &present {
                let children = d.children()?;
                let pids = d.procs()?;
                if !children.is_empty() || !pids.is_empty() {
                    let mut what = Vec::new();
                    if !pids.is_empty() {
                        what.push(format!("processes {pids:?}"));
                    }
                    if !children.is_empty() {
                        what.push(format!("child groups {children:?}"));
                    }
                    return Err(Error::NotEmpty {
                        path: d.path().to_owned(),
                        what: format!("{} (use -r to move them out)", what.join(" and ")),
                    });
                }
            }
        }
        for (parent, d) in present {
            remove_tree(&parent, &parent, d)?;
        }
        Ok(())
    }

    /// Moves the calling process (a single thread: it writes `0` to each
    /// v1 `tasks` file, which skips the kernel's global threadgroup lock)
    /// into the group, v1 hierarchies first.
    pub fn join_self(&self) -> Result<(), Error> {
        for d in &self.v1 {
            CgroupDir::open(&d.path())?.write("tasks", "0")?;
        }
        if let Some(u) = &self.unified {
            CgroupDir::open(&u.path())?.write("cgroup.procs", "0")?;
        }
        Ok(())
    }

    /// Changes owners and modes as cgcreate's `-a`, `-t`, `-d`, `-f`, `-s`
    /// do: `admin` owns the directory and its files, `tasks` owns the
    /// `tasks` and `cgroup.procs` files; `dir_mode`, `file_mode` and
    /// `task_mode` are their permission bits.
    pub fn set_owners(&self, o: &Owners) -> Result<(), Error> {
        for path in self.paths() {
            let d = CgroupDir::open(&path)?;
            let admin = o.admin.map(|(u, g)| (Some(u), Some(g)));
            if admin.is_some() || o.dir_mode.is_some() {
                d.set_attr(".", admin, o.dir_mode)?;
            }
            for f in d.files()? {
                let is_task = f == "tasks" || f == "cgroup.procs" || f == "cgroup.threads";
                let owner = if is_task {
                    o.tasks.or(o.admin).map(|(u, g)| (Some(u), Some(g)))
                } else {
                    admin
                };
                let mode = if is_task {
                    o.task_mode.or(o.file_mode)
                } else {
                    o.file_mode
                };
                if owner.is_some() || mode.is_some() {
                    d.set_attr(&f, owner, mode)?;
                }
            }
        }
        Ok(())
    }
}

/// Owners and modes for [`Cgroup::set_owners`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Owners {
    /// uid:gid of the directory and its files.
    pub admin: Option<(u32, u32)>,
    /// uid:gid of the files that move tasks.
    pub tasks: Option<(u32, u32)>,
    /// Mode of the directory.
    pub dir_mode: Option<u32>,
    /// Mode of the files.
    pub file_mode: Option<u32>,
    /// Mode of the files that move tasks.
    pub task_mode: Option<u32>,
}

fn plan_err(e: PlanError<FileError>, name: &str, path: &Path) -> Error {
    match e {
        PlanError::Setting(s) => s.into(),
        PlanError::Read(f) if f.is_not_found() => Error::UnknownSetting {
            name: name.to_owned(),
            path: path.to_owned(),
        },
        PlanError::Read(f) => f.into(),
    }
}

/// Removes `dir`, a child of `parent`, and everything below it, moving
/// processes to `target` first.
fn remove_tree(target: &CgroupDir, parent: &CgroupDir, dir: CgroupDir) -> Result<(), Error> {
    if dir.has_children()? {
        for child in dir.children()? {
            remove_tree(target, &dir, dir.open_child(&child)?)?;
        }
    }
    let name = dir
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    for pid in dir.procs()? {
        match target.write("cgroup.procs", &pid.to_string()) {
            Ok(()) => {}
            // Gone meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            // cgroup v2's no-internal-process rule: a parent that enables
            // controllers for its children cannot hold processes.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && target.has("cgroup.subtree_control") => {
                return Err(Error::NotEmpty {
                    path: dir.path().to_owned(),
                    what: format!(
                        "process {pid} cannot move to {}, which enables controllers for its children (cgroup v2 allows no process there); move or stop it first",
                        target.path().display()
                    ),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    parent.rmdir_child(&name).map_err(|source| {
        if source.raw_os_error() == Some(libc::EBUSY) {
            Error::Busy {
                path: dir.path().to_owned(),
                pids: dir.procs().unwrap_or_default(),
                source,
            }
        } else {
            FileError::Rmdir {
                path: dir.path().to_owned(),
                source,
            }
            .into()
        }
    })
}

impl Hierarchy {
    /// Every hierarchy as (its controllers joined by commas, mount point,
    /// version): v1 mounts first, then the unified one, for `lssubsys` and
    /// `lscgroup`. On v2 the unified mount's name is its controllers.
    pub fn listing(&self) -> Vec<(String, PathBuf, Version)> {
        let mut out: Vec<(String, PathBuf, Version)> = self
            .v1_mounts()
            .iter()
            .map(|m| (m.controllers.join(","), m.mount_point.clone(), Version::V1))
            .collect();
        if let Some(u) = self.unified() {
            let bound = |c: &String| self.v1_mounts().iter().any(|m| m.controllers.contains(c));
            let own: Vec<&str> = u
                .controllers
                .iter()
                .filter(|c| !bound(c))
                .map(String::as_str)
                .collect();
            out.push((own.join(","), u.mount_point.clone(), Version::V2));
        }
        out
    }

    /// The groups at and below `path` (a path below the hierarchy root,
    /// `/` for all) in the hierarchy mounted at `mount`, depth first, each
    /// with its processes and usage.
    pub fn walk(&self, mount: &Path, path: &str) -> Result<Vec<TreeNode>, Error> {
        let rel = resolve(
            if path.is_empty() { "/" } else { path },
            None,
            Path::new("/"),
        );
        let mut dir = CgroupDir::open(mount)?;
        let mut shown = String::new();
        match rel {
            Ok(rel) => {
                for c in components(&rel) {
                    dir = dir.open_child(c)?;
                    shown.push('/');
                    shown.push_str(c);
                }
            }
            Err(crate::path::PathError::Empty { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if shown.is_empty() {
            shown.push('/');
        }
        let mut out = Vec::new();
        walk_into(&dir, shown, 0, &mut out)?;
        Ok(out)
    }
}

fn walk_into(
    dir: &CgroupDir,
    path: String,
    depth: usize,
    out: &mut Vec<TreeNode>,
) -> Result<(), Error> {
    let num = |f: &str| dir.read(f).ok().and_then(|t| t.trim().parse::<u64>().ok());
    out.push(TreeNode {
        pids: dir.procs().unwrap_or_default(),
        memory_bytes: num("memory.usage_in_bytes").or_else(|| num("memory.current")),
        pids_current: num("pids.current"),
        path: path.clone(),
        depth,
    });
    let mut children = dir.children()?;
    children.sort();
    for c in children {
        let child = match dir.open_child(&c) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => continue, // removed meanwhile
            Err(e) => return Err(e.into()),
        };
        let p = if path == "/" {
            format!("/{c}")
        } else {
            format!("{path}/{c}")
        };
        walk_into(&child, p, depth + 1, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V2: &str = "41 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn the_tools_accept_the_same_controller_names_as_before() {
        // The list tool.rs kept before Controller became the one source.
        let before = [
            "cpuset",
            "cpu",
            "cpuacct",
            "blkio",
            "io",
            "memory",
            "devices",
            "freezer",
            "net_cls",
            "perf_event",
            "net_prio",
            "hugetlb",
            "pids",
            "rdma",
            "misc",
        ];
        for n in before {
            assert!(is_known_controller(n), "{n}");
        }
        for n in ["debug", "name=systemd", "", "cpu,memory", "IO", "unified"] {
            assert!(!is_known_controller(n), "{n}");
        }
        assert_eq!(Controller::ALL.len() + 1, before.len()); // + io
    }

    fn names(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_group_lives_in_the_hierarchies_of_its_controllers_only() {
        let h = Hierarchy::from_mountinfo(HOST)
            .unwrap()
            .with_unified_controllers(&["hugetlb"], &[]);
        let cg = Cgroup::with_controllers(&h, "x", &names(&["memory", "pids"])).unwrap();
        assert_eq!(
            cg.paths(),
            [
                PathBuf::from("/sys/fs/cgroup/memory/x"),
                PathBuf::from("/sys/fs/cgroup/pids/x")
            ]
        );
        let all = Cgroup::with_controllers(&h, "/x", &names(&["*"])).unwrap();
        assert_eq!(all.paths().len(), 5);
        let err = Cgroup::with_controllers(&h, "x", &names(&["bogus"])).unwrap_err();
        assert_eq!(err.to_string(), "unknown controller \"bogus\"");
        let err = Cgroup::with_controllers(&h, "x", &names(&["hugetlb"])).unwrap_err();
        assert!(err.to_string().contains("hugetlb is not mounted"), "{err}");
        let err = Cgroup::with_controllers(&h, "../..", &names(&["pids"])).unwrap_err();
        assert!(err.to_string().contains("escapes"), "{err}");
    }

    #[test]
    fn on_v2_every_controller_is_the_one_directory() {
        let all = ["cpu", "io", "memory", "pids"];
        let h = Hierarchy::from_mountinfo(V2)
            .unwrap()
            .with_unified_controllers(&all, &all);
        let cg = Cgroup::with_controllers(&h, "/x", &names(&["blkio", "memory"])).unwrap();
        assert_eq!(cg.paths(), [PathBuf::from("/sys/fs/cgroup/x")]);
        assert_eq!(cg.unified_controllers(), ["io", "memory"]);
        let d = cg.dir_for("memory.limit_in_bytes").unwrap();
        assert_eq!(d.version, Version::V2);
        assert!(cg.dir_for("pids.max").is_err(), "pids was not asked for");
        assert_eq!(
            h.listing(),
            [(
                "cpu,io,memory,pids".to_owned(),
                PathBuf::from("/sys/fs/cgroup"),
                Version::V2
            )]
        );
    }

    #[test]
    fn settings_route_to_the_v1_hierarchy_of_their_controller() {
        let h = Hierarchy::from_mountinfo(HOST).unwrap();
        let cg = Cgroup::with_controllers(&h, "/x", &[]).unwrap();
        let d = cg.dir_for("memory.max").unwrap();
        assert_eq!(d.path, Path::new("/sys/fs/cgroup/memory/x"));
        assert_eq!(d.version, Version::V1);
        let d = cg.dir_for("cpuacct.usage").unwrap();
        assert_eq!(d.path, Path::new("/sys/fs/cgroup/cpuacct/x"));
        assert!(cg.dir_for("nodot").is_err());
    }
}
