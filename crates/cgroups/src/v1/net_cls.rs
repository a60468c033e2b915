//! v1 `net_cls` controller: `net_cls.classid`, the class id (`0xAAAABBBB`:
//! tc major:minor handle) that traffic control and iptables' `cgroup` match
//! see on the group's outgoing packets. OCI:
//! `linux.resources.network.classID`. cgroup v2 has no counterpart (match
//! the cgroup path in nftables or eBPF instead); there the runtime ignores
//! the field with a warning, as runc does.

use crate::dir::{CgroupDir, FileError};

/// Writes `net_cls.classid` (decimal, as the kernel prints it back).
pub fn apply(dir: &CgroupDir, class_id: u32) -> Result<(), FileError> {
    dir.write("net_cls.classid", &class_id.to_string())
}
