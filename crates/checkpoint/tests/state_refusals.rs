//! Kernel state a dump cannot restore faithfully yet is refused by name,
//! and the process runs on untouched. Each program of tests/state_refusals/
//! sets up one such state, writes its ready file and waits.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{wait_for, Reap};
use corral_checkpoint::collect;

mod common;

/// Builds and starts tests/state_refusals/NAME.c, dumps it and returns the
/// error text with `{pid}` put for the pid; the process must be alive
/// after the refusal.
fn refusal(name: &str, settle: impl Fn(i32) -> bool) -> (Reap, String) {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/state_refusals/{name}.c"));
    let exe = tmp.path().join(name);
    let st = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "cc {}", src.display());
    let ready = tmp.path().join("ready");
    // Not our stdout: a pipe would be refused first.
    let log = fs::File::create(tmp.path().join("log")).unwrap();
    let child = Command::new(&exe)
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child);
    let reap = Reap(pid);
    wait_for(&ready);
    for _ in 0..1000 {
        if settle(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let opts = collect::DumpOptions {
        pid,
        images_dir: tmp.path().join("img"),
        leave_running: false,
        ..Default::default()
    };
    let err = collect::dump(&opts).expect_err("the dump must refuse");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        !status.contains("State:\tZ") && !status.contains("TracerPid:\t1"),
        "{name}: the refused process did not run on:\n{status}"
    );
    assert!(
        status.contains("TracerPid:\t0"),
        "{name}: still traced after the refusal"
    );
    assert!(
        !tmp.path().join("img/inventory.json").exists(),
        "{name}: a refused dump left an image"
    );
    (reap, err.to_string())
}

fn settled(_: i32) -> bool {
    true
}

#[test]
#[ignore = "needs root"]
fn a_timer_on_an_unknown_threads_cpu_time_is_refused() {
    let (reap, err) = refusal("cpu_timer", settled);
    let pid = reap.0;
    assert_eq!(
        err,
        format!(
            "pid {pid}: POSIX timer 0 on clock -2: the CPU time of the thread that made it, which is unknown; not supported yet"
        )
    );
}

#[test]
#[ignore = "needs root"]
fn seccomp_strict_mode_is_refused() {
    let strict = |pid: i32| {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .contains("Seccomp:\t1")
    };
    let (reap, err) = refusal("seccomp_strict", strict);
    let pid = reap.0;
    assert_eq!(
        err,
        format!("pid {pid}: seccomp mode 1 (strict); not supported yet")
    );
}

#[test]
#[ignore = "needs root"]
fn a_seccomp_listener_filter_is_refused() {
    let (reap, err) = refusal("seccomp_listener", settled);
    let pid = reap.0;
    assert_eq!(
        err,
        format!(
            "pid {pid}: seccomp filter 0 of thread {pid} hands syscalls to a user-space listener; not supported yet"
        )
    );
}

#[test]
#[ignore = "needs root"]
fn a_thread_with_other_credentials_is_refused() {
    let (reap, err) = refusal("thread_creds", settled);
    let pid = reap.0;
    let tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .filter(|&t| t != pid)
        .collect();
    assert_eq!(
        err,
        format!(
            "pid {pid}: thread {}: Uid differs from the leader's; not supported yet",
            tids[0]
        )
    );
}
