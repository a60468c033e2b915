//! Usage counters of a cgroup, read from wherever each controller lives.

use serde::{Deserialize, Serialize};

use crate::{
    cgroup::Cgroup,
    dir::CgroupDir,
    hybrid::{Controller, Place},
    v2, Error,
};

/// A v1 limit at or above this is "unlimited" (`PAGE_COUNTER_MAX` pages,
/// printed as 9223372036854771712 with 4 KiB pages).
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// What [`Cgroup::stats`] reports. `None`: the controller is not available,
/// or the limit is "max".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Processes and threads now (`pids.current`).
    pub pids_current: Option<u64>,
    /// `pids.max`; `None` for max.
    pub pids_limit: Option<u64>,
    /// Memory in use, bytes (`memory.usage_in_bytes` / `memory.current`).
    pub memory_usage: Option<u64>,
    /// Memory limit, bytes; `None` for unlimited.
    pub memory_limit: Option<u64>,
    /// CPU time used, nanoseconds (`cpuacct.usage` / `cpu.stat` usage_usec).
    pub cpu_usage_ns: Option<u64>,
}

impl Cgroup {
    /// Reads the counters of every available controller.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        if let Some((_, d)) = self.located_dir(Controller::Pids)? {
            // Same files in v1 and v2.
            s.pids_current = Some(d.read_parsed("pids.current", parse_u64)?);
            s.pids_limit = d.read_parsed("pids.max", v2::parse_max)?;
        }
        match self.located_dir(Controller::Memory)? {
            Some((Place::V1(_), d)) => {
                s.memory_usage = Some(d.read_parsed("memory.usage_in_bytes", parse_u64)?);
                let limit = d.read_parsed("memory.limit_in_bytes", parse_u64)?;
                s.memory_limit = (limit < V1_UNLIMITED).then_some(limit);
            }
            Some((Place::Unified, d)) => {
                s.memory_usage = Some(d.read_parsed("memory.current", parse_u64)?);
                s.memory_limit = d.read_parsed("memory.max", v2::parse_max)?;
            }
            None => {}
        }
        match self.located_dir(Controller::Cpuacct)? {
            Some((Place::V1(_), d)) => {
                s.cpu_usage_ns = Some(d.read_parsed("cpuacct.usage", parse_u64)?)
            }
            Some((Place::Unified, _)) | None => {
                // cpu.stat's usage_usec is a core file in v2, controller or not.
                if let Some(u) = &self.unified {
                    let d = CgroupDir::open(&u.path())?;
                    let usec = d.read_parsed("cpu.stat", |t| v2::keyed(t, "usage_usec"))?;
                    s.cpu_usage_ns = Some(usec.saturating_mul(1000));
                }
            }
        }
        Ok(s)
    }

    /// How many processes the kernel's OOM killer has killed in this
    /// cgroup (v1 `memory.oom_control`, v2 `memory.events`: `oom_kill`);
    /// `None` without a memory controller or on kernels without the count.
    pub fn oom_kills(&self) -> Result<Option<u64>, Error> {
        let (file, d) = match self.located_dir(Controller::Memory)? {
            Some((Place::V1(_), d)) => ("memory.oom_control", d),
            Some((Place::Unified, d)) => ("memory.events", d),
            None => return Ok(None),
        };
        let text = d.read(file)?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok()))
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}
