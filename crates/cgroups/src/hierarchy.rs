//! Which cgroup hierarchies are mounted, read from `/proc/self/mountinfo`.
//!
//! A mountinfo line (proc(5)):
//!
//! ```text
//! 36 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
//! |  |  |    | |                     |           | |      |      `- super options: the v1 controllers
//! |  |  |    | |                     |           | |      `- source
//! |  |  |    | |                     |           | `- filesystem type: cgroup (v1) or cgroup2
//! |  |  |    | |                     |           `- separator after zero or more optional fields
//! |  |  |    | |                     `- mount options
//! |  |  |    | `- mount point (octal escapes for space, tab, newline, backslash)
//! |  |  |    `- root: the directory of the hierarchy this mount shows
//! id parent major:minor
//! ```
//!
//! Named v1 hierarchies (`name=systemd`) carry no controller and are ignored.

use std::path::{Path, PathBuf};

use crate::{dir::CgroupDir, hybrid::Controller};

/// Whether `option`, a super option of a v1 `cgroup` mount, names a
/// controller: one of [`Controller::ALL`], or `debug` (a controller of
/// debug kernels that corral never uses or offers).
fn is_v1_controller(option: &str) -> bool {
    option == "debug" || (option != "io" && Controller::from_name(option).is_some())
}

/// Finding the hierarchies failed.
#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    /// A file of /proc could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No v1 controller and no cgroup2 mount was found.
    #[error("no cgroup hierarchy is mounted (no cgroup2 mount and no cgroup v1 controller in mountinfo)")]
    NoCgroupMounts,
    /// The unified hierarchy's root could not be read.
    #[error("cannot read the controllers of the unified hierarchy at {path}")]
    Unified {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::dir::FileError,
    },
}

/// How the hierarchies are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// Only v1 controller hierarchies.
    V1,
    /// Only the unified (cgroup2) hierarchy.
    V2,
    /// v1 controller hierarchies plus a unified hierarchy (systemd's hybrid).
    Hybrid,
}

/// One v1 hierarchy: a `cgroup` mount carrying one or more controllers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The hierarchy directory the mount shows (`/` unless a subtree is bind-mounted).
    pub root: PathBuf,
    /// Its controllers, in the mount's order (`["cpu", "cpuacct"]`).
    pub controllers: Vec<String>,
}

/// The unified (cgroup2) hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnifiedMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The hierarchy directory the mount shows.
    pub root: PathBuf,
    /// `cgroup.controllers` of the mount's root: the controllers bound to v2.
    /// Empty when built by [`Hierarchy::from_mountinfo`] alone.
    pub controllers: Vec<String>,
    /// `cgroup.subtree_control` of the mount's root: the controllers its
    /// children can have. We never write a root cgroup, so a controller
    /// missing here is unavailable.
    pub subtree_control: Vec<String>,
}

/// The cgroup hierarchies of this mount namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    v1: Vec<V1Mount>,
    unified: Option<UnifiedMount>,
}

impl Hierarchy {
    /// Reads `/proc/self/mountinfo`, and the unified root's
    /// `cgroup.controllers` and `cgroup.subtree_control`.
    pub fn detect() -> Result<Hierarchy, crate::Error> {
        let path = Path::new("/proc/self/mountinfo");
        // One read for a usual table: std's read_to_string would start
        // with a 32-byte probe (the file's size is 0) and have the kernel
        // render the table over again for each of its growing reads.
        let mut text = String::with_capacity(16 << 10);
        std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut text))
            .map_err(|source| HierarchyError::Read {
                path: path.to_owned(),
                source,
            })?;
        let mut h = Self::from_mountinfo(&text)?;
        if let Some(u) = h.unified.as_mut() {
            let err = |source| HierarchyError::Unified {
                path: u.mount_point.clone(),
                source,
            };
            let root = CgroupDir::open(&u.mount_point).map_err(err)?;
            let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
            let controllers = words(&root.read("cgroup.controllers").map_err(err)?);
            let subtree = words(&root.read("cgroup.subtree_control").map_err(err)?);
            u.controllers = controllers;
            u.subtree_control = subtree;
        }
        tracing::debug!(layout = ?h.layout(), "cgroup hierarchies detected");
        Ok(h)
    }

    /// Parses mountinfo text. Pure: never reads the filesystem, never panics;
    /// malformed lines are skipped. The unified mount's controller lists are
    /// left empty (see [`Hierarchy::with_unified_controllers`]).
    pub fn from_mountinfo(text: &str) -> Result<Hierarchy, crate::Error> {
        let mut v1: Vec<V1Mount> = Vec::new();
        let mut unified: Option<UnifiedMount> = None;
        for line in text.lines() {
            let Some(m) = parse_line(line) else { continue };
            match m.fstype {
                "cgroup2" => {
                    let new = UnifiedMount {
                        mount_point: m.mount_point,
                        root: m.root,
                        controllers: Vec::new(),
                        subtree_control: Vec::new(),
                    };
                    let preferred = |p: &Path| {
                        p == Path::new("/sys/fs/cgroup") || p == Path::new("/sys/fs/cgroup/unified")
                    };
                    match &unified {
                        Some(old)
                            if preferred(&old.mount_point) || !preferred(&new.mount_point) => {}
                        _ => unified = Some(new),
                    }
                }
                "cgroup" => {
                    let controllers: Vec<String> = m
                        .super_options
                        .split(',')
                        .filter(|o| is_v1_controller(o))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty() {
                        continue; // a named hierarchy such as name=systemd
                    }
                    // The same hierarchy mounted twice: keep the first mount.
                    if v1
                        .iter()
                        .any(|o| o.controllers.iter().any(|c| controllers.contains(c)))
                    {
                        continue;
                    }
                    v1.push(V1Mount {
                        mount_point: m.mount_point,
                        root: m.root,
                        controllers,
                    });
                }
                _ => {}
            }
        }
        if v1.is_empty() && unified.is_none() {
            return Err(HierarchyError::NoCgroupMounts.into());
        }
        Ok(Hierarchy { v1, unified })
    }

    /// Sets what the unified root offers (`cgroup.controllers`) and enables
    /// for its children (`cgroup.subtree_control`); for tests and callers
    /// that parsed mountinfo themselves.
    pub fn with_unified_controllers(
        mut self,
        controllers: &[&str],
        subtree_control: &[&str],
    ) -> Self {
        if let Some(u) = self.unified.as_mut() {
            u.controllers = controllers.iter().map(|s| (*s).to_owned()).collect();
            u.subtree_control = subtree_control.iter().map(|s| (*s).to_owned()).collect();
        }
        self
    }

    /// V1, V2 or Hybrid.
    pub fn layout(&self) -> Layout {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, _) => Layout::V2,
            (false, false) => Layout::V1,
            (false, true) => Layout::Hybrid,
        }
    }

    /// The v1 controller hierarchies, named ones left out.
    pub fn v1_mounts(&self) -> &[V1Mount] {
        &self.v1
    }

    /// The unified hierarchy, if mounted.
    pub fn unified(&self) -> Option<&UnifiedMount> {
        self.unified.as_ref()
    }
}

/// Fuzz entry: any bytes, as mountinfo, must parse or fail without a panic.
/// proptest drives it in the unit tests; a `cargo fuzz` target can wrap it.
pub fn fuzz_mountinfo(data: &[u8]) {
    let _ = Hierarchy::from_mountinfo(&String::from_utf8_lossy(data));
}

struct MountLine<'a> {
    root: PathBuf,
    mount_point: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

fn parse_line(line: &str) -> Option<MountLine<'_>> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    let root = fields.get(3)?;
    let mount_point = fields.get(4)?;
    let fstype = fields.get(sep + 1)?;
    let super_options = fields.get(sep + 3).copied().unwrap_or("");
    Some(MountLine {
        root: PathBuf::from(unescape(root)),
        mount_point: PathBuf::from(unescape(mount_point)),
        fstype,
        super_options,
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space). An escape that is
/// not three octal digits is kept as written.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(digits) = bytes.get(i + 1..i + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(b) = u8::try_from(v) {
                        out.push(b);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_mount_options_that_name_controllers() {
        for c in Controller::ALL {
            assert!(is_v1_controller(c.v1_name()), "{c}");
        }
        assert!(is_v1_controller("debug"));
        for o in ["io", "rw", "name=systemd", "nsdelegate", "clone_children"] {
            assert!(!is_v1_controller(o), "{o}");
        }
    }

    /// This development machine: separate cpu and cpuacct mounts, a named
    /// systemd hierarchy, cgroup2 at /sys/fs/cgroup/unified.
    pub(crate) const HOST: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const PURE_V1: &str = "\
25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:13 - cgroup cgroup rw,net_cls,net_prio
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:15 - cgroup cgroup rw,pids
";

    /// Hybrid where the unified mount holds controllers (its list comes from
    /// cgroup.controllers, set by the caller) and a bind mount repeats memory.
    const HYBRID_WITH_CONTROLLERS: &str = "\
25 24 0:22 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
30 25 0:27 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw shared:15 - cgroup cgroup rw,pids
90 80 0:27 /docker/abc /mnt/my\\040memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn this_host_is_hybrid_with_separate_cpu_and_cpuacct() {
        let h = Hierarchy::from_mountinfo(HOST).unwrap();
        assert_eq!(h.layout(), Layout::Hybrid);
        let names: Vec<_> = h
            .v1_mounts()
            .iter()
            .map(|m| m.controllers.join(","))
            .collect();
        assert_eq!(
            names,
            ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"]
        );
        assert_eq!(
            h.v1_mounts()[0].mount_point,
            Path::new("/sys/fs/cgroup/cpu")
        );
        let u = h.unified().unwrap();
        assert_eq!(u.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert!(u.controllers.is_empty());
    }

    #[test]
    fn pure_v2() {
        let h = Hierarchy::from_mountinfo(PURE_V2).unwrap();
        assert_eq!(h.layout(), Layout::V2);
        assert!(h.v1_mounts().is_empty());
        assert_eq!(
            h.unified().unwrap().mount_point,
            Path::new("/sys/fs/cgroup")
        );
    }

    #[test]
    fn pure_v1_with_combined_cpu_cpuacct_and_named_hierarchy_ignored() {
        let h = Hierarchy::from_mountinfo(PURE_V1).unwrap();
        assert_eq!(h.layout(), Layout::V1);
        let m = &h.v1_mounts()[0];
        assert_eq!(m.controllers, ["cpu", "cpuacct"]);
        assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h.v1_mounts()[1].controllers, ["net_cls", "net_prio"]);
        assert_eq!(h.v1_mounts().len(), 4);
        assert!(h.unified().is_none());
    }

    #[test]
    fn hybrid_unified_with_controllers_and_repeated_mount() {
        let h = Hierarchy::from_mountinfo(HYBRID_WITH_CONTROLLERS)
            .unwrap()
            .with_unified_controllers(&["cpu", "io", "hugetlb"], &["cpu", "io"]);
        assert_eq!(h.layout(), Layout::Hybrid);
        assert_eq!(
            h.v1_mounts().len(),
            2,
            "the bind mount of memory is not a new hierarchy"
        );
        assert_eq!(h.unified().unwrap().controllers, ["cpu", "io", "hugetlb"]);
        assert_eq!(h.unified().unwrap().subtree_control, ["cpu", "io"]);
    }

    #[test]
    fn escapes_and_subtree_roots() {
        let text = "90 80 0:27 /docker/abc /mnt/my\\040memory rw - cgroup cgroup rw,memory\n";
        let h = Hierarchy::from_mountinfo(text).unwrap();
        let m = &h.v1_mounts()[0];
        assert_eq!(m.mount_point, Path::new("/mnt/my memory"));
        assert_eq!(m.root, Path::new("/docker/abc"));
        assert_eq!(unescape("a\\134b\\9xy\\"), "a\\b\\9xy\\");
    }

    #[test]
    fn optional_fields_and_no_cgroups() {
        let text = "1 2 0:1 / /x rw shared:1 master:2 - cgroup2 none rw\n";
        assert_eq!(
            Hierarchy::from_mountinfo(text).unwrap().layout(),
            Layout::V2
        );
        let err = Hierarchy::from_mountinfo("garbage\n1 2 3\n").unwrap_err();
        assert!(matches!(
            err,
            crate::Error::Hierarchy(HierarchyError::NoCgroupMounts)
        ));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(text in "\\PC*") {
            let _ = Hierarchy::from_mountinfo(&text);
        }

        #[test]
        fn fuzz_entry_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            fuzz_mountinfo(&data);
        }

        #[test]
        fn parser_never_panics_on_mountinfo_shaped_lines(
            lines in proptest::collection::vec(
                "[0-9]{1,3} [0-9]{1,3} [0-9]:[0-9]{1,2} (/|/[a-z\\\\0-7]{0,6}) /[a-z,/\\\\0-9]{0,12} rw( shared:[0-9])? (-|x) (cgroup|cgroup2|tmpfs)? ?[a-z]{0,5} ?[a-z,=]{0,20}",
                0..8,
            )
        ) {
            let _ = Hierarchy::from_mountinfo(&lines.join("\n"));
        }
    }
}
