//! runc's commands on a live container: exec, ps, pause, resume, update,
//! events, and the `features` document.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use corral_runtime::exec::{self, ExecFlags, ExecOptions};
use corral_runtime::{container, live, RunOutcome, Store};
use oci_spec::runtime::{LinuxBlockIo, LinuxMemory, LinuxPids, LinuxResources};

/// `exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A process.json to run instead of COMMAND and the flags.
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Allocate a pseudo-terminal (corral proxies it unless --console-socket).
    #[arg(short, long)]
    tty: bool,
    /// Unix socket to send the pty master to.
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Environment variable NAME=VALUE (repeatable).
    #[arg(short, long)]
    env: Vec<String>,
    /// User as uid[:gid].
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gid (repeatable).
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (repeatable), e.g. CAP_NET_ADMIN.
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// AppArmor profile.
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux process label.
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Detach: return once the process runs.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Pass this many fds beyond stdio to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Exec even if the container is paused.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// A sub-cgroup to run in (not supported yet).
    #[arg(long)]
    cgroup: Vec<String>,
    /// The container id.
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format: table or json.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// The container id.
    pub id: String,
    /// Arguments for ps(1) (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// `update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Read the resources (OCI linux.resources JSON) from FILE, or stdin with "-".
    #[arg(short, long)]
    resources: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CPU CFS period, microseconds.
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU CFS quota, microseconds.
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU realtime period, microseconds.
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPU realtime runtime, microseconds.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs to use (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g suffix; -1 for unlimited).
    #[arg(short, long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of pids (-1 or 0 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight (10-1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// The container id.
    pub id: String,
}

/// `events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    stats: bool,
    /// Interval between stats events, e.g. 5s or 500ms.
    #[arg(long, default_value = "5s")]
    interval: String,
    /// The container id.
    pub id: String,
}

/// `features`.
#[derive(Args, Debug)]
pub struct FeaturesArgs {}

/// `syslog`.
#[derive(Args, Debug)]
pub struct SyslogArgs {
    /// Keep printing new messages until the container stops.
    #[arg(short, long)]
    follow: bool,
    /// Print the stored JSON lines (time, id, msg).
    #[arg(long)]
    json: bool,
    /// Only messages at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// The container id.
    pub id: String,
}

/// `exec`.
pub fn exec(store: &Store, a: &ExecArgs) -> anyhow::Result<ExitCode> {
    if !a.cgroup.is_empty() {
        bail!("exec --cgroup is not supported yet");
    }
    let process = a.process.as_deref().map(exec::load_process).transpose()?;
    let flags = ExecFlags {
        args: a.command.clone(),
        tty: a.tty,
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
    };
    let opts = ExecOptions {
        id: a.id.clone(),
        process,
        flags,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    match exec::exec(store, &opts)? {
        RunOutcome::Detached => Ok(ExitCode::SUCCESS),
        RunOutcome::Exited(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
    }
}

/// `ps`: the container's processes, as a JSON list of pids or as ps(1)'s
/// table filtered to them.
pub fn ps(store: &Store, a: &PsArgs) -> anyhow::Result<()> {
    let pids = live::pids(store, &a.id)?;
    let mut out = std::io::stdout().lock();
    if a.format == "json" {
        serde_json::to_writer(&mut out, &pids)?;
        writeln!(out)?;
        return Ok(());
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !output.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .with_context(|| format!("ps {}: no PID column in its output", args.join(" ")))?;
    writeln!(out, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Parses a byte size as runc does: a number with an optional k/m/g/t
/// suffix (binary units, optional trailing "b"); -1 means unlimited.
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

/// `update`: the flags (or `--resources`) as OCI resources, applied.
pub fn update(store: &Store, a: &UpdateArgs) -> anyhow::Result<()> {
    let mut res: LinuxResources = match a.resources.as_deref() {
        Some("-") => serde_json::from_reader(std::io::stdin().lock())
            .context("--resources -: invalid JSON")?,
        Some(path) => {
            let data = std::fs::read(path).with_context(|| format!("read {path}"))?;
            serde_json::from_slice(&data)
                .with_context(|| format!("{path}: invalid resources JSON"))?
        }
        None => LinuxResources::default(),
    };
    let mut cpu = res.cpu().clone().unwrap_or_default();
    let mut cpu_set = false;
    macro_rules! set_cpu {
        ($field:expr, $setter:ident) => {
            if let Some(v) = $field.clone() {
                cpu.$setter(Some(v));
                cpu_set = true;
            }
        };
    }
    set_cpu!(a.cpu_shares, set_shares);
    set_cpu!(a.cpu_period, set_period);
    set_cpu!(a.cpu_quota, set_quota);
    set_cpu!(a.cpu_rt_period, set_realtime_period);
    set_cpu!(a.cpu_rt_runtime, set_realtime_runtime);
    set_cpu!(a.cpuset_cpus, set_cpus);
    set_cpu!(a.cpuset_mems, set_mems);
    if cpu_set {
        res.set_cpu(Some(cpu));
    }
    let mut mem: LinuxMemory = res.memory().unwrap_or_default();
    let mut mem_set = false;
    if let Some(m) = &a.memory {
        mem.set_limit(Some(parse_bytes(m)?));
        mem_set = true;
    }
    if let Some(m) = &a.memory_reservation {
        mem.set_reservation(Some(parse_bytes(m)?));
        mem_set = true;
    }
    if let Some(m) = &a.memory_swap {
        mem.set_swap(Some(parse_bytes(m)?));
        mem_set = true;
    }
    if mem_set {
        res.set_memory(Some(mem));
    }
    if let Some(limit) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        res.set_pids(Some(pids));
    }
    if let Some(w) = a.blkio_weight {
        let mut b: LinuxBlockIo = res.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    live::update(store, &a.id, &res).with_context(|| format!("update container {}", a.id))?;
    Ok(())
}

fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.trim().len()),
    );
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid interval {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid interval {s:?} (use e.g. 5s or 500ms)"),
    };
    if secs <= 0.0 {
        bail!("invalid interval {s:?}: must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `events`: one stats event with `--stats`; else a stats event every
/// interval and an `oom` event as soon as the kernel reports an OOM kill
/// (the cgroup library's watcher), until the container stops (checked
/// every 100 ms).
pub fn events(store: &Store, a: &EventsArgs) -> anyhow::Result<()> {
    let interval = parse_interval(&a.interval)?;
    let mut out = std::io::stdout().lock();
    let mut emit = |ev: &live::Event| -> anyhow::Result<()> {
        serde_json::to_writer(&mut out, ev)?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    };
    emit(&live::stats(store, &a.id)?)?;
    if a.stats {
        return Ok(());
    }
    let tick = Duration::from_millis(100).min(interval);
    let mut ooms = live::oom_watcher(store, &a.id)?;
    let mut next_stats = Instant::now() + interval;
    while live::is_running(store, &a.id) {
        let wait = tick.min(next_stats.saturating_duration_since(Instant::now()));
        let event = match ooms.as_mut() {
            Some(w) => w.wait(Some(wait))?,
            None => {
                std::thread::sleep(wait);
                None
            }
        };
        match event {
            Some(corral_cgroups::Event::Oom { .. }) => emit(&live::Event {
                typ: "oom",
                id: a.id.clone(),
                data: serde_json::Value::Null,
            })?,
            Some(corral_cgroups::Event::Removed) => break, // deleted meanwhile
            Some(_) | None => {}
        }
        if Instant::now() >= next_stats {
            match live::stats(store, &a.id) {
                Ok(ev) => emit(&ev)?,
                Err(_) => break, // stopped meanwhile
            }
            next_stats += interval;
        }
    }
    Ok(())
}

/// `syslog`: what the container sent to its /dev/log.
pub fn syslog(store: &Store, a: &SyslogArgs) -> anyhow::Result<()> {
    let st = container::state_file(store, &a.id)?;
    let dir = store.root().join(&a.id);
    if !dir.join(corral_runtime::syslog::SOCKET).exists() {
        bail!("container {} has no syslog (run it with --syslog or the annotation run.corral.syslog=true)", st.id);
    }
    let mut out = std::io::stdout().lock();
    let mut seen = 0;
    loop {
        let all = corral_runtime::syslog::read(&dir, a.since.as_deref());
        // After a rotation the count can shrink; print what is new.
        let start = if all.len() < seen { 0 } else { seen };
        for (line, m) in &all[start..] {
            if a.json {
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "{} {}: {}", m.time, m.id, m.msg)?;
            }
        }
        seen = all.len();
        out.flush()?;
        if !a.follow || !live::is_running(store, &a.id) {
            return Ok(());
        }
        std::thread::sleep(corral_runtime::syslog::FOLLOW_INTERVAL);
    }
}

/// `features`: the OCI runtime features document.
pub fn features() -> anyhow::Result<()> {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let doc = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": corral_runtime::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "exec", "noatime", "nodev",
            "nodiratime", "noexec", "nosuid", "nosymfollow", "private", "rbind", "relatime", "ro",
            "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
            "suid", "symfollow", "sync", "unbindable", "rro", "rrw", "rnosuid", "rsuid", "rnodev",
            "rdev", "rnoexec", "rexec", "rnoatime", "ratime", "rrelatime", "rstrictatime",
            "rnodiratime", "rdiratime", "rnosymfollow", "rsymfollow"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "apparmor": {"enabled": corral_runtime::spec::apparmor_enabled()},
            "selinux": {"enabled": corral_runtime::spec::selinux_enabled()},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "run.oci.corral.version": env!("CARGO_PKG_VERSION")
        }
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &doc)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_like_runc() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("1k").unwrap(), 1024);
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2gb").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("banana").is_err());
        assert!(parse_bytes("-5").is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5x").is_err());
    }
}
