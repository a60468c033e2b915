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

/// Kills and reaps a probe (the one started, or the restored one: both are
/// our children) when the test ends, passed or failed.
pub struct Reap(pub i32);

impl Drop for Reap {
    fn drop(&mut self) {
        // Errors mean it is gone already.
        if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
    }
}
