//! Container lifecycle as the runtime's parent process sees it: create,
//! start, run, state, kill, delete, list.
//!
//! `create` validates the bundle, claims the state directory, creates the
//! cgroup, clones the init into its namespaces, feeds it the sync protocol
//! of [`crate::init`], and leaves it blocked on the exec FIFO. Any failure on
//! the way kills the init and removes the cgroup and the directory (the
//! [`Cleanup`] guard), so nothing is left behind.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use serde::Serialize;

use crate::failpoint;
use crate::hooks::{self, HookError};
use crate::init::{self, tag, InitArgs};
use crate::spec::{self, SpecError, OCI_VERSION};
use crate::state::{self, ContainerDir, StateError, StateFile, Status, Store};
use crate::sys::{self, Forked, SigSet};

/// A lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The cgroup could not be set up or removed.
    #[error(transparent)]
    Cgroup(#[from] corral_cgroups::Error),
    /// A hook failed.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// The container's init reported a failure during setup.
    #[error("container init: {0}")]
    Init(String),
    /// An exec'd process failed before its program ran.
    #[error("{0}")]
    Exec(String),
    /// The operation does not fit the container's status.
    #[error("container {id:?} is {status}: {what}")]
    Status {
        /// The container.
        id: String,
        /// Its status.
        status: Status,
        /// What cannot be done.
        what: &'static str,
    },
    /// A system call or file operation of the runtime failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not supported (yet).
    #[error("{0}")]
    Unsupported(String),
    /// A checkpoint or restore of the container's processes failed.
    #[error("{what}")]
    Checkpoint {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A fail point fired (tests only: the `failpoints` feature).
    #[error(transparent)]
    FailPoint(#[from] crate::failpoint::Injected),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

pub(crate) fn errno(what: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> Error {
    let what = what.into();
    move |e| Error::Io {
        what,
        source: e.into(),
    }
}

/// Options of `create` and `run`.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--syslog`: a per-container /dev/log (also by annotation).
    pub syslog: bool,
    /// `restore`: the init stops for a checkpoint restore instead of
    /// executing the process ([`crate::checkpoint`]).
    pub restore: bool,
    /// `restore` of processes that had a time namespace of their own: the
    /// clocks they saw at the checkpoint, which the init's new time
    /// namespace continues (its offsets come from these, not from
    /// config.json's `timeOffsets`).
    pub restore_time_ns: Option<corral_checkpoint::timens::TimeNsClocks>,
}

/// The state JSON `state` prints: the OCI fields plus runc's extras.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    /// Spec version.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Status.
    pub status: Status,
    /// Init pid (0 once stopped).
    pub pid: i32,
    /// Bundle path.
    pub bundle: PathBuf,
    /// Rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Owner's user name.
    pub owner: String,
    /// Annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The container's status read from the kernel: the recorded pid counts
/// only while it is the same process (start time) and not a zombie.
pub fn status_of(dir: &ContainerDir, st: &StateFile) -> Status {
    if !state::is_alive(st.pid, st.start_time) {
        return Status::Stopped;
    }
    if dir.init_waits_on_fifo() {
        return Status::Created;
    }
    if st
        .cgroup
        .as_ref()
        .is_some_and(|c| c.is_frozen().unwrap_or(false))
    {
        return Status::Paused;
    }
    Status::Running
}

fn oci_state(st: &StateFile, status: Status) -> OciState {
    OciState {
        oci_version: OCI_VERSION.into(),
        id: st.id.clone(),
        status,
        pid: if status == Status::Stopped { 0 } else { st.pid },
        bundle: st.bundle.clone(),
        rootfs: st.rootfs.clone(),
        created: st.created.clone(),
        owner: st.owner.clone(),
        annotations: st.annotations.clone(),
    }
}

/// The JSON hooks get on stdin (the OCI state, without runc's extras).
pub(crate) fn hook_state(st: &StateFile, status: Status) -> Vec<u8> {
    state_json(&st.id, st.pid, &st.bundle, &st.annotations, status)
}

/// The OCI state as JSON, from its parts: the init builds its own from its
/// copy of the spec, so the sync channel carries only the pid.
pub(crate) fn state_json(
    id: &str,
    pid: i32,
    bundle: &Path,
    annotations: &HashMap<String, String>,
    status: Status,
) -> Vec<u8> {
    let s = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    });
    s.to_string().into_bytes()
}

/// SIGKILLs our child `pid` through its pidfd and reaps it.
pub(crate) fn kill_and_reap(pid: i32, pidfd: &OwnedFd) {
    let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
    let child = rustix::process::Pid::from_raw(pid);
    let _ = rustix::process::waitpid(child, rustix::process::WaitOptions::empty());
}

/// Undoes a half-made container when dropped without [`Cleanup::disarm`].
struct Cleanup {
    dir: Option<ContainerDir>,
    cgroup: Option<Cgroup>,
    child: Option<(i32, OwnedFd)>,
}

impl Cleanup {
    fn disarm(mut self) -> ContainerDir {
        self.cgroup = None;
        self.child = None;
        self.dir
            .take()
            .expect("cleanup holds the dir until disarmed")
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((pid, pidfd)) = self.child.take() {
            kill_and_reap(pid, &pidfd);
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.destroy() {
                tracing::warn!(error = %e, "cleanup: cgroup removal failed");
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// A container whose init is set up and waits to be started.
pub struct Created {
    pub(crate) dir: ContainerDir,
    pub(crate) state: StateFile,
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) sync: OwnedFd,
    pub(crate) old_mask: SigSet,
    pub(crate) console: Option<UnixStream>,
}

fn cgroups_path(spec: &Spec, id: &str) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| id.to_owned())
}

fn clone_flags(spec: &Spec) -> u64 {
    let mut flags = 0u64;
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        if ns.path().is_some() {
            continue;
        }
        flags |= match ns.typ() {
            LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Network => libc::CLONE_NEWNET,
            LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
            LinuxNamespaceType::User => libc::CLONE_NEWUSER,
            // Made by the init once it sits in its cgroup / with offsets set.
            LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time => 0,
        } as u64;
    }
    flags
}

type IdMaps<'a> = Option<&'a Vec<oci_spec::runtime::LinuxIdMapping>>;

fn write_id_maps(pid: i32, uid: IdMaps<'_>, gid: IdMaps<'_>) -> Result<(), Error> {
    let fmt = |maps: &[oci_spec::runtime::LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let rootless = !rustix::process::geteuid().is_root();
    for (file, maps, own) in [
        ("uid_map", uid, rustix::process::geteuid().as_raw()),
        ("gid_map", gid, rustix::process::getegid().as_raw()),
    ] {
        let Some(maps) = maps else { continue };
        // Unprivileged, the kernel takes only our own id, once; other
        // ranges go through the setuid helpers (Debian's uidmap), which
        // check /etc/subuid and /etc/subgid.
        let only_own = maps.len() == 1 && maps[0].host_id() == own && maps[0].size() == 1;
        if rootless && !only_own {
            let helper = if file == "uid_map" {
                "newuidmap"
            } else {
                "newgidmap"
            };
            let mut cmd = std::process::Command::new(helper);
            cmd.arg(pid.to_string());
            for m in maps {
                cmd.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
            }
            let out = cmd
                .output()
                .map_err(io(format!("run {helper} (apt-get install uidmap)")))?;
            if !out.status.success() {
                return Err(Error::Unsupported(format!(
                    "{helper} {pid}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            continue;
        }
        if rootless && file == "gid_map" {
            // An unprivileged gid_map needs setgroups denied first.
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").map_err(io(format!("write {path}")))?;
        }
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, fmt(maps)).map_err(io(format!("write {path}")))?;
    }
    Ok(())
}

/// A user namespace with the given mappings, for an idmapped mount: a
/// child cloned into a new user namespace holds it while we write its maps
/// and open it, then exits.
fn idmap_userns(uid: IdMaps<'_>, gid: IdMaps<'_>) -> Result<OwnedFd, Error> {
    let (rd, wr) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(errno("create pipe"))?;
    let forked = sys::clone3(libc::CLONE_NEWUSER as u64, None)
        .map_err(io("clone an idmap user namespace"))?;
    let pid = match forked {
        Forked::Child => {
            drop(wr);
            // Wait until the parent has what it needs (EOF), then go.
            let _ = rustix::io::read(&rd, &mut [0u8; 1]);
            sys::exit_now(0)
        }
        Forked::Parent { pid, .. } => pid,
    };
    drop(rd);
    let result = write_id_maps(pid, uid, gid).and_then(|()| {
        let path = format!("/proc/{pid}/ns/user");
        let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC;
        rustix::fs::open(&path, flags, rustix::fs::Mode::empty())
            .map_err(errno(format!("open {path}")))
    });
    drop(wr);
    let child = rustix::process::Pid::from_raw(pid);
    let _ = rustix::process::waitpid(child, rustix::process::WaitOptions::empty());
    result
}

/// One user namespace per mount that has `uidMappings`/`gidMappings`.
fn idmap_namespaces(spec: &Spec) -> Result<Vec<Option<OwnedFd>>, Error> {
    spec.mounts()
        .iter()
        .flatten()
        .map(|m| {
            if m.uid_mappings().is_none() && m.gid_mappings().is_none() {
                return Ok(None);
            }
            idmap_userns(m.uid_mappings().as_ref(), m.gid_mappings().as_ref()).map(Some)
        })
        .collect()
}

/// `(controller name, host dir)` of each hierarchy the cgroup lives in, for
/// the container's cgroup mount.
fn cgroup_dirs(h: &Hierarchy, cg: &Cgroup) -> Vec<(String, PathBuf)> {
    let mut dirs = Vec::new();
    for m in h.v1_mounts() {
        if let Some(dir) = cg
            .paths()
            .into_iter()
            .find(|p| p.starts_with(&m.mount_point) && p.parent().is_some())
        {
            let name = m
                .mount_point
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dirs.push((name, dir));
        }
    }
    if let Some(u) = h.unified() {
        if let Some(dir) = cg
            .paths()
            .into_iter()
            .find(|p| p.starts_with(&u.mount_point))
        {
            dirs.push((String::new(), dir));
        }
    }
    dirs
}

/// The spec's device rules followed by what every container needs, as runc
/// does: mknod of any node (access stays governed by the rules), the
/// default devices, /dev/pts and /dev/ptmx. A `linux.devices` entry gets a
/// node, not access: that takes a rule in `linux.resources.devices`.
fn with_default_devices(
    res: &oci_spec::runtime::LinuxResources,
) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType as T};
    let rule = |typ: T, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access.to_string());
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("all fields set")
    };
    let Some(user_rules) = res.devices() else {
        return res.clone();
    };
    let mut rules = user_rules.clone();
    rules.push(rule(T::C, None, None, "m"));
    rules.push(rule(T::B, None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule(T::C, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(T::C, Some(136), None, "rwm"));
    let mut res = res.clone();
    res.set_devices(Some(rules));
    res
}

/// Creates a container and leaves its init waiting for start. With
/// `use_fifo` false (run), the init waits for a message instead.
/// With `own_console`, a process that wants a terminal and has no
/// `--console-socket` sends its pty master to corral itself (foreground
/// `run`), which then proxies it ([`crate::tty`]).
pub fn create_container(
    store: &Store,
    opts: &CreateOptions,
    use_fifo: bool,
    own_console: bool,
) -> Result<Created, Error> {
    crate::id::validate_id(&opts.id).map_err(StateError::from)?;
    let bundle = std::path::absolute(&opts.bundle)
        .map_err(io(format!("bundle {}", opts.bundle.display())))?;
    let mut spec = spec::load(&bundle)?;
    let annotations = spec.annotations().clone().unwrap_or_default();
    let syslog_settings = crate::syslog::wanted(&annotations, opts.syslog);
    if syslog_settings.is_some() {
        let root = std::path::absolute(store.root()).map_err(io("state root"))?;
        add_dev_log_mount(&mut spec, &root.join(&opts.id).join(crate::syslog::SOCKET));
    }
    let rootfs = spec::validate(&spec, &bundle)?;
    let process = spec.process().as_ref().expect("validated");
    let wants_tty = process.terminal().unwrap_or(false);
    let (console, own_end) = match &opts.console_socket {
        Some(path) => (
            Some(
                UnixStream::connect(path)
                    .map_err(io(format!("connect to console socket {}", path.display())))?,
            ),
            None,
        ),
        None if wants_tty && own_console => {
            let pair = crate::tty::ConsolePair::new().map_err(io("create console socketpair"))?;
            (Some(pair.child), Some(pair.ours))
        }
        None if wants_tty => {
            return Err(Error::Unsupported(
                "process.terminal is true, but a detached container needs --console-socket for its terminal".into(),
            ))
        }
        None => (None, None),
    };
    let hierarchy = Hierarchy::detect()?;
    let cgroup = Cgroup::new(&hierarchy, &cgroups_path(&spec, &opts.id))?;

    let dir = store.create(&opts.id)?;
    let syslog_sock = match &syslog_settings {
        Some(_) => match crate::syslog::bind(&dir.path) {
            Ok((sock, _)) => Some(sock),
            Err(e) => {
                let _ = dir.remove();
                return Err(io("bind the container's syslog socket")(e));
            }
        },
        None => None,
    };
    let mut cleanup = Cleanup {
        dir: Some(dir),
        cgroup: None,
        child: None,
    };
    let dir = cleanup.dir.as_ref().expect("just set");
    let fifo = if use_fifo {
        dir.make_fifo()?;
        Some(dir.open_fifo_for_init()?)
    } else {
        None
    };
    let mut st = StateFile {
        id: opts.id.clone(),
        pid: 0,
        start_time: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: state::rfc3339(std::time::SystemTime::now()),
        owner: String::new(),
        annotations,
        cgroup: Some(cgroup.clone()),
        config: spec.clone(),
    };
    // Saved before anything else exists (pid 0: "stopped"), so that a
    // `create` killed from here on leaves a container `delete` can read and
    // clean up, its cgroup path included.
    dir.save(&st)?;
    failpoint::hit("create.after_state_dir")?;
    let cgroup = match cgroup.create() {
        Ok(()) => Some(cgroup),
        // Rootless, without a delegated cgroup: go on without one, as runc
        // does, and say so.
        Err(e) if !rustix::process::geteuid().is_root() && e.is_permission_denied() => {
            tracing::warn!(error = %e, "rootless: no cgroup (not delegated); resource limits are not applied");
            None
        }
        Err(e) => return Err(e.into()),
    };
    cleanup.cgroup = cgroup.clone();
    if let (Some(cgroup), Some(res)) = (
        &cgroup,
        spec.linux().as_ref().and_then(|l| l.resources().as_ref()),
    ) {
        cgroup.apply(&with_default_devices(res))?;
    }
    failpoint::hit("create.after_cgroup")?;

    st.cgroup = cgroup.clone();
    let hooks = spec.hooks().clone().unwrap_or_default();
    let runtime_hooks: Vec<_> = hooks
        .prestart()
        .iter()
        .flatten()
        .chain(hooks.create_runtime().iter().flatten())
        .cloned()
        .collect();

    let (parent_end, child_end) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(errno("create sync socketpair"))?;
    let old_mask = SigSet::full().block().map_err(io("block signals"))?;
    // The unified part by CLONE_INTO_CGROUP, the v1 parts by the init
    // writing "0" to each `tasks` file: neither waits for the RCU grace
    // period that moving a pid through cgroup.procs costs.
    let joins = cgroup
        .as_ref()
        .map(|cg| Ok::<_, corral_cgroups::Error>((cg.unified_dir()?, cg.v1_self_attach_files()?)));
    let (into_cgroup, v1_tasks) = match joins {
        None => (None, Vec::new()),
        Some(Ok(j)) => j,
        Some(Err(e)) => {
            let _ = old_mask.set_mask();
            return Err(e.into());
        }
    };
    let joined_pidns = join_pid_namespace(&spec)?;
    let cgroup_dirs = cgroup
        .as_ref()
        .map(|cg| cgroup_dirs(&hierarchy, cg))
        .unwrap_or_default();
    let idmaps = match idmap_namespaces(&spec) {
        Ok(v) => v,
        Err(e) => {
            let _ = old_mask.set_mask();
            return Err(e);
        }
    };
    let forked = sys::clone3(clone_flags(&spec), into_cgroup.as_ref().map(|f| f.as_fd()));
    // Back to our own pid namespace for children — in the parent only: the
    // init's own children (its hooks) belong in the container's.
    if let (Some(own), Ok(Forked::Parent { .. })) = (&joined_pidns, &forked) {
        let _ = rustix::thread::move_into_link_name_space(own.as_fd(), None);
    }
    let (pid, pidfd) = match forked {
        Err(e) => {
            let _ = old_mask.set_mask();
            return Err(io("clone the container's init")(e));
        }
        Ok(Forked::Child) => init::main(InitArgs {
            id: &opts.id,
            spec: &spec,
            rootfs: &rootfs,
            bundle: &bundle,
            sync: child_end.as_fd(),
            parent_end: parent_end.as_fd(),
            state_dir: cleanup.dir.as_ref().expect("held until disarmed").fd(),
            fifo: fifo.as_ref().map(|f| f.as_fd()),
            console: console.as_ref().map(|c| c.as_fd()),
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            preserve_fds: opts.preserve_fds,
            cgroup_dirs,
            idmaps: idmaps
                .iter()
                .map(|f| f.as_ref().map(|f| f.as_fd()))
                .collect(),
            cgroup_tasks: v1_tasks
                .iter()
                .map(|(p, f)| (p.as_path(), f.as_fd()))
                .collect(),
            old_mask: &old_mask,
            runtime_hooks: !runtime_hooks.is_empty(),
            restore: opts.restore,
            restore_time_ns: opts.restore_time_ns.as_ref(),
        }),
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
    };
    drop(child_end);
    drop(fifo);
    drop(console);
    let pidfd_dup = pidfd.try_clone().map_err(io("dup pidfd"))?;
    cleanup.child = Some((pid, pidfd_dup));
    let result = (|| {
        failpoint::hit("create.after_clone")?;
        let linux = spec.linux().as_ref();
        write_id_maps(
            pid,
            linux.and_then(|l| l.uid_mappings().as_ref()),
            linux.and_then(|l| l.gid_mappings().as_ref()),
        )?;
        if let Some(adj) = process.oom_score_adj() {
            let path = format!("/proc/{pid}/oom_score_adj");
            std::fs::write(&path, adj.to_string()).map_err(io(format!("write {path}")))?;
        }
        st.pid = pid;
        st.start_time = state::proc_stat(pid).map(|(t, _)| t).unwrap_or(0);
        // Recorded as soon as the init exists: killed before the init is
        // ready, `create` takes it along (death signal), and the container
        // reads as stopped; killed after, it reads as created, and is.
        cleanup
            .dir
            .as_ref()
            .expect("held until disarmed")
            .save(&st)?;
        // Only the pid: the state with its annotations (up to the config's
        // size) could pass the socket's message size, or the init's buffer.
        init::send(parent_end.as_fd(), tag::GO, pid.to_string().as_bytes())
            .map_err(|_| init_gone(pid))?;
        let mut msg = init::recv(parent_end.as_fd()).map_err(|_| init_gone(pid))?;
        if let Some((tag::HOOKS, _)) = msg {
            failpoint::hit("create.before_hooks")?;
            hooks::run_hooks(
                "prestart",
                hooks.prestart().as_deref().unwrap_or_default(),
                &hook_state(&st, Status::Creating),
            )?;
            hooks::run_hooks(
                "createRuntime",
                hooks.create_runtime().as_deref().unwrap_or_default(),
                &hook_state(&st, Status::Creating),
            )?;
            failpoint::hit("create.after_hooks")?;
            init::send(parent_end.as_fd(), tag::CONTINUE, b"").map_err(|_| init_gone(pid))?;
            msg = init::recv(parent_end.as_fd()).map_err(|_| init_gone(pid))?;
        }
        match msg {
            Some((tag::READY, _)) => {
                if let (Some(sock), Some(settings)) = (&syslog_sock, &syslog_settings) {
                    let dir = cleanup.dir.as_ref().expect("held until disarmed");
                    crate::syslog::spawn_receiver(
                        sock,
                        pidfd.as_fd(),
                        &dir.path,
                        &opts.id,
                        settings,
                    )
                    .map_err(io("start the syslog receiver"))?;
                }
            }
            Some((tag::ERROR, m)) => {
                return Err(Error::Init(String::from_utf8_lossy(&m).into_owned()))
            }
            _ => return Err(init_gone(pid)),
        }
        failpoint::hit("create.after_ready")?;
        // What a later checkpoint compares the container's mounts and
        // limits with.
        crate::checkpoint::record_start(cleanup.dir.as_ref().expect("held until disarmed"), pid)?;
        if let Some(path) = &opts.pid_file {
            write_pid_file(path, pid)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            tracing::info!(container_id = %opts.id, pid, "created");
            let dir = cleanup.disarm();
            Ok(Created {
                dir,
                state: st,
                pid,
                pidfd,
                sync: parent_end,
                old_mask,
                console: own_end,
            })
        }
        Err(e) => {
            drop(cleanup);
            let _ = old_mask.set_mask();
            Err(e)
        }
    }
}

/// Binds the container's syslog socket on /dev/log (after /dev is set up:
/// the spec's mounts come first).
fn add_dev_log_mount(spec: &mut Spec, socket: &Path) {
    let mount = oci_spec::runtime::MountBuilder::default()
        .destination("/dev/log")
        .typ("bind")
        .source(socket)
        .options(vec!["bind".to_string()])
        .build()
        .expect("all fields set");
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
}

/// The init broke the sync channel: it died during setup; say how.
fn init_gone(pid: i32) -> Error {
    Error::Init(format!("exited during setup ({})", reap_status(pid)))
}

/// Reaps our child `pid` and says how it ended; a SIGKILL during setup is
/// most often the memory limit. Waits at most a second: a broken channel
/// does not always mean a dead init, and the caller's cleanup kills it.
fn reap_status(pid: i32) -> String {
    let child = rustix::process::Pid::from_raw(pid);
    let deadline = Instant::now() + Duration::from_secs(1);
    let waited = loop {
        match rustix::process::waitpid(child, rustix::process::WaitOptions::NOHANG) {
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => return "still running; killed".into(),
            other => break other,
        }
    };
    match waited {
        Ok(Some((_, st))) => match (st.exit_status(), st.terminating_signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (_, Some(libc::SIGKILL)) => "killed by SIGKILL: is the memory limit too low?".into(),
            (_, Some(sig)) => format!("killed by signal {sig}"),
            _ => "unknown status".into(),
        },
        _ => "status unavailable".into(),
    }
}

/// Joins the pid namespace the spec names by path, for our children only;
/// returns our own to return to after the clone.
fn join_pid_namespace(spec: &Spec) -> Result<Option<OwnedFd>, Error> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|n| n.iter().find(|n| n.typ() == LinuxNamespaceType::Pid))
        .and_then(|n| n.path().clone());
    let Some(path) = path else { return Ok(None) };
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC;
    let own = rustix::fs::open(
        "/proc/self/ns/pid_for_children",
        flags,
        rustix::fs::Mode::empty(),
    )
    .map_err(errno("open own pid namespace"))?;
    let target = rustix::fs::open(&path, flags, rustix::fs::Mode::empty())
        .map_err(errno(format!("open pid namespace {}", path.display())))?;
    rustix::thread::move_into_link_name_space(target.as_fd(), None)
        .map_err(errno(format!("join pid namespace {}", path.display())))?;
    Ok(Some(own))
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // Atomically, as runc: engines poll for this file. The temporary file
    // beside it is made new (O_EXCL): a symlink left under its name (in a
    // shared directory, say) is removed, never written through.
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let what = |step: &str| {
        format!(
            "write pid file {}: {step} {}",
            path.display(),
            tmp.display()
        )
    };
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io(what("create")))?;
    let written = file.write_all(pid.to_string().as_bytes());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(format!("write pid file {}", path.display()))(e));
    }
    Ok(())
}

/// `corral create`.
pub fn create(store: &Store, opts: &CreateOptions) -> Result<(), Error> {
    let created = create_container(store, opts, true, false)?;
    let _ = created.old_mask.set_mask();
    Ok(())
}

pub(crate) fn poststart(st: &StateFile) {
    let hooks = st
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
        .unwrap_or_default();
    if let Err(e) = hooks::run_hooks("poststart", &hooks, &hook_state(st, Status::Running)) {
        // The spec: a failing poststart hook is logged; the container runs on.
        tracing::warn!(error = %e, "poststart hook failed");
    }
}

/// `corral start`.
pub fn start(store: &Store, id: &str) -> Result<(), Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    let status = status_of(&dir, &st);
    if status != Status::Created {
        return Err(Error::Status {
            id: id.into(),
            status,
            what: "only a created container can be started",
        });
    }
    failpoint::hit("start.before_wake")?;
    let mut fifo = dir
        .open_fifo_for_start()
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => Error::Init("the container's init exited before start".into()),
            _ => io("open exec fifo")(e),
        })?;
    std::io::Write::write_all(&mut fifo, b"0").map_err(io("write exec fifo"))?;
    // A start that dies here leaves a FIFO nobody reads: not "created".
    failpoint::hit("start.after_wake")?;
    dir.remove_fifo();
    tracing::info!(container_id = %id, pid = st.pid, "started");
    poststart(&st);
    Ok(())
}

/// The outcome of `run`.
pub enum RunOutcome {
    /// Detached: the container runs on.
    Detached,
    /// Foreground: the container's exit status (128+N for signal N).
    Exited(i32),
}

/// `corral run`: create, start, and unless `detach`, wait for the init
/// while forwarding signals to it; then delete unless `keep`.
pub fn run(
    store: &Store,
    opts: &CreateOptions,
    detach: bool,
    keep: bool,
) -> Result<RunOutcome, Error> {
    let c = create_container(store, opts, false, !detach)?;
    let Created {
        dir,
        state: st,
        pid,
        pidfd,
        sync,
        old_mask,
        console,
    } = c;
    let started = (|| {
        init::send(sync.as_fd(), tag::START, b"").map_err(io("start the container"))?;
        // EOF: execve succeeded (the socket is close-on-exec); else a message.
        match init::recv(sync.as_fd()).map_err(io("start the container"))? {
            None => Ok(failpoint::hit("run.after_start")?),
            Some((tag::ERROR, m)) => Err(Error::Init(String::from_utf8_lossy(&m).into_owned())),
            Some(_) => Err(Error::Init("unexpected message at start".into())),
        }
    })();
    if let Err(e) = started {
        let _ = old_mask.set_mask();
        kill_and_reap(pid, &pidfd);
        destroy(dir, &st, true);
        return Err(e);
    }
    poststart(&st);
    if detach {
        let _ = old_mask.set_mask();
        return Ok(RunOutcome::Detached);
    }
    drop(dir);
    let master = console.map(|c| crate::tty::recv_master(c.as_fd()));
    let code = match master {
        Some(Ok(master)) => crate::tty::proxy_until_exit(pid, &pidfd, master),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "no terminal from the container");
            forward_until_exit(pid, &pidfd)
        }
        None => forward_until_exit(pid, &pidfd),
    };
    tracing::info!(container_id = %st.id, code, "exited");
    let _ = old_mask.set_mask();
    if !keep {
        let dir = store.open(&st.id)?;
        destroy(dir, &st, true);
    }
    Ok(RunOutcome::Exited(code))
}

/// Waits for `pid`, forwarding every signal we get to it (all signals are
/// blocked, so they queue for `sigtimedwait`); returns its exit status.
pub(crate) fn forward_until_exit(pid: i32, pidfd: &OwnedFd) -> i32 {
    let all = SigSet::full();
    let child = rustix::process::Pid::from_raw(pid);
    loop {
        match rustix::process::waitpid(child, rustix::process::WaitOptions::NOHANG) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return code;
                }
                if let Some(sig) = status.terminating_signal() {
                    return 128 + sig;
                }
            }
            Ok(None) => {}
            Err(_) => return 255,
        }
        match all.wait_timeout(Duration::from_millis(100)) {
            Ok(Some(sig))
                if sig == libc::SIGCHLD || sig == libc::SIGURG || sig == libc::SIGWINCH => {}
            Ok(Some(sig)) => {
                let _ = sys::pidfd_signal(pidfd.as_fd(), sig);
            }
            Ok(None) | Err(_) => {}
        }
    }
}

/// Kills what is left, removes the cgroup, runs poststop hooks and removes
/// the state directory. Errors are logged: this runs on paths that are
/// already reporting something else, or on a delete that must finish.
pub(crate) fn destroy(dir: ContainerDir, st: &StateFile, poststop: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if state::is_alive(st.pid, st.start_time) {
        if let Ok(pidfd) = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(st.pid).expect("alive pid > 0"),
            rustix::process::PidfdFlags::empty(),
        ) {
            if state::is_alive(st.pid, st.start_time) {
                let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
                wait_exit(&pidfd, Duration::from_secs(5));
            }
        }
    }
    if let Err(e) = failpoint::hit("delete.after_kill") {
        return vec![e.to_string()];
    }
    if let Some(cg) = &st.cgroup {
        if let Err(e) = cg.destroy() {
            problems.push(format!("remove cgroup: {e}"));
        }
    }
    if let Err(e) = failpoint::hit("delete.after_cgroup") {
        return vec![e.to_string()];
    }
    if poststop {
        let hooks = st
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
            .unwrap_or_default();
        if let Err(e) = hooks::run_hooks("poststop", &hooks, &hook_state(st, Status::Stopped)) {
            tracing::warn!(error = %e, "poststop hook failed");
        }
    }
    if let Err(e) = dir.remove() {
        problems.push(e.to_string());
    }
    for p in &problems {
        tracing::warn!(container_id = %st.id, "{p}");
    }
    problems
}

/// Waits (bounded) until the process behind `pidfd` has exited.
fn wait_exit(pidfd: &OwnedFd, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let mut fds = [rustix::event::PollFd::new(
            pidfd,
            rustix::event::PollFlags::IN,
        )];
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) => return,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

/// The stored state of a container (its config included).
pub fn state_file(store: &Store, id: &str) -> Result<StateFile, Error> {
    Ok(store.open(id)?.load()?)
}

/// `corral state`.
pub fn state(store: &Store, id: &str) -> Result<OciState, Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    let status = status_of(&dir, &st);
    Ok(oci_state(&st, status))
}

/// `corral list`: every container with a readable state.
pub fn list(store: &Store) -> Result<Vec<OciState>, Error> {
    let mut out = Vec::new();
    for id in store.list()? {
        let Ok(dir) = store.open(&id) else { continue };
        match dir.load() {
            Ok(st) => {
                let status = status_of(&dir, &st);
                let mut entry = oci_state(&st, status);
                // runc's list names the owner of the state directory.
                entry.owner = owner_name(&dir.path);
                out.push(entry);
            }
            Err(e) => {
                tracing::warn!(container_id = %id, error = %e, "skipping container with unreadable state")
            }
        }
    }
    Ok(out)
}

/// The user name owning `path` (`#UID` when /etc/passwd has none).
fn owner_name(path: &Path) -> String {
    let Ok(uid) = std::fs::metadata(path).map(|m| std::os::unix::fs::MetadataExt::uid(&m)) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse() == Ok(uid)).then(|| name.to_owned())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// `corral kill`.
pub fn kill(store: &Store, id: &str, signal: i32, all: bool) -> Result<(), Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    let status = status_of(&dir, &st);
    if status == Status::Stopped {
        return Err(Error::Status {
            id: id.into(),
            status,
            what: "cannot send a signal to a container that is not running",
        });
    }
    if all {
        if let Some(cg) = &st.cgroup {
            cg.kill_all(signal)?;
            return Ok(());
        }
    }
    let pid = rustix::process::Pid::from_raw(st.pid)
        .ok_or_else(|| Error::Unsupported("no pid recorded".into()))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(errno(format!("open pid {}", st.pid)))?;
    // Checked after opening the pidfd: if the pid is ours now, the pidfd is too.
    if !state::is_alive(st.pid, st.start_time) {
        return Err(Error::Status {
            id: id.into(),
            status: Status::Stopped,
            what: "cannot send a signal to a container that is not running",
        });
    }
    sys::pidfd_signal(pidfd.as_fd(), signal)
        .map_err(io(format!("send signal {signal} to pid {}", st.pid)))
}

/// `delete --force` of a container whose state.json is missing or corrupt:
/// the recorded pid cannot be trusted (nor read), so the container's
/// processes are found through its cgroup — the one state.json names if
/// that much of it parses, else the default path (the id) — killed, the
/// cgroup removed, and the directory with it.
fn delete_unreadable(dir: ContainerDir, id: &str, why: &StateError) -> Result<(), Error> {
    tracing::warn!(container_id = %id, error = %why, "state unreadable; cleaning up through the cgroup");
    let recorded = std::fs::read(dir.path.join("state.json"))
        .ok()
        .and_then(|data| serde_json::from_slice::<serde_json::Value>(&data).ok())
        .and_then(|v| serde_json::from_value::<Cgroup>(v.get("cgroup")?.clone()).ok());
    let cgroup = match recorded {
        Some(cg) => cg,
        None => Cgroup::new(&Hierarchy::detect()?, id)?,
    };
    if cgroup.exists() {
        cgroup.destroy()?;
    }
    dir.remove()?;
    tracing::info!(container_id = %id, "deleted");
    Ok(())
}

/// `corral delete`.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<(), Error> {
    let dir = match store.open(id) {
        // As runc: forcing the removal of what is not there is no error.
        Err(StateError::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    let st = match dir.load() {
        Ok(st) => st,
        Err(
            e
            @ (StateError::Corrupt { .. } | StateError::NotAFile { .. } | StateError::NotFound(_)),
        ) if force => return delete_unreadable(dir, id, &e),
        Err(e) => return Err(e.into()),
    };
    let status = status_of(&dir, &st);
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {
            if let Some(cg) = &st.cgroup {
                if status == Status::Paused {
                    let _ = cg.thaw();
                }
            }
        }
        _ => {
            return Err(Error::Status {
                id: id.into(),
                status,
                what: "cannot delete a container that is not stopped (use --force)",
            })
        }
    }
    let problems = destroy(dir, &st, true);
    tracing::info!(container_id = %id, "deleted");
    match problems.first() {
        Some(p) => Err(Error::Unsupported(format!("delete container {id:?}: {p}"))),
        None => Ok(()),
    }
}
