//! System calls run inside a stopped tracee.
//!
//! The tracee's registers are set so that it sits on a `syscall`
//! instruction (found in its vdso, whose text is the kernel's and never
//! written by us), then `PTRACE_SYSCALL` runs it up to the syscall-exit
//! stop, where the result is read. No byte of the tracee's memory changes.
//! Each call costs two ptrace round trips (trap 4 in CHECKPOINT-NOTES.md):
//! fine per mapping or per signal, never per page.

use std::io;

use crate::sys::{self, WaitStatus};

/// An injected system call failed.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// ptrace or waitpid on the tracee failed.
    #[error("pid {pid}: ptrace while running syscall {nr}")]
    Ptrace {
        /// The tracee.
        pid: i32,
        /// The syscall number.
        nr: i64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tracee stopped for something other than our syscall.
    #[error("pid {pid}: unexpected {status:?} while running syscall {nr}")]
    Unexpected {
        /// The tracee.
        pid: i32,
        /// The syscall number.
        nr: i64,
        /// What waitpid said.
        status: WaitStatus,
    },
    /// The syscall itself failed in the tracee.
    #[error("pid {pid}: syscall {nr} failed in the task")]
    Failed {
        /// The tracee.
        pid: i32,
        /// The syscall number.
        nr: i64,
        /// The errno it returned.
        #[source]
        source: io::Error,
    },
}

/// Runs syscalls in `pid`, which must be in a ptrace stop with
/// `PTRACE_O_TRACESYSGOOD` set.
pub struct Injector {
    pid: i32,
    syscall_ip: u64,
    base: libc::user_regs_struct,
}

/// Finds the offset of a `syscall` instruction (`0f 05`) in vdso text.
/// Jumping straight to those two bytes runs a syscall even if they belong
/// to a longer instruction, and the syscall-exit stop comes before the
/// next instruction would be decoded.
pub fn find_syscall_insn(vdso: &[u8]) -> Option<u64> {
    vdso.windows(2)
        .position(|w| w == [0x0f, 0x05])
        .map(|p| p as u64)
}

impl Injector {
    /// Injects at `syscall_ip`, starting from `base` registers (segment
    /// registers and flags of the tracee).
    pub fn new(pid: i32, syscall_ip: u64, base: libc::user_regs_struct) -> Self {
        Injector {
            pid,
            syscall_ip,
            base,
        }
    }

    /// The tracee.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Address of the `syscall` instruction used.
    pub fn syscall_ip(&self) -> u64 {
        self.syscall_ip
    }

    /// Moves the `syscall` instruction used (after the vdso moved).
    pub fn set_syscall_ip(&mut self, ip: u64) {
        self.syscall_ip = ip;
    }

    /// Runs syscall `nr` with `args` in the tracee; returns its result or
    /// the errno it failed with.
    pub fn syscall(&self, nr: i64, args: [u64; 6]) -> Result<u64, InjectError> {
        let (pid, ptrace_err) = (self.pid, |source| InjectError::Ptrace {
            pid: self.pid,
            nr,
            source,
        });
        let mut r = self.base;
        r.rip = self.syscall_ip;
        r.rax = nr as u64;
        // No syscall in progress: the kernel must not "restart" anything
        // when the tracee resumes from the stop it is in.
        r.orig_rax = u64::MAX;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
        sys::ptrace_setregs(pid, &r).map_err(ptrace_err)?;
        for _ in 0..2 {
            // Entry stop, then exit stop.
            sys::ptrace_syscall(pid, 0).map_err(ptrace_err)?;
            match sys::waitpid(pid).map_err(ptrace_err)? {
                WaitStatus::Stopped { sig, event: 0 } if sig == libc::SIGTRAP | 0x80 => {}
                status => return Err(InjectError::Unexpected { pid, nr, status }),
            }
        }
        let ret = sys::ptrace_getregs(pid).map_err(ptrace_err)?.rax as i64;
        if (-4095..0).contains(&ret) {
            let source = io::Error::from_raw_os_error(-ret as i32);
            return Err(InjectError::Failed { pid, nr, source });
        }
        Ok(ret as u64)
    }
}

/// Most stops [`resume`] lets pass before it gives up.
const RESUME_STOPS: usize = 64;

/// Sets `regs` on stopped thread `tid` of `pid` exactly as they were dumped
/// or seized (an interrupted syscall's `-ERESTART*` in rax included) and
/// detaches it from inside the kernel's signal path, so the kernel itself
/// finishes the interrupted syscall as if the thread had never stopped:
/// restarted, or `EINTR` for a handler of a signal that arrives meanwhile.
///
/// Restarting by hand (rip back on the `syscall`, rax = its number) loses
/// that signal's wakeup: a handler that runs before the thread resumes
/// returns onto the `syscall` instruction, and `pause()` sleeps for ever.
/// So the thread is sent a SIGSTOP, continued, and detached with signal 0
/// from the signal-delivery-stop it reports (the SIGSTOP is dropped);
/// signals that come first are delivered on the way.
pub fn resume(pid: i32, tid: i32, regs: &libc::user_regs_struct) -> io::Result<()> {
    sys::ptrace_setregs(tid, regs)?;
    sys::tgkill(pid, tid, libc::SIGSTOP)?;
    sys::ptrace_cont(tid, 0)?;
    for _ in 0..RESUME_STOPS {
        match sys::waitpid(tid)? {
            WaitStatus::Stopped { sig, event: 0 } if sig == libc::SIGSTOP => {
                return sys::ptrace_detach(tid, 0);
            }
            // Another signal: the thread takes it (its handler frame is
            // built now, with the kernel's restart rules), then our
            // SIGSTOP stops it again.
            WaitStatus::Stopped { sig, event: 0 } => sys::ptrace_cont(tid, sig)?,
            WaitStatus::Stopped { .. } => sys::ptrace_cont(tid, 0)?,
            _ => return Err(io::Error::from_raw_os_error(libc::ESRCH)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("thread {tid} did not reach its SIGSTOP in {RESUME_STOPS} stops"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_syscall_bytes_are_found() {
        assert_eq!(find_syscall_insn(&[0x90, 0x0f, 0x05, 0xc3]), Some(1));
        assert_eq!(find_syscall_insn(&[0x0f, 0x90, 0x05]), None);
    }
}
