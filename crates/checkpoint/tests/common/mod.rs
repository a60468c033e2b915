//! Helpers of the probe tests: build a probe, wait for its ready file.

#![allow(clippy::unwrap_used, dead_code)] // each test file uses its part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Builds tests/probes/NAME.c with `cc -static` into `dir`.
pub fn build_probe(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/probes/{name}.c"));
    let out = dir.join(name);
    let st = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc {}", src.display());
    out
}

/// Waits (30 s at most) for `path` to exist.
pub fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Dumps the tree of `root` into `dir`/img, which must fail; checks that
/// none of `pids` is left stopped and that no image was begun. The error.
pub fn dump_refused(root: i32, pids: &[i32], dir: &Path) -> String {
    let opts = corral_checkpoint::collect::DumpOptions {
        pid: root,
        images_dir: dir.join("img"),
        ..Default::default()
    };
    let err = corral_checkpoint::collect::dump(&opts)
        .expect_err("the dump must be refused")
        .to_string();
    for &pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
        assert!(!matches!(state, 't' | 'T'), "pid {pid} left stopped");
    }
    assert!(!dir.join("img/inventory.json").exists());
    err
}

/// Kills and reaps a probe and every process of its tree (the one started,
/// or the restored one: the root is our child either way, and we are a
/// subreaper, so its orphans become ours) when the test ends, passed or
/// failed.
pub struct Reap(pub i32);

/// `pid` and its descendants (from each thread's `children`), parents first.
pub fn tree_of(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let path = t.path().join("children");
                let text = std::fs::read_to_string(path).unwrap_or_default();
                all.extend(
                    text.split_whitespace()
                        .filter_map(|w| w.parse::<i32>().ok()),
                );
            }
        }
        i += 1;
    }
    all
}

impl Drop for Reap {
    fn drop(&mut self) {
        use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions};
        // Errors mean it is gone already.
        let pids = tree_of(self.0);
        for &p in &pids {
            if let Some(pid) = Pid::from_raw(p) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        if let Some(pid) = Pid::from_raw(self.0) {
            let _ = waitpid(Some(pid), WaitOptions::empty());
        }
        // The others: reaped by their parent, or orphaned to us.
        let start = Instant::now();
        for &p in &pids[1..] {
            let Some(pid) = Pid::from_raw(p) else {
                continue;
            };
            while start.elapsed() < Duration::from_secs(5) {
                match waitpid(Some(pid), WaitOptions::NOHANG) {
                    Ok(Some(_)) => break,
                    _ if !Path::new(&format!("/proc/{p}")).exists() => break,
                    _ => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}
