//! v2 `memory` controller: `memory.max`, `memory.low` and `memory.swap.max`.
//!
//! OCI's `swap` is v1's memory+swap; v2 limits swap alone, so
//! `memory.swap.max = swap - limit` (runc's `ConvertMemorySwapToCgroupV2Value`,
//! which crun matches). Swappiness, the OOM-killer switch and kernel limits
//! have no v2 file: a warning, as runc.

use oci_spec::runtime::LinuxMemory;

use crate::dir::{CgroupDir, FileError};

/// OCI swap and limit that have no v2 equivalent.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// A swap limit without a memory limit.
    #[error("linux.resources.memory.swap {swap} needs a memory limit on cgroup v2")]
    NoLimit {
        /// The requested memory+swap.
        swap: i64,
    },
    /// memory+swap below memory.
    #[error("linux.resources.memory.swap {swap} is below the memory limit {limit}")]
    BelowLimit {
        /// The requested memory+swap.
        swap: i64,
        /// The memory limit.
        limit: i64,
    },
    /// Writing a file failed.
    #[error(transparent)]
    File(#[from] FileError),
}

/// `memory.swap.max` for OCI's memory+swap `swap` and memory `limit`
/// (0 = unset, -1 = unlimited, as in runc): `None` when nothing is to be written.
pub fn swap_max(swap: i64, limit: i64) -> Result<Option<String>, SwapError> {
    // Memory unlimited and swap unset: both unlimited, as v1 would have it.
    if limit == -1 && swap == 0 {
        return Ok(Some("max".to_owned()));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some("max".to_owned())),
        _ => {}
    }
    if limit <= 0 {
        return Err(SwapError::NoLimit { swap });
    }
    if swap < limit {
        return Err(SwapError::BelowLimit { swap, limit });
    }
    Ok(Some((swap - limit).to_string()))
}

/// Writes what `m` sets.
pub fn apply(dir: &CgroupDir, m: &LinuxMemory) -> Result<(), SwapError> {
    if m.swap().is_some() {
        let swap = swap_max(m.swap().unwrap_or(0), m.limit().unwrap_or(0))?;
        if let Some(swap) = swap {
            dir.write("memory.swap.max", &swap)?;
        }
    }
    if let Some(limit) = m.limit() {
        dir.write("memory.max", &super::max_or(limit))?;
    }
    if let Some(r) = m.reservation() {
        dir.write("memory.low", &super::max_or(r))?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!(path = %dir.path().display(), "linux.resources.memory.kernel and kernelTCP have no cgroup v2 equivalent, ignored");
    }
    if m.swappiness().is_some() {
        tracing::warn!(path = %dir.path().display(), "linux.resources.memory.swappiness has no cgroup v2 equivalent, ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!(path = %dir.path().display(), "linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent, ignored");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_is_memory_plus_swap_minus_memory() {
        assert_eq!(swap_max(300, 100).unwrap().as_deref(), Some("200"));
        assert_eq!(swap_max(100, 100).unwrap().as_deref(), Some("0"));
        assert_eq!(swap_max(-1, 100).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_max(0, -1).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_max(0, 100).unwrap(), None);
        assert!(matches!(
            swap_max(100, 0),
            Err(SwapError::NoLimit { swap: 100 })
        ));
        assert!(matches!(
            swap_max(50, 100),
            Err(SwapError::BelowLimit { .. })
        ));
    }
}
