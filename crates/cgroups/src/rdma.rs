//! The `rdma` controller, the same files in v1 and v2: `rdma.max` limits
//! and `rdma.current` use, a line per RDMA device:
//!
//! ```text
//! mlx4_0 hca_handle=2 hca_object=2000
//! ocrdma1 hca_handle=3 hca_object=max
//! ```
//!
//! OCI: `linux.resources.rdma`, device name → `{hcaHandles, hcaObjects}`;
//! an unset count is written as `max`. The kernel refuses a device it does
//! not know (`ENODEV`) and lists only devices that exist.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::LinuxRdma;
use serde::{Deserialize, Serialize};

use crate::dir::{CgroupDir, FileError};

/// The limits or use of one device; `None` is `max`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdmaCounts {
    /// `hca_handle`.
    pub hca_handle: Option<u32>,
    /// `hca_object`.
    pub hca_object: Option<u32>,
}

/// The `rdma.max` line for one OCI entry; `None` if it sets nothing.
pub fn line(device: &str, r: &LinuxRdma) -> Option<String> {
    if r.hca_handles().is_none() && r.hca_objects().is_none() {
        return None;
    }
    let v = |n: Option<u32>| n.map_or("max".to_owned(), |n| n.to_string());
    Some(format!(
        "{device} hca_handle={} hca_object={}",
        v(r.hca_handles()),
        v(r.hca_objects())
    ))
}

/// Writes a line per device, in name order (for reproducible errors). A
/// device name with whitespace is refused before anything is written.
pub fn apply(dir: &CgroupDir, map: &HashMap<String, LinuxRdma>) -> Result<(), FileError> {
    let mut devices: Vec<_> = map.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    if let Some((bad, _)) = devices
        .iter()
        .find(|(d, _)| d.is_empty() || d.bytes().any(|b| b.is_ascii_whitespace()))
    {
        return Err(FileError::InvalidValue {
            dir: dir.path().to_owned(),
            file: "rdma.max".to_owned(),
            value: (*bad).clone(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    for (device, r) in devices {
        if let Some(l) = line(device, r) {
            dir.write("rdma.max", &l)?;
        }
    }
    Ok(())
}

/// Parses `rdma.max` or `rdma.current`.
pub fn parse(text: &str) -> Option<BTreeMap<String, RdmaCounts>> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut fields = line.split_whitespace();
        let device = fields.next()?;
        let mut c = RdmaCounts::default();
        for f in fields {
            let (key, value) = f.split_once('=')?;
            let n = match value {
                "max" => None,
                n => Some(n.parse().ok()?),
            };
            match key {
                "hca_handle" => c.hca_handle = n,
                "hca_object" => c.hca_object = n,
                _ => {} // a resource a later kernel adds
            }
        }
        out.insert(device.to_owned(), c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxRdmaBuilder;

    use super::*;

    #[test]
    fn an_unset_count_is_max_and_an_empty_entry_writes_nothing() {
        let r = LinuxRdmaBuilder::default()
            .hca_handles(2u32)
            .build()
            .unwrap();
        assert_eq!(
            line("mlx4_0", &r).unwrap(),
            "mlx4_0 hca_handle=2 hca_object=max"
        );
        assert_eq!(line("mlx4_0", &LinuxRdma::default()), None);
    }

    #[test]
    fn the_kernel_format_parses_back() {
        let map =
            parse("mlx4_0 hca_handle=2 hca_object=2000\nocrdma1 hca_handle=3 hca_object=max\n")
                .unwrap();
        assert_eq!(
            map["mlx4_0"],
            RdmaCounts {
                hca_handle: Some(2),
                hca_object: Some(2000)
            }
        );
        assert_eq!(map["ocrdma1"].hca_object, None);
        assert_eq!(parse("x hca_handle=y\n"), None);
        assert_eq!(parse("").unwrap().len(), 0);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = parse(&text);
        }
    }
}
