//! Setting names across cgroup versions: a v1 name works on v1 and a v2 name
//! on v2, and the common ones are translated to the other version, with the
//! value converted, so `memory.limit_in_bytes=64M` limits memory on a v2
//! host and `memory.max` reads back on a v1 one. Pure: the current value of
//! another file, where a conversion needs one (`cpu.max` keeps the period
//! when only the quota changes), comes from a reader the caller passes.
//!
//! | v1 | v2 | value |
//! |---|---|---|
//! | `memory.limit_in_bytes` | `memory.max` | `-1` ↔ `max` |
//! | `memory.soft_limit_in_bytes` | `memory.low` | `-1` ↔ `max` (OCI reservation, as runc) |
//! | `memory.memsw.limit_in_bytes` | `memory.swap.max` | memory+swap − `memory.max` |
//! | `memory.usage_in_bytes` | `memory.current` | read only |
//! | `memory.max_usage_in_bytes` | `memory.peak` | read only |
//! | `cpu.shares` | `cpu.weight` | crun's quadratic map (1024 ↔ 100) |
//! | `cpu.cfs_quota_us` | `cpu.max`, first field | `-1` ↔ `max` |
//! | `cpu.cfs_period_us` | `cpu.max`, second field | |
//! | `cpu.cfs_burst_us` | `cpu.max.burst` | |
//! | `cpuacct.usage` | `cpu.stat` `usage_usec` | ns ↔ µs, read only |
//! | `blkio.weight` | `io.weight` (`default N`) | runc's linear map 10..1000 ↔ 1..10000 |
//! | `blkio.throttle.{read,write}_{bps,iops}_device` | `io.max` `rbps=`/`wbps=`/`riops=`/`wiops=` | `MAJ:MIN N` |
//! | `freezer.state` | `cgroup.freeze` | `FROZEN` ↔ `1`, `THAWED` ↔ `0` |
//! | `hugetlb.SIZE.limit_in_bytes` | `hugetlb.SIZE.max` | `-1` ↔ `max` |
//! | `hugetlb.SIZE.usage_in_bytes` | `hugetlb.SIZE.current` | read only |
//!
//! Names with the same file on both (`pids.max`, `cpuset.cpus`) pass
//! through; names of one version with no counterpart (`memory.swappiness`,
//! `cpu.rt_runtime_us`, `memory.high`) are refused on the other with a
//! message saying so.

use crate::v2::cpu::{shares_to_weight, weight_to_shares};

/// What v1 prints for an unlimited memory or hugetlb limit with 4 KiB pages.
pub const V1_UNLIMITED: &str = "9223372036854771712";

/// Which cgroup version a directory belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// A v1 controller hierarchy.
    V1,
    /// The unified hierarchy.
    V2,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// A setting name or value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// Not `controller.file`.
    #[error("invalid setting name {name:?} (expected controller.file, e.g. pids.max)")]
    BadName {
        /// The name as given.
        name: String,
    },
    /// A name of one cgroup version that the other has no file for.
    #[error("setting {name} has no cgroup {version} equivalent")]
    NoEquivalent {
        /// The name as given.
        name: String,
        /// The version of the hierarchy it was meant for.
        version: &'static str,
    },
    /// A value the conversion to the other version cannot read.
    #[error("setting {name}: invalid value {value:?} ({expected})")]
    BadValue {
        /// The name as given.
        name: String,
        /// The value as given.
        value: String,
        /// What the value should look like.
        expected: &'static str,
    },
    /// A read-only counter.
    #[error("setting {name} is read-only")]
    ReadOnly {
        /// The name as given.
        name: String,
    },
}

/// The controller a setting belongs to, as v1 names it (`io.max` → `blkio`,
/// `cgroup.freeze` → `cgroup`, the v2 core).
pub fn controller_of(name: &str) -> Result<&str, SettingError> {
    let bad = || SettingError::BadName {
        name: name.to_owned(),
    };
    let (prefix, rest) = name.split_once('.').ok_or_else(bad)?;
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if prefix.is_empty() || rest.is_empty() || !name.chars().all(ok) || name.contains("..") {
        return Err(bad());
    }
    Ok(match prefix {
        "io" => "blkio",
        other => other,
    })
}

/// One translation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Same value; `-1` on v1 is `max` on v2.
    Max,
    /// `cpu.shares` ↔ `cpu.weight`.
    Shares,
    /// v1 quota → `cpu.max` first field.
    Quota,
    /// v1 period → `cpu.max` second field.
    Period,
    /// Same value.
    Same,
    /// `blkio.weight` ↔ `io.weight`.
    Weight,
    /// A v1 throttle file ↔ one key of `io.max`.
    Throttle(&'static str),
    /// `freezer.state` ↔ `cgroup.freeze`.
    Freeze,
    /// memory+swap ↔ swap alone.
    Swap,
    /// A read-only counter with the same value.
    Counter,
    /// `cpuacct.usage` (ns) ↔ `cpu.stat` `usage_usec`.
    CpuUsage,
}

/// v1 name, v2 name, rule.
const PAIRS: &[(&str, &str, Rule)] = &[
    ("memory.limit_in_bytes", "memory.max", Rule::Max),
    ("memory.soft_limit_in_bytes", "memory.low", Rule::Max),
    ("memory.memsw.limit_in_bytes", "memory.swap.max", Rule::Swap),
    ("memory.usage_in_bytes", "memory.current", Rule::Counter),
    ("memory.max_usage_in_bytes", "memory.peak", Rule::Counter),
    ("cpu.shares", "cpu.weight", Rule::Shares),
    ("cpu.cfs_quota_us", "cpu.max", Rule::Quota),
    ("cpu.cfs_period_us", "cpu.max", Rule::Period),
    ("cpu.cfs_burst_us", "cpu.max.burst", Rule::Same),
    ("cpuacct.usage", "cpu.stat", Rule::CpuUsage),
    ("blkio.weight", "io.weight", Rule::Weight),
    (
        "blkio.throttle.read_bps_device",
        "io.max",
        Rule::Throttle("rbps"),
    ),
    (
        "blkio.throttle.write_bps_device",
        "io.max",
        Rule::Throttle("wbps"),
    ),
    (
        "blkio.throttle.read_iops_device",
        "io.max",
        Rule::Throttle("riops"),
    ),
    (
        "blkio.throttle.write_iops_device",
        "io.max",
        Rule::Throttle("wiops"),
    ),
    ("freezer.state", "cgroup.freeze", Rule::Freeze),
];

/// v1 names with no v2 file.
const V1_ONLY: &[&str] = &[
    "memory.swappiness",
    "memory.oom_control",
    "memory.use_hierarchy",
    "memory.force_empty",
    "memory.move_charge_at_immigrate",
    "memory.failcnt",
    "cpu.rt_runtime_us",
    "cpu.rt_period_us",
    "blkio.leaf_weight",
    "blkio.leaf_weight_device",
];

/// v2 names with no v1 file (a v2 file whose controller is v1-mounted).
const V2_ONLY: &[&str] = &[
    "memory.high",
    "memory.min",
    "memory.oom.group",
    "memory.swap.high",
    "memory.zswap.max",
    "cpu.max",
    "io.latency",
    "io.bfq.weight",
];

/// Where a setting is read or written, and how its value converts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The name as given.
    pub name: String,
    /// The file in the directory of the target version.
    pub file: String,
    rule: Option<(Rule, Dir)>,
}

/// Which way a translation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// A v1 name on a v2 directory.
    ToV2,
    /// A v2 name on a v1 directory.
    ToV1,
}

/// The file `name` means on a directory of version `target`.
pub fn map(name: &str, target: Version) -> Result<Mapping, SettingError> {
    controller_of(name)?;
    let owned = |file: &str, rule| Mapping {
        name: name.to_owned(),
        file: file.to_owned(),
        rule,
    };
    let no_equivalent = || SettingError::NoEquivalent {
        name: name.to_owned(),
        version: target.name(),
    };
    if let Some(m) = map_hugetlb(name, target) {
        return Ok(m);
    }
    match target {
        Version::V2 => {
            if let Some((_, v2, rule)) = PAIRS.iter().find(|(v1, _, _)| *v1 == name) {
                return Ok(owned(v2, Some((*rule, Dir::ToV2))));
            }
            if V1_ONLY.contains(&name) || name.starts_with("memory.kmem.") {
                return Err(no_equivalent());
            }
        }
        Version::V1 => {
            // cpu.max is one v2 file for two v1 files; it is handled by
            // `plan_write`/`read` directly.
            if name == "cpu.max" {
                return Ok(owned("cpu.cfs_quota_us", None));
            }
            if let Some((v1, _, rule)) = PAIRS
                .iter()
                .find(|(_, v2, r)| *v2 == name && !matches!(r, Rule::Throttle(_) | Rule::Period))
            {
                return Ok(owned(v1, Some((*rule, Dir::ToV1))));
            }
            if V2_ONLY.contains(&name) || name.starts_with("cgroup.") {
                return Err(no_equivalent());
            }
        }
    }
    Ok(owned(name, None))
}

fn map_hugetlb(name: &str, target: Version) -> Option<Mapping> {
    let rest = name.strip_prefix("hugetlb.")?;
    let (size, file) = rest.split_once('.')?;
    let pairs = [
        ("limit_in_bytes", "max", Rule::Max),
        ("rsvd.limit_in_bytes", "rsvd.max", Rule::Max),
        ("usage_in_bytes", "current", Rule::Counter),
        ("rsvd.usage_in_bytes", "rsvd.current", Rule::Counter),
    ];
    let (v1, v2, rule, dir) = match target {
        Version::V2 => pairs
            .iter()
            .find(|(v1, _, _)| *v1 == file)
            .map(|(a, b, r)| (a, b, *r, Dir::ToV2))?,
        Version::V1 => pairs
            .iter()
            .find(|(_, v2, _)| *v2 == file)
            .map(|(a, b, r)| (a, b, *r, Dir::ToV1))?,
    };
    let file = match dir {
        Dir::ToV2 => format!("hugetlb.{size}.{v2}"),
        Dir::ToV1 => format!("hugetlb.{size}.{v1}"),
    };
    Some(Mapping {
        name: name.to_owned(),
        file,
        rule: Some((rule, dir)),
    })
}

/// The writes (file, value) that set `name` to `value` on a directory of
/// version `target`, in order. `current` reads a file of that directory.
pub fn plan_write<E>(
    name: &str,
    value: &str,
    target: Version,
    current: impl Fn(&str) -> Result<String, E>,
) -> Result<Vec<(String, String)>, PlanError<E>> {
    let bad = |expected| SettingError::BadValue {
        name: name.to_owned(),
        value: value.to_owned(),
        expected,
    };
    let value = value.trim();
    if target == Version::V1 && name == "cpu.max" {
        let mut it = value.split_whitespace();
        let quota = it.next().ok_or_else(|| bad("QUOTA|max [PERIOD]"))?;
        let quota = if quota == "max" { "-1" } else { quota };
        let mut out = Vec::new();
        if let Some(period) = it.next() {
            out.push(("cpu.cfs_period_us".to_owned(), period.to_owned()));
        }
        out.push(("cpu.cfs_quota_us".to_owned(), quota.to_owned()));
        return Ok(out);
    }
    let m = map(name, target)?;
    let Some((rule, dir)) = m.rule else {
        return Ok(vec![(m.file, value.to_owned())]);
    };
    let one = |v: String| Ok(vec![(m.file.clone(), v)]);
    match (rule, dir) {
        (Rule::Counter | Rule::CpuUsage, _) => Err(SettingError::ReadOnly {
            name: name.to_owned(),
        }
        .into()),
        (Rule::Same, _) => one(value.to_owned()),
        (Rule::Max, Dir::ToV2) => one(if value == "-1" { "max" } else { value }.to_owned()),
        (Rule::Max, Dir::ToV1) => one(if value == "max" { "-1" } else { value }.to_owned()),
        (Rule::Shares, Dir::ToV2) => {
            let s: u64 = value.parse().map_err(|_| bad("a number of shares"))?;
            one(shares_to_weight(s).max(1).to_string())
        }
        (Rule::Shares, Dir::ToV1) => {
            let w: u64 = value.parse().map_err(|_| bad("a weight, 1..10000"))?;
            one(weight_to_shares(w).to_string())
        }
        (Rule::Quota | Rule::Period, _) => {
            let cur = current("cpu.max").map_err(PlanError::Read)?;
            let mut f = cur.split_whitespace();
            let (q, p) = (f.next().unwrap_or("max"), f.next().unwrap_or("100000"));
            let new = if rule == Rule::Quota {
                let q: i64 = value.parse().map_err(|_| bad("microseconds or -1"))?;
                let q = if q < 0 {
                    "max".to_owned()
                } else {
                    q.to_string()
                };
                format!("{q} {p}")
            } else {
                let p: u64 = value.parse().map_err(|_| bad("microseconds"))?;
                format!("{q} {p}")
            };
            one(new)
        }
        (Rule::Weight, Dir::ToV2) => {
            let w: u16 = value.parse().map_err(|_| bad("a weight, 10..1000"))?;
            if !(10..=1000).contains(&w) {
                return Err(bad("a weight, 10..1000").into());
            }
            one(format!("default {}", crate::v2::io::blkio_to_io_weight(w)))
        }
        (Rule::Weight, Dir::ToV1) => {
            let w = value.strip_prefix("default ").unwrap_or(value);
            let w: u64 = w.parse().map_err(|_| bad("a weight, 1..10000"))?;
            if !(1..=10_000).contains(&w) {
                return Err(bad("a weight, 1..10000").into());
            }
            one(io_to_blkio_weight(w).to_string())
        }
        (Rule::Throttle(key), _) => {
            let (dev, rate) = value
                .split_once(' ')
                .ok_or_else(|| bad("MAJOR:MINOR RATE"))?;
            let rate = rate.trim();
            let rate = if rate == "0" { "max" } else { rate };
            one(format!("{dev} {key}={rate}"))
        }
        (Rule::Freeze, Dir::ToV2) => match value {
            "FROZEN" => one("1".to_owned()),
            "THAWED" => one("0".to_owned()),
            _ => Err(bad("FROZEN or THAWED").into()),
        },
        (Rule::Freeze, Dir::ToV1) => match value {
            "1" => one("FROZEN".to_owned()),
            "0" => one("THAWED".to_owned()),
            _ => Err(bad("1 or 0").into()),
        },
        (Rule::Swap, Dir::ToV2) => {
            if value == "-1" || value == "max" {
                return one("max".to_owned());
            }
            let memsw: u64 = value.parse().map_err(|_| bad("bytes or -1"))?;
            let limit = current("memory.max").map_err(PlanError::Read)?;
            let limit: u64 = limit.trim().parse().map_err(|_| {
                bad("memory+swap, which needs memory.limit_in_bytes set first on cgroup v2")
            })?;
            let swap = memsw
                .checked_sub(limit)
                .ok_or_else(|| bad("memory+swap, not below memory.limit_in_bytes"))?;
            one(swap.to_string())
        }
        (Rule::Swap, Dir::ToV1) => {
            if value == "max" || value == "-1" {
                return one("-1".to_owned());
            }
            let swap: u64 = value.parse().map_err(|_| bad("bytes or max"))?;
            let limit = current("memory.limit_in_bytes").map_err(PlanError::Read)?;
            let limit: u64 = limit.trim().parse().map_err(|_| bad("bytes or max"))?;
            one(limit.saturating_add(swap).to_string())
        }
    }
}

/// [`plan_write`] failed: the setting, or reading the current value.
#[derive(Debug)]
pub enum PlanError<E> {
    /// The name or value.
    Setting(SettingError),
    /// Reading the file a conversion needs.
    Read(E),
}

impl<E> From<SettingError> for PlanError<E> {
    fn from(e: SettingError) -> Self {
        Self::Setting(e)
    }
}

/// The value `name` has, given the content of the file [`map`] returned
/// (and, for v2's `cpu.max` on v1, `cpu.cfs_period_us` through `current`).
pub fn convert_read<E>(
    name: &str,
    content: &str,
    target: Version,
    current: impl Fn(&str) -> Result<String, E>,
) -> Result<String, PlanError<E>> {
    let text = content.trim_end_matches('\n');
    if target == Version::V1 && name == "cpu.max" {
        let q = text.trim();
        let q = if q == "-1" { "max" } else { q };
        let p = current("cpu.cfs_period_us").map_err(PlanError::Read)?;
        return Ok(format!("{q} {}", p.trim()));
    }
    let m = map(name, target)?;
    let Some((rule, dir)) = m.rule else {
        return Ok(text.to_owned());
    };
    let t = text.trim();
    let field = |i: usize| t.split_whitespace().nth(i).unwrap_or("").to_owned();
    Ok(match (rule, dir) {
        (Rule::Max, Dir::ToV2) if t == "max" => V1_UNLIMITED.to_owned(),
        (Rule::Max, Dir::ToV1) if t == V1_UNLIMITED || t == "-1" => "max".to_owned(),
        (Rule::Shares, Dir::ToV2) => t
            .parse()
            .map(|w| weight_to_shares(w).to_string())
            .unwrap_or_else(|_| t.to_owned()),
        (Rule::Shares, Dir::ToV1) => t
            .parse()
            .map(|s| shares_to_weight(s).to_string())
            .unwrap_or_else(|_| t.to_owned()),
        (Rule::Quota, _) => match field(0).as_str() {
            "max" => "-1".to_owned(),
            q => q.to_owned(),
        },
        (Rule::Period, _) => field(1),
        (Rule::Weight, Dir::ToV2) => {
            let w = t
                .lines()
                .find_map(|l| l.strip_prefix("default "))
                .unwrap_or(t);
            w.trim()
                .parse()
                .map(|w| io_to_blkio_weight(w).to_string())
                .unwrap_or_else(|_| t.to_owned())
        }
        (Rule::Weight, Dir::ToV1) => t
            .parse()
            .map(|w| format!("default {}", crate::v2::io::blkio_to_io_weight(w)))
            .unwrap_or_else(|_| t.to_owned()),
        (Rule::Throttle(key), _) => throttle_lines(text, key),
        (Rule::Freeze, Dir::ToV2) => match t {
            "1" => "FROZEN".to_owned(),
            _ => "THAWED".to_owned(),
        },
        (Rule::Freeze, Dir::ToV1) => match t {
            "FROZEN" | "FREEZING" => "1".to_owned(),
            _ => "0".to_owned(),
        },
        (Rule::CpuUsage, Dir::ToV2) => crate::v2::keyed(text, "usage_usec")
            .map(|u| u.saturating_mul(1000).to_string())
            .unwrap_or_default(),
        (Rule::CpuUsage, Dir::ToV1) => t
            .parse::<u64>()
            .map(|ns| format!("usage_usec {}", ns / 1000))
            .unwrap_or_else(|_| t.to_owned()),
        (Rule::Swap, Dir::ToV2) => {
            if t == "max" {
                V1_UNLIMITED.to_owned()
            } else {
                let limit = current("memory.max").map_err(PlanError::Read)?;
                match (t.parse::<u64>(), limit.trim().parse::<u64>()) {
                    (Ok(s), Ok(l)) => s.saturating_add(l).to_string(),
                    _ => V1_UNLIMITED.to_owned(),
                }
            }
        }
        (Rule::Swap, Dir::ToV1) => {
            let limit = current("memory.limit_in_bytes").map_err(PlanError::Read)?;
            match (t.parse::<u64>(), limit.trim().parse::<u64>()) {
                (Ok(memsw), Ok(l)) if t != V1_UNLIMITED => memsw.saturating_sub(l).to_string(),
                _ => "max".to_owned(),
            }
        }
        _ => text.to_owned(),
    })
}

/// `io.max` lines → a v1 throttle file's lines for one key.
fn throttle_lines(text: &str, key: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(dev) = f.next() else { continue };
        for kv in f {
            if let Some(v) = kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                if v != "max" {
                    out.push(format!("{dev} {v}"));
                }
            }
        }
    }
    out.join("\n")
}

/// The inverse of runc's blkio → io weight map: 1..10000 → 10..1000.
pub fn io_to_blkio_weight(weight: u64) -> u64 {
    (10 + weight.saturating_sub(1) * 990 / 9999).clamp(10, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_read(_: &str) -> Result<String, ()> {
        Err(())
    }

    fn plan(name: &str, value: &str, v: Version) -> Vec<(String, String)> {
        let read = |f: &str| -> Result<String, ()> {
            Ok(match f {
                "cpu.max" => "max 100000".to_owned(),
                "memory.max" => "1048576".to_owned(),
                "memory.limit_in_bytes" => "1048576".to_owned(),
                _ => return Err(()),
            })
        };
        match plan_write(name, value, v, read) {
            Ok(p) => p,
            Err(PlanError::Setting(e)) => panic!("{e}"),
            Err(PlanError::Read(())) => panic!("read"),
        }
    }

    fn w(f: &str, v: &str) -> (String, String) {
        (f.to_owned(), v.to_owned())
    }

    #[test]
    fn v1_names_on_v2() {
        let v = Version::V2;
        assert_eq!(
            plan("memory.limit_in_bytes", "64M", v),
            [w("memory.max", "64M")]
        );
        assert_eq!(
            plan("memory.limit_in_bytes", "-1", v),
            [w("memory.max", "max")]
        );
        assert_eq!(plan("cpu.shares", "1024", v), [w("cpu.weight", "100")]);
        assert_eq!(
            plan("cpu.cfs_quota_us", "50000", v),
            [w("cpu.max", "50000 100000")]
        );
        assert_eq!(
            plan("cpu.cfs_period_us", "20000", v),
            [w("cpu.max", "max 20000")]
        );
        assert_eq!(
            plan("blkio.weight", "1000", v),
            [w("io.weight", "default 10000")]
        );
        assert_eq!(
            plan("blkio.throttle.read_bps_device", "8:0 1048576", v),
            [w("io.max", "8:0 rbps=1048576")]
        );
        assert_eq!(
            plan("freezer.state", "FROZEN", v),
            [w("cgroup.freeze", "1")]
        );
        assert_eq!(
            plan("memory.memsw.limit_in_bytes", "3145728", v),
            [w("memory.swap.max", "2097152")]
        );
        assert_eq!(
            plan("hugetlb.2MB.limit_in_bytes", "-1", v),
            [w("hugetlb.2MB.max", "max")]
        );
        assert_eq!(plan("pids.max", "12", v), [w("pids.max", "12")]);
    }

    #[test]
    fn v2_names_on_v1() {
        let v = Version::V1;
        assert_eq!(
            plan("memory.max", "max", v),
            [w("memory.limit_in_bytes", "-1")]
        );
        assert_eq!(plan("cpu.weight", "100", v), [w("cpu.shares", "1024")]);
        assert_eq!(
            plan("cpu.max", "50000 100000", v),
            [
                w("cpu.cfs_period_us", "100000"),
                w("cpu.cfs_quota_us", "50000")
            ]
        );
        assert_eq!(plan("cpu.max", "max", v), [w("cpu.cfs_quota_us", "-1")]);
        assert_eq!(
            plan("io.weight", "default 10000", v),
            [w("blkio.weight", "1000")]
        );
        assert_eq!(
            plan("cgroup.freeze", "0", v),
            [w("freezer.state", "THAWED")]
        );
        assert_eq!(
            plan("memory.swap.max", "1048576", v),
            [w("memory.memsw.limit_in_bytes", "2097152")]
        );
    }

    #[test]
    fn refusals_name_the_setting() {
        let e = |n: &str, val: &str, v| match plan_write(n, val, v, no_read) {
            Err(PlanError::Setting(e)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e("memory.swappiness", "10", Version::V2),
            "setting memory.swappiness has no cgroup v2 equivalent"
        );
        assert_eq!(
            e("memory.high", "10", Version::V1),
            "setting memory.high has no cgroup v1 equivalent"
        );
        assert_eq!(
            e("cpu.shares", "banana", Version::V2),
            "setting cpu.shares: invalid value \"banana\" (a number of shares)"
        );
        assert_eq!(
            e("memory.usage_in_bytes", "1", Version::V2),
            "setting memory.usage_in_bytes is read-only"
        );
        assert!(e("nodot", "1", Version::V1).contains("invalid setting name"));
        assert!(e("../x.y", "1", Version::V1).contains("invalid setting name"));
        assert!(e("a/b.c", "1", Version::V1).contains("invalid setting name"));
    }

    #[test]
    fn reads_convert_back() {
        let r = |n: &str, c: &str, v| convert_read(n, c, v, |_| Ok::<_, ()>("100000".into()));
        let v2 = Version::V2;
        assert_eq!(
            r("memory.limit_in_bytes", "max\n", v2).unwrap(),
            V1_UNLIMITED
        );
        assert_eq!(r("cpu.shares", "100\n", v2).unwrap(), "1024");
        assert_eq!(r("cpu.cfs_quota_us", "max 100000\n", v2).unwrap(), "-1");
        assert_eq!(r("cpu.cfs_period_us", "max 50000\n", v2).unwrap(), "50000");
        assert_eq!(
            r("cpuacct.usage", "usage_usec 12\nuser_usec 1\n", v2).unwrap(),
            "12000"
        );
        assert_eq!(
            r(
                "blkio.throttle.read_bps_device",
                "8:0 rbps=5 wbps=max riops=max wiops=max\n",
                v2
            )
            .unwrap(),
            "8:0 5"
        );
        let v1 = Version::V1;
        assert_eq!(r("memory.max", "9223372036854771712\n", v1).unwrap(), "max");
        assert_eq!(r("cpu.weight", "1024\n", v1).unwrap(), "100");
        assert_eq!(r("cpu.max", "-1\n", v1).unwrap(), "max 100000");
        assert_eq!(r("pids.max", "12\n", v1).unwrap(), "12");
    }

    #[test]
    fn blkio_weights_round_trip_at_the_ends() {
        assert_eq!(io_to_blkio_weight(1), 10);
        assert_eq!(io_to_blkio_weight(10_000), 1000);
        for w in [10u16, 100, 500, 1000] {
            let io = crate::v2::io::blkio_to_io_weight(w);
            assert!(io_to_blkio_weight(io).abs_diff(u64::from(w)) <= 1, "{w}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(name in "[a-z_.0-9]{0,24}", value in "\\PC{0,16}") {
            for v in [Version::V1, Version::V2] {
                let _ = plan_write(&name, &value, v, |_| Ok::<_, ()>(value.clone()));
                let _ = convert_read(&name, &value, v, |_| Ok::<_, ()>(value.clone()));
            }
        }
    }
}
