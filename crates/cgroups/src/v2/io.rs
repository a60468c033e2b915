//! v2 `io` controller: weights and `io.max` throttling.
//!
//! With BFQ, `io.bfq.weight` takes OCI's blkio weight (10..1000) as is;
//! otherwise `io.weight` (1..10000) gets runc's linear conversion.

use oci_spec::runtime::LinuxBlockIo;

use crate::dir::{CgroupDir, FileError};

/// runc's `ConvertBlkIOToIOWeightValue`: 10..1000 → 1..10000; 0 stays unset.
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// Writes what `b` sets.
pub fn apply(dir: &CgroupDir, b: &LinuxBlockIo) -> Result<(), FileError> {
    let bfq = (b.weight().is_some() || b.weight_device().is_some()) && dir.has("io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            dir.write("io.bfq.weight", &w.to_string())?;
        } else {
            dir.write("io.weight", &format!("default {}", blkio_to_io_weight(w)))?;
        }
    }
    if b.leaf_weight().is_some() {
        tracing::warn!(path = %dir.path().display(), "linux.resources.blockIO.leafWeight has no cgroup v2 equivalent, ignored");
    }
    for d in b.weight_device().iter().flatten() {
        let Some(w) = d.weight() else { continue };
        if bfq {
            dir.write(
                "io.bfq.weight",
                &format!("{}:{} {}", d.major(), d.minor(), w),
            )?;
        } else {
            let v = format!("{}:{} {}", d.major(), d.minor(), blkio_to_io_weight(w));
            dir.write("io.weight", &v)?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            // v1 removes a throttle with rate 0; v2 says max.
            let rate = if d.rate() == 0 {
                "max".to_owned()
            } else {
                d.rate().to_string()
            };
            dir.write(
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn weights() {
        assert_eq!(super::blkio_to_io_weight(10), 1);
        assert_eq!(super::blkio_to_io_weight(1000), 10_000);
        assert_eq!(super::blkio_to_io_weight(500), 4950);
        assert_eq!(super::blkio_to_io_weight(0), 0);
        assert_eq!(super::blkio_to_io_weight(5), 1);
    }
}
