//! `linux.seccomp`: the OCI profile turned into a libseccomp filter, loaded
//! by the init as the last step before `execve`, and the `SCMP_ACT_NOTIFY`
//! listener handed to the seccomp agent.
//!
//! Three stages, each in the process that can do it:
//!
//! ```text
//! parent, spec validation   check(): translate + build (nothing loaded); a bad
//!                           profile fails `create` before anything exists;
//!                           unknown syscall names are skipped with a warning
//! init, before pivot_root   prepare(): take the filter check() built (the
//!                           init is a copy of the parent; exec, which has no
//!                           check(), builds it here), connect to listenerPath
//!                           while the host's paths are visible
//! init, before execve       Filter::load(): load; with a listener, send the
//!                           notify fd (SCM_RIGHTS) and the container process
//!                           state (JSON payload) to the agent
//! ```
//!
//! When is "before execve": after `no_new_privs` and everything else, so the
//! runtime's own system calls are not filtered. Without `no_new_privs` the
//! kernel demands `CAP_SYS_ADMIN` to load a filter; a process that will not
//! have it loads it before the user and capabilities are switched, as runc
//! does ([`Filter::load_early`]).
//!
//! The translation follows runc (libcontainer/seccomp): `SCMP_ACT_KILL` is
//! libseccomp's kill-thread; ERRNO and TRACE without `errnoRet` use EPERM;
//! a rule whose conditions name one argument twice becomes one rule per
//! condition (libseccomp cannot AND two conditions on one argument, and runc
//! ORs them); `SCMP_CMP_MASKED_EQ` takes `value` as the mask and `valueTwo`
//! as the datum; the native architecture is always in the filter; libseccomp
//! does not set `no_new_privs` for us (the spec's `noNewPrivileges` decides).

use std::cell::RefCell;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpNotifReq,
    ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall, ScmpVersion,
};
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op, Process,
};

/// The errno of an ERRNO (or the message of a TRACE) without `errnoRet`.
const DEFAULT_ERRNO: u16 = libc::EPERM as u16;

/// The fd name of the listener in the state sent to the agent (OCI
/// `SeccompFdName`).
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// A profile corral cannot apply, named by its JSON path under
/// `linux.seccomp` (spec validation adds the `config.json: ` prefix).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ProfileError {
    /// The JSON path of the offending field (`linux.seccomp.syscalls[2]`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

fn profile_err(field: impl Into<String>, problem: impl Into<String>) -> ProfileError {
    ProfileError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Applying a filter in the init failed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile does not translate or build (validation catches it first).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The kernel (or libseccomp) refused to load the filter.
    #[error("load seccomp filter")]
    Load(#[source] io::Error),
    /// The agent's socket could not be reached.
    #[error("connect to seccomp listener {path}")]
    Connect {
        /// `listenerPath`.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The listener fd could not be handed to the agent.
    #[error("send seccomp listener fd to {path}")]
    Send {
        /// `listenerPath`.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// One libseccomp rule: a syscall, an action, and conditions ANDed.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The syscall's name, as the profile gave it.
    pub name: String,
    /// Its number (native, or libseccomp's pseudo number for a syscall of
    /// another architecture only).
    pub syscall: ScmpSyscall,
    /// What the filter does when the rule matches.
    pub action: ScmpAction,
    /// Argument conditions, all of which must hold.
    pub conditions: Vec<ScmpArgCompare>,
}

/// A profile translated to libseccomp's terms, not yet built.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `defaultAction` with `defaultErrnoRet`.
    pub default: ScmpAction,
    /// `architectures` besides the native one.
    pub arches: Vec<ScmpArch>,
    /// `SECCOMP_FILTER_FLAG_LOG`.
    pub log: bool,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
    pub spec_allow: bool,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
    pub wait_killable: bool,
    /// The rules, in the profile's order.
    pub rules: Vec<Rule>,
    /// Syscall names libseccomp does not know: skipped, as runc does.
    pub skipped: Vec<String>,
    /// Some rule notifies an agent.
    pub notify: bool,
}

/// Translates an OCI action (with its `errnoRet`).
pub fn action(act: Act, errno_ret: Option<u32>, field: &str) -> Result<ScmpAction, ProfileError> {
    let ret = || match errno_ret {
        None => Ok(DEFAULT_ERRNO),
        Some(n) => u16::try_from(n).map_err(|_| {
            profile_err(
                field,
                format!("errnoRet {n} does not fit the 16 bits of a seccomp return value"),
            )
        }),
    };
    Ok(match act {
        Act::ScmpActAllow => ScmpAction::Allow,
        Act::ScmpActErrno => ScmpAction::Errno(i32::from(ret()?)),
        // libseccomp's SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
        Act::ScmpActKill | Act::ScmpActKillThread => ScmpAction::KillThread,
        Act::ScmpActKillProcess => ScmpAction::KillProcess,
        Act::ScmpActTrap => ScmpAction::Trap,
        Act::ScmpActTrace => ScmpAction::Trace(ret()?),
        Act::ScmpActLog => ScmpAction::Log,
        Act::ScmpActNotify => ScmpAction::Notify,
    })
}

/// Translates an OCI architecture.
pub fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn operator(op: Op, value: u64) -> ScmpCompareOp {
    match op {
        Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
        Op::ScmpCmpLt => ScmpCompareOp::Less,
        Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        Op::ScmpCmpEq => ScmpCompareOp::Equal,
        Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        Op::ScmpCmpGt => ScmpCompareOp::Greater,
        Op::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    }
}

/// Translates the profile without touching the kernel. Refuses what the
/// kernel or the OCI spec rule out (a NOTIFY default, NOTIFY without a
/// listener, an argument index past 5, an errno past 16 bits); skips, and
/// lists in [`Plan::skipped`], syscall names libseccomp does not know.
pub fn translate(profile: &LinuxSeccomp) -> Result<Plan, ProfileError> {
    let base = "linux.seccomp";
    let default_act = profile.default_action();
    if default_act == Act::ScmpActNotify {
        return Err(profile_err(
            format!("{base}.defaultAction"),
            "SCMP_ACT_NOTIFY cannot be the default action (the agent's own \
             system calls would wait on themselves)",
        ));
    }
    let default = action(
        default_act,
        profile.default_errno_ret(),
        &format!("{base}.defaultErrnoRet"),
    )?;
    let arches = profile
        .architectures()
        .iter()
        .flatten()
        .map(|&a| arch(a))
        .collect();
    let (mut log, mut spec_allow, mut wait_killable) = (false, false, false);
    for flag in profile.flags().iter().flatten() {
        match flag {
            Flag::SeccompFilterFlagLog => log = true,
            Flag::SeccompFilterFlagSpecAllow => spec_allow = true,
            Flag::SeccompFilterFlagWaitKillableRecv => wait_killable = true,
            // The init and exec's child are single-threaded when they load
            // the filter: nothing to synchronise (runc ignores the flag too).
            Flag::SeccompFilterFlagTsync => {}
        }
    }
    let mut plan = Plan {
        default,
        arches,
        log,
        spec_allow,
        wait_killable,
        rules: Vec::new(),
        skipped: Vec::new(),
        notify: false,
    };
    for (i, call) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("{base}.syscalls[{i}]");
        let act = action(
            call.action(),
            call.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        if call.action() == Act::ScmpActNotify {
            if profile.listener_path().is_none() {
                return Err(profile_err(
                    format!("{field}.action"),
                    "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (where to send the listener)",
                ));
            }
            if call.names().iter().any(|n| n == "sendmsg") {
                return Err(profile_err(
                    format!("{field}.names"),
                    "SCMP_ACT_NOTIFY cannot apply to sendmsg: the runtime sends the \
                     listener to the agent with it after loading the filter",
                ));
            }
            plan.notify = true;
        }
        let args = call.args().as_deref().unwrap_or_default();
        let mut conditions = Vec::with_capacity(args.len());
        for (j, arg) in args.iter().enumerate() {
            let index = u32::try_from(arg.index())
                .ok()
                .filter(|&n| n < 6)
                .ok_or_else(|| {
                    profile_err(
                        format!("{field}.args[{j}].index"),
                        format!("{} is not a syscall argument (0 to 5)", arg.index()),
                    )
                })?;
            let (op, datum) = match arg.op() {
                Op::ScmpCmpMaskedEq => (
                    operator(arg.op(), arg.value()),
                    arg.value_two().unwrap_or(0),
                ),
                other => (operator(other, arg.value()), arg.value()),
            };
            conditions.push(ScmpArgCompare::new(index, op, datum));
        }
        let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        let groups: Vec<Vec<ScmpArgCompare>> = if repeated {
            conditions.iter().map(|c| vec![*c]).collect()
        } else {
            vec![conditions]
        };
        for name in call.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                plan.skipped.push(name.clone());
                continue;
            };
            // libseccomp refuses a rule with the default action; it would
            // change nothing.
            if act == plan.default {
                continue;
            }
            for conditions in &groups {
                plan.rules.push(Rule {
                    name: name.clone(),
                    syscall,
                    action: act,
                    conditions: conditions.clone(),
                });
            }
        }
    }
    Ok(plan)
}

impl Plan {
    /// The `seccomp(2)` flags loading this filter takes.
    pub fn flags(&self) -> libc::c_ulong {
        let mut flags = 0;
        for (on, flag) in [
            (self.log, libc::SECCOMP_FILTER_FLAG_LOG),
            (self.spec_allow, libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW),
            (
                self.wait_killable,
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
            ),
            (self.notify, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER),
        ] {
            if on {
                flags |= flag;
            }
        }
        flags
    }

    /// Builds the libseccomp filter (nothing is loaded). Errors name the
    /// architecture, flag or syscall libseccomp refused.
    pub fn build(&self) -> Result<ScmpFilterContext, ProfileError> {
        let base = "linux.seccomp";
        let lib = |field: String, what: String| {
            move |e: libseccomp::error::SeccompError| profile_err(field, format!("{what}: {e}"))
        };
        let mut ctx = ScmpFilterContext::new(self.default)
            .map_err(lib(format!("{base}.defaultAction"), "libseccomp".into()))?;
        // libseccomp only compiles: corral loads the program itself
        // (sys::load_seccomp_filter), so libseccomp's load-time attributes
        // (no_new_privs, its error codes) do not apply.
        for &a in &self.arches {
            let field = format!("{base}.architectures");
            let present = ctx
                .is_arch_present(a)
                .map_err(lib(field.clone(), format!("architecture {a:?}")))?;
            if !present {
                ctx.add_arch(a).map_err(lib(
                    field,
                    format!("architecture {a:?} not supported by this libseccomp"),
                ))?;
            }
        }
        let flags = format!("{base}.flags");
        if self.log {
            ctx.set_ctl_log(true)
                .map_err(lib(flags.clone(), "SECCOMP_FILTER_FLAG_LOG".into()))?;
        }
        if self.spec_allow {
            ctx.set_ctl_ssb(true)
                .map_err(lib(flags.clone(), "SECCOMP_FILTER_FLAG_SPEC_ALLOW".into()))?;
        }
        if self.wait_killable {
            let have = ScmpVersion::current()
                .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
                .unwrap_or_else(|_| "unknown".into());
            let want = ScmpVersion::from((2, 6, 0));
            if !libseccomp::check_version(want).unwrap_or(false) {
                return Err(profile_err(
                    flags,
                    format!(
                        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs libseccomp 2.6 or \
                         newer; this host has {have}"
                    ),
                ));
            }
            ctx.set_ctl_waitkill(true)
                .map_err(lib(flags, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".into()))?;
        }
        for rule in &self.rules {
            let field = format!("{base}.syscalls");
            let what = format!("rule {:?} for {}", rule.action, rule.name);
            if rule.conditions.is_empty() {
                ctx.add_rule(rule.action, rule.syscall)
                    .map_err(lib(field, what))?;
            } else {
                ctx.add_rule_conditional(rule.action, rule.syscall, &rule.conditions)
                    .map_err(lib(field, what))?;
            }
        }
        Ok(ctx)
    }
}

/// A filter ready to load: libseccomp's BPF program for a profile, the
/// `seccomp(2)` flags, and whether it notifies.
#[derive(Clone, Debug, PartialEq)]
struct Compiled {
    bpf: Vec<u8>,
    flags: libc::c_ulong,
    notify: bool,
}

/// The [`Compiled`] filter [`check`] made, under its cache key.
struct Built {
    key: String,
    compiled: Compiled,
    /// Made by libseccomp in this process, not read from the cache: worth
    /// keeping ([`persist`]).
    fresh: bool,
}

thread_local! {
    /// The filter [`check`] made in the runtime's parent. The init is a copy
    /// of the parent's memory (`clone3` from this thread), so [`prepare`]
    /// takes it from here instead of compiling it a second time: libseccomp
    /// needs about 15 ms to build and compile a profile like podman's default.
    static BUILT: RefCell<Option<Built>> = const { RefCell::new(None) };
}

/// Where compiled filters are kept between runs ([`set_cache_dir`]).
static CACHE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Keeps compiled filters in `dir` (under the state root), so that the
/// next container with the same profile loads the program without
/// libseccomp compiling it again. Without it nothing is cached.
pub fn set_cache_dir(dir: PathBuf) {
    let _ = CACHE_DIR.set(dir);
}

/// What a compiled filter depends on: corral's version (the translation),
/// libseccomp's, the architecture, and the profile itself.
fn cache_key(profile: &LinuxSeccomp) -> Option<String> {
    let lib = ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .ok()?;
    let json = serde_json::to_string(profile).ok()?;
    Some(format!(
        "corral {} libseccomp {lib} {}\n{json}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    ))
}

/// Header of a cache file; then flags (u64 LE), notify (u8), the key's
/// length (u64 LE), the key, and the BPF program.
const CACHE_MAGIC: &[u8] = b"corral-seccomp-bpf 1\n";

/// The cache file for `key`: named by a hash of it, but a hit needs the
/// whole key to match (the file holds it), so a collision is only a miss.
fn cache_file(key: &str) -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    let dir = CACHE_DIR.get()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    Some(dir.join(format!("{:016x}", h.finish())))
}

fn encode(key: &str, c: &Compiled) -> Vec<u8> {
    let mut out = CACHE_MAGIC.to_vec();
    #[allow(clippy::useless_conversion)] // c_ulong is u32 on 32-bit targets
    out.extend_from_slice(&u64::from(c.flags).to_le_bytes());
    out.push(u8::from(c.notify));
    out.extend_from_slice(&(key.len() as u64).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&c.bpf);
    out
}

/// The filter in `data` if it was compiled for exactly `key`.
fn decode(key: &str, data: &[u8]) -> Option<Compiled> {
    let rest = data.strip_prefix(CACHE_MAGIC)?;
    let (flags, rest) = rest.split_first_chunk::<8>()?;
    let (&notify, rest) = rest.split_first()?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let (stored, bpf) = (rest.get(..len)?, rest.get(len..)?);
    if stored != key.as_bytes() || bpf.is_empty() || !bpf.len().is_multiple_of(8) {
        return None;
    }
    Some(Compiled {
        bpf: bpf.to_vec(),
        flags: libc::c_ulong::try_from(u64::from_le_bytes(*flags)).ok()?,
        notify: notify != 0,
    })
}

/// Translates, builds and compiles `profile` with libseccomp.
fn compile(plan: &Plan) -> Result<Compiled, ProfileError> {
    let ctx = plan.build()?;
    let err = |e: io::Error| profile_err("linux.seccomp", format!("export the BPF program: {e}"));
    let memfd = rustix::fs::memfd_create("corral-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| err(e.into()))?;
    let mut file = std::fs::File::from(memfd);
    ctx.export_bpf(&file)
        .map_err(|e| err(io::Error::other(e)))?;
    let mut bpf = Vec::new();
    file.seek(io::SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bpf))
        .map_err(err)?;
    Ok(Compiled {
        bpf,
        flags: plan.flags(),
        notify: plan.notify,
    })
}

/// Validation in the runtime's parent: the profile translates and builds.
/// Warns about syscall names that will be skipped. Keeps the compiled filter
/// for [`prepare`], read from the cache when it holds this profile's.
pub fn check(profile: &LinuxSeccomp) -> Result<(), ProfileError> {
    let plan = translate(profile)?;
    for name in &plan.skipped {
        tracing::warn!(syscall = %name, "seccomp: unknown syscall {name:?} skipped");
    }
    let key = cache_key(profile);
    let cached = key.as_deref().and_then(|key| {
        let data = std::fs::read(cache_file(key)?).ok()?;
        decode(key, &data)
    });
    let (compiled, fresh) = match cached {
        Some(c) => (c, false),
        None => (compile(&plan)?, true),
    };
    if let Some(key) = key {
        let built = Built {
            key,
            compiled,
            fresh,
        };
        BUILT.with(|slot| *slot.borrow_mut() = Some(built));
    }
    Ok(())
}

/// Writes the filter [`check`] compiled to the cache, once the container
/// it was for exists (a failed `create` leaves nothing). Best effort: a
/// failure only costs the next run the compilation.
pub fn persist() {
    let Some((key, compiled)) = BUILT.with(|slot| {
        let slot = slot.borrow();
        let built = slot.as_ref().filter(|b| b.fresh)?;
        Some((built.key.clone(), built.compiled.clone()))
    }) else {
        return;
    };
    let Some(path) = cache_file(&key) else {
        return;
    };
    let write = || -> io::Result<()> {
        let dir = path
            .parent()
            .ok_or_else(|| io::Error::other("no cache dir"))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?
            .write_all(&encode(&key, &compiled))?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        tracing::debug!("seccomp cache {}: {e}", path.display());
    }
}

/// The filter for `profile`: the one [`check`] made if it was for this very
/// profile, else compiled now.
fn compiled_filter(profile: &LinuxSeccomp) -> Result<Compiled, ProfileError> {
    let kept = BUILT.with(|slot| slot.borrow_mut().take());
    if let (Some(kept), Some(key)) = (kept, cache_key(profile)) {
        if kept.key == key {
            return Ok(kept.compiled);
        }
    }
    compile(&translate(profile)?)
}

/// Parses `data` as an OCI seccomp profile and translates and builds it;
/// never panics, whatever the bytes (driven by proptest, and by a fuzz
/// target when one wraps it).
pub fn fuzz_profile(data: &[u8]) {
    if let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(data) {
        if let Ok(plan) = translate(&profile) {
            let _ = plan.build();
        }
    }
}

/// Whether the process will hold `CAP_SYS_ADMIN` after its user and
/// capabilities are switched: the kernel's other condition, besides
/// `no_new_privs`, for loading a filter.
fn keeps_sys_admin(process: &Process) -> bool {
    process
        .capabilities()
        .as_ref()
        .and_then(|c| c.effective().as_ref())
        .is_some_and(|e| e.contains(&Capability::SysAdmin))
}

/// A filter built in the init, waiting to be loaded.
pub struct Filter {
    compiled: Compiled,
    early: bool,
    listener: Option<Listener>,
}

/// The agent's connection and what to tell it.
struct Listener {
    path: PathBuf,
    socket: UnixStream,
    metadata: Option<String>,
    /// The container's state as the parent sent it to the init.
    state: serde_json::Value,
}

/// In the init, before `pivot_root`: builds the filter for `process` and,
/// if it notifies, connects to `listenerPath` (a host path, reachable only
/// until the root is switched). `state` is the container's state JSON.
/// `None` when the spec has no seccomp profile.
pub fn prepare(
    profile: Option<&LinuxSeccomp>,
    process: &Process,
    state: &[u8],
) -> Result<Option<Filter>, SeccompError> {
    let Some(profile) = profile else {
        return Ok(None);
    };
    let compiled = compiled_filter(profile)?;
    let early = !process.no_new_privileges().unwrap_or(false) && !keeps_sys_admin(process);
    let listener = match profile.listener_path() {
        Some(path) if compiled.notify => {
            let socket = UnixStream::connect(path).map_err(|source| SeccompError::Connect {
                path: path.clone(),
                source,
            })?;
            Some(Listener {
                path: path.clone(),
                socket,
                metadata: profile.listener_metadata().clone(),
                state: serde_json::from_slice(state).unwrap_or(serde_json::Value::Null),
            })
        }
        _ => None,
    };
    Ok(Some(Filter {
        compiled,
        early,
        listener,
    }))
}

impl Filter {
    /// The process will lack both `no_new_privs` and `CAP_SYS_ADMIN`: the
    /// filter must be loaded before the user and capabilities are switched.
    pub fn load_early(&self) -> bool {
        self.early
    }

    /// Loads the filter into this process; with a listener, sends the
    /// notify fd and the container process state to the agent. Every
    /// system call after this one is filtered.
    pub fn load(self) -> Result<(), SeccompError> {
        let fd = crate::sys::load_seccomp_filter(&self.compiled.bpf, self.compiled.flags)
            .map_err(SeccompError::Load)?;
        let Some(listener) = self.listener else {
            return Ok(());
        };
        let fd = fd.ok_or_else(|| SeccompError::Load(io::Error::other("no listener fd")))?;
        let status = if self.early { "creating" } else { "created" };
        let payload = process_state(&listener.state, listener.metadata.as_deref(), status);
        let send_err = |source| SeccompError::Send {
            path: listener.path.clone(),
            source,
        };
        let payload = serde_json::to_vec(&payload).map_err(|e| send_err(e.into()))?;
        crate::sys::send_seccomp_listener(listener.socket.as_fd(), fd.as_fd(), &payload)
            .map_err(send_err)
    }
}

/// The OCI `ContainerProcessState` sent with the listener: the container's
/// state (status as given), the pid, the agent's metadata, and `fds` naming
/// the one fd in the message.
pub fn process_state(
    state: &serde_json::Value,
    metadata: Option<&str>,
    status: &str,
) -> serde_json::Value {
    let mut state = state.clone();
    if state.is_object() {
        state["status"] = status.into();
    }
    let mut msg = serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "fds": [SECCOMP_FD_NAME],
        "pid": state.get("pid").cloned().unwrap_or(0.into()),
        "state": state,
    });
    if let Some(m) = metadata {
        msg["metadata"] = m.into();
    }
    msg
}

/// What an agent answers to a notified system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The call returns this value without running.
    Value(i64),
    /// The call fails with this errno without running.
    Errno(i32),
    /// The call runs as if not filtered (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
}

/// A system call waiting for the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The kernel's id for the reply.
    pub id: u64,
    /// The calling task (host pid namespace of the listener's receiver).
    pub pid: u32,
    /// The syscall's name on its architecture, or its number.
    pub syscall: String,
    /// Its arguments.
    pub args: [u64; 6],
}

/// The agent's side of `SCMP_ACT_NOTIFY`: waits for the next notified call
/// on `listener` (the fd the runtime sent). For tests and agents.
pub fn receive(listener: impl AsFd) -> Result<Notification, libseccomp::error::SeccompError> {
    use std::os::fd::AsRawFd;
    let req = ScmpNotifReq::receive(listener.as_fd().as_raw_fd())?;
    let syscall = req
        .data
        .syscall
        .get_name_by_arch(req.data.arch)
        .unwrap_or_else(|_| req.data.syscall.as_raw_syscall().to_string());
    Ok(Notification {
        id: req.id,
        pid: req.pid,
        syscall,
        args: req.data.args,
    })
}

/// Answers notification `id` on `listener`.
pub fn respond(
    listener: impl AsFd,
    id: u64,
    reply: Reply,
) -> Result<(), libseccomp::error::SeccompError> {
    use std::os::fd::AsRawFd;
    let none = ScmpNotifRespFlags::empty();
    let resp = match reply {
        Reply::Value(v) => ScmpNotifResp::new_val(id, v, none),
        // The kernel wants the negative errno.
        Reply::Errno(e) => ScmpNotifResp::new_error(id, -e, none),
        Reply::Continue => ScmpNotifResp::new_continue(id, ScmpNotifRespFlags::CONTINUE),
    };
    resp.respond(listener.as_fd().as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    /// The filter libseccomp would load, as its pseudo-code (PFC).
    fn pfc(plan: &Plan) -> String {
        ctx_pfc(&plan.build().unwrap())
    }

    fn ctx_pfc(ctx: &ScmpFilterContext) -> String {
        let mut file = tempfile::tempfile().unwrap();
        ctx.export_pfc(&file).unwrap();
        use std::io::{Read, Seek};
        file.rewind().unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        text
    }

    fn nr(name: &str) -> ScmpSyscall {
        ScmpSyscall::from_name(name).unwrap()
    }

    #[test]
    fn errno_rule_with_and_without_errno_ret() {
        let plan = translate(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}
            ]
        })))
        .unwrap();
        assert_eq!(plan.default, ScmpAction::Allow);
        let got: Vec<_> = plan
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.action))
            .collect();
        assert_eq!(
            got,
            [
                ("mkdir", ScmpAction::Errno(13)),
                ("mkdirat", ScmpAction::Errno(13)),
                ("rmdir", ScmpAction::Errno(libc::EPERM)),
            ]
        );
        let text = pfc(&plan);
        assert!(text.contains("action ERRNO(13)"), "{text}");
        assert!(
            text.contains(&format!("$syscall == {}", libc::SYS_mkdir)),
            "{text}"
        );
    }

    #[test]
    fn every_action_translates() {
        let cases = [
            (Act::ScmpActAllow, None, ScmpAction::Allow),
            (Act::ScmpActErrno, Some(38), ScmpAction::Errno(38)),
            (Act::ScmpActKill, None, ScmpAction::KillThread),
            (Act::ScmpActKillThread, None, ScmpAction::KillThread),
            (Act::ScmpActKillProcess, None, ScmpAction::KillProcess),
            (Act::ScmpActTrap, None, ScmpAction::Trap),
            (Act::ScmpActTrace, Some(7), ScmpAction::Trace(7)),
            (Act::ScmpActTrace, None, ScmpAction::Trace(1)),
            (Act::ScmpActLog, None, ScmpAction::Log),
            (Act::ScmpActNotify, None, ScmpAction::Notify),
        ];
        for (act, ret, want) in cases {
            assert_eq!(action(act, ret, "f").unwrap(), want, "{act:?}");
        }
        let err = action(Act::ScmpActErrno, Some(70_000), "x.errnoRet").unwrap_err();
        assert_eq!(err.field, "x.errnoRet");
        assert!(err.problem.contains("70000"), "{err}");
    }

    #[test]
    fn default_errno_and_architectures() {
        let plan = translate(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
        })))
        .unwrap();
        assert_eq!(plan.default, ScmpAction::Errno(38));
        assert_eq!(plan.arches, [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]);
        assert!(plan.log && plan.spec_allow && !plan.wait_killable);
        let ctx = plan.build().unwrap();
        assert!(ctx.is_arch_present(ScmpArch::X86).unwrap());
        assert!(ctx.get_ctl_log().unwrap());
        assert!(ctx.get_ctl_ssb().unwrap());
        // TSYNC means nothing in the single-threaded init; our loader sets
        // no no_new_privs either (the spec decides).
        assert_eq!(
            plan.flags(),
            libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        );
        let text = pfc(&plan);
        assert!(text.contains("action ERRNO(38)"), "{text}");
        assert!(text.contains("filter for arch x86 (1073741827)"), "{text}");
    }

    #[test]
    fn conditions_and_with_distinct_args_or_with_a_repeated_one() {
        let and = translate(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 255, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}
            ]}]
        })))
        .unwrap();
        assert_eq!(and.rules.len(), 1);
        assert_eq!(
            and.rules[0].conditions,
            [
                ScmpArgCompare::new(0, ScmpCompareOp::Equal, 8),
                ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(255), 3),
            ]
        );
        let or = translate(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 100, "op": "SCMP_CMP_GT"}
            ]}]
        })))
        .unwrap();
        assert_eq!(or.rules.len(), 2);
        assert_eq!(
            or.rules[1].conditions,
            [ScmpArgCompare::new(0, ScmpCompareOp::Greater, 100)]
        );
        assert_eq!(or.rules[0].syscall, nr("personality"));
        for op in ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GE"] {
            let p = profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 1, "value": 9, "op": op}]}]
            }));
            translate(&p).unwrap().build().unwrap();
        }
    }

    #[test]
    fn unknown_syscalls_are_skipped_and_default_rules_dropped() {
        let plan = translate(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["no_such_syscall", "getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
            ]
        })))
        .unwrap();
        assert_eq!(plan.skipped, ["no_such_syscall"]);
        assert_eq!(plan.rules.len(), 1, "{:?}", plan.rules);
        assert_eq!(plan.rules[0].name, "getpid");
        plan.build().unwrap();
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[0].action",
                "listenerPath",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                    "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[0].names",
                "sendmsg",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                  "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
                "linux.seccomp.syscalls[0].args[0].index",
                "0 to 5",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}),
                "linux.seccomp.defaultErrnoRet",
                "65536",
            ),
        ];
        for (json, field, word) in cases {
            let err = translate(&profile(json)).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.problem.contains(word), "{err}");
        }
    }

    #[test]
    fn wait_killable_needs_libseccomp_2_6() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        }));
        let plan = translate(&p).unwrap();
        assert!(plan.wait_killable);
        match plan.build() {
            Ok(ctx) => assert!(ctx.get_ctl_waitkill().unwrap()),
            Err(e) => {
                assert_eq!(e.field, "linux.seccomp.flags");
                assert!(e.problem.contains("libseccomp 2.6"), "{e}");
            }
        }
    }

    #[test]
    fn process_state_for_the_agent() {
        let state = serde_json::json!({"ociVersion": "1.2.1", "id": "c1", "status": "creating",
                                       "pid": 42, "bundle": "/b"});
        let msg = process_state(&state, Some("meta"), "created");
        assert_eq!(msg["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(msg["pid"], 42);
        assert_eq!(msg["metadata"], "meta");
        assert_eq!(msg["state"]["status"], "created");
        assert_eq!(msg["state"]["id"], "c1");
        let parsed: oci_spec::runtime::ContainerProcessState = serde_json::from_value(msg).unwrap();
        assert_eq!(parsed.pid(), &42);
        assert!(process_state(&state, None, "creating")
            .get("metadata")
            .is_none());
    }

    #[test]
    fn early_load_without_nnp_or_sys_admin() {
        let mut process: Process = serde_json::from_value(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": false,
            "capabilities": {"effective": ["CAP_KILL"]}
        }))
        .unwrap();
        assert!(!keeps_sys_admin(&process));
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(prepare(Some(&p), &process, b"{}")
            .unwrap()
            .unwrap()
            .load_early());
        process.set_no_new_privileges(Some(true));
        assert!(!prepare(Some(&p), &process, b"{}")
            .unwrap()
            .unwrap()
            .load_early());
        assert!(prepare(None, &process, b"{}").unwrap().is_none());
    }

    #[test]
    fn spec_parsing_names_unknown_actions_architectures_and_flags() {
        let cases = [
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}),
                "linux.seccomp.syscalls[0].action: unknown seccomp action \"SCMP_ACT_BOGUS\"",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_NOPE"}),
                "linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_NOPE\"",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
                "linux.seccomp.architectures[0]: unknown seccomp architecture \"SCMP_ARCH_VAX\"",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_X"]}),
                "linux.seccomp.flags[0]: unknown seccomp flag \"SECCOMP_FILTER_FLAG_X\"",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
                    "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}),
                "linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator \"SCMP_CMP_ALMOST\"",
            ),
        ];
        for (seccomp, want) in cases {
            let mut config = crate::spec::default_spec(false, 0, 0);
            config["linux"]["seccomp"] = seccomp;
            let err = crate::spec::parse(config.to_string().as_bytes(), "config.json")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("config.json: {want}")), "{err}");
        }
    }

    fn compiled(p: &LinuxSeccomp) -> Compiled {
        compile(&translate(p).unwrap()).unwrap()
    }

    fn mkdir_and_rmdir_profiles() -> (LinuxSeccomp, LinuxSeccomp) {
        let a = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
        let b = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}));
        (a, b)
    }

    #[test]
    fn prepare_reuses_the_filter_check_made_for_the_same_profile_only() {
        let (a, b) = mkdir_and_rmdir_profiles();
        assert_ne!(compiled(&a), compiled(&b));
        check(&a).unwrap();
        let kept = BUILT.with(|slot| slot.borrow().as_ref().map(|k| k.compiled.clone()));
        assert_eq!(kept, Some(compiled(&a)));
        // Another profile: compiled afresh, and the kept filter is used up.
        assert_eq!(compiled_filter(&b).unwrap(), compiled(&b));
        assert!(BUILT.with(|slot| slot.borrow().is_none()));
        // The same profile: the kept filter itself, taken once.
        check(&a).unwrap();
        assert_eq!(compiled_filter(&a).unwrap(), compiled(&a));
        assert!(BUILT.with(|slot| slot.borrow().is_none()));
    }

    #[test]
    fn the_cache_gives_back_a_filter_for_its_exact_profile_only() {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        set_cache_dir(dir.path().join("seccomp"));
        let Some(cache) = CACHE_DIR.get().filter(|d| d.starts_with(dir.path())) else {
            return; // another test of this process chose the directory
        };
        let (a, b) = mkdir_and_rmdir_profiles();
        // A first check compiles; persist writes the file.
        check(&a).unwrap();
        assert!(BUILT.with(|slot| slot.borrow().as_ref().is_some_and(|b| b.fresh)));
        persist();
        let key_a = cache_key(&a).unwrap();
        let file = cache_file(&key_a).unwrap();
        assert!(file.starts_with(cache), "{}", file.display());
        let data = std::fs::read(&file).unwrap();
        assert_eq!(decode(&key_a, &data), Some(compiled(&a)));
        // The next check reads it instead of compiling.
        check(&a).unwrap();
        assert!(BUILT.with(|slot| slot.borrow().as_ref().is_some_and(|b| !b.fresh)));
        assert_eq!(compiled_filter(&a).unwrap(), compiled(&a));
        // Another profile's key never matches that file, even under its name.
        let key_b = cache_key(&b).unwrap();
        assert_eq!(decode(&key_b, &data), None);
        std::fs::write(cache_file(&key_b).unwrap(), &data).unwrap();
        check(&b).unwrap();
        assert!(BUILT.with(|slot| slot.borrow().as_ref().is_some_and(|b| b.fresh)));
        assert_eq!(compiled_filter(&b).unwrap(), compiled(&b));
        // Damaged files are misses.
        for bad in [
            &data[..data.len() - 3],
            &data[1..],
            &data[..CACHE_MAGIC.len() + 4],
        ] {
            assert_eq!(decode(&key_a, bad), None);
        }
    }

    #[test]
    fn spec_validation_runs_the_check() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let mut config = crate::spec::default_spec(false, 0, 0);
        config["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
        let spec = crate::spec::parse(config.to_string().as_bytes(), "config.json").unwrap();
        let err = crate::spec::validate(&spec, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.json: linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn fuzz_profile_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            fuzz_profile(&data);
        }

        #[test]
        fn fuzz_profile_never_panics_on_json_shapes(
            default in proptest::sample::select(vec!["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_NOTIFY"]),
            act in proptest::sample::select(vec!["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_NOTIFY"]),
            name in "[a-z_0-9]{0,12}",
            index in 0usize..10,
            value in proptest::num::u64::ANY,
            errno in proptest::option::of(0u32..100_000),
            op in proptest::sample::select(vec!["SCMP_CMP_NE", "SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_GT"]),
        ) {
            let json = serde_json::json!({
                "defaultAction": default, "defaultErrnoRet": errno, "listenerPath": "/nonexistent",
                "syscalls": [{"names": [name, "mkdir"], "action": act, "errnoRet": errno,
                              "args": [{"index": index, "value": value, "valueTwo": value, "op": op}]}]
            });
            fuzz_profile(json.to_string().as_bytes());
        }
    }
}
