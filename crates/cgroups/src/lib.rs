//! cgroup v1, v2 and hybrid hierarchies for corral: find where each controller
//! is mounted ([`Hierarchy`]), then create, limit, freeze, signal and remove one
//! cgroup across every hierarchy it lives in ([`Cgroup`]).
//!
//! Module map:
//!
//! - [`hierarchy`]: `/proc/self/mountinfo` → which hierarchies exist, [`Layout`].
//! - [`path`]: OCI `linux.cgroupsPath` → a directory per hierarchy.
//! - [`dir`]: every read and write of a cgroup file, through a directory fd.
//! - [`hybrid`]: which hierarchy a controller lives in.
//! - [`v1`], [`v2`]: one file per controller, each writing what a
//!   `LinuxResources` asks of it; [`rdma`] and [`misc`], whose files are the
//!   same in both versions, sit beside them.
//! - [`stats`]: usage counters; [`metrics`]: everything `runc events
//!   --stats` reports (throttling, memory.stat, blkio, hugetlb, PSI).
//! - [`events`]: OOM kills, memory pressure and PSI triggers as they
//!   happen ([`Watcher`]); [`psi`]: the pressure files, parsed.
//! - [`conf`]: libcgroup's cgconfig.conf syntax (groups, perm, settings).
//! - [`settings`]: setting names across versions (`memory.limit_in_bytes` ↔
//!   `memory.max`), for the `corral cgroup` tool; `tool` adds the verbs
//!   libcgroup's tools need (groups in some controllers only, set/get by
//!   name, non-recursive delete, walking a hierarchy).
//! - `sys`: the crate's only `unsafe` (the `bpf()` and `kill()` system calls).
//!
//! The runtime calls `new`, `create`, `apply`, `add_task` and `destroy` for
//! every container it starts, so none of them walks directories or reads
//! files it does not need; the only sleeps are in bounded wait loops that start
//! at 1 ms.

pub mod cgroup;
pub mod conf;
pub mod dir;
pub mod events;
pub mod hierarchy;
pub mod hybrid;
mod lifecycle;
pub mod metrics;
pub mod misc;
pub mod path;
pub mod psi;
pub mod rdma;
pub mod settings;
pub mod stats;
mod sys;
pub mod tool;
pub mod v1;
pub mod v2;

pub use cgroup::Cgroup;
pub use events::{Event, PressureLevel, Watch, Watcher};
pub use hierarchy::{Hierarchy, Layout, UnifiedMount, V1Mount};
pub use hybrid::Controller;
pub use metrics::Metrics;
pub use stats::Stats;

use std::path::PathBuf;

/// Everything a [`Cgroup`] or [`Hierarchy`] operation can fail with; the
/// module errors carry the details.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Finding the mounted hierarchies failed.
    #[error(transparent)]
    Hierarchy(#[from] hierarchy::HierarchyError),
    /// `linux.cgroupsPath` could not be resolved.
    #[error(transparent)]
    Path(#[from] path::PathError),
    /// Reading, writing, creating or removing a cgroup file or directory failed.
    #[error(transparent)]
    File(#[from] dir::FileError),
    /// The v2 device controller program could not be built or attached.
    #[error(transparent)]
    Devices(#[from] v2::devices::DeviceError),
    /// OCI memory+swap that cgroup v2 cannot express.
    #[error(transparent)]
    Swap(v2::memory::SwapError),
    /// A resource was requested whose controller this cgroup does not have.
    #[error(
        "{resource} needs the {controller} controller, which is not available to cgroup {path}"
    )]
    ControllerUnavailable {
        /// The resource, as named in the OCI spec (`linux.resources.hugepageLimits`).
        resource: &'static str,
        /// The controller it needs.
        controller: Controller,
        /// `linux.cgroupsPath` of the cgroup.
        path: String,
    },
    /// The resource exists in the OCI spec but not in this cgroup version.
    #[error("{resource} is not supported on cgroup {version}")]
    Unsupported {
        /// The resource, as named in the OCI spec.
        resource: &'static str,
        /// "v1" or "v2".
        version: &'static str,
    },
    /// A `linux.resources.unified` key does not name a file of a cgroup.
    #[error("linux.resources.unified: invalid key {key:?}")]
    UnifiedKey {
        /// The offending key.
        key: String,
    },
    /// The freezer did not reach the wanted state in time.
    #[error("cgroup {path} did not become {want} within {waited_ms} ms")]
    FreezeTimeout {
        /// The freezer's directory.
        path: PathBuf,
        /// "frozen" or "thawed".
        want: &'static str,
        /// How long we waited.
        waited_ms: u128,
    },
    /// A cgroup could not be removed: processes stayed in it.
    #[error("cannot remove cgroup {path}: processes {pids:?} are still in it")]
    Busy {
        /// The directory that stayed.
        path: PathBuf,
        /// The processes still in it when we gave up (may be empty if only
        /// a child cgroup stayed).
        pids: Vec<i32>,
        /// The last `rmdir` error.
        #[source]
        source: std::io::Error,
    },
    /// A setting name or value cannot be used.
    #[error(transparent)]
    Setting(#[from] settings::SettingError),
    /// A setting was written to a file of another name (translated across
    /// cgroup versions), and the kernel refused it.
    #[error("setting {name}")]
    SettingWrite {
        /// The name as given.
        name: String,
        /// The refused write, naming the file and value (boxed: it would
        /// make every `Error` as large as itself plus the name).
        #[source]
        source: Box<dir::FileError>,
    },
    /// The cgroup has no file for the setting.
    #[error("cgroup {path} has no setting {name}")]
    UnknownSetting {
        /// The name as given.
        name: String,
        /// The directory looked in.
        path: PathBuf,
    },
    /// A controller name the kernel does not have.
    #[error("unknown controller {name:?}")]
    UnknownController {
        /// The name as given.
        name: String,
    },
    /// A controller that no mounted hierarchy offers.
    #[error("controller {name} is not mounted (no hierarchy offers it)")]
    NotMounted {
        /// The controller.
        name: String,
    },
    /// A group still holds processes or child groups.
    #[error("cgroup {path} is not empty: {what}")]
    NotEmpty {
        /// The directory.
        path: PathBuf,
        /// What is in it (pids, child groups) and what to do.
        what: String,
    },
    /// An event source could not be set up or waited on.
    #[error(transparent)]
    Watch(#[from] events::WatchError),
    /// Signalling a process of the cgroup failed.
    #[error("cannot send signal {signal} to pid {pid}")]
    Signal {
        /// The process.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the kernel refused for lack of permission (EACCES, EPERM,
    /// EROFS): a cgroup hierarchy not delegated to an unprivileged user.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::File(f) if matches!(f.raw_os_error(), Some(libc::EACCES | libc::EPERM | libc::EROFS)))
    }
}
