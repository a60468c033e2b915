//! The container's init before `execve`: the child `clone3` made. It joins
//! and finishes namespaces, builds the rootfs, applies the process
//! attributes, reports ready, waits for `start`, and executes the user's
//! program.
//!
//! It talks to `corral create`/`run` over a `SOCK_SEQPACKET` socketpair, one
//! message per step (tag byte + payload):
//!
//! ```text
//! parent -> init   G <pid>          ids mapped, cgroup joined: go on (our pid in
//!                                   the runtime's namespace, for the OCI state)
//! init -> parent   H                mounts done: run createRuntime hooks now
//! parent -> init   C                hooks done: continue
//! init -> parent   R                ready, waiting for start
//! parent -> init   S                start (run mode; create mode waits on exec.fifo)
//! init -> parent   E <message>      failed; the init exits 1
//! (EOF)                             execve succeeded (the socket is close-on-exec)
//! ```

use std::convert::Infallible;
use std::ffi::CString;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags};
use rustix::net::{RecvFlags, SendFlags};

use crate::rootfs::{self, Context, Kind};
use crate::sys::{self, SigSet};
use crate::{failpoint, hooks, process, seccomp};

/// Sync tags (see the module doc).
pub mod tag {
    /// Go on (parent to init).
    pub const GO: u8 = b'G';
    /// Ready for createRuntime hooks (init to parent).
    pub const HOOKS: u8 = b'H';
    /// Continue after hooks (parent to init).
    pub const CONTINUE: u8 = b'C';
    /// Ready, waiting for start (init to parent).
    pub const READY: u8 = b'R';
    /// Start (parent to init).
    pub const START: u8 = b'S';
    /// Error with message (init to parent).
    pub const ERROR: u8 = b'E';
}

/// Sends one message.
pub fn send(fd: BorrowedFd<'_>, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(payload.len() + 1);
    buf.push(tag);
    buf.extend_from_slice(payload);
    rustix::net::send(fd, &buf, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives one message; `None` at EOF.
pub fn recv(fd: BorrowedFd<'_>) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match rustix::net::recv(fd, &mut buf, RecvFlags::empty()) {
            Ok((0, _)) => return Ok(None),
            Ok((n, _)) => {
                buf.truncate(n);
                let tag = buf[0];
                buf.remove(0);
                return Ok(Some((tag, buf)));
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Everything the init needs, borrowed from the parent's memory (the child
/// is a copy of it).
pub struct InitArgs<'a> {
    /// The container id.
    pub id: &'a str,
    /// The spec.
    pub spec: &'a Spec,
    /// Absolute rootfs path.
    pub rootfs: &'a Path,
    /// Absolute bundle path.
    pub bundle: &'a Path,
    /// The init's end of the sync socketpair.
    pub sync: BorrowedFd<'a>,
    /// The parent's end, to close in the child.
    pub parent_end: BorrowedFd<'a>,
    /// The parent's locked state directory: closed first thing, so that a
    /// killed `create` leaves no lock behind in a live init.
    pub state_dir: BorrowedFd<'a>,
    /// The exec FIFO (create mode) or `None` (run mode: wait for `S`).
    pub fifo: Option<BorrowedFd<'a>>,
    /// The connected console socket, when the process has a terminal.
    pub console: Option<BorrowedFd<'a>>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// The container's cgroup directories (for a cgroup mount).
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    /// The v1 `tasks` files of the container's cgroup: the init joins by
    /// writing `0` (itself) to each.
    pub cgroup_tasks: Vec<(&'a Path, BorrowedFd<'a>)>,
    /// Per spec mount, the user namespace of an idmapped mount.
    pub idmaps: Vec<Option<BorrowedFd<'a>>>,
    /// The signal mask to restore before `execve`.
    pub old_mask: &'a SigSet,
    /// The parent has createRuntime/prestart hooks to run mid-setup.
    pub runtime_hooks: bool,
    /// Restore from a checkpoint: once the environment is built, take the
    /// restore's files and stop for it instead of executing the process
    /// ([`crate::checkpoint`]).
    pub restore: bool,
    /// A restore's clocks: the new time namespace's offsets make them go
    /// on from there (config.json's `timeOffsets` are for a fresh start).
    pub restore_time_ns: Option<&'a corral_checkpoint::timens::TimeNsClocks>,
}

/// The init's entry point: never returns.
pub fn main(args: InitArgs<'_>) -> ! {
    let sync = args.sync;
    match run(args) {
        Ok(never) => match never {},
        Err(err) => {
            let _ = send(sync, tag::ERROR, err.as_bytes());
            sys::exit_now(1)
        }
    }
}

/// Formats an error with its chain of causes on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

fn step<E: std::error::Error>(r: Result<(), E>) -> Result<(), String> {
    r.map_err(|e| chain(&e))
}

fn io_step(what: &str) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn expect(sync: BorrowedFd<'_>, want: u8) -> Result<Vec<u8>, String> {
    match recv(sync) {
        Ok(Some((t, payload))) if t == want => Ok(payload),
        Ok(Some((t, _))) => Err(format!("unexpected sync message {:?}", t as char)),
        Ok(None) => Err("the runtime went away during setup".into()),
        Err(e) => Err(format!("read sync socket: {e}")),
    }
}

fn run(a: InitArgs<'_>) -> Result<Infallible, String> {
    // Our copy of the parent's end stays open until execve (it is
    // close-on-exec); a dying parent is noticed through the death signal.
    let _ = a.parent_end;
    // Our copy of the state directory fd shares the parent's open file
    // description and with it the flock: were `create` killed after we
    // clear the death signal, the lock would outlive it here, and every
    // later command on the container would wait for it forever.
    sys::close_in_child(a.state_dir);
    // If the runtime dies during setup, so do we (cleared once ready).
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| io_step("set parent death signal")(e.into()))?;
    // Join the v1 cgroups first, while our euid is still host root (the
    // kernel's permission check for moving a task), and before anything is
    // charged to the runtime's cgroup.
    for (path, tasks) in &a.cgroup_tasks {
        rustix::io::write(tasks, b"0")
            .map_err(|e| io_step(&format!("join cgroup {}", path.display()))(e.into()))?;
    }
    let go = expect(a.sync, tag::GO)?;
    let spec = a.spec;
    // The parent sends our pid (in its namespace); the rest of the state we
    // have in our copy of its memory.
    let host_pid: i32 = std::str::from_utf8(&go)
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or("bad sync message: no pid")?;
    let state = crate::container::state_json(
        a.id,
        host_pid,
        a.bundle,
        &spec.annotations().clone().unwrap_or_default(),
        crate::state::Status::Creating,
    );
    let linux = spec.linux().as_ref().ok_or("config.json: linux: missing")?;
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let new_ns = |t: LinuxNamespaceType| {
        namespaces
            .iter()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User);

    join_namespaces(&namespaces)?;
    if new_ns(LinuxNamespaceType::User) {
        // Become root of the new user namespace (the parent wrote the maps).
        sys::setresgid(0).map_err(io_step(
            "become root in the user namespace (gid 0 unmapped?)",
        ))?;
        sys::setresuid(0).map_err(io_step(
            "become root in the user namespace (uid 0 unmapped?)",
        ))?;
    }
    if new_ns(LinuxNamespaceType::Cgroup) {
        // Now that the parent placed us in the container's cgroup, a new
        // cgroup namespace is rooted there.
        sys::unshare_namespace(libc::CLONE_NEWCGROUP)
            .map_err(io_step("create cgroup namespace"))?;
    }
    if new_ns(LinuxNamespaceType::Time) {
        // The uid change into a user namespace made us non-dumpable, which
        // gives our /proc files to host root; we need to write one of them.
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
            .map_err(|e| io_step("set dumpable")(e.into()))?;
        enter_time_namespace(spec, a.restore_time_ns)?;
    }
    // CVE-2019-5736: until execve replaces it, this process is corral;
    // non-dumpable, no process of the container can open /proc/PID/exe or
    // its memory. execve resets the flag for the user's program. Set only
    // now: a non-dumpable process's /proc files belong to host root, which
    // a new user namespace may not map, and the time namespace offsets
    // above are written through them; no container process exists yet.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| io_step("set non-dumpable")(e.into()))?;
    if !a.no_new_keyring {
        let name = CString::new(format!("_ses.{}", a.id)).map_err(|_| "id contains NUL")?;
        match sys::join_session_keyring(&name) {
            Ok(()) => {}
            // No keyrings in this kernel or namespace: runc goes on too.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
                ) => {}
            Err(e) => return Err(io_step("join session keyring")(e)),
        }
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes())
            .map_err(|e| io_step(&format!("set hostname {h:?}"))(e.into()))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        rustix::system::setdomainname(d.as_bytes())
            .map_err(|e| io_step(&format!("set domainname {d:?}"))(e.into()))?;
    }

    let ctx = Context {
        rootfs: a.rootfs,
        bundle: a.bundle,
        userns,
        netns: new_ns(LinuxNamespaceType::Network),
        cgroup_dirs: a.cgroup_dirs.clone(),
        idmaps: a.idmaps.clone(),
    };
    let process = spec
        .process()
        .as_ref()
        .ok_or("config.json: process: missing")?;
    let root = if new_ns(LinuxNamespaceType::Mount)
        || namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Mount)
    {
        let root = rootfs::prepare_root(spec, &ctx).map_err(|e| chain(&e))?;
        step(rootfs::mount_all(root.as_fd(), spec, &ctx))?;
        let dev_is_bound = spec.mounts().iter().flatten().any(|m| {
            m.destination() == Path::new("/dev")
                && m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
        });
        if !dev_is_bound {
            step(rootfs::setup_dev(root.as_fd(), spec, &ctx))?;
        }
        failpoint::hit("init.after_mounts").map_err(|e| e.to_string())?;
        Some(root)
    } else {
        None
    };
    let root_fd = match &root {
        Some(r) => r.as_fd(),
        None => {
            return Err("a mount namespace is required (linux.namespaces has no \"mount\")".into())
        }
    };
    if let Some(console) = a.console {
        setup_console(root_fd, console, process, true)?;
    }
    // The working directory is created if missing, inside the rootfs.
    step(rootfs::ensure(root_fd, process.cwd(), Kind::Dir).map(drop))?;

    if a.runtime_hooks {
        send(a.sync, tag::HOOKS, b"").map_err(io_step("sync"))?;
        expect(a.sync, tag::CONTINUE)?;
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        let state = container_view(&state, "creating");
        step(hooks::run_hooks("createContainer", &h, &state))?;
    }
    // Built, and the agent's socket connected, while host paths are visible.
    // A restored process brings its own filter (and the agent is not ours
    // to connect to twice).
    let mut filter = if a.restore {
        None
    } else {
        seccomp::prepare(linux.seccomp().as_ref(), process, &state).map_err(|e| chain(&e))?
    };
    step(rootfs::switch_root(root_fd, a.rootfs, a.no_pivot))?;
    step(rootfs::write_sysctls(root_fd, spec))?;
    step(rootfs::mask_paths(root_fd, spec))?;
    step(rootfs::readonly_paths(root_fd, spec))?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        step(rootfs::make_root_readonly(root_fd, a.rootfs))?;
    }

    if let Some(p) = linux.personality() {
        let persona = match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        sys::personality(persona).map_err(io_step("set personality"))?;
    }
    if a.restore {
        // config.json's rlimits to start from (the image's, when it has
        // them, are set by the restore). Still root with every capability:
        // the restore's injected calls (clone3 with set_tid, PR_SET_MM_MAP)
        // need them; the process's own credentials, no_new_privs and
        // seccomp filters come from its image, set last.
        step(process::apply_limits(process))?;
        drop(root);
        return Err(crate::checkpoint::stop_for_restore(a.sync));
    }
    // Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter:
    // a process that will lack it loads it before its user is switched.
    if let Some(f) = filter.take_if(|f| f.load_early()) {
        f.load().map_err(|e| chain(&e))?;
    }
    let prepared = prepare_process(root_fd, process, userns)?;
    drop(root);
    failpoint::hit("init.before_ready").map_err(|e| e.to_string())?;
    let clear_death_signal = || {
        rustix::process::set_parent_process_death_signal(None)
            .map_err(|e| io_step("clear parent death signal")(e.into()))
    };
    match a.fifo {
        Some(fifo) => {
            // `create` exits once we are ready; we wait for `start`.
            clear_death_signal()?;
            send(a.sync, tag::READY, b"").map_err(io_step("sync"))?;
            wait_fifo(fifo)?;
        }
        None => {
            // `run` stays until we start: should it die before, so do we.
            send(a.sync, tag::READY, b"").map_err(io_step("sync"))?;
            expect(a.sync, tag::START)?;
            clear_death_signal()?;
        }
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        let state = container_view(&state, "created");
        step(hooks::run_hooks("startContainer", &h, &state))?;
    }
    // The filter goes on last, so that the runtime's own calls are not filtered.
    let load = || filter.map_or(Ok(()), |f| f.load().map_err(|e| chain(&e)));
    Err(prepared.exec_with(a.preserve_fds, a.old_mask, load))
}

/// The user's program, ready to execute: everything about the process is
/// set but what `execve` itself changes.
pub struct Prepared {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// Applies the process attributes in the container's namespaces and root:
/// limits, cwd (checked to be inside the root), user and capabilities, LSM
/// labels, no_new_privs; finds the program. Shared by the init and `exec`.
pub fn prepare_process(
    root: BorrowedFd<'_>,
    process: &oci_spec::runtime::Process,
    userns: bool,
) -> Result<Prepared, String> {
    step(process::apply_limits(process))?;
    rustix::process::chdir(process.cwd())
        .map_err(|e| io_step(&format!("chdir to cwd {}", process.cwd().display()))(e.into()))?;
    // CVE-2024-21626: a cwd outside the root reads back without its leading
    // "/" (or fails); refuse to run there.
    let cwd = rustix::process::getcwd(Vec::new()).map_err(|e| io_step("getcwd")(e.into()))?;
    if !cwd.as_bytes().starts_with(b"/") {
        return Err(format!(
            "cwd {} is outside the container's root",
            process.cwd().display()
        ));
    }
    step(process::switch_user(process, userns))?;
    let program = process::find_program(process).map_err(|e| chain(&e))?;
    let (argv, envp) = process::exec_args(process).map_err(|e| chain(&e))?;
    set_exec_labels(root, process)?;
    if process.no_new_privileges().unwrap_or(false) {
        rustix::thread::set_no_new_privs(true)
            .map_err(|e| io_step("set no_new_privs")(e.into()))?;
    }
    Ok(Prepared {
        program,
        argv,
        envp,
    })
}

impl Prepared {
    /// Marks every fd but stdio and the `preserve_fds` after them
    /// close-on-exec (CVE-2024-21626), restores the signal mask and
    /// executes the program; returns only the error.
    pub fn exec(&self, preserve_fds: u32, mask: &SigSet) -> String {
        self.exec_with(preserve_fds, mask, || Ok(()))
    }

    /// As [`Prepared::exec`], calling `last` (the seccomp filter's load)
    /// right before `execve`.
    pub fn exec_with(
        &self,
        preserve_fds: u32,
        mask: &SigSet,
        last: impl FnOnce() -> Result<(), String>,
    ) -> String {
        if let Err(e) = sys::cloexec_from(3 + preserve_fds) {
            return format!("mark fds close-on-exec: {e}");
        }
        for fd in 3..3 + preserve_fds {
            sys::inherit_fd(fd as i32);
        }
        sys::reset_signal_dispositions();
        if let Err(e) = mask.set_mask() {
            return format!("restore signal mask: {e}");
        }
        if let Err(e) = last() {
            return e;
        }
        let err = sys::execve(&self.program, &self.argv, &self.envp);
        format!("exec {:?}: {err}", self.program)
    }
}

/// The state JSON for a hook run in the container's namespaces: the given
/// status, and the pid as the container sees it (the spec's rule for such
/// hooks; 1 in a new pid namespace).
fn container_view(state: &[u8], status: &str) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(state) else {
        return state.to_vec();
    };
    v["status"] = status.into();
    v["pid"] = rustix::process::getpid().as_raw_nonzero().get().into();
    serde_json::to_vec(&v).unwrap_or_else(|_| state.to_vec())
}

/// Asks the LSMs to switch to the spec's AppArmor profile and SELinux label
/// at `execve` (validation refused them when the LSM is absent). Written
/// through the container's /proc, checked to be procfs.
fn set_exec_labels(
    root: BorrowedFd<'_>,
    process: &oci_spec::runtime::Process,
) -> Result<(), String> {
    let profile = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty());
    if let Some(profile) = profile {
        let path = Path::new("/proc/thread-self/attr/apparmor/exec");
        step(rootfs::write_procfs(
            root,
            path,
            format!("exec {profile}").as_bytes(),
        ))?;
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        let path = Path::new("/proc/thread-self/attr/exec");
        step(rootfs::write_procfs(root, path, label.as_bytes()))?;
    }
    Ok(())
}

/// Joins the namespaces given by path, the user namespace first so that
/// the others are joined with its privileges.
fn join_namespaces(namespaces: &[oci_spec::runtime::LinuxNamespace]) -> Result<(), String> {
    let mut ordered: Vec<_> = namespaces
        .iter()
        .filter(|n| n.path().is_some() && n.typ() != LinuxNamespaceType::Pid)
        .collect();
    ordered.sort_by_key(|n| n.typ() != LinuxNamespaceType::User);
    for ns in ordered {
        let path = ns
            .path()
            .as_ref()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new(""));
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(
            |e| io_step(&format!("open {} namespace {}", ns.typ(), path.display()))(e.into()),
        )?;
        rustix::thread::move_into_link_name_space(fd.as_fd(), None).map_err(|e| {
            io_step(&format!("join {} namespace {}", ns.typ(), path.display()))(e.into())
        })?;
    }
    Ok(())
}

/// A new time namespace with the spec's offsets, or for a restore with
/// offsets that continue the image's clocks (`restored`; computed here,
/// in the namespace we make it from, as late as we can): unshare makes it
/// for our children, the offsets are written while nobody is in it, then
/// we enter.
fn enter_time_namespace(
    spec: &Spec,
    restored: Option<&corral_checkpoint::timens::TimeNsClocks>,
) -> Result<(), String> {
    let text = match restored {
        Some(clocks) => corral_checkpoint::timens::Offsets::now(clocks)
            .map_err(io_step("compute time namespace offsets for the restore"))?
            .to_proc_text(),
        None => spec_time_offsets(spec)?,
    };
    sys::unshare_namespace(libc::CLONE_NEWTIME).map_err(io_step("create time namespace"))?;
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text)
            .map_err(io_step("write time namespace offsets"))?;
    }
    let ns = rustix::fs::open(
        "/proc/self/ns/time_for_children",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_step("open time namespace")(e.into()))?;
    rustix::thread::move_into_link_name_space(ns.as_fd(), None)
        .map_err(|e| io_step("enter time namespace")(e.into()))
}

/// config.json's `linux.timeOffsets` as /proc/PID/timens_offsets takes
/// them (empty for none).
fn spec_time_offsets(spec: &Spec) -> Result<String, String> {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    let mut text = String::new();
    for (clock, off) in &offsets {
        let name = match clock.as_str() {
            "monotonic" | "boottime" => clock.as_str(),
            other => {
                return Err(format!(
                    "config.json: linux.timeOffsets.{other}: unknown clock"
                ))
            }
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    Ok(text)
}

/// Opens a pty in the container's devpts, sends the master to the console
/// socket (runc's protocol: the fd in SCM_RIGHTS, its name as payload), and
/// makes the slave our controlling terminal, stdio and, for the init
/// (`bind_console`), /dev/console.
pub(crate) fn setup_console(
    root: BorrowedFd<'_>,
    socket: BorrowedFd<'_>,
    process: &oci_spec::runtime::Process,
    bind_console: bool,
) -> Result<(), String> {
    let ptmx = rootfs::open_in_root(
        root,
        Path::new("/dev/pts/ptmx"),
        OFlags::RDWR | OFlags::NOCTTY,
    )
    .map_err(|e| io_step("open /dev/pts/ptmx in the container")(e.into()))?;
    rustix::pty::unlockpt(&ptmx).map_err(|e| io_step("unlockpt")(e.into()))?;
    let name = rustix::pty::ptsname(&ptmx, Vec::new()).map_err(|e| io_step("ptsname")(e.into()))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &ptmx,
        rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY,
    )
    .map_err(|e| io_step("open pty slave")(e.into()))?;
    if let Some(size) = process.console_size() {
        sys::set_window_size(slave.as_fd(), size.height() as u16, size.width() as u16)
            .map_err(io_step("set console size"))?;
    }
    send_fd(socket, ptmx.as_fd(), name.as_bytes())
        .map_err(io_step("send pty master to the console socket"))?;
    drop(ptmx);
    sys::setsid().map_err(io_step("setsid"))?;
    sys::set_controlling_terminal(slave.as_fd()).map_err(io_step("set controlling terminal"))?;
    for target in 0..3 {
        sys::dup_onto(&slave, target).map_err(io_step("make the pty stdio"))?;
    }
    if !bind_console {
        return Ok(());
    }
    let console =
        rootfs::ensure(root, Path::new("/dev/console"), Kind::File).map_err(|e| chain(&e))?;
    let tree = rustix::mount::open_tree(
        slave.as_fd(),
        "",
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
            | rustix::mount::OpenTreeFlags::AT_EMPTY_PATH,
    )
    .map_err(|e| io_step("clone pty for /dev/console")(e.into()))?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        console.as_fd(),
        "",
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
            | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| io_step("bind pty on /dev/console")(e.into()))
}

/// Sends `fd` over the unix socket with `payload` as the message body.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &[u8]) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage};
    let fds = [fd];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    cmsg.push(SendAncillaryMessage::ScmRights(&fds));
    let iov = [std::io::IoSlice::new(payload)];
    rustix::net::sendmsg(socket, &iov, &mut cmsg, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Blocks until `start` writes a byte to the exec FIFO.
fn wait_fifo(fifo: BorrowedFd<'_>) -> Result<(), String> {
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::readv(fifo, &mut [IoSliceMut::new(&mut byte)]) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err("exec fifo closed".into()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io_step("read exec fifo")(e.into())),
        }
    }
}
