//! Raw system calls for checkpoint/restore: ptrace, `process_vm_readv`/
//! `writev`, `clone3` with `set_tid`, and the probes of `cr check`. Neither
//! rustix nor nix wraps most of these (ptrace regsets, rseq configuration,
//! clone3), so they are here, each behind a safe function. Every `unsafe`
//! block of the crate lives in this module.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `NT_X86_XSTATE` (include/uapi/linux/elf.h); libc lacks it for gnu.
const NT_X86_XSTATE: libc::c_int = 0x202;
/// Largest xstate buffer we offer the kernel (2432 bytes are used here).
pub const XSTATE_MAX: usize = 16384;
/// `PTRACE_EVENT_STOP`: the stop `PTRACE_INTERRUPT` and group-stops report.
pub const PTRACE_EVENT_STOP: i32 = 128;
/// `PR_SET_MM_MAP` and `PR_SET_MM_MAP_SIZE` (include/uapi/linux/prctl.h).
pub const PR_SET_MM_MAP: u64 = 14;
const PR_SET_MM_MAP_SIZE: libc::c_ulong = 15;
/// `CLONE_CLEAR_SIGHAND`: libc's constant is a truncated c_int.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// `PR_GET_TID_ADDRESS` (include/uapi/linux/prctl.h): writes the thread's
/// `clear_child_tid` pointer to the address given.
pub const PR_GET_TID_ADDRESS: u64 = 40;
/// `RSEQ_FLAG_UNREGISTER`.
pub const RSEQ_FLAG_UNREGISTER: u64 = 1;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn ptrace(req: libc::c_uint, pid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every caller passes as `addr`/`data` either a plain integer or
    // a pointer to a live buffer of the size the request writes or reads
    // (stated at each call); the kernel checks the pid and our rights over it.
    let ret = unsafe { libc::ptrace(req, pid, addr as *mut c_void, data as *mut c_void) };
    check(ret)
}

/// `PTRACE_SEIZE` with `options`: attach without stopping the task.
pub fn ptrace_seize(pid: i32, options: u32) -> io::Result<()> {
    ptrace(libc::PTRACE_SEIZE, pid, 0, options as usize).map(drop)
}

/// `PTRACE_INTERRUPT`: stop a seized task (it reports `PTRACE_EVENT_STOP`).
pub fn ptrace_interrupt(pid: i32) -> io::Result<()> {
    ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0).map(drop)
}

/// `PTRACE_SETOPTIONS`.
pub fn ptrace_setoptions(pid: i32, options: u32) -> io::Result<()> {
    ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options as usize).map(drop)
}

/// `PTRACE_DETACH`, delivering `sig` (0 for none).
pub fn ptrace_detach(pid: i32, sig: i32) -> io::Result<()> {
    ptrace(libc::PTRACE_DETACH, pid, 0, sig as usize).map(drop)
}

/// `PTRACE_CONT`, delivering `sig` (0 for none).
pub fn ptrace_cont(pid: i32, sig: i32) -> io::Result<()> {
    ptrace(libc::PTRACE_CONT, pid, 0, sig as usize).map(drop)
}

/// `PTRACE_SYSCALL`: resume until the next syscall entry or exit.
pub fn ptrace_syscall(pid: i32, sig: i32) -> io::Result<()> {
    ptrace(libc::PTRACE_SYSCALL, pid, 0, sig as usize).map(drop)
}

/// `PTRACE_GETREGS`.
pub fn ptrace_getregs(pid: i32) -> io::Result<libc::user_regs_struct> {
    let mut regs = MaybeUninit::<libc::user_regs_struct>::zeroed();
    // `data` points at a user_regs_struct, the size PTRACE_GETREGS writes.
    ptrace(libc::PTRACE_GETREGS, pid, 0, regs.as_mut_ptr() as usize)?;
    // SAFETY: zero-initialised plain integers, then filled by the kernel.
    Ok(unsafe { regs.assume_init() })
}

/// `PTRACE_SETREGS` (FS/GS base included, so TLS comes back: trap 5).
pub fn ptrace_setregs(pid: i32, regs: &libc::user_regs_struct) -> io::Result<()> {
    // `data` points at a user_regs_struct, which PTRACE_SETREGS only reads.
    ptrace(libc::PTRACE_SETREGS, pid, 0, regs as *const _ as usize).map(drop)
}

/// `PTRACE_GETREGSET NT_X86_XSTATE`: the FPU/SSE/AVX state, as long as the
/// kernel makes it.
pub fn ptrace_get_xstate(pid: i32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; XSTATE_MAX];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // `data` points at an iovec describing `buf`; the kernel writes at most
    // iov_len bytes there and stores the length used back in iov_len.
    ptrace(
        libc::PTRACE_GETREGSET,
        pid,
        NT_X86_XSTATE as usize,
        &mut iov as *mut _ as usize,
    )?;
    buf.truncate(iov.iov_len);
    Ok(buf)
}

/// `PTRACE_SETREGSET NT_X86_XSTATE` (trap 5: without it SSE/AVX differ).
pub fn ptrace_set_xstate(pid: i32, xstate: &[u8]) -> io::Result<()> {
    let iov = libc::iovec {
        iov_base: xstate.as_ptr() as *mut c_void,
        iov_len: xstate.len(),
    };
    // `data` points at an iovec over `xstate`, which SETREGSET only reads.
    ptrace(
        libc::PTRACE_SETREGSET,
        pid,
        NT_X86_XSTATE as usize,
        &iov as *const _ as usize,
    )
    .map(drop)
}

/// `PTRACE_GETSIGMASK`.
pub fn ptrace_get_sigmask(pid: i32) -> io::Result<u64> {
    let mut mask = 0u64;
    // `addr` is the size of the mask, 8 bytes, and `data` points at a u64.
    ptrace(
        libc::PTRACE_GETSIGMASK,
        pid,
        8,
        &mut mask as *mut u64 as usize,
    )?;
    Ok(mask)
}

/// `PTRACE_SETSIGMASK`.
pub fn ptrace_set_sigmask(pid: i32, mask: u64) -> io::Result<()> {
    // `addr` is the size of the mask, 8 bytes, and `data` points at a u64.
    ptrace(
        libc::PTRACE_SETSIGMASK,
        pid,
        8,
        &mask as *const u64 as usize,
    )
    .map(drop)
}

/// `PTRACE_GET_RSEQ_CONFIGURATION`: `(address, length, signature)` of the
/// task's rseq area, `None` when it has none.
pub fn ptrace_get_rseq(pid: i32) -> io::Result<Option<(u64, u32, u32)>> {
    let mut conf = MaybeUninit::<libc::ptrace_rseq_configuration>::zeroed();
    let size = std::mem::size_of::<libc::ptrace_rseq_configuration>();
    // `addr` is the size of the struct `data` points at.
    ptrace(
        libc::PTRACE_GET_RSEQ_CONFIGURATION,
        pid,
        size,
        conf.as_mut_ptr() as usize,
    )?;
    // SAFETY: zero-initialised plain integers, then filled by the kernel.
    let conf = unsafe { conf.assume_init() };
    Ok((conf.rseq_abi_pointer != 0).then_some((
        conf.rseq_abi_pointer,
        conf.rseq_abi_size,
        conf.signature,
    )))
}

/// `get_robust_list(tid)`: `(head, len)` of the thread's robust futex
/// list; head 0 when it registered none.
pub fn get_robust_list(tid: i32) -> io::Result<(u64, u64)> {
    let mut head: u64 = 0;
    let mut len: libc::size_t = 0;
    // SAFETY: the kernel writes one pointer-sized value through each of the
    // two pointers, which point at `head` (a u64, the size of a pointer on
    // x86_64) and `len`, both live for the call; it checks the tid and our
    // ptrace rights over it.
    check(unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            tid,
            &mut head as *mut u64,
            &mut len as *mut libc::size_t,
        )
    })?;
    Ok((head, len as u64))
}

/// What `waitpid` reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
    /// In a ptrace stop: the signal and the event (`status >> 16`).
    Stopped {
        /// Stop signal (`SIGTRAP | 0x80` for a syscall stop).
        sig: i32,
        /// `PTRACE_EVENT_*`, or 0.
        event: i32,
    },
}

/// `waitpid(pid, __WALL)`, retried on `EINTR`.
pub fn waitpid(pid: i32) -> io::Result<WaitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live c_int the kernel writes.
        let ret = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if ret >= 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        WaitStatus::Stopped {
            sig: libc::WSTOPSIG(status),
            event: status >> 16,
        }
    })
}

/// `process_vm_readv`: fills `local` from the `remote` `(address, length)`
/// ranges of `pid`, at most `IOV_MAX` of each per call. Returns bytes read.
pub fn process_vm_readv(pid: i32, local: &mut [u8], remote: &[(u64, u64)]) -> io::Result<usize> {
    let liov = libc::iovec {
        iov_base: local.as_mut_ptr().cast(),
        iov_len: local.len(),
    };
    let riov: Vec<libc::iovec> = remote
        .iter()
        .map(|&(a, l)| libc::iovec {
            iov_base: a as *mut c_void,
            iov_len: l as usize,
        })
        .collect();
    // SAFETY: `liov` describes `local`, which we borrow mutably for the call;
    // the remote iovecs are addresses in the other process, which the kernel
    // checks; both arrays outlive the call and their lengths are passed.
    let ret = unsafe { libc::process_vm_readv(pid, &liov, 1, riov.as_ptr(), riov.len() as _, 0) };
    check(ret as libc::c_long).map(|n| n as usize)
}

/// `process_vm_writev`: writes `local` slices to the `remote` ranges of
/// `pid`. Honours page protections (trap 3). Returns bytes written.
pub fn process_vm_writev(pid: i32, local: &[&[u8]], remote: &[(u64, u64)]) -> io::Result<usize> {
    let liov: Vec<libc::iovec> = local
        .iter()
        .map(|s| libc::iovec {
            iov_base: s.as_ptr() as *mut c_void,
            iov_len: s.len(),
        })
        .collect();
    let riov: Vec<libc::iovec> = remote
        .iter()
        .map(|&(a, l)| libc::iovec {
            iov_base: a as *mut c_void,
            iov_len: l as usize,
        })
        .collect();
    // SAFETY: the local iovecs describe borrowed slices the kernel only reads;
    // the remote ones are addresses in the other process, checked by the
    // kernel; both arrays outlive the call and their lengths are passed.
    let ret = unsafe {
        libc::process_vm_writev(
            pid,
            liov.as_ptr(),
            liov.len() as _,
            riov.as_ptr(),
            riov.len() as _,
            0,
        )
    };
    check(ret as libc::c_long).map(|n| n as usize)
}

/// `O_CLOEXEC | UFFD_USER_MODE_ONLY`: the flags a restored task's
/// `userfaultfd` is created with (an injected syscall, so the number is
/// here rather than a call).
pub const USERFAULTFD_FLAGS: u64 = libc::O_CLOEXEC as u64 | 1;
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f; // _IOWR(0xAA, 0x3F, 24 bytes)
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00; // _IOWR(0xAA, 0x00, 32 bytes)
const UFFDIO_UNREGISTER: libc::c_ulong = 0x8010_aa01; // _IOR(0xAA, 0x01, 16 bytes)
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03; // _IOWR(0xAA, 0x03, 40 bytes)
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;

/// A userfaultfd that another task created (an injected `userfaultfd`,
/// copied to us with `pidfd_getfd`). Its ioctls act on that task's address
/// space: `UFFDIO_COPY` fills a missing page there with bytes of ours in
/// one kernel step (allocate, copy, map), with no zeroing first and no
/// fault taken by the task.
#[derive(Debug)]
pub struct Uffd(OwnedFd);

/// `ioctl(fd, req, arg)` for the userfaultfd requests above, whose argument
/// is a struct of plain u64 fields, as many as `arg` holds.
fn uffd_ioctl(fd: BorrowedFd<'_>, req: libc::c_ulong, arg: &mut [u64]) -> io::Result<()> {
    // _IOC_SIZE: the bytes the kernel reads and writes through the pointer.
    if (req >> 16) & 0x3fff != (arg.len() * 8) as libc::c_ulong {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: the kernel reads and writes at most _IOC_SIZE(req) bytes at
    // the pointer, which is the size of `arg` (checked above), mutably
    // borrowed and live for the call; every bit pattern is a valid u64.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), req, arg.as_mut_ptr()) };
    check(ret as libc::c_long).map(drop)
}

impl Uffd {
    /// Takes `fd` and does the `UFFDIO_API` handshake (no features).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        // struct uffdio_api: api, features (in: wanted, out: offered), ioctls.
        uffd_ioctl(fd.as_fd(), UFFDIO_API, &mut [UFFD_API, 0, 0])?;
        Ok(Uffd(fd))
    }

    /// `UFFDIO_REGISTER` of `[start, start + len)` of the other task for
    /// missing-page faults.
    pub fn register_missing(&self, start: u64, len: u64) -> io::Result<()> {
        // struct uffdio_register: range {start, len}, mode, ioctls (out).
        let mut reg = [start, len, UFFDIO_REGISTER_MODE_MISSING, 0];
        uffd_ioctl(self.0.as_fd(), UFFDIO_REGISTER, &mut reg)
    }

    /// `UFFDIO_UNREGISTER` of `[start, start + len)`.
    pub fn unregister(&self, start: u64, len: u64) -> io::Result<()> {
        // struct uffdio_range.
        uffd_ioctl(self.0.as_fd(), UFFDIO_UNREGISTER, &mut [start, len])
    }

    /// `UFFDIO_COPY` of `src` to `dst` in the other task, which must be
    /// registered and have no page there yet; both page aligned. The
    /// kernel reads `src` (borrowed for the call) and writes only into the
    /// other task, so no memory of ours changes.
    pub fn copy(&self, dst: u64, src: &[u8]) -> io::Result<()> {
        let mut done = 0usize;
        let mut stalls = 0;
        while done < src.len() {
            let rest = &src[done..];
            // struct uffdio_copy: dst, src, len, mode, copy (out: bytes
            // copied, or -errno).
            let mut arg = [
                dst + done as u64,
                rest.as_ptr() as u64,
                rest.len() as u64,
                0,
                0,
            ];
            let Err(err) = uffd_ioctl(self.0.as_fd(), UFFDIO_COPY, &mut arg) else {
                return Ok(());
            };
            let copied = arg[4] as i64;
            // EAGAIN: the kernel stopped part way (a signal, or the address
            // space was changing); go on from there, and without progress
            // try again a bounded number of times.
            if err.raw_os_error() == Some(libc::EAGAIN) && stalls < 100 {
                if copied > 0 {
                    done += copied as usize;
                } else {
                    stalls += 1;
                }
                continue;
            }
            return Err(err);
        }
        Ok(())
    }
}

/// `pidfd_open(pid)`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the result is a new fd nobody owns.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: `fd` was just returned to us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `process_mrelease(pidfd)`: frees the memory of a task that was sent
/// SIGKILL from our context, in parallel with its own exit.
pub fn process_mrelease(pidfd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: integer arguments only; the kernel checks that the fd is a
    // pidfd and that its task is dying.
    check(unsafe { libc::syscall(libc::SYS_process_mrelease, pidfd.as_raw_fd(), 0) }).map(drop)
}

/// How the child of [`fork_traced_child`] begins.
pub struct TracedChild {
    /// Its pid.
    pub pid: i32,
}

/// Forks a child with `clone3`, with pid `set_tid` if given, that asks to be
/// traced and stops itself with `SIGSTOP`; the caller waits for that stop
/// and does everything else through ptrace. The child dies with its parent
/// (`PR_SET_PDEATHSIG`) until the caller clears that.
///
/// The child runs only raw system calls (async-signal-safe) before it stops,
/// so the caller may be multi-threaded (a test harness).
pub fn fork_traced_child(set_tid: Option<i32>) -> io::Result<TracedChild> {
    fork_traced(set_tid, None)
}

/// Where [`fork_traced_in_new_pid_ns`] puts its child besides a new pid
/// namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcMount {
    /// Our mount namespace: its /proc shows our pid namespace.
    Ours,
    /// A new mount namespace, a private copy of ours, with a procfs of the
    /// new pid namespace mounted on /proc.
    New,
}

/// As [`fork_traced_child`], the child pid 1 of a new pid namespace
/// (`CLONE_NEWPID`), in a new mount namespace with its own /proc if
/// `proc` says so (a failed mount ends the child with status 126 before it
/// stops). Returns its pid in our namespace.
pub fn fork_traced_in_new_pid_ns(proc: ProcMount) -> io::Result<TracedChild> {
    fork_traced(None, Some(proc))
}

fn fork_traced(set_tid: Option<i32>, new_ns: Option<ProcMount>) -> io::Result<TracedChild> {
    let tid = [set_tid.unwrap_or(0)];
    // SAFETY: clone_args is plain integers; all-zero is a valid value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = CLONE_CLEAR_SIGHAND;
    match new_ns {
        None => {}
        Some(ProcMount::Ours) => args.flags |= libc::CLONE_NEWPID as u64,
        Some(ProcMount::New) => args.flags |= (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64,
    }
    let remount = new_ns == Some(ProcMount::New);
    args.exit_signal = libc::SIGCHLD as u64;
    if set_tid.is_some() {
        args.set_tid = tid.as_ptr() as u64;
        args.set_tid_size = 1;
    }
    // SAFETY: `args` and `tid` are live for the call and args' size is
    // passed. No stack is given, so the child runs on a copy of ours, like
    // fork; it runs only the raw syscalls below and never returns from this
    // function (`_exit`), so no destructor or lock of ours runs twice.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret == 0 {
        if remount {
            let (root, proc) = (c"/".as_ptr(), c"/proc".as_ptr());
            let private = libc::MS_REC | libc::MS_PRIVATE;
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            let null = std::ptr::null::<libc::c_char>();
            // SAFETY: in the child: raw syscalls whose pointers are static
            // C strings or null; `_exit` ends it without running anything
            // of the parent's (no destructor, no lock).
            unsafe {
                if libc::syscall(libc::SYS_mount, null, root, null, private, null) != 0
                    || libc::syscall(libc::SYS_mount, proc, proc, c"proc".as_ptr(), flags, null)
                        != 0
                {
                    libc::_exit(126)
                }
            }
        }
        // SAFETY: in the child, which runs only raw syscalls from here.
        unsafe { traced_child_body() }
    }
    let pid = check(ret)?;
    Ok(TracedChild { pid: pid as i32 })
}

/// The child of [`fork_traced_child`]: dies with its parent, asks to be
/// traced, stops.
///
/// # Safety
///
/// Called only in a child just made by `clone3` without a stack, which
/// must never return into its parent's frames: it runs raw syscalls with
/// integer arguments (async-signal-safe) and `_exit`s if it is ever
/// resumed here.
unsafe fn traced_child_body() -> ! {
    // SAFETY: raw syscalls with integer arguments only, then `_exit`.
    unsafe {
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL,
            0,
            0,
            0,
        );
        libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
        let me = libc::syscall(libc::SYS_getpid);
        libc::syscall(libc::SYS_kill, me, libc::SIGSTOP);
        libc::_exit(127)
    }
}

/// A step of [`fork_traced_child_in_new_timens`], named in its errors; the
/// helper reports a failed one by its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum TimensStep {
    /// Forking the helper.
    Helper = 5,
    /// `unshare(CLONE_NEWTIME)` in the helper.
    Unshare = 1,
    /// Opening the helper's /proc/self/timens_offsets.
    Open = 2,
    /// Writing the offsets.
    Write = 3,
    /// The helper's `clone3` of the child.
    Clone = 4,
    /// Reading the helper's report.
    Report = 6,
}

impl TimensStep {
    /// What the step does, for an error message.
    pub fn what(self) -> &'static str {
        match self {
            TimensStep::Helper => "fork a helper",
            TimensStep::Unshare => "unshare(CLONE_NEWTIME)",
            TimensStep::Open => "open /proc/self/timens_offsets",
            TimensStep::Write => "write /proc/self/timens_offsets",
            TimensStep::Clone => "clone3 with set_tid",
            TimensStep::Report => "read the helper's report",
        }
    }

    fn from_code(code: i32) -> TimensStep {
        [
            TimensStep::Unshare,
            TimensStep::Open,
            TimensStep::Write,
            TimensStep::Clone,
        ]
        .into_iter()
        .find(|s| *s as i32 == code)
        .unwrap_or(TimensStep::Report)
    }
}

/// As [`fork_traced_child`], in a new time namespace with `offsets` (the
/// text /proc/PID/timens_offsets takes). A helper child, a plain fork,
/// unshares `CLONE_NEWTIME` (which moves only its future children), writes
/// `offsets` to its own /proc/self/timens_offsets while nobody is in the
/// namespace, and makes the child with `CLONE_PARENT`: our child, which we
/// trace, wait for and reap, and the first task of the namespace. The
/// helper reports the child's pid, or the step that failed and its errno,
/// over a pipe, and exits; it is reaped here. Our own namespaces do not
/// change.
///
/// Helper and child run only raw system calls (async-signal-safe), so the
/// caller may be multi-threaded.
pub fn fork_traced_child_in_new_timens(
    set_tid: Option<i32>,
    offsets: &[u8],
) -> Result<TracedChild, (TimensStep, io::Error)> {
    const PATH: &std::ffi::CStr = c"/proc/self/timens_offsets";
    let (report_r, report_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| (TimensStep::Helper, io::Error::from(e)))?;
    let tid = [set_tid.unwrap_or(0)];
    // SAFETY: clone_args is plain integers; all-zero is a valid value.
    let mut helper: libc::clone_args = unsafe { std::mem::zeroed() };
    helper.flags = CLONE_CLEAR_SIGHAND;
    helper.exit_signal = libc::SIGCHLD as u64;
    // SAFETY: as above.
    let mut child: libc::clone_args = unsafe { std::mem::zeroed() };
    // CLONE_PARENT: the child's parent (and tracer, by PTRACE_TRACEME) is
    // our thread; its exit signal is the helper's, SIGCHLD.
    child.flags = CLONE_CLEAR_SIGHAND | libc::CLONE_PARENT as u64;
    if set_tid.is_some() {
        child.set_tid = tid.as_ptr() as u64;
        child.set_tid_size = 1;
    }
    let w = report_w.as_raw_fd();
    // SAFETY: `helper` is live for the call and its size is passed. No
    // stack: the helper runs on a copy of ours, like fork; it runs only the
    // raw syscalls below on memory it copied from us (`child`, `tid`,
    // `offsets`, `PATH`, all live in this frame), and `_exit`s, never
    // returning into our frames.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &helper as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret == 0 {
        // SAFETY: in the helper: raw syscalls on the buffers named above.
        unsafe {
            let report = |code: i32, value: i32| -> ! {
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&code.to_ne_bytes());
                msg[4..].copy_from_slice(&value.to_ne_bytes());
                libc::syscall(libc::SYS_write, w, msg.as_ptr(), msg.len());
                libc::_exit(if code == 0 { 0 } else { 1 })
            };
            let errno = || *libc::__errno_location();
            if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWTIME) < 0 {
                report(TimensStep::Unshare as i32, errno());
            }
            let fd = libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                PATH.as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                report(TimensStep::Open as i32, errno());
            }
            let n = libc::syscall(libc::SYS_write, fd, offsets.as_ptr(), offsets.len());
            if n < 0 {
                report(TimensStep::Write as i32, errno());
            }
            if n as usize != offsets.len() {
                report(TimensStep::Write as i32, libc::EIO);
            }
            libc::syscall(libc::SYS_close, fd);
            let pid = libc::syscall(
                libc::SYS_clone3,
                &child as *const libc::clone_args,
                std::mem::size_of::<libc::clone_args>(),
            );
            if pid == 0 {
                // Or a helper killed before its report would leave our
                // read waiting on this copy of the write end.
                libc::syscall(libc::SYS_close, w);
                traced_child_body();
            }
            if pid < 0 {
                report(TimensStep::Clone as i32, errno());
            }
            report(0, pid as i32)
        }
    }
    drop(report_w);
    let helper_pid = check(ret).map_err(|e| (TimensStep::Helper, e))? as i32;
    let mut msg = [0u8; 8];
    let got = rustix::io::read(&report_r, &mut msg).map_err(io::Error::from);
    // The helper has written (or died) by the time its pipe end is closed.
    let _ = waitpid(helper_pid);
    match got {
        Ok(8) => {}
        Ok(_) => return Err((TimensStep::Report, io::ErrorKind::UnexpectedEof.into())),
        Err(e) => return Err((TimensStep::Report, e)),
    }
    let code = i32::from_ne_bytes(msg[..4].try_into().expect("4 bytes"));
    let value = i32::from_ne_bytes(msg[4..].try_into().expect("4 bytes"));
    if code != 0 {
        let step = TimensStep::from_code(code);
        return Err((step, io::Error::from_raw_os_error(value)));
    }
    Ok(TracedChild { pid: value })
}

/// `kill(pid, sig)`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::kill(pid, sig) } as libc::c_long).map(drop)
}

/// `tgkill(pid, tid, sig)`: a signal to one thread.
pub fn tgkill(pid: i32, tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) }).map(drop)
}

/// `pidfd_open(pid)` then `pidfd_getfd` of `fd`: copies another task's fd.
pub fn pidfd_getfd(pid: i32, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the result is a new fd nobody owns.
    let pidfd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: `pidfd` was just returned to us and is owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: integer arguments only; pidfd is live (borrowed above).
    let got =
        check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_fd().as_raw_fd(), fd, 0) })?;
    // SAFETY: `got` was just returned to us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(got as i32) })
}

/// `memfd_create(name, MFD_CLOEXEC)`.
pub fn memfd_create(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a NUL-terminated string live for the call.
    let fd =
        check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) } as libc::c_long)?;
    // SAFETY: `fd` was just returned to us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `kcmp(pid_a, pid_b, KCMP_FILE, fd_a, fd_b)`: whether fd `fd_a` of
/// `pid_a` and fd `fd_b` of `pid_b` are one open file description.
pub fn kcmp_file_between(pid_a: i32, pid_b: i32, fd_a: i32, fd_b: i32) -> io::Result<bool> {
    // SAFETY: integer arguments only; the kernel reads no memory of ours and
    // checks the pids, the fds and our ptrace rights over both tasks.
    let ret = check(unsafe { libc::syscall(libc::SYS_kcmp, pid_a, pid_b, 0, fd_a, fd_b) })?;
    Ok(ret == 0)
}

/// `KCMP_VM` (include/uapi/linux/kcmp.h): same address space.
pub const KCMP_VM: i32 = 1;
/// `KCMP_FILES`: same fd table.
pub const KCMP_FILES: i32 = 2;

/// `kcmp(pid_a, pid_b, kind, 0, 0)` for a kind that compares whole
/// resources (`KCMP_VM`, `KCMP_FILES`): whether the two tasks share it.
pub fn kcmp(pid_a: i32, pid_b: i32, kind: i32) -> io::Result<bool> {
    // SAFETY: integer arguments only; the kernel reads no memory of ours and
    // checks the pids and our ptrace rights over both tasks.
    let ret = check(unsafe { libc::syscall(libc::SYS_kcmp, pid_a, pid_b, kind, 0, 0) })?;
    Ok(ret == 0)
}

/// `getpgid(pid)`: 0 when the group's leader is in no pid namespace we
/// see (a container's init, seen from inside, has its group outside).
pub fn getpgid(pid: i32) -> io::Result<i32> {
    // SAFETY: integer argument only.
    check(unsafe { libc::getpgid(pid) }.into()).map(|g| g as i32)
}

/// `waitpid(pid, WNOHANG | __WALL)`: reaps `pid` if it is a child of ours
/// that has exited; whether it did.
pub fn reap_if_exited(pid: i32) -> io::Result<bool> {
    let mut status = 0;
    // SAFETY: `status` is a live c_int the kernel writes.
    let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
    check(ret.into()).map(|r| r == pid as libc::c_long)
}

/// `kcmp(pid, pid, KCMP_FILE, fd, fd)` of ourselves: whether kcmp exists.
pub fn kcmp_self_file(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let me = std::process::id();
    let raw = fd.as_raw_fd();
    // SAFETY: integer arguments only; the kernel reads no memory of ours.
    let ret = check(unsafe { libc::syscall(libc::SYS_kcmp, me, me, 0, raw, raw) })?;
    Ok(ret == 0)
}

/// `prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)`: the size of `struct prctl_mm_map`
/// the kernel expects (104 on x86_64), proving `PR_SET_MM_MAP` exists.
pub fn prctl_mm_map_size() -> io::Result<u32> {
    let mut size: u32 = 0;
    // SAFETY: the kernel writes one unsigned int through the pointer, which
    // points at `size`, live for the call.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            PR_SET_MM_MAP_SIZE,
            &mut size as *mut u32,
            0,
            0,
        )
    } as libc::c_long)?;
    Ok(size)
}

/// `UFFD_FEATURE_WP_ASYNC` (include/uapi/linux/userfaultfd.h).
pub const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;

/// Opens a userfaultfd and negotiates the API; returns the features the
/// kernel offers.
pub fn userfaultfd_features() -> io::Result<u64> {
    const UFFD_API: u64 = 0xAA;
    const UFFDIO_API: libc::c_ulong = 0xc018_aa3f; // _IOWR(0xAA, 0x3F, 24 bytes)
    const UFFD_USER_MODE_ONLY: libc::c_long = 1;
    let flags = libc::O_CLOEXEC as libc::c_long | UFFD_USER_MODE_ONLY;
    // SAFETY: integer arguments only; the result is a new fd nobody owns.
    let fd = check(unsafe { libc::syscall(libc::SYS_userfaultfd, flags) })?;
    // SAFETY: `fd` was just returned to us and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Asking for features 0 makes the kernel report all it offers.
    let mut api = [UFFD_API, 0u64, 0u64];
    // SAFETY: UFFDIO_API reads and writes a struct uffdio_api, three u64s,
    // which `api` is, live for the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, api.as_mut_ptr()) } as libc::c_long)?;
    Ok(api[1])
}

/// Runs one `PAGEMAP_SCAN` over a page of our own memory; success proves
/// the ioctl exists.
pub fn pagemap_scan_works() -> io::Result<()> {
    const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610; // _IOWR('f', 16, 96 bytes)
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    let file = std::fs::File::open("/proc/self/pagemap")?;
    let page = vec![1u8; 8192];
    let start = (page.as_ptr() as u64 + 4095) & !4095;
    let mut regions = [0u64; 3]; // one struct page_region
    let mut arg = [0u64; 12];
    arg[0] = 96; // size
    arg[2] = start;
    arg[3] = start + 4096;
    arg[5] = regions.as_mut_ptr() as u64;
    arg[6] = 1; // vec_len
    arg[9] = PAGE_IS_PRESENT; // category_mask
    arg[11] = PAGE_IS_PRESENT; // return_mask
                               // SAFETY: PAGEMAP_SCAN reads the 96-byte struct pm_scan_arg `arg` and
                               // writes at most vec_len (1) page_region structs (24 bytes) to
                               // `regions`; both live for the call. The scanned range is our own
                               // `page` buffer, which stays allocated.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN, arg.as_mut_ptr()) };
    check(ret as libc::c_long).map(drop)
}

// ---- File kinds (crate::files): calls rustix lacks. ----

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(fd)?;
    // SAFETY: every caller passes the return value of a syscall that has
    // just created an fd, checked non-negative above; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `kcmp(pid, pid, KCMP_FILE, a, b)`: whether fds `a` and `b` of `pid`
/// share one open file description.
pub fn kcmp_file(pid: i32, a: i32, b: i32) -> io::Result<bool> {
    // SAFETY: integer arguments only; the kernel reads no memory of ours.
    let ret = check(unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, 0, a, b) })?;
    Ok(ret == 0)
}

/// `open_by_handle_at(mount_fd, handle, flags)`: opens the file a
/// `struct file_handle` (type and bytes, as fdinfo shows them) names.
pub fn open_by_handle_at(
    mount_fd: BorrowedFd<'_>,
    handle_type: i32,
    handle: &[u8],
    flags: i32,
) -> io::Result<OwnedFd> {
    if handle.len() > 128 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // struct file_handle { u32 handle_bytes; int handle_type; u8 f_handle[]; }
    let mut buf = [0u32; 2 + 128 / 4];
    buf[0] = handle.len() as u32;
    buf[1] = handle_type as u32;
    let bytes: Vec<u8> = buf[..2]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .chain(handle.iter().copied())
        .chain(std::iter::repeat_n(0, 128 - handle.len()))
        .collect();
    // SAFETY: `bytes` is a struct file_handle of 8 + 128 bytes whose
    // handle_bytes (<= 128) says how much of f_handle the kernel reads; it
    // is live and unaliased for the call. The result is a new fd.
    owned(unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd.as_raw_fd(),
            bytes.as_ptr(),
            flags,
        )
    })
}

/// `signalfd4(-1, mask, flags)`: a new signalfd reading the signals of `mask`.
pub fn signalfd(mask: u64, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: the kernel reads 8 bytes (the size passed) from `mask`, a
    // local u64 live for the call; the result is a new fd.
    owned(unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const u64, 8usize, flags) })
}

/// `timerfd_create(clockid, flags)`.
pub fn timerfd_create(clockid: i32, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the result is a new fd.
    owned(unsafe { libc::timerfd_create(clockid, flags) }.into())
}

/// `timerfd_settime(fd, flags, {interval, value})`, times as (s, ns).
pub fn timerfd_settime(
    fd: BorrowedFd<'_>,
    flags: i32,
    interval: (u64, u64),
    value: (u64, u64),
) -> io::Result<()> {
    let ts = |(s, ns): (u64, u64)| libc::timespec {
        tv_sec: s as libc::time_t,
        tv_nsec: ns as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: ts(interval),
        it_value: ts(value),
    };
    // SAFETY: the kernel reads one itimerspec from `spec`, live for the
    // call; the old value pointer is null (not wanted).
    check(
        unsafe { libc::timerfd_settime(fd.as_raw_fd(), flags, &spec, std::ptr::null_mut()) }.into(),
    )
    .map(drop)
}

/// `ioctl(TFD_IOC_SET_TICKS)`: sets the expirations a timerfd has not
/// reported yet (CONFIG_CHECKPOINT_RESTORE).
pub fn timerfd_set_ticks(fd: BorrowedFd<'_>, ticks: u64) -> io::Result<()> {
    const TFD_IOC_SET_TICKS: libc::c_ulong = 0x4008_5400; // _IOW('T', 0, u64)
                                                          // SAFETY: the ioctl reads one u64 from the pointer, `ticks`, live for
                                                          // the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), TFD_IOC_SET_TICKS, &ticks as *const u64) }.into())
        .map(drop)
}

/// `getsockopt(fd, level, name)` of an int option.
pub fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut val: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let ptr = (&mut val as *mut libc::c_int).cast();
    // SAFETY: the kernel writes at most `len` (4) bytes to `val` and the
    // length to `len`, both locals live for the call.
    let ret = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, ptr, &mut len) };
    check(ret.into())?;
    Ok(val)
}

/// `setsockopt(fd, level, name, &val)` of an int option.
pub fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32, val: i32) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let ptr = (&val as *const libc::c_int).cast();
    // SAFETY: the kernel reads `len` (4) bytes from `val`, live for the call.
    let ret = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, ptr, len) };
    check(ret.into()).map(drop)
}

/// `clock_gettime(clockid)` as (seconds, nanoseconds).
pub fn clock_gettime(clockid: i32) -> io::Result<(u64, u64)> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the kernel writes one timespec to `ts`, a local live for the call.
    check(unsafe { libc::clock_gettime(clockid, &mut ts) }.into())?;
    Ok((ts.tv_sec as u64, ts.tv_nsec as u64))
}

/// `PTRACE_O_SUSPEND_SECCOMP` (include/uapi/linux/ptrace.h): the tracee's
/// seccomp filters do not apply while we trace it, so syscalls injected into
/// a filtered task run. Needs CAP_SYS_ADMIN and a tracer without seccomp.
pub const PTRACE_O_SUSPEND_SECCOMP: u32 = 1 << 21;
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
const PTRACE_SECCOMP_GET_METADATA: libc::c_uint = 0x420d;
/// `PTRACE_PEEKSIGINFO_SHARED`: peek the process-wide queue.
const PTRACE_PEEKSIGINFO_SHARED: u32 = 1;
/// Size of a `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;

/// `PTRACE_PEEKSIGINFO`: every signal pending on thread `tid` (`shared`:
/// on its process), with its siginfo, in queue order. Nothing is dequeued.
pub fn ptrace_peeksiginfo(tid: i32, shared: bool) -> io::Result<Vec<[u8; SIGINFO_SIZE]>> {
    const BATCH: usize = 32;
    let mut out = Vec::new();
    loop {
        let mut buf = vec![[0u8; SIGINFO_SIZE]; BATCH];
        // struct ptrace_peeksiginfo_args: u64 off, u32 flags, s32 nr.
        let mut args = [0u8; 16];
        args[..8].copy_from_slice(&(out.len() as u64).to_le_bytes());
        args[8..12]
            .copy_from_slice(&(if shared { PTRACE_PEEKSIGINFO_SHARED } else { 0 }).to_le_bytes());
        args[12..].copy_from_slice(&(BATCH as i32).to_le_bytes());
        // `addr` points at the 16-byte args struct (read only), `data` at
        // room for `nr` (BATCH) siginfos of 128 bytes, both live for the call.
        let n = ptrace(
            libc::PTRACE_PEEKSIGINFO,
            tid,
            args.as_ptr() as usize,
            buf.as_mut_ptr() as usize,
        )? as usize;
        buf.truncate(n.min(BATCH));
        out.extend(buf);
        if n < BATCH {
            return Ok(out);
        }
    }
}

/// `PTRACE_SECCOMP_GET_FILTER`: the BPF program of the `index`-th seccomp
/// filter of `tid` (0 = the newest), as raw 8-byte `sock_filter`s; `None`
/// past the oldest.
pub fn ptrace_seccomp_filter(tid: i32, index: usize) -> io::Result<Option<Vec<u64>>> {
    // With a null `data` the kernel only returns the instruction count.
    let n = match ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        r => r? as usize,
    };
    let mut insns = vec![0u64; n];
    // `data` points at room for `n` sock_filters (8 bytes each), the count
    // the kernel just reported for this filter, which cannot change: the
    // task is stopped and filters are immutable once installed.
    let got = ptrace(
        PTRACE_SECCOMP_GET_FILTER,
        tid,
        index,
        insns.as_mut_ptr() as usize,
    )?;
    insns.truncate(got as usize);
    Ok(Some(insns))
}

/// `PTRACE_SECCOMP_GET_METADATA`: the flags (`SECCOMP_FILTER_FLAG_LOG`) the
/// `index`-th filter of `tid` was installed with.
pub fn ptrace_seccomp_flags(tid: i32, index: usize) -> io::Result<u64> {
    // struct seccomp_metadata: u64 filter_off (in), u64 flags (out).
    let mut md = [index as u64, 0u64];
    // `addr` is the struct's size and `data` points at it, live for the call.
    ptrace(
        PTRACE_SECCOMP_GET_METADATA,
        tid,
        16,
        md.as_mut_ptr() as usize,
    )?;
    Ok(md[1])
}

/// `prlimit(pid, resource)`: `(soft, hard)`.
pub fn prlimit_get(pid: i32, resource: u32) -> io::Result<(u64, u64)> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the kernel writes one struct rlimit64 through the last
    // pointer, which points at `old`, live for the call; no new limit is
    // passed (null).
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            pid,
            resource,
            std::ptr::null::<libc::rlimit64>(),
            &mut old as *mut libc::rlimit64,
        )
    })?;
    Ok((old.rlim_cur, old.rlim_max))
}

/// `prlimit(pid, resource, {soft, hard})`.
pub fn prlimit_set(pid: i32, resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: the kernel reads one struct rlimit64 through the pointer to
    // `new`, live for the call; the old-limit pointer is null.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            pid,
            resource,
            &new as *const libc::rlimit64,
            std::ptr::null_mut::<libc::rlimit64>(),
        )
    })
    .map(drop)
}

/// `struct sched_attr` as `sched_getattr` fills it (`SCHED_ATTR_SIZE_VER1`,
/// 56 bytes): size, policy, flags, nice, priority, then the deadline
/// runtime, deadline and period, and the utilisation clamps.
pub type SchedAttr = [u8; 56];

/// `sched_getattr(tid)`.
pub fn sched_getattr(tid: i32) -> io::Result<SchedAttr> {
    let mut attr: SchedAttr = [0; 56];
    // SAFETY: the kernel writes at most `size` (56, passed) bytes through
    // the pointer, which points at `attr`, 56 bytes live for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            tid,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
            0,
        )
    })?;
    Ok(attr)
}

/// `sched_setattr(tid, attr)`.
pub fn sched_setattr(tid: i32, attr: &SchedAttr) -> io::Result<()> {
    // SAFETY: the kernel reads the struct's `size` field (the first u32,
    // 56 from sched_getattr, or it refuses with E2BIG/EINVAL) bytes from
    // `attr`, 56 bytes live for the call.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, tid, attr.as_ptr(), 0) }).map(drop)
}

/// `sched_getaffinity(tid)`: the CPU mask as 64-bit words, as long as the
/// kernel's (`nr_cpu_ids` bits rounded up).
pub fn sched_getaffinity(tid: i32) -> io::Result<Vec<u64>> {
    let mut mask = vec![0u64; 128]; // 8192 CPUs
                                    // SAFETY: the kernel writes at most the length passed (the size of
                                    // `mask` in bytes) into `mask`, live for the call; it returns the
                                    // number of bytes written.
    let n = check(unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            tid,
            mask.len() * 8,
            mask.as_mut_ptr(),
        )
    })?;
    mask.truncate((n as usize).div_ceil(8));
    Ok(mask)
}

/// `sched_setaffinity(tid, mask)`.
pub fn sched_setaffinity(tid: i32, mask: &[u64]) -> io::Result<()> {
    // SAFETY: the kernel reads the length passed (the size of `mask` in
    // bytes) from `mask`, live for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            tid,
            mask.len() * 8,
            mask.as_ptr(),
        )
    })
    .map(drop)
}

/// `IOPRIO_WHO_PROCESS`: an ioprio call names one thread.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// `ioprio_get(IOPRIO_WHO_PROCESS, tid)`.
pub fn ioprio_get(tid: i32) -> io::Result<u32> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid) }).map(|v| v as u32)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, tid, prio)`.
pub fn ioprio_set(tid: i32, prio: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, prio) }).map(drop)
}

// SysV IPC (crate::sysv). The calls act on the IPC namespace of the
// calling thread: the module runs them from a thread that joined the one
// it works on.

/// `SHM_RDONLY`, `SHM_REMAP`, `SHM_EXEC` (include/uapi/linux/shm.h).
pub const SHM_RDONLY: i32 = 0o10000;
/// Replace whatever is mapped at the address.
pub const SHM_REMAP: i32 = 0o40000;
/// Map executable.
pub const SHM_EXEC: i32 = 0o100000;
/// `SHM_LOCK`: keep the segment's pages in memory.
const SHM_LOCK: i32 = 11;
/// `MSG_COPY` (include/uapi/linux/msg.h): `msgrcv` copies message number
/// `msgtyp` of the queue without removing it (CONFIG_CHECKPOINT_RESTORE).
const MSG_COPY: i32 = 0o40000;
/// Offset of `shm_segsz` in the kernel's `struct shmid64_ds` on x86_64,
/// after the 48-byte `struct ipc64_perm`.
pub const SHMID_DS_SEGSZ_OFFSET: u64 = 48;

/// The `ipc_perm` of an object, as `IPC_STAT` reports it.
#[derive(Clone, Copy, Debug)]
pub struct IpcPerm {
    /// The key (0 = `IPC_PRIVATE`, or a removed segment still attached).
    pub key: i32,
    /// Owner.
    pub uid: u32,
    /// Owner's group.
    pub gid: u32,
    /// Creator.
    pub cuid: u32,
    /// Creator's group.
    pub cgid: u32,
    /// Permission bits and, for shm, `SHM_DEST` and `SHM_LOCKED`.
    pub mode: u16,
}

impl From<&libc::ipc_perm> for IpcPerm {
    fn from(p: &libc::ipc_perm) -> Self {
        IpcPerm {
            key: p.__key,
            uid: p.uid,
            gid: p.gid,
            cuid: p.cuid,
            cgid: p.cgid,
            mode: p.mode,
        }
    }
}

fn check_int(ret: libc::c_int) -> io::Result<i32> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `shmctl(IPC_STAT)`: the segment's permissions, size and attach count.
pub fn shm_stat(id: i32) -> io::Result<(IpcPerm, u64, u64)> {
    let mut ds = MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: `ds` is a writable shmid_ds, the buffer IPC_STAT fills (the
    // kernel's 64-bit layout on x86_64, which glibc's struct matches).
    check_int(unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: zero-initialised, then filled by the kernel: plain integers.
    let ds = unsafe { ds.assume_init() };
    Ok((
        IpcPerm::from(&ds.shm_perm),
        ds.shm_segsz as u64,
        ds.shm_nattch,
    ))
}

/// `shmget(key, size, flags)`.
pub fn shm_get(key: i32, size: u64, flags: i32) -> io::Result<i32> {
    // SAFETY: no pointers.
    check_int(unsafe { libc::shmget(key, size as usize, flags) })
}

/// `shmctl(IPC_SET)`: owner, group and permission bits.
pub fn shm_set(id: i32, uid: u32, gid: u32, mode: u16) -> io::Result<()> {
    let ds = MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: zero is a valid shmid_ds (integers only).
    let mut ds = unsafe { ds.assume_init() };
    (ds.shm_perm.uid, ds.shm_perm.gid, ds.shm_perm.mode) = (uid, gid, mode);
    // SAFETY: `ds` is a valid shmid_ds the kernel only reads.
    check_int(unsafe { libc::shmctl(id, libc::IPC_SET, &mut ds) }).map(drop)
}

/// `shmctl(IPC_RMID)`.
pub fn shm_rmid(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer.
    check_int(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// `shmctl(SHM_LOCK)`.
pub fn shm_lock(id: i32) -> io::Result<()> {
    // SAFETY: SHM_LOCK reads no buffer.
    check_int(unsafe { libc::shmctl(id, SHM_LOCK, std::ptr::null_mut()) }).map(drop)
}

/// A segment attached in our address space; detached on drop.
pub struct ShmAttach {
    addr: *mut u8,
    len: usize,
}

impl ShmAttach {
    /// `shmat(id, NULL, flags)`; `size` is the segment's size.
    pub fn new(id: i32, size: u64, read_only: bool) -> io::Result<Self> {
        let flags = if read_only { SHM_RDONLY } else { 0 };
        // SAFETY: the kernel picks a free address; nothing of ours is
        // there. The mapping is ours until `drop` detaches it.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
        if addr as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(ShmAttach {
            addr: addr.cast(),
            len: size as usize,
        })
    }

    /// Address of the mapping.
    pub fn addr(&self) -> u64 {
        self.addr as u64
    }

    /// The segment's bytes. Another process may write them meanwhile; the
    /// callers read objects of a frozen container.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes are mapped readable at `addr` while `self`
        // lives (shmat maps the whole segment); u8 has no invalid values.
        unsafe { std::slice::from_raw_parts(self.addr, self.len) }
    }

    /// The segment's bytes, writable (attached without `SHM_RDONLY`).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`; `&mut self` keeps this the only slice of ours.
        unsafe { std::slice::from_raw_parts_mut(self.addr, self.len) }
    }
}

impl Drop for ShmAttach {
    fn drop(&mut self) {
        // SAFETY: `addr` is the address shmat returned; no slice of it
        // outlives `self`.
        unsafe { libc::shmdt(self.addr.cast()) };
    }
}

/// `semctl(IPC_STAT)`: permissions and number of semaphores.
pub fn sem_stat(id: i32) -> io::Result<(IpcPerm, u64)> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: the fourth argument of IPC_STAT is a semid_ds pointer
    // (union semun's `buf`), writable.
    check_int(unsafe { libc::semctl(id, 0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: zeroed then filled by the kernel: integers only.
    let ds = unsafe { ds.assume_init() };
    Ok((IpcPerm::from(&ds.sem_perm), ds.sem_nsems))
}

/// `semctl(GETALL)`: the value of each of the `n` semaphores.
pub fn sem_getall(id: i32, n: usize) -> io::Result<Vec<u16>> {
    let mut v = vec![0u16; n];
    // SAFETY: GETALL writes `nsems` unsigned shorts to the array, and `v`
    // holds `n` = nsems of them.
    check_int(unsafe { libc::semctl(id, 0, libc::GETALL, v.as_mut_ptr()) })?;
    Ok(v)
}

/// `semctl(SETALL)`.
pub fn sem_setall(id: i32, values: &[u16]) -> io::Result<()> {
    // SAFETY: SETALL reads nsems unsigned shorts; the caller's set has
    // `values.len()` semaphores (it made it so).
    check_int(unsafe { libc::semctl(id, 0, libc::SETALL, values.as_ptr()) }).map(drop)
}

/// `semget(key, nsems, flags)`.
pub fn sem_get(key: i32, nsems: i32, flags: i32) -> io::Result<i32> {
    // SAFETY: no pointers.
    check_int(unsafe { libc::semget(key, nsems, flags) })
}

/// `semctl(IPC_SET)`.
pub fn sem_set(id: i32, uid: u32, gid: u32, mode: u16) -> io::Result<()> {
    let ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: zero is a valid semid_ds (integers only).
    let mut ds = unsafe { ds.assume_init() };
    (ds.sem_perm.uid, ds.sem_perm.gid, ds.sem_perm.mode) = (uid, gid, mode);
    // SAFETY: the kernel reads the semid_ds `buf` points to.
    check_int(unsafe { libc::semctl(id, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds) })
        .map(drop)
}

/// `semctl(IPC_RMID)`.
pub fn sem_rmid(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no argument.
    check_int(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(drop)
}

/// `msgctl(IPC_STAT)`: permissions, number of messages, `msg_qbytes`.
pub fn msg_stat(id: i32) -> io::Result<(IpcPerm, u64, u64)> {
    let mut ds = MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: `ds` is a writable msqid_ds, IPC_STAT's buffer.
    check_int(unsafe { libc::msgctl(id, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: zeroed then filled by the kernel: integers only.
    let ds = unsafe { ds.assume_init() };
    Ok((IpcPerm::from(&ds.msg_perm), ds.msg_qnum, ds.msg_qbytes))
}

/// `msgctl(IPC_SET)`: owner, group, permission bits and `msg_qbytes`.
pub fn msg_set(id: i32, uid: u32, gid: u32, mode: u16, qbytes: u64) -> io::Result<()> {
    let ds = MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: zero is a valid msqid_ds (integers only).
    let mut ds = unsafe { ds.assume_init() };
    (ds.msg_perm.uid, ds.msg_perm.gid, ds.msg_perm.mode) = (uid, gid, mode);
    ds.msg_qbytes = qbytes;
    // SAFETY: the kernel reads the msqid_ds.
    check_int(unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) }).map(drop)
}

/// `msgctl(IPC_RMID)`.
pub fn msg_rmid(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer.
    check_int(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// `msgget(key, flags)`.
pub fn msg_get(key: i32, flags: i32) -> io::Result<i32> {
    // SAFETY: no pointers.
    check_int(unsafe { libc::msgget(key, flags) })
}

/// Message number `index` of queue `id` (type and text), copied with
/// `MSG_COPY`: the queue keeps it. `max` bounds the text's size.
pub fn msg_copy(id: i32, index: u64, max: usize) -> io::Result<(i64, Vec<u8>)> {
    let mut buf = vec![0u8; 8 + max];
    // SAFETY: `buf` holds a `long mtype` and `max` bytes of text, which is
    // what msgrcv may write with msgsz = `max`.
    let n = unsafe {
        libc::msgrcv(
            id,
            buf.as_mut_ptr().cast(),
            max,
            index as libc::c_long,
            libc::IPC_NOWAIT | MSG_COPY,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mtype = i64::from_ne_bytes(buf[..8].try_into().expect("8 bytes"));
    buf.drain(..8);
    buf.truncate(n as usize);
    Ok((mtype, buf))
}

/// `msgsnd(id, {mtype, text}, IPC_NOWAIT)`.
pub fn msg_send(id: i32, mtype: i64, text: &[u8]) -> io::Result<()> {
    let mut buf = mtype.to_ne_bytes().to_vec();
    buf.extend_from_slice(text);
    // SAFETY: `buf` is a `long mtype` followed by `text.len()` bytes, the
    // msgsz given; the kernel only reads it.
    check_int(unsafe { libc::msgsnd(id, buf.as_ptr().cast(), text.len(), libc::IPC_NOWAIT) })
        .map(drop)
}

/// `unshare(CLONE_FS)`: the calling thread gets its own root, working
/// directory and umask, so a `chroot` there leaves the other threads alone.
pub fn unshare_fs() -> io::Result<()> {
    // SAFETY: CLONE_FS only copies the thread's fs_struct (root, cwd,
    // umask); the fd table and memory stay shared, so no fd or pointer of
    // another thread becomes invalid (the hazard `unshare_unsafe` warns of
    // is CLONE_FILES).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }
        .map_err(io::Error::from)
}
