//! [`Metrics`]: everything `runc events --stats` reports, in its JSON shape
//! (runc's `types/events.go`), read from wherever each controller lives,
//! plus PSI. [`crate::Stats`] stays the cheap subset the runtime's hot path
//! and `corral cgroup stat` read.
//!
//! | field | cgroup v1 | cgroup v2 |
//! |---|---|---|
//! | `cpu.usage` | `cpuacct.usage`, `.stat` (ticks), `.usage_percpu[_user,_sys]` | `cpu.stat` `usage_usec`, `user_usec`, `system_usec` |
//! | `cpu.throttling` | `cpu.stat` `nr_periods`, `nr_throttled`, `throttled_time` | `cpu.stat` `nr_periods`, `nr_throttled`, `throttled_usec` |
//! | `memory.usage`, `.swap`, `.kernel`, `.kernelTCP` | `memory[.memsw,.kmem,.kmem.tcp].{usage,max_usage,limit}_in_bytes`, `failcnt` | `memory.{current,peak,max}`, failcnt = `memory.events` `max`; swap = memory + `memory.swap.{current,max}` as runc reports it |
//! | `memory.raw`, `.cache` | `memory.stat`, its `cache` | `memory.stat`, its `file` |
//! | `pids` | `pids.current`, `pids.max` | same |
//! | `blkio` | `blkio.throttle.io_service{_bytes,d}_recursive` (and the CFQ/BFQ files where present) | `io.stat` `rbytes`/`wbytes`/`dbytes`, `rios`/`wios`/`dios` |
//! | `hugetlb` | `hugetlb.SIZE.{usage,max_usage}_in_bytes`, `failcnt` | `hugetlb.SIZE.current`, `.events` `max` |
//! | `*.psi` | — | `cpu.pressure`, `memory.pressure`, `io.pressure` (also in the unified directory of a hybrid host) |
//!
//! Times are nanoseconds, sizes bytes. A file the kernel lacks leaves its
//! field at zero (as runc does); a file that cannot be read or parsed is an
//! error naming it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    cgroup::Cgroup,
    dir::{CgroupDir, FileError},
    hybrid::{Controller, Place},
    psi::{self, Psi, PsiResource},
    Error,
};

/// `USER_HZ`: the unit of v1 `cpuacct.stat` (100 on every Linux ABI).
const USER_HZ: u64 = 100;
/// A v1 limit at or above this is "unlimited" (`PAGE_COUNTER_MAX` pages).
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// runc's `Stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// CPU time and throttling.
    pub cpu: CpuStats,
    /// Memory.
    pub memory: MemoryStats,
    /// Processes.
    pub pids: PidsStats,
    /// Block I/O.
    pub blkio: BlkioStats,
    /// Huge pages, by page size (`2MB`).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// runc's `Cpu`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS bandwidth throttling.
    pub throttling: Throttling,
    /// `cpu.pressure`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub psi: Option<Psi>,
}

/// runc's `CpuUsage`, nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// In the kernel.
    pub kernel: u64,
    /// In user space.
    pub user: u64,
    /// Both.
    pub total: u64,
    /// Per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub percpu: Vec<u64>,
    /// Per CPU, in the kernel (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU, in user space (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub percpu_user: Vec<u64>,
}

/// runc's `Throttling`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods that elapsed.
    pub periods: u64,
    /// Periods in which the group was throttled.
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    pub throttled_time: u64,
}

/// runc's `Memory`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Page cache, bytes.
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap (runc's meaning on both versions).
    pub swap: MemoryEntry,
    /// Kernel memory (v1).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat` as it is.
    pub raw: BTreeMap<String, u64>,
    /// `memory.pressure`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub psi: Option<Psi>,
}

/// runc's `MemoryEntry`, bytes; a limit of 0 means none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// The limit.
    pub limit: u64,
    /// In use now.
    pub usage: u64,
    /// The most ever used.
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

/// runc's `Pids`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Tasks now.
    pub current: u64,
    /// The limit; 0 means none.
    pub limit: u64,
}

/// runc's `Blkio`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlkioStats {
    /// Bytes, per device and operation.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations, per device and operation.
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// v1 CFQ/BFQ only.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub io_queued_recursive: Vec<BlkioEntry>,
    /// v1 CFQ/BFQ only.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    /// v1 CFQ/BFQ only.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    /// v1 CFQ/BFQ only.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub io_merged_recursive: Vec<BlkioEntry>,
    /// v1 CFQ/BFQ only.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub io_time_recursive: Vec<BlkioEntry>,
    /// v1 CFQ/BFQ only.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sectors_recursive: Vec<BlkioEntry>,
    /// `io.pressure`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub psi: Option<Psi>,
}

/// runc's `BlkioEntry`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `Read`, `Write`, `Discard`, `Sync`, `Async`, `Total` (empty for
    /// files without one).
    pub op: String,
    /// The count.
    pub value: u64,
}

/// runc's `Hugetlb`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    /// Bytes in use.
    pub usage: u64,
    /// The most ever used (v1).
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

impl Cgroup {
    /// Reads everything `runc events --stats` reports, plus PSI where the
    /// cgroup has a unified directory.
    pub fn metrics(&self) -> Result<Metrics, Error> {
        let mut m = Metrics::default();
        match self.located_dir(Controller::Cpuacct)? {
            Some((Place::V1(_), d)) => v1_cpuacct(&d, &mut m.cpu.usage)?,
            // cpu.stat's usage lines are a core v2 file, controller or not.
            Some((Place::Unified, _)) | None => {
                if let Some(u) = &self.unified {
                    v2_cpu(&CgroupDir::open(&u.path())?, &mut m.cpu)?;
                }
            }
        }
        if let Some((Place::V1(_), d)) = self.located_dir(Controller::Cpu)? {
            v1_throttling(&d, &mut m.cpu.throttling)?;
        }
        if let Some((place, d)) = self.located_dir(Controller::Memory)? {
            match place {
                Place::V1(_) => v1_memory(&d, &mut m.memory)?,
                Place::Unified => v2_memory(&d, &mut m.memory)?,
            }
        }
        if let Some((_, d)) = self.located_dir(Controller::Pids)? {
            // Same files in v1 and v2.
            m.pids.current = read_u64(&d, "pids.current")?.unwrap_or(0);
            m.pids.limit = v2_max(&d, "pids.max")?;
        }
        if let Some((place, d)) = self.located_dir(Controller::Io)? {
            match place {
                Place::V1(_) => v1_blkio(&d, &mut m.blkio)?,
                Place::Unified => v2_io(&d, &mut m.blkio)?,
            }
        }
        if let Some((place, d)) = self.located_dir(Controller::Hugetlb)? {
            m.hugetlb = hugetlb(&d, place)?;
        }
        if let Some(u) = &self.unified {
            let d = CgroupDir::open(&u.path())?;
            m.cpu.psi = read_psi(&d, PsiResource::Cpu)?;
            m.memory.psi = read_psi(&d, PsiResource::Memory)?;
            m.blkio.psi = read_psi(&d, PsiResource::Io)?;
        }
        Ok(m)
    }
}

/// The contents of `file`, or `None` if the kernel has no such file.
fn read_opt(d: &CgroupDir, file: &str) -> Result<Option<String>, FileError> {
    match d.read(file) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_err(d: &CgroupDir, file: &str, text: &str) -> FileError {
    FileError::Parse {
        dir: d.path().to_owned(),
        file: file.to_owned(),
        content: text.trim().to_owned(),
    }
}

fn read_u64(d: &CgroupDir, file: &str) -> Result<Option<u64>, FileError> {
    let Some(text) = read_opt(d, file)? else {
        return Ok(None);
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| parse_err(d, file, &text))
}

/// A flat keyed file (`cpu.stat`, `memory.stat`, `memory.events`) as a map;
/// empty if the file is missing.
fn read_keyed(d: &CgroupDir, file: &str) -> Result<BTreeMap<String, u64>, FileError> {
    let Some(text) = read_opt(d, file)? else {
        return Ok(BTreeMap::new());
    };
    parse_keyed(&text).ok_or_else(|| parse_err(d, file, &text))
}

/// `key value` lines.
pub fn parse_keyed(text: &str) -> Option<BTreeMap<String, u64>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.trim().split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

fn read_psi(d: &CgroupDir, r: PsiResource) -> Result<Option<Psi>, FileError> {
    match read_opt(d, r.file()) {
        Ok(Some(text)) => psi::parse(&text)
            .map(Some)
            .ok_or_else(|| parse_err(d, r.file(), &text)),
        // PSI off (psi=0 on the kernel command line): EOPNOTSUPP on read.
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
        other => other.map(|_| None),
    }
}

fn v1_cpuacct(d: &CgroupDir, u: &mut CpuUsage) -> Result<(), FileError> {
    u.total = read_u64(d, "cpuacct.usage")?.unwrap_or(0);
    let ticks = read_keyed(d, "cpuacct.stat")?;
    let ns = |k: &str| {
        ticks
            .get(k)
            .map_or(0, |t| t.saturating_mul(1_000_000_000 / USER_HZ))
    };
    u.user = ns("user");
    u.kernel = ns("system");
    let list = |file: &str| -> Result<Vec<u64>, FileError> {
        let Some(text) = read_opt(d, file)? else {
            return Ok(Vec::new());
        };
        text.split_whitespace()
            .map(|n| n.parse().map_err(|_| parse_err(d, file, &text)))
            .collect()
    };
    u.percpu = list("cpuacct.usage_percpu")?;
    u.percpu_user = list("cpuacct.usage_percpu_user")?;
    u.percpu_kernel = list("cpuacct.usage_percpu_sys")?;
    Ok(())
}

fn v1_throttling(d: &CgroupDir, t: &mut Throttling) -> Result<(), FileError> {
    let s = read_keyed(d, "cpu.stat")?;
    let get = |k: &str| s.get(k).copied().unwrap_or(0);
    t.periods = get("nr_periods");
    t.throttled_periods = get("nr_throttled");
    t.throttled_time = get("throttled_time");
    Ok(())
}

/// v2 `cpu.stat`: usage (a core file) and, with the cpu controller,
/// throttling.
fn v2_cpu(d: &CgroupDir, c: &mut CpuStats) -> Result<(), FileError> {
    let s = read_keyed(d, "cpu.stat")?;
    let ns = |k: &str| s.get(k).map_or(0, |v| v.saturating_mul(1000));
    c.usage.total = ns("usage_usec");
    c.usage.user = ns("user_usec");
    c.usage.kernel = ns("system_usec");
    c.throttling.periods = s.get("nr_periods").copied().unwrap_or(0);
    c.throttling.throttled_periods = s.get("nr_throttled").copied().unwrap_or(0);
    c.throttling.throttled_time = ns("throttled_usec");
    Ok(())
}

fn v1_entry(d: &CgroupDir, prefix: &str) -> Result<MemoryEntry, FileError> {
    let get = |what: &str| read_u64(d, &format!("{prefix}.{what}"));
    let limit = get("limit_in_bytes")?.unwrap_or(0);
    Ok(MemoryEntry {
        limit: if limit >= V1_UNLIMITED { 0 } else { limit },
        usage: get("usage_in_bytes")?.unwrap_or(0),
        max: get("max_usage_in_bytes")?.unwrap_or(0),
        failcnt: get("failcnt")?.unwrap_or(0),
    })
}

fn v1_memory(d: &CgroupDir, m: &mut MemoryStats) -> Result<(), FileError> {
    m.usage = v1_entry(d, "memory")?;
    m.swap = v1_entry(d, "memory.memsw")?;
    m.kernel = v1_entry(d, "memory.kmem")?;
    m.kernel_tcp = v1_entry(d, "memory.kmem.tcp")?;
    m.raw = read_keyed(d, "memory.stat")?;
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    Ok(())
}

fn v2_max(d: &CgroupDir, file: &str) -> Result<u64, FileError> {
    match read_opt(d, file)? {
        None => Ok(0),
        Some(text) => crate::v2::parse_max(&text)
            .map(|v| v.unwrap_or(0))
            .ok_or_else(|| parse_err(d, file, &text)),
    }
}

fn v2_memory(d: &CgroupDir, m: &mut MemoryStats) -> Result<(), FileError> {
    let events = read_keyed(d, "memory.events")?;
    m.usage = MemoryEntry {
        limit: v2_max(d, "memory.max")?,
        usage: read_u64(d, "memory.current")?.unwrap_or(0),
        max: read_u64(d, "memory.peak")?.unwrap_or(0),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    if let Some(swap) = read_u64(d, "memory.swap.current")? {
        // runc reports v1's memory+swap on v2 too.
        let swap_limit = v2_max(d, "memory.swap.max")?;
        m.swap = MemoryEntry {
            limit: if swap_limit == 0 || m.usage.limit == 0 {
                0
            } else {
                m.usage.limit.saturating_add(swap_limit)
            },
            usage: m.usage.usage.saturating_add(swap),
            max: read_u64(d, "memory.swap.peak")?.unwrap_or(0),
            failcnt: read_keyed(d, "memory.swap.events")?
                .get("max")
                .copied()
                .unwrap_or(0),
        };
    }
    m.raw = read_keyed(d, "memory.stat")?;
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    Ok(())
}

/// A v1 blkio file: `MAJ:MIN Op value` lines (or `MAJ:MIN value`), and a
/// closing `Total value` that is left out.
pub fn parse_blkio(text: &str) -> Option<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, value) = match f.as_slice() {
            ["Total", _] => continue,
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] => (*dev, "", *value),
            _ => return None,
        };
        let (major, minor) = dev.split_once(':')?;
        out.push(BlkioEntry {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
            op: op.to_owned(),
            value: value.parse().ok()?,
        });
    }
    Some(out)
}

fn v1_blkio(d: &CgroupDir, b: &mut BlkioStats) -> Result<(), FileError> {
    let read = |file: &str| -> Result<Vec<BlkioEntry>, FileError> {
        match read_opt(d, file)? {
            None => Ok(Vec::new()),
            Some(text) => parse_blkio(&text).ok_or_else(|| parse_err(d, file, &text)),
        }
    };
    // Without CFQ/BFQ (every current kernel) only the throttle files count.
    let bytes = read("blkio.io_service_bytes_recursive")?;
    if bytes.is_empty() {
        b.io_service_bytes_recursive = read("blkio.throttle.io_service_bytes_recursive")?;
        b.io_serviced_recursive = read("blkio.throttle.io_serviced_recursive")?;
    } else {
        b.io_service_bytes_recursive = bytes;
        b.io_serviced_recursive = read("blkio.io_serviced_recursive")?;
    }
    b.io_queued_recursive = read("blkio.io_queued_recursive")?;
    b.io_service_time_recursive = read("blkio.io_service_time_recursive")?;
    b.io_wait_time_recursive = read("blkio.io_wait_time_recursive")?;
    b.io_merged_recursive = read("blkio.io_merged_recursive")?;
    b.io_time_recursive = read("blkio.time_recursive")?;
    b.sectors_recursive = read("blkio.sectors_recursive")?;
    Ok(())
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`.
pub fn parse_io_stat(text: &str) -> Option<BlkioStats> {
    let mut b = BlkioStats::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut fields = line.split_whitespace();
        let (major, minor) = fields.next()?.split_once(':')?;
        let (major, minor) = (major.parse().ok()?, minor.parse().ok()?);
        for f in fields {
            let (key, value) = f.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            let (list, op) = match key {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "dbytes" => (&mut b.io_service_bytes_recursive, "Discard"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                "dios" => (&mut b.io_serviced_recursive, "Discard"),
                _ => continue, // cost.*, a later kernel's keys
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
    Some(b)
}

fn v2_io(d: &CgroupDir, b: &mut BlkioStats) -> Result<(), FileError> {
    if let Some(text) = read_opt(d, "io.stat")? {
        let parsed = parse_io_stat(&text).ok_or_else(|| parse_err(d, "io.stat", &text))?;
        b.io_service_bytes_recursive = parsed.io_service_bytes_recursive;
        b.io_serviced_recursive = parsed.io_serviced_recursive;
    }
    Ok(())
}

/// Every page size the directory has files for.
fn hugetlb(d: &CgroupDir, place: Place) -> Result<BTreeMap<String, HugetlbStats>, FileError> {
    let usage_suffix = match place {
        Place::V1(_) => ".usage_in_bytes",
        Place::Unified => ".current",
    };
    let mut out = BTreeMap::new();
    for file in d.files()? {
        let Some(size) = file
            .strip_prefix("hugetlb.")
            .and_then(|f| f.strip_suffix(usage_suffix))
            .filter(|s| crate::v1::hugetlb::valid_page_size(s))
        else {
            continue; // rsvd. files and other sizes' names
        };
        let s = match place {
            Place::V1(_) => HugetlbStats {
                usage: read_u64(d, &file)?.unwrap_or(0),
                max: read_u64(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?.unwrap_or(0),
                failcnt: read_u64(d, &format!("hugetlb.{size}.failcnt"))?.unwrap_or(0),
            },
            Place::Unified => HugetlbStats {
                usage: read_u64(d, &file)?.unwrap_or(0),
                max: 0,
                failcnt: read_keyed(d, &format!("hugetlb.{size}.events"))?
                    .get("max")
                    .copied()
                    .unwrap_or(0),
            },
        };
        out.insert(size.to_owned(), s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn blkio_lines_parse_and_the_total_is_left_out() {
        let text = "8:0 Read 4096\n8:0 Write 0\n8:0 Sync 4096\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 4096\nTotal 4096\n";
        let e = parse_blkio(text).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(parse_blkio("Total 0\n").unwrap(), vec![]);
        assert_eq!(parse_blkio("8:0 Read x\n"), None);
    }

    #[test]
    fn io_stat_becomes_runc_entries() {
        let b =
            parse_io_stat("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n259:0 rbytes=7\n")
                .unwrap();
        let ops: Vec<_> = b
            .io_service_bytes_recursive
            .iter()
            .map(|e| (e.major, e.op.as_str(), e.value))
            .collect();
        assert_eq!(
            ops,
            [
                (8, "Read", 1),
                (8, "Write", 2),
                (8, "Discard", 5),
                (259, "Read", 7)
            ]
        );
        assert_eq!(b.io_serviced_recursive.len(), 3);
        assert!(parse_io_stat("8:0 rbytes\n").is_none());
    }

    #[test]
    fn json_has_runc_names() {
        let m = Metrics::default();
        let v = serde_json::to_value(&m).unwrap();
        assert!(v["memory"]["kernelTCP"].is_object());
        assert!(v["blkio"]["ioServiceBytesRecursive"].is_array());
        assert!(v["cpu"]["throttling"]["throttled_periods"].is_u64());
        assert!(v["cpu"].get("psi").is_none(), "no psi key without PSI");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*") {
            let _ = parse_blkio(&text);
            let _ = parse_io_stat(&text);
            let _ = parse_keyed(&text);
        }

        #[test]
        fn keyed_files_round_trip(map in proptest::collection::btree_map("[a-z_]{1,12}", any::<u64>(), 0..8)) {
            let text: String = map.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            prop_assert_eq!(parse_keyed(&text), Some(map));
        }
    }
}
