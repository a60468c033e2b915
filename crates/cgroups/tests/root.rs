//! Root-only tests against the real kernel: on the development host
//! (hybrid: v1 controllers + an empty unified hierarchy) and, through
//! `v2-lane.sh`, on pure cgroup v2 in a VM. Each test makes its own
//! `corral-test-…` cgroup and destroys it in a guard, so nothing is left even
//! when an assertion fails; most tests also check that explicitly.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

mod common;

use std::{collections::HashMap, os::unix::process::ExitStatusExt, time::Instant};

use common::{block_device, in_vm, TestCgroup, TestChild};
use corral_cgroups::{Cgroup, Error, Hierarchy, Layout};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};

const MIB: i64 = 1024 * 1024;

fn assert_gone(cg: &Cgroup) {
    for p in cg.paths() {
        assert!(!p.exists(), "{} still exists", p.display());
    }
    assert!(!cg.exists());
}

#[test]
#[ignore = "needs root"]
fn detect_matches_the_machine() {
    let h = Hierarchy::detect().unwrap();
    if in_vm() {
        assert_eq!(h.layout(), Layout::V2);
        assert!(h
            .unified()
            .unwrap()
            .subtree_control
            .iter()
            .any(|c| c == "memory"));
    } else {
        assert_eq!(h.layout(), Layout::Hybrid);
        assert!(h.v1_mounts().iter().any(|m| m.controllers == ["cpu"]));
        assert!(h.v1_mounts().iter().any(|m| m.controllers == ["cpuacct"]));
    }
}

#[test]
#[ignore = "needs root"]
fn limits_are_written_and_read_back() {
    let t = TestCgroup::new("limits", true);
    let mut blkio = LinuxBlockIoBuilder::default();
    let disk = block_device();
    if let Some((major, minor)) = disk {
        let throttle = LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(MIB as u64)
            .build()
            .unwrap();
        blkio = blkio.throttle_read_bps_device(vec![throttle]);
    }
    let r: LinuxResources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 * MIB)
                .swap(128 * MIB)
                .reservation(32 * MIB)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(42).build().unwrap())
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .block_io(blkio.build().unwrap())
        .build()
        .unwrap();
    t.cg.apply(&r).unwrap();

    assert_eq!(t.read("pids.max"), "42");
    assert_eq!(t.read("cpuset.cpus"), "0");
    assert_eq!(t.read("cpuset.mems"), "0");
    if t.layout() == Layout::V2 {
        assert_eq!(t.read("memory.max"), (64 * MIB).to_string());
        assert_eq!(
            t.read("memory.swap.max"),
            (64 * MIB).to_string(),
            "swap.max = swap - limit"
        );
        assert_eq!(t.read("memory.low"), (32 * MIB).to_string());
        assert_eq!(
            t.read("cpu.weight"),
            "59",
            "crun's conversion of 512 shares"
        );
        assert_eq!(t.read("cpu.max"), "50000 100000");
    } else {
        assert_eq!(t.read("memory.limit_in_bytes"), (64 * MIB).to_string());
        assert_eq!(
            t.read("memory.memsw.limit_in_bytes"),
            (128 * MIB).to_string()
        );
        assert_eq!(t.read("memory.soft_limit_in_bytes"), (32 * MIB).to_string());
        assert_eq!(t.read("cpu.shares"), "512");
        assert_eq!(t.read("cpu.cfs_quota_us"), "50000");
        assert_eq!(t.read("cpu.cfs_period_us"), "100000");
    }
    match disk {
        Some((major, minor)) if t.layout() == Layout::V2 => {
            assert!(
                t.read("io.max")
                    .contains(&format!("{major}:{minor} rbps=1048576")),
                "{}",
                t.read("io.max")
            );
        }
        Some((major, minor)) => {
            assert!(t
                .read("blkio.throttle.read_bps_device")
                .contains(&format!("{major}:{minor} 1048576")));
        }
        None => assert!(in_vm(), "only the VM has no block device"),
    }

    // Growing memory above the old memsw needs memsw first on v1: re-apply.
    let bigger = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(256 * MIB)
                .swap(512 * MIB)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    t.cg.apply(&bigger).unwrap();
    let limit_file = if t.layout() == Layout::V2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(t.read(limit_file), (256 * MIB).to_string());

    let stats = t.cg.stats().unwrap();
    assert_eq!(stats.pids_limit, Some(42));
    assert_eq!(stats.pids_current, Some(0));
    assert_eq!(stats.memory_limit, Some(256 * MIB as u64));
    assert!(stats.cpu_usage_ns.is_some());

    let cg = t.cg.clone();
    drop(t);
    assert_gone(&cg);
}

#[test]
#[ignore = "needs root"]
fn bad_values_name_the_cgroup_the_file_and_the_value() {
    let t = TestCgroup::new("bad", true);
    let r = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().cpus("banana").build().unwrap())
        .build()
        .unwrap();
    let err = t.cg.apply(&r).unwrap_err();
    let dir = t.dir_with("cpuset.cpus").unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "cpuset.cpus: invalid value \"banana\" in cgroup {}",
            dir.display()
        )
    );
    let source = std::error::Error::source(&err).unwrap();
    let io = source.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.raw_os_error(), Some(libc::EINVAL));

    if t.layout() == Layout::V2 {
        let unified = HashMap::from([("pids.max".to_owned(), "banana".to_owned())]);
        let r = LinuxResourcesBuilder::default()
            .unified(unified)
            .build()
            .unwrap();
        let err = t.cg.apply(&r).unwrap_err().to_string();
        assert!(
            err.starts_with("pids.max: invalid value \"banana\" in cgroup /"),
            "{err}"
        );
        let evil = HashMap::from([("../cgroup.procs".to_owned(), "1".to_owned())]);
        let r = LinuxResourcesBuilder::default()
            .unified(evil)
            .build()
            .unwrap();
        assert!(matches!(t.cg.apply(&r), Err(Error::UnifiedKey { .. })));
    }
}

#[test]
#[ignore = "needs root"]
fn hugetlb_applies_where_available_and_is_refused_where_not() {
    let t = TestCgroup::new("hugetlb", true);
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4 * MIB)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    let result = t.cg.apply(&r);
    if t.layout() == Layout::V2 {
        result.unwrap();
        assert_eq!(t.read("hugetlb.2MB.max"), (4 * MIB).to_string());
    } else {
        // The host's hugetlb is in the unified hierarchy, whose root enables
        // nothing for its children, and we never write a root cgroup.
        let err = result.unwrap_err();
        assert!(matches!(err, Error::ControllerUnavailable { .. }), "{err}");
    }
}

#[test]
#[ignore = "needs root"]
fn a_child_joins_freezes_and_dies_with_destroy() {
    let t = TestCgroup::new("child", false);
    let mut child = TestChild::sleep();
    let pid = child.pid();
    t.cg.add_task(pid).unwrap();

    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let name = t.cg.cgroups_path().to_owned();
    for line in proc_cgroup.lines() {
        if line.contains("name=") {
            continue; // named hierarchies are not ours
        }
        assert!(
            line.ends_with(&format!("/{name}")),
            "{line} in\n{proc_cgroup}"
        );
    }
    assert_eq!(t.cg.pids().unwrap(), [pid]);
    assert_eq!(t.cg.stats().unwrap().pids_current, Some(1));
    assert!(t.cg.stats().unwrap().memory_usage.is_some());

    t.cg.freeze().unwrap();
    assert!(t.cg.is_frozen().unwrap());
    if t.layout() == Layout::V2 {
        assert!(t.read("cgroup.events").contains("frozen 1"));
    } else {
        assert_eq!(t.read("freezer.state"), "FROZEN");
    }
    t.cg.thaw().unwrap();
    assert!(!t.cg.is_frozen().unwrap());

    // Destroy a frozen cgroup: it has to thaw to let SIGKILL in (v1).
    t.cg.freeze().unwrap();
    let started = Instant::now();
    t.cg.destroy().unwrap();
    eprintln!("destroy with a frozen child: {:?}", started.elapsed());
    assert_gone(&t.cg);
    let status = child.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

/// utime of `pid` in clock ticks (field 14 of /proc/PID/stat, counted
/// after the `)` that closes the command name).
fn utime(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(11).unwrap().parse().unwrap()
}

/// utime growth of `pid` over `ms` milliseconds.
fn utime_growth(pid: i32, ms: u64) -> u64 {
    let before = utime(pid);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    utime(pid) - before
}

#[test]
#[ignore = "needs root"]
fn a_frozen_cgroup_stops_consuming_cpu_and_resumes_when_thawed() {
    let t = TestCgroup::new("frozen-cpu", true);
    let mut spin = TestChild::shell("read _; while :; do :; done");
    let pid = spin.pid();
    t.cg.add_task(pid).unwrap();
    std::io::Write::write_all(&mut spin.stdin.take().unwrap(), b"go\n").unwrap();
    // 300 ms of a busy loop is ~30 ticks at USER_HZ 100, even on a loaded
    // machine well above the 2 asserted.
    let running = utime_growth(pid, 300);
    assert!(running >= 2, "the busy loop did not run: {running} ticks");

    t.cg.freeze().unwrap();
    // v2 reports "frozen 1" as the task enters the freezer trap, a moment
    // before it is off the CPU: the last microseconds can still carry utime
    // over a tick boundary (seen once in the VM). Let that settle first.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let frozen = utime_growth(pid, 300);
    assert_eq!(frozen, 0, "a frozen task used {frozen} ticks of CPU");

    t.cg.thaw().unwrap();
    let thawed = utime_growth(pid, 300);
    assert!(
        thawed >= 2,
        "the thawed loop did not run again: {thawed} ticks"
    );
}

#[test]
#[ignore = "needs root"]
fn kill_all_sends_the_signal_to_every_process() {
    let t = TestCgroup::new("kill", true);
    let mut a = TestChild::sleep();
    let mut b = TestChild::sleep();
    t.cg.add_task(a.pid()).unwrap();
    t.cg.add_task(b.pid()).unwrap();
    t.cg.kill_all(libc::SIGTERM).unwrap();
    assert_eq!(a.child.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(b.child.wait().unwrap().signal(), Some(libc::SIGTERM));

    let mut c = TestChild::sleep();
    t.cg.add_task(c.pid()).unwrap();
    t.cg.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(c.child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
#[ignore = "needs root"]
fn destroy_removes_child_cgroups_and_tolerates_absence() {
    let t = TestCgroup::new("nested", true);
    for p in t.cg.paths() {
        std::fs::create_dir_all(p.join("sub/deeper")).unwrap();
    }
    // A process in a child cgroup of the unified (or memory) hierarchy.
    let child = TestChild::sleep();
    let sub = t
        .dir_with("memory.stat")
        .unwrap_or_else(|| t.cg.paths()[0].clone())
        .join("sub/deeper");
    std::fs::write(sub.join("cgroup.procs"), child.pid().to_string()).unwrap();
    t.cg.destroy().unwrap();
    assert_gone(&t.cg);
    t.cg.destroy().unwrap(); // absent directories are fine
    drop(child);
}

#[test]
#[ignore = "needs root"]
fn a_cgroup_reloaded_from_json_destroys_the_same_directories() {
    let t = TestCgroup::new("json", false);
    let json = serde_json::to_string(&t.cg).unwrap();
    let again: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(again.paths(), t.cg.paths());
    assert!(again.exists());
    again.destroy().unwrap();
    assert_gone(&t.cg);
}

fn device_rules(allow_zero: bool) -> LinuxResources {
    let mut rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap(),
    ];
    if allow_zero {
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(5)
                .access("r")
                .build()
                .unwrap(),
        );
    }
    LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .unwrap()
}

const DEVICE_PROBE: &str = "read _; \
    if head -c1 /dev/zero >/dev/null 2>&1; then echo zero-ok; else echo zero-denied; fi; \
    if echo x >/dev/null; then echo null-ok; fi";

#[test]
#[ignore = "needs root"]
fn device_rules_allow_and_deny_and_reapply_replaces() {
    let t = TestCgroup::new("devices", true);
    t.cg.apply(&device_rules(false)).unwrap();
    let mut probe = TestChild::shell(DEVICE_PROBE);
    t.cg.add_task(probe.pid()).unwrap();
    assert_eq!(probe.go_and_collect(), "zero-denied\nnull-ok\n");

    t.cg.apply(&device_rules(true)).unwrap();
    let mut probe = TestChild::shell(DEVICE_PROBE);
    t.cg.add_task(probe.pid()).unwrap();
    assert_eq!(probe.go_and_collect(), "zero-ok\nnull-ok\n");
    if t.layout() == Layout::V2 {
        assert_eq!(
            t.cg.attached_device_programs().unwrap(),
            1,
            "re-apply replaces, not adds"
        );
    } else {
        assert_eq!(t.read("devices.list"), "c 1:3 rwm\nc 1:5 r");
    }
}

#[test]
#[ignore = "needs root"]
fn new_create_apply_add_task_and_destroy_in_one_go() {
    let h = Hierarchy::detect().unwrap();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 * MIB)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(100).build().unwrap())
        .cpu(LinuxCpuBuilder::default().shares(1024u64).build().unwrap())
        .build()
        .unwrap();
    let mut child = TestChild::sleep();
    let name = format!("/{}", common::unique_name("fast"));
    // The runtime's hot path, end to end (its speed is bench/cgroup.sh's
    // business, not a timed test's).
    let cg = Cgroup::new(&h, &name).unwrap();
    let guard = scopeguard(cg.clone());
    cg.create().unwrap();
    cg.apply(&r).unwrap();
    cg.add_task(child.pid()).unwrap();
    assert!(cg.pids().unwrap().contains(&child.pid()));
    cg.destroy().unwrap();
    drop(guard);
    assert_eq!(child.child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_gone(&cg);
}

/// Destroys on drop (for tests that drive `Cgroup` by hand).
struct DestroyOnDrop(Cgroup);

impl Drop for DestroyOnDrop {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

fn scopeguard(cg: Cgroup) -> DestroyOnDrop {
    DestroyOnDrop(cg)
}
