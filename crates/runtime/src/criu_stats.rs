//! CRIU's statistics files, `stats-dump` and `stats-restore`, written to
//! the work directory of `checkpoint` and `restore` as runc's CRIU writes
//! them: podman reads them for `container checkpoint --print-stats` and
//! `container restore --print-stats`, and puts `stats-dump` in an
//! `--export` archive.
//!
//! The format: two little-endian u32 magics (CRIU's service-file magic,
//! then the stats magic), a u32 payload size, and the payload, a protobuf
//! `stats_entry` (CRIU's images/stats.proto) with a `dump` (field 1) or
//! `restore` (field 2) message of varint fields. Times are microseconds.
//! corral reads and writes pages in one pass: the dump's whole page time
//! is reported as `memdump_time`, and `memwrite_time` is 0.

use std::path::Path;
use std::time::Duration;

use crate::container::{io, Error};

/// CRIU's magic of service files (stats, irmap cache).
const SERVICE_MAGIC: u32 = 0x5510_5940;
/// CRIU's magic of the stats files.
const STATS_MAGIC: u32 = 0x5709_3306;
const PAGE: u64 = 4096;

/// What a dump did, for `stats-dump`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DumpTimes {
    /// Until the container was frozen.
    pub freezing: Duration,
    /// From the freeze until the dump was written.
    pub frozen: Duration,
    /// Reading and writing pages.
    pub pages: Duration,
    /// Bytes of pages written.
    pub page_bytes: u64,
}

/// What a restore did, for `stats-restore`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestoreTimes {
    /// Making the container the process is restored into.
    pub forking: Duration,
    /// Restoring the process.
    pub restore: Duration,
    /// Bytes of pages restored.
    pub page_bytes: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .min(u64::from(u32::MAX))
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The file: magics, size, a `stats_entry` holding `fields` (number,
/// value) as the message of field `which`.
fn encode(which: u64, fields: &[(u64, u64)]) -> Vec<u8> {
    let mut inner = Vec::new();
    for &(number, value) in fields {
        varint(&mut inner, number << 3); // wire type 0: varint
        varint(&mut inner, value);
    }
    let mut payload = Vec::new();
    varint(&mut payload, (which << 3) | 2); // wire type 2: length-delimited
    varint(&mut payload, inner.len() as u64);
    payload.extend(inner);
    let mut out = Vec::with_capacity(12 + payload.len());
    out.extend(SERVICE_MAGIC.to_le_bytes());
    out.extend(STATS_MAGIC.to_le_bytes());
    out.extend((payload.len() as u32).to_le_bytes());
    out.extend(payload);
    out
}

/// `stats-dump`.
pub fn dump_file(t: &DumpTimes) -> Vec<u8> {
    let pages = t.page_bytes.div_ceil(PAGE);
    encode(
        1,
        &[
            (1, micros(t.freezing)), // freezing_time
            (2, micros(t.frozen)),   // frozen_time
            (3, micros(t.pages)),    // memdump_time
            (4, 0),                  // memwrite_time
            (5, pages),              // pages_scanned
            (6, 0),                  // pages_skipped_parent
            (7, pages),              // pages_written
            (9, 0),                  // pages_lazy
        ],
    )
}

/// `stats-restore`.
pub fn restore_file(t: &RestoreTimes) -> Vec<u8> {
    encode(
        2,
        &[
            (1, 0),                           // pages_compared
            (2, 0),                           // pages_skipped_cow
            (3, micros(t.forking)),           // forking_time
            (4, micros(t.restore)),           // restore_time
            (5, t.page_bytes.div_ceil(PAGE)), // pages_restored
        ],
    )
}

/// Writes `data` as `dir`/`name`.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let path = dir.join(name);
    std::fs::write(&path, data).map_err(io(format!("write {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_varint(buf: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = buf[*at];
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    /// Decodes what [`encode`] writes, as a protobuf reader would.
    fn decode(file: &[u8]) -> (u32, u32, u64, Vec<(u64, u64)>) {
        let u32_at = |i: usize| u32::from_le_bytes(file[i..i + 4].try_into().unwrap());
        let size = u32_at(8) as usize;
        assert_eq!(file.len(), 12 + size, "the size covers the payload");
        let p = &file[12..];
        let mut at = 0;
        let key = read_varint(p, &mut at);
        let len = read_varint(p, &mut at) as usize;
        assert_eq!(at + len, p.len(), "one message fills the payload");
        let mut fields = Vec::new();
        while at < p.len() {
            let k = read_varint(p, &mut at);
            assert_eq!(k & 7, 0, "varint fields");
            fields.push((k >> 3, read_varint(p, &mut at)));
        }
        (u32_at(0), u32_at(4), key, fields)
    }

    #[test]
    fn the_files_are_crius_stats_entries() {
        let d = dump_file(&DumpTimes {
            freezing: Duration::from_micros(300),
            frozen: Duration::from_millis(20),
            pages: Duration::from_micros(150_000),
            page_bytes: 64 << 20,
        });
        let (magic, stats, key, fields) = decode(&d);
        assert_eq!((magic, stats), (0x5510_5940, 0x5709_3306));
        assert_eq!(key, (1 << 3) | 2, "stats_entry.dump");
        assert_eq!(
            fields,
            [
                (1, 300),
                (2, 20_000),
                (3, 150_000),
                (4, 0),
                (5, 16384),
                (6, 0),
                (7, 16384),
                (9, 0)
            ]
        );
        let r = restore_file(&RestoreTimes {
            forking: Duration::from_millis(12),
            restore: Duration::from_micros(25_500),
            page_bytes: 4097,
        });
        let (_, _, key, fields) = decode(&r);
        assert_eq!(key, (2 << 3) | 2, "stats_entry.restore");
        assert_eq!(fields, [(1, 0), (2, 0), (3, 12_000), (4, 25_500), (5, 2)]);
        // Times past u32 are capped, not wrapped.
        let long = dump_file(&DumpTimes {
            frozen: Duration::from_secs(10_000),
            ..Default::default()
        });
        assert_eq!(decode(&long).3[1], (2, u64::from(u32::MAX)));
    }
}
