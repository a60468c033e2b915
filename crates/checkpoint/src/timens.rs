//! Time namespaces: CLOCK_MONOTONIC and CLOCK_BOOTTIME of a tree that has
//! its own, kept continuous across a dump and restore.
//!
//! A time namespace shifts those two clocks by fixed offsets
//! (/proc/PID/timens_offsets), relative to the clocks of the initial time
//! namespace: the host's. Brought back anywhere else, a process in one
//! would see its clocks jump: back by the offsets in the host's namespace,
//! forward by the downtime in a namespace with the same offsets.
//!
//! Dump ([`dump`]): when the tree is in a time namespace other than the
//! dumper's, the image records both clocks as the tree saw them while it
//! was stopped (the host's clocks plus the namespace's offsets). Every
//! thread of every process must be in that one namespace and have it for
//! its children too (`unshare(CLONE_NEWTIME)` without entering the new
//! one): anything else is refused by name. A tree in the dumper's own time
//! namespace records nothing and is restored into the restorer's, as CRIU
//! does: its clocks are the host's and move with them.
//!
//! Restore: a new time namespace whose offsets are, per clock, the dumped
//! reading minus the host's reading now ([`Offsets::now`]), so the clocks
//! go on from where the dump stopped them: neither the downtime nor another
//! host's uptime shows, and they never go back. They do move on by what
//! the restore itself takes, from the moment the offsets are computed
//! (just before the root is made) to the resume. The kernel takes offsets
//! only while no task is in the namespace, and `unshare(CLONE_NEWTIME)`
//! moves only the children made afterwards, so the namespace is made and
//! filled before the root exists:
//!
//! - a bare restore ([`fork_root`]): a helper child of the restorer
//!   unshares, writes its offsets and makes the root with `CLONE_PARENT`,
//!   our child to trace and reap (`sys::fork_traced_child_in_new_timens`).
//!   The restorer's own namespaces never change: a threaded restorer (a
//!   test harness) could not write its own offsets (/proc/self is the
//!   thread group leader, and no per-thread file exists) nor go back to
//!   its namespace afterwards (`setns` of a time namespace wants a single
//!   thread: EUSERS);
//! - a container: the runtime's init, single-threaded, computes
//!   [`Offsets::now`], unshares, writes them and enters with `setns`
//!   before the image replaces it; [`check_prepared`] makes sure it did.
//!
//! Every other process of the tree is made by its parent and lands in the
//! same namespace.
//!
//! vdso: in a time namespace other than the initial one the kernel maps a
//! namespace page where the vvar data page was (the vdso reads the offsets
//! there and the clock data one page further). The restore moves the
//! root's own `[vvar]`, `[vvar_vclock]` and `[vdso]`, made in its
//! namespace, to the dumped addresses with their layout (trap 1), so
//! `clock_gettime` through the vdso and the raw syscall agree
//! (tests/probes/timens.c checks both).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::collect::{unsupported, DumpError};
use crate::restore::RestoreError;
use crate::sys;

/// A clock reading or offset: seconds and nanoseconds (0 to 999999999),
/// as a `timespec`.
pub type Timespec = [i64; 2];

const NSEC_PER_SEC: i128 = 1_000_000_000;

/// The clocks of a tree that had its own time namespace, as it saw them at
/// the dump (the image's `time_ns`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeNsClocks {
    /// CLOCK_MONOTONIC in the tree's namespace.
    pub monotonic: Timespec,
    /// CLOCK_BOOTTIME in the tree's namespace.
    pub boottime: Timespec,
}

impl TimeNsClocks {
    /// Checks both readings: seconds from 0 (a namespace clock the kernel
    /// lets exist is never negative), nanoseconds below one second.
    pub fn validate(&self) -> Result<(), String> {
        for (name, [s, ns]) in [("monotonic", self.monotonic), ("boottime", self.boottime)] {
            if s < 0 || !(0..NSEC_PER_SEC as i64).contains(&ns) {
                return Err(format!(
                    "time_ns.{name}: [{s}, {ns}] is not a clock reading"
                ));
            }
        }
        Ok(())
    }
}

/// Offsets of a time namespace, per clock, relative to the host's clocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// CLOCK_MONOTONIC's.
    pub monotonic: Timespec,
    /// CLOCK_BOOTTIME's.
    pub boottime: Timespec,
}

impl Offsets {
    /// The offsets that make a namespace's clocks read `clocks` now: the
    /// dumped readings minus the host's readings. Computed in the time
    /// namespace the new one is made from (the caller's, which must be its
    /// own for children too: the host's readings are ours minus our
    /// offsets).
    pub fn now(clocks: &TimeNsClocks) -> io::Result<Offsets> {
        let host = host_clocks()?;
        Ok(Offsets {
            monotonic: sub(clocks.monotonic, host.monotonic)?,
            boottime: sub(clocks.boottime, host.boottime)?,
        })
    }

    /// The text /proc/PID/timens_offsets takes: one line per clock, seconds
    /// (possibly negative) and nanoseconds.
    pub fn to_proc_text(&self) -> String {
        format!(
            "monotonic {} {}\nboottime {} {}\n",
            self.monotonic[0], self.monotonic[1], self.boottime[0], self.boottime[1]
        )
    }

    /// Parses /proc/PID/timens_offsets (`monotonic S N` and `boottime S N`
    /// lines, blanks between; clock numbers 1 and 7 are taken too).
    pub fn parse(text: &str) -> Option<Offsets> {
        let mut out = Offsets::default();
        let (mut mono, mut boot) = (false, false);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let (clock, s, ns) = (words.next()?, words.next()?, words.next()?);
            if words.next().is_some() {
                return None;
            }
            let value: Timespec = [s.parse().ok()?, ns.parse().ok()?];
            if !(0..NSEC_PER_SEC as i64).contains(&value[1]) {
                return None;
            }
            match clock {
                "monotonic" | "1" if !mono => (out.monotonic, mono) = (value, true),
                "boottime" | "7" if !boot => (out.boottime, boot) = (value, true),
                _ => return None,
            }
        }
        (mono && boot).then_some(out)
    }
}

fn nanos([s, ns]: Timespec) -> i128 {
    i128::from(s) * NSEC_PER_SEC + i128::from(ns)
}

fn timespec(n: i128) -> io::Result<Timespec> {
    let s = i64::try_from(n.div_euclid(NSEC_PER_SEC))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "clock out of range"))?;
    let ns = i64::try_from(n.rem_euclid(NSEC_PER_SEC)).expect("below one second");
    Ok([s, ns])
}

fn add(a: Timespec, b: Timespec) -> io::Result<Timespec> {
    timespec(nanos(a) + nanos(b))
}

fn sub(a: Timespec, b: Timespec) -> io::Result<Timespec> {
    timespec(nanos(a) - nanos(b))
}

/// Our own CLOCK_MONOTONIC and CLOCK_BOOTTIME.
fn own_clocks() -> io::Result<TimeNsClocks> {
    // Both clocks are never negative: the kernel refuses offsets that
    // would make them so.
    let read = |id| sys::clock_gettime(id).map(|(s, ns)| [s as i64, ns as i64]);
    Ok(TimeNsClocks {
        monotonic: read(libc::CLOCK_MONOTONIC)?,
        boottime: read(libc::CLOCK_BOOTTIME)?,
    })
}

/// The host's (initial time namespace's) clocks now: ours minus the
/// offsets of our namespace.
fn host_clocks() -> io::Result<TimeNsClocks> {
    // /proc/self/timens_offsets shows the namespace the thread group
    // leader gives its children: ours, unless someone unshared one.
    let (ours, leaders) = (
        ns_id("/proc/thread-self/ns/time")?,
        ns_id("/proc/self/ns/time_for_children")?,
    );
    if ours != leaders {
        return Err(io::Error::other(
            "our thread group makes its children in another time namespace than ours; \
             our own offsets are not readable",
        ));
    }
    let path = "/proc/self/timens_offsets";
    let text = fs::read_to_string(path)?;
    let off = Offsets::parse(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {text:?}")))?;
    let own = own_clocks()?;
    Ok(TimeNsClocks {
        monotonic: sub(own.monotonic, off.monotonic)?,
        boottime: sub(own.boottime, off.boottime)?,
    })
}

/// A namespace, as the device and inode of its /proc link.
fn ns_id(path: &str) -> io::Result<(u64, u64)> {
    fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

/// Reads which time namespace the tree is in, from every thread of every
/// process (`procs`: pid and tids, the root first), all stopped. `None`
/// when it is the dumper's; else the tree's clocks now, which, the tree
/// being stopped, are the last it saw. Refuses, by pid, threads in another
/// namespace than the root's, or whose children would be made in another.
pub(crate) fn dump(procs: &[(i32, Vec<i32>)]) -> Result<Option<TimeNsClocks>, DumpError> {
    let Some((root, _)) = procs.first() else {
        return Ok(None);
    };
    let root = *root;
    let link = |pid: i32, tid: i32, name: &str| {
        let path = PathBuf::from(format!("/proc/{pid}/task/{tid}/ns/{name}"));
        fs::metadata(&path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|source| DumpError::Proc { pid, path, source })
    };
    let tree_ns = link(root, root, "time")?;
    for (pid, tids) in procs {
        for &tid in tids {
            let who = if tid == *pid {
                String::new()
            } else {
                format!("thread {tid}: ")
            };
            if link(*pid, tid, "time")? != tree_ns {
                let what = format!("{who}in another time namespace than the root {root}");
                return Err(unsupported(*pid, None, what));
            }
            if link(*pid, tid, "time_for_children")? != tree_ns {
                let what = format!(
                    "{who}makes its children in another time namespace than its own \
                     (unshare(CLONE_NEWTIME) without entering it)"
                );
                return Err(unsupported(*pid, None, what));
            }
        }
    }
    let ours = ns_id("/proc/thread-self/ns/time").map_err(|source| DumpError::Proc {
        pid: std::process::id() as i32,
        path: "/proc/thread-self/ns/time".into(),
        source,
    })?;
    if ours == tree_ns {
        return Ok(None);
    }
    let path = PathBuf::from(format!("/proc/{root}/timens_offsets"));
    let proc_err = |source| DumpError::Proc {
        pid: root,
        path: path.clone(),
        source,
    };
    let text = fs::read_to_string(&path).map_err(proc_err)?;
    let off = Offsets::parse(&text)
        .ok_or_else(|| proc_err(io::Error::new(io::ErrorKind::InvalidData, text.clone())))?;
    let host = host_clocks().map_err(|source| DumpError::Proc {
        pid: std::process::id() as i32,
        path: "/proc/self/timens_offsets".into(),
        source,
    })?;
    let clocks = (|| {
        Ok::<_, io::Error>(TimeNsClocks {
            monotonic: add(host.monotonic, off.monotonic)?,
            boottime: add(host.boottime, off.boottime)?,
        })
    })()
    .map_err(proc_err)?;
    tracing::debug!(pid = root, ?clocks, ?off, "time namespace of the tree");
    Ok(Some(clocks))
}

/// Makes the root of a restored tree, as [`crate::restore::fork_root`]
/// does, in a new time namespace whose clocks go on from `clocks`.
pub(crate) fn fork_root(pid: i32, clocks: &TimeNsClocks) -> Result<i32, RestoreError> {
    let offsets = Offsets::now(clocks).map_err(RestoreError::trace(
        pid,
        "compute the offsets of its time namespace",
    ))?;
    let text = offsets.to_proc_text();
    tracing::debug!(pid, ?clocks, ?offsets, "new time namespace");
    let child = sys::fork_traced_child_in_new_timens(Some(pid), text.as_bytes()).map_err(
        |(step, e)| match (step, e.raw_os_error()) {
            (sys::TimensStep::Clone, Some(libc::EEXIST)) => RestoreError::PidInUse(pid),
            _ => RestoreError::Trace {
                pid,
                op: format!("{} (restoring its time namespace)", step.what()),
                source: e,
            },
        },
    )?;
    Ok(child.pid)
}

/// Checks that the task a container runtime prepared (`pid`) is in a time
/// namespace of its own when the image says the tree had one (the runtime
/// made it from [`Offsets::now`]): else its clocks would jump.
pub(crate) fn check_prepared(pid: i32, clocks: Option<&TimeNsClocks>) -> Result<(), RestoreError> {
    if clocks.is_none() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/ns/time");
    let theirs = ns_id(&path).map_err(RestoreError::trace(pid, format!("read {path}")))?;
    let ours = ns_id("/proc/thread-self/ns/time")
        .map_err(RestoreError::trace(pid, "read /proc/thread-self/ns/time"))?;
    if theirs == ours {
        return Err(RestoreError::Unsupported(format!(
            "pid {pid}: the image's processes had their own time namespace, \
             the prepared task is in the restorer's"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn offsets_text_never_panics(text in ".{0,200}") {
            let _ = Offsets::parse(&text);
        }

        #[test]
        fn offsets_round_trip(ms in any::<i64>(), mn in 0..NSEC_PER_SEC as i64, bs in any::<i64>(), bn in 0..NSEC_PER_SEC as i64) {
            let off = Offsets { monotonic: [ms, mn], boottime: [bs, bn] };
            prop_assert_eq!(Offsets::parse(&off.to_proc_text()), Some(off));
        }

        #[test]
        fn subtraction_undoes_addition(a in any::<i64>(), an in 0..NSEC_PER_SEC as i64, b in -(1i64 << 40)..(1i64 << 40), bn in 0..NSEC_PER_SEC as i64) {
            if let Ok(sum) = add([a, an], [b, bn]) {
                prop_assert_eq!(sub(sum, [b, bn]).unwrap(), [a, an]);
                prop_assert!((0..NSEC_PER_SEC as i64).contains(&sum[1]));
            }
        }
    }

    #[test]
    fn offsets_parse_as_the_kernel_prints_them() {
        let text = "monotonic      100000         0\nboottime      -200000     12345\n";
        let off = Offsets::parse(text).unwrap();
        assert_eq!(off.monotonic, [100000, 0]);
        assert_eq!(off.boottime, [-200000, 12345]);
        assert_eq!(Offsets::parse(&off.to_proc_text()), Some(off));
        assert_eq!(Offsets::parse("monotonic 1 0\n"), None);
        assert_eq!(
            Offsets::parse("monotonic 1 0\nboottime 1 1000000000\n"),
            None
        );
        assert_eq!(Offsets::parse("monotonic 1 0\nmonotonic 1 0\n"), None);
    }

    #[test]
    fn arithmetic_keeps_nanoseconds_in_range() {
        assert_eq!(sub([5, 100], [7, 200]).unwrap(), [-3, 999_999_900]);
        assert_eq!(add([-3, 999_999_900], [7, 200]).unwrap(), [5, 100]);
        assert_eq!(
            add([1, 600_000_000], [0, 600_000_000]).unwrap(),
            [2, 200_000_000]
        );
    }

    #[test]
    fn the_offsets_now_make_the_clocks_read_the_dumped_values() {
        // In our own namespace, offsets that read like our clocks are ~0.
        let own = own_clocks().unwrap();
        let off = Offsets::now(&own).unwrap();
        let ours =
            Offsets::parse(&fs::read_to_string("/proc/self/timens_offsets").unwrap()).unwrap();
        for (got, base) in [
            (off.monotonic, ours.monotonic),
            (off.boottime, ours.boottime),
        ] {
            let d = nanos(got) - nanos(base);
            assert!((-NSEC_PER_SEC / 10..=0).contains(&d), "{got:?} vs {base:?}");
        }
    }

    #[test]
    fn clocks_are_validated() {
        let ok = TimeNsClocks {
            monotonic: [1, 2],
            boottime: [3, 4],
        };
        ok.validate().unwrap();
        let bad = TimeNsClocks {
            monotonic: [-1, 0],
            ..ok
        };
        assert!(bad.validate().is_err());
        let bad = TimeNsClocks {
            boottime: [1, 1_000_000_000],
            ..ok
        };
        assert!(bad.validate().is_err());
    }
}
