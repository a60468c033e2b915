//! The attributes of the container's process, applied by its init just
//! before `execve`: rlimits, scheduling, user and groups, capabilities,
//! no_new_privs, the program lookup and its environment.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process};

use crate::sys;

/// Applying a process attribute failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A system call failed.
    #[error("{what}")]
    Sys {
        /// What was being set, with the value.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A capability could not be set.
    #[error("set {set} capabilities")]
    Caps {
        /// Which set.
        set: &'static str,
        /// Why.
        #[source]
        source: caps::errors::CapsError,
    },
    /// The program does not exist in the container.
    #[error("exec: {name:?}: executable file not found in $PATH")]
    NotFound {
        /// The program as given in `process.args[0]`.
        name: String,
    },
    /// The program exists but cannot be executed.
    #[error("exec: {path}: permission denied")]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
    },
    /// A string contained a NUL byte.
    #[error("{what} contains a NUL byte")]
    Nul {
        /// Which string.
        what: &'static str,
    },
}

fn sys_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcessError {
    let what = what.into();
    move |source| ProcessError::Sys { what, source }
}

fn rlimit_resource(t: PosixRlimitType) -> i32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

/// rlimits, I/O priority, scheduler, CPU affinity: everything that needs
/// privileges the user switch may drop.
pub fn apply_limits(p: &Process) -> Result<(), ProcessError> {
    for r in p.rlimits().as_deref().unwrap_or_default() {
        sys::setrlimit(rlimit_resource(r.typ()), r.soft(), r.hard()).map_err(sys_err(format!(
            "set rlimit {:?} to {}:{}",
            r.typ(),
            r.soft(),
            r.hard()
        )))?;
    }
    if let Some(io) = p.io_priority() {
        let class = match io.class() {
            oci_spec::runtime::IOPriorityClass::IoprioClassRt => 1,
            oci_spec::runtime::IOPriorityClass::IoprioClassBe => 2,
            oci_spec::runtime::IOPriorityClass::IoprioClassIdle => 3,
        };
        let prio = (class << 13) | io.priority() as i32;
        sys::ioprio_set(prio).map_err(sys_err(format!("set I/O priority {prio}")))?;
    }
    if let Some(s) = p.scheduler() {
        use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
        let policy = match s.policy() {
            P::SchedOther => 0,
            P::SchedFifo => 1,
            P::SchedRr => 2,
            P::SchedBatch => 3,
            P::SchedIso => 4,
            P::SchedIdle => 5,
            P::SchedDeadline => 6,
        };
        let mut flags = 0u64;
        for f in s.flags().as_deref().unwrap_or_default() {
            flags |= match f {
                F::SchedResetOnFork => 0x01,
                F::SchedFlagReclaim => 0x02,
                F::SchedFlagDLOverrun => 0x04,
                F::SchedFlagKeepPolicy => 0x08,
                F::SchedFlagKeepParams => 0x10,
                F::SchedFlagUtilClampMin => 0x20,
                F::SchedFlagUtilClampMax => 0x40,
            };
        }
        sys::sched_setattr(
            policy,
            flags,
            s.nice().unwrap_or(0),
            s.priority().unwrap_or(0) as u32,
            s.runtime().unwrap_or(0),
            s.deadline().unwrap_or(0),
            s.period().unwrap_or(0),
        )
        .map_err(sys_err(format!("set scheduler {:?}", s.policy())))?;
    }
    if let Some(aff) = p
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().clone())
    {
        let cpus = parse_cpu_list(&aff).ok_or_else(|| {
            sys_err(format!("parse execCPUAffinity.final {aff:?}"))(
                std::io::Error::from_raw_os_error(libc::EINVAL),
            )
        })?;
        sys::set_affinity(&cpus).map_err(sys_err(format!("set CPU affinity {aff}")))?;
    }
    Ok(())
}

/// Parses a cpu list like `0-3,7`.
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b >= 8192 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

fn cap_set(list: &Option<oci_spec::runtime::Capabilities>) -> caps::CapsHashSet {
    list.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<caps::Capability>().ok())
        .collect()
}

/// Switches to the container's user and sets its capabilities: the bounding
/// set is cut while we still hold CAP_SETPCAP, ids change with keep-caps on,
/// then the other four sets are set exactly.
pub fn switch_user(p: &Process, userns: bool) -> Result<(), ProcessError> {
    let user = p.user();
    let none = LinuxCapabilities::default();
    let wanted = p.capabilities().as_ref().unwrap_or(&none);
    let bounding = cap_set(wanted.bounding());
    for cap in caps::all() {
        if !bounding.contains(&cap)
            && caps::has_cap(None, caps::CapSet::Bounding, cap).unwrap_or(false)
        {
            caps::drop(None, caps::CapSet::Bounding, cap).map_err(|source| ProcessError::Caps {
                set: "bounding",
                source,
            })?;
        }
    }
    rustix::thread::set_keep_capabilities(true).map_err(|e| sys_err("set keep-caps")(e.into()))?;
    let groups: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    // In a user namespace whose setgroups is denied, only an empty list is
    // refused; leave the groups alone unless some are asked for.
    if !userns || !groups.is_empty() {
        sys::setgroups(&groups).map_err(sys_err(format!("set additional gids {groups:?}")))?;
    }
    sys::setresgid(user.gid()).map_err(sys_err(format!("set gid {}", user.gid())))?;
    sys::setresuid(user.uid()).map_err(sys_err(format!("set uid {}", user.uid())))?;
    rustix::thread::set_keep_capabilities(false)
        .map_err(|e| sys_err("clear keep-caps")(e.into()))?;
    // Effective first: each capset must keep effective within permitted.
    let sets = [
        ("effective", caps::CapSet::Effective, wanted.effective()),
        ("permitted", caps::CapSet::Permitted, wanted.permitted()),
        (
            "inheritable",
            caps::CapSet::Inheritable,
            wanted.inheritable(),
        ),
    ];
    for (name, set, list) in sets {
        caps::set(None, set, &cap_set(list))
            .map_err(|source| ProcessError::Caps { set: name, source })?;
    }
    let ambient = cap_set(wanted.ambient());
    caps::clear(None, caps::CapSet::Ambient).map_err(|source| ProcessError::Caps {
        set: "ambient",
        source,
    })?;
    for cap in ambient {
        // The kernel refuses ambient caps that are not both permitted and
        // inheritable; runc skips those too.
        let _ = caps::raise(None, caps::CapSet::Ambient, cap);
    }
    if let Some(mask) = p.user().umask() {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask & 0o777));
    }
    Ok(())
}

/// The program to execute: `args[0]` if it has a `/`, else the first
/// executable match in the process's `PATH`. Runs after the root switch, so
/// it looks inside the container.
pub fn find_program(p: &Process) -> Result<CString, ProcessError> {
    let name = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(&name)]
    } else {
        let path = env_value(p, "PATH")
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(&name))
            .collect()
    };
    let mut denied = None;
    for c in candidates {
        let Ok(meta) = std::fs::metadata(&c) else {
            continue;
        };
        if meta.is_dir() {
            continue;
        }
        if rustix::fs::access(&c, rustix::fs::Access::EXEC_OK).is_ok() {
            return CString::new(c.as_os_str().as_bytes()).map_err(|_| ProcessError::Nul {
                what: "process.args[0]",
            });
        }
        denied.get_or_insert(c);
    }
    Err(match denied {
        Some(path) => ProcessError::NotExecutable { path },
        None => ProcessError::NotFound { name },
    })
}

fn env_value<'a>(p: &'a Process, key: &str) -> Option<&'a str> {
    p.env()
        .iter()
        .flatten()
        .rev()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// argv and envp as C strings.
pub fn exec_args(p: &Process) -> Result<(Vec<CString>, Vec<CString>), ProcessError> {
    let argv = p
        .args()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ProcessError::Nul {
            what: "process.args",
        })?;
    let mut envp = p
        .env()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ProcessError::Nul {
            what: "process.env",
        })?;
    if env_value(p, "HOME").is_none() {
        // As runc: HOME from the user's entry in the container's
        // /etc/passwd when the spec sets none, else "/".
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let home = home_of(&passwd, p.user().uid()).unwrap_or("/");
        envp.push(
            CString::new(format!("HOME={home}")).map_err(|_| ProcessError::Nul { what: "HOME" })?,
        );
    }
    Ok((argv, envp))
}

/// The home directory of `uid` in passwd text.
fn home_of(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then_some(f[5])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_from_passwd() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
        assert_eq!(home_of(pw, 0), Some("/root"));
        assert_eq!(home_of(pw, 65534), Some("/nonexistent"));
        assert_eq!(home_of(pw, 5), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,7"), Some(vec![0, 1, 2, 3, 7]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn oci_capability_names_map_to_caps() {
        let list = Some(
            [
                oci_spec::runtime::Capability::Kill,
                oci_spec::runtime::Capability::NetBindService,
            ]
            .into_iter()
            .collect(),
        );
        let set = cap_set(&list);
        assert!(set.contains(&caps::Capability::CAP_KILL));
        assert!(set.contains(&caps::Capability::CAP_NET_BIND_SERVICE));
        assert_eq!(set.len(), 2);
    }
}
