//! v1 `perf_event` controller: nothing to limit. A group in it lets
//! `perf stat -G` / `perf record --cgroup` count the group's tasks only, so
//! attaching is all there is: [`crate::Cgroup::create`] makes the directory
//! in a `perf_event` hierarchy like in any other, and
//! [`crate::Cgroup::add_task`] moves the process there. OCI has no field for
//! it. In cgroup v2 the controller is always on and needs no directory of
//! its own ([`crate::Controller::v2_core`]).

/// The subsystem name, as in `/proc/cgroups` and `/proc/PID/cgroup`.
pub const NAME: &str = "perf_event";
