//! The kernel's floor for the benchmark cycle of bench/cgroup.sh: the same
//! cycle as `cgroup_cycle` (create a group in memory+pids+cpu, set three
//! values, attach a process, read stats, delete moving the process back),
//! done as bare syscalls on v1 hierarchies with no library, no path
//! resolution, no checks and no error messages. What it takes per cycle is
//! what the kernel takes; no library can be faster, so cgroup-tools' time
//! over this one is the best ratio any library can reach on the host.
//!
//! Usage: `cgroup_floor PARENT PID COUNT` (as `cgroup_cycle`; PARENT must
//! exist below /sys/fs/cgroup/{memory,pids,cpu}, PID must be in it).

use std::{error::Error, os::fd::OwnedFd};

use rustix::fs::{mkdirat, openat, unlinkat, AtFlags, Mode, OFlags};

/// One v1 hierarchy: the file set by the cycle, the file read back.
const HIERARCHIES: [(&str, &str, &str, &str); 3] = [
    (
        "memory",
        "memory.limit_in_bytes",
        "64M",
        "memory.usage_in_bytes",
    ),
    ("pids", "pids.max", "100", "pids.current"),
    ("cpu", "cpu.shares", "512", "cpu.shares"),
];

fn write(dir: &OwnedFd, file: &str, value: &str) -> rustix::io::Result<()> {
    let fd = openat(dir, file, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::write(&fd, value.as_bytes()).map(drop)
}

fn read(dir: &OwnedFd, file: &str) -> rustix::io::Result<usize> {
    let fd = openat(dir, file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::read(&fd, &mut [0u8; 64])
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, parent, pid, count] = args.as_slice() else {
        return Err("usage: cgroup_floor PARENT PID COUNT".into());
    };
    let count: u32 = count.parse()?;
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let parents = HIERARCHIES
        .iter()
        .map(|(c, ..)| {
            let path = format!("/sys/fs/cgroup/{c}/{}", parent.trim_matches('/'));
            openat(rustix::fs::CWD, path, dir_flags, Mode::empty())
        })
        .collect::<Result<Vec<_>, _>>()?;
    for _ in 0..count {
        let mut dirs = Vec::with_capacity(3);
        for p in &parents {
            mkdirat(p, "cycle", Mode::from_raw_mode(0o755))?;
            dirs.push(openat(p, "cycle", dir_flags, Mode::empty())?);
        }
        for (d, (_, file, value, _)) in dirs.iter().zip(HIERARCHIES) {
            write(d, file, value)?;
        }
        for d in &dirs {
            write(d, "cgroup.procs", pid)?;
        }
        for (d, (.., stat)) in dirs.iter().zip(HIERARCHIES) {
            read(d, stat)?;
        }
        for (p, d) in parents.iter().zip(dirs) {
            write(p, "cgroup.procs", pid)?;
            drop(d);
            unlinkat(p, "cycle", AtFlags::REMOVEDIR)?;
        }
    }
    Ok(())
}
