//! What a dump refuses among open files, each by name with the pid, the fd
//! and the option that would allow it; and a shell job (`--shell-job`):
//! a process whose fds 0-2 are its controlling terminal, restored on a
//! terminal of ours; a file lock that another process took since the dump
//! fails the restore. The programs are modes of tests/probes/fdmisc.c.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Read as _;
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{build_probe, wait_for, Reap};
use corral_checkpoint::{collect, restore};
use rustix::process::{kill_process, Pid, Signal};

mod common;

/// Starts fdmisc in `mode` with `stdio` (or /dev/null) on fds 0-2.
fn start(dir: &Path, mode: &str, extra: &[&str], stdio: Option<&fs::File>) -> i32 {
    let exe = build_probe(dir, "fdmisc");
    let ready = dir.join("ready");
    let io = |f: Option<&fs::File>| match f {
        Some(f) => Stdio::from(f.try_clone().unwrap()),
        None => Stdio::null(),
    };
    let child = Command::new(&exe)
        .arg(&ready)
        .arg(mode)
        .args(extra)
        .current_dir(dir)
        .stdin(io(stdio))
        .stdout(io(stdio))
        .stderr(io(stdio))
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child); // reaped by Reap
    wait_for(&ready);
    pid
}

/// Dumps fdmisc in `mode`; returns the error, checking that the process
/// runs on untouched and no image opens.
fn refused(mode: &str, extra: &[&str], set: impl Fn(&mut collect::DumpOptions)) -> String {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let pid = start(tmp.path(), mode, extra, None);
    let _reap = Reap(pid);
    let mut opts = collect::DumpOptions {
        pid,
        images_dir: tmp.path().join("img"),
        ..Default::default()
    };
    set(&mut opts);
    let err = collect::dump(&opts).expect_err("the dump must be refused");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "{mode}: the process died"
    );
    assert!(!tmp.path().join("img/inventory.json").exists());
    err.to_string()
}

#[test]
#[ignore = "needs root"]
fn an_established_tcp_connection_names_tcp_established() {
    let e = refused("tcp", &[], |_| {});
    assert!(e.starts_with("pid "), "{e}");
    assert!(
        e.ends_with("fd 4: established TCP connection; pass --tcp-established"),
        "{e}"
    );
    let e = refused("tcp", &[], |o| o.tcp_established = true);
    assert!(e.ends_with(": --tcp-established; not supported yet"), "{e}");
}

#[test]
#[ignore = "needs root"]
fn a_tcp_listener_with_a_connection_waiting_is_refused() {
    // A listener alone is restored (probes inet_tcp, inet6_tcp); one with
    // a connection in its accept queue is not.
    let e = refused("tcp_listen", &[], |_| {});
    assert!(e.contains("fd 3: TCP listener 127.0.0.1:"), "{e}");
    assert!(
        e.ends_with(" with 1 connections waiting to be accepted; not supported yet"),
        "{e}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_held_flock_names_file_locks() {
    let e = refused("flock", &[], |_| {});
    assert!(e.contains("fd 3: "), "{e}");
    assert!(e.contains("locked holds a file lock (1: FLOCK"), "{e}");
    assert!(e.ends_with("; pass --file-locks"), "{e}");
    let e = refused("posix_lock", &[], |_| {});
    assert!(e.contains("locked holds a file lock (1: POSIX"), "{e}");
    assert!(e.ends_with("; pass --file-locks"), "{e}");
    let e = refused("ofd_lock", &[], |_| {});
    assert!(e.contains("locked holds a file lock (1: OFDLCK"), "{e}");
    assert!(e.ends_with("; pass --file-locks"), "{e}");
}

#[test]
#[ignore = "needs root"]
fn leases_and_locks_no_fd_shows_are_refused_by_name() {
    let e = refused("lease", &[], |o| o.file_locks = true);
    assert!(e.contains("fd 3: "), "{e}");
    assert!(e.contains("leased: a lease (LEASE"), "{e}");
    assert!(e.ends_with("; not supported yet"), "{e}");
    // No fd shows it, /proc/locks does: refused with the option, and
    // without it the option is named.
    let e = refused("mapped_flock", &[], |o| o.file_locks = true);
    assert!(
        e.contains(": holds a flock LOCK_EX (file ") && e.contains(" through no fd of the image"),
        "{e}"
    );
    assert!(e.ends_with("; not supported yet"), "{e}");
    let e = refused("mapped_flock", &[], |_| {});
    assert!(
        e.ends_with(" through no fd of the image; pass --file-locks"),
        "{e}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_lock_taken_meanwhile_fails_the_restore_naming_it_and_leaves_nothing() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let pid = start(tmp.path(), "flock", &[], None);
    let reap = Reap(pid);
    let images = tmp.path().join("img");
    let opts = collect::DumpOptions {
        pid,
        images_dir: images.clone(),
        file_locks: true,
        ..Default::default()
    };
    collect::dump(&opts).unwrap();
    drop(reap); // dead already; reaps it
    let locked = tmp.path().join("locked");
    let ours = fs::File::open(&locked).unwrap();
    rustix::fs::flock(&ours, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let e = match restore::restore(&images) {
        Ok(r) => {
            let _reap = Reap(r.pid);
            panic!("restored as {} without its lock", r.pid);
        }
        Err(e) => e,
    };
    let want = format!(
        "pid {pid} fd 3: cannot take the flock LOCK_EX on {} again: another process holds a conflicting lock",
        locked.display()
    );
    assert_eq!(e.to_string(), want);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "a process is left"
    );
    let held = fs::read_to_string("/proc/locks").unwrap();
    let theirs = format!(" {pid} ");
    assert!(!held.lines().any(|l| l.contains(&theirs)), "{held}");
    // Ours released, the same image restores holding its lock.
    drop(ours);
    let r = restore::restore(&images).unwrap();
    let _reap = Reap(r.pid);
    let info = fs::read_to_string(format!("/proc/{}/fdinfo/3", r.pid)).unwrap();
    assert!(info.contains("FLOCK  ADVISORY  WRITE"), "{info}");
    kill_process(Pid::from_raw(r.pid).unwrap(), Signal::USR1).unwrap();
    assert_eq!(restore::wait(r.pid).unwrap(), 0);
}

#[test]
#[ignore = "needs root"]
fn an_unknown_anon_inode_is_named() {
    let e = refused("pidfd", &[], |_| {});
    assert!(
        e.ends_with("fd 3: anon_inode:[pidfd]; not supported yet"),
        "{e}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_unix_peer_outside_names_ext_unix_sk() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("outside.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let e = refused("ext_unix", &[path.to_str().unwrap()], |_| {});
    assert!(e.contains("fd 3: unix socket:["), "{e}");
    assert!(
        e.ends_with("connected to a socket outside the dumped process; pass --ext-unix-sk"),
        "{e}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_socket_option_not_restored_is_named() {
    let e = refused("passcred", &[], |_| {});
    assert!(e.contains("fd 3: unix socket:["), "{e}");
    assert!(
        e.ends_with("] with SO_PASSCRED set; not supported yet"),
        "{e}"
    );
}

#[test]
#[ignore = "needs root"]
fn fds_in_flight_are_named() {
    let e = refused("scm_rights", &[], |_| {});
    assert!(e.contains("fd 4: unix socket:["), "{e}");
    assert!(
        e.ends_with("] with 1 fds in flight (SCM_RIGHTS); not supported yet"),
        "{e}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_relative_socket_name_is_named() {
    let e = refused("relative_bind", &[], |_| {});
    assert!(e.contains("fd 3: unix socket:["), "{e}");
    assert!(
        e.ends_with("] bound to the relative path relative.sock; not supported yet"),
        "{e}"
    );
}

/// A pty: master and the slave's path.
fn pty() -> (OwnedFd, PathBuf) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    (master, PathBuf::from(name.to_str().unwrap()))
}

fn open_slave(path: &Path) -> fs::File {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .unwrap()
}

#[test]
#[ignore = "needs root"]
fn a_shell_job_needs_shell_job_and_comes_back_on_our_terminal() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let (_master, slave_path) = pty();
    let slave = open_slave(&slave_path);
    let pid = start(tmp.path(), "tty", &[], Some(&slave));
    let reap = Reap(pid);
    let images = tmp.path().join("img");
    let mut opts = collect::DumpOptions {
        pid,
        images_dir: images.clone(),
        ..Default::default()
    };
    let e = collect::dump(&opts).unwrap_err().to_string();
    let want = format!(
        "pid {pid} fd 0: terminal {}; pass --shell-job",
        slave_path.display()
    );
    assert_eq!(e, want);
    fs::remove_dir_all(&images).unwrap();

    opts.shell_job = true;
    collect::dump(&opts).unwrap();
    drop(reap); // dead already; reaps it
    let e = restore::restore(&images).unwrap_err().to_string();
    assert!(e.contains("pass --shell-job"), "{e}");

    let (ours, ours_path) = pty();
    let ropts = restore::RestoreOptions {
        shell_job: true,
        terminal: Some(ours_path.clone()),
        ..Default::default()
    };
    let r = restore::restore_with(&images, &ropts).unwrap();
    let _reap = Reap(r.pid);
    for fd in 0..3 {
        let link = fs::read_link(format!("/proc/{}/fd/{fd}", r.pid)).unwrap();
        assert_eq!(link, ours_path, "fd {fd}");
    }
    kill_process(Pid::from_raw(r.pid).unwrap(), Signal::USR1).unwrap();
    assert_eq!(restore::wait(r.pid).unwrap(), 0);
    // The probe's "ok" went to our terminal.
    let mut out = Vec::new();
    let mut m = fs::File::from(ours.as_fd().try_clone_to_owned().unwrap());
    rustix::fs::fcntl_setfl(&m, rustix::fs::OFlags::NONBLOCK).unwrap();
    let mut buf = [0u8; 256];
    while let Ok(n) = m.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("ok"), "terminal got {text:?}");
}

#[test]
#[ignore = "needs root"]
fn a_restore_does_not_take_the_name_of_a_live_listener() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_probe(tmp.path(), "unix_listener");
    let ready = tmp.path().join("ready");
    let child = Command::new(&exe)
        .arg(&ready)
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child);
    let _reap = Reap(pid);
    wait_for(&ready);
    let images = tmp.path().join("img");
    let opts = collect::DumpOptions {
        pid,
        images_dir: images.clone(),
        leave_running: true,
        ..Default::default()
    };
    collect::dump(&opts).unwrap();
    let e = restore::restore(&images).unwrap_err().to_string();
    assert!(e.contains("listener.sock is bound by a live socket"), "{e}");
    // The original keeps its name and its backlog.
    kill_process(Pid::from_raw(pid).unwrap(), Signal::USR1).unwrap();
    assert_eq!(restore::wait(pid).unwrap(), 0);
}

#[test]
#[ignore = "needs root"]
fn a_socket_in_another_network_namespace_is_refused_in_a_bare_dump() {
    // A bare restore makes sockets in the restorer's network namespace:
    // one of a process in another is refused by name.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap(); // trap 6
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_probe(tmp.path(), "fdmisc");
    let ready = tmp.path().join("ready");
    let child = Command::new("unshare")
        .arg("-n")
        .arg(&exe)
        .arg(&ready)
        .arg("passcred")
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child); // reaped by Reap
    let _reap = Reap(pid);
    wait_for(&ready);
    let opts = collect::DumpOptions {
        pid,
        images_dir: tmp.path().join("img"),
        ..Default::default()
    };
    let e = collect::dump(&opts).expect_err("refused").to_string();
    assert!(e.contains(": socket:["), "{e}");
    assert!(e.ends_with("than the dumper's; not supported yet"), "{e}");
    assert!(e.contains("in another network namespace (net:["), "{e}");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
}
