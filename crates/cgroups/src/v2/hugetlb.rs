//! v2 `hugetlb` controller: `hugetlb.<size>.max` per page size.

use oci_spec::runtime::LinuxHugepageLimit;

use crate::dir::{CgroupDir, FileError};

/// Writes each limit (`-1` is max).
pub fn apply(dir: &CgroupDir, limits: &[LinuxHugepageLimit]) -> Result<(), FileError> {
    for l in limits {
        let file = format!("hugetlb.{}.max", l.page_size());
        crate::v1::hugetlb::check(dir, &file, l.page_size())?;
        dir.write(&file, &super::max_or(l.limit()))?;
    }
    Ok(())
}
