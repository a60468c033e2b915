//! corral's OCI runtime: from a bundle to a running container and back.
//!
//! Module map:
//! - [`spec`]: load, validate and generate `config.json`.
//! - [`state`]: the state store (one locked directory per container).
//! - [`container`]: the lifecycle as the runtime's parent sees it.
//! - [`exec`]: a new process in a live container.
//! - [`live`]: pause, resume, update, ps and events on a live container.
//! - [`checkpoint`]: `checkpoint` and `restore` of a container (runc's
//!   commands), over `corral-checkpoint`.
//! - [`init`]: the container's init between `clone3` and `execve`.
//! - [`rootfs`]: mounts, /dev, masked and read-only paths, pivot_root — by fd.
//! - [`process`]: rlimits, user, capabilities, program lookup.
//! - [`hooks`]: OCI hooks.
//! - [`seccomp`]: the OCI seccomp section through libseccomp, and the notify agent protocol.
//! - [`id`], [`signal`]: parsing what the command line names.
//! - [`syslog`]: per-container /dev/log, received into the state directory.
//! - [`selfexe`]: re-execute from a read-only mount of the binary (CVE-2019-5736).
//! - [`tty`]: corral's own console for a foreground process with a terminal.
//! - [`failpoint`]: named failures for tests (the `failpoints` feature).
//! - `sys`: the crate's only `unsafe` code.

pub mod checkpoint;
pub mod container;
pub mod criu_stats;
pub mod exec;
pub mod failpoint;
pub mod hooks;
pub mod id;
pub mod init;
pub mod live;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod selfexe;
pub mod signal;
pub mod spec;
pub mod state;
mod sys;
pub mod syslog;
pub mod tty;

pub use container::{CreateOptions, Error, OciState, RunOutcome};
pub use state::{Status, Store};
