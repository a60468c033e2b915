//! Reading a stopped process's kernel state (see the module above).
//!
//! /proc gives credentials, umask, no_new_privs, seccomp mode, personality
//! and the POSIX timer list; ptrace the pending signals and seccomp
//! programs; `prlimit` the limits. The rest (itimers, timer times,
//! securebits, subreaper, dumpable, and per thread the alternate stack and
//! parent-death signal) has no reader from outside: it is asked with
//! syscalls injected into the task, a handful per task, with every signal
//! blocked meanwhile so none is delivered between them.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::*;
use crate::collect::DumpError;
use crate::inject::{self, Injector};
use crate::proc::{status_field, MapEntry};
use crate::sys;

/// A thread in a ptrace stop: what the dump's seize recorded.
pub(crate) struct Thread {
    /// Its tid.
    pub tid: i32,
    /// Its registers at the stop.
    pub regs: libc::user_regs_struct,
    /// Its signal mask at the stop.
    pub sigmask: u64,
}

/// `SECCOMP_RET_USER_NOTIF`: the syscall goes to a listener's fd.
const SECCOMP_RET_USER_NOTIF: u64 = 0x7fc0_0000;
const PR_GET_SECUREBITS: u64 = 27;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_GET_DUMPABLE: u64 = 3;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_TIMERSLACK: u64 = 30;
const SS_DISABLE: i32 = 2;
const SS_ONSTACK: i32 = 1;
/// Clocks a timer can be recreated on: REALTIME, MONOTONIC, BOOTTIME, TAI.
const PLAIN_CLOCKS: [i32; 4] = [0, 1, 7, 11];
/// The /proc/PID/status lines every thread must share with the leader.
const SHARED_LINES: [&str; 10] = [
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp_filters",
];

fn unsupported(pid: i32, what: String) -> DumpError {
    DumpError::Unsupported {
        pid,
        fd: None,
        what,
    }
}

fn read_proc(pid: i32, name: &str) -> Result<String, DumpError> {
    let path = PathBuf::from(format!("/proc/{pid}/{name}"));
    fs::read_to_string(&path).map_err(|source| DumpError::Proc { pid, path, source })
}

fn bad_proc(pid: i32, name: &str, what: &str) -> DumpError {
    DumpError::Proc {
        pid,
        path: format!("/proc/{pid}/{name}").into(),
        source: io::Error::new(io::ErrorKind::InvalidData, what.to_owned()),
    }
}

fn trace(pid: i32, op: &'static str) -> impl Fn(io::Error) -> DumpError {
    move |source| DumpError::Trace {
        pid,
        op: op.to_owned(),
        source,
    }
}

/// Reads the state of `pid`, whose `threads` (the leader first) are all in
/// a ptrace stop. Must run before any other syscall is injected: a task
/// with seccomp filters is switched to `PTRACE_O_SUSPEND_SECCOMP` here, or
/// its filters would apply to the injected syscalls.
pub(crate) fn collect(
    pid: i32,
    threads: &[Thread],
    maps: &[MapEntry],
) -> Result<(ProcState, Vec<ThreadState>), DumpError> {
    let mut st = from_status(pid, threads)?;
    let personality = read_proc(pid, "personality")?;
    st.personality = Some(
        u32::from_str_radix(personality.trim(), 16)
            .map_err(|_| bad_proc(pid, "personality", "not hex"))?,
    );
    // /proc/PID/limits, not prlimit: prlimit on a task of other ids needs
    // CAP_SYS_RESOURCE, which is not in our bounding set here.
    st.rlimits = parse_limits(&read_proc(pid, "limits")?)
        .ok_or_else(|| bad_proc(pid, "limits", "malformed"))?;
    st.oom_score_adj = Some(
        read_proc(pid, "oom_score_adj")?
            .trim()
            .parse()
            .map_err(|_| bad_proc(pid, "oom_score_adj", "not a number"))?,
    );
    st.shared_pending = pending(pid, pid, true)?;
    st.posix_timers = posix_timers(pid, threads)?;
    let mut per_thread = threads
        .iter()
        .map(|t| thread_state(pid, t.tid))
        .collect::<Result<Vec<_>, _>>()?;
    injected(pid, threads, maps, &mut st, &mut per_thread)?;
    Ok((st, per_thread))
}

/// What /proc/PID/status tells (and the seccomp filters it announces),
/// after checking that every thread shares the leader's credentials.
fn from_status(pid: i32, threads: &[Thread]) -> Result<ProcState, DumpError> {
    let status = read_proc(pid, "status")?;
    for t in &threads[1..] {
        let theirs = read_proc(pid, &format!("task/{}/status", t.tid))?;
        for name in SHARED_LINES {
            if status_field(&theirs, name) != status_field(&status, name) {
                return Err(unsupported(
                    pid,
                    format!("thread {}: {name} differs from the leader's", t.tid),
                ));
            }
        }
    }
    Ok(ProcState {
        creds: Some(parse_creds(&status).ok_or_else(|| bad_proc(pid, "status", "credentials"))?),
        umask: status_field(&status, "Umask").and_then(|u| u32::from_str_radix(u, 8).ok()),
        no_new_privs: status_field(&status, "NoNewPrivs") == Some("1"),
        thp_disabled: status_field(&status, "THP_enabled") == Some("0"),
        seccomp: seccomp_filters(pid, threads, status_field(&status, "Seccomp"))?,
        ..ProcState::default()
    })
}

/// What a thread's state shows from outside: pending signals, scheduling,
/// affinity, I/O priority, name. The rest comes from [`injected`].
fn thread_state(pid: i32, tid: i32) -> Result<ThreadState, DumpError> {
    let attr = sys::sched_getattr(tid).map_err(trace(tid, "sched_getattr"))?;
    Ok(ThreadState {
        pending: pending(pid, tid, false)?,
        sched: Some(Sched::from_attr(&attr)),
        affinity: sys::sched_getaffinity(tid).map_err(trace(tid, "sched_getaffinity"))?,
        ioprio: Some(sys::ioprio_get(tid).map_err(trace(tid, "ioprio_get"))?),
        comm: Some(
            read_proc(pid, &format!("task/{tid}/comm"))?
                .trim_end_matches('\n')
                .to_owned(),
        ),
        ..ThreadState::default()
    })
}

/// The POSIX timers of /proc/PID/timers, refusing those that cannot be
/// recreated; their times come from [`injected`].
fn posix_timers(pid: i32, threads: &[Thread]) -> Result<Vec<PosixTimer>, DumpError> {
    let timers = parse_timers(&read_proc(pid, "timers")?)
        .ok_or_else(|| bad_proc(pid, "timers", "malformed"))?;
    for t in &timers {
        if let Some(why) = clock_refused(pid, threads, t.clock) {
            return Err(unsupported(
                pid,
                format!("POSIX timer {} on clock {}: {why}", t.id, t.clock),
            ));
        }
        if t.tid != 0 && !threads.iter().any(|th| th.tid == t.tid) {
            return Err(unsupported(
                pid,
                format!(
                    "POSIX timer {} signals thread {} of another process",
                    t.id, t.tid
                ),
            ));
        }
    }
    Ok(timers)
}

/// Why a timer on `clock` cannot be recreated as it is, if it cannot. The
/// plain clocks can; a CPU-time clock (negative: `~pid << 3`, bit 2 for a
/// thread, low bits the kind) can when it names this process or one of
/// its threads, which keep their ids; pid 0 means the caller, which for a
/// thread clock (`CLOCK_THREAD_CPUTIME_ID`) is the thread that created the
/// timer: /proc does not say which, so that one is refused unless the
/// process has one thread. Alarm clocks are refused.
fn clock_refused(pid: i32, threads: &[Thread], clock: i32) -> Option<&'static str> {
    if PLAIN_CLOCKS.contains(&clock) {
        return None;
    }
    if clock >= 0 {
        return Some("alarm or other clock");
    }
    let target = !(clock >> 3);
    let per_thread = clock & 4 != 0;
    match (target, per_thread) {
        (_, _) if clock & 3 == 3 => Some("unknown CPU-time clock"),
        (0, false) => None,
        (0, true) if threads.len() == 1 => None,
        (0, true) => Some("the CPU time of the thread that made it, which is unknown"),
        (t, false) if t == pid => None,
        (t, true) if threads.iter().any(|th| th.tid == t) => None,
        _ => Some("the CPU time of another process"),
    }
}

/// The credentials of a status text; securebits are asked separately.
pub(crate) fn parse_creds(status: &str) -> Option<Creds> {
    let ids = |name| -> Option<[u32; 4]> {
        let v: Vec<u32> = status_field(status, name)?
            .split_whitespace()
            .map(|w| w.parse().ok())
            .collect::<Option<_>>()?;
        v.try_into().ok()
    };
    let cap = |name| u64::from_str_radix(status_field(status, name)?, 16).ok();
    Some(Creds {
        uids: ids("Uid")?,
        gids: ids("Gid")?,
        groups: status_field(status, "Groups")?
            .split_whitespace()
            .map(|w| w.parse().ok())
            .collect::<Option<_>>()?,
        cap_inh: cap("CapInh")?,
        cap_prm: cap("CapPrm")?,
        cap_eff: cap("CapEff")?,
        cap_bnd: cap("CapBnd")?,
        cap_amb: cap("CapAmb")?,
        securebits: 0,
    })
}

/// One line of /proc/PID/uid_map or gid_map: ids `inside..inside+count`
/// of the task's user namespace are `outside..` of the reader's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Parses a uid_map or gid_map text.
pub(crate) fn parse_id_map(text: &str) -> Option<Vec<IdRange>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace().map(|w| w.parse::<u32>().ok());
            Some(IdRange {
                inside: w.next()??,
                outside: w.next()??,
                count: w.next()??,
            })
        })
        .collect()
}

/// `id` as seen from our user namespace, as the map's namespace sees it.
pub(crate) fn map_inside(map: &[IdRange], id: u32) -> Option<u32> {
    map.iter().find_map(|r| {
        let off = id.checked_sub(r.outside)?;
        (off < r.count).then(|| r.inside + off)
    })
}

/// Rewrites `creds` (read from /proc as our user namespace sees them) as
/// `pid`'s own user namespace sees them: what the task asks the kernel
/// for, and what a restore into a container's new user namespace sets.
pub(crate) fn creds_in_own_userns(pid: i32, creds: &mut Creds) -> Result<(), DumpError> {
    let read = |name: &str| {
        let path = PathBuf::from(format!("/proc/{pid}/{name}"));
        let text = fs::read_to_string(&path).map_err(|source| DumpError::Proc {
            pid,
            path: path.clone(),
            source,
        })?;
        parse_id_map(&text).ok_or_else(|| DumpError::Proc {
            pid,
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, "not an id map"),
        })
    };
    let (uid_map, gid_map) = (read("uid_map")?, read("gid_map")?);
    let map = |map: &[IdRange], id: u32, what: &str| {
        map_inside(map, id).ok_or_else(|| {
            crate::collect::unsupported(
                pid,
                None,
                format!("{what} {id} is not mapped in its user namespace"),
            )
        })
    };
    for u in &mut creds.uids {
        *u = map(&uid_map, *u, "uid")?;
    }
    for g in creds.gids.iter_mut().chain(creds.groups.iter_mut()) {
        *g = map(&gid_map, *g, "gid")?;
    }
    Ok(())
}

/// Parses /proc/PID/limits: a header, then one line per resource in
/// `RLIMIT_*` order, `%-25s %-20s %-20s %-10s` (name, soft, hard, unit),
/// a limit being a number or `unlimited`.
pub(crate) fn parse_limits(text: &str) -> Option<Vec<Rlimit>> {
    let value = |w: &str| match w {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    let out = text
        .lines()
        .skip(1)
        .zip(0..)
        .map(|(line, resource)| {
            let mut w = line.get(26..)?.split_whitespace();
            Some(Rlimit {
                resource,
                cur: value(w.next()?)?,
                max: value(w.next()?)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    (out.len() == 16).then_some(out)
}

/// Parses /proc/PID/timers: per timer `ID:`, `signal: SIGNO/VALUE`,
/// `notify: KIND/pid.N` or `KIND/tid.N`, `ClockID:`. The times come later.
pub(crate) fn parse_timers(text: &str) -> Option<Vec<PosixTimer>> {
    let mut out: Vec<PosixTimer> = Vec::new();
    for line in text.lines() {
        let (key, val) = line.split_once(':')?;
        let val = val.trim();
        if key == "ID" {
            out.push(PosixTimer {
                id: val.parse().ok()?,
                clock: 0,
                notify: 0,
                signo: 0,
                value: 0,
                tid: 0,
                interval: [0; 2],
                value_left: [0; 2],
            });
            continue;
        }
        let t = out.last_mut()?;
        match key {
            "signal" => {
                let (signo, value) = val.split_once('/')?;
                t.signo = signo.parse().ok()?;
                t.value = u64::from_str_radix(value, 16).ok()?;
            }
            "notify" => {
                let (kind, target) = val.split_once('/')?;
                t.notify = match kind {
                    "signal" => libc::SIGEV_SIGNAL,
                    "none" => libc::SIGEV_NONE,
                    "thread" => libc::SIGEV_THREAD,
                    _ => return None,
                };
                if let Some(tid) = target.strip_prefix("tid.") {
                    t.notify |= libc::SIGEV_THREAD_ID;
                    t.tid = tid.parse().ok()?;
                }
            }
            "ClockID" => t.clock = val.parse().ok()?,
            _ => {}
        }
    }
    out.sort_by_key(|t| t.id);
    Some(out)
}

/// Pending signals of thread `tid` (`shared`: of the process).
fn pending(pid: i32, tid: i32, shared: bool) -> Result<Vec<SigInfo>, DumpError> {
    let raw = sys::ptrace_peeksiginfo(tid, shared).map_err(trace(tid, "PTRACE_PEEKSIGINFO"))?;
    let infos: Vec<SigInfo> = raw.iter().map(SigInfo::new).collect();
    let whose = if shared {
        "the process".to_owned()
    } else {
        format!("thread {tid}")
    };
    refuse_pending(pid, &whose, &infos)?;
    Ok(infos)
}

/// A pending SIGKILL (the task is dying) or SIGSTOP (a stop we would turn
/// into a queued signal) is refused.
fn refuse_pending(pid: i32, whose: &str, infos: &[SigInfo]) -> Result<(), DumpError> {
    for s in infos {
        let name = match s.signo as i32 {
            libc::SIGKILL => "SIGKILL",
            libc::SIGSTOP => "SIGSTOP",
            _ => continue,
        };
        return Err(unsupported(pid, format!("{name} pending on {whose}")));
    }
    Ok(())
}

/// Seccomp filters of the threads, after switching every thread to
/// `PTRACE_O_SUSPEND_SECCOMP`. `mode` is the leader's `Seccomp:` line.
fn seccomp_filters(
    pid: i32,
    threads: &[Thread],
    mode: Option<&str>,
) -> Result<Vec<SeccompFilter>, DumpError> {
    match mode {
        None | Some("0") => return Ok(Vec::new()),
        Some("2") => {}
        Some(m) => return Err(unsupported(pid, format!("seccomp mode {m} (strict)"))),
    }
    let opts = libc::PTRACE_O_TRACESYSGOOD as u32 | sys::PTRACE_O_SUSPEND_SECCOMP;
    let mut leader: Option<Vec<SeccompFilter>> = None;
    for t in threads {
        sys::ptrace_setoptions(t.tid, opts).map_err(trace(t.tid, "PTRACE_O_SUSPEND_SECCOMP"))?;
        let mut filters = Vec::new();
        for index in 0.. {
            let Some(insns) = sys::ptrace_seccomp_filter(t.tid, index)
                .map_err(trace(t.tid, "PTRACE_SECCOMP_GET_FILTER"))?
            else {
                break;
            };
            if insns
                .iter()
                .any(|&w| w & 0xffff == 0x06 && (w >> 32) & 0xfff0_0000 == SECCOMP_RET_USER_NOTIF)
            {
                return Err(unsupported(
                    pid,
                    format!("seccomp filter {index} of thread {} hands syscalls to a user-space listener", t.tid),
                ));
            }
            let flags = sys::ptrace_seccomp_flags(t.tid, index)
                .map_err(trace(t.tid, "PTRACE_SECCOMP_GET_METADATA"))?;
            let bytes: Vec<u8> = insns.iter().flat_map(|w| w.to_le_bytes()).collect();
            filters.push(SeccompFilter {
                flags,
                insns: hex_encode(&bytes),
            });
        }
        filters.reverse();
        match &leader {
            None => leader = Some(filters),
            Some(l) if *l != filters => {
                return Err(unsupported(
                    pid,
                    format!("thread {}: seccomp filters differ from the leader's", t.tid),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(leader.unwrap_or_default())
}

/// Runs the queries that need the task's own context (see the module doc).
fn injected(
    pid: i32,
    threads: &[Thread],
    maps: &[MapEntry],
    st: &mut ProcState,
    per_thread: &mut [ThreadState],
) -> Result<(), DumpError> {
    let vdso = maps
        .iter()
        .find(|m| m.path.as_deref() == Some("[vdso]"))
        .ok_or_else(|| unsupported(pid, "no [vdso] mapping".into()))?;
    let mut text = vec![0u8; (vdso.end - vdso.start) as usize];
    sys::process_vm_readv(pid, &mut text, &[(vdso.start, vdso.end - vdso.start)])
        .map_err(trace(pid, "read the vdso"))?;
    let ip = vdso.start
        + inject::find_syscall_insn(&text)
            .ok_or_else(|| unsupported(pid, "vdso without a syscall instruction".into()))?;
    for t in threads {
        sys::ptrace_set_sigmask(t.tid, !0).map_err(trace(t.tid, "PTRACE_SETSIGMASK"))?;
    }
    let inj = Injector::new(pid, ip, threads[0].regs);
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let result = inj
        .syscall(libc::SYS_mmap, [0, 4096, rw, anon, u64::MAX, 0])
        .map_err(DumpError::from)
        .and_then(|scratch| {
            let r = queries(&inj, threads, ip, scratch, st, per_thread);
            let unmapped = inj.syscall(libc::SYS_munmap, [scratch, 4096, 0, 0, 0, 0]);
            r.and(unmapped.map(drop).map_err(DumpError::from))
        });
    for t in threads {
        sys::ptrace_set_sigmask(t.tid, t.sigmask).map_err(trace(t.tid, "PTRACE_SETSIGMASK"))?;
    }
    result
}

fn queries(
    inj: &Injector,
    threads: &[Thread],
    ip: u64,
    scratch: u64,
    st: &mut ProcState,
    per_thread: &mut [ThreadState],
) -> Result<(), DumpError> {
    let pid = inj.pid();
    let read = |n: usize| -> Result<Vec<i64>, DumpError> {
        let mut raw = vec![0u8; n * 8];
        sys::process_vm_readv(pid, &mut raw, &[(scratch, n as u64 * 8)])
            .map_err(trace(pid, "read the scratch page"))?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect())
    };
    for which in 0..3u32 {
        inj.syscall(libc::SYS_getitimer, [which.into(), scratch, 0, 0, 0, 0])?;
        let w = read(4)?;
        let (interval, value) = ([w[0], w[1]], [w[2], w[3]]);
        // A periodic ITIMER_REAL that has fired reads 0 left until its
        // SIGALRM (pending now, and dumped) is dequeued, which re-arms it
        // a period on: it comes back armed one period ahead.
        let value = if value == [0, 0] { interval } else { value };
        if value != [0, 0] {
            st.itimers.push(Itimer {
                which,
                interval,
                value,
            });
        }
    }
    for t in &mut st.posix_timers {
        inj.syscall(libc::SYS_timer_gettime, [t.id as u64, scratch, 0, 0, 0, 0])?;
        let w = read(4)?;
        t.interval = [w[0], w[1]];
        t.value_left = [w[2], w[3]];
    }
    if let Some(c) = &mut st.creds {
        c.securebits = inj.syscall(libc::SYS_prctl, [PR_GET_SECUREBITS, 0, 0, 0, 0, 0])? as u32;
    }
    inj.syscall(
        libc::SYS_prctl,
        [PR_GET_CHILD_SUBREAPER, scratch, 0, 0, 0, 0],
    )?;
    st.child_subreaper = read(1)?[0] as i32 != 0;
    st.dumpable = Some(inj.syscall(libc::SYS_prctl, [PR_GET_DUMPABLE, 0, 0, 0, 0, 0])? as u32);
    for (t, ts) in threads.iter().zip(per_thread) {
        thread_queries(&Injector::new(t.tid, ip, t.regs), scratch, &read, ts)?;
    }
    Ok(())
}

/// The alternate stack, parent-death signal and timer slack, asked in
/// the thread.
fn thread_queries(
    inj: &Injector,
    scratch: u64,
    read: &dyn Fn(usize) -> Result<Vec<i64>, DumpError>,
    ts: &mut ThreadState,
) -> Result<(), DumpError> {
    inj.syscall(libc::SYS_sigaltstack, [0, scratch, 0, 0, 0, 0])?;
    // stack_t: ss_sp, ss_flags (int, padded), ss_size.
    let w = read(3)?;
    let flags = w[1] as i32;
    if flags & SS_DISABLE == 0 {
        ts.altstack = Some(AltStack {
            sp: w[0] as u64,
            flags: flags & !SS_ONSTACK,
            size: w[2] as u64,
        });
    }
    inj.syscall(libc::SYS_prctl, [PR_GET_PDEATHSIG, scratch, 0, 0, 0, 0])?;
    ts.pdeath_signal = read(1)?[0] as u32;
    ts.timer_slack = Some(inj.syscall(libc::SYS_prctl, [PR_GET_TIMERSLACK, 0, 0, 0, 0, 0])?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_into_the_user_namespace_as_its_maps_say() {
        let map =
            parse_id_map("         0     100000      65536\n     70000          5         10\n")
                .unwrap();
        assert_eq!(
            map,
            [
                IdRange {
                    inside: 0,
                    outside: 100_000,
                    count: 65_536
                },
                IdRange {
                    inside: 70_000,
                    outside: 5,
                    count: 10
                },
            ]
        );
        assert_eq!(map_inside(&map, 100_000), Some(0));
        assert_eq!(map_inside(&map, 101_000), Some(1000));
        assert_eq!(map_inside(&map, 165_535), Some(65_535));
        assert_eq!(map_inside(&map, 165_536), None, "one past the range");
        assert_eq!(map_inside(&map, 14), Some(70_009));
        assert_eq!(map_inside(&map, 0), None);
        assert!(parse_id_map("0 100000\n").is_none(), "a short line");
        assert_eq!(parse_id_map("").unwrap(), [], "no map yet");
    }

    #[test]
    fn timers_parse_as_proc_shows_them() {
        let text = "ID: 2\nsignal: 34/000000000000abcd\nnotify: none/pid.28376\nClockID: -6\n\
                    ID: 1\nsignal: 35/0000000000000000\nnotify: signal/tid.28377\nClockID: 7\n";
        let t = parse_timers(text).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].id, t[0].signo, t[0].tid, t[0].clock),
            (1, 35, 28377, 7)
        );
        assert_eq!(t[0].notify, libc::SIGEV_SIGNAL | libc::SIGEV_THREAD_ID);
        assert_eq!(
            (t[1].value, t[1].notify, t[1].tid),
            (0xabcd, libc::SIGEV_NONE, 0)
        );
        assert!(parse_timers("signal: 1/0\n").is_none());
    }

    #[test]
    fn cpu_time_clocks_of_this_process_are_kept_and_others_refused() {
        let th = |tid| Thread {
            tid,
            regs: zero_regs(),
            sigmask: 0,
        };
        let one = [th(100)];
        let two = [th(100), th(101)];
        let process = |pid: i32| (!pid << 3) | 2; // CPUCLOCK_SCHED
        let thread = |tid: i32| (!tid << 3) | 4 | 2;
        assert_eq!(process(0), -6);
        assert_eq!(thread(0), -2);
        for c in [0, 1, 7, 11, -6, process(100), thread(101)] {
            assert_eq!(clock_refused(100, &two, c), None, "clock {c}");
        }
        assert_eq!(clock_refused(100, &one, -2), None);
        assert!(clock_refused(100, &two, -2).unwrap().contains("unknown"));
        assert!(clock_refused(100, &two, process(99))
            .unwrap()
            .contains("another"));
        assert!(clock_refused(100, &two, thread(102))
            .unwrap()
            .contains("another"));
        assert!(clock_refused(100, &two, 8).is_some()); // CLOCK_REALTIME_ALARM
    }

    fn zero_regs() -> libc::user_regs_struct {
        crate::image::Regs::default().into()
    }

    #[test]
    fn our_own_limits_parse_as_getrlimit_says() {
        let l = parse_limits(&fs::read_to_string("/proc/self/limits").unwrap()).unwrap();
        for r in l {
            let got = sys::prlimit_get(std::process::id() as i32, r.resource).unwrap();
            assert_eq!((r.cur, r.max), got, "resource {}", r.resource);
        }
    }

    #[test]
    fn a_pending_sigkill_or_sigstop_is_refused_by_name() {
        let info = |signo: u32| {
            let mut raw = [0u8; sys::SIGINFO_SIZE];
            raw[..4].copy_from_slice(&signo.to_le_bytes());
            SigInfo::new(&raw)
        };
        refuse_pending(7, "thread 8", &[info(10), info(34)]).unwrap();
        let err = refuse_pending(7, "thread 8", &[info(10), info(19)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pid 7: SIGSTOP pending on thread 8; not supported yet"
        );
        let err = refuse_pending(7, "the process", &[info(9)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pid 7: SIGKILL pending on the process; not supported yet"
        );
    }

    #[test]
    fn our_own_credentials_parse() {
        let c = parse_creds(&fs::read_to_string("/proc/self/status").unwrap()).unwrap();
        assert_eq!(c.uids[1], rustix::process::geteuid().as_raw());
        assert_ne!(c.cap_bnd, 0);
    }
}
