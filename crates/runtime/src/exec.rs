//! `corral exec`: a new process in a live container.
//!
//! The parent opens a pidfd of the container's init, points its own
//! `pid_for_children` at the container's pid namespace, and clones the new
//! process straight into the container's unified cgroup
//! (`CLONE_INTO_CGROUP`). The child joins the v1 cgroups itself (writing
//! `0` to each `tasks` file, before it leaves the host's user namespace),
//! then every other namespace of the init at once with `setns(pidfd, …)`,
//! and applies the process attributes exactly as the init does
//! ([`crate::init::prepare_process`]) before `execve`.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use rustix::fs::{Mode, OFlags};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::container::{
    errno, forward_until_exit, hook_state, io, status_of, write_pid_file, Error, RunOutcome,
};
use crate::init::{self, tag};
use crate::seccomp;
use crate::state::{self, Status, Store};
use crate::sys::{self, Forked, SigSet};

/// What `exec` runs and how.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Container id.
    pub id: String,
    /// The process to start: from `--process`, or (`None`) built from the
    /// container's own process and `flags` ([`process_from_flags`]).
    pub process: Option<Process>,
    /// The command line's overrides, used when `process` is `None`.
    pub flags: ExecFlags,
    /// `--detach`: return once the process runs.
    pub detach: bool,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--ignore-paused`.
    pub ignore_paused: bool,
}

/// The command-line overrides of `exec` (runc's flags).
#[derive(Clone, Debug, Default)]
pub struct ExecFlags {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `--tty`.
    pub tty: bool,
    /// `--cwd`.
    pub cwd: Option<PathBuf>,
    /// `--env`, appended to the container's environment.
    pub env: Vec<String>,
    /// `--user uid[:gid]`.
    pub user: Option<String>,
    /// `--additional-gids`.
    pub additional_gids: Vec<u32>,
    /// `--cap`, added to the bounding, effective and permitted sets (and
    /// ambient when the container has inheritable capabilities).
    pub caps: Vec<String>,
    /// `--no-new-privs`.
    pub no_new_privs: bool,
    /// `--apparmor`.
    pub apparmor: Option<String>,
    /// `--process-label`.
    pub process_label: Option<String>,
}

/// Builds the process to execute as runc does: the container's own process
/// section with the flags applied on top.
pub fn process_from_flags(base: &Spec, flags: &ExecFlags) -> Result<Process, Error> {
    let bad = |what: String| Error::Unsupported(what);
    let mut p = base.process().clone().unwrap_or_default();
    if flags.args.is_empty() {
        return Err(bad("exec: no command given (and no --process)".into()));
    }
    p.set_args(Some(flags.args.clone()));
    p.set_terminal(Some(flags.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(flags.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &flags.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut user = p.user().clone();
    if let Some(u) = &flags.user {
        let (uid, gid) = match u.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (u.as_str(), None),
        };
        user.set_uid(
            uid.parse()
                .map_err(|_| bad(format!("exec: --user {u:?}: not uid[:gid]")))?,
        );
        if let Some(gid) = gid {
            user.set_gid(
                gid.parse()
                    .map_err(|_| bad(format!("exec: --user {u:?}: not uid[:gid]")))?,
            );
        }
    }
    if !flags.additional_gids.is_empty() {
        user.set_additional_gids(Some(flags.additional_gids.clone()));
    }
    p.set_user(user);
    if !flags.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &flags.caps {
            let cap: oci_spec::runtime::Capability = name
                .trim_start_matches("CAP_")
                .parse()
                .map_err(|_| bad(format!("exec: --cap {name:?}: unknown capability")))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            if caps.inheritable().is_some() {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if flags.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &flags.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &flags.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// Reads a `--process` file (an OCI process JSON).
pub fn load_process(path: &Path) -> Result<Process, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Io {
        what: format!("read {}", path.display()),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(de)
        .map_err(|e| Error::Unsupported(format!("{}: {}: {}", path.display(), e.path(), e.inner())))
}

/// The namespaces the container has (new or joined), except pid, as
/// `setns` flags.
fn join_flags(spec: &Spec) -> (u32, bool) {
    let mut flags = 0;
    let mut pid = false;
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        flags |= match ns.typ() {
            LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Network => libc::CLONE_NEWNET,
            LinuxNamespaceType::User => libc::CLONE_NEWUSER,
            LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
            LinuxNamespaceType::Time => 0x80, // CLONE_NEWTIME
            LinuxNamespaceType::Pid => {
                pid = true;
                0
            }
        } as u32;
    }
    (flags, pid)
}

/// `corral exec`.
pub fn exec(store: &Store, opts: &ExecOptions) -> Result<RunOutcome, Error> {
    let dir = store.open(&opts.id)?;
    let st = dir.load()?;
    let status = status_of(&dir, &st);
    drop(dir);
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::Status {
                id: opts.id.clone(),
                status,
                what: "cannot exec in a paused container (use --ignore-paused)",
            })
        }
        _ => {
            return Err(Error::Status {
                id: opts.id.clone(),
                status,
                what: "cannot exec in a container that is not running",
            })
        }
    }
    // One read of the state serves both the checks and the process.
    let process = match &opts.process {
        Some(p) => p.clone(),
        None => process_from_flags(&st.config, &opts.flags)?,
    };
    let wants_tty = process.terminal().unwrap_or(false);
    if wants_tty && opts.console_socket.is_none() && opts.detach {
        return Err(Error::Unsupported(
            "exec --tty --detach needs --console-socket for the terminal".into(),
        ));
    }
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Unsupported("exec: the process has no args".into()));
    }
    // With a terminal and no socket, corral is the console itself.
    let (console, own_end) = match &opts.console_socket {
        Some(path) => (
            Some(
                std::os::unix::net::UnixStream::connect(path)
                    .map_err(io(format!("connect to console socket {}", path.display())))?,
            ),
            None,
        ),
        None if wants_tty => {
            let pair = crate::tty::ConsolePair::new().map_err(io("create console socketpair"))?;
            (Some(pair.child), Some(pair.ours))
        }
        None => (None, None),
    };
    let init_pid = rustix::process::Pid::from_raw(st.pid)
        .ok_or_else(|| Error::Unsupported("no pid recorded".into()))?;
    let pidfd = rustix::process::pidfd_open(init_pid, rustix::process::PidfdFlags::empty())
        .map_err(errno(format!("open pid {}", st.pid)))?;
    if !state::is_alive(st.pid, st.start_time) {
        return Err(Error::Status {
            id: opts.id.clone(),
            status: Status::Stopped,
            what: "cannot exec in a container that is not running",
        });
    }
    let (ns_flags, pidns) = join_flags(&st.config);
    let seccomp_profile = st.config.linux().as_ref().and_then(|l| l.seccomp().clone());
    if let Some(profile) = &seccomp_profile {
        // Compiled (or read from the cache) here, before the clone, so the
        // child inherits the program; a profile that fails is reported by
        // the child, which compiles it again.
        let _ = seccomp::check(profile);
    }
    let state_json = hook_state(&st, Status::Running);
    let userns = ns_flags & libc::CLONE_NEWUSER as u32 != 0;
    let (into_cgroup, v1_tasks) = match &st.cgroup {
        Some(cg) => (cg.unified_dir()?, cg.v1_self_attach_files()?),
        None => (None, Vec::new()),
    };
    let (parent_end, child_end) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(errno("create sync socketpair"))?;
    // Our own pid namespace for children, to return to after the clone.
    let own_pidns = if pidns {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let own = rustix::fs::open("/proc/self/ns/pid_for_children", flags, Mode::empty())
            .map_err(errno("open own pid namespace"))?;
        rustix::thread::move_into_thread_name_spaces(
            pidfd.as_fd(),
            rustix::thread::ThreadNameSpaceType::from_bits_retain(libc::CLONE_NEWPID as u32),
        )
        .map_err(errno(format!("join the pid namespace of pid {}", st.pid)))?;
        Some(own)
    } else {
        None
    };
    let old_mask = SigSet::full().block().map_err(io("block signals"))?;
    let forked = sys::clone3(0, into_cgroup.as_ref().map(|f| f.as_fd()));
    // Back to our own pid namespace for children, in the parent only.
    if let (Some(own), Ok(Forked::Parent { .. })) = (&own_pidns, &forked) {
        let _ = rustix::thread::move_into_link_name_space(own.as_fd(), None);
    }
    let (pid, child_pidfd) = match forked {
        Err(e) => {
            let _ = old_mask.set_mask();
            return Err(io("clone the exec process")(e));
        }
        Ok(Forked::Child) => child_main(Child {
            pidfd: pidfd.as_fd(),
            ns_flags,
            userns,
            v1_tasks: v1_tasks
                .iter()
                .map(|(p, f)| (p.as_path(), f.as_fd()))
                .collect(),
            process: &process,
            console: console.as_ref().map(|c| c.as_fd()),
            sync: child_end.as_fd(),
            preserve_fds: opts.preserve_fds,
            old_mask: &old_mask,
            seccomp: seccomp_profile.as_ref(),
            state: &state_json,
        }),
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
    };
    drop(child_end);
    drop(console);
    if let Err(e) = crate::failpoint::hit("exec.after_clone") {
        // The process is ours until it runs: take it along.
        crate::container::kill_and_reap(pid, &child_pidfd);
        let _ = old_mask.set_mask();
        return Err(e.into());
    }
    let started = match init::recv(parent_end.as_fd()) {
        Ok(None) => Ok(()),
        Ok(Some((tag::ERROR, m))) => Err(Error::Exec(String::from_utf8_lossy(&m).into_owned())),
        Ok(Some(_)) => Err(Error::Exec(
            "unexpected message from the exec process".into(),
        )),
        Err(e) => Err(io("sync with the exec process")(e)),
    };
    if let Err(e) = started {
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::empty(),
        );
        let _ = old_mask.set_mask();
        return Err(e);
    }
    tracing::info!(container_id = %opts.id, pid, "exec started");
    seccomp::persist();
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    if opts.detach {
        let _ = old_mask.set_mask();
        return Ok(RunOutcome::Detached);
    }
    let pidfd_child = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).expect("clone returned a positive pid"),
        rustix::process::PidfdFlags::empty(),
    )
    .map_err(errno("open the exec process"))?;
    let code = match own_end.map(|c| crate::tty::recv_master(c.as_fd())) {
        Some(Ok(master)) => crate::tty::proxy_until_exit(pid, &pidfd_child, master),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "no terminal from the exec process");
            forward_until_exit(pid, &pidfd_child)
        }
        None => forward_until_exit(pid, &pidfd_child),
    };
    let _ = old_mask.set_mask();
    Ok(RunOutcome::Exited(code))
}

struct Child<'a> {
    pidfd: BorrowedFd<'a>,
    ns_flags: u32,
    userns: bool,
    v1_tasks: Vec<(&'a Path, BorrowedFd<'a>)>,
    process: &'a Process,
    console: Option<BorrowedFd<'a>>,
    sync: BorrowedFd<'a>,
    preserve_fds: u32,
    old_mask: &'a SigSet,
    seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
    state: &'a [u8],
}

fn child_main(c: Child<'_>) -> ! {
    let sync = c.sync;
    // The container's seccomp filter applies to exec'd processes too,
    // loaded as the last step before execve (or early, as in the init).
    let err = match child_setup(&c) {
        Ok((prepared, Some(filter))) => prepared.exec_with(c.preserve_fds, c.old_mask, || {
            filter.load().map_err(|e| e.to_string())
        }),
        Ok((prepared, None)) => prepared.exec(c.preserve_fds, c.old_mask),
        Err(e) => e,
    };
    let _ = init::send(sync, tag::ERROR, err.as_bytes());
    sys::exit_now(1)
}

fn child_setup(c: &Child<'_>) -> Result<(init::Prepared, Option<seccomp::Filter>), String> {
    // v1 cgroups first, while we are still host root (the kernel's check).
    for (path, tasks) in &c.v1_tasks {
        rustix::io::write(tasks, b"0")
            .map_err(|e| format!("join cgroup {}: {e}", path.display()))?;
    }
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("set non-dumpable: {e}"))?;
    // Built, and a notify agent connected, while host paths are visible.
    let mut filter = seccomp::prepare(c.seccomp, c.process, c.state).map_err(|e| e.to_string())?;
    if c.ns_flags != 0 {
        rustix::thread::move_into_thread_name_spaces(
            c.pidfd,
            rustix::thread::ThreadNameSpaceType::from_bits_retain(c.ns_flags),
        )
        .map_err(|e| format!("join the container's namespaces: {e}"))?;
    }
    crate::failpoint::hit("exec.after_setns").map_err(|e| e.to_string())?;
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open the container's root: {e}"))?;
    if let Some(console) = c.console {
        init::setup_console(root.as_fd(), console, c.process, false)?;
    }
    if let Some(f) = filter.take_if(|f| f.load_early()) {
        f.load().map_err(|e| e.to_string())?;
    }
    let prepared = init::prepare_process(root.as_fd(), c.process, c.userns)?;
    drop(root);
    Ok((prepared, filter))
}
