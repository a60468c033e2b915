//! Root-only test of [`corral_cgroups::Metrics`]: a busy loop under a CPU
//! quota is throttled, and the counters the kernel keeps for it show up in
//! runc's `events --stats` shape. Runs on this host (v1 + PSI in the unified
//! directory) and in the v2 lane.

#![allow(clippy::unwrap_used)] // a panic is the test failing

mod common;

use std::{
    io::{BufRead, Write},
    time::Duration,
};

use common::{TestCgroup, TestChild};
use corral_cgroups::Layout;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

const MIB: u64 = 1024 * 1024;

#[test]
#[ignore = "needs root"]
fn a_throttled_busy_loop_shows_in_the_metrics() {
    let t = TestCgroup::new("metrics", true);
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .quota(10_000i64) // 10 ms per 100 ms: throttled 9 periods in 10
                .period(100_000u64)
                .build()
                .unwrap(),
        )
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 * MIB as i64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(42).build().unwrap())
        .build()
        .unwrap();
    t.cg.apply(&r).unwrap();
    let before = t.cg.metrics().unwrap();
    assert_eq!(before.cpu.throttling.throttled_periods, 0);

    // Charged to the cgroup only once moved: 1 MB in a shell variable.
    // Under the 10% quota (and in the emulated VM) that takes a while: the
    // script says when it holds the memory, then spins.
    let script =
        "read _; x=$(head -c 1000000 /dev/zero | tr '\\0' a); echo ready; while :; do :; done";
    let mut spin = TestChild::shell(script);
    t.cg.add_task(spin.pid()).unwrap();
    spin.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut line = String::new();
    spin.stdout.as_mut().unwrap().read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // From here on only the busy loop runs: compare two samples 700 ms apart.
    let m0 = t.cg.metrics().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let m = t.cg.metrics().unwrap();
    drop(spin);

    let (th, th0) = (&m.cpu.throttling, &m0.cpu.throttling);
    assert!(th.periods >= th0.periods + 3, "{th0:?} -> {th:?}");
    assert!(
        th.throttled_periods >= th0.throttled_periods + 2,
        "{th0:?} -> {th:?}"
    );
    assert!(
        th.throttled_time >= th0.throttled_time + 10_000_000,
        "throttled < 10 ms more: {th0:?} -> {th:?}"
    );
    let u = &m.cpu.usage;
    let used = u.total - m0.cpu.usage.total;
    assert!(used >= 10_000_000, "{used} ns in 700 ms: {u:?}");
    // Throttled to 10%: well under the 700 ms of wall time.
    assert!(
        used < 300_000_000,
        "quota not enforced? {used} ns in 700 ms"
    );
    assert!(u.user > 0 || u.kernel > 0, "{u:?}");
    if t.layout() != Layout::V2 {
        assert!(!u.percpu.is_empty(), "cpuacct.usage_percpu: {u:?}");
    }

    assert_eq!(m.memory.usage.limit, 64 * MIB);
    assert!(m.memory.usage.usage > 1_000_000, "{:?}", m.memory.usage);
    let cache_key = if t.layout() == Layout::V2 {
        "file"
    } else {
        "cache"
    };
    assert!(m.memory.raw.contains_key(cache_key), "{:?}", m.memory.raw);
    assert_eq!(m.pids.limit, 42);
    assert!(m.pids.current >= 1);

    // PSI comes from the unified directory, which this host has too.
    let psi = m.cpu.psi.expect("cpu.pressure");
    assert!(psi.some.avg10 >= 0.0);
    assert!(m.memory.psi.is_some() && m.blkio.psi.is_some());

    let json = serde_json::to_value(t.cg.metrics().unwrap()).unwrap();
    assert!(
        json["cpu"]["throttling"]["throttled_periods"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert_eq!(json["memory"]["usage"]["limit"], 64 * MIB);
    assert!(json["cpu"]["psi"]["some"]["avg10"].is_f64());
}
