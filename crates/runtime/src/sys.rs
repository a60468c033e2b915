//! Raw system calls that rustix does not wrap (`clone3`, `mount_setattr`,
//! `close_range`, `execve`, signal masks, id changes). Every `unsafe` block of
//! the crate lives here, behind a safe function or an `unsafe fn` whose
//! contract is written down.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// What `clone3` returned in the calling process.
pub enum Forked {
    /// We are the parent: the child's pid and a pidfd for it.
    Parent {
        /// The child's pid in our pid namespace.
        pid: i32,
        /// A pidfd referring to the child (`CLONE_PIDFD`).
        pidfd: OwnedFd,
    },
    /// We are the child.
    Child,
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The number of threads of the calling process (field 20 of
/// /proc/self/stat).
fn thread_count() -> io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
    rest.split(' ')
        .nth(17)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/self/stat"))
}

/// `clone3` with `CLONE_PIDFD | CLONE_CLEAR_SIGHAND`, the given namespace
/// flags, `SIGCHLD` as exit signal and, when `cgroup` is given,
/// `CLONE_INTO_CGROUP`. Refuses (EDEADLK) when the process has more than
/// one thread: the child, a copy of this one thread, could then inherit a
/// lock (the allocator's) that a thread it lacks holds.
///
/// In the child this returns `Forked::Child`; the caller must end that
/// branch with `execve` or `_exit` and never return into frames that
/// belong to the parent's logic.
pub fn clone3(ns_flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    if thread_count()? != 1 {
        return Err(io::Error::from_raw_os_error(libc::EDEADLK));
    }
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: ns_flags | libc::CLONE_PIDFD as u64 | 0x1_0000_0000, // CLONE_CLEAR_SIGHAND
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= 0x2_0000_0000; // CLONE_INTO_CGROUP
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a properly laid out `struct clone_args` of the size
    // we pass, and `pidfd` outlives the call. No stack is given, so the child
    // runs on a copy of our stack like fork(); we checked above that we are
    // the only thread, so the copy holds no lock of a missing thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of_mut!(args),
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel wrote a fresh pidfd that nobody else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Ends the calling process at once, without running destructors or atexit
/// handlers; what a cloned child uses instead of returning.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns; skipping
    // destructors is the point (they belong to the parent's copy of state).
    unsafe { libc::_exit(code) }
}

/// Attribute bits of `mount_setattr(2)` (include/uapi/linux/mount.h).
pub mod mount_attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// Ignore suid and sgid bits.
    pub const NOSUID: u64 = 0x2;
    /// Disallow device access.
    pub const NODEV: u64 = 0x4;
    /// Disallow program execution.
    pub const NOEXEC: u64 = 0x8;
    /// Mask of the atime bits.
    pub const ATIME_MASK: u64 = 0x70;
    /// Update atime relative to mtime/ctime.
    pub const RELATIME: u64 = 0x0;
    /// Do not update access times.
    pub const NOATIME: u64 = 0x10;
    /// Always update access times.
    pub const STRICTATIME: u64 = 0x20;
    /// Do not update directory access times.
    pub const NODIRATIME: u64 = 0x80;
    /// Idmap the mount with the user namespace in `userns_fd`.
    pub const IDMAP: u64 = 0x100000;
    /// Do not follow symlinks.
    pub const NOSYMFOLLOW: u64 = 0x200000;
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], …)`: changes the
/// flags and propagation of the mount `fd` refers to (a mount fd from
/// `open_tree`/`fsmount` or an `O_PATH` fd of a mount point).
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    propagation: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= 0x8000; // AT_RECURSIVE
    }
    // SAFETY: `attr` is a correctly sized `struct mount_attr` living across
    // the call, the path is a static empty C string, and `fd` is borrowed,
    // so it stays open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            std::ptr::addr_of_mut!(attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every fd from `first` up close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`), so nothing but stdio and the preserved fds crosses
/// `execve` (CVE-2024-21626), while our own sync fds stay usable until then.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range takes integers only; with CLOSE_RANGE_CLOEXEC it
    // closes nothing, so no OwnedFd of ours is invalidated.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 4u32) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the file `fd`
/// refers to (an ELF binary: a script would need `fd` open across exec);
/// returns only on failure.
pub fn execveat_empty(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point into CStrings that
    // `argv`/`envp` keep alive for the call; the path is a static empty C
    // string; `fd` is borrowed, so it stays open for the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point into CStrings that
    // `argv`/`envp` keep alive for the call; `path` is a valid C string.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// A set of signals, for masking and waiting.
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// Every signal.
    pub fn full() -> Self {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises the whole set it is given.
        unsafe { libc::sigfillset(set.as_mut_ptr()) };
        // SAFETY: initialised just above.
        SigSet(unsafe { set.assume_init() })
    }

    /// No signal.
    pub fn empty() -> Self {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set it is given.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised just above.
        SigSet(unsafe { set.assume_init() })
    }

    /// Blocks the signals of this set in the calling thread and returns the
    /// previous mask.
    pub fn block(&self) -> io::Result<SigSet> {
        self.change(libc::SIG_BLOCK)
    }

    /// Replaces the calling thread's mask with this set.
    pub fn set_mask(&self) -> io::Result<SigSet> {
        self.change(libc::SIG_SETMASK)
    }

    fn change(&self, how: libc::c_int) -> io::Result<SigSet> {
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: both pointers are valid sigset_t storage for the call.
        let ret = unsafe { libc::pthread_sigmask(how, &self.0, old.as_mut_ptr()) };
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        // SAFETY: pthread_sigmask filled `old` on success.
        Ok(SigSet(unsafe { old.assume_init() }))
    }

    /// Waits for one of the (blocked) signals of this set, at most `timeout`;
    /// returns the signal number, or `None` on timeout.
    pub fn wait_timeout(&self, timeout: std::time::Duration) -> io::Result<Option<i32>> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: the set and the timespec are valid for the call; a null
        // siginfo pointer is allowed.
        let ret = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(err),
            };
        }
        Ok(Some(ret))
    }
}

/// `setgroups(2)` with the given supplementary gids.
pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe `gids`, valid for the call.
    let ret = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setresgid(gid, gid, gid)`.
pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: integers only.
    if unsafe { libc::setresgid(gid, gid, gid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setresuid(uid, uid, uid)`.
pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: integers only.
    if unsafe { libc::setresuid(uid, uid, uid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `personality(2)`.
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: integer only.
    if unsafe { libc::personality(persona as libc::c_ulong) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, prio)` for the calling process.
pub fn ioprio_set(prio: i32) -> io::Result<()> {
    // SAFETY: integers only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, prio) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `sched_setattr(0, attr, 0)` for the calling thread.
pub fn sched_setattr(
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
) -> io::Result<()> {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let mut attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority,
        runtime,
        deadline,
        period,
    };
    // SAFETY: `attr` is a correctly sized sched_attr (size field set) valid
    // for the call.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, std::ptr::addr_of_mut!(attr), 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `sched_setaffinity(0, …)` with the given cpus.
pub fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: cpu is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: the set is valid and its size is passed.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal `fd` the controlling
/// terminal of the calling session leader.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; fd is borrowed and open.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, TIOCSWINSZ, …)`.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `dup3(fd, target, 0)`: makes `target` (0, 1 or 2) refer to `fd`'s file,
/// inheritable across exec.
pub fn dup_onto(fd: impl AsFd, target: i32) -> io::Result<()> {
    // SAFETY: dup3 takes integers; `fd` is borrowed and open, and `target` is
    // one of the stdio numbers the process owns by convention.
    let ret = unsafe { libc::dup3(fd.as_fd().as_raw_fd(), target, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes this process's copy of `fd` in a child `clone3` made, where the
/// `OwnedFd` behind it lives in frames the child never returns to (it ends
/// in `execve` or [`exit_now`]), so that owner never closes the number again.
/// The init drops its copy of the locked state directory this way: a shared
/// open file description would keep the `flock` held past a killed parent.
pub fn close_in_child(fd: BorrowedFd<'_>) {
    // SAFETY: close takes an integer and touches no memory of ours. The
    // number is open (borrowed); its owner is in the parent's frames, copied
    // into this child but never dropped here (see above), so no later close
    // or use of the number follows in this process.
    unsafe { libc::close(fd.as_raw_fd()) };
}

/// `umount2(path, MNT_DETACH)`.
pub fn umount_detach(path: &CStr) -> io::Result<()> {
    // SAFETY: path is a valid C string for the call.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setrlimit(resource, {soft, hard})`.
pub fn setrlimit(resource: i32, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: the rlimit struct is valid for the call; the kernel checks
    // the resource number.
    if unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &lim) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: gives the container a
/// session keyring of its own instead of the caller's.
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    // SAFETY: name is a valid C string for the call; the other arguments are
    // unused integers.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 1, name.as_ptr(), 0, 0, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setsid()`.
pub fn setsid() -> io::Result<()> {
    rustix::process::setsid().map(drop).map_err(io::Error::from)
}

/// Clears close-on-exec on fd number `fd`, one the caller handed us to pass
/// on (`--preserve-fds`); a number that is not open is left alone.
pub fn inherit_fd(fd: i32) {
    // SAFETY: fcntl(F_SETFD) on an integer changes only the fd's flags, no
    // memory of ours; an fd that is not open gives EBADF, ignored.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
}

/// `unshare(flags)` for namespace flags only (`CLONE_NEW*`), which change
/// no memory or fd table of ours.
pub fn unshare_namespace(flags: libc::c_int) -> io::Result<()> {
    let ns_only = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWCGROUP
        | 0x80; // CLONE_NEWTIME
    if flags & !ns_only != 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: only namespace flags pass the check above; they do not unshare
    // the fd table or memory, so no fd or pointer of ours is invalidated.
    if unsafe { libc::unshare(flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)` with any signal number,
/// real-time ones and 0 (a liveness and permission check) included.
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: integers and a null siginfo pointer, which the call allows;
    // the pidfd is borrowed and open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A `signalfd` (close-on-exec) reading the signals of `set`, which the
/// caller keeps blocked.
pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: the set is a valid sigset_t for the call; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one signal number from a signalfd; `None` when none is pending.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: the buffer is exactly one signalfd_siginfo, valid for writes
    // for the call; the kernel writes whole records only.
    let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(err),
        };
    }
    if n as usize != size {
        return Ok(None);
    }
    // SAFETY: the kernel filled the whole record (checked above).
    Ok(Some(unsafe { info.assume_init() }.ssi_signo as i32))
}

/// Sends the seccomp listener `fd` over `socket` with `payload`, as the OCI
/// notify protocol wants.
pub fn send_seccomp_listener(
    socket: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    payload: &[u8],
) -> io::Result<()> {
    crate::init::send_fd(socket, fd, payload)
}

/// Loads a classic BPF seccomp program into this thread with `flags`
/// (`SECCOMP_FILTER_FLAG_*`). `bpf` is what libseccomp exports: an array of
/// `struct sock_filter` in native byte order. With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` the kernel returns the listener, a new
/// fd, which is returned here.
pub fn load_seccomp_filter(bpf: &[u8], flags: libc::c_ulong) -> io::Result<Option<OwnedFd>> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    let count = bpf.len() / INSN;
    if bpf.is_empty() || !bpf.len().is_multiple_of(INSN) || count > usize::from(u16::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a BPF program: {} bytes", bpf.len()),
        ));
    }
    let insns: Vec<libc::sock_filter> = bpf
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: count as u16, // checked above
        filter: insns.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `insns`, `count` valid instructions that live
    // until after the call; the kernel copies the program and writes nothing
    // through the pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::other("seccomp returned no fd"))?;
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing in
    // this process owns yet; the OwnedFd becomes its only owner.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Makes a forked helper process hold only `keep` (renumbered 3, 4, …, in
/// order) and /dev/null as stdio, closing every other fd it inherited.
/// Returns the kept fds under their new numbers.
///
/// Only for a child of `clone3` that ends in [`exit_now`]: the fds the
/// parent's frames own as `OwnedFd` are closed here and never dropped in
/// this process, which never returns to those frames.
pub fn keep_only_fds(keep: &[BorrowedFd<'_>]) -> io::Result<Vec<BorrowedFd<'static>>> {
    let n = keep.len() as i32;
    let mut copies = Vec::with_capacity(keep.len());
    for fd in keep {
        // SAFETY: fcntl(F_DUPFD) takes integers; `fd` is open (borrowed).
        let d = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 3 + n) };
        if d == -1 {
            return Err(io::Error::last_os_error());
        }
        copies.push(d);
    }
    for (i, d) in copies.iter().enumerate() {
        // SAFETY: dup3 takes integers; `d` is the copy made above.
        if unsafe { libc::dup3(*d, 3 + i as i32, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: closes numbers, no memory; per this function's contract no
    // frame of this process will use or drop the fds closed here.
    if unsafe { libc::syscall(libc::SYS_close_range, 3 + n as u32, u32::MAX, 0u32) } == -1 {
        return Err(io::Error::last_os_error());
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for target in 0..3 {
        dup_onto(&null, target)?;
    }
    // SAFETY: 3..3+n were just made copies of `keep`; this process keeps
    // them open until it exits (the contract above), so 'static holds.
    Ok((0..n)
        .map(|i| unsafe { BorrowedFd::borrow_raw(3 + i) })
        .collect())
}

/// Resets every signal's disposition to the default. `execve` keeps
/// ignored signals ignored, and Rust's runtime ignores SIGPIPE in corral:
/// without this, a container's `yes | head` would never end.
pub fn reset_signal_dispositions() {
    // The raw call: glibc's signal() refuses 32 and 33, its own.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    }; // SIG_DFL
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a valid kernel sigaction for x86_64 (handler
        // SIG_DFL, no flags, empty mask) living across the call, its size
        // of the mask is passed, and no old action is asked for.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::addr_of!(dfl),
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}

/// `dup3(fd, target, O_CLOEXEC)` in an init about to be restored from a
/// checkpoint ([`crate::checkpoint`]): the number `target` is the one the
/// restore expects the file at.
pub fn place_fd_for_restore(fd: BorrowedFd<'_>, target: i32) -> io::Result<()> {
    // SAFETY: dup3 takes integers; `fd` is borrowed and open. Whatever
    // `target` numbered before is replaced: the init calls this only once
    // every fd it still uses (the sync socket) lies below the targets, and
    // then stops for good ([`traceme_and_stop`]): the restore replaces its
    // memory, so no owner of a replaced number ever closes it again.
    let ret = unsafe { libc::dup3(fd.as_raw_fd(), target, libc::O_CLOEXEC) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `PTRACE_TRACEME`, then `SIGSTOP` to ourselves: the parent, our tracer
/// now, sees the stop and takes over (checkpoint restore). Returns only if
/// the parent let us go on, which a restore never does.
pub fn traceme_and_stop() -> io::Result<()> {
    // SAFETY: ptrace(PTRACE_TRACEME) takes no pointer (the other arguments
    // are ignored and zero).
    let ret = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raise takes an integer; SIGSTOP cannot be caught or blocked.
    if unsafe { libc::raise(libc::SIGSTOP) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
