//! What `config.json` asks for is applied: each test edits one part of the
//! bundle's config and observes the effect inside the container (busybox
//! shell) or in the kernel's files on the host.
//!
//! Run as root: `cargo test -p corral --test config -- --include-ignored`;
//! against runc: `CORRAL_BIN=/usr/sbin/runc cargo test …`.
//!
//! runc 1.1.5 is the reference; where it lacks a feature (time namespace) or
//! departs from the OCI spec, the test says so and is gated on [`is_runc`].

#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

mod common;

use std::{
    fs,
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        net::UnixListener,
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    cgroup_dir_of, cgroup_dirs_named, cgroup_path_of, is_runc, kill_tracked, process_alive,
    read_fd_until, runtime_bin, spawn_tracked, unique_id, wait_tracked, Bundle, Output, TIMEOUT,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `run` the bundle with `sh -c SCRIPT` and returns the output.
fn run_sh(bundle: &Bundle, script: &str) -> Output {
    bundle.set_args(&["sh", "-c", script]);
    bundle.runtime(&["run", bundle.id()])
}

/// As [`run_sh`], asserting success; returns stdout.
#[track_caller]
fn run_ok(bundle: &Bundle, script: &str) -> String {
    let out = run_sh(bundle, script);
    out.assert_success();
    out.stdout
}

/// Appends `mount` to the config's `mounts`.
fn add_mount(bundle: &Bundle, mount: Value) {
    bundle.edit_config(|c| c["mounts"].as_array_mut().expect("mounts").push(mount));
}

/// Sets `root.readonly`.
fn set_readonly_root(bundle: &Bundle, readonly: bool) {
    bundle.edit_config(|c| c["root"]["readonly"] = readonly.into());
}

/// A directory of the test's own temp dir, created (mode 0755).
fn host_dir(bundle: &Bundle, name: &str) -> PathBuf {
    let dir = bundle.tmp_dir().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Collapses runs of whitespace to one space in each line.
fn squeeze(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
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

/// A mount the test makes on the host; detached on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        fs::create_dir_all(at).unwrap();
        rustix::mount::mount(
            "tmpfs",
            at,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            Some(c"size=1m"),
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", at.display()));
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

// ---------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------

/// Puts `bundle` in a new user namespace mapping container 0.. to
/// `host_id`.. (65536 ids). The rootfs is the test's own copy: it goes to
/// the mapped root, and the temp dirs above it become traversable.
fn in_user_namespace(bundle: &Bundle, host_id: u32) {
    chown_tree(&bundle.rootfs(), host_id, host_id);
    for dir in [bundle.tmp_dir(), bundle.dir()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    bundle.add_namespace("user");
    bundle.edit_config(|c| {
        let map = json!([{ "containerID": 0, "hostID": host_id, "size": 65_536 }]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
}

#[test]
#[ignore = "needs root"]
fn user_namespace_applies_uid_and_gid_mappings() {
    let bundle = Bundle::new("userns");
    in_user_namespace(&bundle, 100_000);
    set_readonly_root(&bundle, false);
    let out = run_ok(
        &bundle,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /owned",
    );
    assert_eq!(
        squeeze(&out),
        "0 100000 65536\n0 100000 65536\n0\n0",
        "inside the user namespace"
    );
    let owned = fs::metadata(bundle.rootfs().join("owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (100_000, 100_000),
        "a file made by container root belongs to the mapped host ids"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn time_namespace_applies_offsets() {
    let bundle = Bundle::new("timens");
    const THREE_DAYS: i64 = 86_400 * 3;
    bundle.add_namespace("time");
    bundle.edit_config(|c| {
        c["linux"]["timeOffsets"] = json!({
            "monotonic": { "secs": THREE_DAYS, "nanosecs": 0 },
            "boottime": { "secs": THREE_DAYS, "nanosecs": 0 },
        });
    });
    let host_uptime = || -> f64 {
        let text = fs::read_to_string("/proc/uptime").unwrap();
        text.split_whitespace().next().unwrap().parse().unwrap()
    };
    let before = host_uptime();
    let out = run_sh(&bundle, "cat /proc/uptime; cat /proc/self/timens_offsets");
    let after = host_uptime();
    if is_runc() && out.code != 0 {
        // runc 1.1.5 predates time namespaces (runc 1.2 adds them).
        eprintln!("runc refuses a time namespace:\n{out}");
        bundle.assert_no_leaks();
        return;
    }
    out.assert_success();
    let mut lines = out.stdout.lines();
    let inside: f64 = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no uptime:\n{out}"));
    // /proc/uptime follows CLOCK_BOOTTIME.
    let offset = THREE_DAYS as f64;
    assert!(
        inside >= before + offset && inside <= after + offset + 1.0,
        "uptime inside {inside}, host {before}..{after}"
    );
    let offsets = squeeze(&lines.collect::<Vec<_>>().join("\n"));
    assert!(
        offsets.contains(&format!("monotonic {THREE_DAYS} 0"))
            && offsets.contains(&format!("boottime {THREE_DAYS} 0")),
        "timens_offsets:\n{offsets}"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn joins_uts_and_network_namespaces_by_path() {
    let first = Bundle::new("nsfirst");
    first.set_hostname("first-box");
    first.set_args(&["sleep", "1000"]);
    first.runtime(&["run", "-d", first.id()]).assert_success();
    let pid = first.pid();

    let second = Bundle::new("nssecond");
    second.edit_config(|c| {
        // A hostname would be set in the joined namespace, i.e. the first's.
        c.as_object_mut().unwrap().remove("hostname");
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            match ns["type"].as_str() {
                Some("uts") => ns["path"] = format!("/proc/{pid}/ns/uts").into(),
                Some("network") => ns["path"] = format!("/proc/{pid}/ns/net").into(),
                _ => {}
            }
        }
    });
    let out = run_ok(
        &second,
        "hostname; readlink /proc/self/ns/uts; readlink /proc/self/ns/net",
    );
    let link = |ns: &str| {
        fs::read_link(format!("/proc/{pid}/ns/{ns}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(
        out,
        format!("first-box\n{}\n{}\n", link("uts"), link("net")),
        "the second container is in the first's uts and net namespaces"
    );
    assert_eq!(first.status(), "running");
    second.assert_no_leaks();
    first.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn ipc_and_cgroup_namespaces_are_new() {
    let bundle = Bundle::new("ipccgns");
    bundle.add_namespace("cgroup");
    let out = run_ok(
        &bundle,
        "readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup; cat /proc/self/cgroup",
    );
    let mut lines = out.lines();
    let host = |ns: &str| {
        fs::read_link(format!("/proc/self/ns/{ns}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let ipc = lines.next().unwrap_or_default();
    let cgroup = lines.next().unwrap_or_default();
    assert!(ipc.starts_with("ipc:[") && ipc != host("ipc"), "{out}");
    assert!(
        cgroup.starts_with("cgroup:[") && cgroup != host("cgroup"),
        "{out}"
    );
    let memberships: Vec<&str> = lines.collect();
    assert!(memberships.len() > 1, "{out}");
    for line in memberships {
        assert!(
            line.ends_with(":/"),
            "in a cgroup namespace every path is /: {line:?}\n{out}"
        );
    }
    bundle.assert_no_leaks();
}

// ---------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn read_only_bind_mount_of_a_host_dir() {
    let bundle = Bundle::new("robind");
    let src = host_dir(&bundle, "shared");
    fs::write(src.join("greeting"), "hello from the host\n").unwrap();
    add_mount(
        &bundle,
        json!({ "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro"] }),
    );
    let out = run_sh(
        &bundle,
        "cat /data/greeting; touch /data/new 2>/dev/null && echo writable || echo read-only",
    );
    out.assert_success();
    assert_eq!(out.stdout, "hello from the host\nread-only\n", "{out}");
    assert!(
        !src.join("new").exists(),
        "the container wrote to the host dir"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn rro_makes_submounts_of_an_rbind_read_only() {
    let bundle = Bundle::new("rro");
    let src = host_dir(&bundle, "tree");
    fs::write(src.join("top"), "top\n").unwrap();
    let sub = HostMount::tmpfs(&src.join("sub"));
    fs::write(sub.0.join("inner"), "inner\n").unwrap();
    add_mount(
        &bundle,
        json!({ "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rro"] }),
    );
    let out = run_sh(
        &bundle,
        "cat /data/top /data/sub/inner; \
         for d in /data /data/sub; do touch $d/new 2>/dev/null && echo $d writable || echo $d read-only; done",
    );
    out.assert_success();
    assert_eq!(
        out.stdout, "top\ninner\n/data read-only\n/data/sub read-only\n",
        "{out}"
    );
    assert!(!sub.0.join("new").exists() && !src.join("new").exists());
    bundle.runtime(&["delete", "--force", bundle.id()]);
    drop(sub);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn tmpfs_mount_applies_size_and_mode() {
    let bundle = Bundle::new("tmpfsopt");
    add_mount(
        &bundle,
        json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=2m", "mode=1770"],
        }),
    );
    let out = run_ok(
        &bundle,
        "stat -c '%a %F' /scratch; df -k /scratch | tail -n 1",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1770 directory"), "{out}");
    let df: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(df.first(), Some(&"tmpfs"), "{out}");
    assert_eq!(df.get(1), Some(&"2048"), "2 MiB in 1K blocks:\n{out}");
    bundle.assert_no_leaks();
}

/// Removes (unmounts, rmdirs) a host path a broken runtime might have made.
struct HostPathGuard(PathBuf);

impl Drop for HostPathGuard {
    fn drop(&mut self) {
        if self.0.exists() {
            eprintln!(
                "cleaning up {}: the runtime escaped the rootfs",
                self.0.display()
            );
            let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
            let _ = fs::remove_dir(&self.0);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn mount_destination_through_a_symlink_stays_in_the_rootfs() {
    let bundle = Bundle::new("symdest");
    let name = unique_id("symdest-target");
    let host_etc = HostPathGuard(Path::new("/etc").join(&name));
    let host_tmp = HostPathGuard(Path::new("/tmp").join(&name));
    std::os::unix::fs::symlink("/etc", bundle.rootfs().join("abs-link")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../tmp",
        bundle.rootfs().join("rel-link"),
    )
    .unwrap();
    for link in ["abs-link", "rel-link"] {
        add_mount(
            &bundle,
            json!({
                "destination": format!("/{link}/{name}"), "type": "tmpfs", "source": "tmpfs",
                "options": ["size=1m"],
            }),
        );
    }
    let out = run_ok(
        &bundle,
        &format!(
            "touch /etc/{name}/a /tmp/{name}/b && \
             awk '{{print $5, $9}}' /proc/self/mountinfo | grep {name}"
        ),
    );
    assert_eq!(
        out,
        format!("/etc/{name} tmpfs\n/tmp/{name} tmpfs\n"),
        "the mounts land on the rootfs's /etc and /tmp"
    );
    for guard in [&host_etc, &host_tmp] {
        assert!(
            !guard.0.exists(),
            "{} was created on the host",
            guard.0.display()
        );
    }
    let host_mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host_mounts.contains(&name), "{host_mounts}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn masked_paths_hide_files_and_dirs() {
    let bundle = Bundle::new("masked");
    fs::create_dir(bundle.rootfs().join("secrets")).unwrap();
    fs::write(bundle.rootfs().join("secrets/key"), "s3cret\n").unwrap();
    bundle.edit_config(|c| {
        let masked = c["linux"]["maskedPaths"]
            .as_array_mut()
            .expect("maskedPaths");
        assert!(
            masked.contains(&json!("/proc/timer_list")),
            "the default masks /proc/timer_list"
        );
        masked.push("/secrets".into());
    });
    let out = run_ok(
        &bundle,
        "echo timer_list=$(wc -c < /proc/timer_list) $(stat -c %t:%T /proc/timer_list); \
         echo secrets=[$(ls -A /secrets)]; cat /secrets/key 2>/dev/null || echo no-key",
    );
    assert_eq!(out, "timer_list=0 1:3\nsecrets=[]\nno-key\n");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn readonly_paths_refuse_writes() {
    let bundle = Bundle::new("ropaths");
    let script = "echo changed > /proc/sys/kernel/hostname 2>/dev/null && echo wrote || echo refused; hostname";
    bundle.set_hostname("ro-box");
    assert_eq!(run_ok(&bundle, script), "refused\nro-box\n");
    // Without /proc/sys in readonlyPaths the same write (to the container's
    // own uts namespace) goes through: the refusal above is readonlyPaths'.
    bundle.edit_config(|c| {
        let paths = c["linux"]["readonlyPaths"].as_array_mut().unwrap();
        paths.retain(|p| p != "/proc/sys");
    });
    assert_eq!(run_ok(&bundle, script), "wrote\nchanged\n");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn readonly_root_refuses_writes() {
    let bundle = Bundle::new("roroot");
    let script = "touch /made-here 2>/dev/null && echo wrote || echo refused";
    set_readonly_root(&bundle, true);
    assert_eq!(run_ok(&bundle, script), "refused\n");
    assert!(!bundle.rootfs().join("made-here").exists());
    set_readonly_root(&bundle, false);
    assert_eq!(run_ok(&bundle, script), "wrote\n");
    assert!(bundle.rootfs().join("made-here").exists());
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn dev_holds_the_default_devices_and_links() {
    let bundle = Bundle::new("devs");
    let out = run_ok(
        &bundle,
        "stat -c '%n %F %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/pts/ptmx; \
         for l in fd stdin stdout stderr ptmx; do echo /dev/$l '->' $(readlink /dev/$l); done",
    );
    let expected = "\
/dev/null character special file 1:3 666
/dev/zero character special file 1:5 666
/dev/full character special file 1:7 666
/dev/random character special file 1:8 666
/dev/urandom character special file 1:9 666
/dev/tty character special file 5:0 666
/dev/pts/ptmx character special file 5:2 666
/dev/fd -> /proc/self/fd
/dev/stdin -> /proc/self/fd/0
/dev/stdout -> /proc/self/fd/1
/dev/stderr -> /proc/self/fd/2
/dev/ptmx -> pts/ptmx
";
    assert_eq!(out, expected);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn linux_devices_are_created_with_mode_and_owner() {
    let bundle = Bundle::new("fuse");
    bundle.edit_config(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
            "fileMode": 0o640, "uid": 1234, "gid": 5678,
        }]);
    });
    let out = run_ok(&bundle, "stat -c '%F %t:%T %a %u %g' /dev/fuse");
    // 10:229 in hex, as stat prints it.
    assert_eq!(out, "character special file a:e5 640 1234 5678\n");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn cgroup_mount_shows_the_containers_own_cgroup_read_only() {
    let bundle = Bundle::new("cgmount");
    bundle.edit_config(|c| {
        assert!(
            c["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["destination"] == "/sys/fs/cgroup" && m["type"] == "cgroup"),
            "the default config mounts the cgroup hierarchy"
        );
        c["linux"]["resources"]["pids"] = json!({ "limit": 77 });
    });
    let out = run_ok(
        &bundle,
        "cat /sys/fs/cgroup/pids/pids.max; \
         touch /sys/fs/cgroup/pids/x 2>/dev/null && echo writable || echo read-only; \
         grep pids /proc/self/cgroup | cut -d: -f3; \
         awk '$5 == \"/sys/fs/cgroup/pids\" {print $4, $6}' /proc/self/mountinfo",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], "77", "the container's own pids.max:\n{out}");
    assert_eq!(lines[1], "read-only", "{out}");
    let own = lines[2];
    assert!(own.contains(bundle.id()), "{out}");
    let (root, options) = lines[3].split_once(' ').unwrap();
    assert_eq!(
        root, own,
        "the mount is a bind of the container's own cgroup:\n{out}"
    );
    assert!(
        options.split(',').any(|o| o == "ro"),
        "mount options {options}"
    );
    bundle.assert_no_leaks();
}

// ---------------------------------------------------------------------------
// Sysctl
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn namespaced_sysctl_is_applied_inside() {
    let bundle = Bundle::new("sysctl");
    let host = || fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let before = host();
    bundle.edit_config(|c| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" }));
    assert_eq!(run_ok(&bundle, "cat /proc/sys/net/ipv4/ip_forward"), "1\n");
    assert_eq!(host(), before, "the host's sysctl changed");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn non_namespaced_sysctl_is_refused() {
    let bundle = Bundle::new("sysctlhost");
    let host = || fs::read_to_string("/proc/sys/kernel/panic").unwrap();
    let before = host();
    let value = if before.trim() == "7" { "8" } else { "7" };
    bundle.edit_config(|c| c["linux"]["sysctl"] = json!({ "kernel.panic": value }));
    // runc: `runc create failed: sysctl "kernel.panic" is not in a separate
    // kernel namespace`.
    bundle
        .try_create(bundle.id())
        .assert_error(&["kernel.panic"], &[]);
    assert_eq!(host(), before, "the host's kernel.panic changed");
    assert!(!bundle.state_dir().exists());
    bundle.assert_no_leaks();
}

// ---------------------------------------------------------------------------
// Process
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn rlimits_apply() {
    let bundle = Bundle::new("rlimits");
    bundle.edit_config(|c| {
        c["process"]["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "soft": 321, "hard": 654 },
            { "type": "RLIMIT_NPROC", "soft": 1111, "hard": 2222 },
        ]);
    });
    assert_eq!(
        run_ok(&bundle, "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu"),
        "321\n654\n1111\n2222\n"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn user_ids_groups_and_umask_apply() {
    let bundle = Bundle::new("user");
    bundle.edit_config(|c| {
        c["process"]["user"] = json!({
            "uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027,
        });
    });
    let out = run_ok(
        &bundle,
        "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status; umask",
    );
    assert_eq!(
        squeeze(&out),
        "1000\n1001\nUid: 1000 1000 1000 1000\nGid: 1001 1001 1001 1001\nGroups: 10 20\n0027"
    );
    bundle.assert_no_leaks();
}

const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability names of a `/proc/PID/status` hex mask, sorted.
fn decode_caps(hex: &str) -> Vec<String> {
    let mask = u64::from_str_radix(hex.trim(), 16).unwrap_or_else(|e| panic!("{hex:?}: {e}"));
    let mut names: Vec<String> = (0..64)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| {
            CAP_NAMES
                .get(bit)
                .map_or_else(|| format!("CAP_{bit}"), |n| (*n).to_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
#[ignore = "needs root"]
fn capabilities_apply_to_a_non_root_process() {
    let bundle = Bundle::new("caps");
    bundle.edit_config(|c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_CHOWN", "CAP_KILL"],
            "ambient": ["CAP_KILL"],
        });
    });
    let out = run_ok(&bundle, "grep ^Cap /proc/self/status");
    let sets: std::collections::BTreeMap<&str, Vec<String>> = out
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, decode_caps(v)))
        .collect();
    let want = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    // A non-root execve keeps only the ambient set in permitted and effective.
    assert_eq!(sets["CapInh"], want(&["CAP_CHOWN", "CAP_KILL"]), "{out}");
    assert_eq!(sets["CapPrm"], want(&["CAP_KILL"]), "{out}");
    assert_eq!(sets["CapEff"], want(&["CAP_KILL"]), "{out}");
    assert_eq!(
        sets["CapBnd"],
        want(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]),
        "{out}"
    );
    assert_eq!(sets["CapAmb"], want(&["CAP_KILL"]), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn no_new_privileges_is_set_as_configured() {
    let bundle = Bundle::new("nnp");
    let script = "grep NoNewPrivs /proc/self/status";
    for (nnp, want) in [(true, "1"), (false, "0")] {
        bundle.edit_config(|c| c["process"]["noNewPrivileges"] = nnp.into());
        assert_eq!(
            squeeze(&run_ok(&bundle, script)),
            format!("NoNewPrivs: {want}")
        );
    }
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn oom_score_adj_applies() {
    let bundle = Bundle::new("oomadj");
    bundle.edit_config(|c| c["process"]["oomScoreAdj"] = 123.into());
    assert_eq!(run_ok(&bundle, "cat /proc/self/oom_score_adj"), "123\n");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn home_defaults_from_etc_passwd() {
    let bundle = Bundle::new("home");
    bundle.set_env(&["PATH=/bin"]);
    assert_eq!(run_ok(&bundle, "echo $HOME"), "/root\n");
    bundle.edit_config(|c| c["process"]["user"] = json!({ "uid": 65534, "gid": 65534 }));
    assert_eq!(run_ok(&bundle, "echo $HOME"), "/nonexistent\n");
    // An explicit HOME wins.
    bundle.set_env(&["PATH=/bin", "HOME=/elsewhere"]);
    assert_eq!(run_ok(&bundle, "echo $HOME"), "/elsewhere\n");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn missing_cwd_is_created() {
    let bundle = Bundle::new("mkcwd");
    // Even under a read-only root (the default): it is made before the
    // remount, as runc does.
    set_readonly_root(&bundle, true);
    bundle.set_cwd("/work/made/by/runtime");
    assert_eq!(run_ok(&bundle, "pwd"), "/work/made/by/runtime\n");
    assert!(bundle.rootfs().join("work/made/by/runtime").is_dir());
    bundle.assert_no_leaks();
}

// ---------------------------------------------------------------------------
// cgroups
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn pids_and_memory_limits_reach_the_kernel_files() {
    let bundle = Bundle::new("cglimits");
    bundle.edit_config(|c| {
        c["linux"]["resources"]["pids"] = json!({ "limit": 12 });
        c["linux"]["resources"]["memory"] = json!({ "limit": 32 * 1024 * 1024 });
    });
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    let pid = bundle.pid();
    let read = |dir: PathBuf, file: &str| {
        fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
    };
    let pids = cgroup_dir_of(pid, "pids");
    let memory = cgroup_dir_of(pid, "memory");
    assert!(
        pids.to_string_lossy().contains(bundle.id()),
        "{}",
        pids.display()
    );
    assert_eq!(read(pids.clone(), "pids.max"), "12\n");
    assert_eq!(read(memory.clone(), "memory.limit_in_bytes"), "33554432\n");
    assert!(read(pids, "cgroup.procs")
        .lines()
        .any(|p| p == pid.to_string()));
    bundle.runtime(&["start", bundle.id()]).assert_success();
    bundle.wait_for_status("running");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn pids_limit_holds() {
    let bundle = Bundle::new("pidslimit");
    bundle.edit_config(|c| c["linux"]["resources"]["pids"] = json!({ "limit": 12 }));
    // A subshell forks 40 sleeps until fork fails; the count uses only
    // builtins (a glob), which need no fork.
    let out = run_ok(
        &bundle,
        "(i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; \
         set -- /proc/[0-9]*; echo $#",
    );
    let live: usize = out.trim().parse().unwrap_or_else(|_| panic!("{out}"));
    assert!(
        (5..=12).contains(&live),
        "{live} processes live under a pids limit of 12"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn memory_limit_oom_kills_and_run_exits_137() {
    let bundle = Bundle::new("oomkill");
    bundle.edit_config(|c| {
        c["linux"]["resources"]["memory"] = json!({ "limit": 32 * 1024 * 1024 });
    });
    // tail keeps its input until the last newline, and /dev/zero has none.
    // Should the cgroup limit be missing, RLIMIT_AS stops tail (exit 1)
    // before it eats the host's memory.
    bundle.set_args(&["tail", "/dev/zero"]);
    bundle.edit_config(|c| {
        c["process"]["rlimits"] = json!([
            { "type": "RLIMIT_AS", "soft": 512u64 << 20, "hard": 512u64 << 20 },
        ]);
    });
    bundle.runtime(&["run", bundle.id()]).assert_code(137);
    bundle.assert_no_leaks();
}

/// Removes a cgroup directory (and what is below it) in every hierarchy.
struct CgroupParentGuard(String);

impl CgroupParentGuard {
    fn dirs(&self) -> Vec<PathBuf> {
        let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
            return Vec::new();
        };
        hierarchies
            .flatten()
            .map(|h| h.path().join(&self.0))
            .filter(|d| d.is_dir())
            .collect()
    }
}

impl Drop for CgroupParentGuard {
    fn drop(&mut self) {
        for dir in self.dirs() {
            if let Ok(children) = fs::read_dir(&dir) {
                for child in children.flatten() {
                    if child.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = fs::remove_dir(child.path());
                    }
                }
            }
            let _ = fs::remove_dir(&dir);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn absolute_cgroups_path_is_used_and_removed() {
    let parent = CgroupParentGuard(unique_id("cgparent"));
    let bundle = Bundle::new("cgpath");
    let path = format!("/{}/{}", parent.0, bundle.id());
    bundle.edit_config(|c| {
        c["linux"]["cgroupsPath"] = path.clone().into();
        c["linux"]["resources"]["pids"] = json!({ "limit": 50 });
    });
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    let pid = bundle.pid();
    for controller in ["pids", "memory", "cpu", "devices", "freezer"] {
        assert_eq!(cgroup_path_of(pid, controller), path, "{controller}");
    }
    let leaf = Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'));
    assert_eq!(fs::read_to_string(leaf.join("pids.max")).unwrap(), "50\n");
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    common::wait_for("the leaf cgroups go", || {
        cgroup_dirs_named(bundle.id()).is_empty().then_some(())
    });
    // runc 1.1.5 removes only the leaf; the parent it created stays in every
    // hierarchy (the guard removes it).
    for dir in parent.dirs() {
        assert!(!dir.join(bundle.id()).exists(), "{}", dir.display());
    }
    bundle.assert_no_leaks();
}

// ---------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------

const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook that saves its stdin in `<dir>/<stage>.json`, then appends the
/// stage name to `<dir>/order` (one write, so concurrent hooks do not mix).
fn recording_hook(dir: &str, stage: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("/bin/cat > {dir}/$1.json; echo $1 >> {dir}/order"), "sh", stage],
    })
}

#[test]
#[ignore = "needs root"]
fn all_six_hook_stages_run_in_order_with_the_state() {
    let bundle = Bundle::new("hooks");
    let log = host_dir(&bundle, "hooklog");
    let log_str = log.to_str().unwrap().to_owned();
    add_mount(
        &bundle,
        json!({ "destination": "/hooklog", "type": "bind", "source": log, "options": ["rbind", "rw"] }),
    );
    bundle.edit_config(|c| {
        let mut hooks = serde_json::Map::new();
        for stage in STAGES {
            // startContainer runs in the container: its paths are the container's.
            let dir = if stage == "startContainer" {
                "/hooklog"
            } else {
                &log_str
            };
            hooks.insert(stage.into(), json!([recording_hook(dir, stage)]));
        }
        c["hooks"] = hooks.into();
    });
    bundle.set_args(&["sleep", "1000"]);
    let order = || -> Vec<String> {
        fs::read_to_string(log.join("order"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    bundle.create();
    let pid = bundle.pid();
    if is_runc() {
        // runc 1.1.5 runs poststart hooks at the end of `create`, not after
        // `start` (fixed in runc 1.2); the OCI spec says after start.
        assert_eq!(
            order(),
            ["prestart", "createRuntime", "createContainer", "poststart"]
        );
    } else {
        assert_eq!(order(), ["prestart", "createRuntime", "createContainer"]);
    }
    bundle.runtime(&["start", bundle.id()]).assert_success();
    bundle.wait_for_status("running");
    common::wait_for("startContainer and poststart", || {
        (order().len() == 5).then_some(())
    });
    let mut started = order()[3..].to_vec();
    started.sort();
    assert_eq!(started, ["poststart", "startContainer"]);
    bundle
        .runtime(&["kill", bundle.id(), "KILL"])
        .assert_success();
    bundle.wait_for_status("stopped");
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    assert_eq!(order().len(), 6, "{:?}", order());
    assert_eq!(order()[5], "poststop");

    let state_of = |stage: &str| -> Value {
        let text = fs::read_to_string(log.join(format!("{stage}.json"))).unwrap();
        let state: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{stage} got no state JSON ({e}): {text:?}"));
        assert_eq!(state["id"], bundle.id(), "{stage}: {state}");
        assert_eq!(
            state["bundle"],
            bundle.dir().to_str().unwrap(),
            "{stage}: {state}"
        );
        assert!(state["ociVersion"].is_string(), "{stage}: {state}");
        state
    };
    let host_pid = json!(pid);
    for stage in ["prestart", "createRuntime"] {
        let state = state_of(stage);
        assert_eq!(state["status"], "creating", "{stage}: {state}");
        assert_eq!(state["pid"], host_pid, "{stage}: {state}");
    }
    // Hooks run in the container get its pid as the runtime knows it (runc:
    // 1, as the container sees it; the OCI spec: as the host sees it).
    let state = state_of("createContainer");
    assert_eq!(state["status"], "creating", "{state}");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0), "{state}");
    let state = state_of("startContainer");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0), "{state}");
    let state = state_of("poststart");
    assert_eq!(state["pid"], host_pid, "{state}");
    if !is_runc() {
        // runc 1.1.5 runs poststart at create, hence reports "created".
        assert_eq!(state["status"], "running", "{state}");
    }
    // The pid of a stopped container is optional (runc omits it).
    let state = state_of("poststop");
    assert_eq!(state["status"], "stopped", "{state}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn hook_timeout_fails_create() {
    // (No "timeout" in the id: the id is part of the message.)
    let bundle = Bundle::new("hookslow");
    // A private copy of sleep, so a leaked hook process is recognisable.
    let sleeper = bundle.tmp_dir().join("hook-sleeper");
    fs::copy("/bin/sleep", &sleeper).unwrap();
    let sleeper_str = sleeper.to_str().unwrap().to_owned();
    bundle.edit_config(|c| {
        c["hooks"] = json!({
            "createRuntime": [{ "path": sleeper_str, "args": ["hook-sleeper", "30"], "timeout": 1 }],
        });
    });
    bundle.set_args(&["sleep", "1000"]);
    let start = Instant::now();
    let out = bundle.try_create(bundle.id());
    let took = start.elapsed();
    if is_runc() {
        // runc: `runc create failed: unable to start container process: error
        // during container init: error running hook #0: hook ran past
        // specified timeout of 1.0s`.
        out.assert_error(&["hook #0", "timeout"], &[]);
    } else {
        // corral: `corral: create container <id>: createRuntime hook <path>
        // timed out after 1 s`.
        out.assert_error(&["createRuntime hook", &sleeper_str, "timed out"], &[]);
    }
    assert!(took < Duration::from_secs(15), "create took {took:?}");
    assert!(!bundle.state_dir().exists());
    let hook_alive = common::all_pids().into_iter().any(|pid| {
        fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == sleeper)
            && process_alive(pid)
    });
    assert!(!hook_alive, "the timed-out hook is still running");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn failing_poststart_hook_does_not_fail_start() {
    let bundle = Bundle::new("poststartfail");
    bundle.add_hook("poststart", "/bin/false", &[]);
    bundle.set_args(&["sleep", "1000"]);
    let created = bundle.try_create(bundle.id());
    if is_runc() {
        // runc 1.1.5 departs from the OCI spec twice: it runs poststart at
        // the end of `create`, and a failing one fails it (`runc create
        // failed: error running hook #0: error running hook: exit status 1`).
        assert_ne!(created.code, 0, "{created}");
    } else {
        // OCI runtime spec: a failing poststart hook is logged as a warning,
        // the lifecycle continues.
        created.assert_success();
        let start = bundle.runtime(&["start", bundle.id()]);
        start.assert_success();
        assert!(
            start.stderr.contains("poststart") && start.stderr.contains("/bin/false"),
            "a warning names the failed hook:\n{start}"
        );
        assert_eq!(bundle.status(), "running");
    }
    bundle.assert_no_leaks();
}

// ---------------------------------------------------------------------------
// Console, fds, flags
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn terminal_sends_the_pty_master_to_the_console_socket() {
    let bundle = Bundle::new("console");
    let socket = bundle.tmp_dir().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    bundle.set_terminal(true);
    bundle.set_args(&["sh", "-c", "tty; test -c /dev/console && echo console-ok"]);
    let dir = bundle.dir();
    bundle
        .runtime(&[
            "create",
            "--bundle",
            dir.to_str().unwrap(),
            "--console-socket",
            socket.to_str().unwrap(),
            bundle.id(),
        ])
        .assert_success();
    let master = common::receive_fd(&listener);
    bundle.runtime(&["start", bundle.id()]).assert_success();
    let text = read_fd_until(&master, "console-ok");
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "tty output {text:?}"
    );
    assert!(lines.contains(&"console-ok"), "{text:?}");
    bundle.wait_for_status("stopped");
    drop(master);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn preserve_fds_passes_fd_3_and_nothing_else() {
    let bundle = Bundle::new("preservefds");
    bundle.set_args(&["sh", "-c", "echo through-fd-3 >&3; exec sleep 1000"]);
    let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let pipe_inode = fs::read_link(format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        write_end.as_raw_fd()
    }))
    .unwrap();
    let (out, err) = (
        bundle.tmp_dir().join("pf.out"),
        bundle.tmp_dir().join("pf.err"),
    );
    // The pipe arrives as stdin of a shell that moves it to fd 3.
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "exec 3>&0 0</dev/null; exec \"$@\"", "sh"])
        .arg(runtime_bin())
        .arg("--root")
        .arg(bundle.state_root())
        .args(["run", "-d", "--preserve-fds", "1", bundle.id()])
        .current_dir(bundle.dir())
        .stdin(Stdio::from(write_end))
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    let mut child = spawn_tracked(&mut cmd);
    let Some(status) = wait_tracked(&mut child, TIMEOUT) else {
        kill_tracked(&mut child);
        panic!("run -d timed out");
    };
    drop(cmd);
    assert!(
        status.success(),
        "run -d failed: {}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    assert_eq!(read_fd_until(&read_end, "\n"), "through-fd-3\n");
    let pid = bundle.pid();
    let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    fds.sort();
    assert_eq!(fds, [0, 1, 2, 3], "open fds of the container process");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/fd/3")).unwrap(),
        pipe_inode
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn no_pivot_run_works() {
    let bundle = Bundle::new("nopivot");
    bundle.set_args(&["sh", "-c", "ls /bin/busybox; echo $$; hostname"]);
    let out = bundle.runtime(&["run", "--no-pivot", bundle.id()]);
    out.assert_success();
    assert_eq!(out.stdout, "/bin/busybox\n1\nnopivot\n", "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn relative_pid_file_is_relative_to_the_cwd() {
    let bundle = Bundle::new("relpid");
    bundle.set_args(&["sleep", "1000"]);
    let cwd = host_dir(&bundle, "elsewhere");
    let dir = bundle.dir();
    bundle
        .runtime_in(
            &cwd,
            &[
                "create",
                "--bundle",
                dir.to_str().unwrap(),
                "--pid-file",
                "my.pid",
                bundle.id(),
            ],
        )
        .assert_success();
    let written = fs::read_to_string(cwd.join("my.pid"))
        .unwrap_or_else(|e| panic!("{}/my.pid: {e}", cwd.display()));
    assert_eq!(written.trim().parse::<i32>().ok(), Some(bundle.pid()));
    assert!(!dir.join("my.pid").exists());
    bundle.assert_no_leaks();
}

// ---------------------------------------------------------------------------
// More of the same areas
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn root_process_gets_the_default_capabilities() {
    let bundle = Bundle::new("rootcaps");
    let configured = bundle.config()["process"]["capabilities"].clone();
    let names = |set: &str| -> Vec<String> {
        let mut names: Vec<String> = configured[set]
            .as_array()
            .map(|a| a.iter().map(|n| n.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    let out = run_ok(&bundle, "grep ^Cap /proc/self/status");
    let sets: std::collections::BTreeMap<&str, Vec<String>> = out
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, decode_caps(v)))
        .collect();
    assert!(!names("bounding").is_empty(), "{configured}");
    assert_eq!(sets["CapBnd"], names("bounding"), "{out}");
    assert_eq!(sets["CapPrm"], names("permitted"), "{out}");
    assert_eq!(sets["CapEff"], names("effective"), "{out}");
    assert_eq!(sets["CapInh"], names("inheritable"), "{out}");
    // execve by root drops the ambient set (the file counts as privileged).
    assert_eq!(sets["CapAmb"], Vec::<String>::new(), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn devices_work_in_a_user_namespace() {
    let bundle = Bundle::new("usernsdev");
    in_user_namespace(&bundle, 200_000);
    // No mknod in a user namespace: the devices are bind mounts of the host's.
    let out = run_ok(
        &bundle,
        "stat -c '%n %t:%T' /dev/null /dev/zero /dev/urandom; \
         echo x > /dev/null && head -c 3 /dev/zero | wc -c",
    );
    assert_eq!(out, "/dev/null 1:3\n/dev/zero 1:5\n/dev/urandom 1:9\n3\n");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn bind_mount_of_a_file_onto_a_missing_destination() {
    let bundle = Bundle::new("filebind");
    let src = host_dir(&bundle, "files").join("resolv.conf");
    fs::write(&src, "nameserver 192.0.2.53\n").unwrap();
    add_mount(
        &bundle,
        json!({
            "destination": "/etc/deep/resolv.conf", "type": "bind", "source": src,
            "options": ["bind", "ro"],
        }),
    );
    let out = run_ok(
        &bundle,
        "cat /etc/deep/resolv.conf; stat -c %F /etc/deep/resolv.conf",
    );
    assert_eq!(out, "nameserver 192.0.2.53\nregular file\n");
    assert!(
        bundle.rootfs().join("etc/deep/resolv.conf").is_file(),
        "the mountpoint is a file"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn noexec_tmpfs_refuses_exec() {
    let bundle = Bundle::new("noexec");
    for (dest, options) in [("/noexec", json!(["noexec"])), ("/exec", json!([]))] {
        add_mount(
            &bundle,
            json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options }),
        );
    }
    let out = run_ok(
        &bundle,
        "for d in /noexec /exec; do cp /bin/busybox $d/true; $d/true 2>/dev/null && echo $d ran || echo $d refused; done",
    );
    assert_eq!(out, "/noexec refused\n/exec ran\n");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn ipc_sysctls_apply_in_the_ipc_namespace() {
    let bundle = Bundle::new("ipcsysctl");
    let host = || fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let before = host();
    let value = if before.trim() == "1234" {
        "1235"
    } else {
        "1234"
    };
    bundle.edit_config(|c| {
        c["linux"]["sysctl"] = json!({ "kernel.shmmni": value, "fs.mqueue.queues_max": "77" });
    });
    assert_eq!(
        run_ok(
            &bundle,
            "cat /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/queues_max"
        ),
        format!("{value}\n77\n")
    );
    assert_eq!(host(), before, "the host's kernel.shmmni changed");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn net_sysctl_without_a_network_namespace_is_refused() {
    let bundle = Bundle::new("netsysctlhost");
    let host = || fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let before = host();
    bundle.remove_namespace("network");
    let value = if before.trim() == "1" { "0" } else { "1" };
    bundle.edit_config(|c| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": value }));
    // runc: `runc create failed: sysctl "net.ipv4.ip_forward" not allowed in
    // host network namespace`.
    bundle
        .try_create(bundle.id())
        .assert_error(&["net.ipv4.ip_forward"], &[]);
    assert_eq!(host(), before, "the host's ip_forward changed");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn cpu_cpuset_and_swap_limits_reach_the_kernel_files() {
    let bundle = Bundle::new("cglimits2");
    bundle.edit_config(|c| {
        c["linux"]["resources"]["cpu"] =
            json!({ "shares": 512, "quota": 50_000, "period": 100_000, "cpus": "0" });
        c["linux"]["resources"]["memory"] =
            json!({ "limit": 64u64 << 20, "swap": 96u64 << 20, "reservation": 16u64 << 20 });
    });
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    let pid = bundle.pid();
    let read = |controller: &str, file: &str| {
        let dir = cgroup_dir_of(pid, controller);
        assert!(
            dir.to_string_lossy().contains(bundle.id()),
            "{}",
            dir.display()
        );
        fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
            .trim()
            .to_owned()
    };
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    // OCI's swap is memory + swap: v1's memsw.
    assert_eq!(
        read("memory", "memory.memsw.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(
        read("memory", "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    bundle.assert_no_leaks();
}

/// The startContainer hook runs after `start`, when the container has been
/// created: its state says `created` (runc 1.1.5: `"status":"created"`).
#[test]
#[ignore = "needs root"]
fn start_container_hook_sees_status_created() {
    let bundle = Bundle::new("hookcreated");
    let log = bundle.tmp_dir().join("hooklog");
    fs::create_dir(&log).unwrap();
    bundle.edit_config(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooklog", "type": "bind", "source": log, "options": ["rbind", "rw"],
        }));
        c["hooks"] = json!({
            "startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "/bin/cat > /hooklog/state.json"],
            }],
        });
    });
    bundle.set_args(&["true"]);
    bundle.create();
    bundle.runtime(&["start", bundle.id()]).assert_success();
    bundle.wait_for_status("stopped");
    let text = fs::read_to_string(log.join("state.json")).unwrap();
    let state: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    bundle.assert_no_leaks();
}

/// A device listed in `linux.devices` is created, but may be opened only if
/// `linux.resources.devices` allows it (runc 1.1.5: open fails with EPERM).
#[test]
#[ignore = "needs root"]
fn device_cgroup_denies_what_is_not_allowed() {
    let bundle = Bundle::new("devcgroup");
    // The runtime makes the node (linux.devices); the device rules decide
    // whether it may be opened. Listing a device does not allow it.
    bundle.edit_config(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666,
        }]);
    });
    let script = "test -c /dev/fuse && \
                  { (exec 3<>/dev/fuse) 2>&1 | grep -q 'not permitted' && echo denied || echo allowed; }";
    assert_eq!(run_ok(&bundle, script), "denied\n");
    bundle.edit_config(|c| {
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw" }));
    });
    assert_eq!(run_ok(&bundle, script), "allowed\n");
    bundle.assert_no_leaks();
}
