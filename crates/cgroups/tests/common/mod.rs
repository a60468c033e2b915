//! Helpers for the root-only tests: a cgroup guard that always destroys,
//! a child-process guard that always kills, and file lookups across the
//! hierarchies of a cgroup.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // test helpers: a panic is the test failing

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use corral_cgroups::{Cgroup, Hierarchy, Layout};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique `corral-test-…` name.
pub fn unique_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("corral-test-{}-{nanos:x}-{n}-{tag}", std::process::id())
}

/// A created cgroup that is destroyed on drop, even when the test fails.
pub struct TestCgroup {
    pub cg: Cgroup,
    pub hierarchy: Hierarchy,
}

impl TestCgroup {
    /// Creates `/corral-test-…` (absolute) or `corral-test-…` (relative).
    pub fn new(tag: &str, absolute: bool) -> Self {
        let hierarchy = Hierarchy::detect().unwrap();
        let name = unique_name(tag);
        let path = if absolute { format!("/{name}") } else { name };
        let cg = Cgroup::new(&hierarchy, &path).unwrap();
        let guard = Self { cg, hierarchy };
        guard.cg.create().unwrap();
        guard
    }

    pub fn layout(&self) -> Layout {
        self.hierarchy.layout()
    }

    /// The directory of this cgroup holding `file`.
    pub fn dir_with(&self, file: &str) -> Option<PathBuf> {
        self.cg.paths().into_iter().find(|p| p.join(file).exists())
    }

    /// Reads `file` from whichever directory has it.
    pub fn read(&self, file: &str) -> String {
        let dir = self
            .dir_with(file)
            .unwrap_or_else(|| panic!("no directory of {:?} has {file}", self.cg.paths()));
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.cg.destroy() {
            eprintln!("test cleanup: {e}");
        }
    }
}

/// A child process killed and reaped on drop.
pub struct TestChild {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl TestChild {
    pub fn sleep() -> Self {
        let child = Command::new("sleep").arg("1000").spawn().unwrap();
        Self {
            child,
            stdin: None,
            stdout: None,
        }
    }

    /// `sh -c script` with stdin and stdout piped: the script should start
    /// with `read _` so it waits until moved into the cgroup.
    pub fn shell(script: &str) -> Self {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        Self {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Lets a `shell` child go on, and collects its output until it exits.
    pub fn go_and_collect(&mut self) -> String {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        drop(stdin);
        let mut out = String::new();
        for line in self.stdout.take().unwrap().lines() {
            out.push_str(&line.unwrap());
            out.push('\n');
        }
        self.child.wait().unwrap();
        out
    }
}

impl Drop for TestChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether we run in the v2 VM lane.
pub fn in_vm() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/hostname").is_ok_and(|h| h.trim() == "vm-run")
}

/// A whole-disk block device `major:minor` (not loop, ram or zram), if any.
pub fn block_device() -> Option<(i64, i64)> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let n = n.to_str()?.to_owned();
        if n.starts_with("loop") || n.starts_with("ram") || n.starts_with("zram") {
            return None;
        }
        let dev = std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
        let (maj, min) = dev.trim().split_once(':')?;
        Some((maj.parse().ok()?, min.parse().ok()?))
    })
}
