//! A dump refuses, naming the process, a tree whose time namespaces it
//! could not recreate (tests/probes/timens.c covers the tree it can), and
//! leaves the tree running as it was.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::process::{Command, Stdio};

use common::{build_probe, dump_refused, wait_for, Reap};

mod common;

/// Starts refuse_timens in `mode`, dumps it, returns the error, the root's
/// pid and its child's; checks that both run on (none left stopped) and
/// that no image was written.
fn refused(mode: &str) -> (String, i32, i32) {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_probe(tmp.path(), "refuse_timens");
    let ready = tmp.path().join("ready");
    let child = Command::new(&exe)
        .arg(&ready)
        .arg(mode)
        // Only fds a dump takes: without the refusal, it would succeed.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let root = child.id() as i32;
    std::mem::forget(child);
    let _reap = Reap(root);
    wait_for(&ready);
    let kid: i32 = fs::read_to_string(&ready).unwrap().trim().parse().unwrap();
    let err = dump_refused(root, &[root, kid], tmp.path());
    (err, root, kid)
}

#[test]
#[ignore = "needs root"]
fn a_tree_in_two_time_namespaces_is_refused_by_pid() {
    let (err, root, kid) = refused("enter");
    assert_eq!(
        err,
        format!("pid {kid}: in another time namespace than the root {root}; not supported yet")
    );
}

#[test]
#[ignore = "needs root"]
fn a_process_making_children_in_another_time_namespace_is_refused_by_pid() {
    let (err, _, kid) = refused("unshare");
    assert_eq!(
        err,
        format!(
            "pid {kid}: makes its children in another time namespace than its own \
             (unshare(CLONE_NEWTIME) without entering it); not supported yet"
        )
    );
}
