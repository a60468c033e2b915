//! v1 `cpuset` controller. A new v1 cpuset starts with empty `cpuset.cpus`
//! and `cpuset.mems`, and a task cannot join it until both are filled, so
//! [`copy_from_parent`] fills each directory `create` makes.

use oci_spec::runtime::LinuxCpu;

use crate::dir::{CgroupDir, FileError};

/// Whether `cpu` sets cpus or mems.
pub fn is_set(cpu: &LinuxCpu) -> bool {
    cpu.cpus().is_some() || cpu.mems().is_some()
}

/// Writes `cpuset.cpus` and `cpuset.mems` when set.
pub fn apply(dir: &CgroupDir, cpu: &LinuxCpu) -> Result<(), FileError> {
    if let Some(cpus) = cpu.cpus() {
        dir.write("cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems() {
        dir.write("cpuset.mems", mems)?;
    }
    Ok(())
}

/// Copies `cpuset.cpus` and `cpuset.mems` from `parent` into the freshly
/// created `child` where the child's is empty (`cgroup.clone_children` or
/// `cpuset_v2_mode` may have filled them already).
pub fn copy_from_parent(parent: &CgroupDir, child: &CgroupDir) -> Result<(), FileError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if child.read(file)?.trim().is_empty() {
            let value = parent.read(file)?;
            let value = value.trim();
            if !value.is_empty() {
                child.write(file, value)?;
            }
        }
    }
    Ok(())
}
