//! cgroup v1: one hierarchy per controller (or group of controllers). Each
//! file here writes the part of `LinuxResources` its controller owns, into
//! that controller's directory, in the order the kernel needs.

pub mod blkio;
pub mod cpu;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod memory;
pub mod net_cls;
pub mod net_prio;
pub mod perf_event;
pub mod pids;
