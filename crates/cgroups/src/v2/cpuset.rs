//! v2 cpuset partitions (`cpuset.cpus.partition`, Linux 5.13+): a group can
//! be a partition root, taking its `cpuset.cpus` away from its parent for
//! its own scheduling domain (`root`), or without load balancing
//! (`isolated`); `member` is the default. The kernel takes the write and
//! tells on reading whether the partition is valid:
//!
//! ```text
//! member
//! root
//! isolated invalid (Cpu list in cpuset.cpus not exclusive)
//! ```
//!
//! OCI has no field for it (`linux.resources.unified` can write it). v1's
//! nearest is `cpuset.cpu_exclusive`; [`crate::Cgroup::set_cpuset_partition`]
//! refuses v1.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    cgroup::Cgroup,
    dir::CgroupDir,
    hybrid::{Controller, Place},
    Error,
};

/// A partition type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// Not a partition root (the default).
    Member,
    /// A partition root with load balancing.
    Root,
    /// A partition root without load balancing.
    Isolated,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Member => "member",
            Self::Root => "root",
            Self::Isolated => "isolated",
        })
    }
}

/// What `cpuset.cpus.partition` reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The type asked for.
    pub partition: Partition,
    /// `Some(reason)` when the kernel could not make it a valid partition
    /// (the reason is empty on kernels that give none).
    pub invalid: Option<String>,
}

/// Parses `cpuset.cpus.partition`.
pub fn parse(text: &str) -> Option<PartitionState> {
    let text = text.trim();
    let (kind, rest) = text.split_once(' ').unwrap_or((text, ""));
    let partition = match kind {
        "member" => Partition::Member,
        "root" => Partition::Root,
        "isolated" => Partition::Isolated,
        _ => return None,
    };
    let rest = rest.trim();
    let invalid = if rest.is_empty() {
        None
    } else {
        let reason = rest.strip_prefix("invalid")?.trim();
        let reason = reason
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(reason);
        Some(reason.to_owned())
    };
    Some(PartitionState { partition, invalid })
}

impl Cgroup {
    fn v2_cpuset_dir(&self) -> Result<CgroupDir, Error> {
        match self.locate(Controller::Cpuset) {
            Some(Place::Unified) => {}
            Some(Place::V1(_)) => {
                return Err(Error::Unsupported {
                    resource: "cpuset partitions (cpuset.cpus.partition)",
                    version: "v1",
                })
            }
            None => {
                return Err(Error::ControllerUnavailable {
                    resource: "cpuset partitions",
                    controller: Controller::Cpuset,
                    path: self.path.clone(),
                })
            }
        }
        let u = self
            .unified
            .as_ref()
            .expect("located in the unified hierarchy");
        Ok(CgroupDir::open(&u.path())?)
    }

    /// Reads `cpuset.cpus.partition`.
    pub fn cpuset_partition(&self) -> Result<PartitionState, Error> {
        Ok(self
            .v2_cpuset_dir()?
            .read_parsed("cpuset.cpus.partition", parse)?)
    }

    /// Writes `cpuset.cpus.partition` and returns what the kernel made of
    /// it: a partition it could not make valid is reported through
    /// [`PartitionState::invalid`], not as an error (the kernel keeps the
    /// request and validates it again when cpus change).
    pub fn set_cpuset_partition(&self, p: Partition) -> Result<PartitionState, Error> {
        let dir = self.v2_cpuset_dir()?;
        dir.write("cpuset.cpus.partition", &p.to_string())?;
        Ok(dir.read_parsed("cpuset.cpus.partition", parse)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_invalid_reasons_parse() {
        assert_eq!(
            parse("member\n").unwrap(),
            PartitionState {
                partition: Partition::Member,
                invalid: None
            }
        );
        let bad = parse("isolated invalid (Cpu list in cpuset.cpus not exclusive)\n").unwrap();
        assert_eq!(bad.partition, Partition::Isolated);
        assert_eq!(
            bad.invalid.as_deref(),
            Some("Cpu list in cpuset.cpus not exclusive")
        );
        assert_eq!(
            parse("root invalid\n").unwrap().invalid.as_deref(),
            Some("")
        );
        assert_eq!(parse("banana"), None);
        assert_eq!(parse("root sideways"), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = parse(&text);
        }
    }
}
