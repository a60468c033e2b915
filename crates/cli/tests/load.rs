//! Load and resource attacks (issue 7): many runtimes at once on one store,
//! and containers that try to starve the host. Each test ends with the
//! fixture's leak check on every container it made.
//!
//! Run as root: `cargo test -p corral --test load -- --include-ignored`.
//! The long 50-way run is `scripts/stress.sh`, not part of CI.

mod common;

use std::time::Instant;

use common::Bundle;

/// Ten `create`s of one id at once: `mkdir` of the state directory decides,
/// so exactly one wins and the nine others say the container already
/// exists, without touching the winner's state, cgroup or init.
#[test]
#[ignore = "needs root"]
fn the_same_id_created_ten_times_at_once_succeeds_once() {
    let bundle = Bundle::new("sameid");
    bundle.set_args(&["sleep", "1000"]);
    let dir = bundle.dir();
    let dir = dir.to_str().unwrap();
    let racers: Vec<_> = (0..10)
        .map(|_| bundle.spawn(&["create", "--bundle", dir, bundle.id()]))
        .collect();
    let outputs: Vec<_> = racers.into_iter().map(|r| r.wait()).collect();
    let winners = outputs.iter().filter(|o| o.code == 0).count();
    assert_eq!(winners, 1, "exactly one create wins: {outputs:#?}");
    for loser in outputs.iter().filter(|o| o.code != 0) {
        loser.assert_error(&["already exists"], &[bundle.id()]);
    }
    // The losers left the winner alone: its init still waits for start.
    assert_eq!(bundle.status(), "created");
    bundle.runtime(&["start", bundle.id()]).assert_success();
    assert_eq!(bundle.status(), "running");
    bundle.assert_no_leaks();
}

/// 24 `run`s at once, each with its own bundle: every one succeeds, every
/// container printed its own id, and nothing is left of any of them.
#[test]
#[ignore = "needs root"]
fn twenty_four_containers_run_at_once() {
    let bundles: Vec<Bundle> = (0..24).map(|_| Bundle::new("par24")).collect();
    for b in &bundles {
        b.set_args(&["sh", "-c", &format!("echo hello-{}", b.id())]);
    }
    let started = Instant::now();
    let runs: Vec<_> = bundles.iter().map(|b| b.spawn(&["run", b.id()])).collect();
    let outputs: Vec<_> = runs.into_iter().map(|r| r.wait()).collect();
    let took = started.elapsed();
    let failures: Vec<_> = outputs.iter().filter(|o| o.code != 0).collect();
    assert!(failures.is_empty(), "failed runs: {failures:#?}");
    for (b, out) in bundles.iter().zip(&outputs) {
        assert_eq!(out.stdout.trim(), format!("hello-{}", b.id()), "{out}");
    }
    eprintln!("24 concurrent runs took {took:?}");
    for b in &bundles {
        b.assert_no_leaks();
    }
}
