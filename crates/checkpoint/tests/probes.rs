//! The probe set: one self-verifying C program per kind of state
//! (tests/probes/NAME.c), each run three ways by the same harness.
//!
//! A probe's contract: `NAME READY_FILE`. It sets up its state, creates
//! READY_FILE, and waits for SIGUSR1; then it checks that its state is
//! exactly as it set it up, prints `ok` and exits 0, or prints what differs
//! and exits 1. Its stdout and stderr go to a log file the test shows on
//! failure; stdin is /dev/null.
//!
//! The three ways, each a test:
//! - `restore`: start → dump (the dump kills it) → restore under the same
//!   pid → SIGUSR1 → exit 0;
//! - `leave_running`: dump with `leave_running` → the original still passes
//!   its check → restore from that image → SIGUSR1 → exit 0;
//! - `restore_twice`: two restores from one image, one after the other,
//!   each passing its check.
//!
//! A probe that checks what a downtime does (timens: its clocks must not
//! show it) is listed in [`DOWNTIME`]: the harness waits that long between
//! the dump and each restore.
//!
//! Probes named `lock_*` hold file locks and are dumped with `file_locks`.
//! In `leave_running` the original holds its locks until `finish` has
//! seen it exit, so the restore that follows can take them again (while
//! it ran, the restore would fail on them: the locks are taken, not
//! shared). Their shared checks are in tests/probes/locks.h.
//!
//! Add a probe: write tests/probes/NAME.c and add NAME to the `probes!` list
//! at the end of this file.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{build_probe, wait_for, Reap};
use corral_checkpoint::{collect, restore};
use rustix::process::{kill_process, Pid, Signal};

mod common;

/// Probes given a pause between the dump and each restore, and its length.
const DOWNTIME: &[(&str, Duration)] = &[("timens", Duration::from_millis(1500))];

/// How a probe is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Restore,
    LeaveRunning,
    RestoreTwice,
}

/// A started probe: its pid and log.
struct Probe {
    pid: i32,
    log: PathBuf,
}

impl Probe {
    fn start(name: &str, dir: &Path) -> Probe {
        let exe = build_probe(dir, name);
        let ready = dir.join("ready");
        let log = dir.join("probe.log");
        let out = fs::File::create(&log).unwrap();
        let child = Command::new(&exe)
            .arg(&ready)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Reaped by the dump's kill, by `finish`, or by `Reap` on failure.
        std::mem::forget(child);
        wait_for(&ready);
        Probe { pid, log }
    }

    /// Sends SIGUSR1 and asserts that the probe (the original or a restored
    /// copy, our child either way) passes its check.
    fn finish(&self, what: &str) {
        kill_process(Pid::from_raw(self.pid).unwrap(), Signal::USR1).unwrap();
        let code = restore::wait(self.pid).unwrap();
        let text = fs::read_to_string(&self.log).unwrap();
        assert_eq!(code, 0, "{what}: exit status {code}; probe log:\n{text}");
        assert!(
            text.lines().any(|l| l == "ok"),
            "{what}: no `ok`; probe log:\n{text}"
        );
        fs::write(&self.log, "").unwrap();
    }

    fn restore(&self, images: &Path, what: &str) {
        let r = restore::restore(images)
            .unwrap_or_else(|e| panic!("{what}: {}", error_chain(&e as &dyn std::error::Error)));
        assert_eq!(r.pid, self.pid, "{what}: restored under another pid");
        self.finish(what);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn run(name: &str, mode: Mode) {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let probe = Probe::start(name, tmp.path());
    let reap = Reap(probe.pid);
    let images = tmp.path().join("img");
    let opts = collect::DumpOptions {
        pid: probe.pid,
        images_dir: images.clone(),
        leave_running: mode == Mode::LeaveRunning,
        file_locks: name.starts_with("lock_"),
        ..Default::default()
    };
    if let Err(e) = collect::dump(&opts) {
        let text = fs::read_to_string(&probe.log).unwrap_or_default();
        panic!("{name}: dump: {}; probe log:\n{text}", error_chain(&e));
    }
    match mode {
        Mode::LeaveRunning => probe.finish(&format!("{name} left running")),
        _ => assert!(
            !Path::new(&format!("/proc/{}", probe.pid)).exists(),
            "{name}: still there after the dump"
        ),
    }
    let pause = || {
        if let Some((_, d)) = DOWNTIME.iter().find(|(n, _)| *n == name) {
            std::thread::sleep(*d);
        }
    };
    pause();
    probe.restore(&images, &format!("{name} restored"));
    if mode == Mode::RestoreTwice {
        pause();
        probe.restore(&images, &format!("{name} restored a second time"));
    }
    std::mem::forget(reap); // every copy was reaped by `finish`
}

/// Three tests per probe, in a module named after it.
macro_rules! probes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            #[ignore = "needs root"]
            fn restore() {
                super::run(stringify!($name), super::Mode::Restore);
            }
            #[test]
            #[ignore = "needs root"]
            fn leave_running() {
                super::run(stringify!($name), super::Mode::LeaveRunning);
            }
            #[test]
            #[ignore = "needs root"]
            fn restore_twice() {
                super::run(stringify!($name), super::Mode::RestoreTwice);
            }
        }
    )*};
}

probes! {
    basic,
    tree,
    session,
    pgroup,
    zombie,
    shared_offset,
    tree_threads,
    shared_pipe,
    pipe,
    fifo,
    unix_pair,
    unix_listener,
    unix_dgram,
    inet_tcp,
    inet6_tcp,
    udp,
    eventfd,
    signalfd,
    timerfd,
    epoll,
    inotify,
    memfd,
    unlinked_file,
    file_offsets,
    sig_pending,
    sigaltstack,
    itimer,
    posix_timers,
    creds,
    umask,
    rlimits,
    personality,
    no_new_privs,
    seccomp,
    subreaper,
    pdeathsig,
    madvise,
    mlock,
    sched,
    oom_score_adj,
    ioprio,
    thp_disable,
    locked_down,
    cpu_timers,
    thread_names,
    itimer_pending,
    timerslack,
    timens,
    lock_flock_ex,
    lock_flock_sh,
    lock_posix,
    lock_ofd,
    lock_tree,
}
