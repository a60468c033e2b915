//! corral under the real engines from Debian: podman with `--runtime`, and a
//! private containerd whose runc v2 shim runs corral (`ctr --runc-binary`).
//! Each test checks the engine's view (exit statuses, output, status) and
//! corral's own (its state root, the container's cgroup files), then that the
//! engine, corral and the kernel hold nothing of the test any more.
//!
//! The engines' flags for a host without systemd or a registry are explained
//! in docs/testing.md. Run as root:
//! `cargo test -p corral --test engines -- --include-ignored`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

mod common;
#[path = "common/engines.rs"]
mod engines;

use std::{
    fs,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use common::{cgroup_dir_of, is_runc, output_tracked, runtime_bin, Bundle, SETTLE};
use engines::{default_state_root, Containerd, Podman, Run};
use serde_json::Value;

/// Polls `check` until it holds or [`SETTLE`] passes.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// `status` of container `id` in corral's own state root `root`.
fn corral_status(root: &Path, id: &str) -> String {
    let out = output_tracked(
        Command::new(runtime_bin())
            .arg("--root")
            .arg(root)
            .args(["state", id]),
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    state["status"].as_str().unwrap_or_default().to_owned()
}

/// Drives `command` (an interactive `sh` in a container) through a real pty
/// with tests/pty/drive.py: raw mode, window size and resize, a real tty,
/// Ctrl-C, `exit 3` as the exit status, the terminal mode restored.
fn drive_pty(command: Command) {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pty/drive.py");
    let mut py = Command::new("python3");
    py.arg(&driver)
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args());
    let out = output_tracked(&mut py);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("pty: 7 passed, 0 failed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The engine's error for `/no/such/program` names it and, with corral,
/// carries corral's own words (read from its JSON log or its stderr).
#[track_caller]
fn assert_relays_missing_program(out: &Run) {
    assert!(out.stderr.contains("/no/such/program"), "{}", out.stderr);
    if !is_runc() {
        assert!(
            out.stderr.contains("container init: exec"),
            "{}",
            out.stderr
        );
    }
}

#[test]
#[ignore = "needs root"]
fn podman_runs_execs_pauses_updates_stops_and_removes() {
    let bundle = Bundle::new("podman");
    let podman = Podman::new(&bundle);
    let state_root = default_state_root();

    // run --rm: output and exit status.
    let out = podman.run_container(
        &["--rm"],
        &["/bin/sh", "-c", "echo hello from podman; exit 7"],
    );
    assert_eq!(out.expect(7).trim(), "hello from podman");

    // run -d; a shell that reports USR1 and exits 3 on TERM.
    let c1 = format!("{}-c1", bundle.id());
    let script = "trap 'echo got-usr1' USR1; trap 'exit 3' TERM; echo started; \
                  while :; do sleep 0.1; done";
    podman
        .run_container(&["-d", "--name", &c1], &["/bin/sh", "-c", script])
        .ok();
    let id = podman.inspect(&c1, "{{.Id}}");
    assert_eq!(corral_status(&state_root, &id), "running");

    // exec: output and exit status.
    let out = podman.run(&["exec", &c1, "/bin/sh", "-c", "echo in-exec; exit 5"]);
    assert_eq!(out.expect(5).trim(), "in-exec");

    // logs, top, stats.
    eventually("`started` in the logs", || {
        podman.run(&["logs", &c1]).ok().contains("started")
    });
    let top = podman.run(&["top", &c1]).ok().to_owned();
    assert!(top.contains("/bin/sh -c trap"), "{top}");
    let stats: Value = serde_json::from_str(
        podman
            .run(&["stats", "--no-stream", "--format", "json", &c1])
            .ok(),
    )
    .expect("stats JSON");
    let pids: u32 = stats[0]["pids"].as_str().unwrap_or("0").parse().unwrap();
    assert!(pids >= 1, "{stats}");

    // pause / unpause: podman's status and corral's state agree.
    podman.run(&["pause", &c1]).ok();
    assert_eq!(podman.inspect(&c1, "{{.State.Status}}"), "paused");
    assert_eq!(corral_status(&state_root, &id), "paused");
    podman.run(&["unpause", &c1]).ok();
    assert_eq!(podman.inspect(&c1, "{{.State.Status}}"), "running");
    assert_eq!(corral_status(&state_root, &id), "running");

    // update: the kernel's file has the new limit.
    podman.run(&["update", "--memory", "64m", &c1]).ok();
    let pid: i32 = podman.inspect(&c1, "{{.State.Pid}}").parse().unwrap();
    let limit = fs::read_to_string(cgroup_dir_of(pid, "memory").join("memory.limit_in_bytes"));
    assert_eq!(limit.unwrap().trim(), "67108864");

    // kill with a signal the container handles.
    podman.run(&["kill", "--signal", "USR1", &c1]).ok();
    eventually("the container to see USR1", || {
        podman.run(&["logs", &c1]).ok().contains("got-usr1")
    });

    // stop: TERM, and the exit status the container chose.
    podman.run(&["stop", "--time", "10", &c1]).ok();
    assert_eq!(podman.inspect(&c1, "{{.State.Status}}"), "exited");
    assert_eq!(podman.inspect(&c1, "{{.State.ExitCode}}"), "3");

    // stop of a container that ignores TERM (a pid 1 without a handler):
    // podman escalates to KILL, 137.
    let c2 = format!("{}-c2", bundle.id());
    podman
        .run_container(
            &["-d", "--name", &c2],
            &["/bin/sh", "-c", "while :; do sleep 0.1; done"],
        )
        .ok();
    podman.run(&["stop", "--time", "1", &c2]).ok();
    assert_eq!(podman.inspect(&c2, "{{.State.ExitCode}}"), "137");

    // rm -f of a running container: gone from podman and from corral.
    let c3 = format!("{}-c3", bundle.id());
    podman
        .run_container(&["-d", "--name", &c3], &["/bin/sleep", "1000"])
        .ok();
    let id3 = podman.inspect(&c3, "{{.Id}}");
    assert_eq!(corral_status(&state_root, &id3), "running");
    podman.run(&["rm", "--force", &c3]).ok();
    assert!(!state_root.join(&id3).exists(), "corral still has {id3}");
    podman.run(&["rm", &c1, &c2]).ok();
    podman.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn podman_run_it_and_exec_it_through_a_real_pty() {
    let bundle = Bundle::new("podmantty");
    let podman = Podman::new(&bundle);
    let flags = podman.run_flags();
    let mut run = podman.cmd(&["run", "-it", "--rm"]);
    run.args(&flags).arg("/bin/sh");
    drive_pty(run);

    let name = format!("{}-it", bundle.id());
    podman
        .run_container(&["-d", "--name", &name], &["/bin/sleep", "1000"])
        .ok();
    drive_pty(podman.cmd(&["exec", "-it", &name, "/bin/sh"]));
    podman.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn podman_shows_corrals_error_and_exit_status() {
    let bundle = Bundle::new("podmanerr");
    // With docs/testing.md's containers.conf podman passes `--log-format
    // json --log FILE` and reads the error from that file; without it, from
    // stderr, where corral's line starts with its name.
    for json in [true, false] {
        let podman = Podman::with_conf(&bundle, json);
        let out = podman.run_container(&["--rm"], &["/no/such/program"]);
        out.expect(127);
        assert_relays_missing_program(&out);
        if !is_runc() {
            // podman prefixes the runtime's path; corral's stderr line its name.
            let from_stderr = out.stderr.contains(": corral: create container");
            assert_eq!(from_stderr, !json, "{}", out.stderr);
        }
        podman.assert_clean();
    }
}

#[test]
#[ignore = "needs root"]
fn containerd_runs_and_execs_through_the_runc_shim() {
    let bundle = Bundle::new("ctr");
    let cd = Containerd::start(&bundle, "");
    let runc_root = cd.runc_root();

    // run --rm: output and exit status.
    let out = cd.run_container(
        &["--rm"],
        "once",
        &["/bin/sh", "-c", "echo hello from ctr; exit 6"],
    );
    assert_eq!(out.expect(6).trim(), "hello from ctr");

    // run -d, then exec, ps, pause/resume, metrics, kill, delete.
    let script = "trap 'exit 9' TERM; while :; do sleep 0.1; done";
    cd.run_container(&["-d"], "det", &["/bin/sh", "-c", script])
        .ok();
    assert_eq!(corral_status(&runc_root, "det"), "running");
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "det",
        "/bin/sh",
        "-c",
        "echo in-exec; exit 4",
    ]);
    assert_eq!(out.expect(4).trim(), "in-exec");
    let pid = cd.ctr(&["task", "ls"]).ok().to_owned();
    let pid = pid
        .lines()
        .find_map(|l| {
            l.strip_prefix("det")
                .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
        })
        .expect("det in task ls");
    let ps = cd.ctr(&["task", "ps", "det"]).ok().to_owned();
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().next() == Some(&pid)),
        "{ps}"
    );

    cd.ctr(&["task", "pause", "det"]).ok();
    assert!(cd.ctr(&["task", "ls"]).ok().contains("PAUSED"));
    assert_eq!(corral_status(&runc_root, "det"), "paused");
    cd.ctr(&["task", "resume", "det"]).ok();
    assert!(cd.ctr(&["task", "ls"]).ok().contains("RUNNING"));

    let metrics = cd.ctr(&["task", "metrics", "det"]).ok().to_owned();
    let pids_current = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pids.current"))
        .map(|v| v.trim().parse::<u32>().unwrap_or(0));
    assert!(pids_current.is_some_and(|n| n >= 1), "{metrics}");

    cd.ctr(&["task", "kill", "--signal", "SIGTERM", "det"]).ok();
    eventually("the task to stop", || {
        cd.ctr(&["task", "ls"]).ok().contains("STOPPED")
    });
    let out = cd.ctr(&["task", "delete", "det"]);
    out.ok();
    assert!(out.stderr.contains("exit code 9"), "{}", out.stderr);
    cd.ctr(&["container", "delete", "det"]).ok();
    assert!(!runc_root.join("det").exists(), "corral still has det");

    // A program that does not exist: containerd relays corral's error.
    let out = cd.run_container(&["--rm"], "bad", &["/no/such/program"]);
    assert_ne!(out.code, 0);
    assert_relays_missing_program(&out);
    cd.ctr(&["container", "delete", "bad"]);
    cd.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn containerd_loads_the_documented_runtime_class() {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/kubernetes.md"))
            .unwrap();
    let snippet = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in docs/kubernetes.md");
    assert!(snippet.contains("BinaryName"), "{snippet}");
    let bundle = Bundle::new("ctrclass");
    let snippet = snippet.replace("/usr/local/bin/corral", &bundle.bin().display().to_string());
    let cd = Containerd::start(&bundle, &snippet);
    let plugins = cd.ctr(&["plugins", "ls"]).ok().to_owned();
    let cri = plugins
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("cri"))
        .expect("the cri plugin is listed");
    assert!(
        cri.split_whitespace().last() == Some("ok"),
        "the CRI plugin rejected the config: {cri}\n{}",
        cd.log()
    );
    assert!(
        cd.log()
            .contains(&format!("BinaryName:{}", bundle.bin().display())),
        "the runtime class is not in the loaded config:\n{}",
        cd.log()
    );
    cd.assert_clean();
}
