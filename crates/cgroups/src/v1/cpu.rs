//! v1 `cpu` controller: shares, CFS quota/period/burst, idle, and the
//! realtime runtime/period.

use oci_spec::runtime::LinuxCpu;

use crate::dir::{CgroupDir, FileError};

/// Whether `cpu` sets anything this controller owns (cpus/mems are cpuset's).
pub fn is_set(cpu: &LinuxCpu) -> bool {
    cpu.shares().is_some()
        || cpu.quota().is_some()
        || cpu.period().is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_runtime().is_some()
        || cpu.realtime_period().is_some()
}

/// Writes what `cpu` sets.
pub fn apply(dir: &CgroupDir, cpu: &LinuxCpu) -> Result<(), FileError> {
    if let Some(shares) = cpu.shares() {
        dir.write("cpu.shares", &shares.to_string())?;
    }
    let period = cpu.period().map(|p| p.to_string());
    let quota = cpu.quota().map(|q| q.to_string());
    match (&period, &quota) {
        (Some(period), Some(quota)) => {
            // A period the kernel finds inconsistent with the old quota
            // (hierarchy bandwidth check) may pass once the quota is in.
            match dir.write("cpu.cfs_period_us", period) {
                Ok(()) => dir.write("cpu.cfs_quota_us", quota)?,
                Err(FileError::InvalidValue { .. }) => {
                    dir.write("cpu.cfs_quota_us", quota)?;
                    dir.write("cpu.cfs_period_us", period)?;
                }
                Err(e) => return Err(e),
            }
        }
        (Some(period), None) => dir.write("cpu.cfs_period_us", period)?,
        (None, Some(quota)) => dir.write("cpu.cfs_quota_us", quota)?,
        (None, None) => {}
    }
    if let Some(burst) = cpu.burst() {
        dir.write("cpu.cfs_burst_us", &burst.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        dir.write("cpu.idle", &idle.to_string())?;
    }
    // The runtime may not exceed the period, so the period goes first.
    if let Some(p) = cpu.realtime_period() {
        dir.write("cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = cpu.realtime_runtime() {
        dir.write("cpu.rt_runtime_us", &r.to_string())?;
    }
    Ok(())
}
