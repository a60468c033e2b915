//! v1 `pids` controller: `pids.max`.

use oci_spec::runtime::LinuxPids;

use crate::dir::{CgroupDir, FileError};

/// The `pids.max` value for an OCI limit: `<= 0` means no limit.
pub fn max_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// Writes `pids.max`.
pub fn apply(dir: &CgroupDir, pids: &LinuxPids) -> Result<(), FileError> {
    dir.write("pids.max", &max_value(pids.limit()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_and_negative_mean_max() {
        assert_eq!(super::max_value(0), "max");
        assert_eq!(super::max_value(-1), "max");
        assert_eq!(super::max_value(42), "42");
    }
}
