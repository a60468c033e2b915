//! `checkpoint` and `restore` of a container, runc's commands, over
//! `corral-checkpoint` (no CRIU).
//!
//! Checkpoint: refuse what a restore could not bring back (a mount made
//! after the container started, a network interface other than loopback in
//! a network namespace of ours); freeze the container through its cgroup v2
//! `cgroup.freeze` (a frozen task still stops for `PTRACE_INTERRUPT`, so the
//! dump seizes tasks that cannot fork or exit meanwhile); dump its init and
//! every descendant (a process of the cgroup outside that tree is refused)
//! with the pids of its pid namespace, the init's stdio left out (the
//! restoring runtime gives its own, as runc does; children that share it
//! inherit the new one), or, with a terminal (`process.terminal`), every
//! fd on its console recorded as the console, with the terminal's settings
//! (corral-checkpoint's `console`); write `container.json` beside the image.
//! Unless `--leave-running`, the dump kills the tree while it is frozen,
//! and the container is destroyed as runc's checkpoint does (cgroup and
//! state removed, poststop hooks run); else it is thawed and runs on.
//!
//! Restore: `create` from the bundle's config.json, with new namespaces,
//! mounts, `pivot_root`, cgroup and limits, hostname and the state entry;
//! but the init, once its environment is built (still root with every
//! capability: the restore needs them), receives the files the image needs
//! at the fd numbers the restore chose, and stops under our ptrace
//! ([`stop_for_restore`]). `corral_checkpoint::restore::restore_into` then
//! replaces its memory and state with the image's: pid 1 of its pid
//! namespace is the dumped pid 1, under the same host pid the state store
//! records; it makes the other processes of the tree from inside their
//! parents with their namespace pids. Its credentials, capabilities, no_new_privs, seccomp filters and
//! rlimits come from its image (corral-checkpoint's `state`), set after
//! the rebuild, not re-applied from config.json. A container with a time
//! namespace of its own gets a new one whose offsets continue the image's
//! clocks (`time_ns`, corral-checkpoint's `timens`), computed by the init
//! just before it unshares it, instead of config.json's `timeOffsets`;
//! config.json must still ask for the namespace, or the restore is refused
//! before anything exists.
//!
//! SysV IPC: a container that owns its IPC namespace takes the namespace's
//! objects along (corral-checkpoint's `sysv`), dumped while its tasks are
//! stopped, made again in the new namespace before the init is rebuilt
//! (it attaches its segments there). In a namespace it joined, or the
//! host's, they are not the container's: not dumped, left where they live
//! (a restore joins that namespace again); a segment attached there is
//! refused by the dump, by name.
//!
//! the rebuild, not re-applied from config.json. With a terminal, `create`
//! makes a new pty as for any container (its master sent over
//! `--console-socket`, as runc's restore does; the init leads its session,
//! the slave its controlling terminal and /dev/console): the image's
//! console fds become that slave, which gets the image's termios and
//! window size before the process runs.
//!
//! ```text
//! <image-path>/inventory.json, task-*.json, pages-*.img   corral-checkpoint's image
//! <image-path>/sysv.json, sysv-shm.img                     SysV IPC objects (own IPC ns)
//! <image-path>/container.json                             ContainerImage
//! <image-path>/inventory.img                              a marker for podman
//! <state>/<id>/mounts                                     mount points at start
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_cgroups::{Cgroup, Hierarchy};
use corral_checkpoint::{collect, container as ckpt, image, restore as ckpt_restore, sysv};
use oci_spec::runtime::LinuxNamespaceType;
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::container::{self, errno, io, CreateOptions, Created, Error, RunOutcome};
use crate::criu_stats;
use crate::init::{self, tag};
use crate::state::{ContainerDir, StateFile, Status, Store};
use crate::sys;

/// The file beside the process image that makes it a container's.
pub const IMAGE_FILE: &str = "container.json";
/// Format version of [`IMAGE_FILE`].
const IMAGE_VERSION: u32 = 1;
/// The name of CRIU's inventory, which podman checks for in an image
/// directory before a restore: written as a marker (text, not CRIU's
/// format).
const CRIU_MARKER: &str = "inventory.img";
/// Mount points of the container at start, in its state directory.
const MOUNTS_FILE: &str = "mounts";
/// Sync tag: the files of a restore, parent to init (SCM_RIGHTS; the
/// payload lists the fd number each must get).
const FILES: u8 = b'F';
/// Most fds one `SCM_RIGHTS` message carries (the kernel's SCM_MAX_FD).
const MAX_FILES: usize = 253;
/// How long the cgroup may take to report itself frozen.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a restore needs of the container besides its processes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerImage {
    /// Format version.
    pub version: u32,
    /// The container id at checkpoint.
    pub id: String,
    /// Its bundle then.
    pub bundle: PathBuf,
    /// Its cgroup path (as config.json gave it, or the id).
    pub cgroups_path: String,
    /// Its namespaces: type, and the path of those it joined.
    pub namespaces: Vec<(String, Option<PathBuf>)>,
    /// Host pid of its init at checkpoint (the image holds the namespace's).
    pub host_pid: i32,
    /// Fds 0–2 were left out: the restoring runtime gives its own.
    pub stdio_inherited: bool,
    /// Its mount points (as the container sees them).
    pub mounts: Vec<String>,
    /// It had a terminal (`process.terminal`): its console is in the
    /// image, and a restore needs a terminal too. Absent in older images.
    #[serde(default)]
    pub terminal: bool,
    /// Host and domain name of its own UTS namespace at checkpoint (the
    /// process may have changed them since config.json's): set again in
    /// the restored container's. Absent in older images and for a
    /// container without a UTS namespace of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<UtsNames>,
}

/// A UTS namespace's names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtsNames {
    /// `hostname`.
    pub hostname: String,
    /// `domainname`.
    pub domainname: String,
}

/// Options of `checkpoint`.
#[derive(Clone, Debug, Default)]
pub struct CheckpointOptions {
    /// `--image-path`.
    pub image_path: PathBuf,
    /// `--work-path`: the log of the dump goes there.
    pub work_path: Option<PathBuf>,
    /// `--leave-running`.
    pub leave_running: bool,
    /// `--file-locks`: dump the file locks the container's processes hold
    /// (refused without it).
    pub file_locks: bool,
    /// `--empty-ns network`: the network namespace's contents are not the
    /// container's to keep (an engine sets it up again): its interfaces
    /// are not refused.
    pub empty_netns: bool,
}

/// Options of `restore`.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Id, bundle, console socket, pid file, `--no-pivot`.
    pub create: CreateOptions,
    /// `--image-path`.
    pub image_path: PathBuf,
    /// `--work-path`: the log of the restore goes there.
    pub work_path: Option<PathBuf>,
    /// `--detach`.
    pub detach: bool,
}

fn failed(
    what: String,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync + 'static>) -> Error {
    move |source| Error::Checkpoint { what, source }
}

/// `corral checkpoint`.
pub fn checkpoint(store: &Store, id: &str, opts: &CheckpointOptions) -> Result<(), Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    let status = container::status_of(&dir, &st);
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(Error::Status {
            id: id.into(),
            status,
            what: "only a running or paused container can be checkpointed",
        });
    }
    let cgroup = st.cgroup.as_ref().ok_or_else(|| {
        Error::Unsupported(format!(
            "container {id:?} has no cgroup to freeze it through; cannot checkpoint"
        ))
    })?;
    // containerd pauses a container before it checkpoints it.
    let freeze_start = Instant::now();
    let frozen = Frozen::freeze(cgroup, status == Status::Paused)?;
    let freezing = freeze_start.elapsed();
    let terminal = has_terminal(&st.config);
    let console = terminal.then(|| open_console(st.pid)).transpose()?;
    let console_id = console
        .as_ref()
        .map(|c| c.metadata().map(|m| (m.dev(), m.ino())))
        .transpose()
        .map_err(io(format!("stat the console of container {id:?}")))?;
    // The dump takes the init's tree; anything else in the cgroup (a
    // `corral exec` process, a child of ours) would be lost.
    let tree = descendants(st.pid)?;
    let mounts = refuse_unrestorable(&dir, &st, &tree, opts.empty_netns, console_id)?;
    if let Some(p) = cgroup.pids()?.iter().find(|p| !tree.contains(p)) {
        return Err(Error::Unsupported(format!(
            "container {id:?}: process {p} is in its cgroup but not a descendant of its init {} (corral exec?); not supported yet",
            st.pid
        )));
    }
    let dump_opts = collect::DumpOptions {
        pid: st.pid,
        images_dir: opts.image_path.clone(),
        leave_running: opts.leave_running,
        file_locks: opts.file_locks,
        // No shell job (a terminal is the container's console, `extra`);
        // the CLI refuses --tcp-established and --ext-unix-sk for
        // containers before anything is written.
        ..Default::default()
    };
    // Frozen, every task is seized; then thawed, each stays in its ptrace
    // stop while the dump runs code in it.
    let thaw = || {
        frozen
            .set(false)
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    // A container that owns its IPC namespace takes its SysV objects
    // along, dumped while every task is stopped (before the thaw). In a
    // namespace it joined (or the host's) they are not its own: not
    // dumped, left where they live, which a restore joins again; a
    // segment attached there is refused by the dump.
    let ipc_ns = if owns_namespace(&st, LinuxNamespaceType::Ipc) {
        let path = format!("/proc/{}/ns/ipc", st.pid);
        Some(
            rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(errno(format!("open {path}")))?,
        )
    } else {
        None
    };
    let seized = || {
        if let Some(ns) = &ipc_ns {
            sysv::dump(ns.as_fd(), &opts.image_path)
                .map_err(|e| std::io::Error::other(error_chain(&e)))?;
        }
        thaw()
    };
    let extra = ckpt::DumpExtra {
        ns_pids: true,
        // With a terminal, fds 0-2 are (mostly) the console, dumped as such.
        inherit_stdio: !terminal,
        on_seized: Some(&seized),
        sysv_ipc: ipc_ns.is_some(),
        console: console.as_ref().map(|c| c.as_fd()),
    };
    // Read while frozen (a dump without --leave-running ends the task).
    let uts = if owns_namespace(&st, LinuxNamespaceType::Uts) {
        Some(in_uts_namespace(st.pid, || {
            let u = rustix::system::uname();
            Ok(UtsNames {
                hostname: u.nodename().to_string_lossy().into_owned(),
                domainname: u.domainname().to_string_lossy().into_owned(),
            })
        })?)
    } else {
        None
    };
    let stats = collect::dump_with(&dump_opts, &extra)
        .map_err(|e| failed(format!("dump container {id:?} (pid {})", st.pid))(e.into()))?;
    let info = ContainerImage {
        version: IMAGE_VERSION,
        id: id.to_owned(),
        bundle: st.bundle.clone(),
        cgroups_path: cgroup.cgroups_path().to_owned(),
        namespaces: namespaces(&st),
        host_pid: st.pid,
        stdio_inherited: !terminal,
        mounts,
        terminal,
        uts,
    };
    let path = opts.image_path.join(IMAGE_FILE);
    let json = serde_json::to_vec_pretty(&info).expect("plain data serializes");
    std::fs::write(&path, json).map_err(io(format!("write {}", path.display())))?;
    // podman looks for CRIU's inventory file before it asks for a restore.
    let path = opts.image_path.join(CRIU_MARKER);
    std::fs::write(&path, "corral image, not CRIU's: see inventory.json\n")
        .map_err(io(format!("write {}", path.display())))?;
    write_log(
        opts.work_path.as_deref(),
        "dump.log",
        &format!(
            "container {id} pid {}: {} mappings, {} bytes of pages, {:?}\n",
            st.pid, stats.vmas, stats.page_bytes, stats.elapsed
        ),
    )?;
    let times = criu_stats::DumpTimes {
        freezing,
        frozen: freeze_start.elapsed(),
        pages: stats.pages_elapsed,
        page_bytes: stats.page_bytes,
    };
    let work = opts.work_path.as_deref().unwrap_or(&opts.image_path);
    criu_stats::write(work, "stats-dump", &criu_stats::dump_file(&times))?;
    drop(frozen);
    tracing::info!(container_id = %id, page_bytes = stats.page_bytes, "checkpointed");
    if !opts.leave_running {
        // As runc: the checkpointed container is gone, its id free for the
        // restore.
        let problems = container::destroy(dir, &st, true);
        if let Some(p) = problems.first() {
            return Err(Error::Unsupported(format!(
                "checkpointed, but removing container {id:?}: {p}"
            )));
        }
    }
    Ok(())
}

/// `corral restore`: the container runs when this returns (`--detach`), or
/// has exited with the returned status.
pub fn restore(store: &Store, opts: &RestoreOptions) -> Result<RunOutcome, Error> {
    let id = &opts.create.id;
    let info = read_image_info(&opts.image_path)?;
    // Refuse a broken image before anything exists.
    let time_ns = image::ImageDir::open(&opts.image_path)
        .map_err(|e| failed(format!("image {}", opts.image_path.display()))(e.into()))?
        .inventory
        .time_ns;
    let bundle = std::path::absolute(&opts.create.bundle)
        .map_err(io(format!("bundle {}", opts.create.bundle.display())))?;
    let spec = crate::spec::load(&bundle)?;
    refuse_lost_time_ns(&spec, time_ns.is_some(), &opts.image_path)?;
    let own_uts = spec_owns(&spec, LinuxNamespaceType::Uts);
    if info.uts.is_some() && !own_uts {
        return Err(Error::Unsupported(format!(
            "container {id:?}: the image holds the host name of its own UTS namespace, but config.json gives it none of its own"
        )));
    }
    let terminal = has_terminal(&spec);
    if terminal != info.terminal {
        return Err(Error::Unsupported(format!(
            "process.terminal is {terminal} in {}, but the image {} was checkpointed {} a terminal",
            bundle.join("config.json").display(),
            opts.image_path.display(),
            if info.terminal { "with" } else { "without" }
        )));
    }
    if terminal && opts.create.console_socket.is_none() {
        return Err(Error::Unsupported(
            "process.terminal is true: a restore needs --console-socket for the new terminal's master".into(),
        ));
    }
    let create_start = Instant::now();
    let sysv_img = sysv::read(&opts.image_path)
        .map_err(|e| failed(format!("image {}", opts.image_path.display()))(e.into()))?;
    let own_ipc = spec_owns(&spec, LinuxNamespaceType::Ipc);
    if sysv_img.is_some() && !own_ipc {
        return Err(Error::Unsupported(format!(
            "container {id:?}: the image holds the SysV IPC objects of its own IPC namespace, but config.json gives it none of its own"
        )));
    }
    let mut create = opts.create.clone();
    create.restore = true;
    create.restore_time_ns = time_ns;
    create.pid_file = None;
    let Created {
        dir,
        state: st,
        pid,
        pidfd,
        sync,
        old_mask,
        console: _,
    } = container::create_container(store, &create, false, false)?;
    let restored = (|| {
        let root = rustix::fs::open(
            format!("/proc/{pid}/root"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno(format!("open the root of pid {pid}")))?;
        let console = terminal
            .then(|| new_console(pid, &pidfd, root.as_fd()))
            .transpose()?;
        if let Some(names) = &info.uts {
            set_uts_names(pid, names)?;
        }
        let net = rustix::fs::open(
            format!("/proc/{pid}/ns/net"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno(format!("open the network namespace of pid {pid}")))?;
        let mut place = |files: &[(BorrowedFd<'_>, i32)]| {
            send_files(sync.as_fd(), files)?;
            Ok(pid)
        };
        // The init attaches its SysV segments during the restore: they
        // are made first, in the new IPC namespace.
        let ipc = match &sysv_img {
            Some(img) => {
                let path = format!("/proc/{pid}/ns/ipc");
                let ns = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(errno(format!("open {path}")))?;
                let pending = sysv::restore(ns.as_fd(), &opts.image_path, img).map_err(|e| {
                    failed(format!("restore the SysV IPC objects of container {id:?}"))(e.into())
                })?;
                Some((ns, pending))
            }
            None => None,
        };
        let mut into = ckpt::IntoTask {
            root: root.as_fd(),
            net: Some(net.as_fd()),
            place_files: &mut place,
            keep_stdio: info.stdio_inherited,
            console: console.as_ref().map(|c| c.as_fd()),
        };
        let forking = create_start.elapsed();
        let r = ckpt_restore::restore_into(&opts.image_path, &mut into).map_err(|e| {
            failed(format!(
                "restore container {id:?} from {}",
                opts.image_path.display()
            ))(e.into())
        })?;
        if let Some((ns, pending)) = &ipc {
            sysv::finish(ns.as_fd(), pending).map_err(|e| {
                failed(format!("restore the SysV IPC objects of container {id:?}"))(e.into())
            })?;
        }
        write_log(
            opts.work_path.as_deref(),
            "restore.log",
            &format!(
                "container {id} pid {pid}: {} bytes of pages, {:?}\n",
                r.page_bytes, r.elapsed
            ),
        )?;
        let times = criu_stats::RestoreTimes {
            forking,
            restore: r.elapsed,
            page_bytes: r.page_bytes,
        };
        let work = opts.work_path.as_deref().unwrap_or(&opts.image_path);
        criu_stats::write(work, "stats-restore", &criu_stats::restore_file(&times))?;
        if let Some(path) = &opts.create.pid_file {
            container::write_pid_file(path, pid)?;
        }
        Ok(())
    })();
    if let Err(e) = restored {
        let _ = old_mask.set_mask();
        container::kill_and_reap(pid, &pidfd);
        container::destroy(dir, &st, false);
        return Err(e);
    }
    tracing::info!(container_id = %id, pid, "restored");
    container::poststart(&st);
    if opts.detach {
        let _ = old_mask.set_mask();
        return Ok(RunOutcome::Detached);
    }
    drop(dir);
    let code = container::forward_until_exit(pid, &pidfd);
    tracing::info!(container_id = %id, code, "exited");
    let _ = old_mask.set_mask();
    let dir = store.open(id)?;
    container::destroy(dir, &st, true);
    Ok(RunOutcome::Exited(code))
}

/// Refuses to restore processes that had a time namespace of their own
/// (`had_time_ns`) without a new one in config.json: their clocks would
/// jump (the init makes the new one with offsets that continue them).
fn refuse_lost_time_ns(
    spec: &oci_spec::runtime::Spec,
    had_time_ns: bool,
    image_path: &Path,
) -> Result<(), Error> {
    let new_time_ns = spec_owns(spec, LinuxNamespaceType::Time);
    if had_time_ns && !new_time_ns {
        return Err(Error::Unsupported(format!(
            "image {}: its processes had a time namespace of their own, and config.json's \
             linux.namespaces makes no new \"time\" namespace to continue their clocks in \
             (add {{\"type\": \"time\"}})",
            image_path.display()
        )));
    }
    Ok(())
}

/// `err` and its sources, `: `-separated (an io::Error made of it shows
/// only its own message).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn has_terminal(spec: &oci_spec::runtime::Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// The container's console, the pty slave its runtime bound on
/// /dev/console at create, opened in the root of its init `pid`.
fn open_console(pid: i32) -> Result<std::fs::File, Error> {
    let root = rustix::fs::open(
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(format!("open the root of pid {pid}")))?;
    ckpt::open_in_root(
        root.as_fd(),
        "/dev/console",
        OFlags::RDWR | OFlags::NONBLOCK,
    )
    .map_err(io(format!("open /dev/console of pid {pid} (its terminal)")))
}

/// The pty `create` made for the init `pid` (bound on /dev/console, its
/// controlling terminal): its fd 0, taken with `pidfd_getfd`, whose path
/// is /dev/pts/N in the container's devpts (the restored fds get that
/// path, as the dumped ones had), checked against /dev/console.
fn new_console(pid: i32, pidfd: &OwnedFd, root: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    let what = || format!("the terminal create made for pid {pid}");
    let fd0 = rustix::process::pidfd_getfd(
        pidfd,
        rustix::fd::RawFd::from(0),
        rustix::process::PidfdGetfdFlags::empty(),
    )
    .map_err(errno(format!("pidfd_getfd fd 0 of pid {pid}")))?;
    let console = ckpt::open_in_root(root, "/dev/console", OFlags::RDONLY | OFlags::NONBLOCK)
        .map_err(io(format!("open /dev/console of pid {pid}")))?;
    let (a, b) = (
        rustix::fs::fstat(&fd0).map_err(errno(what()))?,
        rustix::fs::fstat(&console).map_err(errno(what()))?,
    );
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        return Err(Error::Unsupported(format!(
            "{}: its fd 0 is not /dev/console",
            what()
        )));
    }
    Ok(fd0)
}

fn read_image_info(image_path: &Path) -> Result<ContainerImage, Error> {
    let path = image_path.join(IMAGE_FILE);
    let data = std::fs::read(&path).map_err(io(format!(
        "read {} (an image of `corral checkpoint`?)",
        path.display()
    )))?;
    let info: ContainerImage = serde_json::from_slice(&data)
        .map_err(|e| failed(format!("parse {}", path.display()))(e.into()))?;
    if info.version != IMAGE_VERSION {
        return Err(Error::Unsupported(format!(
            "{}: version {} (this corral reads {IMAGE_VERSION})",
            path.display(),
            info.version
        )));
    }
    Ok(info)
}

fn write_log(work_path: Option<&Path>, name: &str, text: &str) -> Result<(), Error> {
    let Some(dir) = work_path else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))
}

fn namespaces(st: &StateFile) -> Vec<(String, Option<PathBuf>)> {
    st.config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| (n.typ().to_string(), n.path().clone()))
        .collect()
}

/// Runs `f` on a thread of ours that joined the UTS namespace of `pid`.
fn in_uts_namespace<T: Send>(
    pid: i32,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> Result<T, Error> {
    let path = format!("/proc/{pid}/ns/uts");
    let ns = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(errno(format!("open {path}")))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::HostNameAndNISDomainName),
            )?;
            f()
        })
        .join()
    })
    .map_err(|_| Error::Unsupported(format!("a thread in the UTS namespace of {path} panicked")))?
    .map_err(io(format!("the host and domain name in {path}")))
}

/// Sets the names of the restored container's UTS namespace (its init
/// `pid`'s) to those of the image, where they differ (a process changed
/// them after the start: config.json's are set already).
fn set_uts_names(pid: i32, names: &UtsNames) -> Result<(), Error> {
    let ns = |path: &str| std::fs::read_link(path).map_err(io(format!("read {path}")));
    if ns(&format!("/proc/{pid}/ns/uts"))? == ns("/proc/self/ns/uts")? {
        return Err(Error::Unsupported(format!(
            "pid {pid} shares our UTS namespace: its names are not the container's to set"
        )));
    }
    in_uts_namespace(pid, || {
        let u = rustix::system::uname();
        if u.nodename().to_bytes() != names.hostname.as_bytes() {
            rustix::system::sethostname(names.hostname.as_bytes())?;
        }
        if u.domainname().to_bytes() != names.domainname.as_bytes() {
            rustix::system::setdomainname(names.domainname.as_bytes())?;
        }
        Ok(())
    })
}

/// Whether config.json gives the container a namespace of `typ` of its own
/// (made by us, not joined by path).
fn owns_namespace(st: &StateFile, typ: LinuxNamespaceType) -> bool {
    spec_owns(&st.config, typ)
}

/// Whether `spec` gives the container a namespace of `typ` of its own.
fn spec_owns(spec: &oci_spec::runtime::Spec, typ: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == typ && n.path().is_none()))
}

/// The mount points of `pid`, as it sees them (/proc/PID/mountinfo).
fn mount_points(pid: i32) -> Result<Vec<String>, Error> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(io(format!("read {path}")))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect())
}

/// Writes the mount points of the container's init `pid`, once its setup
/// is done, to its state directory: what [`checkpoint`] compares with (a
/// restore makes these mounts from config.json).
pub(crate) fn record_start(dir: &ContainerDir, pid: i32) -> Result<(), Error> {
    let mut mounts = mount_points(pid)?.join("\n");
    mounts.push('\n');
    write_state_file(dir, MOUNTS_FILE, &mounts)
}

fn write_state_file(dir: &ContainerDir, name: &str, text: &str) -> Result<(), Error> {
    let path = dir.path.join(name);
    let file = rustix::fs::openat(
        dir.fd(),
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .map_err(errno(format!("create {}", path.display())))?;
    rustix::io::write(&file, text.as_bytes())
        .map_err(errno(format!("write {}", path.display())))?;
    Ok(())
}

/// A file [`record_start`] wrote, `None` if there is none (a container
/// created by an older corral).
fn read_state_file(dir: &ContainerDir, name: &str) -> Result<Option<String>, Error> {
    let path = dir.path.join(name);
    let file = match rustix::fs::openat(
        dir.fd(),
        name,
        // NONBLOCK: a FIFO put there must not make us wait for a writer.
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(errno(format!("open {}", path.display()))(e)),
    };
    std::io::read_to_string(std::fs::File::from(file))
        .map(Some)
        .map_err(io(format!("read {}", path.display())))
}

/// Refuses, by name, what a restore from config.json could not bring back
/// (`tree`: the init and its descendants); returns the container's mount
/// points.
fn refuse_unrestorable(
    dir: &ContainerDir,
    st: &StateFile,
    tree: &[i32],
    empty_netns: bool,
    console: Option<(u64, u64)>,
) -> Result<Vec<String>, Error> {
    let id = &st.id;
    let refuse = |what: String| Err(Error::Unsupported(format!("container {id:?}: {what}")));
    let missing = |name: &str| {
        format!(
            "no record of its start ({} missing: created by an older corral)",
            dir.path.join(name).display()
        )
    };
    let mounts = mount_points(st.pid)?;
    let Some(at_start) = read_state_file(dir, MOUNTS_FILE)? else {
        return refuse(missing(MOUNTS_FILE));
    };
    if let Some(m) = mounts.iter().find(|m| !at_start.lines().any(|l| l == *m)) {
        return refuse(format!(
            "mount on {m} was made after the container started; not supported yet"
        ));
    }
    for &pid in tree {
        refuse_other_terminals(st, pid, console)?;
    }
    if owns_namespace(st, LinuxNamespaceType::Network) && !empty_netns {
        let path = format!("/proc/{}/net/dev", st.pid);
        let text = std::fs::read_to_string(&path).map_err(io(format!("read {path}")))?;
        let names = text.lines().skip(2).filter_map(|l| l.split(':').next());
        if let Some(name) = names.map(str::trim).find(|n| *n != "lo") {
            return refuse(format!(
                "network interface {name}: only loopback can be restored; not supported yet"
            ));
        }
    }
    Ok(mounts)
}

/// `pid` and every descendant of it (zombies too), from each thread's
/// /proc/PID/task/TID/children. The container is frozen: none forks or
/// exits meanwhile.
fn descendants(pid: i32) -> Result<Vec<i32>, Error> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        let dir = format!("/proc/{p}/task");
        let tasks = std::fs::read_dir(&dir).map_err(io(format!("read {dir}")))?;
        for t in tasks {
            let t = t.map_err(io(format!("read {dir}")))?;
            let path = t.path().join("children");
            // A zombie's threads are gone: no children file to read.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            out.extend(
                text.split_whitespace()
                    .filter_map(|w| w.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    Ok(out)
}

/// Refuses, before an image is begun, terminals other than the
/// container's `console` (dev, ino) held by its process `pid`: a pty the
/// process made itself, or a terminal passed in (sockets and inotify
/// watches are dumped in the container's own namespaces, by
/// corral-checkpoint).
fn refuse_other_terminals(
    st: &StateFile,
    pid: i32,
    console: Option<(u64, u64)>,
) -> Result<(), Error> {
    let dir = format!("/proc/{pid}/fd");
    // A zombie has no fds (and an empty fd directory).
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries {
        let e = e.map_err(io(format!("read {dir}")))?;
        let fd = e.file_name().to_string_lossy().into_owned();
        let Ok(link) = std::fs::read_link(e.path()) else {
            continue;
        };
        let link = link.to_string_lossy();
        let what = if link.starts_with("/dev/") {
            other_terminal(&e.path(), &link, console)
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::Unsupported(format!(
                "container {:?} pid {pid} fd {fd}: {what}; not supported yet in a container",
                st.id
            )));
        }
    }
    Ok(())
}

/// `Some(what)` when the fd at `path` (its link `link`) is a terminal or a
/// pty master other than the container's `console`.
fn other_terminal(path: &Path, link: &str, console: Option<(u64, u64)>) -> Option<String> {
    let md = std::fs::metadata(path).ok()?;
    if !md.file_type().is_char_device() || console == Some((md.dev(), md.ino())) {
        return None;
    }
    let (major, minor) = (rustix::fs::major(md.rdev()), rustix::fs::minor(md.rdev()));
    if (major, minor) == (5, 2) || (128..=135).contains(&major) {
        return Some(format!("pty master {link}"));
    }
    let tty = matches!(major, 3 | 4 | 136..=143) || (major == 5 && minor != 2);
    tty.then(|| format!("terminal {link}, not the container's console"))
}

/// A container frozen through its cgroup v2 `cgroup.freeze`. On drop it
/// is left as it was found: running (thawed) or paused (a v1 freezer
/// frozen again, or the v2 one kept frozen).
struct Frozen {
    /// The container's cgroup v2 directory; `None` on a host without one
    /// (pure cgroup v1): nothing is frozen, the dump seizes running tasks
    /// (each stopped task can no longer fork, so the walk of the tree
    /// settles), as a bare `corral cr dump` does.
    dir: Option<PathBuf>,
    /// Paused through a v1 freezer, which this thawed: freeze it again.
    v1_paused: Option<Cgroup>,
    /// Paused through this same v2 directory: leave it frozen.
    v2_paused: bool,
}

impl Frozen {
    /// Freezes `cg` through cgroup v2. A container `paused` through a v1
    /// freezer is frozen in v2 first, then thawed in v1: a task in the v1
    /// freezer cannot stop for ptrace, one in the v2 freezer can. Without
    /// a v2 directory, a paused container is thawed (and paused again at
    /// the end) and the rest is left to the dump's seize.
    fn freeze(cg: &Cgroup, paused: bool) -> Result<Frozen, Error> {
        let h = Hierarchy::detect()?;
        let dir = h.unified().and_then(|u| {
            cg.paths()
                .into_iter()
                .find(|p| p.starts_with(&u.mount_point) && *p != u.mount_point)
        });
        let v1_freezer = h.v1_mounts().iter().any(|m| {
            m.controllers.iter().any(|c| c == "freezer")
                && cg.paths().iter().any(|p| p.starts_with(&m.mount_point))
        });
        let mut frozen = Frozen {
            v2_paused: paused && !v1_freezer && dir.is_some(),
            dir,
            v1_paused: None,
        };
        if paused && v1_freezer {
            if frozen.dir.is_some() {
                frozen.request(true)?;
            }
            cg.thaw()?;
            frozen.v1_paused = Some(cg.clone());
        }
        frozen.set(true)?;
        Ok(frozen)
    }

    fn request(&self, freeze: bool) -> Result<(), Error> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let file = dir.join("cgroup.freeze");
        std::fs::write(&file, if freeze { "1" } else { "0" })
            .map_err(io(format!("write {}", file.display())))
    }

    fn set(&self, freeze: bool) -> Result<(), Error> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        self.request(freeze)?;
        let events = dir.join("cgroup.events");
        let want = if freeze { "frozen 1" } else { "frozen 0" };
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&events)
                .map_err(io(format!("read {}", events.display())))?;
            if text.lines().any(|l| l == want) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Unsupported(format!(
                    "{}: not {want} after {FREEZE_TIMEOUT:?}",
                    events.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(cg) = &self.v1_paused {
            // Tasks asleep in the v2 freezer count as frozen for v1's.
            if let Err(e) = cg.freeze() {
                tracing::warn!(error = %e, "pause again after checkpoint");
            }
        }
        if let Err(e) = self.set(self.v2_paused) {
            tracing::warn!(error = %e, "thaw after checkpoint");
        }
    }
}

/// Sends the restore's files to the init, each to become fd number `.1`.
fn send_files(sync: BorrowedFd<'_>, files: &[(BorrowedFd<'_>, i32)]) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    if files.len() > MAX_FILES {
        return Err(std::io::Error::other(format!(
            "{} files to hand over, more than {MAX_FILES}",
            files.len()
        )));
    }
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.0).collect();
    let mut payload = vec![FILES];
    let numbers: Vec<String> = files.iter().map(|f| f.1.to_string()).collect();
    payload.extend(numbers.join(" ").into_bytes());
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FILES))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("SCM_RIGHTS buffer too small"));
    }
    rustix::net::sendmsg(
        sync,
        &[IoSlice::new(&payload)],
        &mut cmsg,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives [`send_files`]' message: the fds and their target numbers.
fn recv_files(sync: BorrowedFd<'_>) -> Result<Vec<(OwnedFd, i32)>, String> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = vec![0u8; 1 << 16];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FILES))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let n = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match rustix::net::recvmsg(sync, &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC) {
            Ok(msg) => break msg.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("receive the restore's files: {e}")),
        }
    };
    let mut fds = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(r) = m {
            fds.extend(r);
        }
    }
    match buf[..n].split_first() {
        Some((&FILES, text)) => {
            let text = std::str::from_utf8(text).map_err(|_| "bad files message")?;
            let numbers: Vec<i32> = text
                .split_whitespace()
                .map(|n| n.parse().map_err(|_| "bad fd number in files message"))
                .collect::<Result<_, _>>()?;
            if numbers.len() != fds.len() {
                return Err(format!(
                    "files message names {} numbers for {} fds",
                    numbers.len(),
                    fds.len()
                ));
            }
            Ok(fds.into_iter().zip(numbers).collect())
        }
        Some((&tag::START, _)) | Some(_) => Err("unexpected sync message during restore".into()),
        None => Err("the runtime went away during restore".into()),
    }
}

/// The init's part of a restore (in the container, its environment built):
/// say ready, take the files at the numbers the restore chose, and stop
/// under our parent's ptrace. Returns only an error: the restore replaces
/// this process's memory while it is stopped.
pub(crate) fn stop_for_restore(sync: BorrowedFd<'_>) -> String {
    // Handlers of ours would point into memory that is about to go.
    sys::reset_signal_dispositions();
    if let Err(e) = init::send(sync, tag::READY, b"") {
        return format!("sync: {e}");
    }
    let files = match recv_files(sync) {
        Ok(f) => f,
        Err(e) => return e,
    };
    // Move them above every target first, so placing one never closes
    // another not yet placed.
    let top = files.iter().map(|f| f.1 + 1).max().unwrap_or(3);
    let mut moved = Vec::with_capacity(files.len());
    for (fd, n) in files {
        match rustix::io::fcntl_dupfd_cloexec(&fd, top) {
            Ok(high) => moved.push((high, n)),
            Err(e) => return format!("move a restore file above fd {top}: {e}"),
        }
    }
    for (fd, n) in &moved {
        if let Err(e) = sys::place_fd_for_restore(fd.as_fd(), *n) {
            return format!("place a restore file at fd {n}: {e}");
        }
    }
    match sys::traceme_and_stop() {
        Ok(()) => "resumed without being restored".into(),
        Err(e) => format!("stop for the restore: {e}"),
    }
}
