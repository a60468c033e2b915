//! The `misc` controller (Linux 5.13+), the same files in v1 and v2: scalar
//! resources the host has a fixed number of (AMD SEV and SEV-ES ASIDs, Intel
//! TDX keys). Each file is `NAME VALUE` a line:
//!
//! | file | where | meaning |
//! |---|---|---|
//! | `misc.capacity` | root only | how many the host has |
//! | `misc.current` | non-root | in use |
//! | `misc.max` | non-root | the limit, `max` or a number; written one `NAME VALUE` at a time |
//! | `misc.events` | non-root | `NAME.max N`: allocations refused |
//!
//! OCI has no field for it: on v2, `linux.resources.unified` `{"misc.max":
//! "sev 4"}` writes it; [`crate::Cgroup::set_misc_max`] is the typed way. A
//! resource the host lacks (capacity 0) is refused by the kernel (`EINVAL`).

use std::collections::BTreeMap;

use crate::{cgroup::Cgroup, dir::CgroupDir, hybrid::Controller, Error};

/// Parses `misc.max`, `misc.current` or `misc.capacity`; `None` is `max`.
pub fn parse(text: &str) -> Option<BTreeMap<String, Option<u64>>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(' ')?;
            let v = match value.trim() {
                "max" => None,
                n => Some(n.parse().ok()?),
            };
            Some((name.to_owned(), v))
        })
        .collect()
}

impl Cgroup {
    fn misc_dir(&self) -> Result<CgroupDir, Error> {
        Ok(self
            .controller_dir(Controller::Misc, "misc resource limits")?
            .1)
    }

    /// `misc.max`: each resource's limit (`None`: max).
    pub fn misc_max(&self) -> Result<BTreeMap<String, Option<u64>>, Error> {
        Ok(self.misc_dir()?.read_parsed("misc.max", parse)?)
    }

    /// `misc.current`: each resource in use.
    pub fn misc_current(&self) -> Result<BTreeMap<String, Option<u64>>, Error> {
        Ok(self.misc_dir()?.read_parsed("misc.current", parse)?)
    }

    /// Sets the limit of one misc resource (`None`: max). The name must be
    /// one the kernel lists; a name with whitespace is refused here.
    pub fn set_misc_max(&self, resource: &str, limit: Option<u64>) -> Result<(), Error> {
        let dir = self.misc_dir()?;
        let value = format!(
            "{resource} {}",
            limit.map_or("max".to_owned(), |n| n.to_string())
        );
        if resource.is_empty() || resource.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(crate::dir::FileError::InvalidValue {
                dir: dir.path().to_owned(),
                file: "misc.max".to_owned(),
                value,
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            }
            .into());
        }
        Ok(dir.write("misc.max", &value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misc_files_parse() {
        let m = parse("sev 4\nsev_es max\n").unwrap();
        assert_eq!(m["sev"], Some(4));
        assert_eq!(m["sev_es"], None);
        assert!(parse("").unwrap().is_empty());
        assert_eq!(parse("sev x\n"), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = parse(&text);
        }
    }
}
