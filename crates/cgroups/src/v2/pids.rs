//! v2 `pids` controller: `pids.max`, as in v1.

use oci_spec::runtime::LinuxPids;

use crate::dir::{CgroupDir, FileError};

/// Writes `pids.max` (`<= 0` means max).
pub fn apply(dir: &CgroupDir, pids: &LinuxPids) -> Result<(), FileError> {
    dir.write("pids.max", &crate::v1::pids::max_value(pids.limit()))
}
