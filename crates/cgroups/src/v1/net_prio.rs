//! v1 `net_prio` controller: `net_prio.ifpriomap`, the socket priority
//! (`SO_PRIORITY`) of the group's outgoing packets per interface. OCI:
//! `linux.resources.network.priorities` (`[{name, priority}]`). The kernel
//! takes one `IFNAME PRIO` per write and refuses an interface the network
//! namespace of the writer lacks (`ENODEV`). No cgroup v2 counterpart.

use oci_spec::runtime::LinuxInterfacePriority;

use crate::dir::{CgroupDir, FileError};

/// `IFNAMSIZ - 1`: the longest interface name.
const IFNAME_MAX: usize = 15;

/// Whether `name` can be an interface name: 1 to 15 bytes, no whitespace
/// or `/` (it becomes part of a line the kernel splits on spaces).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && !name
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'/' || b == 0)
}

/// Writes one `IFNAME PRIO` line per interface, in the given order. A name
/// that cannot be an interface is refused before anything is written.
pub fn apply(dir: &CgroupDir, prios: &[LinuxInterfacePriority]) -> Result<(), FileError> {
    if let Some(bad) = prios.iter().find(|p| !valid_ifname(p.name())) {
        return Err(FileError::InvalidValue {
            dir: dir.path().to_owned(),
            file: "net_prio.ifpriomap".to_owned(),
            value: format!("{} {}", bad.name(), bad.priority()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    for p in prios {
        let line = format!("{} {}", p.name(), p.priority());
        dir.write("net_prio.ifpriomap", &line)?;
    }
    Ok(())
}

/// Parses `net_prio.ifpriomap`: `IFNAME PRIO` a line.
pub fn parse_ifpriomap(text: &str) -> Option<Vec<(String, u32)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, prio) = l.trim().split_once(' ')?;
            Some((name.to_owned(), prio.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_like_the_kernel() {
        assert!(valid_ifname("lo"));
        assert!(valid_ifname("enp0s31f6"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname("../x"));
        assert!(!valid_ifname("sixteen-chars-xx"));
    }

    #[test]
    fn ifpriomap_parses() {
        let map = parse_ifpriomap("lo 0\neth0 5\n").unwrap();
        assert_eq!(map, [("lo".to_owned(), 0), ("eth0".to_owned(), 5)]);
        assert_eq!(parse_ifpriomap("lo x\n"), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = parse_ifpriomap(&text);
        }
    }
}
