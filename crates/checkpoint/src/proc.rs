//! Parsers for the /proc files a dump reads: smaps (mappings and their
//! `VmFlags`), stat (address-space fields), status (signal masks, threads)
//! and fdinfo. Pure functions over text, so they are tested on fixtures and
//! with proptest without a live process.

/// One mapping as /proc/PID/smaps (or maps) shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// First address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// `r`, `w`, `x` as `PROT_*` bits.
    pub prot: u32,
    /// `s` rather than `p`.
    pub shared: bool,
    /// File offset.
    pub offset: u64,
    /// Device `major:minor`, as the kernel encodes it (`makedev`).
    pub dev: u64,
    /// Inode (0 for anonymous memory).
    pub ino: u64,
    /// Path or pseudo-name (`[heap]`), if any.
    pub path: Option<String>,
    /// `VmFlags` (smaps only).
    pub vm_flags: Vec<String>,
}

fn parse_map_header(line: &str) -> Option<MapEntry> {
    let mut rest = line;
    let mut field = || {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (w, r) = t.split_at(end);
        rest = r;
        w
    };
    let range = field();
    let perms = field();
    let offset = field();
    let dev = field();
    let ino = field();
    let (s, e) = range.split_once('-')?;
    let start = u64::from_str_radix(s, 16).ok()?;
    let end = u64::from_str_radix(e, 16).ok()?;
    let p = perms.as_bytes();
    if p.len() != 4 || start > end {
        return None;
    }
    let mut prot = 0;
    if p[0] == b'r' {
        prot |= libc::PROT_READ as u32;
    }
    if p[1] == b'w' {
        prot |= libc::PROT_WRITE as u32;
    }
    if p[2] == b'x' {
        prot |= libc::PROT_EXEC as u32;
    }
    let shared = match p[3] {
        b's' => true,
        b'p' => false,
        _ => return None,
    };
    let offset = u64::from_str_radix(offset, 16).ok()?;
    let (maj, min) = dev.split_once(':')?;
    let maj = u64::from_str_radix(maj, 16).ok()?;
    let min = u64::from_str_radix(min, 16).ok()?;
    let ino = ino.parse().ok()?;
    let path = rest.trim_start_matches(' ');
    Some(MapEntry {
        start,
        end,
        prot,
        shared,
        offset,
        dev: makedev(maj, min),
        ino,
        path: (!path.is_empty()).then(|| path.to_owned()),
        vm_flags: Vec::new(),
    })
}

/// `makedev` as glibc encodes it (matches `st_dev`).
pub fn makedev(maj: u64, min: u64) -> u64 {
    ((maj & 0xffff_f000) << 32) | ((maj & 0xfff) << 8) | ((min & 0xffff_ff00) << 12) | (min & 0xff)
}

/// Parses /proc/PID/smaps or /proc/PID/maps. Lines that are neither a
/// mapping header nor `VmFlags:` (the smaps counters) are skipped; a
/// malformed header is an error naming the line.
pub fn parse_smaps(text: &str) -> Result<Vec<MapEntry>, String> {
    let mut out: Vec<MapEntry> = Vec::new();
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(last) = out.last_mut() {
                last.vm_flags = flags.split_whitespace().map(str::to_owned).collect();
            }
            continue;
        }
        let first = line.split(' ').next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            let e = parse_map_header(line).ok_or_else(|| format!("bad mapping line {line:?}"))?;
            out.push(e);
        }
    }
    Ok(out)
}

/// The address-space fields of /proc/PID/stat (fields 26–28 and 45–51).
#[allow(missing_docs)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatMm {
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// Parses /proc/PID/stat; `comm` may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_stat_mm(text: &str) -> Option<StatMm> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // `f[0]` is field 3 (state).
    let n = |field: usize| -> Option<u64> { f.get(field - 3)?.parse().ok() };
    Some(StatMm {
        start_code: n(26)?,
        end_code: n(27)?,
        start_stack: n(28)?,
        start_data: n(45)?,
        end_data: n(46)?,
        start_brk: n(47)?,
        arg_start: n(48)?,
        arg_end: n(49)?,
        env_start: n(50)?,
        env_end: n(51)?,
    })
}

/// A hex mask or count field of /proc/PID/status (`SigCgt`, `Threads`).
pub fn status_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// `pos` and `flags` (octal) of /proc/PID/fdinfo/N.
pub fn parse_fdinfo(text: &str) -> Option<(u64, u32)> {
    let pos = status_field(text, "pos")?.parse().ok()?;
    let flags = u32::from_str_radix(status_field(text, "flags")?, 8).ok()?;
    Some((pos, flags))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SMAPS: &str = "\
00400000-00401000 r--p 00000000 fe:01 1234                               /usr/bin/probe with space
Size:                  4 kB
VmFlags: rd mr mw me sd
01c2e000-01c50000 rw-p 00000000 00:00 0                                  [heap]
Size:                136 kB
VmFlags: rd wr mr mw me ac sd
7ffd1000-7ffd3000 rw-s 00001000 00:01 99
VmFlags: rd wr sh mr mw me ms sd
";

    #[test]
    fn smaps_gives_mappings_with_flags() {
        let m = parse_smaps(SMAPS).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].path.as_deref(), Some("/usr/bin/probe with space"));
        assert_eq!(m[0].prot, libc::PROT_READ as u32);
        assert_eq!(m[0].dev, makedev(0xfe, 1));
        assert_eq!(m[0].ino, 1234);
        assert_eq!(m[1].path.as_deref(), Some("[heap]"));
        assert_eq!(m[1].vm_flags, ["rd", "wr", "mr", "mw", "me", "ac", "sd"]);
        assert!(m[2].shared);
        assert_eq!(m[2].offset, 0x1000);
        assert_eq!(m[2].path, None);
    }

    #[test]
    fn our_own_smaps_parse() {
        let text = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let m = parse_smaps(&text).unwrap();
        assert!(m.iter().any(|e| e.path.as_deref() == Some("[stack]")));
        assert!(m.iter().all(|e| !e.vm_flags.is_empty()));
    }

    #[test]
    fn stat_fields_count_from_the_last_paren() {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let mm = parse_stat_mm(&text).unwrap();
        assert!(mm.start_code > 0 && mm.start_code < mm.end_code);
        assert!(mm.arg_start < mm.arg_end && mm.env_start < mm.env_end);
        let odd = text.replacen('(', "(a) b (", 1);
        assert_eq!(parse_stat_mm(&odd), Some(mm));
    }

    #[test]
    fn fdinfo_flags_are_octal() {
        assert_eq!(
            parse_fdinfo("pos:\t12\nflags:\t02100002\nmnt_id:\t1\n"),
            Some((12, 0o2100002))
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_smaps(&s);
            let _ = parse_stat_mm(&s);
            let _ = parse_fdinfo(&s);
        }

        #[test]
        fn headers_round_trip(start in 0u64..1 << 47, len in 1u64..1 << 20, off in any::<u32>(), ino in any::<u32>()) {
            let line = format!("{start:x}-{:x} rw-p {off:08x} 08:02 {ino} /x", start + len);
            let m = parse_smaps(&line).unwrap();
            prop_assert_eq!(m[0].start, start);
            prop_assert_eq!(m[0].end, start + len);
            prop_assert_eq!(m[0].offset, u64::from(off));
            prop_assert_eq!(m[0].ino, u64::from(ino));
        }
    }
}
