//! The state store: one directory per container under the state root, holding
//! `state.json` (written atomically: temp file + rename) and, while the
//! container is created but not started, the `exec.fifo` its init waits on.
//!
//! Liveness is read from the kernel, never trusted from the file: the
//! recorded pid counts only while `/proc/PID/stat` shows the recorded start
//! time, so a reused pid is never signalled.
//!
//! Layout:
//! ```text
//! <root>/                  0700, created on demand
//!   <id>/                  0700; flock(LOCK_EX) held by every mutating command
//!     state.json           StateFile as JSON
//!     exec.fifo            exists between create and start
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

use crate::id::{validate_id, IdError};

/// Name of the FIFO a created container's init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// The state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The id is not acceptable.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A container with this id exists already.
    #[error("container {0:?} already exists")]
    Exists(String),
    /// No container with this id.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// An operation on a file of the store failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done ("create", "read", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// state.json is not valid.
    #[error("state of container {id:?} is corrupt ({path})")]
    Corrupt {
        /// The container.
        id: String,
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The container's entry in the store is not a directory: a symlink
    /// (never followed) or a file.
    #[error("{path} is a symlink or a file, not the state directory of container {id:?}")]
    NotADir {
        /// The container.
        id: String,
        /// The entry.
        path: PathBuf,
    },
    /// state.json is not a regular file: a symlink (never followed), a FIFO
    /// (never waited on), a directory.
    #[error("state of container {id:?} is corrupt ({path} is {what}, not a file)")]
    NotAFile {
        /// The container.
        id: String,
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The container's status as the OCI spec defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// The user's program runs.
    Running,
    /// Frozen.
    Paused,
    /// The init has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateFile {
    /// Container id.
    pub id: String,
    /// Pid of the container's init in the runtime's pid namespace.
    pub pid: i32,
    /// Start time of that pid (field 22 of /proc/PID/stat, clock ticks since
    /// boot): proves the pid still names our process.
    pub start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// User name of the owner (runc reports "" for root).
    pub owner: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup, as resolved at creation.
    pub cgroup: Option<corral_cgroups::Cgroup>,
    /// The config the container was created with (hooks run at start and
    /// delete come from here, not from a bundle that may have changed).
    pub config: oci_spec::runtime::Spec,
}

/// The state root directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// A locked container directory.
pub struct ContainerDir {
    /// The container id.
    pub id: String,
    /// The directory path.
    pub path: PathBuf,
    dir: OwnedFd,
}

impl Store {
    /// A store rooted at `root` (not created until needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    /// The root path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory of a new container and locks it. Fails if it
    /// exists: with `mkdir` as the arbiter, of many concurrent creates of one
    /// id exactly one wins.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(io_err("create state root", &self.root))?;
        let path = self.root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_owned()))
            }
            Err(e) => return Err(io_err("create", &path)(e)),
        }
        ContainerDir::lock(id, path)
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        ContainerDir::lock(id, self.root.join(id))
    }

    /// The ids of every container in the store, sorted.
    pub fn list(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &self.root)(e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl ContainerDir {
    fn lock(id: &str, path: PathBuf) -> Result<ContainerDir, StateError> {
        // No symlinks: the directory must be the one we created under the root.
        let dir = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => StateError::NotFound(id.to_owned()),
            rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP => StateError::NotADir {
                id: id.to_owned(),
                path: path.clone(),
            },
            e => io_err("open", &path)(e.into()),
        })?;
        rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &path)(e.into()))?;
        Ok(ContainerDir {
            id: id.to_owned(),
            path,
            dir,
        })
    }

    fn open_file(&self, name: &str, flags: OFlags) -> std::io::Result<File> {
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
        // openat2 refuses a mode without O_CREAT.
        let mode = if flags.contains(OFlags::CREATE) {
            Mode::from_raw_mode(0o600)
        } else {
            Mode::empty()
        };
        let fd = rustix::fs::openat2(&self.dir, name, flags | OFlags::CLOEXEC, mode, resolve)?;
        Ok(File::from(fd))
    }

    /// Writes state.json atomically.
    pub fn save(&self, state: &StateFile) -> Result<(), StateError> {
        let tmp = format!(".{STATE_FILE}.tmp");
        let path = self.path.join(STATE_FILE);
        let data = serde_json::to_vec(state).map_err(|e| io_err("encode", &path)(e.into()))?;
        let _ = rustix::fs::unlinkat(&self.dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        let mut f = self
            .open_file(&tmp, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)
            .map_err(io_err("create", &path))?;
        f.write_all(&data).map_err(io_err("write", &path))?;
        rustix::fs::renameat(&self.dir, tmp.as_str(), &self.dir, STATE_FILE)
            .map_err(|e| io_err("rename", &path)(e.into()))?;
        Ok(())
    }

    /// Reads state.json.
    pub fn load(&self) -> Result<StateFile, StateError> {
        let path = self.path.join(STATE_FILE);
        let not_a_file = |what| StateError::NotAFile {
            id: self.id.clone(),
            path: path.clone(),
            what,
        };
        // O_NONBLOCK: a FIFO put there must not make us wait for a writer.
        let f = self
            .open_file(STATE_FILE, OFlags::RDONLY | OFlags::NONBLOCK)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => StateError::NotFound(self.id.clone()),
                // RESOLVE_NO_SYMLINKS refuses a symlink with ELOOP.
                Some(libc::ELOOP) => not_a_file("a symlink"),
                _ => io_err("open", &path)(e),
            })?;
        let kind = rustix::fs::fstat(&f)
            .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode))
            .map_err(|e| io_err("stat", &path)(e.into()))?;
        match kind {
            rustix::fs::FileType::RegularFile => {}
            rustix::fs::FileType::Fifo => return Err(not_a_file("a FIFO")),
            rustix::fs::FileType::Directory => return Err(not_a_file("a directory")),
            _ => return Err(not_a_file("a special file")),
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut &f, &mut data).map_err(io_err("read", &path))?;
        // Bytes, not a string: invalid UTF-8 is corrupt state like any other.
        serde_json::from_slice(&data).map_err(|source| StateError::Corrupt {
            id: self.id.clone(),
            path,
            source,
        })
    }

    /// Creates the exec FIFO.
    pub fn make_fifo(&self) -> Result<(), StateError> {
        rustix::fs::mknodat(
            &self.dir,
            EXEC_FIFO,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(|e| io_err("create", &self.path.join(EXEC_FIFO))(e.into()))
    }

    /// Whether the exec FIFO exists (the container is created, not started).
    pub fn has_fifo(&self) -> bool {
        rustix::fs::statat(&self.dir, EXEC_FIFO, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Whether an init waits on the exec FIFO: it exists and someone holds
    /// it open for reading. A FIFO nobody reads is what a `start` killed
    /// between waking the init and removing it leaves behind: the init has
    /// gone on to exec, so the container is no longer "created".
    pub fn init_waits_on_fifo(&self) -> bool {
        match self.open_fifo_for_start() {
            // Opening without writing wakes nothing: the init reads on.
            Ok(_) => true,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(_) => self.has_fifo(),
        }
    }

    /// Opens the exec FIFO for reading and writing: the init's end, which
    /// never blocks to open and keeps the FIFO readable while it waits.
    pub fn open_fifo_for_init(&self) -> Result<OwnedFd, StateError> {
        self.open_file(EXEC_FIFO, OFlags::RDWR)
            .map(OwnedFd::from)
            .map_err(io_err("open", &self.path.join(EXEC_FIFO)))
    }

    /// Opens the exec FIFO to wake the init: fails (ENXIO) when no init
    /// holds it open any more.
    pub fn open_fifo_for_start(&self) -> std::io::Result<File> {
        self.open_file(EXEC_FIFO, OFlags::WRONLY | OFlags::NONBLOCK)
    }

    /// Removes the exec FIFO (after start).
    pub fn remove_fifo(&self) {
        let _ = rustix::fs::unlinkat(&self.dir, EXEC_FIFO, rustix::fs::AtFlags::empty());
    }

    /// Removes the directory and everything in it. Consumes the lock.
    pub fn remove(self) -> Result<(), StateError> {
        std::fs::remove_dir_all(&self.path).map_err(io_err("remove", &self.path))
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory fd.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl Drop for ContainerDir {
    /// Unlocks explicitly: a container init cloned while we held the lock
    /// shares the open file description, and closing our fd alone would
    /// leave the lock held until that init execs.
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.dir, rustix::fs::FlockOperation::Unlock);
    }
}

/// Reads the start time (field 22) and state (field 3) of `pid` from
/// /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// Whether `pid` still is the live (not zombie) process started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    pid > 0 && matches!(proc_stat(pid), Some((st, s)) if st == start_time && s != 'Z' && s != 'X')
}

/// Formats a time as RFC 3339 with nanoseconds, in UTC.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_795_441_802, 5);
        assert_eq!(rfc3339(t), "2026-11-23T13:50:02.000000005Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }

    #[test]
    fn our_own_pid_is_alive_and_a_wrong_start_time_is_not() {
        let pid = std::process::id() as i32;
        let (start, _) = proc_stat(pid).unwrap();
        assert!(is_alive(pid, start));
        assert!(!is_alive(pid, start + 1));
        assert!(!is_alive(0, start));
    }

    #[test]
    fn created_needs_an_init_reading_the_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("state"));
        let c = store.create("fifo").unwrap();
        assert!(!c.init_waits_on_fifo(), "no fifo yet");
        c.make_fifo().unwrap();
        let init_end = c.open_fifo_for_init().unwrap();
        assert!(c.init_waits_on_fifo(), "the init holds it open");
        // The probe wrote nothing: the init's end has no byte to read.
        let mut fds = [rustix::event::PollFd::new(
            &init_end,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        assert_eq!(rustix::event::poll(&mut fds, Some(&zero)).unwrap(), 0);
        drop(init_end); // the init went on to execve
        assert!(c.has_fifo());
        assert!(!c.init_waits_on_fifo(), "a fifo nobody reads");
        c.remove().unwrap();
    }

    #[test]
    fn create_is_exclusive_and_list_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("state"));
        let c = store.create("abc").unwrap();
        drop(c);
        assert!(matches!(store.create("abc"), Err(StateError::Exists(_))));
        assert!(matches!(store.create("../x"), Err(StateError::Id(_))));
        assert_eq!(store.list().unwrap(), vec!["abc".to_string()]);
        assert!(matches!(store.open("nope"), Err(StateError::NotFound(_))));
        let c = store.open("abc").unwrap();
        assert!(matches!(c.load(), Err(StateError::NotFound(_))));
        std::fs::write(c.path.join(STATE_FILE), b"{trunc").unwrap();
        assert!(matches!(c.load(), Err(StateError::Corrupt { .. })));
        c.remove().unwrap();
        assert!(store.list().unwrap().is_empty());
    }
}
