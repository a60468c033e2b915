//! Rootless: an unprivileged user (a uid with no privileges and no
//! passwd entry, made by `setpriv`) writes a spec with `spec --rootless` and
//! runs a container: a user namespace mapping the user to root, state under
//! `$XDG_RUNTIME_DIR/corral`, no cgroup (not delegated) with a warning.
//!
//! Run as root: `cargo test -p corral --test rootless -- --include-ignored`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{is_runc, output_tracked, runtime_bin, spawn_tracked, wait_tracked, Bundle};

/// The unprivileged user the test runs as.
const UID: u32 = 61234;

fn as_user(cwd: &std::path::Path, xdg: &std::path::Path, args: &[&str]) -> std::process::Output {
    output_tracked(&mut user_command(cwd, xdg, args))
}

fn user_command(cwd: &std::path::Path, xdg: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={UID}"),
        &format!("--regid={UID}"),
        "--clear-groups",
        "--",
    ])
    .arg(runtime_bin())
    .args(args)
    .current_dir(cwd)
    .env("XDG_RUNTIME_DIR", xdg)
    .env_remove("HOME");
    cmd
}

#[test]
#[ignore = "needs root"]
fn an_unprivileged_user_runs_a_container() {
    if is_runc() {
        return; // runc keeps rootless state elsewhere; this is corral's contract
    }
    let bundle = Bundle::new("rootless");
    let dir = bundle.dir();
    // The user owns the bundle directory (to write config.json) and its
    // runtime dir; the rootfs stays root's, readable by all.
    fs::remove_file(bundle.config_path()).unwrap();
    rustix::fs::chown(
        &dir,
        Some(rustix::fs::Uid::from_raw(UID)),
        Some(rustix::fs::Gid::from_raw(UID)),
    )
    .unwrap();
    let xdg = bundle.tmp_dir().join("xdg");
    fs::create_dir(&xdg).unwrap();
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    rustix::fs::chown(
        &xdg,
        Some(rustix::fs::Uid::from_raw(UID)),
        Some(rustix::fs::Gid::from_raw(UID)),
    )
    .unwrap();
    fs::set_permissions(bundle.tmp_dir(), fs::Permissions::from_mode(0o755)).unwrap();

    let out = as_user(&dir, &xdg, &["spec", "--rootless"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.set_terminal(false);
    bundle.set_args(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /tmp/x && echo writable; exit 4",
    ]);

    let out = as_user(&dir, &xdg, &["run", bundle.id()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    let lines: Vec<String> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "0", "root inside: {stdout}");
    assert_eq!(
        lines[1],
        format!("0 {UID} 1"),
        "the user mapped to root: {stdout}"
    );
    assert!(
        stderr.contains("rootless") && stderr.contains("cgroup"),
        "a warning about the cgroup: {stderr}"
    );
    // State lived under $XDG_RUNTIME_DIR/corral and is gone after run.
    let state = xdg.join("corral");
    assert!(state.is_dir(), "state root {}", state.display());
    assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "no state left");

    // A detached one shows up in the user's list and is killed and deleted.
    bundle.set_args(&["sleep", "1000"]);
    // Detached, the container keeps the runtime's stdio: give it none.
    let mut run = user_command(&dir, &xdg, &["run", "-d", bundle.id()]);
    run.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = spawn_tracked(run.stdin(std::process::Stdio::null()));
    let status = wait_tracked(&mut child, common::TIMEOUT).expect("run -d returns");
    assert!(status.success(), "run -d as the user");
    let out = as_user(&dir, &xdg, &["list", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), bundle.id());
    let out = as_user(&dir, &xdg, &["delete", "--force", bundle.id()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "no state left");
    bundle.assert_no_leaks();
}
