//! v1 `hugetlb` controller: `hugetlb.<size>.limit_in_bytes` per page size.

use oci_spec::runtime::LinuxHugepageLimit;

use crate::dir::{CgroupDir, FileError};

/// Whether `size` looks like a kernel page-size name (`2MB`, `1GB`, `64KB`).
/// It becomes part of a file name, so nothing else is let through.
pub fn valid_page_size(size: &str) -> bool {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

/// Writes each limit.
pub fn apply(dir: &CgroupDir, limits: &[LinuxHugepageLimit]) -> Result<(), FileError> {
    for l in limits {
        let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
        check(dir, &file, l.page_size())?;
        dir.write(&file, &l.limit().to_string())?;
    }
    Ok(())
}

/// Refuses a page size that is not a kernel name, naming the file it would make.
pub(crate) fn check(dir: &CgroupDir, file: &str, size: &str) -> Result<(), FileError> {
    if valid_page_size(size) {
        return Ok(());
    }
    Err(FileError::Open {
        dir: dir.path().to_owned(),
        file: file.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_sizes() {
        assert!(super::valid_page_size("2MB"));
        assert!(super::valid_page_size("1GB"));
        assert!(super::valid_page_size("64KB"));
        assert!(!super::valid_page_size("MB"));
        assert!(!super::valid_page_size("2MB/../x"));
        assert!(!super::valid_page_size("2mb"));
        assert!(!super::valid_page_size(""));
    }
}
