//! cgroup v2: one unified hierarchy; each file here writes the part of
//! `LinuxResources` one controller owns, converting v1-shaped OCI values
//! (shares, blkio weights, memory+swap) the way runc and crun do.

pub mod cpu;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod io;
pub mod memory;
pub mod pids;

/// `max` for a negative limit (OCI's -1 for "unlimited"), else the number.
pub fn max_or(value: i64) -> String {
    if value < 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

/// Parses a `max`-or-number file (`memory.max`, `pids.max`): `None` is max.
pub fn parse_max(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// The value of `key` in a flat keyed file (`cpu.stat`, `cgroup.events`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_values() {
        assert_eq!(max_or(-1), "max");
        assert_eq!(max_or(0), "0");
        assert_eq!(parse_max("max\n"), Some(None));
        assert_eq!(parse_max("42\n"), Some(Some(42)));
        assert_eq!(parse_max("x"), None);
    }

    #[test]
    fn keyed_files() {
        let t = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(keyed(t, "usage_usec"), Some(1234));
        assert_eq!(keyed(t, "system_usec"), Some(234));
        assert_eq!(keyed(t, "nope"), None);
        assert_eq!(keyed("populated 0\nfrozen 1\n", "frozen"), Some(1));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*", key in "[a-z_]{0,10}") {
            let _ = parse_max(&text);
            let _ = keyed(&text, &key);
        }
    }
}
