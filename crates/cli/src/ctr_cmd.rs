//! `corral checkpoint` and `corral restore`: runc's container commands,
//! with runc's flags, so that podman and containerd call them unchanged.
//! Flags corral accepts but does not implement yet fail with one line
//! naming the flag; none is silently ignored.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args;
use corral_runtime::checkpoint::{self, CheckpointOptions, RestoreOptions};
use corral_runtime::{CreateOptions, RunOutcome, Store};

/// `checkpoint`.
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Directory to write the image to (default: ./checkpoint, as runc).
    #[arg(long = "image-path", value_name = "DIR")]
    image_path: Option<PathBuf>,
    /// Directory for the log of the dump.
    #[arg(long = "work-path", value_name = "DIR")]
    work_path: Option<PathBuf>,
    /// Directory of a previous pre-dump image (not supported yet).
    #[arg(long = "parent-path", value_name = "DIR")]
    parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Allow established TCP connections (not supported yet).
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow unix sockets connected outside the container (not supported yet).
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow a shell job: a process on a terminal (not supported yet).
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Lazy restore of memory pages (not supported yet).
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
    /// Fd to report the lazy-pages server ready on (not supported yet).
    #[arg(long = "status-fd", value_name = "FD")]
    status_fd: Option<i32>,
    /// Send pages to a page server at ADDRESS:PORT (not supported yet).
    #[arg(long = "page-server", value_name = "ADDR")]
    page_server: Option<String>,
    /// Dump the file locks the container's processes hold (POSIX, OFD,
    /// flock); without it a container holding one is refused. containerd's
    /// runc shim always passes it.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// Dump memory only, to restore later from a full dump (not supported yet).
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    /// Cgroups mode: soft (the only one supported), full, strict, ignore.
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    manage_cgroups_mode: Option<String>,
    /// Namespace whose contents are not checkpointed: `network` only (its
    /// interfaces are not refused; a restore makes it from config.json).
    #[arg(long = "empty-ns", value_name = "NS")]
    empty_ns: Vec<String>,
    /// Deduplicate pages against the parent image (not supported yet).
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
    /// The container.
    id: String,
}

/// `restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Directory holding the image (default: ./checkpoint, as runc).
    #[arg(long = "image-path", value_name = "DIR")]
    image_path: Option<PathBuf>,
    /// Directory for the log of the restore.
    #[arg(long = "work-path", value_name = "DIR")]
    work_path: Option<PathBuf>,
    /// The bundle whose config.json the container is made from.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Return once the container runs instead of waiting for it.
    #[arg(short, long)]
    detach: bool,
    /// Socket to send a terminal's master to.
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Write the container's init pid to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Accepted: corral restore is the parent of the container's init and
    /// reaps it in the foreground either way, so it never becomes a subreaper.
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    /// Do not use pivot_root to enter the rootfs.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Restore established TCP connections (not supported yet).
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Restore unix sockets connected outside the container (not supported yet).
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Restore a shell job (not supported yet).
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Accepted for runc's command line and ignored: the locks a checkpoint
    /// with --file-locks recorded are always taken again.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// Cgroups mode: soft (the only one supported), full, strict, ignore.
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    manage_cgroups_mode: Option<String>,
    /// Namespace left empty at checkpoint: `network` only (a restore makes
    /// the network namespace from config.json either way).
    #[arg(long = "empty-ns", value_name = "NS")]
    empty_ns: Vec<String>,
    /// Deduplicate pages (not supported yet).
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
    /// Lazy restore of memory pages (not supported yet).
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
    /// LSM profile to restore the process with (not supported yet).
    #[arg(long = "lsm-profile", value_name = "TYPE:LABEL")]
    lsm_profile: Option<String>,
    /// SELinux mount context for the rootfs (not supported yet).
    #[arg(long = "lsm-mount-context", value_name = "CONTEXT")]
    lsm_mount_context: Option<String>,
    /// The container to create.
    id: String,
}

/// `--empty-ns`: `network` is the one namespace corral leaves empty.
fn check_empty_ns(names: &[String]) -> anyhow::Result<()> {
    match names.iter().find(|n| n.as_str() != "network") {
        Some(n) => bail!("--empty-ns {n}: not supported yet (network only)"),
        None => Ok(()),
    }
}

/// `--image-path`, or as runc: `checkpoint` in the current directory.
fn image_path_or_default(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        None => Ok(std::env::current_dir()
            .context("the current directory (for the default --image-path)")?
            .join("checkpoint")),
    }
}

/// Fails on the first flag given that corral does not implement yet.
fn refuse(flags: &[(&str, bool)]) -> anyhow::Result<()> {
    match flags.iter().find(|(_, given)| *given) {
        Some((name, _)) => bail!("{name}: not supported yet"),
        None => Ok(()),
    }
}

fn check_cgroups_mode(mode: &Option<String>) -> anyhow::Result<()> {
    match mode.as_deref() {
        None | Some("soft") => Ok(()),
        Some(m) => bail!("--manage-cgroups-mode {m}: not supported yet (soft only)"),
    }
}

/// `corral checkpoint`.
pub fn checkpoint(store: &Store, a: &CheckpointArgs) -> anyhow::Result<ExitCode> {
    refuse(&[
        ("--pre-dump", a.pre_dump),
        ("--parent-path", a.parent_path.is_some()),
        ("--lazy-pages", a.lazy_pages),
        ("--status-fd", a.status_fd.is_some()),
        ("--page-server", a.page_server.is_some()),
        ("--auto-dedup", a.auto_dedup),
        ("--tcp-established", a.tcp_established),
        ("--ext-unix-sk", a.ext_unix_sk),
        ("--shell-job", a.shell_job),
    ])?;
    check_cgroups_mode(&a.manage_cgroups_mode)?;
    check_empty_ns(&a.empty_ns)?;
    let image_path = image_path_or_default(&a.image_path)?;
    let opts = CheckpointOptions {
        empty_netns: !a.empty_ns.is_empty(),
        image_path,
        work_path: a.work_path.clone(),
        leave_running: a.leave_running,
        file_locks: a.file_locks,
    };
    checkpoint::checkpoint(store, &a.id, &opts)
        .with_context(|| format!("checkpoint container {}", a.id))?;
    Ok(ExitCode::SUCCESS)
}

/// `corral restore`.
pub fn restore(store: &Store, a: &RestoreArgs) -> anyhow::Result<ExitCode> {
    refuse(&[
        ("--lazy-pages", a.lazy_pages),
        ("--auto-dedup", a.auto_dedup),
        ("--lsm-profile", a.lsm_profile.is_some()),
        ("--lsm-mount-context", a.lsm_mount_context.is_some()),
        ("--tcp-established", a.tcp_established),
        ("--ext-unix-sk", a.ext_unix_sk),
        ("--shell-job", a.shell_job),
    ])?;
    check_cgroups_mode(&a.manage_cgroups_mode)?;
    check_empty_ns(&a.empty_ns)?;
    let _ = a.no_subreaper;
    // runc passes it on to CRIU; the image says which locks to take.
    let _ = a.file_locks;
    let image_path = image_path_or_default(&a.image_path)?;
    let opts = RestoreOptions {
        create: CreateOptions {
            id: a.id.clone(),
            bundle: a.bundle.clone(),
            console_socket: a.console_socket.clone(),
            pid_file: a.pid_file.clone(),
            no_pivot: a.no_pivot,
            ..Default::default()
        },
        image_path,
        work_path: a.work_path.clone(),
        detach: a.detach,
    };
    let outcome =
        checkpoint::restore(store, &opts).with_context(|| format!("restore container {}", a.id))?;
    Ok(match outcome {
        RunOutcome::Detached => ExitCode::SUCCESS,
        RunOutcome::Exited(code) => ExitCode::from(code.clamp(0, 255) as u8),
    })
}
