//! `checkpoint` and `restore` of a container, runc's commands, over
//! `corral-checkpoint` (no CRIU).
//!
//! Checkpoint: refuse what a restore could not bring back (a mount made
//! after the container started, a network interface other than loopback in
//! a network namespace of ours, SysV IPC objects in an IPC namespace of
//! ours, a terminal); freeze the container through its cgroup v2
//! `cgroup.freeze` (a frozen task still stops for `PTRACE_INTERRUPT`, so the
//! dump seizes tasks that cannot fork or exit meanwhile); dump its init and
//! every descendant (a process of the cgroup outside that tree is refused)
//! with the pids of its pid namespace, the init's stdio left out (the
//! restoring runtime gives its own, as runc does; children that share it
//! inherit the new one); write `container.json` beside the image.
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
//! the rebuild, not re-applied from config.json.
//!
//! ```text
//! <image-path>/inventory.json, task-*.json, pages-*.img   corral-checkpoint's image
//! <image-path>/container.json                             ContainerImage
//! <image-path>/inventory.img                              a marker for podman
//! <state>/<id>/mounts                                     mount points at start
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_cgroups::{Cgroup, Hierarchy};
use corral_checkpoint::{collect, container as ckpt, image, restore as ckpt_restore};
use oci_spec::runtime::LinuxNamespaceType;
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::container::{self, errno, io, CreateOptions, Created, Error, RunOutcome};
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
    let frozen = Frozen::freeze(cgroup, status == Status::Paused)?;
    let mounts = refuse_unrestorable(&dir, &st, opts.empty_netns)?;
    // The dump takes the init's tree; anything else in the cgroup (a
    // `corral exec` process, a child of ours) would be lost.
    let tree = descendants(st.pid)?;
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
        // No shell job (a container with a terminal is refused above);
        // the CLI refuses --tcp-established, --ext-unix-sk and --file-locks
        // for containers before anything is written.
        ..Default::default()
    };
    // Frozen, every task is seized; then thawed, each stays in its ptrace
    // stop while the dump runs code in it.
    let thaw = || {
        frozen
            .set(false)
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    let extra = ckpt::DumpExtra {
        ns_pids: true,
        inherit_stdio: true,
        on_seized: Some(&thaw),
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
        stdio_inherited: true,
        mounts,
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
    image::ImageDir::open(&opts.image_path)
        .map_err(|e| failed(format!("image {}", opts.image_path.display()))(e.into()))?;
    let bundle = std::path::absolute(&opts.create.bundle)
        .map_err(io(format!("bundle {}", opts.create.bundle.display())))?;
    let spec = crate::spec::load(&bundle)?;
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        return Err(Error::Unsupported(
            "process.terminal: restoring a container with a terminal is not supported yet".into(),
        ));
    }
    let mut create = opts.create.clone();
    create.restore = true;
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
        let mut place = |files: &[(BorrowedFd<'_>, i32)]| {
            send_files(sync.as_fd(), files)?;
            Ok(pid)
        };
        let mut into = ckpt::IntoTask {
            root: root.as_fd(),
            place_files: &mut place,
            keep_stdio: info.stdio_inherited,
        };
        let r = ckpt_restore::restore_into(&opts.image_path, &mut into).map_err(|e| {
            failed(format!(
                "restore container {id:?} from {}",
                opts.image_path.display()
            ))(e.into())
        })?;
        write_log(
            opts.work_path.as_deref(),
            "restore.log",
            &format!(
                "container {id} pid {pid}: {} bytes of pages, {:?}\n",
                r.page_bytes, r.elapsed
            ),
        )?;
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

/// Whether config.json gives the container a namespace of `typ` of its own
/// (made by us, not joined by path).
fn owns_namespace(st: &StateFile, typ: LinuxNamespaceType) -> bool {
    st.config
        .linux()
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
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
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

/// Refuses, by name, what a restore from config.json could not bring back;
/// returns the container's mount points.
fn refuse_unrestorable(
    dir: &ContainerDir,
    st: &StateFile,
    empty_netns: bool,
) -> Result<Vec<String>, Error> {
    let id = &st.id;
    let refuse = |what: String| Err(Error::Unsupported(format!("container {id:?}: {what}")));
    if st
        .config
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        return refuse("process.terminal: a container with a terminal; not supported yet".into());
    }
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
    for pid in descendants(st.pid)? {
        refuse_named_files(st, pid)?;
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
    if owns_namespace(st, LinuxNamespaceType::Ipc) {
        if let Some(obj) = sysv_objects(st.pid)?.first() {
            return refuse(format!("SysV IPC {obj}; not supported yet"));
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

/// Refuses fds whose dump or restore would look in the runtime's
/// filesystem or network namespace rather than the container's: sockets
/// (read with sock_diag from outside; a named one would be bound outside)
/// and inotify watches (by path). corral-checkpoint makes them in the
/// restoring process, outside the container.
fn refuse_named_files(st: &StateFile, pid: i32) -> Result<(), Error> {
    // The init's: a zombie has no network namespace to show.
    let path = format!("/proc/{}/net/unix", st.pid);
    let unix = std::fs::read_to_string(&path).map_err(io(format!("read {path}")))?;
    // Num RefCount Protocol Flags Type St Inode [Path]
    let named = |ino: &str| {
        unix.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(6) == Some(&ino)).then(|| f.get(7).map(|p| (*p).to_owned()))?
        })
    };
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
        let what = if link == "anon_inode:inotify" {
            Some("inotify (its watches name paths)".to_owned())
        } else {
            link.strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
                .map(|ino| match named(ino) {
                    Some(name) => format!("unix socket named {name}"),
                    // corral-checkpoint reads sockets with sock_diag from
                    // its own network namespace, where the container's
                    // are not found.
                    None => format!("socket {link}"),
                })
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

/// The SysV IPC objects of `pid`'s IPC namespace, read from /proc/sysvipc
/// by a thread of ours that joins that namespace (those files show the
/// reader's).
fn sysv_objects(pid: i32) -> Result<Vec<String>, Error> {
    let path = format!("/proc/{pid}/ns/ipc");
    let ns = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(errno(format!("open {path}")))?;
    let found = std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::InterProcessCommunication),
            )?;
            let mut found = Vec::new();
            for (file, kind) in [
                ("shm", "shared memory segment"),
                ("sem", "semaphore set"),
                ("msg", "message queue"),
            ] {
                let text = std::fs::read_to_string(format!("/proc/sysvipc/{file}"))?;
                for l in text.lines().skip(1) {
                    let mut f = l.split_whitespace();
                    if let (Some(key), Some(id)) = (f.next(), f.next()) {
                        found.push(format!("{kind} key {key} id {id}"));
                    }
                }
            }
            Ok::<_, std::io::Error>(found)
        })
        .join()
    });
    match found {
        Ok(r) => r.map_err(io(format!("list the SysV IPC objects of pid {pid}"))),
        Err(_) => Err(Error::Unsupported(
            "listing SysV IPC objects panicked".into(),
        )),
    }
}

/// A container frozen through its cgroup v2 `cgroup.freeze`. On drop it
/// is left as it was found: running (thawed) or paused (a v1 freezer
/// frozen again, or the v2 one kept frozen).
struct Frozen {
    dir: PathBuf,
    /// Paused through a v1 freezer, which this thawed: freeze it again.
    v1_paused: Option<Cgroup>,
    /// Paused through this same v2 directory: leave it frozen.
    v2_paused: bool,
}

impl Frozen {
    /// Freezes `cg` through cgroup v2. A container `paused` through a v1
    /// freezer is frozen in v2 first, then thawed in v1: a task in the v1
    /// freezer cannot stop for ptrace, one in the v2 freezer can.
    fn freeze(cg: &Cgroup, paused: bool) -> Result<Frozen, Error> {
        let h = Hierarchy::detect()?;
        let dir = h
            .unified()
            .and_then(|u| {
                cg.paths()
                    .into_iter()
                    .find(|p| p.starts_with(&u.mount_point) && *p != u.mount_point)
            })
            .ok_or_else(|| {
                Error::Unsupported(
                    "no cgroup v2 directory to freeze the container in (a cgroup v1 freezer holds tasks where ptrace cannot stop them)".into(),
                )
            })?;
        let v1_freezer = h.v1_mounts().iter().any(|m| {
            m.controllers.iter().any(|c| c == "freezer")
                && cg.paths().iter().any(|p| p.starts_with(&m.mount_point))
        });
        let mut frozen = Frozen {
            dir,
            v1_paused: None,
            v2_paused: paused && !v1_freezer,
        };
        if paused && v1_freezer {
            frozen.request(true)?;
            cg.thaw()?;
            frozen.v1_paused = Some(cg.clone());
        }
        frozen.set(true)?;
        Ok(frozen)
    }

    fn request(&self, freeze: bool) -> Result<(), Error> {
        let file = self.dir.join("cgroup.freeze");
        std::fs::write(&file, if freeze { "1" } else { "0" })
            .map_err(io(format!("write {}", file.display())))
    }

    fn set(&self, freeze: bool) -> Result<(), Error> {
        self.request(freeze)?;
        let events = self.dir.join("cgroup.events");
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
