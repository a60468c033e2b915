//! Tests of the test fixture itself: the leak check must see each kind of
//! leak, and a bundle's `Drop` must clean it up.
//!
//! Run as root: `cargo test -p corral --test fixture -- --include-ignored`.

mod common;

use std::{fs, path::PathBuf, process::Command, thread, time::Duration};

use common::{process_alive, Bundle};

#[test]
#[ignore = "needs root"]
fn leak_check_sees_and_drop_removes_cgroups_mounts_processes_and_state() {
    let bundle = Bundle::new("fixture");
    assert!(bundle.leaks().is_empty(), "{:?}", bundle.leaks());

    let cgroup = PathBuf::from("/sys/fs/cgroup/pids").join(bundle.id());
    fs::create_dir(&cgroup).unwrap();
    let target = bundle.rootfs().join("tmp");
    let mounted = common::status_tracked(
        Command::new("mount")
            .args(["-t", "tmpfs", "corral-fixture"])
            .arg(&target),
    );
    assert!(mounted.success());
    // An orphaned process (`sleep`) in the leaked cgroup; its stdout is not
    // the pipe `output()` reads to EOF.
    let spawned = common::output_tracked(Command::new("sh").args([
        "-c",
        "sleep 1000 >/dev/null 2>&1 & echo $!",
        bundle.id(),
    ]));
    let pid: i32 = String::from_utf8(spawned.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // `sleep`'s cmdline lacks the id; its cgroup names it.
    fs::write(cgroup.join("cgroup.procs"), pid.to_string()).unwrap();
    fs::create_dir_all(bundle.state_dir()).unwrap();

    let leaks = bundle.leaks();
    for kind in [
        "cgroup: ",
        "mount: ",
        &format!("process {pid}:"),
        "state dir: ",
    ] {
        assert!(
            leaks.iter().any(|l| l.starts_with(kind)),
            "{kind:?} missing from {leaks:#?}"
        );
    }

    let tmp = bundle.tmp_dir();
    drop(bundle); // logs the leaks, then scrubs them
    thread::sleep(Duration::from_millis(50));
    assert!(!cgroup.exists(), "Drop left {}", cgroup.display());
    assert!(!process_alive(pid), "Drop left pid {pid}");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains("corral-fixture"), "Drop left the mount");
    assert!(!tmp.exists(), "Drop left {}", tmp.display());
}
