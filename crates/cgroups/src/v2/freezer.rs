//! v2 core freezer: `cgroup.freeze` asks, `cgroup.events` (`frozen 0|1`) tells.

use crate::dir::{CgroupDir, FileError};

/// Asks the kernel to freeze (true) or thaw (false).
pub fn request(dir: &CgroupDir, frozen: bool) -> Result<(), FileError> {
    dir.write("cgroup.freeze", if frozen { "1" } else { "0" })
}

/// Whether `cgroup.events` says `frozen 1`.
pub fn is_frozen(dir: &CgroupDir) -> Result<bool, FileError> {
    dir.read_parsed("cgroup.events", |t| {
        super::keyed(t, "frozen").map(|v| v == 1)
    })
}
