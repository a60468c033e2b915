//! A dump refuses, naming the process, a tree whose sessions or process
//! groups it could not recreate, and leaves the tree running as it was.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{build_probe, dump_refused, wait_for, Reap};
use corral_checkpoint::collect;

mod common;

/// Starts refuse_tree in `mode`, dumps it, returns the error, the child's
/// pid and the process group it started in (led by a `sleep` outside the
/// tree: our own group may be 0, led from outside our pid namespace, as
/// under a CI runner that never called setsid); checks that every process
/// runs on (none left stopped).
fn refused(mode: &str) -> (String, i32, i32) {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_probe(tmp.path(), "refuse_tree");
    let ready = tmp.path().join("ready");
    let leader = Command::new("sleep")
        .arg("600")
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let group = leader.id() as i32;
    std::mem::forget(leader);
    let _reap_leader = Reap(group);
    let child = Command::new(&exe)
        .arg(&ready)
        .arg(mode)
        .process_group(group)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let root = child.id() as i32;
    std::mem::forget(child);
    let _reap = Reap(root);
    wait_for(&ready);
    let kid: i32 = fs::read_to_string(&ready).unwrap().trim().parse().unwrap();
    let err = dump_refused(root, &[root, kid], tmp.path());
    (err, kid, group)
}

#[test]
#[ignore = "needs root"]
fn a_session_led_from_outside_the_tree_is_refused_by_pid() {
    let (err, kid, _) = refused("session");
    // From /proc: rustix's getsid panics on 0.
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let sid = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(3) // state ppid pgrp session
        .unwrap();
    assert_eq!(
        err,
        format!("pid {kid}: session {sid} whose leader is not in the tree; not supported yet")
    );
}

#[test]
#[ignore = "needs root"]
fn a_group_led_from_outside_the_tree_is_refused_by_pid() {
    let (err, kid, pgid) = refused("group");
    assert_eq!(
        err,
        format!(
            "pid {kid}: process group {pgid} whose leader is not in the tree; not supported yet"
        )
    );
}

#[test]
#[ignore = "needs root"]
fn a_vfork_child_sharing_the_parents_memory_is_refused_by_pid() {
    let (err, kid, _) = refused("vfork");
    assert!(
        err.starts_with(&format!("pid {kid}: shares its memory with its parent ")),
        "{err}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_child_sharing_the_fd_table_is_refused_by_pid() {
    let (err, kid, _) = refused("files");
    assert!(
        err.starts_with(&format!("pid {kid}: shares its fd table with its parent ")),
        "{err}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_process_in_another_user_namespace_is_refused_by_pid() {
    // A bare restore would make it in our user namespace, where its ids and
    // capabilities mean something else.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new("unshare")
        .args(["--user", "--map-root-user", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child);
    let _reap = Reap(pid);
    let ours = fs::read_link("/proc/self/ns/user").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let theirs = loop {
        let ns = fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
        let map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
        if ns != ours
            && !map.trim().is_empty()
            && fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e.ends_with("sleep"))
        {
            break ns;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unshare did not exec sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let opts = collect::DumpOptions {
        pid,
        images_dir: tmp.path().join("img"),
        ..Default::default()
    };
    let err = collect::dump(&opts).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "pid {pid}: in another user namespace ({}) than the dumper's; not supported yet",
            theirs.display()
        )
    );
    assert!(!tmp.path().join("img/inventory.json").exists());
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
    assert!(matches!(state, 'S' | 'R'), "left {state}");
}
