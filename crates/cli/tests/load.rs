//! Load and resource attacks (issue 7): many runtimes at once on one store,
//! and containers that try to starve the host. Each test ends with the
//! fixture's leak check on every container it made.
//!
//! Run as root: `cargo test -p corral --test load -- --include-ignored`.
//! The long 50-way run is `scripts/stress.sh`, not part of CI.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

mod common;

use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{cgroup_dir_of, output_tracked, Bundle};
use serde_json::json;

/// How long `state`, `list` or `exec` may take while a container attacks.
const PROMPT: Duration = Duration::from_secs(5);

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

/// Polls `probe` every 50 ms until it returns `Some`, for at most `limit`.
fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `args` on `bundle`, asserting it answers within [`PROMPT`].
fn promptly(bundle: &Bundle, args: &[&str]) -> common::Output {
    let started = Instant::now();
    let out = bundle.runtime(args);
    let took = started.elapsed();
    assert!(took < PROMPT, "`{}` took {took:?} under attack", out.cmd);
    eprintln!("  {:?} answered in {took:?} (exit {})", args[0], out.code);
    out
}

/// While `victim` attacks: `state`, `list` and `exec` on it answer promptly
/// (exec may be refused, say at a full pids limit, but clearly), the host
/// starts processes, and a second container runs.
fn assert_the_rest_keeps_working(victim: &Bundle, bystander: &Bundle) {
    let id = victim.id();
    let state = promptly(victim, &["state", id]);
    state.assert_success();
    assert!(state.stdout.contains("\"running\""), "{state}");
    promptly(victim, &["list"]).assert_success();
    let exec = promptly(victim, &["exec", id, "true"]);
    if exec.code != 0 {
        assert!(exec.stderr.starts_with("corral: "), "clear refusal: {exec}");
    }
    let host = output_tracked(Command::new("sh").args(["-c", "echo host-ok"]));
    assert_eq!(String::from_utf8_lossy(&host.stdout), "host-ok\n");
    let started = Instant::now();
    let run = bystander.runtime(&["run", bystander.id()]);
    run.assert_success();
    assert_eq!(run.stdout, "bystander-ok\n", "{run}");
    assert!(
        started.elapsed() < PROMPT,
        "second container took {:?}",
        started.elapsed()
    );
}

fn bystander() -> Bundle {
    let b = Bundle::new("bystander");
    b.set_args(&["sh", "-c", "echo bystander-ok"]);
    b
}

/// Starts `bundle` detached (its stdio on files: the fixture's) and returns the init's pid.
fn run_detached(bundle: &Bundle) -> i32 {
    bundle.runtime(&["run", "-d", bundle.id()]).assert_success();
    bundle.pid()
}

/// `delete --force` of an attacking container finishes promptly.
fn delete_promptly(bundle: &Bundle) {
    let started = Instant::now();
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    let took = started.elapsed();
    eprintln!("  delete --force took {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "delete --force took {took:?}"
    );
}

/// A fork bomb under `pids.limit` 64 (and half a CPU, so that a CI machine
/// stays usable): the cgroup holds at most 64 tasks, and the rest works.
#[test]
#[ignore = "needs root"]
fn a_fork_bomb_stays_under_the_pids_limit() {
    let victim = Bundle::new("forkbomb");
    victim.edit_config(|c| {
        c["linux"]["resources"]["pids"] = json!({ "limit": 64 });
        c["linux"]["resources"]["cpu"] = json!({ "quota": 50_000, "period": 100_000 });
    });
    // Every bomb process forks copies of itself until a fork fails (which
    // ends it, and frees a slot for the others); pid 1 is a `sleep`, which
    // forks nothing and so outlives the storm.
    victim.set_args(&[
        "sh",
        "-c",
        "sh -c 'exec 2>/dev/null; f() { while :; do f & done; }; f' & exec sleep 100000",
    ]);
    let bystander = bystander();
    let init = run_detached(&victim);
    let pids = cgroup_dir_of(init, "pids");
    let read = |file: &str| -> u64 {
        fs::read_to_string(pids.join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // The bomb reaches the limit, and the kernel refuses forks past it.
    wait_for(Duration::from_secs(10), || {
        (read("pids.current") >= 64).then_some(())
    })
    .expect("the bomb fills the pids limit");
    assert_the_rest_keeps_working(&victim, &bystander);
    assert!(read("pids.current") <= 64, "pids.current over the limit");
    let refused: u64 = fs::read_to_string(pids.join("pids.events"))
        .unwrap()
        .trim()
        .trim_start_matches("max ")
        .parse()
        .unwrap();
    assert!(refused > 0, "pids.events: no fork was refused");
    eprintln!("  {refused} forks refused at the limit");
    delete_promptly(&victim);
    victim.assert_no_leaks();
    bystander.assert_no_leaks();
}

/// A process doubling a string forever, restarted each time it dies, under
/// a 64 MiB memory limit: the OOM killer stops it inside its cgroup; usage
/// never passes the limit, and the rest works.
#[test]
#[ignore = "needs root"]
fn a_memory_hog_is_stopped_at_the_memory_limit() {
    const LIMIT: u64 = 64 * 1024 * 1024;
    let victim = Bundle::new("memhog");
    victim.edit_config(|c| {
        c["linux"]["resources"]["memory"] = json!({ "limit": LIMIT, "swap": LIMIT });
    });
    victim.set_args(&[
        "sh",
        "-c",
        "exec 2>/dev/null; while :; do sh -c 'x=0123456789abcdef; while :; do x=$x$x; done'; done",
    ]);
    let bystander = bystander();
    let init = run_detached(&victim);
    let memory = cgroup_dir_of(init, "memory");
    let oom_kills = || -> u64 {
        fs::read_to_string(memory.join("memory.oom_control"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    wait_for(Duration::from_secs(15), || (oom_kills() >= 2).then_some(()))
        .expect("the hog is OOM-killed, again and again");
    assert_the_rest_keeps_working(&victim, &bystander);
    let peak: u64 = fs::read_to_string(memory.join("memory.max_usage_in_bytes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(peak <= LIMIT, "peak usage {peak} over the limit {LIMIT}");
    eprintln!("  {} OOM kills, peak usage {peak} bytes", oom_kills());
    delete_promptly(&victim);
    victim.assert_no_leaks();
    bystander.assert_no_leaks();
}

/// A process opening files until it cannot, under `RLIMIT_NOFILE` 64: it
/// stops at 64 descriptors, and the rest works.
#[test]
#[ignore = "needs root"]
fn fd_exhaustion_stops_at_rlimit_nofile() {
    let victim = Bundle::new("fdhog");
    victim.edit_config(|c| {
        c["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "hard": 64, "soft": 64 }]);
    });
    // The probe in a subshell tells when the next open would fail, so the
    // shell (pid 1) keeps every descriptor it got and lives on.
    victim.set_args(&[
        "sh",
        "-c",
        "i=3; while [ $i -lt 100000 ]; do (eval \"exec $i</dev/null\") 2>/dev/null || break; \
         eval \"exec $i</dev/null\"; i=$((i+1)); done; while :; do sleep 1; done",
    ]);
    let bystander = bystander();
    run_detached(&victim);
    let count = || {
        let out = victim.runtime(&["exec", victim.id(), "sh", "-c", "ls /proc/1/fd | wc -l"]);
        out.stdout.trim().parse::<u32>().ok()
    };
    let open = wait_for(Duration::from_secs(10), || count().filter(|&n| n >= 64))
        .expect("pid 1 fills its descriptor table");
    assert_eq!(open, 64, "pid 1 holds exactly RLIMIT_NOFILE descriptors");
    assert_the_rest_keeps_working(&victim, &bystander);
    delete_promptly(&victim);
    victim.assert_no_leaks();
    bystander.assert_no_leaks();
}
