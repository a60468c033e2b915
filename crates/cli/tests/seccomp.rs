//! `linux.seccomp` is applied: each test gives the bundle a profile and
//! watches a busybox command inside the container meet it (an errno, a
//! SIGSYS, a kernel log line, an agent's answer).
//!
//! Run as root: `cargo test -p corral --test seccomp -- --include-ignored`;
//! against runc: `CORRAL_BIN=/usr/sbin/runc cargo test …`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

mod common;

use std::{
    io::{IoSliceMut, Read, Seek, SeekFrom},
    mem::MaybeUninit,
    os::{
        fd::{AsFd, OwnedFd},
        unix::net::UnixListener,
    },
    thread,
    time::{Duration, Instant},
};

use common::{is_runc, Bundle, Output};
use corral_runtime::seccomp::{self, Reply};
use serde_json::{json, Value};

/// `run` the bundle with `sh -c SCRIPT`.
fn run_sh(bundle: &Bundle, script: &str) -> Output {
    bundle.set_args(&["sh", "-c", script]);
    bundle.runtime(&["run", bundle.id()])
}

/// Sets `linux.seccomp`.
fn set_seccomp(bundle: &Bundle, profile: Value) {
    bundle.edit_config(|c| c["linux"]["seccomp"] = profile);
}

/// busybox's mkdir calls mkdir(2); a libc may use mkdirat(2): match both.
const MKDIR: [&str; 2] = ["mkdir", "mkdirat"];

#[test]
#[ignore = "needs root"]
fn errno_rule_makes_mkdir_fail_with_that_errno() {
    let bundle = Bundle::new("seccomp-errno");
    set_seccomp(
        &bundle,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDQUOT}]
        }),
    );
    // The second run loads the filter the first one compiled and cached.
    let cache = bundle.state_root().join("@cache/seccomp");
    for round in 0..2 {
        let out = run_sh(
            &bundle,
            "mkdir /dev/shm/denied; echo rc=$?; touch /dev/shm/file && echo touched",
        );
        out.assert_success();
        assert!(
            out.stderr.contains("Disk quota exceeded"),
            "round {round}: mkdir fails with EDQUOT:\n{out}"
        );
        assert!(out.stdout.contains("rc=1\ntouched"), "{out}");
        if !is_runc() {
            let cached = std::fs::read_dir(&cache).map_or(0, |d| d.count());
            assert_eq!(cached, 1, "one compiled filter in {}", cache.display());
        }
    }
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn without_no_new_privs_the_filter_loads_before_capabilities_drop() {
    // No no_new_privs and no CAP_SYS_ADMIN: loading at the last step would
    // fail (EACCES), so the filter goes on before the user is switched.
    let bundle = Bundle::new("seccomp-nonnp");
    bundle.edit_config(|c| c["process"]["noNewPrivileges"] = false.into());
    set_seccomp(
        &bundle,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDQUOT}]
        }),
    );
    let out = run_sh(
        &bundle,
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /dev/shm/denied",
    );
    out.assert_code(1);
    assert!(out.stdout.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2"), "filter mode:\n{out}");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn argument_conditions_select_the_call() {
    // kill(pid, SIGUSR1) and kill(pid, sig) with sig & 0xff == SIGUSR2 are
    // refused; kill(pid, 0) passes. If the rules did not match, the signals
    // would kill the shell.
    let bundle = Bundle::new("seccomp-args");
    set_seccomp(
        &bundle,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDQUOT,
                 "args": [{"index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDQUOT,
                 "args": [{"index": 1, "value": 0xff, "valueTwo": libc::SIGUSR2,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
            ]
        }),
    );
    let out = run_sh(
        &bundle,
        "kill -USR1 $$; echo usr1=$?; kill -USR2 $$; echo usr2=$?; kill -0 $$; echo zero=$?",
    );
    out.assert_success();
    assert_eq!(out.stdout, "usr1=1\nusr2=1\nzero=0\n", "{out}");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn kill_process_kills_with_sigsys() {
    let bundle = Bundle::new("seccomp-kill");
    set_seccomp(
        &bundle,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_KILL_PROCESS"}]
        }),
    );
    bundle.set_args(&["mkdir", "/dev/shm/never"]);
    let out = bundle.runtime(&["run", bundle.id()]);
    out.assert_code(128 + libc::SIGSYS);
    bundle.assert_no_leaks();
}

/// Enough for busybox's sh, echo, cat and mkdir's error path; mkdir itself
/// is not on it. An unknown name rides along: it is skipped, not an error.
const ALLOW_LIST: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "open",
    "openat",
    "close",
    "close_range",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "mremap",
    "madvise",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "access",
    "faccessat",
    "faccessat2",
    "pipe",
    "pipe2",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpgrp",
    "setpgid",
    "getpgid",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tgkill",
    "uname",
    "getcwd",
    "chdir",
    "readlink",
    "readlinkat",
    "getdents64",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getrlimit",
    "getrandom",
    "futex",
    "sigaltstack",
    "umask",
    "sysinfo",
    "clock_gettime",
    "gettimeofday",
    "nanosleep",
    "clock_nanosleep",
    "prctl",
    "no_such_syscall_in_any_kernel",
];

/// What the runtime itself calls after loading the filter. corral loads it
/// right before execve: nothing. runc loads it before its last checks, the
/// exec FIFO and the Go runtime's own calls, so a profile must allow those.
fn runtime_after_load() -> &'static [&'static str] {
    if is_runc() {
        &[
            "fstatfs",
            "statfs",
            "epoll_create1",
            "epoll_ctl",
            "epoll_pwait",
            "sched_yield",
            "sched_getaffinity",
            "getdents64",
            "fchdir",
            "capget",
            "capset",
            "setgroups",
            "setresuid",
            "setresgid",
            "mkdirat",
            "unlinkat",
            "socket",
            "connect",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
            "memfd_create",
            "personality",
            "tkill",
        ]
    } else {
        &[]
    }
}

#[test]
#[ignore = "needs root"]
fn default_errno_with_an_allow_list() {
    let bundle = Bundle::new("seccomp-allowlist");
    set_seccomp(
        &bundle,
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::EDQUOT,
            "syscalls": [
                {"names": ALLOW_LIST, "action": "SCMP_ACT_ALLOW"},
                {"names": runtime_after_load(), "action": "SCMP_ACT_ALLOW"},
            ]
        }),
    );
    let out = run_sh(&bundle, "echo allowed; mkdir /dev/shm/denied; echo rc=$?");
    out.assert_success();
    assert_eq!(out.stdout, "allowed\nrc=1\n", "{out}");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn log_action_allows_the_call_and_logs_it() {
    let bundle = Bundle::new("seccomp-log");
    set_seccomp(
        &bundle,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_LOG"}]
        }),
    );
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open("/dev/kmsg")
        .unwrap();
    kmsg.seek(SeekFrom::End(0)).unwrap();
    let out = run_sh(
        &bundle,
        "mkdir /dev/shm/logged && test -d /dev/shm/logged && echo made",
    );
    out.assert_success();
    assert_eq!(out.stdout, "made\n", "{out}");
    // SECCOMP_RET_LOG is 0x7ffc0000; the kernel logs it as an audit record
    // (type=1326) naming the syscall.
    let want = format!("syscall={}", libc::SYS_mkdir);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let mut buf = vec![0u8; 8192];
        match kmsg.read(&mut buf) {
            Ok(n) if n > 0 => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => break,
        }
        if seen
            .iter()
            .any(|l| l.contains("code=0x7ffc0000") && l.contains(&want))
        {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("code=0x7ffc0000") && l.contains(&want)),
        "no SECCOMP_RET_LOG record for mkdir in the kernel log:\n{}",
        seen.concat()
    );
    bundle.assert_no_leaks();
}

/// Opening /dev/kmsg without blocking on an empty ring.
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// Waits up to 10 s for `fd` to become readable.
fn readable(fd: impl AsFd, what: &str) {
    let mut pfd = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    let n = rustix::event::poll(&mut pfd, Some(&timeout)).unwrap();
    assert_eq!(n, 1, "{what}: nothing within 10 s");
}

/// Reads a NUL-terminated string at `addr` in `pid`'s memory.
fn read_string(pid: u32, addr: u64) -> String {
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    mem.seek(SeekFrom::Start(addr)).unwrap();
    let mut buf = vec![0u8; 256];
    let n = mem.read(&mut buf).unwrap();
    let end = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A seccomp agent: accepts one runtime connection, takes the listener and
/// the state, then answers `count` notified mkdir calls: a path ending in
/// "deny" fails with EDQUOT, anything else "succeeds" without being made.
fn agent(listener: UnixListener, count: usize) -> thread::JoinHandle<(Value, Vec<String>)> {
    thread::spawn(move || {
        readable(&listener, "runtime connection");
        let (conn, _) = listener.accept().unwrap();
        readable(&conn, "listener fd");
        let mut buf = vec![0u8; 1 << 16];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            conn.as_fd(),
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )
        .unwrap();
        let mut fds: Vec<OwnedFd> = Vec::new();
        for message in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        let state: Value = serde_json::from_slice(&buf[..msg.bytes]).unwrap();
        assert_eq!(fds.len(), 1, "one fd with the state {state}");
        let fd = fds.pop().unwrap();
        let mut paths = Vec::new();
        for _ in 0..count {
            readable(&fd, "notification");
            let n = seccomp::receive(&fd).unwrap();
            let path_arg = if n.syscall == "mkdirat" {
                n.args[1]
            } else {
                n.args[0]
            };
            let path = read_string(n.pid, path_arg);
            let reply = if path.ends_with("deny") {
                Reply::Errno(libc::EDQUOT)
            } else {
                Reply::Value(0)
            };
            seccomp::respond(&fd, n.id, reply).unwrap();
            paths.push(path);
        }
        (state, paths)
    })
}

#[test]
#[ignore = "needs root"]
fn notify_sends_the_listener_to_the_agent_which_answers() {
    let bundle = Bundle::new("seccomp-notify");
    let socket = bundle.tmp_dir().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    set_seccomp(
        &bundle,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": socket,
            "listenerMetadata": "corral-test-metadata",
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    let agent = agent(listener, 2);
    let out = run_sh(
        &bundle,
        "mkdir /dev/shm/deny; echo rc=$?; mkdir /dev/shm/fake && echo made; \
         test -e /dev/shm/fake || echo absent",
    );
    let (state, paths) = agent.join().unwrap();
    out.assert_success();
    assert_eq!(out.stdout, "rc=1\nmade\nabsent\n", "{out}");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out}");
    assert_eq!(paths, ["/dev/shm/deny", "/dev/shm/fake"]);
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "corral-test-metadata", "{state}");
    assert_eq!(state["state"]["id"], bundle.id(), "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert_eq!(state["pid"], state["state"]["pid"], "{state}");
    let status = state["state"]["status"].as_str().unwrap();
    assert!(["creating", "created"].contains(&status), "{state}");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn unknown_action_or_architecture_is_refused_by_name() {
    let bundle = Bundle::new("seccomp-unknown");
    for (profile, name) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}),
            "SCMP_ACT_BOGUS",
        ),
        (json!({"defaultAction": "SCMP_ACT_NOPE"}), "SCMP_ACT_NOPE"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
            "SCMP_ARCH_VAX",
        ),
    ] {
        set_seccomp(&bundle, profile);
        let out = bundle.try_create(bundle.id());
        out.assert_error(&[name], &["linux.seccomp"]);
        assert!(!bundle.state_dir().exists(), "nothing created:\n{out}");
    }
    if !is_runc() {
        // A NOTIFY rule needs somewhere to send the listener.
        set_seccomp(
            &bundle,
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        bundle
            .try_create(bundle.id())
            .assert_error(&["listenerPath"], &[]);
    }
    bundle.assert_no_leaks();
}
