//! Root-only tests of [`corral_cgroups::events`] against the real kernel: a
//! real OOM kill, real CPU contention, a real removal. On this host the OOM
//! and memory pressure paths are v1 (eventfd) and PSI runs in the unified
//! directory of the hybrid layout; in the v2 lane (`v2-lane.sh`) all of them
//! are v2 (inotify on memory.events, PSI triggers).

#![allow(clippy::unwrap_used)] // a panic is the test failing

mod common;

use std::{
    io::Write,
    time::{Duration, Instant},
};

use common::{TestCgroup, TestChild};
use corral_cgroups::{
    psi::{PsiKind, PsiResource, PsiTrigger},
    Event, Layout, PressureLevel, Watch, Watcher,
};
use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResourcesBuilder};

const MIB: i64 = 1024 * 1024;

/// Every event that arrives within `limit`, stopping early once `done` says so.
fn collect(w: &mut Watcher, limit: Duration, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        if let Some(e) = w.wait(Some(left)).unwrap() {
            seen.push(e);
        }
    }
    seen
}

fn limit_memory(t: &TestCgroup, mib: i64) {
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(mib * MIB)
                .swap(mib * MIB) // no swap: the hog must be killed, not swapped
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    t.cg.apply(&r).unwrap();
}

/// A shell that, once let go, holds 300 MB in `tail` (a line that never ends).
fn hog() -> TestChild {
    TestChild::shell(
        "read _; exec 2>/dev/null; head -c 300000000 /dev/zero | tail > /dev/null; echo status=$?",
    )
}

#[test]
#[ignore = "needs root"]
fn an_oom_kill_arrives_as_an_event_with_the_kill_count() {
    let t = TestCgroup::new("oom-event", true);
    limit_memory(&t, 32);
    let watch = Watch {
        oom: true,
        memory_pressure: Some(PressureLevel::Low),
        ..Default::default()
    };
    let mut w = t.cg.watch(&watch).unwrap();
    let quiet = collect(&mut w, Duration::from_millis(300), |e| !e.is_empty());
    assert!(quiet.is_empty(), "events before any load: {quiet:?}");

    let mut hog = hog();
    t.cg.add_task(hog.pid()).unwrap();
    let started = Instant::now();
    let out = hog.go_and_collect();
    let v1 = t.layout() != Layout::V2;
    // The kernel's own count; which task it picks (tail, or at times the
    // shell itself, so `out` may be empty) is its business.
    let file = if v1 {
        "memory.oom_control"
    } else {
        "memory.events"
    };
    let counted: u64 = t
        .read(file)
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.parse().ok())
        .unwrap();
    assert!(counted >= 1, "no OOM kill happened: {out:?}");
    let enough = |e: &[Event]| {
        e.iter().any(|e| matches!(e, Event::Oom { .. }))
            && (!v1 || e.iter().any(|e| matches!(e, Event::MemoryPressure { .. })))
    };
    let events = collect(&mut w, Duration::from_secs(10), enough);
    let kills = events.iter().find_map(|e| match e {
        Event::Oom { oom_kills } => *oom_kills,
        _ => None,
    });
    assert!(
        kills.is_some_and(|k| (1..=counted).contains(&k)),
        "no oom event with 1..={counted} kills within 10 s of the kill: {events:?}"
    );
    eprintln!("oom event {:?} after the hog started", started.elapsed());
    if v1 {
        // v1's vmpressure fires on any reclaim, which a 32 MiB limit forces.
        assert!(
            events.contains(&Event::MemoryPressure {
                level: PressureLevel::Low
            }),
            "no low memory pressure event: {events:?}"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn a_psi_trigger_fires_under_cpu_contention_only() {
    let t = TestCgroup::new("psi", true);
    let trigger = PsiTrigger {
        resource: PsiResource::Cpu,
        kind: PsiKind::Some,
        stall: Duration::from_millis(200),
        window: Duration::from_secs(2), // allowed without CAP_SYS_RESOURCE
    };
    let mut w =
        t.cg.watch(&Watch {
            psi: vec![trigger],
            ..Default::default()
        })
        .unwrap();
    let idle = collect(&mut w, Duration::from_millis(2500), |e| !e.is_empty());
    assert!(idle.is_empty(), "trigger fired with no task: {idle:?}");

    // Twice as many busy loops as CPUs: each waits for a CPU half the time.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut spinners: Vec<TestChild> = (0..2 * cpus)
        .map(|_| TestChild::shell("read _; while :; do :; done"))
        .collect();
    for s in &mut spinners {
        t.cg.add_task(s.pid()).unwrap();
        s.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let fired = collect(&mut w, Duration::from_secs(10), |e| !e.is_empty());
    assert_eq!(
        fired.first(),
        Some(&Event::Psi { trigger }),
        "no cpu.pressure trigger within 10 s of {} busy loops",
        2 * cpus
    );
}

#[test]
#[ignore = "needs root"]
fn removing_the_cgroup_ends_the_iterator() {
    let t = TestCgroup::new("removed", true);
    let mut w =
        t.cg.watch(&Watch {
            oom: true,
            ..Default::default()
        })
        .unwrap();
    t.cg.destroy().unwrap();
    let start = Instant::now();
    assert_eq!(w.next().map(Result::unwrap), Some(Event::Removed));
    assert!(w.next().is_none());
    assert!(w.is_closed());
    // v1: the kernel signals the eventfd at once; v2: the 1 s liveness check.
    let bound = if t.layout() == Layout::V2 { 2000 } else { 500 };
    assert!(
        start.elapsed() < Duration::from_millis(bound),
        "Removed took {:?}",
        start.elapsed()
    );
}

#[test]
#[ignore = "needs root"]
fn a_trigger_the_kernel_refuses_names_the_file_and_value() {
    let t = TestCgroup::new("bad-trigger", true);
    let bad = PsiTrigger {
        resource: PsiResource::Memory,
        kind: PsiKind::Some,
        stall: Duration::from_millis(50),
        window: Duration::from_millis(100), // below the kernel's 500 ms
    };
    let err =
        t.cg.watch(&Watch {
            psi: vec![bad],
            ..Default::default()
        })
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("memory.pressure: invalid value \"some 50000 100000\" in cgroup /"),
        "{err}"
    );
}
