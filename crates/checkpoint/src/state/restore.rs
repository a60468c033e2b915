//! Putting a process's kernel state back (see the module above), after
//! its memory, threads and files are in place and before its registers
//! and signal masks are set and it is let go.
//!
//! The order is the kernel's, not the image's:
//! 1. resource limits, scheduling policy and nice value, CPU affinity, I/O
//!    priority, `oom_score_adj`: from outside, while we and the task share
//!    ids;
//! 2. every signal of every thread blocked, so a timer armed now cannot
//!    interrupt the injected syscalls that follow (the masks are set to
//!    their dumped values at the end, by the caller);
//! 3. umask, personality, THP disable, itimers, POSIX timers under their ids
//!    (`PR_TIMER_CREATE_RESTORE_IDS`), the subreaper flag, madvise flags,
//!    thread names, timer slack, alternate stacks: none needs privilege;
//! 4. no_new_privs and seccomp filters (`TSYNC`, so every thread has the
//!    leader's chain), while the task is still root so installing them
//!    needs no no_new_privs of its own; `PTRACE_O_SUSPEND_SECCOMP` keeps
//!    them from filtering the syscalls we inject after;
//! 5. credentials, in each thread: bounding set, then ids with
//!    `SECBIT_NO_SETUID_FIXUP` so the capabilities stay while we work,
//!    inheritable and ambient sets, the dumped securebits, and last the
//!    dumped capability sets;
//! 6. what a credential change resets: parent-death signals, dumpable;
//! 7. the pending signals, queued by each thread to itself
//!    (`rt_tgsigqueueinfo`, `rt_sigqueueinfo` for the shared ones), which
//!    is the one way the kernel lets any siginfo through unchanged.

use std::fs;

use super::*;
use crate::image::{Backing, TaskImage, Vma};
use crate::inject::{self, Injector};
use crate::restore::RestoreError;
use crate::sys;

const PR_SET_PDEATHSIG: u64 = 1;
const PR_SET_THP_DISABLE: u64 = 41;
const PR_SET_TIMERSLACK: u64 = 29;
const PR_SET_DUMPABLE: u64 = 4;
const PR_CAPBSET_DROP: u64 = 24;
const PR_SET_SECUREBITS: u64 = 28;
const PR_SET_CHILD_SUBREAPER: u64 = 36;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_CAP_AMBIENT: u64 = 47;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;
const SECBIT_NO_SETUID_FIXUP: u64 = 1 << 2;
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u64 = 1;
const SECCOMP_FILTER_FLAG_LOG: u64 = 2;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// Room for the largest argument we pass: 65536 groups, or a seccomp
/// program of `MAX_INSNS` instructions after its header.
const SCRATCH: u64 = 65536 * 4 + 4096;
/// VmFlags of smaps and the call that sets each on a range: `madvise`
/// with an advice, or `mlock2` (`lf`, lock on fault, comes with `lo`; a
/// plain `lo` is a range locked and populated). The third field is a flag
/// whose presence skips the entry.
const ADVICE: [(&str, Option<&str>, i64, u64); 8] = [
    ("dc", None, libc::SYS_madvise, libc::MADV_DONTFORK as u64),
    ("dd", None, libc::SYS_madvise, libc::MADV_DONTDUMP as u64),
    ("wf", None, libc::SYS_madvise, libc::MADV_WIPEONFORK as u64),
    ("hg", None, libc::SYS_madvise, libc::MADV_HUGEPAGE as u64),
    ("nh", None, libc::SYS_madvise, libc::MADV_NOHUGEPAGE as u64),
    ("mg", None, libc::SYS_madvise, libc::MADV_MERGEABLE as u64),
    ("lf", None, libc::SYS_mlock2, MLOCK_ONFAULT),
    ("lo", Some("lf"), libc::SYS_mlock2, 0),
];
/// `MLOCK_ONFAULT` (include/uapi/asm-generic/mman-common.h).
const MLOCK_ONFAULT: u64 = 1;

fn poke(pid: i32, addr: u64, data: &[u8]) -> Result<(), RestoreError> {
    sys::process_vm_writev(pid, &[data], &[(addr, data.len() as u64)])
        .map(drop)
        .map_err(RestoreError::trace(pid, "write the scratch area"))
}

fn words(w: &[u64]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The timer slack every restored thread starts with (the restorer's,
/// which the leader inherited and the other threads got from it), if
/// thread `t` needs another.
fn slack_to_set(plan: &Plan<'_>, t: &crate::image::ThreadImage) -> Option<u64> {
    t.state
        .timer_slack
        .filter(|&s| s != 0 && Some(s) != plan.timer_slack)
}

/// Whether thread `t` has a name other than its leader's (which every
/// restored thread starts with).
fn renamed(task: &TaskImage, t: &crate::image::ThreadImage) -> bool {
    let leader: String = task.comm.chars().take(15).collect();
    t.state.comm.as_ref().is_some_and(|c| *c != leader)
}

/// Scheduling, affinity, I/O priority and `oom_score_adj`: set from outside, where they
/// differ from what the task inherited from us.
fn from_outside(pid: i32, task: &TaskImage, tids: &[i32]) -> Result<(), RestoreError> {
    for (&tid, t) in tids.iter().zip(&task.threads) {
        if let Some(sc) = t.state.sched {
            let now = sys::sched_getattr(tid).map_err(RestoreError::trace(tid, "sched_getattr"))?;
            if Sched::from_attr(&now) != sc {
                sys::sched_setattr(tid, &sc.to_attr()).map_err(RestoreError::trace(
                    tid,
                    format!("sched_setattr policy {} nice {}", sc.policy, sc.nice),
                ))?;
            }
        }
        if let Some(prio) = t.state.ioprio {
            if sys::ioprio_get(tid).map_err(RestoreError::trace(tid, "ioprio_get"))? != prio {
                sys::ioprio_set(tid, prio)
                    .map_err(RestoreError::trace(tid, format!("ioprio_set {prio:#x}")))?;
            }
        }
        if !t.state.affinity.is_empty() {
            let now = sys::sched_getaffinity(tid)
                .map_err(RestoreError::trace(tid, "sched_getaffinity"))?;
            if now != t.state.affinity {
                sys::sched_setaffinity(tid, &t.state.affinity)
                    .map_err(RestoreError::trace(tid, "sched_setaffinity"))?;
            }
        }
    }
    if let Some(adj) = task.state.oom_score_adj {
        let path = format!("/proc/{pid}/oom_score_adj");
        let now = fs::read_to_string(&path).unwrap_or_default();
        if now.trim().parse::<i32>().ok() != Some(adj) {
            fs::write(&path, adj.to_string()).map_err(RestoreError::trace(
                pid,
                format!("write {adj} to oom_score_adj"),
            ))?;
        }
    }
    Ok(())
}

/// What differs from the state the restorer gave the task: only that is
/// set.
struct Plan<'a> {
    umask: Option<u32>,
    personality: Option<u32>,
    /// `PR_SET_THP_DISABLE` to set (the restorer's own is off).
    thp_disable: bool,
    /// The task's timer slack now (/proc/PID/timerslack_ns).
    timer_slack: Option<u64>,
    /// The dumped credentials and the task's present ones.
    creds: Option<(&'a Creds, Creds)>,
}

impl<'a> Plan<'a> {
    fn new(pid: i32, st: &'a ProcState) -> Result<Self, RestoreError> {
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(RestoreError::trace(pid, "read /proc/PID/status"))?;
        let umask = crate::proc::status_field(&status, "Umask")
            .and_then(|u| u32::from_str_radix(u, 8).ok());
        let personality = fs::read_to_string(format!("/proc/{pid}/personality"))
            .ok()
            .and_then(|p| u32::from_str_radix(p.trim(), 16).ok());
        let creds = match &st.creds {
            None => None,
            Some(c) => {
                let now = super::dump::parse_creds(&status).ok_or_else(|| {
                    RestoreError::Unsupported("unreadable credentials of our own".into())
                })?;
                (*c != now).then_some((c, now))
            }
        };
        Ok(Plan {
            umask: st.umask.filter(|&u| Some(u) != umask),
            personality: st.personality.filter(|&p| Some(p) != personality),
            thp_disable: st.thp_disabled
                && crate::proc::status_field(&status, "THP_enabled") != Some("0"),
            timer_slack: fs::read_to_string(format!("/proc/{pid}/timerslack_ns"))
                .ok()
                .and_then(|s| s.trim().parse().ok()),
            creds,
        })
    }

    /// Whether anything needs a syscall inside the task.
    fn needs_injection(&self, task: &TaskImage) -> bool {
        let st = &task.state;
        self.umask.is_some()
            || self.personality.is_some()
            || self.thp_disable
            || self.creds.is_some()
            || !st.itimers.is_empty()
            || !st.posix_timers.is_empty()
            || !st.seccomp.is_empty()
            || !st.shared_pending.is_empty()
            || st.child_subreaper
            || st.no_new_privs
            || st.dumpable == Some(0)
            || task.threads[1..].iter().any(|t| renamed(task, t))
            || task.threads.iter().any(|t| slack_to_set(self, t).is_some())
            || task.threads.iter().any(|t| {
                t.state.altstack.is_some()
                    || t.state.pdeath_signal != 0
                    || !t.state.pending.is_empty()
            })
            || task.vmas.iter().any(|v| {
                !matches!(v.backing, Backing::Vdso { .. })
                    && v.vm_flags.iter().any(|f| ADVICE.iter().any(|a| a.0 == f))
            })
    }
}

/// Restores the state of `task` into `pid`, whose threads `tids` (the
/// leader first, in image order) are all in a ptrace stop. Injects no
/// syscall when the state is what the restorer gave the task (a root
/// process with default settings).
pub(crate) fn restore(pid: i32, task: &TaskImage, tids: &[i32]) -> Result<(), RestoreError> {
    let st = &task.state;
    for r in &st.rlimits {
        let now = sys::prlimit_get(pid, r.resource).map_err(RestoreError::trace(pid, "prlimit"))?;
        if now != (r.cur, r.max) {
            sys::prlimit_set(pid, r.resource, r.cur, r.max).map_err(RestoreError::trace(
                pid,
                format!("prlimit resource {} to {}/{}", r.resource, r.cur, r.max),
            ))?;
        }
    }
    from_outside(pid, task, tids)?;
    let plan = Plan::new(pid, st)?;
    if !plan.needs_injection(task) {
        return Ok(());
    }
    for &tid in tids {
        sys::ptrace_set_sigmask(tid, !0).map_err(RestoreError::trace(tid, "PTRACE_SETSIGMASK"))?;
    }
    let ip = syscall_ip(pid)?;
    let injs = tids
        .iter()
        .map(|&tid| {
            let regs =
                sys::ptrace_getregs(tid).map_err(RestoreError::trace(tid, "PTRACE_GETREGS"))?;
            Ok(Injector::new(tid, ip, regs))
        })
        .collect::<Result<Vec<_>, RestoreError>>()?;
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let scratch = injs[0].syscall(libc::SYS_mmap, [0, SCRATCH, rw, anon, u64::MAX, 0])?;
    let r = steps(pid, task, &plan, tids, &injs, scratch);
    let unmapped = injs[0].syscall(libc::SYS_munmap, [scratch, SCRATCH, 0, 0, 0, 0]);
    r?;
    unmapped?;
    Ok(())
}

/// The task being restored, its threads' injectors (the leader first) and
/// a scratch area in it for syscall arguments.
struct Ctx<'a> {
    pid: i32,
    task: &'a TaskImage,
    injs: &'a [Injector],
    scratch: u64,
}

impl Ctx<'_> {
    fn leader(&self) -> &Injector {
        &self.injs[0]
    }

    /// Each thread's injector with its image.
    fn threads(&self) -> impl Iterator<Item = (&Injector, &crate::image::ThreadImage)> {
        self.injs.iter().zip(&self.task.threads)
    }
}

fn steps(
    pid: i32,
    task: &TaskImage,
    plan: &Plan<'_>,
    tids: &[i32],
    injs: &[Injector],
    scratch: u64,
) -> Result<(), RestoreError> {
    let cx = Ctx {
        pid,
        task,
        injs,
        scratch,
    };
    unprivileged(&cx, plan)?;
    seccomp(&cx, tids)?;
    if let Some((c, now)) = &plan.creds {
        for inj in injs {
            set_creds(inj, scratch, c, now)?;
        }
    }
    for (inj, t) in cx.threads() {
        if t.state.pdeath_signal != 0 {
            let args = [PR_SET_PDEATHSIG, t.state.pdeath_signal.into(), 0, 0, 0, 0];
            inj.syscall(libc::SYS_prctl, args)?;
        }
    }
    if let Some(d @ (0 | 1)) = task.state.dumpable {
        if d != 1 || plan.creds.is_some() {
            cx.leader()
                .syscall(libc::SYS_prctl, [PR_SET_DUMPABLE, d.into(), 0, 0, 0, 0])?;
        }
    }
    queue_pending(&cx)
}

/// Step 3 of the module doc: what needs no privilege.
fn unprivileged(cx: &Ctx<'_>, plan: &Plan<'_>) -> Result<(), RestoreError> {
    let (st, leader, scratch) = (&cx.task.state, cx.leader(), cx.scratch);
    if let Some(u) = plan.umask {
        leader.syscall(libc::SYS_umask, [u.into(), 0, 0, 0, 0, 0])?;
    }
    if let Some(p) = plan.personality {
        leader.syscall(libc::SYS_personality, [p.into(), 0, 0, 0, 0, 0])?;
    }
    if plan.thp_disable {
        leader.syscall(libc::SYS_prctl, [PR_SET_THP_DISABLE, 1, 0, 0, 0, 0])?;
    }
    for t in &st.itimers {
        itimer(leader, scratch, t)?;
    }
    posix_timers(leader, scratch, &st.posix_timers)?;
    if st.child_subreaper {
        leader.syscall(libc::SYS_prctl, [PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0])?;
    }
    madvise(leader, cx.task)?;
    // Threads were cloned with the leader's name; a thread named otherwise
    // names itself.
    for (inj, t) in cx.threads().skip(1) {
        if let (true, Some(c)) = (renamed(cx.task, t), &t.state.comm) {
            let mut name = c.as_bytes().to_vec();
            name.push(0);
            poke(cx.pid, scratch, &name)?;
            let args = [libc::PR_SET_NAME as u64, scratch, 0, 0, 0, 0];
            inj.syscall(libc::SYS_prctl, args)?;
        }
    }
    for (inj, t) in cx.threads() {
        if let Some(slack) = slack_to_set(plan, t) {
            inj.syscall(libc::SYS_prctl, [PR_SET_TIMERSLACK, slack, 0, 0, 0, 0])?;
        }
        if let Some(a) = &t.state.altstack {
            poke(
                cx.pid,
                scratch,
                &words(&[a.sp, a.flags as u32 as u64, a.size]),
            )?;
            inj.syscall(libc::SYS_sigaltstack, [scratch, 0, 0, 0, 0, 0])?;
        }
    }
    Ok(())
}

/// Step 4: no_new_privs, then the filters, oldest first, on every thread
/// at once (`TSYNC`), suspended for us from then on.
fn seccomp(cx: &Ctx<'_>, tids: &[i32]) -> Result<(), RestoreError> {
    let (st, pid, scratch) = (&cx.task.state, cx.pid, cx.scratch);
    if !st.seccomp.is_empty() {
        let opts = libc::PTRACE_O_TRACESYSGOOD as u32
            | libc::PTRACE_O_EXITKILL as u32
            | sys::PTRACE_O_SUSPEND_SECCOMP;
        for &tid in tids {
            sys::ptrace_setoptions(tid, opts)
                .map_err(RestoreError::trace(tid, "PTRACE_O_SUSPEND_SECCOMP"))?;
        }
    }
    if st.no_new_privs {
        for inj in cx.injs {
            inj.syscall(libc::SYS_prctl, [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0])?;
        }
    }
    for f in &st.seccomp {
        let insns = f.insn_bytes().map_err(RestoreError::Unsupported)?;
        poke(pid, scratch + 16, &insns)?;
        // struct sock_fprog: u16 len (padded to 8), then the pointer.
        let prog = words(&[(insns.len() / 8) as u64, scratch + 16]);
        poke(pid, scratch, &prog)?;
        let flags = SECCOMP_FILTER_FLAG_TSYNC | (f.flags & SECCOMP_FILTER_FLAG_LOG);
        let args = [SECCOMP_SET_MODE_FILTER, flags, scratch, 0, 0, 0];
        let failed_tid = cx.leader().syscall(libc::SYS_seccomp, args)?;
        if failed_tid != 0 {
            return Err(RestoreError::Unsupported(format!(
                "seccomp TSYNC failed on thread {failed_tid}"
            )));
        }
    }
    Ok(())
}

/// Step 7: each thread queues its own pending signals, the leader the
/// process's, in their dumped order.
fn queue_pending(cx: &Ctx<'_>) -> Result<(), RestoreError> {
    let (pid, scratch) = (cx.pid, cx.scratch);
    for (inj, t) in cx.threads() {
        for s in &t.state.pending {
            poke(pid, scratch, &s.bytes().map_err(RestoreError::Unsupported)?)?;
            // The ids as the task sees them (its pid namespace's).
            let args = [
                cx.task.pid as u64,
                t.tid as u64,
                s.signo.into(),
                scratch,
                0,
                0,
            ];
            inj.syscall(libc::SYS_rt_tgsigqueueinfo, args)?;
        }
    }
    for s in &cx.task.state.shared_pending {
        poke(pid, scratch, &s.bytes().map_err(RestoreError::Unsupported)?)?;
        let args = [cx.task.pid as u64, s.signo.into(), scratch, 0, 0, 0];
        cx.leader().syscall(libc::SYS_rt_sigqueueinfo, args)?;
    }
    Ok(())
}

/// The address of a `syscall` instruction in the task's vdso, which now
/// sits where the dumped process had it.
fn syscall_ip(pid: i32) -> Result<u64, RestoreError> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(RestoreError::trace(pid, "read maps"))?;
    let vdso = crate::proc::parse_smaps(&maps)
        .ok()
        .and_then(|m| m.into_iter().find(|m| m.path.as_deref() == Some("[vdso]")))
        .ok_or_else(|| RestoreError::Unsupported("a task without [vdso]".into()))?;
    let mut text = vec![0u8; (vdso.end - vdso.start) as usize];
    sys::process_vm_readv(pid, &mut text, &[(vdso.start, vdso.end - vdso.start)])
        .map_err(RestoreError::trace(pid, "read the vdso"))?;
    inject::find_syscall_insn(&text)
        .map(|off| vdso.start + off)
        .ok_or_else(|| RestoreError::Unsupported("a vdso without a syscall instruction".into()))
}

/// Arms an interval timer. The kernel adds a tick to the value of a CPU
/// timer (`ITIMER_VIRTUAL`, `ITIMER_PROF`) when it is set, which would
/// lengthen it at every restore; the task is stopped and uses no CPU time,
/// so the value read back right after shows that tick, and the timer is
/// set again that much shorter.
fn itimer(inj: &Injector, scratch: u64, t: &Itimer) -> Result<(), RestoreError> {
    let pid = inj.pid();
    let set = |value_us: i64| {
        let v = [
            t.interval[0],
            t.interval[1],
            value_us / 1_000_000,
            value_us % 1_000_000,
        ];
        poke(pid, scratch, &words(&v.map(|x| x as u64)))?;
        let args = [t.which.into(), scratch, scratch + 32, 0, 0, 0];
        inj.syscall(libc::SYS_setitimer, args)?;
        Ok::<_, RestoreError>(())
    };
    let want = t.value[0] * 1_000_000 + t.value[1];
    set(want)?;
    if t.which == libc::ITIMER_REAL as u32 {
        return Ok(());
    }
    inj.syscall(
        libc::SYS_getitimer,
        [t.which.into(), scratch + 32, 0, 0, 0, 0],
    )?;
    let mut got = [0u8; 32];
    sys::process_vm_readv(pid, &mut got, &[(scratch + 32, 32)])
        .map_err(RestoreError::trace(pid, "read an itimer"))?;
    let w = |i: usize| i64::from_le_bytes(got[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let extra = w(2) * 1_000_000 + w(3) - want;
    if extra > 0 && want > extra {
        set(want - extra)?;
    }
    Ok(())
}

/// Recreates each timer under its id, then arms the armed ones.
fn posix_timers(inj: &Injector, scratch: u64, timers: &[PosixTimer]) -> Result<(), RestoreError> {
    if timers.is_empty() {
        return Ok(());
    }
    let pid = inj.pid();
    let on = [PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0, 0];
    inj.syscall(libc::SYS_prctl, on).map_err(|e| {
        RestoreError::Unsupported(format!(
            "POSIX timers with their ids on a kernel without PR_TIMER_CREATE_RESTORE_IDS ({e})"
        ))
    })?;
    let created = timers.iter().try_for_each(|t| {
        // struct sigevent (64 bytes): sigev_value, sigev_signo,
        // sigev_notify, then the union whose first int is the tid.
        let mut ev = [0u8; 64];
        ev[..8].copy_from_slice(&t.value.to_le_bytes());
        ev[8..12].copy_from_slice(&t.signo.to_le_bytes());
        ev[12..16].copy_from_slice(&t.notify.to_le_bytes());
        ev[16..20].copy_from_slice(&t.tid.to_le_bytes());
        poke(pid, scratch + 64, &ev)?;
        poke(pid, scratch, &t.id.to_le_bytes())?;
        let args = [t.clock as u64, scratch + 64, scratch, 0, 0, 0];
        inj.syscall(libc::SYS_timer_create, args)?;
        let mut id = [0u8; 4];
        sys::process_vm_readv(pid, &mut id, &[(scratch, 4)])
            .map_err(RestoreError::trace(pid, "read the timer id"))?;
        if i32::from_le_bytes(id) != t.id {
            return Err(RestoreError::Unsupported(format!(
                "POSIX timer {} came back as {}",
                t.id,
                i32::from_le_bytes(id)
            )));
        }
        Ok(())
    });
    let off = inj.syscall(
        libc::SYS_prctl,
        [PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0, 0],
    );
    created?;
    off?;
    for t in timers.iter().filter(|t| t.value_left != [0, 0]) {
        let v = [
            t.interval[0],
            t.interval[1],
            t.value_left[0],
            t.value_left[1],
        ]
        .map(|x| x as u64);
        poke(pid, scratch, &words(&v))?;
        inj.syscall(libc::SYS_timer_settime, [t.id as u64, 0, scratch, 0, 0, 0])?;
    }
    Ok(())
}

/// Re-applies the madvise flags of smaps' `VmFlags`: one call per run of
/// adjacent mappings that share a flag (few: most mappings have none).
fn madvise(inj: &Injector, task: &TaskImage) -> Result<(), RestoreError> {
    for (flag, unless, nr, arg) in ADVICE {
        let has = |v: &Vma, f: &str| v.vm_flags.iter().any(|x| x == f);
        let flagged = task.vmas.iter().filter(|v| {
            !matches!(v.backing, Backing::Vdso { .. })
                && has(v, flag)
                && !unless.is_some_and(|u| has(v, u))
        });
        let mut run: Option<(u64, u64)> = None;
        let mut ranges = Vec::new();
        for v in flagged {
            match &mut run {
                Some((_, end)) if *end == v.start => *end = v.end,
                _ => {
                    ranges.extend(run.take());
                    run = Some((v.start, v.end));
                }
            }
        }
        ranges.extend(run);
        for (start, end) in ranges {
            inj.syscall(nr, [start, end - start, arg, 0, 0, 0])?;
        }
    }
    Ok(())
}

/// Sets the credentials `c` in one thread that now has `now`.
fn set_creds(inj: &Injector, scratch: u64, c: &Creds, now: &Creds) -> Result<(), RestoreError> {
    let pid = inj.pid();
    if c.cap_bnd & !now.cap_bnd != 0 || c.cap_prm & !now.cap_prm != 0 {
        return Err(RestoreError::Unsupported(format!(
            "capabilities {:#x} (bounding) / {:#x} (permitted) beyond the restorer's {:#x} / {:#x}",
            c.cap_bnd, c.cap_prm, now.cap_bnd, now.cap_prm
        )));
    }
    let prctl = |args: [u64; 5]| {
        let [a, b, c, d, e] = args;
        inj.syscall(libc::SYS_prctl, [a, b, c, d, e, 0])
    };
    for cap in (0..64).filter(|b| now.cap_bnd & !c.cap_bnd & (1 << b) != 0) {
        prctl([PR_CAPBSET_DROP, cap, 0, 0, 0])?;
    }
    prctl([PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0])?;
    let groups: Vec<u8> = c.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    poke(pid, scratch, &groups)?;
    inj.syscall(
        libc::SYS_setgroups,
        [c.groups.len() as u64, scratch, 0, 0, 0, 0],
    )?;
    let [gr, ge, gs, gf] = c.gids.map(u64::from);
    inj.syscall(libc::SYS_setresgid, [gr, ge, gs, 0, 0, 0])?;
    let [ur, ue, us, uf] = c.uids.map(u64::from);
    inj.syscall(libc::SYS_setresuid, [ur, ue, us, 0, 0, 0])?;
    // setfs[ug]id return the previous id, never an error.
    inj.syscall(libc::SYS_setfsgid, [gf, 0, 0, 0, 0, 0])?;
    inj.syscall(libc::SYS_setfsuid, [uf, 0, 0, 0, 0, 0])?;
    capset(inj, scratch, now.cap_eff, now.cap_prm, c.cap_inh)?;
    for cap in (0..64).filter(|b| c.cap_amb & (1 << b) != 0) {
        prctl([PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0])?;
    }
    prctl([PR_SET_SECUREBITS, c.securebits.into(), 0, 0, 0])?;
    capset(inj, scratch, c.cap_eff, c.cap_prm, c.cap_inh)
}

/// `capset` of the calling thread.
fn capset(inj: &Injector, scratch: u64, eff: u64, prm: u64, inh: u64) -> Result<(), RestoreError> {
    // struct __user_cap_header_struct {version, pid}, then two
    // __user_cap_data_struct {effective, permitted, inheritable}: the low
    // 32 capabilities, then the high.
    let lo = |x: u64| (x & 0xffff_ffff) as u32;
    let hi = |x: u64| (x >> 32) as u32;
    let v: [u32; 8] = [
        LINUX_CAPABILITY_VERSION_3,
        0,
        lo(eff),
        lo(prm),
        lo(inh),
        hi(eff),
        hi(prm),
        hi(inh),
    ];
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    poke(inj.pid(), scratch, &bytes)?;
    inj.syscall(libc::SYS_capset, [scratch, scratch + 8, 0, 0, 0, 0])?;
    Ok(())
}
