//! The container lifecycle through the CLI, as runc does it: `run`, `create`,
//! `state`, `start`, `list`, `kill`, `delete`, `spec`, `--version`.
//!
//! Run as root: `cargo test -p corral --test lifecycle -- --include-ignored`;
//! against runc: `CORRAL_BIN=/usr/sbin/runc cargo test …`.

mod common;

use std::{fs, thread, time::Duration};

use common::{is_rfc3339, kill_pid, pids_in_cgroup_of, process_alive, Bundle};
use serde_json::Value;

#[test]
#[ignore = "needs root"]
fn run_exits_with_the_status_of_the_process() {
    let bundle = Bundle::new("exit42");
    bundle.set_args(&["sh", "-c", "exit 42"]);
    bundle.runtime(&["run", bundle.id()]).assert_code(42);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn the_process_is_pid_1_and_sees_the_configured_hostname() {
    let bundle = Bundle::new("pid1");
    bundle.set_hostname("corral-box");
    bundle.set_args(&["sh", "-c", "echo $$; hostname"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_success();
    assert_eq!(out.stdout, "1\ncorral-box\n", "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn env_and_cwd_reach_the_process() {
    let bundle = Bundle::new("envcwd");
    bundle.set_env(&["PATH=/bin", "CORRAL_TEST=hello"]);
    bundle.set_cwd("/tmp");
    bundle.set_args(&["sh", "-c", "echo $CORRAL_TEST; pwd"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_success();
    assert_eq!(out.stdout, "hello\n/tmp\n", "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn run_of_a_process_killed_by_sigkill_exits_137() {
    let bundle = Bundle::new("sigkill");
    bundle.set_args(&["sleep", "1000"]);
    let run = bundle.spawn(&["run", bundle.id()]);
    bundle.wait_for_status("running");
    // From the host: PID 1 of a pid namespace ignores signals it has no
    // handler for, but SIGKILL from an ancestor namespace always lands.
    kill_pid(bundle.pid());
    run.wait().assert_code(128 + 9);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn run_of_a_process_killed_by_sigterm_exits_143() {
    let bundle = Bundle::new("sigterm");
    // Without a pid namespace the shell is not an init, so its own SIGTERM
    // (default action) kills it; as PID 1 it would be ignored.
    bundle.remove_namespace("pid");
    bundle.set_args(&["sh", "-c", "kill -TERM $$; echo survived"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_code(128 + 15);
    assert!(!out.stdout.contains("survived"), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn run_forwards_a_kill_sent_through_the_runtime() {
    let bundle = Bundle::new("fwdkill");
    bundle.set_args(&["sleep", "1000"]);
    let run = bundle.spawn(&["run", bundle.id()]);
    bundle.wait_for_status("running");
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    run.wait().assert_code(128 + 9);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn run_forwards_signals_it_receives_to_the_container() {
    let bundle = Bundle::new("fwdsig");
    // PID 1 of a pid namespace gets only signals it handles: the trap.
    bundle.set_args(&[
        "sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
    ]);
    let run = bundle.spawn(&["run", bundle.id()]);
    bundle.wait_for_status("running");
    // The shell installs its trap before printing; give it that moment.
    thread::sleep(Duration::from_millis(300));
    kill_pid_with(run.pid(), rustix::process::Signal::TERM);
    let out = run.wait();
    out.assert_code(7);
    assert!(out.stdout.contains("got-term"), "{out}");
    bundle.assert_no_leaks();
}

fn kill_pid_with(pid: i32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid).expect("pid > 0");
    rustix::process::kill_process(pid, sig).expect("kill the runtime");
}

#[test]
#[ignore = "needs root"]
fn create_state_start_list_kill_delete() {
    let bundle = Bundle::new("lifecycle");
    bundle.set_args(&["sleep", "1000"]);
    let id = bundle.id();
    let pid_file = bundle.tmp_dir().join("pid");
    let dir = bundle.dir();
    let (dir_str, pid_file_str) = (dir.to_str().unwrap(), pid_file.to_str().unwrap());
    bundle
        .runtime(&[
            "create",
            "--bundle",
            dir_str,
            "--pid-file",
            pid_file_str,
            id,
        ])
        .assert_success();

    let state = bundle.state();
    assert_eq!(
        state["ociVersion"].as_str().map(|v| !v.is_empty()),
        Some(true),
        "{state}"
    );
    assert_eq!(state["id"], id, "{state}");
    assert_eq!(state["status"], "created", "{state}");
    let pid = state["pid"].as_i64().expect("pid is a number");
    assert!(pid > 0, "{state}");
    let written = fs::read_to_string(&pid_file).unwrap();
    assert_eq!(
        written.trim().parse::<i64>().ok(),
        Some(pid),
        "pid file {written:?}"
    );
    assert!(
        process_alive(pid.try_into().unwrap()),
        "pid {pid} of a created container"
    );
    assert_eq!(state["bundle"], dir_str, "{state}");
    // runc's fields beyond the OCI state.
    assert_eq!(
        state["rootfs"],
        bundle.rootfs().to_str().unwrap(),
        "{state}"
    );
    let created = state["created"].as_str().expect("created is a string");
    assert!(is_rfc3339(created), "created {created:?} is not RFC 3339");
    assert!(state["owner"].is_string(), "{state}");

    bundle.runtime(&["start", id]).assert_success();
    bundle.wait_for_status("running");
    assert_eq!(
        bundle.pid(),
        i32::try_from(pid).unwrap(),
        "start keeps the pid"
    );

    let list = bundle.runtime(&["list", "-q"]);
    list.assert_success();
    assert_eq!(list.stdout.lines().collect::<Vec<_>>(), [id], "{list}");

    let list = bundle.runtime(&["list", "--format", "json"]);
    list.assert_success();
    let listed: Value = serde_json::from_str(&list.stdout).expect("list --format json");
    let entries = listed.as_array().expect("a JSON array");
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["id"], id, "{list}");
    assert_eq!(entries[0]["status"], "running", "{list}");
    assert_eq!(entries[0]["pid"], pid, "{list}");

    bundle.runtime(&["kill", id, "KILL"]).assert_success();
    bundle.wait_for_status("stopped");
    assert!(
        !process_alive(pid.try_into().unwrap()),
        "pid {pid} survived KILL"
    );

    bundle.runtime(&["delete", id]).assert_success();
    assert!(
        !bundle.state_dir().exists(),
        "delete left {}",
        bundle.state_dir().display()
    );
    let list = bundle.runtime(&["list", "-q"]);
    list.assert_success();
    assert_eq!(list.stdout.trim(), "", "{list}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn kill_takes_a_signal_name_number_or_sig_name() {
    for signal in ["KILL", "9", "SIGKILL"] {
        let bundle = Bundle::new("killspell");
        bundle.set_args(&["sleep", "1000"]);
        bundle.create();
        bundle.runtime(&["start", bundle.id()]).assert_success();
        bundle.wait_for_status("running");
        bundle
            .runtime(&["kill", bundle.id(), signal])
            .assert_success();
        bundle.wait_for_status("stopped");
        bundle.runtime(&["delete", bundle.id()]).assert_success();
        bundle.assert_no_leaks();
    }
}

#[test]
#[ignore = "needs root"]
fn run_without_keep_leaves_no_state() {
    let bundle = Bundle::new("nokeep");
    bundle.runtime(&["run", bundle.id()]).assert_success();
    assert!(
        !bundle.state_dir().exists(),
        "run left {}",
        bundle.state_dir().display()
    );
    let list = bundle.runtime(&["list", "-q"]);
    list.assert_success();
    assert_eq!(list.stdout.trim(), "", "{list}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn run_keep_leaves_a_stopped_container_for_delete() {
    let bundle = Bundle::new("keep");
    bundle.set_args(&["sh", "-c", "exit 3"]);
    bundle
        .runtime(&["run", "--keep", bundle.id()])
        .assert_code(3);
    assert_eq!(bundle.status(), "stopped");
    let list = bundle.runtime(&["list", "-q"]);
    assert_eq!(list.stdout.trim(), bundle.id(), "{list}");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    assert!(
        !bundle.state_dir().exists(),
        "delete left {}",
        bundle.state_dir().display()
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn run_detach_returns_while_the_container_runs() {
    let bundle = Bundle::new("detach");
    bundle.set_args(&["sleep", "1000"]);
    // `Bundle::runtime` times out after 20 s; `sleep 1000` would not.
    bundle.runtime(&["run", "-d", bundle.id()]).assert_success();
    assert_eq!(bundle.status(), "running");
    let pid = bundle.pid();
    assert!(process_alive(pid), "pid {pid} of a detached container");
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn kill_all_signals_every_process_of_the_container() {
    let bundle = Bundle::new("killall");
    // Two children, then (once they are gone) a last sleep exec'd as PID 1.
    bundle.set_args(&["sh", "-c", "sleep 1000 & sleep 1000 & wait; sleep 1000"]);
    bundle.runtime(&["run", "-d", bundle.id()]).assert_success();
    let init = bundle.pid();
    let children = wait_for(|| {
        let pids: Vec<i32> = pids_in_cgroup_of(bundle.id())
            .into_iter()
            .filter(|&pid| pid != init)
            .collect();
        (pids.len() == 2).then_some(pids)
    });
    // PID 1 of the namespace has no SIGTERM handler and ignores it; the
    // children die. Without --all only PID 1 would get the signal.
    bundle
        .runtime(&["kill", "--all", bundle.id(), "TERM"])
        .assert_success();
    wait_for(|| {
        children
            .iter()
            .all(|&pid| !process_alive(pid))
            .then_some(())
    });
    assert_eq!(bundle.status(), "running", "init should ignore SIGTERM");
    bundle
        .runtime(&["kill", "--all", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    assert!(pids_in_cgroup_of(bundle.id()).is_empty());
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn delete_force_removes_a_running_container() {
    let bundle = Bundle::new("delforce");
    bundle.set_args(&["sleep", "1000"]);
    bundle.runtime(&["run", "-d", bundle.id()]).assert_success();
    let pid = bundle.pid();
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    assert!(
        !bundle.state_dir().exists(),
        "delete left {}",
        bundle.state_dir().display()
    );
    wait_for(|| (!process_alive(pid)).then_some(()));
    let state = bundle.runtime(&["state", bundle.id()]);
    assert_ne!(state.code, 0, "state of a deleted container:\n{state}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn delete_force_removes_a_created_container() {
    let bundle = Bundle::new("delcreated");
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    let pid = bundle.pid();
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    assert!(
        !bundle.state_dir().exists(),
        "delete left {}",
        bundle.state_dir().display()
    );
    wait_for(|| (!process_alive(pid)).then_some(()));
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn spec_writes_a_config_and_rootless_adds_a_user_namespace() {
    let bundle = Bundle::new("spec");
    let plain = bundle.tmp_dir().join("plain");
    let rootless = bundle.tmp_dir().join("rootless");
    for dir in [&plain, &rootless] {
        fs::create_dir(dir).unwrap();
    }
    bundle.runtime_in(&plain, &["spec"]).assert_success();
    bundle
        .runtime_in(&rootless, &["spec", "--rootless"])
        .assert_success();

    let read = |dir: &std::path::Path| -> Value {
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap()
    };
    let namespaces = |config: &Value| -> Vec<String> {
        config["linux"]["namespaces"]
            .as_array()
            .expect("linux.namespaces")
            .iter()
            .map(|ns| ns["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let config = read(&plain);
    assert!(config["ociVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("1.")));
    assert_eq!(config["root"]["path"], "rootfs");
    assert!(config["process"]["args"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert!(namespaces(&config).contains(&"mount".to_owned()));
    assert!(!namespaces(&config).contains(&"user".to_owned()));

    let config = read(&rootless);
    assert!(namespaces(&config).contains(&"user".to_owned()), "{config}");
    assert!(config["linux"]["uidMappings"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
    assert!(config["linux"]["gidMappings"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn version_prints_a_version_number() {
    let bundle = Bundle::new("version");
    let out = bundle.runtime(&["--version"]);
    out.assert_success();
    let has_version = out
        .stdout
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 2 && parts.iter().all(|p| !p.is_empty())
        });
    assert!(has_version, "no version number in:\n{out}");
    bundle.assert_no_leaks();
}

/// Polls `probe` every 20 ms until it returns `Some`; panics after 10 s.
#[track_caller]
fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(value) = probe() {
            return value;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("condition not met within 10 s");
}

#[test]
#[ignore = "needs root"]
fn the_process_starts_with_default_signal_dispositions() {
    // An ignored SIGPIPE inherited from the runtime would make `yes` loop
    // forever on EPIPE; no signal may start ignored or handled.
    let bundle = Bundle::new("sigdfl");
    bundle.set_args(&[
        "sh",
        "-c",
        "grep -E 'Sig(Ign|Cgt)' /proc/self/status; yes | head -n 1",
    ]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_success();
    assert!(out.stdout.contains("SigIgn:\t0000000000000000"), "{out}");
    assert!(out.stdout.ends_with("y\n"), "{out}");
    bundle.assert_no_leaks();
}
