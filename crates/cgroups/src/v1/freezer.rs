//! v1 `freezer` controller: `freezer.state` is THAWED, FREEZING or FROZEN.

use crate::dir::{CgroupDir, FileError};

/// Asks the kernel to freeze (true) or thaw (false).
pub fn request(dir: &CgroupDir, frozen: bool) -> Result<(), FileError> {
    dir.write("freezer.state", if frozen { "FROZEN" } else { "THAWED" })
}

/// Whether the state is FROZEN (FREEZING is not yet).
pub fn is_frozen(dir: &CgroupDir) -> Result<bool, FileError> {
    Ok(dir.read("freezer.state")?.trim() == "FROZEN")
}

/// Whether the state is THAWED.
pub fn is_thawed(dir: &CgroupDir) -> Result<bool, FileError> {
    Ok(dir.read("freezer.state")?.trim() == "THAWED")
}
