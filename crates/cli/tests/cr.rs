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
    wait_until("sleep never ran", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() == "sleep\n"
    });
    cr_dump(pid, &images);
    let _ = wait_tracked(&mut sleeper, Duration::from_secs(5));
    let mut restorer = cr_restore(&images);
    wait_until("not restored", || {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
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

/// A process tree through the command line: `cr dump` takes the root and
/// its descendants, `cr show` lists them under their parents, and `cr
/// restore` in the foreground brings all back and exits with the root's
/// status once the probe (tests/probes/tree.c of the checkpoint crate)
/// passed its checks in every process.
#[test]
#[ignore = "needs root"]
fn a_tree_is_dumped_shown_and_restored_in_the_foreground() {
    common::become_subreaper();
    let tmp = tempfile::tempdir().unwrap();
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkpoint/tests/probes/tree.c");
    let exe = tmp.path().join("tree");
    let cc = common::status_tracked(
        Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&exe)
            .arg(&src),
    );
    assert!(cc.success());
    let (ready, log, images) = (
        tmp.path().join("ready"),
        tmp.path().join("log"),
        tmp.path().join("img"),
    );
    let out = std::fs::File::create(&log).unwrap();
    let mut probe = spawn_tracked(
        Command::new(&exe)
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out),
    );
    let pid = i32::try_from(probe.id()).unwrap();
    wait_until("the probe never got ready", || ready.exists());
    cr_dump(pid, &images);
    let _ = wait_tracked(&mut probe, Duration::from_secs(5));

    let show = common::output_tracked(
        Command::new(runtime_bin())
            .args(["cr", "show"])
            .arg(&images),
    );
    assert!(show.status.success(), "{show:?}");
    let text = String::from_utf8(show.stdout).unwrap();
    let tree: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("process tree"))
        .skip(1)
        .take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with(char::is_alphabetic))
        .collect();
    assert_eq!(tree.len(), 4, "{text}");
    assert!(tree[0].starts_with(&format!("  {pid} ")), "{text}");
    // Children are indented under their parent.
    assert_eq!(
        tree.iter()
            .filter(|l| l.starts_with("    ") && !l.starts_with("      "))
            .count(),
        2,
        "{text}"
    );
    assert!(tree[2].starts_with("      "), "{text}");

    let mut restorer = cr_restore(&images);
    wait_until("not restored", || {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .count()
            == 2
    });
    std::thread::sleep(Duration::from_millis(100)); // every process resumed
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::USR1,
    )
    .unwrap();
    let status = wait_tracked(&mut restorer, Duration::from_secs(10));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; probe log:\n{text}"
    );
    assert!(text.lines().any(|l| l == "ok"), "{text}");
}

/// Polls `done` every 5 ms for 10 s at most; panics naming `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `corral cr dump --pid PID --images-dir IMAGES`, which must succeed.
fn cr_dump(pid: i32, images: &std::path::Path) {
    let dump = common::output_tracked(
        Command::new(runtime_bin())
            .args(["cr", "dump", "--pid", &pid.to_string(), "--images-dir"])
            .arg(images),
    );
    assert!(dump.status.success(), "{dump:?}");
}

/// `corral cr restore --images-dir IMAGES` in the foreground, tracked.
fn cr_restore(images: &std::path::Path) -> std::process::Child {
    spawn_tracked(
        Command::new(runtime_bin())
            .args(["cr", "restore", "--images-dir"])
            .arg(images)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}
