//! One clap struct per runc subcommand and its handler.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args;
use corral_runtime::{container, signal, spec, CreateOptions, RunOutcome, Store};

use crate::{Cli, Command};

/// Flags shared by `create` and `run`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Path to the bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket to send the pty master to (runc's protocol).
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// File to write the container's init pid to.
    #[arg(long = "pid-file", value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramdisk roots).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a session keyring for the container.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many fds beyond stdio (3, 4, …) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Give the container a /dev/log of its own, read with `corral syslog`.
    #[arg(long)]
    syslog: bool,
    /// Accepted for runc compatibility (pidfd passing comes later).
    #[arg(long = "pidfd-socket", hide = true)]
    pidfd_socket: Option<PathBuf>,
    /// The container id.
    id: String,
}

/// `run`: `create`'s flags plus detach and keep.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Detach: return once the container runs.
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    keep: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-subreaper", hide = true)]
    no_subreaper: bool,
}

/// A command taking only a container id.
#[derive(Args, Debug)]
pub struct IdArgs {
    /// The container id.
    id: String,
}

/// `kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process of the container, not only its init.
    #[arg(short, long)]
    all: bool,
    /// The container id.
    id: String,
    /// Signal name or number (default TERM).
    #[arg(default_value = "TERM")]
    signal: String,
}

/// `delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running.
    #[arg(short, long)]
    force: bool,
    /// The container id.
    id: String,
}

/// `list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print only the ids.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table or json.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

/// `spec`.
#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            syslog: self.syslog,
            restore: false,
            restore_time_ns: None,
        }
    }
}

/// Runs the command `cli` names.
pub fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    let store = Store::new(cli.state_root());
    // Compiled seccomp filters, kept between runs: "@" is not allowed in a
    // container id, so no container can be named like this directory.
    corral_runtime::seccomp::set_cache_dir(cli.state_root().join("@cache").join("seccomp"));
    let makes_processes = match &cli.command {
        Command::Create(_) | Command::Run(_) | Command::Exec(_) | Command::Restore(_) => true,
        Command::Cr(a) => a.restores(),
        _ => false,
    };
    if makes_processes {
        // Before anything else: these commands make processes that run
        // inside the container (or as the restored process) with corral's
        // binary as their exe until they exec (or take on the image's).
        corral_runtime::selfexe::reexec_read_only()?;
    }
    match &cli.command {
        Command::Create(a) => {
            container::create(&store, &a.options())
                .with_context(|| format!("create container {}", a.id))?;
            corral_runtime::seccomp::persist();
        }
        Command::Start(a) => {
            container::start(&store, &a.id).with_context(|| format!("start container {}", a.id))?
        }
        Command::Run(a) => {
            let ctx = || format!("run container {}", a.create.id);
            let outcome =
                container::run(&store, &a.create.options(), a.detach, a.keep).with_context(ctx)?;
            corral_runtime::seccomp::persist();
            match outcome {
                RunOutcome::Detached => {}
                RunOutcome::Exited(code) => return Ok(ExitCode::from(code.clamp(0, 255) as u8)),
            }
        }
        Command::State(a) => {
            let st = container::state(&store, &a.id)?;
            print_json(&st)?;
        }
        Command::Kill(a) => {
            let sig = signal::parse_signal(&a.signal)?;
            container::kill(&store, &a.id, sig, a.all)
                .with_context(|| format!("kill container {}", a.id))?;
        }
        Command::Delete(a) => container::delete(&store, &a.id, a.force)
            .with_context(|| format!("delete container {}", a.id))?,
        Command::List(a) => list(&store, a)?,
        Command::Spec(a) => write_spec(a, cli.global.rootless.as_deref() == Some("true"))?,
        Command::Cr(a) => return crate::cr_cmd::run(a),
        Command::Checkpoint(a) => return crate::ctr_cmd::checkpoint(&store, a),
        Command::Restore(a) => return crate::ctr_cmd::restore(&store, a),
        Command::Exec(a) => {
            // runc's exec reports its own failures with 255, keeping 1..=254
            // for the process's exit status.
            let r = crate::live_cmd::exec(&store, a)
                .with_context(|| format!("exec in container {}", a.id));
            return Ok(r.unwrap_or_else(|e| crate::fail_with(e, 255)));
        }
        Command::Ps(a) => {
            crate::live_cmd::ps(&store, a).with_context(|| format!("ps of container {}", a.id))?
        }
        Command::Pause(a) => corral_runtime::live::pause(&store, &a.id)
            .with_context(|| format!("pause container {}", a.id))?,
        Command::Resume(a) => corral_runtime::live::resume(&store, &a.id)
            .with_context(|| format!("resume container {}", a.id))?,
        Command::Update(a) => crate::live_cmd::update(&store, a)?,
        Command::Events(a) => crate::live_cmd::events(&store, a)
            .with_context(|| format!("events of container {}", a.id))?,
        Command::Features(_) => crate::live_cmd::features()?,
        Command::Syslog(a) => crate::live_cmd::syslog(&store, a)
            .with_context(|| format!("syslog of container {}", a.id))?,
        Command::Cgroup(a) => return crate::cgroup_cmd::run(a),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn list(store: &Store, a: &ListArgs) -> anyhow::Result<()> {
    let all = container::list(store)?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for c in &all {
            writeln!(out, "{}", c.id)?;
        }
        return Ok(());
    }
    if a.format == "json" {
        // runc prints a nil slice, `null`, when there is no container.
        let all = (!all.is_empty()).then_some(all);
        serde_json::to_writer(&mut out, &all)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|c| {
            [
                c.id.clone(),
                c.pid.to_string(),
                c.status.to_string(),
                c.bundle.display().to_string(),
                c.created.clone(),
                c.owner.clone(),
            ]
        })
        .collect();
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    // runc's tabwriter: each column max(12, widest cell + 3) wide.
    let mut widths = header.clone().map(|h| (h.len() + 3).max(12));
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len() + 3);
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut line: String = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        line.truncate(line.trim_end().len());
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `spec [--rootless]`: the global `--rootless` flag asks for a spec an
/// unprivileged user can run.
fn write_spec(a: &SpecArgs, rootless: bool) -> anyhow::Result<()> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let v = spec::default_spec(rootless, uid, gid);
    let text = serde_json::to_string_pretty(&v)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
