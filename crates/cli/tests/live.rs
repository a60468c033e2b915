//! A live container: exec, ps, pause/resume, update, events, features.
//!
//! Run as root: `cargo test -p corral --test live -- --include-ignored`;
//! against runc: `CORRAL_BIN=/usr/sbin/runc cargo test …`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{cgroup_dir_of, is_runc, runtime_bin, spawn_tracked, wait_tracked, Bundle};
use serde_json::Value;

/// A running `sleep` container with a hostname of its own.
fn running(name: &str) -> Bundle {
    let bundle = Bundle::new(name);
    bundle.set_hostname("live-box");
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    bundle.runtime(&["start", bundle.id()]).assert_success();
    bundle.wait_for_status("running");
    bundle
}

#[test]
#[ignore = "needs root"]
fn exec_joins_the_namespaces_and_returns_the_exit_status() {
    let bundle = running("exec");
    let out = bundle.runtime(&[
        "exec",
        bundle.id(),
        "sh",
        "-c",
        "hostname; echo $$; ps -o pid,comm | grep -c sleep; exit 7",
    ]);
    out.assert_code(7);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"live-box"), "uts namespace: {out}");
    let pid: i32 = lines[1].parse().expect("a pid");
    assert!(
        pid > 1 && pid < 100,
        "pid {pid} is not in the container's pid namespace: {out}"
    );
    assert_eq!(lines[2], "1", "sees the container's sleep: {out}");
    // A signal ends it with 128+N.
    bundle
        .runtime(&["exec", bundle.id(), "sh", "-c", "kill -9 $$"])
        .assert_code(137);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn exec_applies_user_env_cwd_and_the_container_cgroup() {
    let bundle = running("execattr");
    let out = bundle.runtime(&[
        "exec",
        "--user",
        "65534:65534",
        "--env",
        "EXTRA=yes",
        "--cwd",
        "/tmp",
        bundle.id(),
        "sh",
        "-c",
        "id -u; id -g; echo $EXTRA; pwd; cat /proc/self/cgroup",
    ]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..4], &["65534", "65534", "yes", "/tmp"], "{out}");
    assert!(
        lines[4..]
            .iter()
            .any(|l| l.starts_with("8:pids:") && l.ends_with(bundle.id())),
        "the exec'd process is in the container's pids cgroup: {out}"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn exec_of_a_missing_program_or_stopped_container_fails() {
    let bundle = running("execbad");
    // runc's exec reports its own failures with 255.
    let out = bundle.runtime(&["exec", bundle.id(), "/no/such/program"]);
    assert_eq!(out.code, 255, "{out}");
    assert!(out.stderr.contains("/no/such/program"), "{out}");
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    let out = bundle.runtime(&["exec", bundle.id(), "true"]);
    assert_ne!(out.code, 0, "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn pause_refuses_exec_and_resume_restores_it() {
    let bundle = running("pause");
    bundle.runtime(&["pause", bundle.id()]).assert_success();
    assert_eq!(bundle.status(), "paused");
    let freezer = cgroup_dir_of(bundle.pid(), "freezer");
    assert_eq!(
        std::fs::read_to_string(freezer.join("freezer.state")).unwrap(),
        "FROZEN\n"
    );
    let out = bundle.runtime(&["exec", bundle.id(), "true"]);
    assert_eq!(
        out.code, 255,
        "exec into a paused container is refused: {out}"
    );
    assert!(out.stderr.contains("paused"), "{out}");
    bundle.runtime(&["resume", bundle.id()]).assert_success();
    assert_eq!(bundle.status(), "running");
    assert_eq!(
        std::fs::read_to_string(freezer.join("freezer.state")).unwrap(),
        "THAWED\n"
    );
    bundle
        .runtime(&["exec", bundle.id(), "true"])
        .assert_success();
    // Resuming what is not paused is an error, as with runc.
    assert_eq!(bundle.runtime(&["resume", bundle.id()]).code, 1);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn ps_lists_the_container_processes() {
    let bundle = running("ps");
    let out = bundle.runtime(&["ps", "--format", "json", bundle.id()]);
    out.assert_success();
    let pids: Vec<i32> = serde_json::from_str(&out.stdout).expect("a JSON list of pids");
    assert_eq!(pids, vec![bundle.pid()], "{out}");
    let out = bundle.runtime(&["ps", bundle.id()]);
    out.assert_success();
    assert!(
        out.stdout.lines().next().unwrap_or("").contains("PID"),
        "{out}"
    );
    assert!(out.stdout.contains("sleep 1000"), "{out}");
    assert_eq!(
        out.stdout.lines().count(),
        2,
        "the header and the one process: {out}"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn update_changes_the_kernel_limits() {
    let bundle = running("update");
    let pids = cgroup_dir_of(bundle.pid(), "pids");
    let memory = cgroup_dir_of(bundle.pid(), "memory");
    bundle
        .runtime(&[
            "update",
            "--pids-limit",
            "20",
            "--memory",
            "64m",
            bundle.id(),
        ])
        .assert_success();
    assert_eq!(
        std::fs::read_to_string(pids.join("pids.max")).unwrap(),
        "20\n"
    );
    assert_eq!(
        std::fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap(),
        "67108864\n"
    );
    // --resources - reads OCI resources JSON from stdin.
    let mut child = spawn_tracked(
        Command::new(runtime_bin())
            .args([
                "--root",
                bundle.state_root().to_str().unwrap(),
                "update",
                "--resources",
                "-",
                bundle.id(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null()),
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 33}}"#)
        .unwrap();
    let status = wait_tracked(&mut child, common::TIMEOUT).expect("update returns");
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(pids.join("pids.max")).unwrap(),
        "33\n"
    );
    // A value the kernel refuses names the file.
    let out = bundle.runtime(&["update", "--cpuset-cpus", "4000", bundle.id()]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("cpuset.cpus"), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn events_stats_reports_pids() {
    let bundle = running("events");
    let out = bundle.runtime(&["events", "--stats", bundle.id()]);
    out.assert_success();
    let ev: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON event");
    assert_eq!(ev["type"], "stats", "{out}");
    assert_eq!(ev["id"], bundle.id(), "{out}");
    assert_eq!(ev["data"]["pids"]["current"], 1, "{out}");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{out}"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn features_is_the_oci_document() {
    if is_runc() {
        return; // runc 1.1.5 has no features command
    }
    let bundle = Bundle::new("features");
    let out = bundle.runtime(&["features"]);
    out.assert_success();
    let doc: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    assert!(doc["ociVersionMax"].as_str().unwrap().starts_with("1."));
    let hooks = doc["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 6);
    let ns = doc["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n == "time") && ns.iter().any(|n| n == "user"));
    assert!(doc["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
    assert!(doc["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "rro"));
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn exec_gets_the_containers_seccomp_filter() {
    let bundle = Bundle::new("execsecc");
    bundle.set_args(&["sleep", "1000"]);
    bundle.edit_config(|c| {
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        });
    });
    bundle.create();
    bundle.runtime(&["start", bundle.id()]).assert_success();
    bundle.wait_for_status("running");
    let out = bundle.runtime(&[
        "exec",
        bundle.id(),
        "sh",
        "-c",
        "mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status",
    ]);
    out.assert_success();
    // errno 122 is EDQUOT: "Disk quota exceeded".
    assert!(out.stdout.contains("quota"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn events_streams_stats_and_an_oom_until_the_container_stops() {
    let bundle = Bundle::new("eventsoom");
    bundle.edit_config(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({ "limit": 32 * 1024 * 1024 });
        // Should the cgroup limit be missing, RLIMIT_AS stops tail first.
        c["process"]["rlimits"] = serde_json::json!([
            { "type": "RLIMIT_AS", "soft": 512u64 << 20, "hard": 512u64 << 20 },
        ]);
    });
    // A child is OOM-killed (tail keeps /dev/zero, which has no newline);
    // the init lives on a little, then exits.
    bundle.set_args(&["sh", "-c", "sleep 1; tail /dev/zero; sleep 1.5"]);
    bundle.create();
    bundle.runtime(&["start", bundle.id()]).assert_success();
    let out = bundle.runtime(&["events", "--interval", "1s", bundle.id()]);
    out.assert_success();
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(events[0]["type"], "stats", "{out}");
    assert!(
        events.iter().filter(|e| e["type"] == "stats").count() >= 2,
        "{out}"
    );
    assert_eq!(
        events.iter().filter(|e| e["type"] == "oom").count(),
        1,
        "{out}"
    );
    bundle.wait_for_status("stopped");
    bundle.assert_no_leaks();
}
