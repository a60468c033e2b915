//! `corral checkpoint` and `corral restore` of a container (issue 8):
//! a counting process in a busybox container is checkpointed, restored
//! from its image and counts on from where it was, under pid 1 of a new
//! pid namespace, in a cgroup with config.json's limit; refusals and
//! errors leave nothing behind.
//!
//! podman drives the same commands (`podman container checkpoint` and
//! `restore`; podman wants a `criu` binary for its version check, Debian's
//! is there).
//!
//! Run as root: `cargo test -p corral --test checkpoint -- --include-ignored`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

mod common;
#[path = "common/engines.rs"]
mod engines;

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{cgroup_dir_of, cgroup_dirs_named, status_tracked, Bundle};
use engines::Podman;

const MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// A bundle whose process counts into /tmp/count, with a memory limit (and
/// `corral spec`'s few capabilities and no_new_privs).
fn counting(name: &str) -> Bundle {
    counting_with(Bundle::new(name))
}

/// [`counting`] of a bundle made by the caller.
fn counting_with(bundle: Bundle) -> Bundle {
    bundle.install_program("tests/ckpt/counter.c", "counter");
    bundle.set_args(&["/bin/counter", "/tmp/count"]);
    bundle.edit_config(|c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["resources"]["memory"] = serde_json::json!({ "limit": MEMORY_LIMIT });
    });
    bundle
}

/// The credential lines of /proc/PID/status, blanks squeezed.
fn credentials(pid: i32) -> Vec<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .filter(|l| {
            ["Uid:", "Gid:", "Groups:", "Cap", "NoNewPrivs:", "Seccomp:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The number the counter last wrote (0 before its first).
fn count(bundle: &Bundle) -> u64 {
    fs::read_to_string(bundle.rootfs().join("tmp/count"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Waits until the counter has passed `above`; returns its value.
#[track_caller]
fn count_past(bundle: &Bundle, above: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = count(bundle);
        if n > above {
            return n;
        }
        assert!(Instant::now() < deadline, "the counter stays at {n}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn run_detached(bundle: &Bundle) {
    bundle
        .runtime(&["run", "--detach", bundle.id()])
        .assert_success();
    bundle.wait_for_status("running");
}

fn image_dir(bundle: &Bundle, name: &str) -> PathBuf {
    bundle.tmp_dir().join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn restore_detached(bundle: &Bundle, img: &Path, id: &str) -> common::Output {
    let pid_file = bundle.tmp_dir().join("restored.pid");
    let dir = bundle.dir();
    bundle.runtime(&[
        "restore",
        "--image-path",
        s(img),
        "--bundle",
        s(&dir),
        "--detach",
        "--pid-file",
        s(&pid_file),
        id,
    ])
}

/// Checkpoints the container of `bundle` into its image directory
/// `image`, which must succeed; the image's path.
fn checkpoint(bundle: &Bundle) -> PathBuf {
    let img = image_dir(bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
    img
}

/// [`checkpoint`], then a detached restore under the same id, which must
/// succeed; the image's path.
fn checkpoint_and_restore(bundle: &Bundle) -> PathBuf {
    let img = checkpoint(bundle);
    restore_detached(bundle, &img, bundle.id()).assert_success();
    img
}

fn ns_pid(pid: i32) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned()
}

#[test]
#[ignore = "needs root"]
fn a_checkpointed_container_is_gone_and_its_restore_counts_on() {
    let bundle = counting("ckpt");
    run_detached(&bundle);
    // Far enough from a fresh start that one could not pass for the other.
    let before = count_past(&bundle, 50);
    let img = image_dir(&bundle, "image");
    let work = image_dir(&bundle, "work");
    bundle
        .runtime(&[
            "checkpoint",
            "--image-path",
            s(&img),
            "--work-path",
            s(&work),
            bundle.id(),
        ])
        .assert_success();
    assert!(img.join("container.json").is_file());
    assert!(img.join("inventory.img").is_file(), "podman's marker");
    assert!(work.join("dump.log").is_file());

    // Gone, as runc leaves it: no state, no cgroup, no counting.
    bundle
        .runtime(&["state", bundle.id()])
        .assert_error(&["does not exist"], &[]);
    assert!(cgroup_dirs_named(bundle.id()).is_empty());
    let dumped = count(&bundle);
    assert!(dumped >= before);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&bundle),
        dumped,
        "the process runs on after the checkpoint"
    );

    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let state = bundle.state();
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().unwrap() as i32;
    let pid_file = fs::read_to_string(bundle.tmp_dir().join("restored.pid")).unwrap();
    assert_eq!(pid_file.trim(), pid.to_string());
    assert_eq!(
        ns_pid(pid),
        "1",
        "the restored process is pid 1 of its namespace"
    );
    // It counts on from the dumped value: 300 ms after a fresh start the
    // file would hold about 15.
    thread::sleep(Duration::from_millis(300));
    let after = count(&bundle);
    assert!(
        after > dumped && after < dumped + 200,
        "dumped at {dumped}, {after} 300 ms after the restore"
    );
    let mem = cgroup_dir_of(pid, "memory").join("memory.limit_in_bytes");
    let limit: u64 = fs::read_to_string(&mem).unwrap().trim().parse().unwrap();
    assert_eq!(limit, MEMORY_LIMIT, "{}", mem.display());

    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn leave_running_keeps_the_container_and_its_image_restores_later() {
    let bundle = counting("ckpt-leave");
    run_detached(&bundle);
    let pid = bundle.pid();
    count_past(&bundle, 3);
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&[
            "checkpoint",
            "--leave-running",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_success();
    assert_eq!(bundle.status(), "running");
    assert_eq!(bundle.pid(), pid);
    let n = count(&bundle);
    count_past(&bundle, n);

    // Its id is taken: a restore under it fails, and harms nothing.
    restore_detached(&bundle, &img, bundle.id()).assert_error(&["already exists"], &[]);
    assert_eq!(bundle.status(), "running");
    assert_eq!(bundle.pid(), pid);

    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    assert_eq!(bundle.status(), "running");
    let n = count(&bundle);
    count_past(&bundle, n);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn flags_not_implemented_are_refused_by_name() {
    let bundle = counting("ckpt-flags");
    run_detached(&bundle);
    let img = image_dir(&bundle, "image");
    for flag in [
        "--lazy-pages",
        "--pre-dump",
        "--auto-dedup",
        "--tcp-established",
    ] {
        bundle
            .runtime(&["checkpoint", flag, "--image-path", s(&img), bundle.id()])
            .assert_error(&[flag, "not supported yet"], &[]);
    }
    bundle
        .runtime(&[
            "checkpoint",
            "--page-server",
            "127.0.0.1:1",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_error(&["--page-server", "not supported yet"], &[]);
    bundle
        .runtime(&[
            "checkpoint",
            "--manage-cgroups-mode",
            "full",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_error(&["--manage-cgroups-mode full", "not supported yet"], &[]);
    bundle
        .runtime(&[
            "checkpoint",
            "--empty-ns",
            "ipc",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_error(&["--empty-ns ipc", "not supported yet"], &[]);
    assert!(!img.exists(), "a refused checkpoint wrote an image");
    assert_eq!(bundle.status(), "running");
    let dir = bundle.dir();
    for flag in ["--lazy-pages", "--auto-dedup"] {
        bundle
            .runtime(&[
                "restore",
                flag,
                "--image-path",
                s(&img),
                "--bundle",
                s(&dir),
                "other",
            ])
            .assert_error(&[flag, "not supported yet"], &[]);
    }
    bundle
        .runtime(&[
            "restore",
            "--lsm-profile",
            "apparmor:x",
            "--image-path",
            s(&img),
            "--bundle",
            s(&dir),
            "other",
        ])
        .assert_error(&["--lsm-profile", "not supported yet"], &[]);
    assert!(!bundle.state_root().join("other").exists());
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn unknown_ids_and_missing_images_are_clear_errors() {
    let bundle = counting("ckpt-unknown");
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), "no-such-container"])
        .assert_error(&["no-such-container", "does not exist"], &[]);
    assert!(!img.exists());
    // A restore from a directory without an image creates nothing.
    fs::create_dir_all(&img).unwrap();
    restore_detached(&bundle, &img, bundle.id()).assert_error(&["container.json"], &[]);
    assert!(!bundle.state_dir().exists());
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_mount_made_after_start_is_refused_by_name() {
    let bundle = counting("ckpt-mount");
    run_detached(&bundle);
    let pid = bundle.pid().to_string();
    let st = status_tracked(
        Command::new("nsenter").args(["-t", &pid, "-m", "mount", "-t", "tmpfs", "extra", "/root"]),
    );
    assert!(st.success());
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(&["mount on /root", "after the container started"], &[]);
    assert!(!img.exists(), "a refused checkpoint wrote an image");
    assert_eq!(bundle.status(), "running");
    let n = count(&bundle);
    count_past(&bundle, n);
    bundle.assert_no_leaks();
}

/// Runs `nsenter -t PID <args>` and asserts success.
fn nsenter(pid: i32, args: &[&str]) {
    let pid = pid.to_string();
    let st = status_tracked(Command::new("nsenter").args(["-t", &pid]).args(args));
    assert!(st.success(), "nsenter {args:?}");
}

#[test]
#[ignore = "needs root"]
fn a_network_interface_besides_loopback_is_refused_by_name() {
    let bundle = counting("ckpt-net");
    run_detached(&bundle);
    nsenter(
        bundle.pid(),
        &["-n", "ip", "link", "add", "ckbr0", "type", "bridge"],
    );
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(&["network interface ckbr0", "only loopback"], &[]);
    assert!(!img.exists(), "a refused checkpoint wrote an image");
    assert_eq!(bundle.status(), "running");
    // With --empty-ns network its contents are not the container's to keep:
    // the restore's namespace has loopback alone.
    bundle
        .runtime(&[
            "checkpoint",
            "--empty-ns",
            "network",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_success();
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let dev = fs::read_to_string(format!("/proc/{}/net/dev", bundle.pid())).unwrap();
    assert!(!dev.contains("ckbr0"), "{dev}");
    bundle.assert_no_leaks();
}

/// A bundle running crates/checkpoint/tests/probes/sysv.c (static) with
/// /tmp as its directory: it makes SysV objects in the container's IPC
/// namespace, writes their ids to /tmp/ready, and on /tmp/go checks them
/// all and writes /tmp/result.
fn sysv_bundle(name: &str) -> Bundle {
    let bundle = Bundle::new(name);
    bundle.install_program("../checkpoint/tests/probes/sysv.c", "sysv");
    bundle.set_args(&["/bin/sysv", "/tmp"]);
    bundle.edit_config(|c| c["root"]["readonly"] = false.into());
    bundle
}

/// Waits (10 s at most) until `done` holds; fails the test naming `what`.
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    common::wait_for(what, || done().then_some(()));
}

/// Asks the container's program for its check (tests/ckpt/sockets.c:
/// /tmp/check appears) and returns its answer (/tmp/result).
#[track_caller]
fn checked(bundle: &Bundle) -> String {
    fs::write(bundle.rootfs().join("tmp/check"), "").unwrap();
    wait_for_file(&bundle.rootfs().join("tmp/result"))
        .trim()
        .to_owned()
}

/// Waits (10 s at most) for `path`; returns its contents.
#[track_caller]
fn wait_for_file(path: &Path) -> String {
    common::wait_for(&format!("{} never appeared", path.display()), || {
        fs::read_to_string(path).ok()
    })
}

fn ipc_ns(pid: &str) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap()
}

/// Checkpoint (with `--leave-running` or not), restore, then the probe
/// checks its segments (contents, and that its mappings still alias them),
/// semaphores and queue, under the same ids, in the new container's own
/// IPC namespace.
fn sysv_objects_round_trip(name: &str, leave_running: bool) {
    let bundle = sysv_bundle(name);
    if leave_running {
        // A segment nobody has attached then goes at once: the restore
        // must not lose its own on the way.
        bundle.edit_config(|c| {
            c["linux"]["sysctl"] = serde_json::json!({"kernel.shm_rmid_forced": "1"});
        });
    }
    run_detached(&bundle);
    let tmp = bundle.rootfs().join("tmp");
    let ids = wait_for_file(&tmp.join("ready"));
    let pid = bundle.pid();
    assert_ne!(
        ipc_ns(&pid.to_string()),
        ipc_ns("self"),
        "an IPC namespace of its own"
    );
    let img = image_dir(&bundle, "image");
    let mut args = vec!["checkpoint", "--image-path", s(&img)];
    if leave_running {
        args.push("--leave-running");
    }
    args.push(bundle.id());
    bundle.runtime(&args).assert_success();
    assert!(img.join("sysv.json").is_file());
    assert!(img.join("sysv-shm.img").is_file());
    if leave_running {
        assert_eq!(bundle.status(), "running");
        bundle
            .runtime(&["kill", bundle.id(), "KILL"])
            .assert_success();
        bundle.wait_for_status("stopped");
        bundle.runtime(&["delete", bundle.id()]).assert_success();
    } else {
        bundle
            .runtime(&["state", bundle.id()])
            .assert_error(&["does not exist"], &[]);
    }
    assert!(
        !tmp.join("result").exists(),
        "the original went on to check"
    );
    if !leave_running {
        // Its objects need an IPC namespace of its own: refused before
        // anything is made without one.
        let config = bundle.config();
        bundle.remove_namespace("ipc");
        restore_detached(&bundle, &img, bundle.id())
            .assert_error(&["SysV IPC objects", "none of its own"], &[]);
        bundle
            .runtime(&["state", bundle.id()])
            .assert_error(&["does not exist"], &[]);
        bundle.edit_config(|c| *c = config);
    }

    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let restored = bundle.pid();
    assert_ne!(ipc_ns(&restored.to_string()), ipc_ns("self"));
    fs::write(tmp.join("go"), "").unwrap();
    let result = wait_for_file(&tmp.join("result"));
    assert_eq!(result, format!("ok {ids}"), "the restored probe's verdict");

    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn sysv_ipc_objects_come_back_with_their_ids() {
    sysv_objects_round_trip("ckpt-ipc", false);
}

#[test]
#[ignore = "needs root"]
fn sysv_ipc_objects_come_back_after_leave_running() {
    sysv_objects_round_trip("ckpt-ipc-leave", true);
}

/// In an IPC namespace the container joined by path, the objects are not
/// its own: not dumped (they live on there), and a segment it attached is
/// refused by name.
#[test]
#[ignore = "needs root"]
fn a_segment_attached_in_a_joined_ipc_namespace_is_refused_by_name() {
    let holder = Holder(common::spawn_tracked(
        Command::new("unshare").args(["--ipc", "sleep", "600"]),
    ));
    let hpid = holder.0.id().to_string();
    wait_until("unshare --ipc", || ipc_ns(&hpid) != ipc_ns("self"));
    let bundle = sysv_bundle("ckpt-ipc-joined");
    bundle.edit_config(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "ipc");
        ns.push(serde_json::json!({"type": "ipc", "path": format!("/proc/{hpid}/ns/ipc")}));
    });
    run_detached(&bundle);
    wait_for_file(&bundle.rootfs().join("tmp/ready"));
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(
            &[
                "SysV shared memory segment",
                "outside a container that owns its IPC namespace",
                "not supported yet",
            ],
            &[],
        );
    assert!(
        !img.join("inventory.json").exists(),
        "a refused checkpoint wrote an image"
    );
    assert!(!img.join("sysv.json").exists());
    assert_eq!(bundle.status(), "running");
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    drop(holder);
    bundle.assert_no_leaks();
}

/// A process holding an IPC namespace, killed when the test ends.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        common::kill_tracked(&mut self.0);
    }
}

#[test]
#[ignore = "needs root"]
fn a_restore_with_a_terminal_is_refused_before_anything_is_made() {
    let bundle = counting("ckpt-tty");
    run_detached(&bundle);
    let img = checkpoint(&bundle);
    bundle.set_terminal(true);
    restore_detached(&bundle, &img, bundle.id()).assert_error(&["process.terminal"], &[]);
    assert!(!bundle.state_dir().exists());
    assert!(cgroup_dirs_named(bundle.id()).is_empty());
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_threaded_process_is_restored_with_its_threads_in_the_namespace() {
    let bundle = counting("ckpt-threads");
    bundle.set_args(&["/bin/counter", "/tmp/count", "thread"]);
    run_detached(&bundle);
    let before = count_past(&bundle, 50);
    let img = checkpoint(&bundle);
    let dumped = count(&bundle);
    assert!(dumped >= before);
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let pid = bundle.pid();
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
    assert_eq!(tasks, 2, "threads of the restored process");
    thread::sleep(Duration::from_millis(300));
    let after = count(&bundle);
    assert!(
        after > dumped && after < dumped + 200,
        "dumped at {dumped}, {after} 300 ms after the restore"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_foreground_restore_waits_and_exits_with_the_container_status() {
    let bundle = counting("ckpt-fg");
    run_detached(&bundle);
    count_past(&bundle, 3);
    let img = checkpoint(&bundle);
    let dir = bundle.dir();
    let mut fg = bundle.spawn(&[
        "restore",
        "--image-path",
        s(&img),
        "--bundle",
        s(&dir),
        bundle.id(),
    ]);
    bundle.wait_for_status("running");
    let n = count(&bundle);
    count_past(&bundle, n);
    assert!(
        !fg.exited(),
        "a foreground restore returned while its container runs"
    );
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    fg.wait().assert_code(128 + 9);
    // Like run: the container is deleted when it exits.
    assert!(!bundle.state_dir().exists());
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn dropped_capabilities_and_no_new_privs_come_back() {
    let bundle = counting("ckpt-creds");
    bundle.edit_config(|c| {
        c["process"]["noNewPrivileges"] = true.into();
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
        });
    });
    run_detached(&bundle);
    let before = credentials(bundle.pid());
    assert!(
        before.contains(&"CapEff: 0000000000000020".to_owned()),
        "{before:?}"
    );
    assert!(before.contains(&"NoNewPrivs: 1".to_owned()), "{before:?}");
    checkpoint_and_restore(&bundle);
    // The restore's init was root with every capability; the image's
    // credentials replace those.
    assert_eq!(credentials(bundle.pid()), before);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_restore_that_fails_half_way_leaves_nothing_behind() {
    let bundle = counting("ckpt-fail");
    run_detached(&bundle);
    count_past(&bundle, 3);
    let img = checkpoint(&bundle);
    // The program is replaced (a new inode) between checkpoint and restore:
    // the restore, already inside the new container, refuses it.
    let exe = bundle.rootfs().join("bin/counter");
    let copy = bundle.rootfs().join("bin/counter.new");
    fs::copy(&exe, &copy).unwrap();
    fs::rename(&copy, &exe).unwrap();
    restore_detached(&bundle, &img, bundle.id())
        .assert_error(&["/bin/counter", "replaced since the dump"], &[]);
    assert!(!bundle.state_dir().exists());
    assert!(cgroup_dirs_named(bundle.id()).is_empty());
    bundle.assert_no_leaks();
}

/// The "Max open files" line of /proc/PID/limits, blanks squeezed.
fn nofile(pid: i32) -> String {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
#[ignore = "needs root"]
fn rlimits_come_back_as_the_process_had_them() {
    let bundle = counting("ckpt-rlimit");
    bundle.edit_config(|c| {
        c["process"]["rlimits"] =
            serde_json::json!([{ "type": "RLIMIT_NOFILE", "soft": 777, "hard": 888 }]);
    });
    run_detached(&bundle);
    count_past(&bundle, 3);
    checkpoint_and_restore(&bundle);
    let pid = bundle.pid();
    assert_eq!(nofile(pid), "Max open files 777 888 files");

    // A limit changed since the start comes back changed, not as
    // config.json has it.
    let st = status_tracked(Command::new("prlimit").args([
        "--pid",
        &pid.to_string(),
        "--nofile=700:888",
    ]));
    assert!(st.success());
    let img2 = image_dir(&bundle, "image2");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img2), bundle.id()])
        .assert_success();
    restore_detached(&bundle, &img2, bundle.id()).assert_success();
    assert_eq!(nofile(bundle.pid()), "Max open files 700 888 files");
    bundle.assert_no_leaks();
}

/// The `criu_statistics` of the one container in podman's `--print-stats`
/// output.
fn criu_statistics(printed: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(printed).unwrap();
    v["container_statistics"][0]["criu_statistics"].clone()
}

#[test]
#[ignore = "needs root and podman"]
fn podman_checkpoints_and_restores_a_default_corral_container() {
    let bundle = counting("ckpt-podman");
    let podman = Podman::new(&bundle);
    // podman's default container: fewer capabilities, a seccomp filter.
    let name = format!("{}-c", bundle.id());
    podman
        .run_container(&["-d", "--name", &name], &["/bin/counter", "/tmp/count"])
        .ok();
    let pid: i32 = podman.inspect(&name, "{{.State.Pid}}").parse().unwrap();
    let creds = credentials(pid);
    assert!(creds.contains(&"Seccomp: 2".to_owned()), "{creds:?}");
    let before = count_past(&bundle, 50);
    // --print-stats: podman reads CRIU's stats-dump, which corral writes.
    let out = podman.run(&["container", "checkpoint", "--print-stats", &name]);
    let dump = criu_statistics(out.ok());
    let written = dump["pages_written"].as_u64().unwrap_or(0);
    assert!(written > 0, "{dump}");
    assert!(
        dump["frozen_time"].as_u64() >= dump["freezing_time"].as_u64(),
        "{dump}"
    );
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "exited");
    let dumped = count(&bundle);
    assert!(dumped >= before);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&bundle),
        dumped,
        "the process runs on after the checkpoint"
    );
    let out = podman.run(&["container", "restore", "--print-stats", &name]);
    let restore = criu_statistics(out.ok());
    assert_eq!(
        restore["pages_restored"].as_u64(),
        Some(written),
        "{restore}"
    );
    assert!(restore["restore_time"].as_u64() > Some(0), "{restore}");
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");
    let pid: i32 = podman.inspect(&name, "{{.State.Pid}}").parse().unwrap();
    assert_eq!(
        credentials(pid),
        creds,
        "credentials and seccomp after the restore"
    );
    thread::sleep(Duration::from_millis(300));
    let after = count(&bundle);
    assert!(
        after > dumped && after < dumped + 200,
        "dumped at {dumped}, {after} 300 ms after the restore"
    );
    podman.assert_clean();
}

/// The `ShdPnd` mask of /proc/PID/status.
fn shared_pending(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .unwrap()
        .trim();
    u64::from_str_radix(mask, 16).unwrap()
}

#[test]
#[ignore = "needs root"]
fn a_pending_signal_is_queued_back_inside_the_namespace() {
    let bundle = counting("ckpt-pending");
    bundle.set_args(&["/bin/counter", "/tmp/count", "block"]);
    run_detached(&bundle);
    count_past(&bundle, 3);
    let usr1 = 1u64 << (libc::SIGUSR1 - 1);
    bundle
        .runtime(&["kill", bundle.id(), "USR1"])
        .assert_success();
    assert_eq!(shared_pending(bundle.pid()) & usr1, usr1);
    checkpoint_and_restore(&bundle);
    assert_eq!(shared_pending(bundle.pid()) & usr1, usr1);
    let n = count(&bundle);
    count_past(&bundle, n);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root and containerd"]
fn containerd_checkpoints_through_the_runc_shim() {
    let bundle = counting("ckpt-ctrd");
    let cd = engines::Containerd::start(&bundle, "");
    cd.run_container(&["-d"], "cnt", &["/bin/counter", "/tmp/count"])
        .ok();
    count_past(&bundle, 3);
    let img = image_dir(&bundle, "ctrd-image");
    let out = cd.ctr(&[
        "task",
        "checkpoint",
        "--image-path",
        s(&img),
        "--exit",
        "cnt",
    ]);
    out.ok();
    assert!(img.join("container.json").is_file());
    // --exit: the task is gone (containerd paused it first: a paused
    // container checkpoints too).
    wait_until("the task did not stop", || {
        cd.ctr(&["task", "ls"]).ok().contains("STOPPED")
    });
    let dumped = count(&bundle);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&bundle),
        dumped,
        "the process runs on after the checkpoint"
    );
    cd.ctr(&["task", "delete", "cnt"]).ok();
    cd.ctr(&["container", "delete", "cnt"]).ok();
    cd.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn a_paused_container_checkpoints_and_stays_paused_with_leave_running() {
    let bundle = counting("ckpt-paused");
    run_detached(&bundle);
    count_past(&bundle, 3);
    bundle.runtime(&["pause", bundle.id()]).assert_success();
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&[
            "checkpoint",
            "--leave-running",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_success();
    assert_eq!(bundle.status(), "paused");
    let n = count(&bundle);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(count(&bundle), n, "a paused container counts");
    bundle.runtime(&["resume", bundle.id()]).assert_success();
    count_past(&bundle, n);

    // Paused, checkpointed and gone; the restore runs.
    bundle.runtime(&["pause", bundle.id()]).assert_success();
    let img2 = image_dir(&bundle, "image2");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img2), bundle.id()])
        .assert_success();
    assert!(cgroup_dirs_named(bundle.id()).is_empty());
    let dumped = count(&bundle);
    restore_detached(&bundle, &img2, bundle.id()).assert_success();
    assert_eq!(bundle.status(), "running");
    count_past(&bundle, dumped);
    bundle.assert_no_leaks();
}

/// [`counting`] with tests/ckpt/sockets.c at /bin/sockets.
fn with_sockets(name: &str) -> Bundle {
    let bundle = counting(name);
    bundle.install_program("tests/ckpt/sockets.c", "sockets");
    bundle
}

/// A running container of sockets.c in `mode`, its loopback up and told
/// to go: it has made its sockets and counts.
fn running_sockets(name: &str, mode: &str) -> Bundle {
    let bundle = with_sockets(name);
    bundle.set_args(&["/bin/sockets", "/tmp/count", mode]);
    run_detached(&bundle);
    nsenter(bundle.pid(), &["-n", "ip", "link", "set", "lo", "up"]);
    fs::write(bundle.rootfs().join("tmp/go"), "").unwrap();
    count_past(&bundle, 3);
    bundle
}

#[test]
#[ignore = "needs root"]
fn unix_sockets_and_inotify_come_back_in_the_containers_namespaces() {
    // tests/ckpt/sockets.c: a socketpair with queued data, a listener on
    // /tmp/sock with an accepted connection holding unread data, a
    // datagram socket bound to an abstract name with a queued datagram, an
    // inotify watch on /tmp; it checks them itself when /tmp/check appears.
    // The container has its own network namespace: a socket made in ours,
    // or bound at the host's /tmp/sock, fails its checks.
    let bundle = with_sockets("ckpt-sock");
    bundle.set_args(&["/bin/sockets", "/tmp/count"]);
    run_detached(&bundle);
    count_past(&bundle, 3);
    let img = checkpoint(&bundle);
    // The socket file stays in the rootfs, as a dead process leaves it.
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let dumped = count(&bundle);
    count_past(&bundle, dumped + 3);
    let pid = bundle.pid();
    let unix = fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap();
    assert!(unix.contains(" /tmp/sock"), "{unix}");
    assert!(unix.contains(" @corral-ckpt-abstract"), "{unix}");
    let ours = fs::read_to_string("/proc/self/net/unix").unwrap();
    assert!(!ours.contains("@corral-ckpt-abstract"), "{ours}");
    assert_eq!(checked(&bundle), "ok");
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_tcp_listener_in_a_container_is_restored_in_its_network_namespace() {
    // sockets.c "tcp": a listener on 127.0.0.1:4321 of the container's
    // network namespace besides the unix sockets; after the restore a new
    // client connects to it from inside (the program checks).
    let bundle = running_sockets("ckpt-tcp", "tcp");
    checkpoint_and_restore(&bundle);
    let tcp = fs::read_to_string(format!("/proc/{}/net/tcp", bundle.pid())).unwrap();
    // 0100007F:10E1 is 127.0.0.1:4321, state 0A listening.
    assert!(tcp.contains("0100007F:10E1 00000000:0000 0A"), "{tcp}");
    // The restore's network namespace is new: loopback down, as an engine
    // finds it before it sets the network up again.
    nsenter(bundle.pid(), &["-n", "ip", "link", "set", "lo", "up"]);
    assert_eq!(checked(&bundle), "ok");
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_tcp_listener_with_a_waiting_connection_is_refused_by_name() {
    let bundle = running_sockets("ckpt-tcpq", "tcpq");
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(
            &[
                "TCP listener 127.0.0.1:4321 with 1 connections waiting to be accepted",
                "not supported yet",
            ],
            &[],
        );
    assert!(!img.join("inventory.json").exists());
    assert_eq!(bundle.status(), "running");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root and podman"]
fn podman_migrates_a_container_through_an_exported_checkpoint() {
    // `checkpoint --export` then `restore --import`, as a migration to
    // another host does it: the restored container runs on a new copy of
    // the image with the exported rw layer unpacked on it, so every file
    // the process has open or mapped is another inode with the same stamp.
    let bundle = counting("ckpt-podexp");
    let podman = Podman::new(&bundle);
    let image = "localhost/corral-counter:1";
    podman.import_rootfs_image(image);
    let name = format!("{}-c", bundle.id());
    podman
        .run_image(
            &["-d", "--name", &name],
            image,
            &["/bin/counter", "/tmp/count"],
        )
        .ok();
    let counted = |name: &str| -> u64 {
        let pid = podman.inspect(name, "{{.State.Pid}}");
        fs::read_to_string(format!("/proc/{pid}/root/tmp/count"))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    };
    wait_until("the counter does not count", || counted(&name) >= 50);
    let export = bundle.tmp_dir().join("export.tar.gz");
    let export = export.to_str().unwrap();
    podman
        .run(&["container", "checkpoint", "--export", export, &name])
        .ok();
    podman.run(&["rm", "-f", &name]).ok();
    podman
        .run(&["container", "restore", "--import", export])
        .ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");
    let resumed = counted(&name);
    assert!(
        resumed >= 50,
        "restored at {resumed}: a fresh start, not the checkpoint"
    );
    wait_until(
        &format!("the restored counter is stuck at {resumed}"),
        || counted(&name) > resumed + 5,
    );
    podman.run(&["rm", "-f", &name]).ok();
    podman.run(&["rmi", image]).ok();
    podman.assert_clean();
}

#[test]
#[ignore = "needs root"]
fn a_container_checkpoints_and_restores_on_a_pure_cgroup_v1_host() {
    // corral in a mount namespace without the cgroup2 mount sees a pure v1
    // host: no v2 directory to freeze the container in (the v1 freezer's
    // tasks cannot stop for ptrace), so the dump seizes it running.
    let ns = engines::MountNs::new();
    let unmounted = status_tracked(ns.command("umount").arg("/sys/fs/cgroup/unified"));
    assert!(unmounted.success());
    let bin_dir = tempfile::tempdir().unwrap();
    let wrapper = bin_dir.path().join("corral-v1");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec nsenter --target={} --mount --wd=\"$PWD\" -- {} \"$@\"\n",
            ns.pid(),
            common::runtime_bin().display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bundle = counting_with(Bundle::with_runtime("ckpt-v1", wrapper));
    run_detached(&bundle);
    let mine = fs::read_to_string(format!("/proc/{}/cgroup", bundle.pid())).unwrap();
    assert!(
        !mine
            .lines()
            .any(|l| l.starts_with("0::/") && l.contains(bundle.id())),
        "the container has a cgroup v2 directory:\n{mine}"
    );
    let n = count_past(&bundle, 10);
    // Paused through the v1 freezer, as containerd pauses before a
    // checkpoint: thawed for the dump, paused again after it.
    bundle.runtime(&["pause", bundle.id()]).assert_success();
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&[
            "checkpoint",
            "--leave-running",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_success();
    assert_eq!(bundle.status(), "paused");
    bundle.runtime(&["resume", bundle.id()]).assert_success();
    count_past(&bundle, n);
    let img2 = image_dir(&bundle, "image2");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img2), bundle.id()])
        .assert_success();
    let dumped = count(&bundle);
    restore_detached(&bundle, &img2, bundle.id()).assert_success();
    assert_eq!(bundle.status(), "running");
    let restored = count(&bundle);
    assert!(
        restored >= dumped && restored < dumped + 100,
        "dumped at {dumped}, restored at {restored}"
    );
    count_past(&bundle, restored);
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    bundle.assert_no_leaks();
}

/// `lchown -R`, without following symlinks.
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn a_container_in_a_user_namespace_comes_back_with_its_ids() {
    // Container ids 0.. are host ids 100000..; the process runs as 1000:1000
    // with group 5: the image holds the namespace's ids (the restore sets
    // them inside the container's new user namespace), not the host's.
    let bundle = counting("ckpt-userns");
    chown_tree(&bundle.rootfs(), 100_000, 100_000);
    for dir in [bundle.tmp_dir(), bundle.dir()] {
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    bundle.add_namespace("user");
    bundle.edit_config(|c| {
        let map = serde_json::json!([{ "containerID": 0, "hostID": 100_000, "size": 65_536 }]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["process"]["user"] =
            serde_json::json!({ "uid": 1000, "gid": 1000, "additionalGids": [5] });
    });
    // The counter writes /tmp/count as uid 1000 (host 101000).
    fs::set_permissions(
        bundle.rootfs().join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    run_detached(&bundle);
    let pid = bundle.pid();
    let creds = credentials(pid);
    assert!(
        creds.contains(&"Uid: 101000 101000 101000 101000".to_owned()),
        "{creds:?}"
    );
    assert!(creds.contains(&"Groups: 100005".to_owned()), "{creds:?}");
    let map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let n = count_past(&bundle, 10);
    let img = checkpoint(&bundle);
    let dumped = count(&bundle);
    assert!(dumped >= n);
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let pid = bundle.pid();
    assert_eq!(credentials(pid), creds, "credentials after the restore");
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap(),
        map
    );
    count_past(&bundle, dumped);
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    bundle.assert_no_leaks();
}

/// Offsets of the time namespace config.json asks for (seconds).
const MONO_OFFSET: i64 = 500_000;
const BOOT_OFFSET: i64 = 700_000;
/// Between the checkpoint and the restore: a restore that lets the
/// downtime show makes the container's clocks jump by at least this.
const DOWNTIME: Duration = Duration::from_secs(2);
const NS: i64 = 1_000_000_000;

/// A line of tests/ckpt/clock.c: readings, CLOCK_MONOTONIC and
/// CLOCK_BOOTTIME (ns), largest step of CLOCK_MONOTONIC, times a clock
/// went back, vDSO/syscall disagreements.
#[derive(Clone, Copy, Debug, Default)]
struct Clock {
    n: i64,
    mono: i64,
    boot: i64,
    largest_step: i64,
    back: i64,
    mismatch: i64,
}

fn clock(bundle: &Bundle) -> Clock {
    let text = fs::read_to_string(bundle.rootfs().join("tmp/clock")).unwrap_or_default();
    let v: Vec<i64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match v[..] {
        [n, mono, boot, largest_step, back, mismatch] => Clock {
            n,
            mono,
            boot,
            largest_step,
            back,
            mismatch,
        },
        _ => Clock::default(),
    }
}

/// Waits until the clock program has made more than `above` readings.
#[track_caller]
fn clock_past(bundle: &Bundle, above: i64) -> Clock {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = clock(bundle);
        if c.n > above {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "the clock program stays at {c:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// /proc/PID/timens_offsets: (monotonic, boottime) in ns.
fn timens_offsets(pid: i32) -> (i64, i64) {
    let text = fs::read_to_string(format!("/proc/{pid}/timens_offsets")).unwrap();
    let mut out = (0, 0);
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let v = w[1].parse::<i64>().unwrap() * NS + w[2].parse::<i64>().unwrap();
        match w[0] {
            "monotonic" => out.0 = v,
            "boottime" => out.1 = v,
            other => panic!("clock {other} in {text}"),
        }
    }
    out
}

/// A container in a time namespace of its own (config.json's "time"
/// namespace with timeOffsets) is checkpointed, left for 2 s, and restored:
/// its CLOCK_MONOTONIC and CLOCK_BOOTTIME go on from where they were,
/// without the 2 s and without going back, through the vDSO as through
/// the syscall (tests/ckpt/clock.c); the new namespace's offsets come from
/// the image, not from config.json. A bundle without a time namespace
/// cannot restore that image.
#[test]
#[ignore = "needs root"]
fn a_restored_container_s_clocks_do_not_show_the_downtime() {
    let bundle = Bundle::new("ckpt-timens");
    bundle.install_program("tests/ckpt/clock.c", "clock");
    bundle.set_args(&["/bin/clock", "/tmp/clock"]);
    bundle.edit_config(|c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["timeOffsets"] = serde_json::json!({
            "monotonic": { "secs": MONO_OFFSET, "nanosecs": 0 },
            "boottime": { "secs": BOOT_OFFSET, "nanosecs": 0 },
        });
    });
    bundle.add_namespace("time");
    run_detached(&bundle);
    let first = clock_past(&bundle, 10);
    assert!(
        first.mono >= MONO_OFFSET * NS && first.boot >= BOOT_OFFSET * NS,
        "config.json's offsets do not show: {first:?}"
    );
    let img = checkpoint(&bundle);
    let dumped = clock(&bundle);
    let stopped = Instant::now();

    // Without a time namespace to continue them in, the clocks would jump.
    bundle.remove_namespace("time");
    restore_detached(&bundle, &img, bundle.id()).assert_error(
        &["time namespace of their own", "no new \"time\" namespace"],
        &[],
    );
    assert!(!bundle.state_dir().exists());
    bundle.add_namespace("time");

    thread::sleep(DOWNTIME.saturating_sub(stopped.elapsed()));
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let pid = bundle.pid();
    let after = clock_past(&bundle, dumped.n + 10);
    let ours = fs::metadata("/proc/self/ns/time").unwrap();
    let theirs = fs::metadata(format!("/proc/{pid}/ns/time")).unwrap();
    assert_ne!(
        (ours.dev(), ours.ino()),
        (theirs.dev(), theirs.ino()),
        "the restored container is in our time namespace"
    );
    assert_eq!(after.back, 0, "a clock went back: {after:?}");
    assert_eq!(after.mismatch, 0, "vDSO and syscall disagree: {after:?}");
    assert!(
        after.largest_step < NS,
        "CLOCK_MONOTONIC jumped by {:.3} s over the checkpoint (dumped {dumped:?}, now {after:?})",
        after.largest_step as f64 / NS as f64
    );
    let moved = after.boot - dumped.boot;
    assert!(
        (0..NS).contains(&moved),
        "CLOCK_BOOTTIME moved {:.3} s from the dump to 10 readings after the restore",
        moved as f64 / NS as f64
    );
    // The offsets continue the image's clocks: config.json's, less the
    // downtime (and whatever a restore takes).
    let (mono_off, boot_off) = timens_offsets(pid);
    for (got, config) in [(mono_off, MONO_OFFSET * NS), (boot_off, BOOT_OFFSET * NS)] {
        let less = config - got;
        assert!(
            (DOWNTIME.as_nanos() as i64..60 * NS).contains(&less),
            "offset {got} ns, config.json's {config} ns"
        );
    }

    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

/// The flock lines of every fd of `pid`, blanks squeezed.
fn flock_lines(pid: i32) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let info = fs::read_to_string(e.unwrap().path()).unwrap_or_default();
        out.extend(
            info.lines()
                .filter(|l| l.starts_with("lock:") && l.contains("FLOCK"))
                .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" ")),
        );
    }
    out
}

/// Whether another open file description of the container's count file
/// gets `LOCK_SH` now.
fn count_file_lockable(bundle: &Bundle) -> bool {
    let f = fs::File::open(bundle.rootfs().join("tmp/count")).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok()
}

fn checkpoint_and_restore_with_file_locks(bundle: &Bundle) -> i32 {
    let img = image_dir(bundle, "image");
    bundle
        .runtime(&[
            "checkpoint",
            "--file-locks",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_success();
    let dumped = count(bundle);
    let dir = bundle.dir();
    bundle
        .runtime(&[
            "restore",
            "--file-locks",
            "--image-path",
            s(&img),
            "--bundle",
            s(&dir),
            "--detach",
            bundle.id(),
        ])
        .assert_success();
    count_past(bundle, dumped);
    bundle.pid()
}

fn kill_and_delete(bundle: &Bundle) {
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn file_locks_is_accepted_and_a_held_flock_comes_back() {
    // No lock: --file-locks changes nothing (containerd's runc shim always
    // passes it, on checkpoint and on restore).
    let bundle = counting("ckpt-nolock");
    run_detached(&bundle);
    count_past(&bundle, 3);
    let pid = checkpoint_and_restore_with_file_locks(&bundle);
    assert!(flock_lines(pid).is_empty());
    kill_and_delete(&bundle);

    let bundle = counting("ckpt-flock");
    bundle.set_args(&["/bin/counter", "/tmp/count", "flock"]);
    run_detached(&bundle);
    count_past(&bundle, 3);
    let held = flock_lines(bundle.pid());
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].starts_with("FLOCK ADVISORY WRITE "), "{held:?}");
    assert!(!count_file_lockable(&bundle));
    // Without the option the checkpoint is refused and the container runs on.
    let img = image_dir(&bundle, "refused");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(&["holds a file lock (1: FLOCK", "pass --file-locks"], &[]);
    assert_eq!(bundle.status(), "running");
    let pid = checkpoint_and_restore_with_file_locks(&bundle);
    let back = flock_lines(pid);
    assert_eq!(back.len(), 1, "{back:?}");
    assert!(back[0].starts_with("FLOCK ADVISORY WRITE "), "{back:?}");
    assert!(
        !count_file_lockable(&bundle),
        "the restored flock is not held"
    );
    kill_and_delete(&bundle);
}

#[test]
#[ignore = "needs root and containerd"]
fn containerd_restores_a_checkpoint_from_its_content_store() {
    // `ctr container checkpoint` needs a container made from an image, and
    // its shim passes `--file-locks` (the counter holds a flock),
    // `--leave-running` and, on restore, `-no-subreaper` (one dash); the
    // restore is on a fresh snapshot of the image with the rw layer's files
    // unpacked from a tar (new inodes, mtimes cut to the second).
    let bundle = counting("ckpt-ctrd-r");
    let cd = engines::Containerd::start(&bundle, "");
    let image = "docker.io/corral/counter:latest";
    cd.import_rootfs_image(image);
    cd.run_image(
        &["-d"],
        image,
        "cnt",
        &["/bin/counter", "/tmp/count", "flock"],
    )
    .ok();
    let task_pid = || -> i32 {
        let ls = cd.ctr(&["task", "ls"]);
        let line = ls.ok().lines().find(|l| l.starts_with("cnt ")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let counted = |pid: i32| -> u64 {
        fs::read_to_string(format!("/proc/{pid}/root/tmp/count"))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let pid = task_pid();
    // 1 s of counting: a fresh start would need as long to get there.
    wait_until("the counter does not count", || counted(pid) >= 50);
    cd.ctr(&[
        "container",
        "checkpoint",
        "--task",
        "--rw",
        "cnt",
        "docker.io/corral/checkpoint:1",
    ])
    .ok();
    let at_checkpoint = counted(pid);
    assert!(at_checkpoint >= 50, "{at_checkpoint}");
    assert_eq!(flock_lines(pid).len(), 1, "the counter holds its flock");
    cd.ctr(&["task", "kill", "-s", "KILL", "cnt"]).ok();
    wait_until("the task did not stop", || {
        cd.ctr(&["task", "ls"]).ok().contains("STOPPED")
    });
    cd.ctr(&["task", "delete", "cnt"]).ok();
    cd.ctr(&["container", "delete", "cnt"]).ok();

    cd.ctr(&[
        "container",
        "restore",
        "--live",
        "--rw",
        "cnt",
        "docker.io/corral/checkpoint:1",
    ])
    .ok();
    let pid = task_pid();
    let resumed = counted(pid);
    assert!(
        resumed >= 50,
        "restored at {resumed}: a fresh start, not the checkpoint ({at_checkpoint} before it)"
    );
    wait_until(
        &format!("the restored counter is stuck at {resumed}"),
        || counted(pid) > resumed + 5,
    );
    assert_eq!(
        ns_pid(pid),
        "1",
        "the restored process is pid 1 of its namespace"
    );
    cd.ctr(&["task", "kill", "-s", "KILL", "cnt"]).ok();
    wait_until("the restored task did not stop", || {
        cd.ctr(&["task", "ls"]).ok().contains("STOPPED")
    });
    cd.ctr(&["task", "delete", "cnt"]).ok();
    cd.ctr(&["container", "delete", "cnt"]).ok();
    cd.assert_clean();
}

/// A bundle with a terminal whose init is tests/ckpt/ttyprobe.c.
fn probing_terminal(name: &str) -> Bundle {
    let bundle = Bundle::new(name);
    bundle.install_program("tests/ckpt/ttyprobe.c", "ttyprobe");
    bundle.set_args(&["/bin/ttyprobe"]);
    bundle.set_terminal(true);
    bundle
}

/// Asks the probe on `master` to check its terminal; returns its answer.
fn probe_check(master: &OwnedFd) -> String {
    rustix::io::write(master, b"c").unwrap();
    let text = common::read_fd_until(master, "\n");
    text.lines()
        .last()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_owned()
}

fn console_socket(bundle: &Bundle, name: &str) -> (PathBuf, UnixListener) {
    let path = bundle.tmp_dir().join(name);
    let listener = UnixListener::bind(&path).unwrap();
    (path, listener)
}

/// Runs the probe detached with a console socket; the pty master it got,
/// once the probe says it is ready.
fn run_on_console(bundle: &Bundle) -> OwnedFd {
    let (sock, listener) = console_socket(bundle, "console.sock");
    let dir = bundle.dir();
    bundle
        .runtime(&[
            "run",
            "--detach",
            "--bundle",
            s(&dir),
            "--console-socket",
            s(&sock),
            bundle.id(),
        ])
        .assert_success();
    let master = common::receive_fd(&listener);
    assert!(common::read_fd_until(&master, "ready").contains("ready"));
    master
}

/// Checkpoints the probe, with `--leave-running` or not, and restores it
/// on a new pty: its terminal's settings, its controlling terminal and
/// the dups on fds 0-2 and 5 are there, and it talks over the new master.
fn terminal_round_trip(name: &str, leave_running: bool) {
    let bundle = probing_terminal(name);
    let first = run_on_console(&bundle);
    assert_eq!(probe_check(&first), "check ok 1");

    let img = image_dir(&bundle, "image");
    let mut args = vec!["checkpoint", "--image-path", s(&img)];
    if leave_running {
        args.push("--leave-running");
    }
    args.push(bundle.id());
    bundle.runtime(&args).assert_success();
    if leave_running {
        assert_eq!(bundle.status(), "running");
        assert_eq!(probe_check(&first), "check ok 2", "after --leave-running");
        bundle
            .runtime(&["kill", bundle.id(), "KILL"])
            .assert_success();
        bundle.wait_for_status("stopped");
        bundle.runtime(&["delete", bundle.id()]).assert_success();
    }
    assert!(!bundle.state_dir().exists());

    // Without a console socket: refused before anything is made.
    restore_detached(&bundle, &img, bundle.id())
        .assert_error(&["process.terminal", "--console-socket"], &[]);
    assert!(!bundle.state_dir().exists());

    // A config without the terminal the image has: refused by name.
    bundle.set_terminal(false);
    restore_detached(&bundle, &img, bundle.id())
        .assert_error(&["process.terminal is false", "with a terminal"], &[]);
    assert!(!bundle.state_dir().exists());
    bundle.set_terminal(true);

    let (sock2, listener2) = console_socket(&bundle, "console2.sock");
    let dir = bundle.dir();
    bundle
        .runtime(&[
            "restore",
            "--image-path",
            s(&img),
            "--bundle",
            s(&dir),
            "--detach",
            "--console-socket",
            s(&sock2),
            bundle.id(),
        ])
        .assert_success();
    assert_eq!(bundle.status(), "running");
    let second = common::receive_fd(&listener2);
    assert_eq!(
        probe_check(&second),
        "check ok 2",
        "the restored probe on the new pty"
    );
    assert_eq!(probe_check(&second), "check ok 3");
    for fd in [0, 1, 2, 5] {
        let link = fs::read_link(format!("/proc/{}/fd/{fd}", bundle.pid())).unwrap();
        assert!(
            link.starts_with("/dev/pts/"),
            "fd {fd} of the restored probe: {}",
            link.display()
        );
    }
    drop(first);
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    drop(second);
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_container_with_a_terminal_is_restored_on_a_new_pty() {
    terminal_round_trip("ckpt-pty", false);
}

#[test]
#[ignore = "needs root"]
fn a_container_with_a_terminal_checkpoints_with_leave_running() {
    terminal_round_trip("ckpt-pty-leave", true);
}

#[test]
#[ignore = "needs root"]
fn a_pty_of_the_containers_own_is_refused_by_name() {
    probe_refused(
        "otherpty",
        &["fd 4", "terminal /dev/pts/", "not the container's console"],
    );
}

#[test]
#[ignore = "needs root"]
fn a_console_that_is_no_longer_the_controlling_terminal_is_refused() {
    probe_refused(
        "notty",
        &[
            "the container's console is not its controlling terminal",
            "not supported yet",
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn input_not_read_yet_is_refused() {
    probe_refused(
        "noread",
        &["3 bytes of input on the container's console not read yet"],
    );
}

/// The probe in `mode` is refused by name, no image is written, and it
/// runs on. In mode `noread`, "xyz" waits unread on its terminal.
fn probe_refused(mode: &str, keywords: &[&str]) {
    let bundle = probing_terminal(&format!("ckpt-{mode}"));
    bundle.set_args(&["/bin/ttyprobe", mode]);
    let master = run_on_console(&bundle);
    if mode == "noread" {
        rustix::io::write(&master, b"xyz").unwrap();
        thread::sleep(Duration::from_millis(100));
    }
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(keywords, &[]);
    assert!(!img.exists(), "a refused checkpoint wrote an image");
    assert_eq!(bundle.status(), "running");
    if mode != "noread" {
        assert!(probe_check(&master).starts_with("check "));
    }
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    drop(master);
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

/// Waits until `podman logs NAME` holds `want`; returns the logs.
#[track_caller]
fn podman_logs_with(podman: &Podman<'_>, name: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = podman.run(&["logs", name]).ok().to_owned();
        if logs.contains(want) {
            return logs;
        }
        assert!(Instant::now() < deadline, "no {want:?} in the logs: {logs}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root and podman"]
fn podman_checkpoints_and_restores_a_container_with_a_terminal() {
    let bundle = probing_terminal("ckpt-podman-tty");
    let podman = Podman::new(&bundle);
    let name = format!("{}-c", bundle.id());
    podman
        .run_container(&["-dt", "--name", &name], &["/bin/ttyprobe"])
        .ok();
    podman_logs_with(&podman, &name, "ready");
    // The probe checks its terminal on SIGUSR1 (podman cannot type on it).
    podman.run(&["kill", "--signal", "USR1", &name]).ok();
    podman_logs_with(&podman, &name, "check ok 1");
    podman.run(&["container", "checkpoint", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "exited");
    podman.run(&["container", "restore", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");
    podman.run(&["kill", "--signal", "USR1", &name]).ok();
    let logs = podman_logs_with(&podman, &name, "check ok 2");
    assert!(!logs.contains("check bad"), "{logs}");
    let fd5 = podman
        .run(&["exec", &name, "readlink", "/proc/1/fd/5"])
        .ok()
        .trim()
        .to_owned();
    assert!(
        fd5.starts_with("/dev/pts/"),
        "fd 5 of the restored probe: {fd5}"
    );
    podman.assert_clean();
}

/// A bundle whose init is tests/ckpt/tree.c: a zombie, a threaded child, a
/// session and a process group, each process counting into its own file
/// under /tmp.
fn tree_bundle(name: &str) -> Bundle {
    let bundle = Bundle::new(name);
    bundle.install_program("tests/ckpt/tree.c", "tree");
    bundle.set_args(&["/bin/tree", "/tmp"]);
    bundle.edit_config(|c| c["root"]["readonly"] = false.into());
    bundle
}

/// The count files of tree.c's processes.
const TREE_COUNTS: [&str; 4] = ["count", "count-a", "count-b", "count-c"];

/// The number in the rootfs's /tmp/`name` (0 before the first).
fn count_in(bundle: &Bundle, name: &str) -> u64 {
    fs::read_to_string(bundle.rootfs().join("tmp").join(name))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Waits until every count of the tree has passed its value in `above`.
#[track_caller]
fn tree_counts_past(bundle: &Bundle, above: &[u64]) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Vec<u64> = TREE_COUNTS.iter().map(|n| count_in(bundle, n)).collect();
        if now.iter().zip(above).all(|(n, a)| n > a) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "counts {now:?} do not pass {above:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// One process of a container's tree as its pid namespace sees it, read
/// from the host's /proc: pid, parent, group, session (the last ids of
/// NSpid, NSpgid, NSsid), state letter, exit code of a zombie, thread ids.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct NsProc {
    pid: i32,
    ppid: i32,
    pgid: i32,
    sid: i32,
    /// `S` for running or asleep, `Z`, `T`…
    state: char,
    zombie_code: Option<i32>,
    tids: Vec<i32>,
}

fn last_field(status: &str, name: &str) -> i32 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// The tree of the container's init `init` (a host pid), sorted by pid.
fn ns_tree(init: i32) -> Vec<NsProc> {
    let mut out = Vec::new();
    let mut todo = vec![(init, 0)];
    while let Some((host, ppid)) = todo.pop() {
        let status = fs::read_to_string(format!("/proc/{host}/status")).unwrap();
        let pid = last_field(&status, "NSpid:");
        let state = status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .and_then(|v| v.trim().chars().next())
            .unwrap();
        // Running or asleep is one state here (the counters do both).
        let state = if matches!(state, 'R' | 'D') {
            'S'
        } else {
            state
        };
        let stat = fs::read_to_string(format!("/proc/{host}/stat")).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        let zombie_code = (state == 'Z').then(|| fields[52 - 3].parse::<i32>().unwrap() >> 8);
        let mut tids = Vec::new();
        for t in fs::read_dir(format!("/proc/{host}/task")).unwrap() {
            let t = t.unwrap().path();
            if let Ok(s) = fs::read_to_string(t.join("status")) {
                tids.push(last_field(&s, "NSpid:"));
            }
            if let Ok(kids) = fs::read_to_string(t.join("children")) {
                todo.extend(kids.split_whitespace().map(|k| (k.parse().unwrap(), pid)));
            }
        }
        tids.sort_unstable();
        out.push(NsProc {
            pid,
            ppid,
            pgid: last_field(&status, "NSpgid:"),
            sid: last_field(&status, "NSsid:"),
            state,
            zombie_code,
            tids,
        });
    }
    out.sort();
    out
}

/// The shape tree.c makes, whatever the pids: a zombie of status 7, a
/// child with two threads, a session leader and its child leading a group.
#[track_caller]
fn assert_tree_shape(tree: &[NsProc]) {
    assert_eq!(tree.len(), 5, "{tree:#?}");
    assert_eq!(tree[0].pid, 1, "{tree:#?}");
    let init = &tree[0];
    let zombies: Vec<_> = tree.iter().filter(|p| p.state == 'Z').collect();
    assert_eq!(zombies.len(), 1, "{tree:#?}");
    assert_eq!(zombies[0].zombie_code, Some(7));
    assert_eq!(zombies[0].ppid, 1);
    let threaded: Vec<_> = tree.iter().filter(|p| p.tids.len() == 2).collect();
    assert_eq!(threaded.len(), 1, "{tree:#?}");
    let a = threaded[0];
    assert_eq!((a.ppid, a.pgid, a.sid), (1, init.pgid, init.sid));
    let b = tree
        .iter()
        .find(|p| p.sid == p.pid && p.pid != 1)
        .expect("a session leader besides init");
    assert_eq!((b.ppid, b.pgid), (1, b.pid));
    let c = tree.iter().find(|p| p.ppid == b.pid).expect("b's child");
    assert_eq!((c.pgid, c.sid), (c.pid, b.pid), "{tree:#?}");
}

#[test]
#[ignore = "needs root"]
fn a_tree_of_processes_comes_back_with_its_pids_sessions_groups_threads_and_zombie() {
    let bundle = tree_bundle("ckpt-tree");
    run_detached(&bundle);
    let counts = tree_counts_past(&bundle, &[3; 4]);
    let before = ns_tree(bundle.pid());
    assert_tree_shape(&before);

    // --leave-running: the tree runs on as it was.
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&[
            "checkpoint",
            "--leave-running",
            "--image-path",
            s(&img),
            bundle.id(),
        ])
        .assert_success();
    assert_eq!(ns_tree(bundle.pid()), before);
    let counts = tree_counts_past(&bundle, &counts);
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();

    // Each process counts on from where the image has it (a fresh start
    // would begin at 1, far below).
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    assert_eq!(ns_tree(bundle.pid()), before, "after the restore");
    let counts = tree_counts_past(&bundle, &counts);

    // The restored tree checkpoints again, without --leave-running.
    let again = image_dir(&bundle, "again");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&again), bundle.id()])
        .assert_success();
    bundle
        .runtime(&["state", bundle.id()])
        .assert_error(&["does not exist"], &[]);
    let dumped: Vec<u64> = TREE_COUNTS.iter().map(|n| count_in(&bundle, n)).collect();
    restore_detached(&bundle, &again, bundle.id()).assert_success();
    assert_eq!(ns_tree(bundle.pid()), before, "after the second restore");
    let after = tree_counts_past(&bundle, &dumped);
    assert!(
        after.iter().zip(&counts).all(|(a, c)| a > c),
        "{after:?} after {counts:?}"
    );

    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_host_name_changed_after_the_start_comes_back() {
    // config.json names the host after the bundle; the process renames it.
    let ours = rustix::system::uname().nodename().to_owned();
    let bundle = counting("ckpt-uts");
    run_detached(&bundle);
    nsenter(bundle.pid(), &["-u", "hostname", "renamed-inside"]);
    let n = count_past(&bundle, 3);
    checkpoint_and_restore(&bundle);
    let pid = bundle.pid().to_string();
    let out = common::output_tracked(Command::new("nsenter").args(["-t", &pid, "-u", "hostname"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "renamed-inside"
    );
    assert_eq!(
        rustix::system::uname().nodename(),
        ours.as_c_str(),
        "the host's name"
    );
    count_past(&bundle, n);
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    bundle.assert_no_leaks();
}
