//! `corral cr` from the command line (the checkpoint crate's own tests
//! cover what an image holds and how it comes back).
//!
//! Run as root: `cargo test -p corral --test cr -- --include-ignored`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{kill_pid, runtime_bin, spawn_tracked, wait_tracked};

/// `cr restore` runs from a read-only mount of corral's binary, as
/// `create` does (CVE-2019-5736): the restored process is a clone of corral
/// until the image replaces it, and corral waits beside it.
#[test]
#[ignore = "needs root"]
fn cr_restore_runs_from_a_read_only_binary() {
    common::become_subreaper();
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("img");
    // Only stdio: a harness may leak fds (pipes) the dump would refuse.
    let mut sleeper = spawn_tracked(
        Command::new("python3")
            .args([
                "-c",
                "import os; os.closerange(3, 1 << 16); os.execvp('sleep', ['sleep', '1000'])",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let pid = i32::try_from(sleeper.id()).unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(start.elapsed() < Duration::from_secs(10), "sleep never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let dump = Command::new(runtime_bin())
        .args(["cr", "dump", "--pid", &pid.to_string(), "--images-dir"])
        .arg(&images)
        .output()
        .unwrap();
    assert!(dump.status.success(), "{dump:?}");
    let _ = wait_tracked(&mut sleeper, Duration::from_secs(5));
    let mut restorer = spawn_tracked(
        Command::new(runtime_bin())
            .args(["cr", "restore", "--images-dir"])
            .arg(&images)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let start = Instant::now();
    while !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "not restored");
        std::thread::sleep(Duration::from_millis(10));
    }
    let exe = format!("/proc/{}/exe", restorer.id());
    let flags = rustix::fs::statvfs(exe.as_str()).unwrap().f_flag;
    kill_pid(pid);
    let status = wait_tracked(&mut restorer, Duration::from_secs(10));
    assert!(
        flags.contains(rustix::fs::StatVfsMountFlags::RDONLY),
        "{exe} is on a writable mount: {flags:?}"
    );
    // The restored sleep was killed: corral reports its signal.
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
}
