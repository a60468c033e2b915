//! CVE-2019-5736: the container must never be able to write corral's binary.
//!
//! Every process corral puts into a container (the init, an `exec`'d
//! process) is a clone of corral until its `execve`, so its /proc/PID/exe
//! names corral's binary. Being non-dumpable until then (init.rs, exec.rs)
//! keeps the container from opening that link, but not from the second
//! half of the attack: an image whose program is a script starting with
//! `#!/proc/self/exe` makes the kernel resolve the link in the exec'ing
//! process and run corral's binary again, inside the container, as a fresh
//! dumpable process. The container opens its /proc/PID/exe, kills it, and
//! reopens the fd through /proc/self/fd for writing: the host's binary.
//!
//! So `create`, `run` and `exec` first re-execute corral from a detached,
//! read-only bind mount of its own binary ([`reexec_read_only`]): the exe
//! link of every process they make then points into that mount, where an
//! open for writing fails with EROFS. No copy is made (runc's memfd clone
//! costs the binary's size per command); the mount has no path and lives
//! as long as a process executes from it.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

use rustix::fs::{Mode, OFlags, StatVfsMountFlags};
use rustix::mount::{MountAttrFlags, OpenTreeFlags};

use crate::sys;

/// Re-executing corral from a read-only mount of its binary failed.
#[derive(Debug, thiserror::Error)]
#[error("protect the runtime binary (CVE-2019-5736): {step}")]
pub struct SelfExeError {
    /// The step that failed.
    step: &'static str,
    /// The cause.
    #[source]
    source: io::Error,
}

fn step(step: &'static str) -> impl FnOnce(io::Error) -> SelfExeError {
    move |source| SelfExeError { step, source }
}

/// Replaces this process with the same corral, same arguments and
/// environment, executed from a detached read-only bind mount of its
/// binary; returns `Ok` at once when the binary already sits on a
/// read-only mount (after the re-exec, or a read-only /usr). Without the
/// privilege to clone a mount (rootless), it logs and returns `Ok`: the
/// binary is then usually not the user's to write. Call it first thing,
/// before any thread or fd exists that the re-exec would lose.
pub fn reexec_read_only() -> Result<(), SelfExeError> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| step("open /proc/self/exe")(e.into()))?;
    let vfs = rustix::fs::fstatvfs(&exe).map_err(|e| step("statvfs /proc/self/exe")(e.into()))?;
    if vfs.f_flag.contains(StatVfsMountFlags::RDONLY) {
        return Ok(());
    }
    let tree = match rustix::mount::open_tree(
        &exe,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    ) {
        Ok(tree) => tree,
        Err(rustix::io::Errno::PERM) => {
            tracing::debug!("no privilege to clone a mount: the runtime binary stays writable");
            return Ok(());
        }
        Err(e) => return Err(step("clone a mount of the binary")(e.into())),
    };
    sys::mount_setattr(
        tree.as_fd(),
        false,
        MountAttrFlags::MOUNT_ATTR_RDONLY.bits().into(),
        0,
        0,
        None,
    )
    .map_err(step("make the mount read-only"))?;
    let to_c = |bytes: Vec<u8>| {
        CString::new(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let argv = std::env::args_os()
        .map(|a| to_c(a.into_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(step("copy the arguments"))?;
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            to_c(kv)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(step("copy the environment"))?;
    Err(step("execute the read-only binary")(sys::execveat_empty(
        tree.as_fd(),
        &argv,
        &envp,
    )))
}
