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
    counting_with(Bundle::new(name))
}

/// [`counting`] of a bundle made by the caller.
fn counting_with(bundle: Bundle) -> Bundle {
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

/// [`counting`] with tests/ckpt/sockets.c at /bin/sockets.
fn with_sockets(name: &str) -> Bundle {
    let bundle = counting(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ckpt/sockets.c");
    let st = status_tracked(
        Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(bundle.rootfs().join("bin/sockets"))
            .arg(&src),
    );
    assert!(st.success(), "cc {}", src.display());
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
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
    fs::write(bundle.rootfs().join("tmp/check"), "").unwrap();
    let result = bundle.rootfs().join("tmp/result");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !result.exists() {
        assert!(Instant::now() < deadline, "no /tmp/result");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::read_to_string(&result).unwrap().trim(), "ok");
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
    let bundle = with_sockets("ckpt-tcp");
    bundle.set_args(&["/bin/sockets", "/tmp/count", "tcp"]);
    run_detached(&bundle);
    nsenter(bundle.pid(), &["-n", "ip", "link", "set", "lo", "up"]);
    fs::write(bundle.rootfs().join("tmp/go"), "").unwrap();
    count_past(&bundle, 3);
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
    restore_detached(&bundle, &img, bundle.id()).assert_success();
    let tcp = fs::read_to_string(format!("/proc/{}/net/tcp", bundle.pid())).unwrap();
    // 0100007F:10E1 is 127.0.0.1:4321, state 0A listening.
    assert!(tcp.contains("0100007F:10E1 00000000:0000 0A"), "{tcp}");
    // The restore's network namespace is new: loopback down, as an engine
    // finds it before it sets the network up again.
    nsenter(bundle.pid(), &["-n", "ip", "link", "set", "lo", "up"]);
    fs::write(bundle.rootfs().join("tmp/check"), "").unwrap();
    let result = bundle.rootfs().join("tmp/result");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !result.exists() {
        assert!(Instant::now() < deadline, "no /tmp/result");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::read_to_string(&result).unwrap().trim(), "ok");
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_tcp_listener_with_a_waiting_connection_is_refused_by_name() {
    let bundle = with_sockets("ckpt-tcpq");
    bundle.set_args(&["/bin/sockets", "/tmp/count", "tcpq"]);
    run_detached(&bundle);
    nsenter(bundle.pid(), &["-n", "ip", "link", "set", "lo", "up"]);
    fs::write(bundle.rootfs().join("tmp/go"), "").unwrap();
    count_past(&bundle, 3);
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while counted(&name) < 50 {
        assert!(Instant::now() < deadline, "the counter does not count");
        thread::sleep(Duration::from_millis(20));
    }
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while counted(&name) <= resumed + 5 {
        assert!(
            Instant::now() < deadline,
            "the restored counter is stuck at {resumed}"
        );
        thread::sleep(Duration::from_millis(20));
    }
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
    let img = image_dir(&bundle, "image");
    bundle
        .runtime(&["checkpoint", "--image-path", s(&img), bundle.id()])
        .assert_success();
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
