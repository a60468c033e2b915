//! The crate's raw system calls: `bpf()` for the v2 device program and
//! `kill()` for signals rustix cannot name (real-time ones). Everything else
//! goes through rustix.
#![allow(unsafe_code)]

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

use crate::v2::devices::Insn;

// include/uapi/linux/bpf.h; libc lacks most of these.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;

/// The prefix of `union bpf_attr` that BPF_PROG_LOAD reads.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The prefix of `union bpf_attr` for BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The prefix of `union bpf_attr` for BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32, // explicit, so no uninitialized padding reaches the kernel
}

/// The prefix of `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, size_of(attr))`.
///
/// # Safety
///
/// `attr` must be a command's `bpf_attr` prefix whose pointer fields are 0 or
/// point at memory valid, for the kernel's reads and writes, for as long as
/// the call runs.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed value of exactly the
    // size we pass; the caller vouches for the pointers inside it. The kernel
    // zero-extends a short attr, so a prefix of `union bpf_attr` is valid.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<T>()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of an fd the kernel just returned to us.
fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: `fd` was returned by a successful bpf() call a moment ago, is
    // open, and nothing else in the process has seen it, so we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX) // a BorrowedFd is never negative
}

/// `BPF_PROG_LOAD` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program. On failure
/// the load is repeated with the verifier log on, and the log is returned
/// beside the first errno.
pub(crate) fn bpf_prog_load_cgroup_device(insns: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    let license = c"Apache-2.0";
    let insn_cnt = u32::try_from(insns.len())
        .map_err(|_| (io::Error::from(io::ErrorKind::InvalidInput), String::new()))?;
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..13].copy_from_slice(b"corral_device");
    // SAFETY: `insns` and `license` outlive the call and hold `insn_cnt`
    // `struct bpf_insn`s (Insn is repr(C), 8 bytes) and a NUL-terminated
    // string; there is no log buffer (log_size 0).
    let first = match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => return owned_fd(fd).map_err(|e| (e, String::new())),
        Err(e) => e,
    };
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = u32::try_from(log.len()).unwrap_or(0);
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above, and `log` is a writable buffer of `log_size` bytes
    // that lives until after the call.
    if let Ok(fd) = unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        return owned_fd(fd).map_err(|e| (e, String::new()));
    }
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    Err((
        first,
        String::from_utf8_lossy(&log[..end]).trim().to_owned(),
    ))
}

/// `BPF_PROG_ATTACH` with `BPF_F_ALLOW_MULTI`, and `BPF_F_REPLACE` of
/// `replace` when given.
pub(crate) fn bpf_prog_attach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    replace: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI | if replace.is_some() { BPF_F_REPLACE } else { 0 },
        replace_bpf_fd: replace.map_or(0, fd_u32),
    };
    // SAFETY: the attr holds only integers (fds borrowed for the call).
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// `BPF_PROG_DETACH` of `prog`.
pub(crate) fn bpf_prog_detach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: the attr holds only integers (fds borrowed for the call).
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// `BPF_PROG_QUERY`: ids of the device programs attached to `cgroup` itself.
pub(crate) fn bpf_prog_query_cgroup_device(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: fd_u32(cgroup),
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: `prog_ids` points at `prog_cnt` writable u32s in `ids`, which
    // lives until after the call; the kernel writes at most that many.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    ids.truncate(usize::try_from(attr.prog_cnt).unwrap_or(0).min(64));
    Ok(ids)
}

/// `BPF_PROG_GET_FD_BY_ID`.
pub(crate) fn bpf_prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: the attr holds only integers.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }?;
    owned_fd(fd)
}

/// `kill(pid, signal)`.
pub(crate) fn kill(pid: i32, signal: i32) -> io::Result<()> {
    if pid <= 0 {
        // 0 and negative pids name process groups or everything: never ours.
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: kill takes two integers and touches no memory of ours; a pid
    // <= 0 (a group, or every process) was refused above.
    if unsafe { libc::kill(pid, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
