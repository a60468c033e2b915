//! start → dump → kill → restore → signal → exit 0, with the `threads`
//! probe (tests/probes/threads.c): five threads, each with its own tid,
//! TLS, counter, SSE register and signal mask.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns too: a panic is the test failing

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{build_probe, wait_for, Reap};
use corral_checkpoint::{collect, image, restore};
use rustix::process::{kill_process, Pid, Signal};

mod common;

#[test]
#[ignore = "needs root"]
fn a_process_of_five_threads_comes_back_with_every_tid() {
    dump_restore_verify(false);
}

#[test]
#[ignore = "needs root"]
fn five_threads_run_on_after_a_leave_running_dump_then_restore() {
    dump_restore_verify(true);
}

fn dump_restore_verify(leave_running: bool) {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let probe = build_probe(tmp.path(), "threads");
    let ready = tmp.path().join("ready");
    let log = tmp.path().join("probe.log");
    let out = fs::File::create(&log).unwrap();
    let child = Command::new(&probe)
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child); // reaped by the dump's kill or by `reap`
    let reap = Reap(pid);
    wait_for(&ready);
    let tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(tids.len(), 5);

    let images = tmp.path().join("img");
    let opts = collect::DumpOptions {
        pid,
        images_dir: images.clone(),
        leave_running,
        ..Default::default()
    };
    collect::dump(&opts).unwrap();
    if leave_running {
        // Every thread was put back as it was: the original checks itself.
        kill_process(Pid::from_raw(pid).unwrap(), Signal::USR1).unwrap();
        let code = restore::wait(pid).unwrap();
        let text = fs::read_to_string(&log).unwrap();
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("ok: 0 differences, 5 threads"), "{text}");
        fs::write(&log, "").unwrap();
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let img = image::ImageDir::open(&images).unwrap();
    let threads = &img.tasks[0].threads;
    let mut dumped: Vec<i32> = threads.iter().map(|t| t.tid).collect();
    assert_eq!(dumped[0], pid);
    dumped.sort();
    let mut want = tids.clone();
    want.sort();
    assert_eq!(dumped, want);
    // glibc gives every thread a robust list, and the workers a
    // clear_child_tid that pthread_join waits on.
    assert!(threads.iter().all(|t| t.robust_list.is_some()));
    assert!(threads[1..].iter().all(|t| t.clear_tid != 0));
    assert!(threads[1..]
        .iter()
        .all(|t| t.sigmask & (1 << (libc::SIGUSR1 - 1)) != 0));

    let r = restore::restore(&images).unwrap();
    assert_eq!(r.pid, pid);
    let mut back: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    back.sort();
    assert_eq!(back, want);
    std::thread::sleep(std::time::Duration::from_millis(20));
    kill_process(Pid::from_raw(pid).unwrap(), Signal::USR1).unwrap();
    let code = restore::wait(pid).unwrap();
    std::mem::forget(reap); // reaped just now
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok: 0 differences, 5 threads"), "{text}");
}
