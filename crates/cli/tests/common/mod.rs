//! Fixture for the runtime's integration tests: a busybox rootfs built once per
//! run, one bundle (rootfs copy, `config.json`, state root, container id) per
//! test, a runner with a timeout, and a leak check.
//!
//! The runtime under test is `$CORRAL_BIN` (default: the `corral` binary cargo
//! builds), so the same tests run against any runc-compatible binary; runc is
//! the reference (`CORRAL_BIN=/usr/sbin/runc`). Where runc's wording differs
//! from ours, assertions are loose (a keyword, the offending value); where runc
//! does not detect an error at all, the assertion is gated on [`is_runc`].
//!
//! Layout of one bundle's temp dir:
//!
//! ```text
//! <tmp>/bundle/config.json   written by `$CORRAL_BIN spec`, edited by the helpers
//! <tmp>/bundle/rootfs/       `cp -a` of the shared busybox rootfs
//! <tmp>/state/               passed as `--root`
//! <tmp>/io/                  stdout/stderr files of each runtime invocation
//! ```
//!
//! Runtime output goes to files, not pipes: a container started by `create` or
//! `run -d` inherits the runtime's stdio and would hold a pipe open for its
//! whole life, so reading to EOF would hang.
//!
//! The test process makes itself a child subreaper, so container processes
//! orphaned by `create`/`run -d` become its children (PID 1 here does not
//! reap). [`reap_orphans`] reaps those, and only those: children spawned
//! through [`spawn_tracked`] are registered and left to their `Child`, so
//! `Child::wait` never loses its status to the reaper.
#![allow(dead_code)] // each test binary uses a different part of the fixture
#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

use std::{
    collections::BTreeSet,
    fs,
    io::ErrorKind,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex, MutexGuard, Once, OnceLock,
    },
    thread,
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal, WaitOptions};
use serde_json::Value;
use tempfile::TempDir;

/// How long one runtime invocation may take before it is killed and the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How long to wait for a container to reach a status, or for leaks to vanish.
pub const SETTLE: Duration = Duration::from_secs(10);

/// The runtime binary under test: `$CORRAL_BIN`, else the `corral` cargo builds.
pub fn runtime_bin() -> PathBuf {
    match std::env::var_os("CORRAL_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_corral")),
    }
}

/// True when the binary under test is runc, whose messages and gaps differ from ours.
pub fn is_runc() -> bool {
    runtime_bin()
        .file_name()
        .is_some_and(|name| name.to_string_lossy().contains("runc"))
}

// ---------------------------------------------------------------------------
// Children and orphans
// ---------------------------------------------------------------------------

/// Pids of children spawned through [`spawn_tracked`] and not yet waited for.
static TRACKED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn tracked() -> MutexGuard<'static, BTreeSet<i32>> {
    TRACKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes this test process a child subreaper (once), so orphaned container
/// processes are reparented to it instead of to the non-reaping PID 1.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .expect("prctl(PR_SET_CHILD_SUBREAPER)");
    });
}

/// Spawns `cmd`, registering the child so that [`reap_orphans`] leaves it alone.
pub fn spawn_tracked(cmd: &mut Command) -> Child {
    become_subreaper();
    let mut children = tracked();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    children.insert(pid_of(&child));
    child
}

fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id()).expect("pids fit in i32")
}

/// Waits for a tracked child for at most `timeout`; `None` if it is still running.
pub fn wait_tracked(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                tracked().remove(&pid_of(child));
                return Some(status);
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => return None,
            Err(e) => panic!("cannot wait for pid {}: {e}", child.id()),
        }
    }
}

/// `cmd.output()`, but tracked: a test's [`reap_orphans`] running in a
/// parallel test must not reap this child before we wait for it (ECHILD).
/// Stdin is null, as with `output()`.
pub fn output_tracked(cmd: &mut Command) -> std::process::Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn_tracked(cmd);
    let pid = pid_of(&child);
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"));
    tracked().remove(&pid);
    output
}

/// `cmd.status()`, but tracked (see [`output_tracked`]); stdin is null,
/// stdout and stderr are inherited.
pub fn status_tracked(cmd: &mut Command) -> ExitStatus {
    cmd.stdin(Stdio::null());
    let mut child = spawn_tracked(cmd);
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"));
    tracked().remove(&pid_of(&child));
    status
}

/// Polls `probe` every 20 ms until it returns `Some`; panics after 10 s.
#[track_caller]
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Receives one fd sent with SCM_RIGHTS on an accepted connection of `listener`.
pub fn receive_fd(listener: &std::os::unix::net::UnixListener) -> std::os::fd::OwnedFd {
    listener.set_nonblocking(true).unwrap();
    let (conn, _) = wait_for("the runtime connects to the console socket", || {
        listener.accept().ok()
    });
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        std::os::fd::AsFd::as_fd(&conn),
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .expect("recvmsg on the console socket");
    let mut fds = Vec::new();
    for message in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    assert_eq!(fds.len(), 1, "one fd over the console socket");
    fds.pop().unwrap()
}

/// Kills a tracked child and waits for it.
pub fn kill_tracked(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
    tracked().remove(&pid_of(child));
}

/// Reaps our zombie children that nobody holds a `Child` for: container
/// processes reparented to us because we are a subreaper.
pub fn reap_orphans() {
    let children = tracked(); // held so that no tracked child is spawned meanwhile
    let me = std::process::id();
    for pid in all_pids() {
        if children.contains(&pid) {
            continue;
        }
        let Some((state, ppid)) = stat_state_ppid(pid) else {
            continue;
        };
        if state == 'Z' && ppid == me {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
            }
        }
    }
}

/// Every pid listed in /proc.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// State letter and parent pid from /proc/PID/stat.
pub fn stat_state_ppid(pid: i32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True if `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    matches!(stat_state_ppid(pid), Some((state, _)) if state != 'Z')
}

/// Sends SIGKILL to `pid` from the host.
pub fn kill_pid(pid: i32) {
    let pid = Pid::from_raw(pid).expect("pid > 0");
    rustix::process::kill_process(pid, Signal::KILL).expect("kill -9");
}

/// Pids of live processes whose cgroup membership names `id`.
pub fn pids_in_cgroup_of(id: &str) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            process_alive(pid)
                && fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|cgroup| cgroup.contains(id))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The shared rootfs
// ---------------------------------------------------------------------------

const BUSYBOX: &str = "/bin/busybox";

/// The busybox rootfs shared by all tests of the run, built on first use.
///
/// Test binaries run in parallel, so the build holds an exclusive `flock` on
/// `<cache>.lock`, builds into `<cache>.partial` and renames it into place; a
/// `complete` marker beside `rootfs` tells later users it is whole.
pub fn shared_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-test-rootfs");
        let lock_path = cache.with_extension("lock");
        fs::create_dir_all(cache.parent().expect("cache has a parent")).unwrap();
        let lock = fs::File::create(&lock_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
        if !cache.join("complete").exists() {
            let partial = cache.with_extension("partial");
            remove_if_exists(&partial);
            build_rootfs(&partial.join("rootfs"));
            fs::write(partial.join("complete"), b"").unwrap();
            remove_if_exists(&cache);
            fs::rename(&partial, &cache).unwrap();
        }
        drop(lock); // closing the file releases the flock
        cache.join("rootfs")
    })
}

fn remove_if_exists(path: &Path) {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            panic!("cannot remove {}: {e}", path.display())
        }
        _ => {}
    }
}

fn build_rootfs(rootfs: &Path) {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: the tests build their rootfs from Debian's static busybox; \
         run `apt-get install busybox-static`"
    );
    for dir in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin",
    ] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    let list = run_tool(Command::new(BUSYBOX).arg("--list"));
    for applet in list.lines().map(str::trim).filter(|a| !a.is_empty()) {
        let link = rootfs.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            symlink("busybox", &link).unwrap();
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
}

/// Runs a helper tool (not the runtime) to completion and returns its stdout.
fn run_tool(cmd: &mut Command) -> String {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out_file.reopen().unwrap())
        .stderr(Stdio::inherit());
    let mut child = spawn_tracked(cmd);
    let Some(status) = wait_tracked(&mut child, TIMEOUT) else {
        kill_tracked(&mut child);
        panic!("{cmd:?} timed out");
    };
    assert!(status.success(), "{cmd:?} failed: {status}");
    fs::read_to_string(out_file.path()).unwrap()
}

// ---------------------------------------------------------------------------
// Runtime output
// ---------------------------------------------------------------------------

/// What one runtime invocation did.
#[derive(Debug)]
pub struct Output {
    /// The command line, for messages.
    pub cmd: String,
    /// Exit code, or 128 + signal number if the runtime was killed.
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// Panics unless the command exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, 0, "`{}` failed:\n{self}", self.cmd);
        self
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "`{}` exit code:\n{self}", self.cmd);
        self
    }

    /// The single non-empty stderr line; panics if there are none or several.
    #[track_caller]
    pub fn stderr_line(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "`{}` should print exactly one stderr line:\n{self}",
            self.cmd
        );
        lines[0]
    }

    /// Asserts a failed command: exit code 1 (as runc: 1 when a command fails)
    /// and one stderr line containing every keyword (case-insensitively), plus
    /// the `not_runc` keywords when the binary under test is not runc (whose
    /// message lacks them; each caller says so).
    #[track_caller]
    pub fn assert_error(&self, keywords: &[&str], not_runc: &[&str]) -> &Self {
        self.assert_code(1);
        let line = self.stderr_line().to_lowercase();
        let extra = if is_runc() { &[][..] } else { not_runc };
        for keyword in keywords.iter().chain(extra) {
            assert!(
                line.contains(&keyword.to_lowercase()),
                "`{}`: the error should mention {keyword:?}:\n{self}",
                self.cmd
            );
        }
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A runtime invocation left running in the background (`run` in the foreground).
pub struct Background {
    child: Option<Child>,
    cmd: String,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    /// Waits (at most [`TIMEOUT`]) for the runtime to exit.
    pub fn wait(mut self) -> Output {
        let mut child = self.child.take().expect("waited once");
        let status = wait_tracked(&mut child, TIMEOUT);
        let timed_out = status.is_none();
        if timed_out {
            kill_tracked(&mut child);
        }
        let output = Output {
            cmd: self.cmd.clone(),
            code: status.map_or(-1, status_code),
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
        };
        assert!(
            !timed_out,
            "`{}` timed out after {TIMEOUT:?}:\n{output}",
            self.cmd
        );
        output
    }

    /// The runtime process's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("not waited yet").id() as i32
    }

    /// Whether the runtime has exited.
    pub fn exited(&mut self) -> bool {
        let child = self.child.as_mut().expect("not waited yet");
        wait_tracked(child, Duration::ZERO).is_some()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_tracked(child);
        }
    }
}

fn status_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique container id: `corral-test-<name>-<pid>-<counter>`. The counter
/// has a fixed width so that no id of a run is a substring of another.
pub fn unique_id(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("corral-test-{name}-{}-{n:04}", std::process::id())
}

/// One test's bundle, state root and container id; cleans up on drop.
pub struct Bundle {
    tmp: Option<TempDir>,
    id: String,
    invocations: AtomicU32,
    /// The runtime binary every invocation of this bundle runs.
    bin: PathBuf,
}

impl Bundle {
    /// A bundle with a fresh rootfs and the runtime's own `spec`, edited for
    /// tests: no terminal, hostname `<name>`, args `true`.
    pub fn new(name: &str) -> Bundle {
        Bundle::with_runtime(name, runtime_bin())
    }

    /// As [`Bundle::new`], driving `bin` instead of [`runtime_bin`]: the
    /// differential tests run one bundle with runc and one with corral.
    pub fn with_runtime(name: &str, bin: PathBuf) -> Bundle {
        become_subreaper();
        let rootfs = shared_rootfs();
        let tmp = tempfile::Builder::new()
            .prefix("corral-test-")
            .tempdir()
            .unwrap();
        let bundle = Bundle {
            id: unique_id(name),
            tmp: Some(tmp),
            invocations: AtomicU32::new(0),
            bin,
        };
        for dir in [bundle.dir(), bundle.io_dir()] {
            fs::create_dir(dir).unwrap();
        }
        run_tool(
            Command::new("cp")
                .arg("-a")
                .arg(rootfs)
                .arg(bundle.rootfs()),
        );
        bundle.runtime_in(&bundle.dir(), &["spec"]).assert_success();
        assert!(
            bundle.config_path().is_file(),
            "`spec` did not write {}",
            bundle.config_path().display()
        );
        bundle.set_terminal(false);
        bundle.set_hostname(name);
        bundle.set_args(&["true"]);
        bundle
    }

    fn tmp(&self) -> &Path {
        self.tmp.as_ref().expect("tmp lives until drop").path()
    }

    /// The runtime binary this bundle drives.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The container id of this test.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The temp dir holding bundle, state root and io files.
    pub fn tmp_dir(&self) -> PathBuf {
        self.tmp().to_path_buf()
    }

    /// The bundle directory (holds `config.json` and `rootfs`).
    pub fn dir(&self) -> PathBuf {
        self.tmp().join("bundle")
    }

    /// The bundle's rootfs.
    pub fn rootfs(&self) -> PathBuf {
        self.dir().join("rootfs")
    }

    /// The `--root` passed to every invocation.
    pub fn state_root(&self) -> PathBuf {
        self.tmp().join("state")
    }

    /// Where the runtime keeps this container's state.
    pub fn state_dir(&self) -> PathBuf {
        self.state_root().join(&self.id)
    }

    fn io_dir(&self) -> PathBuf {
        self.tmp().join("io")
    }

    /// The bundle's `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("config.json")
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> Value {
        let text = fs::read_to_string(self.config_path()).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Reads `config.json`, lets `edit` change it, and writes it back.
    pub fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        let mut config = self.config();
        edit(&mut config);
        fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
    }

    /// Sets `process.args`.
    pub fn set_args(&self, args: &[&str]) {
        self.edit_config(|c| c["process"]["args"] = args.into());
    }

    /// Sets `hostname`.
    pub fn set_hostname(&self, hostname: &str) {
        self.edit_config(|c| c["hostname"] = hostname.into());
    }

    /// Sets `process.terminal`.
    pub fn set_terminal(&self, terminal: bool) {
        self.edit_config(|c| c["process"]["terminal"] = terminal.into());
    }

    /// Sets `process.env`.
    pub fn set_env(&self, env: &[&str]) {
        self.edit_config(|c| c["process"]["env"] = env.into());
    }

    /// Sets `process.cwd`.
    pub fn set_cwd(&self, cwd: &str) {
        self.edit_config(|c| c["process"]["cwd"] = cwd.into());
    }

    /// Builds the C program `src` (relative to crates/cli) statically, with
    /// pthreads, into the rootfs as /bin/`name`.
    pub fn install_program(&self, src: &str, name: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
        let out = self.rootfs().join("bin").join(name);
        let st = status_tracked(
            Command::new("cc")
                .args(["-static", "-O2", "-pthread", "-o"])
                .arg(&out)
                .arg(&src),
        );
        assert!(st.success(), "cc {}", src.display());
    }

    /// Appends `{"type": kind}` to `linux.namespaces`.
    pub fn add_namespace(&self, kind: &str) {
        self.edit_config(|c| {
            let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
            namespaces.push(serde_json::json!({ "type": kind }));
        });
    }

    /// Removes every namespace of type `kind` from `linux.namespaces`.
    pub fn remove_namespace(&self, kind: &str) {
        self.edit_config(|c| {
            let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
            namespaces.retain(|ns| ns["type"] != kind);
        });
    }

    /// Appends a hook to `hooks.<stage>` (`prestart`, `createRuntime`, …).
    pub fn add_hook(&self, stage: &str, path: &str, args: &[&str]) {
        self.edit_config(|c| {
            if !c["hooks"].is_object() {
                c["hooks"] = serde_json::json!({});
            }
            let hooks = &mut c["hooks"][stage];
            if !hooks.is_array() {
                *hooks = serde_json::json!([]);
            }
            let mut hook = serde_json::json!({ "path": path });
            if !args.is_empty() {
                hook["args"] = args.into();
            }
            hooks.as_array_mut().expect("array").push(hook);
        });
    }

    fn command(&self, cwd: &Path, args: &[&str]) -> (Command, String, PathBuf, PathBuf) {
        reap_orphans();
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let (out, err) = (
            self.io_dir().join(format!("{n}.out")),
            self.io_dir().join(format!("{n}.err")),
        );
        let bin = &self.bin;
        let root = self.state_root();
        let mut cmd = Command::new(bin);
        cmd.arg("--root")
            .arg(&root)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        let line = format!(
            "{} --root {} {}",
            bin.display(),
            root.display(),
            args.join(" ")
        );
        (cmd, line, out, err)
    }

    /// Runs `$CORRAL_BIN --root <state> ARGS` in the bundle dir, waits at most
    /// [`TIMEOUT`] (then kills it and fails the test).
    pub fn runtime(&self, args: &[&str]) -> Output {
        self.runtime_in(&self.dir(), args)
    }

    /// As [`Bundle::runtime`], in `cwd`.
    pub fn runtime_in(&self, cwd: &Path, args: &[&str]) -> Output {
        self.spawn_in(cwd, args).wait()
    }

    /// Starts `$CORRAL_BIN --root <state> ARGS` in the bundle dir without waiting.
    pub fn spawn(&self, args: &[&str]) -> Background {
        self.spawn_in(&self.dir(), args)
    }

    fn spawn_in(&self, cwd: &Path, args: &[&str]) -> Background {
        let (mut cmd, line, out, err) = self.command(cwd, args);
        Background {
            child: Some(spawn_tracked(&mut cmd)),
            cmd: line,
            out,
            err,
        }
    }

    /// `create` this bundle's container (with `--bundle`), asserting success.
    pub fn create(&self) {
        self.try_create(&self.id).assert_success();
    }

    /// `create --bundle <dir> <id>` for any `id`, returning the output.
    pub fn try_create(&self, id: &str) -> Output {
        let dir = self.dir();
        let dir = dir.to_str().expect("utf-8 temp dir");
        self.runtime(&["create", "--bundle", dir, id])
    }

    /// `state <id>`, parsed; panics if the command fails.
    pub fn state(&self) -> Value {
        let out = self.runtime(&["state", &self.id]);
        out.assert_success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("`state` printed no JSON ({e}):\n{out}"))
    }

    /// The `status` field of `state <id>`.
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .expect("status is a string")
            .to_owned()
    }

    /// The `pid` field of `state <id>`.
    pub fn pid(&self) -> i32 {
        let pid = self.state()["pid"].as_i64().expect("pid is a number");
        i32::try_from(pid).expect("pid fits in i32")
    }

    /// Polls `state` until the status is `want`; panics after [`SETTLE`].
    /// A failing `state` counts as "not yet": a `run` in the background may
    /// not have written its state yet.
    #[track_caller]
    pub fn wait_for_status(&self, want: &str) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let out = self.runtime(&["state", &self.id]);
            let status = serde_json::from_str::<Value>(&out.stdout)
                .ok()
                .and_then(|state| state["status"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("unknown ({})", out.stderr.trim()));
            if status == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {} stayed {status:?}, expected {want:?}",
                self.id
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything this test left behind: mounts, cgroups, processes, state.
    pub fn leaks(&self) -> Vec<String> {
        reap_orphans();
        let mut leaks = Vec::new();
        let tmp = self.tmp().to_string_lossy().into_owned();
        for line in fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
        {
            if line.contains(&tmp) || line.contains(&self.id) {
                leaks.push(format!("mount: {line}"));
            }
        }
        for dir in cgroup_dirs_named(&self.id) {
            leaks.push(format!("cgroup: {}", dir.display()));
        }
        let rootfs = self.rootfs();
        let me = std::process::id();
        for pid in all_pids() {
            if u32::try_from(pid).is_ok_and(|pid| pid == me) {
                continue;
            }
            let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let root = fs::read_link(format!("/proc/{pid}/root")).ok();
            if cmdline.contains(&self.id)
                || cgroup.contains(&self.id)
                || root.is_some_and(|r| r.starts_with(&rootfs))
            {
                leaks.push(format!("process {pid}: {}", cmdline.trim()));
            }
        }
        if self.state_dir().exists() {
            leaks.push(format!("state dir: {}", self.state_dir().display()));
        }
        leaks
    }

    /// `delete --force` the container, then wait (at most [`SETTLE`]) for
    /// [`Bundle::leaks`] to come up empty; returns what is still there.
    fn force_delete_and_settle(&self) -> Vec<String> {
        let out = self.runtime(&["delete", "--force", &self.id]);
        let deadline = Instant::now() + SETTLE;
        loop {
            let leaks = self.leaks();
            if leaks.is_empty() || Instant::now() >= deadline {
                if !leaks.is_empty() {
                    eprintln!("after `delete --force`:\n{out}");
                }
                return leaks;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts that `delete --force` leaves no mount, cgroup, process or state
    /// directory of this container behind. Call it at the end of every test.
    #[track_caller]
    pub fn assert_no_leaks(&self) {
        let leaks = self.force_delete_and_settle();
        assert!(
            leaks.is_empty(),
            "container {} leaked:\n  {}",
            self.id,
            leaks.join("\n  ")
        );
    }

    /// Best effort: kill leaked processes, detach leaked mounts, remove leaked cgroups.
    fn scrub(&self) {
        let tmp = self.tmp().to_string_lossy().into_owned();
        let rootfs = self.rootfs();
        for pid in all_pids() {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .unwrap_or_default();
            let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let root = fs::read_link(format!("/proc/{pid}/root")).ok();
            let ours = cmdline.contains(&self.id)
                || cgroup.contains(&self.id)
                || root.is_some_and(|r| r.starts_with(&rootfs));
            if ours && u32::try_from(pid).is_ok_and(|p| p != std::process::id()) {
                if let Some(pid) = Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, Signal::KILL);
                }
            }
        }
        thread::sleep(Duration::from_millis(100));
        reap_orphans();
        let mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
            .filter(|point| point.contains(&tmp) || point.contains(&self.id))
            .collect();
        for point in mounts.iter().rev() {
            let _ = rustix::mount::unmount(point.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
        for dir in cgroup_dirs_named(&self.id) {
            // Children first: rmdir only removes empty cgroups.
            let mut all: Vec<PathBuf> = walk_dirs(&dir, 16);
            all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for d in all {
                let _ = fs::remove_dir(d);
            }
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let leaks = self.force_delete_and_settle();
        if !leaks.is_empty() {
            eprintln!(
                "container {} leaked (cleaning up):\n  {}",
                self.id,
                leaks.join("\n  ")
            );
            self.scrub();
        }
        let tmp = self.tmp.take().expect("dropped once");
        let path = tmp.path().to_string_lossy().into_owned();
        let still_mounted = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .contains(&path);
        if still_mounted {
            // Removing the tree could walk into a leaked bind mount of host files.
            eprintln!("keeping {path}: something is still mounted under it");
            let _ = tmp.keep();
        }
    }
}

/// Directories named after (containing) `id` under /sys/fs/cgroup, at most 4 deep.
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    walk_dirs(Path::new("/sys/fs/cgroup"), 4)
        .into_iter()
        .filter(|dir| {
            dir.file_name()
                .is_some_and(|name| name.to_string_lossy().contains(id))
        })
        .collect()
}

/// `root` and the directories under it, down to `depth` levels, not following symlinks.
fn walk_dirs(root: &Path, depth: usize) -> Vec<PathBuf> {
    let mut found = vec![root.to_path_buf()];
    let mut level = vec![root.to_path_buf()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    next.push(entry.path());
                }
            }
        }
        found.extend(next.iter().cloned());
        level = next;
    }
    found
}

/// Checks `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, the RFC 3339 date-time.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// The cgroup path of `pid` for the v1 hierarchy holding `controller`.
pub fn cgroup_path_of(pid: i32, controller: &str) -> String {
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    cgroup
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup:\n{cgroup}"))
}

/// The host directory of `pid`'s cgroup in the v1 `controller` hierarchy.
pub fn cgroup_dir_of(pid: i32, controller: &str) -> PathBuf {
    let path = cgroup_path_of(pid, controller);
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
}

// ---------------------------------------------------------------------------
// Added for issue 7's fault tests
// ---------------------------------------------------------------------------

impl Bundle {
    /// As [`Bundle::runtime`], with `env` added to the runtime's environment
    /// (`FAILPOINTS=…`): set per invocation, never in the test process,
    /// whose other tests run in parallel.
    pub fn runtime_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.spawn_with_env(env, args).wait()
    }

    /// As [`Bundle::spawn`], with `env` added to the runtime's environment.
    pub fn spawn_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> Background {
        let (mut cmd, line, out, err) = self.command(&self.dir(), args);
        cmd.envs(env.iter().copied());
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Background {
            child: Some(spawn_tracked(&mut cmd)),
            cmd: format!("{} {line}", vars.join(" ")),
            out,
            err,
        }
    }
}

/// Reads `fd` (a pty master, a pipe) until `needle` appears, EOF/EIO, or 10 s pass.
pub fn read_fd_until(fd: &std::os::fd::OwnedFd, needle: &str) -> String {
    let mut text = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&text).contains(needle) && Instant::now() < deadline {
        let mut pfd = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        if rustix::event::poll(&mut pfd, Some(&timeout)).unwrap_or(0) == 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}
