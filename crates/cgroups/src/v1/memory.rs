//! v1 `memory` controller: limit, memsw (memory + swap), soft limit,
//! swappiness, OOM killer. Kernel memory limits are accepted and ignored
//! with a warning, as runc does (the kernel deprecated them in 5.4).

use oci_spec::runtime::LinuxMemory;

use crate::dir::{CgroupDir, FileError};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// Writes what `m` sets.
pub fn apply(dir: &CgroupDir, m: &LinuxMemory) -> Result<(), FileError> {
    match (m.limit(), m.swap()) {
        (Some(limit), Some(swap)) => {
            // memory.limit must stay <= memsw.limit at every moment: when the
            // new limit exceeds the old memsw, memsw has to go first. Trying
            // the usual order first spares a read on the hot path.
            let (limit, swap) = (limit.to_string(), swap.to_string());
            match dir.write(LIMIT, &limit) {
                Ok(()) => dir.write(MEMSW, &swap)?,
                Err(FileError::InvalidValue { .. }) => {
                    dir.write(MEMSW, &swap)?;
                    dir.write(LIMIT, &limit)?;
                }
                Err(e) => return Err(e),
            }
        }
        (Some(limit), None) => dir.write(LIMIT, &limit.to_string())?,
        (None, Some(swap)) => dir.write(MEMSW, &swap.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        dir.write("memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!(
            path = %dir.path().display(),
            "linux.resources.memory.kernel and kernelTCP are deprecated by the kernel and ignored"
        );
    }
    if let Some(s) = m.swappiness() {
        dir.write("memory.swappiness", &s.to_string())?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        dir.write("memory.oom_control", if disable { "1" } else { "0" })?;
    }
    Ok(())
}
