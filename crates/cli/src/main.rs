//! The `corral` binary: runc's command line over `corral-runtime`.
//!
//! Each subcommand is a clap struct in [`commands`]; its handler converts the
//! arguments, calls one library function and maps the result to output and
//! an exit code. Errors print as one line, `corral: <what failed>: <why>`, on
//! stderr and, with `--log`, as a runc-style log entry.

mod cgroup_cmd;
mod commands;
mod cr_cmd;
mod ctr_cmd;
mod live_cmd;
mod logging;
mod parse;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Default state root (rootless: `$XDG_RUNTIME_DIR/corral`).
const DEFAULT_ROOT: &str = "/run/corral";

/// corral: a runc-compatible OCI container runtime.
#[derive(Parser, Debug)]
#[command(name = "corral", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.2.1"), about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// The flags every command takes (runc's global options).
#[derive(clap::Args, Debug)]
struct Global {
    /// Root directory for container state.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Write log entries to this file instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log debug-level events.
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver (not supported yet).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Rootless mode: true, false or auto.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true", value_name = "true|false|auto")]
    rootless: Option<String>,
    /// Path to CRIU (accepted for runc compatibility; corral does not use CRIU).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (its process waits for `start`).
    Create(commands::CreateArgs),
    /// Start a created container.
    Start(commands::IdArgs),
    /// Create and start a container.
    Run(commands::RunArgs),
    /// Print the state of a container as JSON.
    State(commands::IdArgs),
    /// Send a signal to a container's init (or all its processes).
    Kill(commands::KillArgs),
    /// Delete a container and everything it holds.
    Delete(commands::DeleteArgs),
    /// List containers.
    List(commands::ListArgs),
    /// Write a default config.json.
    Spec(commands::SpecArgs),
    /// Checkpoint/restore of process trees (dump, restore, show, check).
    Cr(cr_cmd::CrArgs),
    /// Checkpoint a running container to an image directory.
    Checkpoint(ctr_cmd::CheckpointArgs),
    /// Restore a container from a checkpoint image.
    Restore(ctr_cmd::RestoreArgs),
    /// Run a new process in a running container.
    Exec(live_cmd::ExecArgs),
    /// List the processes of a container.
    Ps(live_cmd::PsArgs),
    /// Freeze every process of a container.
    Pause(commands::IdArgs),
    /// Thaw a paused container.
    Resume(commands::IdArgs),
    /// Change a container's resource limits.
    Update(live_cmd::UpdateArgs),
    /// Print a container's stats (and OOM events) as JSON lines.
    Events(live_cmd::EventsArgs),
    /// Print the OCI features document of this runtime.
    Features(live_cmd::FeaturesArgs),
    /// Print what a container sent to its /dev/log (see --syslog).
    Syslog(live_cmd::SyslogArgs),
    /// Manage control groups (libcgroup's cgcreate, cgset, cgget, cgexec, …).
    Cgroup(cgroup_cmd::CgroupArgs),
}

impl Cli {
    fn state_root(&self) -> PathBuf {
        if let Some(r) = &self.global.root {
            return r.clone();
        }
        if !rustix::process::geteuid().is_root() {
            if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
                return PathBuf::from(dir).join("corral");
            }
        }
        PathBuf::from(DEFAULT_ROOT)
    }
}

/// The command word of `args` (after the global flags), found without clap
/// so that `create`, `run` and `exec` can re-execute from a read-only mount
/// of the binary before doing anything else (CVE-2019-5736; the re-exec
/// repeats whatever came before it). Only a shortcut: `dispatch` checks the
/// parsed command again.
fn early_command(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<String> {
    let mut args = args.into_iter().skip(1).peekable();
    while let Some(arg) = args.next() {
        let arg = arg.into_string().ok()?;
        match arg.as_str() {
            "--" => return None,
            "--root" | "--log" | "--log-format" | "--criu" | "-root" | "-log" | "-log-format"
            | "-criu" => {
                args.next();
            }
            "--rootless" | "-rootless" => {
                if args
                    .peek()
                    .is_some_and(|v| matches!(v.to_str(), Some("true" | "false" | "auto")))
                {
                    args.next();
                }
            }
            flag if flag.starts_with('-') => {}
            command => return Some(command.to_owned()),
        }
    }
    None
}

fn main() -> ExitCode {
    let early = early_command(std::env::args_os());
    if matches!(
        early.as_deref(),
        Some("create" | "run" | "exec" | "restore")
    ) {
        if let Err(e) = corral_runtime::selfexe::reexec_read_only() {
            // exec's own failures are 255, as runc's.
            let code = if early.as_deref() == Some("exec") {
                255
            } else {
                1
            };
            return fail_with(anyhow::Error::new(e), code);
        }
    }
    let cli = match parse::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version exit 0; usage errors exit 1 and an unknown
            // command 3, as runc's do (clap's own code would be 2).
            let _ = e.print();
            return match e.kind() {
                _ if !e.use_stderr() => ExitCode::SUCCESS,
                clap::error::ErrorKind::InvalidSubcommand => ExitCode::from(3),
                _ => ExitCode::FAILURE,
            };
        }
    };
    logging::init(
        cli.global.log.as_deref(),
        cli.global.log_format == "json",
        cli.global.debug,
    );
    if cli.global.systemd_cgroup {
        return fail(anyhow::anyhow!("systemd cgroup driver not supported yet"));
    }
    match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(err) => fail(err),
    }
}

fn fail(err: anyhow::Error) -> ExitCode {
    fail_with(err, 1)
}

/// Reports `err` (stderr, and the `--log` file) and returns `code`.
pub fn fail_with(err: anyhow::Error, code: u8) -> ExitCode {
    let msg = format!("{err:#}");
    logging::error(&msg);
    eprintln!("corral: {msg}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::early_command;

    fn cmd(args: &[&str]) -> Option<String> {
        early_command(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn the_command_word_after_global_flags() {
        assert_eq!(cmd(&["corral", "exec", "x", "sh"]).as_deref(), Some("exec"));
        assert_eq!(
            cmd(&[
                "corral",
                "--root",
                "/r",
                "--log",
                "l",
                "--log-format",
                "json",
                "run",
                "x"
            ])
            .as_deref(),
            Some("run")
        );
        assert_eq!(
            cmd(&["corral", "--root=/r", "--debug", "create", "x"]).as_deref(),
            Some("create")
        );
        assert_eq!(
            cmd(&["corral", "--rootless", "true", "state", "x"]).as_deref(),
            Some("state")
        );
        assert_eq!(
            cmd(&["corral", "--rootless", "run", "x"]).as_deref(),
            Some("run")
        );
        assert_eq!(cmd(&["corral", "--", "run"]), None);
        assert_eq!(cmd(&["corral"]), None);
    }
}
