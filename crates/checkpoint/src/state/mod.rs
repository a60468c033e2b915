//! Per-task kernel state beyond memory and registers: pending signals
//! (per thread and shared, with their siginfo), alternate signal stacks,
//! itimers, POSIX timers with their ids, credentials (ids, groups,
//! capability sets, securebits), umask, rlimits, scheduling policy, nice
//! value, CPU affinity and I/O priority, `oom_score_adj`, the THP-disable
//! flag, personality, no_new_privs, seccomp filters, the child-subreaper
//! flag, parent-death signals, the dumpable flag, thread names and timer
//! slack, and the madvise flags and locks (`mlock`) of mappings.
//!
//! [`dump`] reads it from /proc, ptrace (`PTRACE_PEEKSIGINFO`,
//! `PTRACE_SECCOMP_GET_FILTER`), scheduler calls from outside and a few
//! syscalls injected per task (about ten, plus two per thread; trap 4:
//! never per page); [`restore`] puts it back in an order the kernel
//! allows: what needs privilege first, seccomp filters and then
//! credentials last, then what a credential change resets (parent-death
//! signal, dumpable), then the pending signals. A restore injects nothing
//! when the state is what the restorer gave the task.
//!
//! Refused at dump time, by name: seccomp strict mode, filters that hand
//! syscalls to a user-space listener, threads whose credentials or
//! filters differ from the leader's, POSIX timers on alarm clocks or on
//! the CPU time of another process or of an unknown thread
//! (`CLOCK_THREAD_CPUTIME_ID` in a process of several threads), and a
//! pending SIGKILL or SIGSTOP.

pub(crate) mod dump;
pub(crate) mod restore;

use serde::{Deserialize, Serialize};

use crate::image::{hex_decode, hex_encode};

/// What a process holds once for all its threads (or, for credentials,
/// no_new_privs and seccomp, what every thread holds alike: a dump refuses
/// threads that differ). Everything defaults to "not recorded", which a
/// restore leaves as the restorer made it: images written before this
/// state was dumped restore as they did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcState {
    /// User and group ids, groups, capabilities, securebits.
    pub creds: Option<Creds>,
    /// File mode creation mask.
    pub umask: Option<u32>,
    /// `personality(2)` flags.
    pub personality: Option<u32>,
    /// Every resource limit (`prlimit`).
    pub rlimits: Vec<Rlimit>,
    /// `PR_SET_NO_NEW_PRIVS` was set.
    pub no_new_privs: bool,
    /// `PR_SET_CHILD_SUBREAPER` was set.
    pub child_subreaper: bool,
    /// `PR_GET_DUMPABLE`.
    pub dumpable: Option<u32>,
    /// Armed interval timers (`getitimer`).
    pub itimers: Vec<Itimer>,
    /// POSIX timers (`timer_create`), recreated under their ids.
    pub posix_timers: Vec<PosixTimer>,
    /// Signals pending on the process as a whole, in queue order.
    pub shared_pending: Vec<SigInfo>,
    /// Seccomp filters, the oldest first, installed on every thread.
    pub seccomp: Vec<SeccompFilter>,
    /// /proc/PID/oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// `PR_SET_THP_DISABLE` was set (status `THP_enabled: 0`).
    pub thp_disabled: bool,
}

/// One thread's own state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThreadState {
    /// Signals pending on this thread, in queue order.
    pub pending: Vec<SigInfo>,
    /// `sigaltstack`, when one is set.
    pub altstack: Option<AltStack>,
    /// `PR_GET_PDEATHSIG`, 0 for none.
    pub pdeath_signal: u32,
    /// Scheduling policy and its parameters (`sched_getattr`).
    pub sched: Option<Sched>,
    /// CPU affinity mask, 64 CPUs a word; empty if not recorded.
    pub affinity: Vec<u64>,
    /// I/O priority (`ioprio_get`: class << 13 | data).
    pub ioprio: Option<u32>,
    /// The thread's name (/proc/PID/task/TID/comm), at most 15 bytes.
    pub comm: Option<String>,
    /// Timer slack in ns (`PR_GET_TIMERSLACK`); 0 (real-time threads have
    /// none) or absent is left as it is.
    pub timer_slack: Option<u64>,
}

/// A thread's scheduling attributes, as `sched_getattr` gives them (the
/// utilisation clamps are not kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sched {
    /// `SCHED_OTHER`, `SCHED_BATCH`, `SCHED_IDLE`, `SCHED_FIFO`, …
    pub policy: u32,
    /// `SCHED_FLAG_RESET_ON_FORK` or 0.
    pub flags: u64,
    /// Nice value.
    pub nice: i32,
    /// Real-time priority.
    pub priority: u32,
    /// `SCHED_DEADLINE` runtime, deadline and period, in ns.
    pub deadline: [u64; 3],
}

impl Sched {
    /// Reads the fields of a `struct sched_attr`.
    pub fn from_attr(a: &crate::sys::SchedAttr) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes(a[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        Sched {
            policy: u32_at(4),
            flags: u64_at(8) & SCHED_FLAG_RESET_ON_FORK,
            nice: u32_at(16) as i32,
            priority: u32_at(20),
            deadline: [u64_at(24), u64_at(32), u64_at(40)],
        }
    }

    /// The `struct sched_attr` that sets these fields.
    pub fn to_attr(self) -> crate::sys::SchedAttr {
        let mut a = [0u8; 56];
        a[..4].copy_from_slice(&56u32.to_le_bytes());
        a[4..8].copy_from_slice(&self.policy.to_le_bytes());
        a[8..16].copy_from_slice(&self.flags.to_le_bytes());
        a[16..20].copy_from_slice(&self.nice.to_le_bytes());
        a[20..24].copy_from_slice(&self.priority.to_le_bytes());
        for (i, d) in self.deadline.iter().enumerate() {
            a[24 + i * 8..32 + i * 8].copy_from_slice(&d.to_le_bytes());
        }
        a
    }
}

/// `SCHED_FLAG_RESET_ON_FORK`.
const SCHED_FLAG_RESET_ON_FORK: u64 = 1;

/// Credentials as /proc/PID/status and `PR_GET_SECUREBITS` show them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creds {
    /// Real, effective, saved and filesystem user ids.
    pub uids: [u32; 4],
    /// Real, effective, saved and filesystem group ids.
    pub gids: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Inheritable capabilities.
    pub cap_inh: u64,
    /// Permitted capabilities.
    pub cap_prm: u64,
    /// Effective capabilities.
    pub cap_eff: u64,
    /// Bounding set.
    pub cap_bnd: u64,
    /// Ambient capabilities.
    pub cap_amb: u64,
    /// `SECBIT_*` flags.
    pub securebits: u32,
}

/// One resource limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_*`.
    pub resource: u32,
    /// Soft limit (`u64::MAX` = unlimited).
    pub cur: u64,
    /// Hard limit.
    pub max: u64,
}

/// An armed interval timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Itimer {
    /// `ITIMER_REAL`, `ITIMER_VIRTUAL` or `ITIMER_PROF`.
    pub which: u32,
    /// Reload value, `[seconds, microseconds]`.
    pub interval: [i64; 2],
    /// Time left at the dump, `[seconds, microseconds]`.
    pub value: [i64; 2],
}

/// A POSIX timer, as /proc/PID/timers and `timer_gettime` show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosixTimer {
    /// Its id (`timer_t`), kept by `PR_TIMER_CREATE_RESTORE_IDS`.
    pub id: i32,
    /// `CLOCK_*`.
    pub clock: i32,
    /// `sigev_notify` (`SIGEV_SIGNAL`, `SIGEV_NONE`, `| SIGEV_THREAD_ID`).
    pub notify: i32,
    /// `sigev_signo`.
    pub signo: i32,
    /// `sigev_value`.
    pub value: u64,
    /// The thread signalled with `SIGEV_THREAD_ID`, else 0.
    pub tid: i32,
    /// Reload value, `[seconds, nanoseconds]`.
    pub interval: [i64; 2],
    /// Time left at the dump, `[seconds, nanoseconds]`; zero if disarmed.
    pub value_left: [i64; 2],
}

/// A pending signal and its `siginfo_t`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigInfo {
    /// Signal number.
    pub signo: u32,
    /// `si_code` (for `cr show`; the raw bytes are what is queued).
    pub code: i32,
    /// The 128 bytes of `siginfo_t`, hex.
    pub raw: String,
}

/// An alternate signal stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltStack {
    /// `ss_sp`.
    pub sp: u64,
    /// `ss_flags` (`SS_AUTODISARM`; `SS_ONSTACK` is not kept).
    pub flags: i32,
    /// `ss_size`.
    pub size: u64,
}

/// One seccomp filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompFilter {
    /// `SECCOMP_FILTER_FLAG_LOG` if it was installed with it.
    pub flags: u64,
    /// The classic BPF program: `sock_filter`s of 8 bytes, hex.
    pub insns: String,
}

/// Most instructions of a seccomp program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

impl SigInfo {
    /// Records a siginfo read with `PTRACE_PEEKSIGINFO`.
    pub fn new(raw: &[u8; crate::sys::SIGINFO_SIZE]) -> Self {
        let word = |at: usize| i32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
        SigInfo {
            signo: word(0) as u32,
            code: word(8),
            raw: hex_encode(raw),
        }
    }

    /// The 128 bytes, checked.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        let b = hex_decode(&self.raw)?;
        if b.len() != crate::sys::SIGINFO_SIZE || !(1..=64).contains(&self.signo) {
            return Err(format!("pending signal {}: malformed siginfo", self.signo));
        }
        Ok(b)
    }
}

impl SeccompFilter {
    /// The instructions, checked.
    pub fn insn_bytes(&self) -> Result<Vec<u8>, String> {
        let b = hex_decode(&self.insns)?;
        if b.is_empty() || b.len() % 8 != 0 || b.len() / 8 > MAX_INSNS {
            return Err(format!("seccomp filter of {} bytes", b.len()));
        }
        Ok(b)
    }
}

impl ProcState {
    /// Checks what serde cannot (called from `TaskImage::validate`).
    pub fn validate<'a>(
        &self,
        threads: impl Iterator<Item = &'a ThreadState>,
    ) -> Result<(), String> {
        for s in &self.shared_pending {
            s.bytes()?;
        }
        for t in threads {
            for s in &t.pending {
                s.bytes()?;
            }
            if t.comm
                .as_ref()
                .is_some_and(|c| c.len() > 15 || c.contains('\0'))
            {
                return Err("a thread name longer than 15 bytes or with a NUL".into());
            }
        }
        for f in &self.seccomp {
            f.insn_bytes()?;
        }
        if self.rlimits.iter().any(|r| r.resource >= 16) || self.itimers.iter().any(|i| i.which > 2)
        {
            return Err("unknown rlimit or itimer".into());
        }
        if self.creds.as_ref().is_some_and(|c| c.groups.len() > 65536) {
            return Err("more than 65536 groups".into());
        }
        Ok(())
    }
}

impl ProcState {
    /// One line per kind of state held, for `cr show`; the threads' own
    /// state (`thread TID: …`) included.
    pub fn summary<'a>(
        &self,
        threads: impl Iterator<Item = (i32, &'a ThreadState)>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.creds {
            out.push(format!(
                "creds: uids {:?} gids {:?} groups {:?} caps eff {:#x} prm {:#x} inh {:#x} bnd {:#x} amb {:#x} securebits {:#x}",
                c.uids, c.gids, c.groups, c.cap_eff, c.cap_prm, c.cap_inh, c.cap_bnd, c.cap_amb, c.securebits
            ));
        }
        let opt = |v: Option<u32>, radix8: bool| match v {
            None => "-".to_owned(),
            Some(v) if radix8 => format!("{v:03o}"),
            Some(v) => format!("{v:#x}"),
        };
        out.push(format!(
            "umask {} personality {} no_new_privs {} child_subreaper {} dumpable {} oom_score_adj {} thp_disabled {}",
            opt(self.umask, true),
            opt(self.personality, false),
            self.no_new_privs,
            self.child_subreaper,
            self.dumpable.map_or("-".into(), |d| d.to_string()),
            self.oom_score_adj.map_or("-".into(), |d| d.to_string()),
            self.thp_disabled
        ));
        for t in &self.itimers {
            out.push(format!(
                "itimer {}: value {}.{:06} s interval {}.{:06} s",
                t.which, t.value[0], t.value[1], t.interval[0], t.interval[1]
            ));
        }
        for t in &self.posix_timers {
            out.push(format!(
                "POSIX timer {}: clock {} notify {} signal {} value {:#x} left {}.{:09} s interval {}.{:09} s",
                t.id, t.clock, t.notify, t.signo, t.value, t.value_left[0], t.value_left[1], t.interval[0], t.interval[1]
            ));
        }
        for s in &self.shared_pending {
            out.push(format!(
                "pending (process): signal {} code {}",
                s.signo, s.code
            ));
        }
        for (i, f) in self.seccomp.iter().enumerate() {
            out.push(format!(
                "seccomp filter {i}: {} instructions, flags {:#x}",
                f.insns.len() / 16,
                f.flags
            ));
        }
        for (tid, t) in threads {
            out.extend(t.summary(tid));
        }
        out
    }
}

impl ThreadState {
    /// `cr show` lines of a thread's own state.
    fn summary(&self, tid: i32) -> Vec<String> {
        let mut out: Vec<String> = self
            .pending
            .iter()
            .map(|s| format!("pending (thread {tid}): signal {} code {}", s.signo, s.code))
            .collect();
        if let Some(a) = &self.altstack {
            out.push(format!(
                "thread {tid}: sigaltstack {:#x} size {} flags {:#x}",
                a.sp, a.size, a.flags
            ));
        }
        if let Some(sc) = &self.sched {
            out.push(format!(
                "thread {tid} ({}): policy {} nice {} priority {} affinity {:x?} ioprio {:?}",
                self.comm.as_deref().unwrap_or("?"),
                sc.policy,
                sc.nice,
                sc.priority,
                self.affinity,
                self.ioprio
            ));
        }
        if self.pdeath_signal != 0 {
            out.push(format!(
                "thread {tid}: parent-death signal {}",
                self.pdeath_signal
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn siginfo(signo: u32, len: usize) -> SigInfo {
        let mut raw = vec![0u8; len];
        raw[..4].copy_from_slice(&signo.to_le_bytes());
        SigInfo {
            signo,
            code: -1,
            raw: hex_encode(&raw),
        }
    }

    #[test]
    fn state_absent_from_an_image_reads_as_nothing_recorded() {
        let st: ProcState = serde_json::from_str("{}").unwrap();
        assert_eq!(st, ProcState::default());
        assert!(st.creds.is_none() && st.umask.is_none() && st.rlimits.is_empty());
        let t: ThreadState = serde_json::from_str("{\"pdeath_signal\": 1}").unwrap();
        assert_eq!((t.pdeath_signal, t.altstack, t.pending.len()), (1, None, 0));
    }

    #[test]
    fn malformed_siginfo_filters_and_numbers_are_refused() {
        let ok = ProcState {
            shared_pending: vec![siginfo(10, 128)],
            ..ProcState::default()
        };
        ok.validate(std::iter::empty()).unwrap();
        let short = ProcState {
            shared_pending: vec![siginfo(10, 64)],
            ..ProcState::default()
        };
        assert!(short.validate(std::iter::empty()).is_err());
        let thread = ThreadState {
            pending: vec![siginfo(0, 128)],
            ..ThreadState::default()
        };
        assert!(ProcState::default()
            .validate(std::iter::once(&thread))
            .is_err());
        let filter = |n: usize| ProcState {
            seccomp: vec![SeccompFilter {
                flags: 0,
                insns: hex_encode(&vec![0u8; n * 8]),
            }],
            ..ProcState::default()
        };
        filter(MAX_INSNS).validate(std::iter::empty()).unwrap();
        assert!(filter(MAX_INSNS + 1).validate(std::iter::empty()).is_err());
        assert!(filter(0).validate(std::iter::empty()).is_err());
        let rl = ProcState {
            rlimits: vec![Rlimit {
                resource: 16,
                cur: 0,
                max: 0,
            }],
            ..ProcState::default()
        };
        assert!(rl.validate(std::iter::empty()).is_err());
    }
}
