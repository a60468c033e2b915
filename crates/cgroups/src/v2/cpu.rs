//! v2 `cpu` controller: `cpu.weight` (from OCI shares), `cpu.max`,
//! `cpu.max.burst`, `cpu.idle`. v2 has no realtime group scheduling.
//!
//! Shares become a weight by crun's formula (crun 1.23, adopted by runc 1.3):
//! a quadratic in log2(shares) that maps 2 → 1, 1024 → 100 (both defaults)
//! and 262144 → 10000, so the default stays the default, unlike the older
//! linear map, which turned 1024 into 39.

use oci_spec::runtime::LinuxCpu;

use crate::dir::{CgroupDir, FileError};

/// crun's `convert_shares_to_weight`; 0 means unset and stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    #[allow(clippy::cast_precision_loss)] // shares < 2^18 here
    let l = (shares as f64).log2();
    // Same operations in the same order as crun's C, for the same rounding.
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // in 1..=10000
    let weight = 10f64.powf(exponent).ceil() as u64;
    weight.clamp(1, 10_000)
}

/// The inverse of [`shares_to_weight`], for reporting a v2 weight as shares:
/// solves the quadratic for log2(shares), so 100 gives 1024 back.
/// `shares_to_weight(weight_to_shares(w))` is `w` for every weight the
/// forward map produces.
pub fn weight_to_shares(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    if weight <= 1 {
        return 2;
    }
    if weight >= 10_000 {
        return 262_144;
    }
    #[allow(clippy::cast_precision_loss)] // weight < 10^4
    let e = (weight as f64).log10() + 7.0 / 34.0;
    // l^2 + 125 l - 612 e = 0
    let l = (-125.0 + (125.0f64 * 125.0 + 4.0 * 612.0 * e).sqrt()) / 2.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // in 2..=262144
    let mut shares = 2f64.powf(l).round() as u64;
    // Weights are coarser than shares, and the ceil() of the forward map can
    // leave the exact solution one weight off: step to the nearest shares
    // value that maps back to this weight.
    while shares < 262_144 && shares_to_weight(shares) < weight {
        shares += 1;
    }
    while shares > 2 && shares_to_weight(shares) > weight {
        shares -= 1;
    }
    shares
}

/// `cpu.max` for OCI quota/period: runc's rule, `max` unless quota > 0, the
/// period appended when given.
pub fn max_value(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut v = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_owned(),
    };
    if let Some(p) = period.filter(|p| *p > 0) {
        v.push(' ');
        v.push_str(&p.to_string());
    }
    Some(v)
}

/// Writes what `cpu` sets; realtime values other than 0 are refused.
pub fn apply(dir: &CgroupDir, cpu: &LinuxCpu) -> Result<(), crate::Error> {
    if cpu.realtime_runtime().is_some_and(|r| r != 0)
        || cpu.realtime_period().is_some_and(|p| p != 0)
    {
        return Err(crate::Error::Unsupported {
            resource: "linux.resources.cpu.realtimeRuntime/realtimePeriod",
            version: "v2",
        });
    }
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        dir.write("cpu.weight", &shares_to_weight(shares).to_string())?;
    }
    if let Some(v) = max_value(cpu.quota(), cpu.period()) {
        dir.write("cpu.max", &v)?;
    }
    if let Some(burst) = cpu.burst() {
        dir.write("cpu.max.burst", &burst.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        dir.write("cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// Writes `cpuset.cpus` and `cpuset.mems` (same files as v1).
pub fn apply_cpuset(dir: &CgroupDir, cpu: &LinuxCpu) -> Result<(), FileError> {
    crate::v1::cpuset::apply(dir, cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crun_shares_to_weight() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(512), 59); // crun, computed in C with libm
        assert_eq!(shares_to_weight(100), 17);
        assert_eq!(shares_to_weight(2048), 174);
    }

    #[test]
    fn weight_back_to_shares() {
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
    }

    #[test]
    fn cpu_max() {
        assert_eq!(max_value(None, None), None);
        assert_eq!(
            max_value(Some(50_000), Some(100_000)).as_deref(),
            Some("50000 100000")
        );
        assert_eq!(max_value(Some(-1), None).as_deref(), Some("max"));
        assert_eq!(max_value(None, Some(20_000)).as_deref(), Some("max 20000"));
    }

    proptest::proptest! {
        #[test]
        fn weights_round_trip(shares in 2u64..=262_144) {
            let w = shares_to_weight(shares);
            proptest::prop_assert!((1..=10_000).contains(&w));
            proptest::prop_assert_eq!(shares_to_weight(weight_to_shares(w)), w);
        }
    }
}
