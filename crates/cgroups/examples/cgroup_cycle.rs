//! The benchmark cycle of bench/cgroup.sh done through the library: create a
//! group in memory+pids+cpu, set three values, attach a process, read stats,
//! delete (moving the process back to the parent). Runs COUNT cycles.
//!
//! Usage: `cgroup_cycle PARENT PID COUNT` (PARENT: an existing group path,
//! never a hierarchy root; PID: a process already in PARENT).

use std::error::Error;

use corral_cgroups::{Cgroup, Hierarchy};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, parent, pid, count] = args.as_slice() else {
        return Err("usage: cgroup_cycle PARENT PID COUNT".into());
    };
    let pid: i32 = pid.parse()?;
    let count: u32 = count.parse()?;
    let h = Hierarchy::detect()?;
    let ctrls = ["memory", "pids", "cpu"].map(String::from);
    let path = format!("{}/cycle", parent.trim_end_matches('/'));
    for _ in 0..count {
        let cg = Cgroup::with_controllers(&h, &path, &ctrls)?;
        cg.create()?;
        cg.set("memory.limit_in_bytes", "64M")?;
        cg.set("pids.max", "100")?;
        cg.set("cpu.shares", "512")?;
        cg.add_task(pid)?;
        let stats = cg.stats()?;
        if stats.pids_current.is_none() {
            return Err("no pids counter".into());
        }
        cg.remove(true)?;
    }
    Ok(())
}
