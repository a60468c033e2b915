//! start → dump → kill → restore → signal → exit 0, with the `memory` probe
//! (tests/probes/memory.c, built here with `cc -static`).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{build_probe, wait_for, Reap};
use corral_checkpoint::{collect, image, restore};
use rustix::process::{kill_process, Pid, Signal};

mod common;

/// Starts the probe with stdio on /dev/null and a log file; returns its pid.
fn start(probe: &Path, dir: &Path, mib: u32) -> (i32, PathBuf) {
    let ready = dir.join("ready");
    let log = dir.join("probe.log");
    let out = fs::File::create(&log).unwrap();
    let child = Command::new(probe)
        .arg(mib.to_string())
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    wait_for(&ready);
    // The dump reaps it (we are its parent and its tracer), or the test
    // does through restore::wait: std's handle is not needed.
    let pid = child.id() as i32;
    std::mem::forget(child);
    (pid, log)
}

fn dump_restore_verify(mib: u32, leave_running: bool) {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let probe = build_probe(tmp.path(), "memory");
    let (pid, log) = start(&probe, tmp.path(), mib);
    // Kills the probe (or the restored copy, our child too) if the test
    // fails half way; forgotten once the last one is reaped, so a reused
    // pid is never hit.
    let reap = Reap(pid);
    let images = tmp.path().join("img");
    let opts = collect::DumpOptions {
        pid,
        images_dir: images.clone(),
        leave_running,
        ..Default::default()
    };
    let st = collect::dump(&opts).unwrap();
    assert!(st.page_bytes >= u64::from(mib) << 20, "{st:?}");
    let img = image::ImageDir::open(&images).unwrap();
    assert_eq!(img.inventory.root_pid, pid);
    assert_eq!(img.tasks[0].comm, "memory");
    // VmFlags come from smaps, read beside the page copy.
    assert!(img.tasks[0]
        .vmas
        .iter()
        .all(|v| v.vm_flags.contains(&"rd".to_owned()) || v.prot & libc::PROT_READ as u32 == 0));
    assert!(img.tasks[0]
        .sigactions
        .iter()
        .any(|a| a.signo == libc::SIGUSR1 as u32));
    let target = Pid::from_raw(pid).unwrap();
    if leave_running {
        // Still running and intact: let it check itself, then restore a copy.
        kill_process(target, Signal::USR1).unwrap();
        assert_eq!(
            restore::wait(pid).unwrap(),
            0,
            "{}",
            fs::read_to_string(&log).unwrap()
        );
    } else {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "dump did not kill {pid}"
        );
    }
    let r = restore::restore(&images).unwrap();
    assert_eq!(r.pid, pid);
    std::thread::sleep(Duration::from_millis(50)); // let the loop count on
    kill_process(target, Signal::USR1).unwrap();
    let code = restore::wait(pid).unwrap();
    std::mem::forget(reap);
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok: 0 differences"), "{text}");
}

#[test]
#[ignore = "needs root"]
fn memory_probe_comes_back_under_its_pid() {
    dump_restore_verify(64, false);
}

#[test]
#[ignore = "needs root"]
fn memory_probe_with_leave_running_then_restore() {
    dump_restore_verify(16, true);
}

#[test]
#[ignore = "needs root"]
fn an_fd_on_a_pipe_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = build_probe(tmp.path(), "memory");
    let ready = tmp.path().join("ready");
    let mut child = Command::new(&probe)
        .arg("1")
        .arg(&ready)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ready);
    let pid = child.id() as i32;
    let opts = collect::DumpOptions {
        pid,
        images_dir: tmp.path().join("img"),
        leave_running: false,
        ..Default::default()
    };
    let err = collect::dump(&opts).unwrap_err().to_string();
    assert!(err.starts_with(&format!("pid {pid} fd 0: pipe:[")), "{err}");
    assert!(err.ends_with("; not supported yet"), "{err}");
    // Refused before anything was written, and the probe runs on.
    assert!(!tmp.path().join("img/inventory.json").exists());
    kill_process(Pid::from_raw(pid).unwrap(), Signal::USR1).unwrap();
    assert!(child.wait().unwrap().success());
}
