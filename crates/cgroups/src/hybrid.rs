//! Where each controller lives, and `apply`, which routes each part of
//! `LinuxResources` there. A controller lives in v1 if a v1 hierarchy carries
//! it, else in the unified hierarchy if the unified root offers it to its
//! children. The device controller and the freezer need no v2 controller:
//! v2 does devices with eBPF and freezing in the core.

use std::{cell::OnceCell, fmt};

use oci_spec::runtime::{LinuxMemory, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::{cgroup::Cgroup, dir::CgroupDir, v1, v2, Error};

/// A resource controller corral applies limits through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Controller {
    /// CPU bandwidth and weight.
    Cpu,
    /// CPU accounting (a v1 hierarchy; in v2 part of `cpu`).
    Cpuacct,
    /// CPU and memory-node placement.
    Cpuset,
    /// Memory.
    Memory,
    /// Device access.
    Devices,
    /// Freezing.
    Freezer,
    /// Block I/O (`blkio` in v1, `io` in v2).
    Io,
    /// Number of processes.
    Pids,
    /// Huge pages.
    Hugetlb,
    /// Class id of outgoing packets (v1 only).
    NetCls,
    /// Priority of outgoing packets per interface (v1 only).
    NetPrio,
    /// Grouping for `perf`; nothing to set (in v2 always on).
    PerfEvent,
    /// RDMA/IB handles and objects per device.
    Rdma,
    /// Miscellaneous scalar resources (SEV ASIDs, TDX keys).
    Misc,
}

impl Controller {
    /// Every controller, in the kernel's order (`/proc/cgroups`).
    pub const ALL: [Controller; 14] = [
        Self::Cpuset,
        Self::Cpu,
        Self::Cpuacct,
        Self::Io,
        Self::Memory,
        Self::Devices,
        Self::Freezer,
        Self::NetCls,
        Self::PerfEvent,
        Self::NetPrio,
        Self::Hugetlb,
        Self::Pids,
        Self::Rdma,
        Self::Misc,
    ];

    /// The controller a name means: its v1 subsystem name, or `io` (v2's
    /// name for blkio). The one list of controller names of the crate:
    /// mountinfo parsing and the tool's `-g` check both ask here.
    pub fn from_name(name: &str) -> Option<Controller> {
        if name == "io" {
            return Some(Self::Io);
        }
        Self::ALL.into_iter().find(|c| c.v1_name() == name)
    }

    /// The v1 subsystem name.
    pub fn v1_name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
            Self::Cpuset => "cpuset",
            Self::Memory => "memory",
            Self::Devices => "devices",
            Self::Freezer => "freezer",
            Self::Io => "blkio",
            Self::Pids => "pids",
            Self::Hugetlb => "hugetlb",
            Self::NetCls => "net_cls",
            Self::NetPrio => "net_prio",
            Self::PerfEvent => "perf_event",
            Self::Rdma => "rdma",
            Self::Misc => "misc",
        }
    }

    /// The v2 controller name; `None` for what v2 does without a controller
    /// ([`Controller::v2_core`]) and for what v2 lacks (net_cls, net_prio:
    /// v2 matches packets by cgroup path in nftables or eBPF instead).
    /// cpuacct's counters are `cpu`'s in v2.
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Self::Cpu | Self::Cpuacct => Some("cpu"),
            Self::Cpuset => Some("cpuset"),
            Self::Memory => Some("memory"),
            Self::Devices | Self::Freezer | Self::PerfEvent => None,
            Self::NetCls | Self::NetPrio => None,
            Self::Io => Some("io"),
            Self::Pids => Some("pids"),
            Self::Hugetlb => Some("hugetlb"),
            Self::Rdma => Some("rdma"),
            Self::Misc => Some("misc"),
        }
    }

    /// Whether cgroup v2 does it in its core, with no controller to enable:
    /// devices (eBPF), freezing (`cgroup.freeze`), perf_event (always on).
    pub fn v2_core(self) -> bool {
        matches!(self, Self::Devices | Self::Freezer | Self::PerfEvent)
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io => f.write_str("io (blkio)"),
            _ => f.write_str(self.v1_name()),
        }
    }
}

/// Where a controller lives for one cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// The v1 directory at this index of `Cgroup::v1`.
    V1(usize),
    /// The unified directory.
    Unified,
}

impl Cgroup {
    /// Where `c` lives for this cgroup; `None` if nowhere.
    pub(crate) fn locate(&self, c: Controller) -> Option<Place> {
        if let Some(i) = self
            .v1
            .iter()
            .position(|d| d.controllers.iter().any(|n| n == c.v1_name()))
        {
            return Some(Place::V1(i));
        }
        let u = self.unified.as_ref()?;
        if c.v2_core() {
            return Some(Place::Unified);
        }
        let name = c.v2_name()?;
        u.controllers
            .iter()
            .any(|n| n == name)
            .then_some(Place::Unified)
    }

    /// Writes every limit `r` sets, each to the hierarchy its controller
    /// lives in; what `r` leaves unset is not touched. Device rules go last,
    /// as runc does, so a failure elsewhere leaves device access unchanged.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        let dirs = Dirs::new(self);
        if let Some(m) = r
            .memory()
            .as_ref()
            .filter(|m| **m != LinuxMemory::default())
        {
            match dirs.get(Controller::Memory, "linux.resources.memory")? {
                (Place::V1(_), d) => v1::memory::apply(d, m)?,
                (Place::Unified, d) => v2::memory::apply(d, m).map_err(|e| match e {
                    v2::memory::SwapError::File(f) => Error::File(f),
                    e => Error::Swap(e),
                })?,
            }
        }
        if let Some(p) = r.pids() {
            match dirs.get(Controller::Pids, "linux.resources.pids")? {
                (Place::V1(_), d) => v1::pids::apply(d, p)?,
                (Place::Unified, d) => v2::pids::apply(d, p)?,
            }
        }
        if let Some(cpu) = r.cpu() {
            if v1::cpu::is_set(cpu) {
                match dirs.get(Controller::Cpu, "linux.resources.cpu")? {
                    (Place::V1(_), d) => v1::cpu::apply(d, cpu)?,
                    (Place::Unified, d) => v2::cpu::apply(d, cpu)?,
                }
            }
            if v1::cpuset::is_set(cpu) {
                match dirs.get(Controller::Cpuset, "linux.resources.cpu.cpus/mems")? {
                    (Place::V1(_), d) => v1::cpuset::apply(d, cpu)?,
                    (Place::Unified, d) => v2::cpu::apply_cpuset(d, cpu)?,
                }
            }
        }
        if let Some(b) = r.block_io().as_ref().filter(|b| **b != Default::default()) {
            match dirs.get(Controller::Io, "linux.resources.blockIO")? {
                (Place::V1(_), d) => v1::blkio::apply(d, b)?,
                (Place::Unified, d) => v2::io::apply(d, b)?,
            }
        }
        if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
            match dirs.get(Controller::Hugetlb, "linux.resources.hugepageLimits")? {
                (Place::V1(_), d) => v1::hugetlb::apply(d, h)?,
                (Place::Unified, d) => v2::hugetlb::apply(d, h)?,
            }
        }
        if let Some(n) = r.network() {
            self.apply_network(&dirs, n)?;
        }
        if let Some(map) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let (_, d) = dirs.get(Controller::Rdma, "linux.resources.rdma")?;
            crate::rdma::apply(d, map)?;
        }
        if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
            self.apply_unified(&dirs, u)?;
        }
        if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
            match dirs.get(Controller::Devices, "linux.resources.devices")? {
                (Place::V1(_), d) => v1::devices::apply(d, rules)?,
                (Place::Unified, d) => v2::devices::apply(d, rules)?,
            }
        }
        Ok(())
    }

    /// `linux.resources.network`: `classID` to v1 net_cls, `priorities` to
    /// v1 net_prio. Without any v1 hierarchy (pure v2, where neither exists)
    /// both are ignored with a warning, as runc does; with v1 hierarchies
    /// but the controller not mounted, it is an error, as in runc.
    fn apply_network(
        &self,
        dirs: &Dirs<'_>,
        n: &oci_spec::runtime::LinuxNetwork,
    ) -> Result<(), Error> {
        let prios = n.priorities().as_ref().filter(|p| !p.is_empty());
        if n.class_id().is_none() && prios.is_none() {
            return Ok(());
        }
        if self.v1.is_empty() {
            tracing::warn!(path = %self.path, "linux.resources.network: cgroup v2 has no net_cls or net_prio controller; ignored");
            return Ok(());
        }
        if let Some(id) = n.class_id() {
            let (_, d) = dirs.get(Controller::NetCls, "linux.resources.network.classID")?;
            v1::net_cls::apply(d, id)?;
        }
        if let Some(p) = prios {
            let (_, d) = dirs.get(Controller::NetPrio, "linux.resources.network.priorities")?;
            v1::net_prio::apply(d, p)?;
        }
        Ok(())
    }

    /// `linux.resources.unified`: file name → value, written as given to the
    /// unified directory. A key must be one file name of a controller this
    /// cgroup has, or a core `cgroup.*` file.
    fn apply_unified(
        &self,
        dirs: &Dirs<'_>,
        map: &std::collections::HashMap<String, String>,
    ) -> Result<(), Error> {
        if self.unified.is_none() {
            return Err(Error::Unsupported {
                resource: "linux.resources.unified",
                version: "v1",
            });
        }
        let mut keys: Vec<_> = map.keys().collect();
        keys.sort(); // a stable order, for reproducible errors
        for key in keys {
            let bad = || Error::UnifiedKey { key: key.clone() };
            if key.is_empty() || key.contains('/') || key.starts_with('.') {
                return Err(bad());
            }
            let (prefix, _) = key.split_once('.').ok_or_else(bad)?;
            let known =
                prefix == "cgroup" || self.unified_controllers().iter().any(|c| c == prefix);
            if !known {
                return Err(bad());
            }
            dirs.unified()?.write(key, &map[key])?;
        }
        Ok(())
    }
}

/// The cgroup's directories, each opened once, on first use.
struct Dirs<'a> {
    cg: &'a Cgroup,
    v1: Vec<OnceCell<CgroupDir>>,
    unified: OnceCell<CgroupDir>,
}

impl<'a> Dirs<'a> {
    fn new(cg: &'a Cgroup) -> Self {
        Self {
            cg,
            v1: cg.v1.iter().map(|_| OnceCell::new()).collect(),
            unified: OnceCell::new(),
        }
    }

    fn get(&self, c: Controller, resource: &'static str) -> Result<(Place, &CgroupDir), Error> {
        let place = self
            .cg
            .locate(c)
            .ok_or_else(|| Error::ControllerUnavailable {
                resource,
                controller: c,
                path: self.cg.path.clone(),
            })?;
        let dir = match place {
            Place::V1(i) => {
                let (cell, d) = self
                    .v1
                    .get(i)
                    .zip(self.cg.v1.get(i))
                    .expect("locate returns an index of cg.v1");
                open_once(cell, || d.path())?
            }
            Place::Unified => self.unified()?,
        };
        Ok((place, dir))
    }

    fn unified(&self) -> Result<&CgroupDir, Error> {
        let u = self.cg.unified.as_ref().ok_or(Error::Unsupported {
            resource: "the unified hierarchy",
            version: "v1",
        })?;
        open_once(&self.unified, || u.path())
    }
}

fn open_once(
    cell: &OnceCell<CgroupDir>,
    path: impl FnOnce() -> std::path::PathBuf,
) -> Result<&CgroupDir, Error> {
    if let Some(d) = cell.get() {
        return Ok(d);
    }
    let d = CgroupDir::open(&path())?;
    Ok(cell.get_or_init(|| d))
}
