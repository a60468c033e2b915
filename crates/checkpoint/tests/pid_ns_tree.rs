//! A bare tree dumped from outside its own pid namespace (trap 7 of
//! CHECKPOINT-NOTES.md): the tree probe (tests/probes/tree.c) started as
//! pid 1 of a new pid namespace with its own /proc (`unshare -pf
//! --mount-proc`) is dumped with the namespace's pids and restored as pid 1
//! of a new pid namespace, in a new mount namespace whose /proc shows it;
//! every process checks its pid, parent and memory there. A process of
//! such a namespace that is not its pid 1 is refused by name.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{build_probe, tree_of, wait_for, Reap};
use corral_checkpoint::{collect, image::ImageDir, restore};
use rustix::process::{kill_process, Pid, Signal};

mod common;

/// The last `NSpid` of a task.
fn ns_pid(pid: i32) -> i32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"));
    line.unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

fn link(path: &str) -> String {
    fs::read_link(path).unwrap().to_string_lossy().into_owned()
}

#[test]
#[ignore = "needs root"]
fn a_tree_from_its_own_pid_namespace_comes_back_in_a_new_one() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_probe(tmp.path(), "tree");
    let (ready, log, img) = (
        tmp.path().join("ready"),
        tmp.path().join("probe.log"),
        tmp.path().join("img"),
    );
    let out = fs::File::create(&log).unwrap();
    let unshare = Command::new("unshare")
        .args(["-pf", "--mount-proc"])
        .arg(&exe)
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let unshare_pid = unshare.id() as i32;
    std::mem::forget(unshare);
    let _reap_unshare = Reap(unshare_pid);
    wait_for(&ready);
    let tree = tree_of(unshare_pid);
    // unshare, the root (pid 1 there), its two children and a grandchild.
    assert_eq!(tree.len(), 5, "{tree:?}");
    let root = tree[1];
    let ns_pids: Vec<i32> = tree[1..].iter().map(|&p| ns_pid(p)).collect();
    assert_eq!(ns_pids[0], 1);

    // A process of that namespace other than its pid 1 is refused, and
    // left running.
    let child = tree[2];
    let opts = collect::DumpOptions {
        pid: child,
        images_dir: tmp.path().join("refused"),
        leave_running: true,
        ..Default::default()
    };
    let err = collect::dump(&opts).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "pid {child}: in a pid namespace other than the dumper's as pid {}, not its pid 1; not supported yet",
            ns_pids[1]
        )
    );
    assert!(!tmp.path().join("refused/inventory.json").exists());

    let opts = collect::DumpOptions {
        pid: root,
        images_dir: img.clone(),
        ..Default::default()
    };
    collect::dump(&opts).unwrap();
    let image = ImageDir::open(&img).unwrap();
    let inv = &image.inventory;
    assert!(inv.pid_ns && inv.mount_ns, "{inv:?}");
    assert_eq!(inv.root_pid, 1);
    let mut dumped: Vec<i32> = inv.tree.iter().map(|e| e.pid).collect();
    let mut want = ns_pids.clone();
    dumped.sort_unstable();
    want.sort_unstable();
    assert_eq!(dumped, want, "the image holds the namespace's pids");
    // The dump killed the tree: unshare, its parent, exits.
    let st = rustix::process::waitpid(
        Pid::from_raw(unshare_pid),
        rustix::process::WaitOptions::empty(),
    );
    assert!(st.is_ok());

    let restored = restore::restore(&img).unwrap();
    let host = restored.pid;
    let _reap = Reap(host);
    assert_eq!(ns_pid(host), 1, "the root is pid 1 of its namespace");
    assert_ne!(
        link(&format!("/proc/{host}/ns/pid")),
        link("/proc/self/ns/pid")
    );
    assert_ne!(
        link(&format!("/proc/{host}/ns/mnt")),
        link("/proc/self/ns/mnt")
    );
    // Its /proc is its own namespace's: pid 1 there is the probe.
    let inside = Path::new("/proc")
        .join(host.to_string())
        .join("root/proc/1/comm");
    assert_eq!(fs::read_to_string(&inside).unwrap(), "tree\n");
    let mut now: Vec<i32> = tree_of(host).iter().map(|&p| ns_pid(p)).collect();
    now.sort_unstable();
    assert_eq!(now, want);

    kill_process(Pid::from_raw(host).unwrap(), Signal::USR1).unwrap();
    let code = restore::wait(host).unwrap();
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "probe log:\n{text}");
    assert!(text.lines().any(|l| l == "ok"), "probe log:\n{text}");
}

#[test]
#[ignore = "needs root"]
fn a_process_in_a_pid_namespace_nested_in_the_trees_is_refused_by_pid() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let script = format!(
        "unshare -pf sleep 600 & touch {}; wait",
        ready.to_str().unwrap()
    );
    let sh = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let root = sh.id() as i32;
    std::mem::forget(sh);
    let _reap = Reap(root);
    wait_for(&ready);
    let start = std::time::Instant::now();
    let tree = loop {
        let tree = tree_of(root);
        let comm = |p: i32| fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if tree.len() == 3 && comm(tree[2]) == "sleep\n" {
            break tree;
        }
        assert!(start.elapsed().as_secs() < 10, "{tree:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let opts = collect::DumpOptions {
        pid: root,
        images_dir: tmp.path().join("img"),
        leave_running: true,
        ..Default::default()
    };
    let err = collect::dump(&opts).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "pid {}: lives in a pid namespace nested in the tree's; not supported yet",
            tree[2]
        )
    );
    assert!(!tmp.path().join("img/inventory.json").exists());
    for pid in tree {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
        assert!(!matches!(state, 't' | 'T'), "pid {pid} left stopped");
    }
}
