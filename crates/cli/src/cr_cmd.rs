//! `corral cr …`: checkpoint/restore of bare process trees (no container),
//! over `corral-checkpoint`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use corral_checkpoint::{check, collect, image, restore};

/// `cr`: checkpoint/restore.
#[derive(Args, Debug)]
pub struct CrArgs {
    #[command(subcommand)]
    command: CrCommand,
}

impl CrArgs {
    /// Whether this is `cr restore`, which makes a process from corral's
    /// binary (re-executed read-only first, as `create` is).
    pub fn restores(&self) -> bool {
        matches!(self.command, CrCommand::Restore(_))
    }
}

#[derive(Subcommand, Debug)]
enum CrCommand {
    /// Dump a running process to an image directory.
    Dump(DumpArgs),
    /// Restore a process from an image directory.
    Restore(RestoreArgs),
    /// Show what an image holds.
    Show(ShowArgs),
    /// Check which kernel features checkpoint/restore needs and has.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
struct DumpArgs {
    /// The process to dump.
    #[arg(long)]
    pid: i32,
    /// Directory to write the image to.
    #[arg(long = "images-dir", value_name = "DIR")]
    images_dir: PathBuf,
    /// Let the process run on after the dump.
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Dump a process whose controlling terminal is open in it (a shell job).
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Dump established TCP connections (not implemented yet).
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Dump unix sockets connected outside the tree (not implemented yet).
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Dump the file locks the processes hold (POSIX, OFD, flock); without
    /// it a process holding one is refused.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// Run this script at pre-dump, network-lock, post-dump and
    /// network-unlock, the stage in CRTOOLS_SCRIPT_ACTION (CRIU's way).
    #[arg(long = "action-script", value_name = "PATH")]
    action_script: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    /// Directory holding the image.
    #[arg(long = "images-dir", value_name = "DIR")]
    images_dir: PathBuf,
    /// Return once the process runs instead of waiting for it.
    #[arg(short, long)]
    detach: bool,
    /// Write the restored pid to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Restore a shell job: its terminal becomes ours.
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Accepted for CRIU's command line and ignored: the locks a dump with
    /// --file-locks recorded are always taken again.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// Run this script at pre-restore, post-restore and network-unlock,
    /// the stage in CRTOOLS_SCRIPT_ACTION (CRIU's way).
    #[arg(long = "action-script", value_name = "PATH")]
    action_script: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// Print the full metadata as JSON.
    #[arg(long)]
    json: bool,
    /// The image directory.
    dir: PathBuf,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Print the probes as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `cr` subcommand.
pub fn run(args: &CrArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        CrCommand::Dump(a) => dump(a),
        CrCommand::Restore(a) => restore(a),
        CrCommand::Show(a) => show(a),
        CrCommand::Check(a) => check(a),
    }
}

/// Our peak resident set (VmHWM of /proc/self/status), in MiB; the bench
/// (bench/checkpoint.sh) reads it from the summary line.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// While alive, and only when stderr is a terminal, prints how many page
/// bytes the dump or restore has moved and how fast, every half second
/// after the first second, on one line it clears at the end.
struct Progress {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(verb: &'static str) -> Progress {
        use std::io::IsTerminal as _;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { stop, thread: None };
        }
        let seen = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let first = corral_checkpoint::page_bytes_copied();
            let mut shown = false;
            loop {
                std::thread::park_timeout(std::time::Duration::from_millis(500));
                if seen.load(Ordering::Relaxed) {
                    break;
                }
                let secs = started.elapsed().as_secs_f64();
                if secs < 1.0 {
                    continue;
                }
                let bytes = corral_checkpoint::page_bytes_copied() - first;
                eprint!(
                    "\rcorral: {verb} {:.0} MiB of pages, {:.0} MB/s ",
                    bytes as f64 / 1048576.0,
                    mb_per_s(bytes, secs)
                );
                shown = true;
            }
            if shown {
                eprint!("\r\x1b[K");
            }
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / 1e6 / secs
    } else {
        0.0
    }
}

fn dump(a: &DumpArgs) -> anyhow::Result<ExitCode> {
    // --tcp-established and --ext-unix-sk are refused by the library as
    // not supported yet.
    let opts = collect::DumpOptions {
        pid: a.pid,
        images_dir: a.images_dir.clone(),
        leave_running: a.leave_running,
        shell_job: a.shell_job,
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        file_locks: a.file_locks,
        action_script: a.action_script.clone(),
    };
    let progress = Progress::start("dumped");
    let st = collect::dump(&opts).with_context(|| format!("dump pid {}", a.pid));
    drop(progress);
    let st = st?;
    let secs = st.pages_elapsed.as_secs_f64();
    eprintln!(
        "dumped pid {}: {} mappings, {:.1} MiB of pages in {:.3} s ({:.0} MB/s), total {:.3} s, peak RSS {:.1} MiB",
        a.pid,
        st.vmas,
        st.page_bytes as f64 / 1048576.0,
        secs,
        mb_per_s(st.page_bytes, secs),
        st.elapsed.as_secs_f64(),
        peak_rss_mib()
    );
    Ok(ExitCode::SUCCESS)
}

fn restore(a: &RestoreArgs) -> anyhow::Result<ExitCode> {
    let dir = &a.images_dir;
    let _ = a.file_locks; // the image says which locks to take
    let opts = restore::RestoreOptions {
        shell_job: a.shell_job,
        terminal: None,
        action_script: a.action_script.clone(),
    };
    let progress = Progress::start("restored");
    let r = restore::restore_with(dir, &opts).with_context(|| format!("restore {}", dir.display()));
    drop(progress);
    let r = r?;
    let secs = r.pages_elapsed.as_secs_f64();
    eprintln!(
        "restored pid {}: {:.1} MiB of pages in {:.3} s ({:.0} MB/s), total {:.3} s, peak RSS {:.1} MiB",
        r.pid,
        r.page_bytes as f64 / 1048576.0,
        secs,
        mb_per_s(r.page_bytes, secs),
        r.elapsed.as_secs_f64(),
        peak_rss_mib()
    );
    if let Some(f) = &a.pid_file {
        std::fs::write(f, r.pid.to_string()).with_context(|| format!("write {}", f.display()))?;
    }
    if a.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let code = restore::wait(r.pid).with_context(|| format!("wait for pid {}", r.pid))?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn show(a: &ShowArgs) -> anyhow::Result<ExitCode> {
    let img =
        image::ImageDir::open(&a.dir).with_context(|| format!("read image {}", a.dir.display()))?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({ "inventory": img.inventory, "tasks": img.tasks });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let inv = &img.inventory;
    writeln!(
        out,
        "image format v{}, kernel {}, corral {}, root pid {}",
        image::FORMAT_VERSION,
        inv.kernel_release,
        inv.corral_version,
        inv.root_pid
    )?;
    if let Some(t) = &inv.time_ns {
        writeln!(
            out,
            "own time namespace: CLOCK_MONOTONIC {}.{:09} s, CLOCK_BOOTTIME {}.{:09} s at the dump",
            t.monotonic[0], t.monotonic[1], t.boottime[0], t.boottime[1]
        )?;
    }
    if inv.pid_ns {
        let proc = if inv.mount_ns {
            ", with its own /proc"
        } else {
            ""
        };
        writeln!(out, "pids: of the tree's own pid namespace{proc}")?;
    }
    writeln!(out, "process tree (pid ppid pgid sid):")?;
    // Depth first, each process under its parent (the list is breadth first).
    let tree = &inv.tree;
    let mut stack: Vec<(usize, &image::ProcEntry)> =
        tree.first().map(|r| (0, r)).into_iter().collect();
    while let Some((depth, e)) = stack.pop() {
        let state = match e.zombie {
            Some(status) => format!(" zombie, wait status {status:#x}"),
            None => String::new(),
        };
        writeln!(
            out,
            "  {:indent$}{} {} {} {}{state}",
            "",
            e.pid,
            e.ppid,
            e.pgid,
            e.sid,
            indent = depth * 2
        )?;
        let kids = tree[1..].iter().filter(|c| c.ppid == e.pid).rev();
        stack.extend(kids.map(|c| (depth + 1, c)));
    }
    for group in &inv.shared_fds {
        let fds: Vec<String> = group
            .iter()
            .map(|f| format!("{}:{}", f.pid, f.fd))
            .collect();
        writeln!(out, "shared file description (pid:fd): {}", fds.join(" "))?;
    }
    for t in &img.tasks {
        writeln!(
            out,
            "task {} ({}) exe {} cwd {}: {} thread(s), {} mappings, {} fds, {:.1} MiB of pages",
            t.pid,
            t.comm,
            t.exe.path,
            t.cwd,
            t.threads.len(),
            t.vmas.len(),
            t.fds.len(),
            t.pages_size as f64 / 1048576.0
        )?;
        for th in &t.threads {
            writeln!(
                out,
                "  thread {}: rip {:#x} sigmask {:#x} rseq {} clear_tid {:#x}",
                th.tid,
                th.regs.rip,
                th.sigmask,
                th.rseq
                    .as_ref()
                    .map_or("none".into(), |r| format!("{:#x}", r.addr)),
                th.clear_tid
            )?;
        }
        for v in &t.vmas {
            let prot = |bit: i32, c: char| if v.prot & bit as u32 != 0 { c } else { '-' };
            let what = match &v.backing {
                image::Backing::Anon { name } => name.clone().unwrap_or_default(),
                image::Backing::File { file, offset } => format!("{} @{offset:#x}", file.path),
                image::Backing::Vdso { name } => name.clone(),
                image::Backing::Sysv { shmid, offset } => format!("SysV shm {shmid} @{offset:#x}"),
            };
            writeln!(
                out,
                "  {:012x}-{:012x} {}{}{}{} {:>8} KiB, {:>8} KiB dumped  {what}",
                v.start,
                v.end,
                prot(libc::PROT_READ, 'r'),
                prot(libc::PROT_WRITE, 'w'),
                prot(libc::PROT_EXEC, 'x'),
                if v.shared { 's' } else { 'p' },
                v.len() / 1024,
                v.dumped_pages() * 4
            )?;
        }
        for f in &t.fds {
            writeln!(
                out,
                "  fd {}: {} flags {:#o}",
                f.fd,
                f.kind.describe(),
                f.flags
            )?;
            for l in &f.locks {
                writeln!(out, "    holds a {l}")?;
            }
        }
        for s in &t.sigactions {
            writeln!(
                out,
                "  signal {}: handler {:#x} flags {:#x}",
                s.signo, s.handler, s.flags
            )?;
        }
        for line in t
            .state
            .summary(t.threads.iter().map(|th| (th.tid, &th.state)))
        {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let probes = check::run();
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &probes)?;
        writeln!(out)?;
    } else {
        for p in &probes {
            let state = if p.ok { "ok" } else { "missing" };
            let need = match p.need {
                check::Need::Required => "required",
                check::Need::Optional => "optional",
            };
            let detail = if p.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.detail)
            };
            writeln!(out, "{:<32} {state:<8} {need}{detail}", p.name)?;
        }
    }
    let missing: Vec<&str> = probes
        .iter()
        .filter(|p| !p.ok && p.need == check::Need::Required)
        .map(|p| p.name)
        .collect();
    if !missing.is_empty() {
        bail!("required kernel features missing: {}", missing.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
