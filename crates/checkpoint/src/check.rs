//! `corral cr check`: probes each kernel feature checkpoint/restore uses.
//!
//! Each probe really exercises the feature (a `clone3` with `set_tid`, a
//! ptrace of a stopped child, a `PAGEMAP_SCAN` over our own page) rather
//! than reading a version number, because distribution kernels backport and
//! configs differ.

use std::fs;
use std::os::fd::AsFd;

use crate::sys::{self, WaitStatus};

/// How much a missing feature matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// dump or restore cannot work without it.
    Required,
    /// A feature that needs it (pre-dump, lazy pages, fd copies…) is off.
    Optional,
}

/// The outcome of one probe.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Probe {
    /// Short feature name.
    pub name: &'static str,
    /// Whether dump/restore need it.
    pub need: Need,
    /// Whether the kernel has it.
    pub ok: bool,
    /// What was found (a size, an errno).
    pub detail: String,
}

fn probe(name: &'static str, need: Need, r: Result<String, String>) -> Probe {
    let (ok, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Probe {
        name,
        need,
        ok,
        detail,
    }
}

/// Runs every probe. Forks short-lived children (they are reaped before
/// this returns).
pub fn run() -> Vec<Probe> {
    use Need::*;
    let mut out = vec![
        probe("clone3 set_tid", Required, clone3_set_tid()),
        probe("process_vm_readv", Required, process_vm_readv()),
        probe("/proc/PID/pagemap", Required, pagemap()),
        probe("PR_SET_MM_MAP", Required, mm_map()),
    ];
    out.extend(ptrace_probes());
    out.extend([
        probe("vdso layout", Required, vdso_layout()),
        probe("pidfd_getfd", Optional, pidfd_getfd()),
        probe("kcmp", Optional, kcmp()),
        probe("memfd_create", Optional, memfd()),
        probe("time namespaces", Optional, exists("/proc/self/ns/time")),
        probe(
            "ns_last_pid",
            Optional,
            exists("/proc/sys/kernel/ns_last_pid"),
        ),
        probe("userfaultfd WP_ASYNC", Optional, uffd_wp_async()),
        probe(
            "PAGEMAP_SCAN",
            Optional,
            sys::pagemap_scan_works()
                .map(|()| String::new())
                .map_err(|e| e.to_string()),
        ),
    ]);
    out
}

fn exists(path: &str) -> Result<String, String> {
    fs::metadata(path)
        .map(|_| String::new())
        .map_err(|e| format!("{path}: {e}"))
}

fn err(e: std::io::Error) -> String {
    e.to_string()
}

/// Forks a child under a pid picked past `ns_last_pid`, as a restore does.
fn clone3_set_tid() -> Result<String, String> {
    let last: i32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .map_err(err)?
        .trim()
        .parse()
        .map_err(|_| "ns_last_pid unreadable".to_string())?;
    let max: i32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let mut last_err = String::new();
    for i in 0..16 {
        let want = (last + 1000 + i * 7919) % max + 300;
        match sys::fork_traced_child(Some(want)) {
            Ok(child) => {
                let _ = sys::kill(child.pid, libc::SIGKILL);
                let _ = reap(child.pid);
                return if child.pid == want {
                    Ok(format!("got pid {want}"))
                } else {
                    Err(format!("asked pid {want}, got {}", child.pid))
                };
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => last_err = e.to_string(),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last_err)
}

fn reap(pid: i32) -> std::io::Result<()> {
    while let WaitStatus::Stopped { .. } = sys::waitpid(pid)? {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = sys::ptrace_cont(pid, 0);
    }
    Ok(())
}

fn process_vm_readv() -> Result<String, String> {
    let src = [0x5au8; 64];
    let mut dst = [0u8; 64];
    let me = std::process::id() as i32;
    sys::process_vm_readv(me, &mut dst, &[(src.as_ptr() as u64, 64)]).map_err(err)?;
    (dst == src)
        .then(String::new)
        .ok_or_else(|| "read wrong bytes".into())
}

fn pagemap() -> Result<String, String> {
    use std::os::unix::fs::FileExt as _;
    let page = vec![1u8; 8192];
    let addr = (page.as_ptr() as u64 + 4095) & !4095;
    let f = fs::File::open("/proc/self/pagemap").map_err(err)?;
    let mut e = [0u8; 8];
    f.read_exact_at(&mut e, addr / 4096 * 8).map_err(err)?;
    let entry = u64::from_le_bytes(e);
    if entry >> 63 == 1 && entry & ((1 << 55) - 1) != 0 {
        Ok("present bit and PFNs visible".into())
    } else if entry >> 63 == 1 {
        Ok("present bit visible, PFNs hidden".into())
    } else {
        Err(format!("a touched page reads {entry:#x}"))
    }
}

fn mm_map() -> Result<String, String> {
    let size = sys::prctl_mm_map_size().map_err(err)?;
    Ok(format!("struct prctl_mm_map is {size} bytes"))
}

/// Stops a child and tries each ptrace request a dump needs on it.
fn ptrace_probes() -> Vec<Probe> {
    use Need::*;
    let names = [
        "ptrace GETREGS",
        "ptrace NT_X86_XSTATE",
        "ptrace GETSIGMASK",
        "PTRACE_GET_RSEQ_CONFIGURATION",
    ];
    let child = match sys::fork_traced_child(None) {
        Ok(c) => c,
        Err(e) => {
            return names
                .iter()
                .map(|&n| probe(n, Required, Err(format!("fork: {e}"))))
                .collect()
        }
    };
    let pid = child.pid;
    let stopped = matches!(sys::waitpid(pid), Ok(WaitStatus::Stopped { .. }));
    let r = |f: &dyn Fn() -> Result<String, String>| {
        if stopped {
            f()
        } else {
            Err("child did not stop".into())
        }
    };
    let out = vec![
        probe(
            names[0],
            Required,
            r(&|| sys::ptrace_getregs(pid).map(|_| String::new()).map_err(err)),
        ),
        probe(
            names[1],
            Required,
            r(&|| {
                sys::ptrace_get_xstate(pid)
                    .map(|x| format!("{} bytes", x.len()))
                    .map_err(err)
            }),
        ),
        probe(
            names[2],
            Required,
            r(&|| {
                sys::ptrace_get_sigmask(pid)
                    .map(|_| String::new())
                    .map_err(err)
            }),
        ),
        probe(
            names[3],
            Required,
            r(&|| {
                sys::ptrace_get_rseq(pid)
                    .map(|c| match c {
                        Some((_, len, _)) => format!("rseq area of {len} bytes registered"),
                        None => "no rseq area registered".into(),
                    })
                    .map_err(err)
            }),
        ),
    ];
    let _ = sys::kill(pid, libc::SIGKILL);
    let _ = sys::ptrace_cont(pid, 0);
    let _ = reap(pid);
    out
}

/// The vdso split of 6.13+ (trap 1): name each special mapping and its size.
fn vdso_layout() -> Result<String, String> {
    let text = fs::read_to_string("/proc/self/maps").map_err(err)?;
    let maps = crate::proc::parse_smaps(&text)?;
    let parts: Vec<String> = maps
        .iter()
        .filter_map(|m| {
            let p = m.path.as_deref()?;
            (p.starts_with("[vvar") || p == "[vdso]")
                .then(|| format!("{p} {} KiB", (m.end - m.start) / 1024))
        })
        .collect();
    if parts.iter().any(|p| p.starts_with("[vdso]")) {
        Ok(parts.join(", "))
    } else {
        Err("no [vdso] mapping".into())
    }
}

fn pidfd_getfd() -> Result<String, String> {
    let fd = sys::pidfd_getfd(std::process::id() as i32, 0).map_err(err)?;
    drop(fd);
    Ok(String::new())
}

fn kcmp() -> Result<String, String> {
    let f = fs::File::open("/proc/self/stat").map_err(err)?;
    sys::kcmp_self_file(f.as_fd()).map_err(err)?;
    Ok(String::new())
}

fn memfd() -> Result<String, String> {
    sys::memfd_create(c"corral-check")
        .map(|_| String::new())
        .map_err(err)
}

fn uffd_wp_async() -> Result<String, String> {
    let features = sys::userfaultfd_features().map_err(err)?;
    if features & sys::UFFD_FEATURE_WP_ASYNC != 0 {
        Ok(format!("features {features:#x}"))
    } else {
        Err(format!("features {features:#x} lack WP_ASYNC"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root"]
    fn every_required_feature_is_present_here() {
        let probes = run();
        for p in &probes {
            assert!(p.ok || p.need == Need::Optional, "{p:?}");
        }
        let xstate = probes
            .iter()
            .find(|p| p.name == "ptrace NT_X86_XSTATE")
            .unwrap();
        assert!(xstate.detail.ends_with(" bytes"), "{xstate:?}");
        let vdso = probes.iter().find(|p| p.name == "vdso layout").unwrap();
        assert!(vdso.detail.contains("[vdso]"), "{vdso:?}");
    }
}
