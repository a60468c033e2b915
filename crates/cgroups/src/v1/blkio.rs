//! v1 `blkio` controller: weights (CFQ's `blkio.weight` or, on kernels
//! without CFQ, BFQ's `blkio.bfq.weight`) and throttling.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::dir::{CgroupDir, FileError};

/// Writes what `b` sets.
pub fn apply(dir: &CgroupDir, b: &LinuxBlockIo) -> Result<(), FileError> {
    if let Some(w) = b.weight() {
        write_either(dir, "blkio.weight", "blkio.bfq.weight", &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        write_or_warn(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let v = format!("{}:{} {}", d.major(), d.minor(), w);
            write_either(dir, "blkio.weight_device", "blkio.bfq.weight_device", &v)?;
        }
        if let Some(w) = d.leaf_weight() {
            let v = format!("{}:{} {}", d.major(), d.minor(), w);
            write_or_warn(dir, "blkio.leaf_weight_device", &v)?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            dir.write(file, &throttle_value(d))?;
        }
    }
    Ok(())
}

/// `major:minor rate`, the line every v1 throttle file takes.
pub fn throttle_value(d: &LinuxThrottleDevice) -> String {
    format!("{}:{} {}", d.major(), d.minor(), d.rate())
}

fn write_either(dir: &CgroupDir, cfq: &str, bfq: &str, value: &str) -> Result<(), FileError> {
    match dir.write(cfq, value) {
        Err(e) if e.is_not_found() => dir.write(bfq, value),
        other => other,
    }
}

fn write_or_warn(dir: &CgroupDir, file: &str, value: &str) -> Result<(), FileError> {
    match dir.write(file, value) {
        Err(e) if e.is_not_found() => {
            tracing::warn!(path = %dir.path().display(), file, "no such file (CFQ only), leaf weight ignored");
            Ok(())
        }
        other => other,
    }
}
