//! `--action-script` around a real dump and restore of the `basic` probe:
//! the stages come in CRIU's order, the tree is stopped exactly while the
//! stopped stages run, and a failing script fails the dump and leaves the
//! process running.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{build_probe, wait_for, Reap};
use corral_checkpoint::{collect, restore};
use rustix::process::{kill_process, Pid, Signal};

mod common;

/// A script that logs "STAGE PID STATE" (STATE: the root's /proc state
/// letter, `t` when stopped under ptrace) and exits `fail_at`'s status 3 at
/// that stage.
fn script(dir: &Path, log: &Path, fail_at: &str) -> PathBuf {
    let p = dir.join("action.sh");
    let body = format!(
        "#!/bin/sh\n\
         st=$(cut -d' ' -f3 /proc/$CRTOOLS_INIT_PID/stat 2>/dev/null || echo -)\n\
         echo \"$CRTOOLS_SCRIPT_ACTION $CRTOOLS_INIT_PID $st\" >> {}\n\
         [ \"$CRTOOLS_SCRIPT_ACTION\" = \"{fail_at}\" ] && exit 3\n\
         exit 0\n",
        log.display()
    );
    fs::write(&p, body).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn start(dir: &Path) -> (i32, PathBuf) {
    let exe = build_probe(dir, "basic");
    let ready = dir.join("ready");
    let out = dir.join("probe.log");
    let child = Command::new(&exe)
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child); // reaped by the dump's kill, restore::wait or Reap
    wait_for(&ready);
    (pid, out)
}

fn finish(pid: i32, out: &Path) {
    kill_process(Pid::from_raw(pid).unwrap(), Signal::USR1).unwrap();
    assert_eq!(
        restore::wait(pid).unwrap(),
        0,
        "{}",
        fs::read_to_string(out).unwrap()
    );
}

#[test]
#[ignore = "needs root"]
fn the_script_runs_at_every_stage_in_order() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("stages");
    let s = script(tmp.path(), &log, "none");
    let (pid, out) = start(tmp.path());
    let reap = Reap(pid);
    let images = tmp.path().join("img");
    collect::dump(&collect::DumpOptions {
        pid,
        images_dir: images.clone(),
        action_script: Some(s.clone()),
        ..Default::default()
    })
    .unwrap();
    let opts = restore::RestoreOptions {
        action_script: Some(s),
        ..Default::default()
    };
    assert_eq!(restore::restore_with(&images, &opts).unwrap().pid, pid);
    finish(pid, &out);
    std::mem::forget(reap);
    let stages: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f[1], pid.to_string(), "{l}");
            format!("{} {}", f[0], f[2])
        })
        .collect();
    // Running before the dump, stopped under ptrace while the image is
    // taken; on restore the root is stopped (rebuilt, not running yet).
    let running = |s: &str| s == "R" || s == "S";
    assert_eq!(stages.len(), 6, "{stages:?}");
    let want = [
        "pre-dump",
        "network-lock",
        "post-dump",
        "pre-restore",
        "post-restore",
        "network-unlock",
    ];
    for (got, want) in stages.iter().zip(want) {
        let (name, st) = got.split_once(' ').unwrap();
        assert_eq!(name, want, "{stages:?}");
        match name {
            "pre-dump" => assert!(running(st), "{got}"),
            "pre-restore" => assert_eq!(st, "-", "{got}: the pid is free before the restore"),
            _ => assert_eq!(st, "t", "{got}: stopped under ptrace"),
        }
    }
}

#[test]
#[ignore = "needs root"]
fn a_failing_script_fails_the_dump_and_the_process_runs_on() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    for stage in ["pre-dump", "network-lock", "post-dump"] {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("stages");
        let s = script(tmp.path(), &log, stage);
        let (pid, out) = start(tmp.path());
        let reap = Reap(pid);
        let err = collect::dump(&collect::DumpOptions {
            pid,
            images_dir: tmp.path().join("img"),
            action_script: Some(s),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(stage) && err.contains("exit status: 3"),
            "{stage}: {err}"
        );
        let stages = fs::read_to_string(&log).unwrap();
        if stage != "pre-dump" {
            // Stopped and then let go: the network is unlocked again.
            let last = stages.lines().last().unwrap_or_default();
            // Unlocked once it runs again, untraced (its loop spins: R,
            // not t).
            assert_eq!(last, format!("network-unlock {pid} R"), "{stage}: {stages}");
        }
        // Untraced and running: it passes its own check.
        finish(pid, &out);
        std::mem::forget(reap);
    }
}
