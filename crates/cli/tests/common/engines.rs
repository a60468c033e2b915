//! Fixture for driving corral through real container engines: Debian's podman
//! and a private containerd. Included with `#[path]` by the tests that need it
//! (engines.rs, docs.rs), beside `mod common`.
//!
//! Engines mount things (podman a tmpfs for each container's /dev/shm), so
//! each test runs its engine in a private mount namespace: [`MountNs`] keeps
//! one alive with a `sleep` and enters it with `nsenter` for every command, so
//! that all commands of a test share it. Everything an engine writes goes
//! under the test's temp dir, every cgroup under a parent named after the
//! test's container id (so the fixture's leak check sees a leftover), and the
//! few directories under /run that the engines hard-code are removed again if
//! the test created them ([`RunDirs`]).
#![allow(dead_code)] // each test binary uses a different part of the fixture
#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use crate::common::{
    is_runc, kill_tracked, output_tracked, spawn_tracked, status_tracked, Bundle, SETTLE, TIMEOUT,
};

/// Podman's global flags for a minimal host (no systemd, no registry):
/// private storage and state under `dir`, the vfs driver, cgroupfs, file
/// events, and corral (`runtime`). No `--runtime-flag root=…`: podman 4.3
/// leaves it out of the `container cleanup` command its monitor runs when a
/// container exits, so that cleanup would look in the default root.
pub fn podman_globals(dir: &Path, runtime: &Path) -> Vec<String> {
    let d = |sub: &str| dir.join(sub).to_string_lossy().into_owned();
    vec![
        "--root".into(),
        d("root"),
        "--runroot".into(),
        d("runroot"),
        "--tmpdir".into(),
        d("libpod"),
        "--network-config-dir".into(),
        d("net"),
        "--storage-driver".into(),
        "vfs".into(),
        "--cgroup-manager".into(),
        "cgroupfs".into(),
        "--events-backend".into(),
        "file".into(),
        "--runtime".into(),
        runtime.to_string_lossy().into_owned(),
    ]
}

/// A private mount namespace (propagation private) held open by a `sleep`.
pub struct MountNs {
    holder: Child,
}

impl MountNs {
    /// Creates the namespace and waits until its holder is inside it.
    pub fn new() -> MountNs {
        let holder = spawn_tracked(
            Command::new("unshare")
                .args(["-m", "--propagation", "private", "sleep", "3600"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let ns = MountNs { holder };
        let mine = fs::read_link("/proc/self/ns/mnt").expect("our mount namespace");
        let deadline = Instant::now() + TIMEOUT;
        while fs::read_link(format!("/proc/{}/ns/mnt", ns.pid()))
            .ok()
            .as_ref()
            == Some(&mine)
        {
            assert!(Instant::now() < deadline, "unshare -m did not take effect");
            thread::sleep(Duration::from_millis(5));
        }
        ns
    }

    /// The pid of the process that holds the namespace.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// `program`, to be run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.pid()))
            .arg("--mount")
            .arg("--")
            .arg(program);
        cmd
    }

    /// The mount table as seen inside the namespace.
    pub fn mountinfo(&self) -> String {
        fs::read_to_string(format!("/proc/{}/mountinfo", self.pid())).unwrap_or_default()
    }

    /// Asserts that nothing under `dir` is mounted inside the namespace.
    #[track_caller]
    pub fn assert_nothing_mounted_under(&self, dir: &Path) {
        let dir = dir.to_string_lossy();
        let info = self.mountinfo();
        let left: Vec<&str> = info.lines().filter(|line| line.contains(&*dir)).collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        kill_tracked(&mut self.holder);
    }
}

/// Directories under /run that an engine hard-codes (and corral's default
/// state root, which podman's cleanup uses): those that did not exist before
/// the first test of this binary that uses them are removed when the last such
/// test is done. Counted, because the tests of one binary run in parallel.
pub struct RunDirs {
    paths: Vec<PathBuf>,
}

/// For each directory: how many live [`RunDirs`] hold it, and whether it was
/// absent when the first of them was made.
static RUN_DIRS: Mutex<BTreeMap<PathBuf, (usize, bool)>> = Mutex::new(BTreeMap::new());

impl RunDirs {
    /// Holds `paths`, noting the ones that do not exist yet.
    pub fn new(paths: &[&str]) -> RunDirs {
        let mut held = RUN_DIRS.lock().unwrap_or_else(|p| p.into_inner());
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        for path in &paths {
            let entry = held.entry(path.clone()).or_insert((0, !path.exists()));
            entry.0 += 1;
        }
        RunDirs { paths }
    }
}

impl Drop for RunDirs {
    fn drop(&mut self) {
        let mut held = RUN_DIRS.lock().unwrap_or_else(|p| p.into_inner());
        for path in &self.paths {
            let Some(entry) = held.get_mut(path) else {
                continue;
            };
            entry.0 -= 1;
            if entry.0 == 0 {
                if entry.1 {
                    let _ = fs::remove_dir_all(path);
                }
                held.remove(path);
            }
        }
    }
}

/// The runtime's default state root (podman passes no `--root`).
pub fn default_state_root() -> PathBuf {
    if is_runc() {
        PathBuf::from("/run/runc")
    } else {
        PathBuf::from("/run/corral")
    }
}

/// Containers in `root` whose state names a bundle under `dir`.
pub fn states_under(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let dir = dir.to_string_lossy();
    fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    fs::read_to_string(p.join("state.json")).is_ok_and(|s| s.contains(&*dir))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Removes every cgroup directory named after `id` and everything below it,
/// leaf first, waiting (at most [`SETTLE`]) for exiting processes (an engine's
/// monitor exits after the container) to leave. Returns what could not be
/// removed, with the pids still in it.
pub fn remove_cgroups_named(id: &str) -> Vec<String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut left = Vec::new();
        for top in crate::common::cgroup_dirs_named(id) {
            let mut dirs = vec![top.clone()];
            let mut i = 0;
            while i < dirs.len() {
                if let Ok(entries) = fs::read_dir(&dirs[i]) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            dirs.push(e.path());
                        }
                    }
                }
                i += 1;
            }
            for dir in dirs.iter().rev() {
                if fs::remove_dir(dir).is_err() && dir.exists() {
                    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                    left.push(format!(
                        "{} (pids: {})",
                        dir.display(),
                        procs.split_whitespace().collect::<Vec<_>>().join(" ")
                    ));
                }
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// What an engine command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, for messages.
    pub cmd: String,
}

impl Run {
    fn of(cmd: &mut Command) -> Run {
        let shown = format!("{cmd:?}");
        let Output {
            status,
            stdout,
            stderr,
        } = output_tracked(cmd);
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            cmd: shown,
        }
    }

    /// Asserts exit status `code`; returns stdout.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "{}\nstdout: {}\nstderr: {}",
            self.cmd, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts success; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        self.expect(0)
    }
}

/// podman driving the runtime under test, with everything private to `bundle`.
pub struct Podman<'a> {
    ns: MountNs,
    bundle: &'a Bundle,
    dir: PathBuf,
    /// The containers.conf naming corral among the runtimes that write JSON
    /// logs, or `None` for podman's defaults.
    conf: Option<PathBuf>,
    _run_dirs: RunDirs,
}

/// The containers.conf of docs/testing.md: podman passes `--log-format json
/// --log FILE` only to the runtimes named here, and reads their errors from
/// that file; to others it passes nothing and reads their stderr.
pub const CONTAINERS_CONF: &str =
    "[engine]\nruntime_supports_json = [\"corral\", \"crun\", \"runc\"]\n";

impl<'a> Podman<'a> {
    /// A podman whose storage lives in `bundle`'s temp dir, configured with
    /// [`CONTAINERS_CONF`].
    pub fn new(bundle: &'a Bundle) -> Podman<'a> {
        Podman::with_conf(bundle, true)
    }

    /// As [`Podman::new`]; without [`CONTAINERS_CONF`] unless `json`.
    pub fn with_conf(bundle: &'a Bundle, json: bool) -> Podman<'a> {
        let dir = bundle
            .tmp_dir()
            .join(if json { "podman" } else { "podman-text" });
        fs::create_dir_all(&dir).unwrap();
        let conf = json.then(|| {
            let conf = dir.join("containers.conf");
            fs::write(&conf, CONTAINERS_CONF).unwrap();
            conf
        });
        Podman {
            _run_dirs: RunDirs::new(&["/run/containers", &default_state_root().to_string_lossy()]),
            ns: MountNs::new(),
            bundle,
            dir,
            conf,
        }
    }

    /// `podman GLOBALS args…`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.ns.command("podman");
        cmd.args(podman_globals(&self.dir, self.bundle.bin()))
            .args(args);
        if let Some(conf) = &self.conf {
            cmd.env("CONTAINERS_CONF", conf);
        }
        cmd
    }

    /// Runs `podman GLOBALS args…`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.cmd(args))
    }

    /// `run`'s flags for a minimal host: no network, limits within this
    /// machine's bounding set, the test's cgroup parent and the bundle's rootfs
    /// (the command follows).
    pub fn run_flags(&self) -> Vec<String> {
        vec![
            "--network=none".into(),
            "--ulimit=nofile=1024:4096".into(),
            "--ulimit=nproc=1024:4096".into(),
            format!("--cgroup-parent=/{}", self.bundle.id()),
            "--rootfs".into(), // a flag: the rootfs takes the image's place
            self.bundle.rootfs().display().to_string(),
        ]
    }

    /// `podman run FLAGS extra… --rootfs R command…`.
    pub fn run_container(&self, extra: &[&str], command: &[&str]) -> Run {
        let flags = self.run_flags();
        let mut args: Vec<&str> = vec!["run"];
        args.extend(extra);
        args.extend(flags.iter().map(String::as_str));
        args.extend(command);
        self.run(&args)
    }

    /// Imports the bundle's rootfs as the image `name` (`podman import` of
    /// a tar of it), for what needs a container made from an image
    /// (`container checkpoint --export` and `restore --import`).
    pub fn import_rootfs_image(&self, name: &str) {
        let tar = self.dir.join("rootfs.tar");
        let made = status_tracked(
            Command::new("tar")
                .arg("-C")
                .arg(self.bundle.rootfs())
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        assert!(made.success(), "tar of the rootfs");
        self.run(&["import", &tar.display().to_string(), name]).ok();
        fs::remove_file(&tar).unwrap();
    }

    /// `podman run FLAGS extra… IMAGE command…`: [`Podman::run_flags`] with
    /// `image` in the rootfs's place.
    pub fn run_image(&self, extra: &[&str], image: &str, command: &[&str]) -> Run {
        let mut flags = self.run_flags();
        let rootfs = flags.iter().position(|f| f == "--rootfs").unwrap();
        flags.drain(rootfs..rootfs + 2);
        let mut args: Vec<&str> = vec!["run"];
        args.extend(flags.iter().map(String::as_str));
        args.extend(extra);
        args.push(image);
        args.extend(command);
        self.run(&args)
    }

    /// `podman inspect -f FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.run(&["inspect", "-f", format, name])
            .ok()
            .trim()
            .to_owned()
    }

    /// Removes every container, then asserts that podman, the namespace, the
    /// runtime's state root and the cgroups hold nothing of this test.
    #[track_caller]
    pub fn assert_clean(self) {
        self.run(&["rm", "--all", "--force", "--time=0"]).ok();
        assert_eq!(self.run(&["ps", "--all", "--quiet"]).ok().trim(), "");
        self.ns.assert_nothing_mounted_under(&self.bundle.tmp_dir());
        drop(self.ns);
        let left = remove_cgroups_named(self.bundle.id());
        assert!(left.is_empty(), "cgroups left behind: {left:#?}");
        let state = states_under(&default_state_root(), &self.bundle.tmp_dir());
        assert!(state.is_empty(), "runtime state left behind: {state:?}");
        self.bundle.assert_no_leaks();
    }
}

/// A private containerd (its own root, state, sockets and config) and `ctr`
/// talking to it in a containerd namespace named after the test's id.
pub struct Containerd<'a> {
    daemon: Child,
    ns: MountNs,
    bundle: &'a Bundle,
    dir: PathBuf,
    _run_dirs: RunDirs,
}

impl<'a> Containerd<'a> {
    /// Starts containerd with the test's base config plus `extra` TOML, and
    /// waits until it answers.
    pub fn start(bundle: &'a Bundle, extra: &str) -> Containerd<'a> {
        let run_dirs = RunDirs::new(&["/run/containerd"]);
        let dir = bundle.tmp_dir().join("containerd");
        for sub in [
            "root", "state", "fifo", "runc", "cni-bin", "cni-conf", "tmp",
        ] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = |sub: &str| dir.join(sub).display().to_string();
        let config = format!(
            "version = 2\n\
             root = \"{root}\"\n\
             state = \"{state}\"\n\
             [grpc]\n  address = \"{sock}\"\n\
             [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{cnibin}\"\n  conf_dir = \"{cniconf}\"\n\
             {extra}\n",
            root = d("root"),
            state = d("state"),
            sock = d("containerd.sock"),
            cnibin = d("cni-bin"),
            cniconf = d("cni-conf"),
        );
        fs::write(dir.join("config.toml"), config).unwrap();
        let ns = MountNs::new();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        // The shim unpacks a checkpoint to restore into a temporary
        // directory it leaves behind: ours, not /tmp.
        let daemon = spawn_tracked(
            ns.command("containerd")
                .arg("--config")
                .arg(dir.join("config.toml"))
                .env("TMPDIR", dir.join("tmp"))
                .env("XDG_RUNTIME_DIR", dir.join("tmp"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        );
        let c = Containerd {
            daemon,
            ns,
            bundle,
            dir,
            _run_dirs: run_dirs,
        };
        let deadline = Instant::now() + TIMEOUT;
        while c.ctr(&["version"]).code != 0 {
            assert!(
                Instant::now() < deadline,
                "containerd did not come up:\n{}",
                c.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// containerd's own log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr --address SOCK -n ID args…`.
    pub fn ctr(&self, args: &[&str]) -> Run {
        let sock = self.dir.join("containerd.sock");
        Run::of(
            self.ns
                .command("ctr")
                .arg("--address")
                .arg(sock)
                .args(["--namespace", self.bundle.id()])
                .args(args),
        )
    }

    /// The `--root` the shim passes to the runtime: the runc root of `ctr
    /// run --runc-root`, joined with the containerd namespace.
    pub fn runc_root(&self) -> PathBuf {
        self.dir.join("runc").join(self.bundle.id())
    }

    /// `ctr run` flags selecting the runc v2 shim with the runtime under test
    /// as its runc binary, the test's runc root, fifo dir and cgroup, and the
    /// bundle's rootfs (followed by the container name and command).
    pub fn run_flags(&self, name: &str) -> Vec<String> {
        vec![
            "--runtime=io.containerd.runc.v2".into(),
            format!("--runc-binary={}", self.bundle.bin().display()),
            format!("--runc-root={}", self.dir.join("runc").display()),
            format!("--fifo-dir={}", self.dir.join("fifo").display()),
            format!("--cgroup=/{}/{name}", self.bundle.id()),
            "--rootfs".into(),
            self.bundle.rootfs().display().to_string(),
            name.into(),
        ]
    }

    /// `ctr run extra… FLAGS NAME command…`.
    pub fn run_container(&self, extra: &[&str], name: &str, command: &[&str]) -> Run {
        let flags = self.run_flags(name);
        let mut args: Vec<&str> = vec!["run"];
        args.extend(extra);
        args.extend(flags.iter().map(String::as_str));
        args.extend(command);
        self.ctr(&args)
    }

    /// Imports the bundle's rootfs as a one-layer OCI image named `name`
    /// (an OCI archive made here with tar and sha256sum), for what needs a
    /// container made from an image (`ctr container checkpoint`).
    pub fn import_rootfs_image(&self, name: &str) {
        let dir = self.dir.join("image");
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let layer = dir.join("layer.tar");
        let tar = status_tracked(
            Command::new("tar")
                .arg("-C")
                .arg(self.bundle.rootfs())
                .arg("-cf")
                .arg(&layer)
                .arg("."),
        );
        assert!(tar.success(), "tar of the rootfs");
        let blob = |bytes: &[u8]| -> (String, usize) {
            let tmp = dir.join("blob.tmp");
            fs::write(&tmp, bytes).unwrap();
            let digest = sha256(&tmp);
            fs::rename(&tmp, blobs.join(&digest)).unwrap();
            (format!("sha256:{digest}"), bytes.len())
        };
        let layer_bytes = fs::read(&layer).unwrap();
        fs::remove_file(&layer).unwrap();
        let (layer_digest, layer_size) = blob(&layer_bytes);
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [&layer_digest] },
        });
        let (config_digest, config_size) = blob(config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer_size,
            }],
        });
        let (manifest_digest, manifest_size) = blob(manifest.to_string().as_bytes());
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": { "io.containerd.image.name": name },
            }],
        });
        fs::write(dir.join("index.json"), index.to_string()).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let archive = self.dir.join("image.tar");
        let tar = status_tracked(
            Command::new("tar")
                .arg("-C")
                .arg(&dir)
                .arg("-cf")
                .arg(&archive)
                .args(["oci-layout", "index.json", "blobs"]),
        );
        assert!(tar.success(), "tar of the OCI layout");
        fs::remove_dir_all(&dir).unwrap();
        let archive = archive.display().to_string();
        self.ctr(&["image", "import", "--snapshotter", "native", &archive])
            .ok();
    }

    /// `ctr run extra… FLAGS IMAGE NAME command…`: the container's rootfs
    /// a snapshot of `image` (native snapshotter) instead of the bundle's.
    pub fn run_image(&self, extra: &[&str], image: &str, name: &str, command: &[&str]) -> Run {
        let mut flags = self.run_flags(name);
        let rootfs = flags.iter().position(|f| f == "--rootfs").unwrap();
        flags.drain(rootfs..rootfs + 2);
        flags.insert(flags.len() - 1, image.to_owned());
        let mut args: Vec<&str> = vec!["run", "--snapshotter", "native"];
        args.extend(extra);
        args.extend(flags.iter().map(String::as_str));
        args.extend(command);
        self.ctr(&args)
    }

    /// Asserts that the namespace holds no task or container, stops
    /// containerd, and checks that nothing of the test is left.
    #[track_caller]
    pub fn assert_clean(mut self) {
        assert_eq!(self.ctr(&["task", "ls", "-q"]).ok().trim(), "");
        assert_eq!(self.ctr(&["container", "ls", "-q"]).ok().trim(), "");
        kill_tracked(&mut self.daemon);
        self.ns.assert_nothing_mounted_under(&self.bundle.tmp_dir());
        let left = remove_cgroups_named(self.bundle.id());
        assert!(left.is_empty(), "cgroups left behind: {left:#?}");
        let state: Vec<_> = fs::read_dir(self.runc_root())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(state.is_empty(), "runtime state left behind: {state:?}");
        self.bundle.assert_no_leaks();
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        kill_tracked(&mut self.daemon);
    }
}

/// The sha256 of a file, in hex (coreutils' sha256sum).
fn sha256(path: &Path) -> String {
    let out = output_tracked(Command::new("sha256sum").arg(path));
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}
