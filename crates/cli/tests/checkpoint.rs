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
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{cgroup_dir_of, cgroup_dirs_named, status_tracked, Bundle};
use engines::Podman;

const MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// Builds tests/ckpt/counter.c (static) into `rootfs`/bin/counter.
fn install_counter(rootfs: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ckpt/counter.c");
    let out = rootfs.join("bin/counter");
    let st = status_tracked(
        Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&src),
    );
    assert!(st.success(), "cc {}", src.display());
}

/// A bundle whose process counts into /tmp/count, with a memory limit (and
/// `corral spec`'s few capabilities and no_new_privs).
fn counting(name: &str) -> Bundle {
    let bundle = Bundle::new(name);
    install_counter(&bundle.rootfs());
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

#[test]
#[ignore = "needs root"]
fn sysv_ipc_objects_are_refused_by_name() {
    let bundle = counting("ckpt-ipc");
    run_detached(&bundle);
    nsenter(bundle.pid(), &["-i", "ipcmk", "-M", "4096"]);
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(&["SysV IPC shared memory segment"], &[]);
    assert!(!img.exists(), "a refused checkpoint wrote an image");
    assert_eq!(bundle.status(), "running");
    // After the object is gone, the same container checkpoints.
    nsenter(bundle.pid(), &["-i", "ipcrm", "--all"]);
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_restore_with_a_terminal_is_refused_before_anything_is_made() {
    let bundle = counting("ckpt-tty");
    run_detached(&bundle);
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
    restore_detached(&bundle, &img, bundle.id()).assert_success();
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
    restore_detached(&bundle, &img, bundle.id()).assert_success();
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
    podman.run(&["container", "checkpoint", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "exited");
    let dumped = count(&bundle);
    assert!(dumped >= before);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&bundle),
        dumped,
        "the process runs on after the checkpoint"
    );
    podman.run(&["container", "restore", &name]).ok();
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
    restore_detached(&bundle, &img, bundle.id()).assert_success();
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cd.ctr(&["task", "ls"]).ok().contains("STOPPED") {
        assert!(Instant::now() < deadline, "the task did not stop");
        thread::sleep(Duration::from_millis(20));
    }
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

#[test]
#[ignore = "needs root"]
fn a_named_unix_socket_is_refused_by_name() {
    let bundle = counting("ckpt-sock");
    bundle.set_args(&["/bin/counter", "/tmp/count", "sock"]);
    run_detached(&bundle);
    count_past(&bundle, 3);
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_error(&["unix socket named /tmp/sock", "not supported yet"], &[]);
    assert!(!img.exists(), "a refused checkpoint wrote an image");
    assert_eq!(bundle.status(), "running");
    let n = count(&bundle);
    count_past(&bundle, n);
    bundle.assert_no_leaks();
}

/// A bundle whose init is tests/ckpt/tree.c: a zombie, a threaded child, a
/// session and a process group, each process counting into its own file
/// under /tmp.
fn tree_bundle(name: &str) -> Bundle {
    let bundle = Bundle::new(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ckpt/tree.c");
    let out = bundle.rootfs().join("bin/tree");
    let st = status_tracked(
        Command::new("cc")
            .args(["-static", "-O2", "-pthread", "-o"])
            .arg(&out)
            .arg(&src),
    );
    assert!(st.success(), "cc {}", src.display());
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
