//! `corral cgroup …`: libcgroup's tools in one command, with their arguments
//! and output formats (`create` = cgcreate, `delete` = cgdelete, `exec` =
//! cgexec, `classify` = cgclassify, `get` = cgget, `set` = cgset, `list` =
//! lscgroup, `subsys` = lssubsys, `apply` = cgconfigparser), plus `stat` and
//! `tree`. Setting names are translated across cgroup versions by
//! `corral_cgroups::settings`; see docs/cgroups.md.

use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use corral_cgroups::{settings::Version, tool::Owners, Cgroup, Hierarchy};

/// `corral cgroup`: manage control groups as libcgroup's tools do.
#[derive(Args, Debug)]
pub struct CgroupArgs {
    #[command(subcommand)]
    cmd: CgroupCmd,
}

#[derive(Subcommand, Debug)]
enum CgroupCmd {
    /// Create groups (cgcreate).
    Create(CreateArgs),
    /// Remove groups (cgdelete).
    Delete(DeleteArgs),
    /// Run a command in groups (cgexec).
    Exec(ExecArgs),
    /// Move processes into groups (cgclassify).
    Classify(ClassifyArgs),
    /// Print settings of groups (cgget).
    Get(GetArgs),
    /// Change settings of groups (cgset).
    Set(SetArgs),
    /// Print a group's usage counters (a table, or JSON).
    Stat(StatArgs),
    /// Print a hierarchy's groups with their processes and usage.
    Tree(TreeArgs),
    /// List groups (lscgroup).
    List(ListArgs),
    /// List hierarchies and their controllers (lssubsys).
    Subsys(SubsysArgs),
    /// Create the groups of a cgconfig.conf file (cgconfigparser).
    Apply(ApplyArgs),
}

/// The clap command of the one `corral cgroup` subcommand `name`, built
/// alone (see crate::parse); `None` for a name that is not one.
pub fn one_subcommand(name: &str) -> Option<clap::Command> {
    const NAMES: [&str; 11] = [
        "create", "delete", "exec", "classify", "get", "set", "stat", "tree", "list", "subsys",
        "apply",
    ];
    let name: &'static str = NAMES.into_iter().find(|n| *n == name)?;
    let c = clap::Command::new(name);
    Some(match name {
        "create" => CreateArgs::augment_args(c),
        "delete" => DeleteArgs::augment_args(c),
        "exec" => ExecArgs::augment_args(c),
        "classify" => ClassifyArgs::augment_args(c),
        "get" => GetArgs::augment_args(c),
        "set" => SetArgs::augment_args(c),
        "stat" => StatArgs::augment_args(c),
        "tree" => TreeArgs::augment_args(c),
        "list" => ListArgs::augment_args(c),
        "subsys" => SubsysArgs::augment_args(c),
        "apply" => ApplyArgs::augment_args(c),
        _ => return None,
    })
}

/// `create`.
#[derive(Args, Debug)]
struct CreateArgs {
    /// CONTROLLERS:PATH, e.g. memory,pids,cpu:/x (repeatable).
    #[arg(short = 'g', value_name = "CONTROLLERS:PATH", required = true)]
    groups: Vec<String>,
    /// Owner (uid[:gid], names or numbers) of the tasks files.
    #[arg(short = 't', value_name = "UID:GID")]
    tasks_owner: Option<String>,
    /// Owner (uid[:gid]) of the group's directory and files.
    #[arg(short = 'a', value_name = "UID:GID")]
    admin_owner: Option<String>,
    /// Mode (octal) of the group's directory.
    #[arg(short = 'd', long = "dperm", value_name = "MODE")]
    dir_mode: Option<String>,
    /// Mode (octal) of the group's files.
    #[arg(short = 'f', long = "fperm", value_name = "MODE")]
    file_mode: Option<String>,
    /// Mode (octal) of the tasks files.
    #[arg(short = 's', long = "tperm", value_name = "MODE")]
    task_mode: Option<String>,
}

/// `delete`.
#[derive(Args, Debug)]
struct DeleteArgs {
    /// Remove child groups too, moving their processes to the parent.
    #[arg(short = 'r', long = "recursive")]
    recursive: bool,
    /// CONTROLLERS:PATH (repeatable).
    #[arg(short = 'g', value_name = "CONTROLLERS:PATH")]
    groups: Vec<String>,
    /// More CONTROLLERS:PATH groups.
    #[arg(value_name = "CONTROLLERS:PATH")]
    more: Vec<String>,
}

/// `exec`.
#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
struct ExecArgs {
    /// CONTROLLERS:PATH (repeatable).
    #[arg(short = 'g', value_name = "CONTROLLERS:PATH", required = true)]
    groups: Vec<String>,
    /// cgexec's "keep the rules daemon (cgrulesengd) from moving it": corral
    /// has no rules daemon, so nothing moves a process it placed; every
    /// process is sticky and the flag changes nothing.
    #[arg(long)]
    sticky: bool,
    /// cgconfig.conf whose `template` blocks make a `-g` group with
    /// `%u`-style variables that does not exist yet (default:
    /// /etc/cgconfig.conf, where it exists, as libcgroup).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// `classify`.
#[derive(Args, Debug)]
struct ClassifyArgs {
    /// CONTROLLERS:PATH (repeatable).
    #[arg(short = 'g', value_name = "CONTROLLERS:PATH", required = true)]
    groups: Vec<String>,
    /// Accepted for cgclassify compatibility: without a rules daemon every
    /// process stays where it is put.
    #[arg(long)]
    sticky: bool,
    /// Accepted for cgclassify compatibility (nothing is sticky to cancel).
    #[arg(long = "cancel-sticky")]
    cancel_sticky: bool,
    /// cgconfig.conf with `template` blocks, as for `exec --config`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The processes to move.
    #[arg(required = true, value_name = "PID")]
    pids: Vec<i32>,
}

/// `get`.
#[derive(Args, Debug)]
struct GetArgs {
    /// A setting to print (repeatable).
    #[arg(short = 'r', value_name = "NAME")]
    names: Vec<String>,
    /// Print the values only.
    #[arg(short = 'v', long = "values-only")]
    values_only: bool,
    /// Do not print the group's name.
    #[arg(short = 'n')]
    no_name: bool,
    /// Print every setting of every controller of the groups.
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// A controller (all its settings) or CONTROLLERS:PATH (repeatable).
    #[arg(short = 'g', value_name = "CONTROLLER[:PATH]")]
    controllers: Vec<String>,
    /// The groups.
    #[arg(value_name = "PATH")]
    groups: Vec<String>,
}

/// `set`.
#[derive(Args, Debug)]
struct SetArgs {
    /// NAME=VALUE (repeatable).
    #[arg(short = 'r', value_name = "NAME=VALUE")]
    settings: Vec<String>,
    /// Copy every setting of this group.
    #[arg(long = "copy-from", value_name = "PATH")]
    copy_from: Option<String>,
    /// The groups to change.
    #[arg(required = true, value_name = "PATH")]
    groups: Vec<String>,
}

/// `stat`.
#[derive(Args, Debug)]
struct StatArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The group ([CONTROLLERS:]PATH).
    #[arg(value_name = "PATH")]
    group: String,
}

/// `tree`.
#[derive(Args, Debug)]
struct TreeArgs {
    /// Only the hierarchy of this controller.
    #[arg(short = 'g', value_name = "CONTROLLER")]
    controller: Option<String>,
    /// The group to start at.
    #[arg(default_value = "/", value_name = "PATH")]
    path: String,
}

/// `list`.
#[derive(Args, Debug)]
struct ListArgs {
    /// CONTROLLERS:PATH to list below (repeatable).
    #[arg(short = 'g', value_name = "CONTROLLERS:PATH")]
    groups: Vec<String>,
    /// More CONTROLLERS:PATH.
    #[arg(value_name = "CONTROLLERS:PATH")]
    more: Vec<String>,
}

/// `subsys`.
#[derive(Args, Debug)]
struct SubsysArgs {
    /// Also list controllers no hierarchy carries.
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Print each hierarchy's mount point.
    #[arg(short = 'm', long = "mount-points")]
    mount: bool,
    /// Print every mount point.
    #[arg(short = 'M', long = "all-mount-points")]
    all_mounts: bool,
    /// Print the hierarchy numbers.
    #[arg(short = 'i', long = "hierarchies")]
    hierarchies: bool,
    /// Only these controllers.
    controllers: Vec<String>,
}

/// `apply`.
#[derive(Args, Debug)]
struct ApplyArgs {
    /// The configuration file (cgconfig.conf syntax).
    #[arg(short = 'l', long = "load", value_name = "FILE", required = true)]
    file: PathBuf,
}

/// Runs `corral cgroup …`.
pub fn run(a: &CgroupArgs) -> anyhow::Result<ExitCode> {
    let h = Hierarchy::detect().context("detect cgroup hierarchies")?;
    match &a.cmd {
        CgroupCmd::Create(c) => create(&h, c)?,
        CgroupCmd::Delete(d) => {
            for spec in d.groups.iter().chain(&d.more) {
                let cg = group(&h, spec)?;
                cg.remove(d.recursive)
                    .with_context(|| format!("delete cgroup {spec}"))?;
            }
        }
        CgroupCmd::Exec(e) => return exec(&h, e),
        CgroupCmd::Classify(c) => {
            let templates = Templates::load(c.config.as_deref())?;
            for &pid in &c.pids {
                // Read only for a path with template variables: the
                // common case moves a pid without looking at it.
                let mut vars = None;
                for spec in &c.groups {
                    let spec = if spec.contains('%') {
                        let v = match &vars {
                            Some(v) => v,
                            None => vars.insert(vars_of_pid(pid)?),
                        };
                        templates.instantiate(&h, spec, v)?
                    } else {
                        spec.clone()
                    };
                    group(&h, &spec)?
                        .add_task(pid)
                        .with_context(|| format!("move pid {pid} to cgroup {spec}"))?;
                }
            }
        }
        CgroupCmd::Get(g) => get(&h, g)?,
        CgroupCmd::Set(s) => set(&h, s)?,
        CgroupCmd::Stat(s) => stat(&h, s)?,
        CgroupCmd::Tree(t) => tree(&h, t)?,
        CgroupCmd::List(l) => list(&h, l)?,
        CgroupCmd::Subsys(s) => subsys(&h, s)?,
        CgroupCmd::Apply(a) => apply(&h, a)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits `CONTROLLERS:PATH` (`*:PATH` or a bare PATH for every hierarchy).
fn split_spec(spec: &str) -> anyhow::Result<(Vec<String>, &str)> {
    match spec.split_once(':') {
        Some((ctrls, path)) => {
            if path.is_empty() {
                bail!("invalid group {spec:?}: expected CONTROLLERS:PATH");
            }
            let ctrls = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Ok((ctrls, path))
        }
        None => Ok((Vec::new(), spec)),
    }
}

/// The group a `CONTROLLERS:PATH` names.
fn group(h: &Hierarchy, spec: &str) -> anyhow::Result<Cgroup> {
    let (ctrls, path) = split_spec(spec)?;
    Cgroup::with_controllers(h, path, &ctrls).with_context(|| format!("cgroup {spec}"))
}

fn create(h: &Hierarchy, c: &CreateArgs) -> anyhow::Result<()> {
    let owners = Owners {
        admin: c.admin_owner.as_deref().map(parse_owner).transpose()?,
        tasks: c.tasks_owner.as_deref().map(parse_owner).transpose()?,
        dir_mode: c.dir_mode.as_deref().map(parse_mode).transpose()?,
        file_mode: c.file_mode.as_deref().map(parse_mode).transpose()?,
        task_mode: c.task_mode.as_deref().map(parse_mode).transpose()?,
    };
    for spec in &c.groups {
        let cg = group(h, spec)?;
        cg.create()
            .with_context(|| format!("create cgroup {spec}"))?;
        cg.set_owners(&owners)
            .with_context(|| format!("set owners of cgroup {spec}"))?;
    }
    Ok(())
}

fn exec(h: &Hierarchy, e: &ExecArgs) -> anyhow::Result<ExitCode> {
    let (prog, args) = e
        .command
        .split_first()
        .ok_or_else(|| anyhow!("no command given"))?;
    let templates = Templates::load(e.config.as_deref())?;
    let vars = corral_cgroups::conf::TemplateVars {
        process: std::path::Path::new(prog)
            .file_name()
            .map_or_else(|| prog.clone(), |n| n.to_string_lossy().into_owned()),
        ..vars_of_pid(i32::try_from(std::process::id()).unwrap_or(i32::MAX))?
    };
    for spec in &e.groups {
        let spec = templates.instantiate(h, spec, &vars)?;
        group(h, &spec)?
            .join_self()
            .with_context(|| format!("join cgroup {spec}"))?;
    }
    let err = std::process::Command::new(prog).args(args).exec();
    Err(anyhow::Error::new(err).context(format!("execute {prog}")))
}

/// `uid[:gid]`, each a number or a name from /etc/passwd or /etc/group;
/// a missing gid is the user's primary group.
fn parse_owner(s: &str) -> anyhow::Result<(u32, u32)> {
    let (u, g) = s.split_once(':').unwrap_or((s, ""));
    let lookup = |file: &str, name: &str| -> anyhow::Result<(u32, u32)> {
        let text = std::fs::read_to_string(file).with_context(|| format!("read {file}"))?;
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().unwrap_or(0))))
            .ok_or_else(|| anyhow!("no such user or group {name:?} in {file}"))
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup("/etc/passwd", u)?,
    };
    let gid = match g {
        "" => primary,
        g => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g)?.0,
        },
    };
    Ok((uid, gid))
}

fn parse_mode(s: &str) -> anyhow::Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| anyhow!("invalid mode {s:?} (expected octal, e.g. 0775)"))
}

fn get(h: &Hierarchy, g: &GetArgs) -> anyhow::Result<()> {
    // -g CTRL:PATH adds a group showing all of CTRL; -g CTRL applies to
    // every positional group.
    let mut jobs: Vec<(String, Vec<String>)> = Vec::new();
    let mut bare_ctrls: Vec<String> = Vec::new();
    for c in &g.controllers {
        match c.split_once(':') {
            Some(_) => {
                let (ctrls, path) = split_spec(c)?;
                jobs.push((path.to_owned(), ctrls));
            }
            None => bare_ctrls.extend(c.split(',').map(str::to_owned)),
        }
    }
    for p in &g.groups {
        jobs.push((p.clone(), bare_ctrls.clone()));
    }
    if jobs.is_empty() {
        bail!("no group given (usage: corral cgroup get [-r NAME] [-g CONTROLLER] PATH...)");
    }
    if g.names.is_empty() && !g.all && jobs.iter().all(|(_, c)| c.is_empty()) {
        bail!("nothing to print: give -r NAME, -g CONTROLLER or -a");
    }
    let mut out = std::io::stdout().lock();
    for (path, ctrls) in &jobs {
        let cg =
            Cgroup::with_controllers(h, path, &[]).with_context(|| format!("cgroup {path}"))?;
        if !cg.exists() {
            bail!("cgroup {path} does not exist");
        }
        let mut names: Vec<String> = g.names.clone();
        let mut lenient = Vec::new();
        let mut all_ctrls = ctrls.clone();
        if g.all {
            for d in cg.dirs() {
                if d.path.is_dir() {
                    all_ctrls.extend(d.controllers.iter().cloned());
                }
            }
        }
        for c in &all_ctrls {
            let files = cg
                .controller_files(c)
                .with_context(|| format!("list {c} settings of cgroup {path}"))?;
            lenient.extend(files.iter().cloned());
            names.extend(files);
        }
        if !g.no_name {
            writeln!(out, "{path}:")?;
        }
        for name in &names {
            let value = match cg.get(name) {
                Ok(v) => v,
                // Write-only files (memory.force_empty) print empty, as cgget does.
                Err(_) if lenient.contains(name) => String::new(),
                Err(e) => return Err(anyhow::Error::new(e).context(format!("get {name}"))),
            };
            let value = value.trim_end_matches('\n').replace('\n', "\n\t");
            if g.values_only {
                writeln!(out, "{value}")?;
            } else {
                writeln!(out, "{name}: {value}")?;
            }
        }
        if !g.no_name {
            writeln!(out)?;
        }
    }
    Ok(())
}

fn set(h: &Hierarchy, s: &SetArgs) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    for r in &s.settings {
        let (n, v) = r
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid setting {r:?}: expected NAME=VALUE"))?;
        pairs.push((n.to_owned(), v.to_owned()));
    }
    if let Some(src) = &s.copy_from {
        let cg = Cgroup::with_controllers(h, src, &[]).with_context(|| format!("cgroup {src}"))?;
        pairs.extend(copyable(&cg).with_context(|| format!("read settings of cgroup {src}"))?);
    }
    if pairs.is_empty() {
        bail!("nothing to set: give -r NAME=VALUE or --copy-from PATH");
    }
    for path in &s.groups {
        let cg =
            Cgroup::with_controllers(h, path, &[]).with_context(|| format!("cgroup {path}"))?;
        for (n, v) in &pairs {
            if s.copy_from.is_some() && cg.get(n).is_ok_and(|cur| cur.trim() == v.trim()) {
                continue; // unchanged: some files refuse a rewrite of their value
            }
            cg.set(n, v)
                .with_context(|| format!("set {n}={v} in cgroup {path}"))?;
        }
    }
    Ok(())
}

/// The settings `--copy-from` copies: the writable, readable files of
/// each controller of the group, in the kernel's order.
fn copyable(cg: &Cgroup) -> anyhow::Result<Vec<(String, String)>> {
    use std::os::unix::fs::PermissionsExt as _;
    let skip = |f: &str| {
        f.starts_with("cgroup.")
            || f == "tasks"
            || f == "notify_on_release"
            || f == "release_agent"
            || f.contains(".kmem.")
            || f.ends_with("force_empty")
            || f.ends_with(".pressure")
            || f.starts_with("devices.")
            || f.ends_with(".reclaim")
    };
    let mut out = Vec::new();
    for d in cg.dirs() {
        let Ok(rd) = std::fs::read_dir(&d.path) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let writable = e
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o200 != 0);
            if !writable || skip(&name) {
                continue;
            }
            if let Ok(v) = cg.get(&name) {
                if !v.trim().is_empty() && !v.contains('\n') {
                    out.push((name, v));
                }
            }
        }
    }
    Ok(out)
}

fn stat(h: &Hierarchy, s: &StatArgs) -> anyhow::Result<()> {
    let cg = group(h, &s.group)?.existing();
    if !cg.exists() {
        bail!("cgroup {} does not exist", s.group);
    }
    let st = cg
        .stats()
        .with_context(|| format!("read stats of cgroup {}", s.group))?;
    let m = cg
        .metrics()
        .with_context(|| format!("read metrics of cgroup {}", s.group))?;
    let pids = cg.pids()?;
    let mut out = std::io::stdout().lock();
    if s.json {
        let v = serde_json::json!({
            "cgroup": s.group,
            "paths": cg.paths(),
            "pids": pids,
            "stats": st,
            "metrics": m,
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let limit = |v: Option<u64>, f: fn(u64) -> String| v.map_or("max".to_owned(), f);
    let opt = |v: Option<u64>, f: fn(u64) -> String| v.map_or("-".to_owned(), f);
    let th = &m.cpu.throttling;
    let pressure = [
        ("cpu", m.cpu.psi),
        ("memory", m.memory.psi),
        ("io", m.blkio.psi),
    ]
    .iter()
    .filter_map(|(name, p)| p.map(|p| format!("{name} {:.2}%", p.some.avg10)))
    .collect::<Vec<_>>();
    let pressure = if pressure.is_empty() {
        "-".to_owned()
    } else {
        format!("{} (some, avg10)", pressure.join(" "))
    };
    let rows = [
        ("CGROUP", s.group.clone()),
        (
            "PROCESSES",
            pids.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "PIDS",
            format!(
                "{} / {}",
                opt(st.pids_current, |n| n.to_string()),
                limit(st.pids_limit, |n| n.to_string())
            ),
        ),
        (
            "MEMORY",
            format!(
                "{} / {}",
                opt(st.memory_usage, bytes),
                limit(st.memory_limit, bytes)
            ),
        ),
        (
            "CPU",
            opt(st.cpu_usage_ns, |ns| format!("{:.3} s", ns as f64 / 1e9)),
        ),
        (
            "THROTTLED",
            format!(
                "{} of {} periods, {:.3} s",
                th.throttled_periods,
                th.periods,
                th.throttled_time as f64 / 1e9
            ),
        ),
        ("PRESSURE", pressure),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<11}{v}")?;
    }
    Ok(())
}

/// Bytes in binary units, one decimal.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The hierarchies to walk: the one carrying `controller`, or all.
fn hierarchies(
    h: &Hierarchy,
    controller: Option<&str>,
) -> anyhow::Result<Vec<(String, PathBuf, Version)>> {
    let all = h.listing();
    let Some(c) = controller else { return Ok(all) };
    let v1 = if c == "io" { "blkio" } else { c };
    let found: Vec<_> = all
        .into_iter()
        .filter(|(names, _, v)| {
            names
                .split(',')
                .any(|n| n == v1 || (*v == Version::V2 && n == c))
        })
        .collect();
    if found.is_empty() {
        bail!("controller {c} is not mounted");
    }
    Ok(found)
}

fn tree(h: &Hierarchy, t: &TreeArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (names, mount, _) in hierarchies(h, t.controller.as_deref())? {
        let nodes = h
            .walk(&mount, &t.path)
            .with_context(|| format!("walk {names} hierarchy at {}", mount.display()))?;
        writeln!(
            out,
            "{} ({})",
            if names.is_empty() { "unified" } else { &names },
            mount.display()
        )?;
        for n in nodes {
            let name = if n.depth == 0 {
                n.path.clone()
            } else {
                n.path.rsplit('/').next().unwrap_or_default().to_owned()
            };
            let mut line = format!("{}{name}", "  ".repeat(n.depth + 1));
            if !n.pids.is_empty() {
                let pids: Vec<String> = n.pids.iter().map(i32::to_string).collect();
                line.push_str(&format!("  pids={}", pids.join(",")));
            }
            if let Some(m) = n.memory_bytes {
                line.push_str(&format!("  memory={}", bytes(m)));
            }
            if let Some(p) = n.pids_current {
                line.push_str(&format!("  tasks={p}"));
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

fn list(h: &Hierarchy, l: &ListArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let specs: Vec<&String> = l.groups.iter().chain(&l.more).collect();
    if specs.is_empty() {
        for (names, mount, _) in h.listing() {
            if names.is_empty() {
                continue;
            }
            for n in h.walk(&mount, "/")? {
                writeln!(out, "{names}:{}", n.path)?;
            }
        }
        return Ok(());
    }
    for spec in specs {
        let (ctrls, path) = split_spec(spec)?;
        let ctrls = if ctrls.is_empty() {
            vec![String::new()]
        } else {
            ctrls
        };
        for c in &ctrls {
            let c = (!c.is_empty() && c != "*").then_some(c.as_str());
            for (names, mount, _) in hierarchies(h, c)? {
                for n in h.walk(&mount, path)? {
                    // lscgroup shows the group asked for with a trailing slash.
                    let slash = if n.depth == 0 && n.path != "/" {
                        "/"
                    } else {
                        ""
                    };
                    writeln!(out, "{names}:{}{slash}", n.path)?;
                }
            }
        }
    }
    Ok(())
}

fn subsys(h: &Hierarchy, s: &SubsysArgs) -> anyhow::Result<()> {
    // /proc/cgroups: name, hierarchy id, number of groups, enabled.
    let proc = std::fs::read_to_string("/proc/cgroups").context("read /proc/cgroups")?;
    let ids: Vec<(String, u32)> = proc
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_owned(), f.next()?.parse().ok()?))
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let listing = h.listing();
    let mut shown: Vec<String> = Vec::new();
    for (names, mount, version) in &listing {
        if names.is_empty() {
            continue;
        }
        let members: Vec<&str> = names.split(',').collect();
        if !s.controllers.is_empty()
            && !members.iter().any(|m| s.controllers.iter().any(|c| c == m))
        {
            continue;
        }
        shown.extend(members.iter().map(|m| (*m).to_owned()));
        let id = match version {
            Version::V2 => 0,
            Version::V1 => ids
                .iter()
                .find(|(n, _)| n == members[0])
                .map_or(0, |(_, id)| *id),
        };
        if s.mount || s.all_mounts {
            writeln!(out, "{names} {}", mount.display())?;
        } else if s.hierarchies {
            writeln!(out, "{names} {id}")?;
        } else {
            writeln!(out, "{names}")?;
        }
    }
    if s.all {
        for (name, _) in &ids {
            if !shown.contains(name) {
                writeln!(out, "{name}")?;
            }
        }
    }
    Ok(())
}

/// cgconfigparser -l: `mount` entries are checked against the mounted
/// hierarchies (corral never mounts), then every `group` block (with the
/// `default` perm if it has none) is created in its controllers, its
/// settings written and its owners and modes set. `template` blocks make
/// groups later, in `exec`/`classify --config`.
fn apply(h: &Hierarchy, a: &ApplyArgs) -> anyhow::Result<()> {
    let file = a.file.display();
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("read {file}"))?;
    let conf = corral_cgroups::conf::parse(&text).with_context(|| format!("parse {file}"))?;
    for (ctrl, want) in &conf.mounts {
        check_mount(h, &file.to_string(), ctrl, want);
    }
    for g in &conf.groups {
        make_group(h, &file.to_string(), g)?;
    }
    Ok(())
}

/// A `mount` entry: libcgroup mounts the hierarchy there; we only say
/// whether the system has it there, elsewhere, or not at all.
fn check_mount(h: &Hierarchy, file: &str, ctrl: &str, want: &str) {
    let v1 = h
        .v1_mounts()
        .iter()
        .find(|m| m.controllers.iter().any(|c| c == ctrl))
        .map(|m| m.mount_point.clone());
    let v2 = h
        .unified()
        .filter(|u| u.controllers.iter().any(|c| c == ctrl))
        .map(|u| u.mount_point.clone());
    match v1.or(v2) {
        Some(at) if at == std::path::Path::new(want) => {}
        Some(at) => tracing::warn!(
            "{file}: mount {ctrl} = {want}: corral does not mount hierarchies; using {ctrl} where it is mounted, {}",
            at.display()
        ),
        None => tracing::warn!(
            "{file}: mount {ctrl} = {want}: corral does not mount hierarchies and {ctrl} is not mounted (mount -t cgroup -o {ctrl} cgroup {want}); groups using it will fail"
        ),
    }
}

/// Creates one `group` (or instantiated `template`) block: the directory in
/// its controllers, its settings, its owners and modes.
fn make_group(
    h: &Hierarchy,
    file: &str,
    g: &corral_cgroups::conf::ConfGroup,
) -> anyhow::Result<()> {
    let ctrls: Vec<String> = g.controllers.iter().map(|(c, _)| c.clone()).collect();
    let cg = Cgroup::with_controllers(h, &g.name, &ctrls)
        .with_context(|| format!("{file}: group {}", g.name))?;
    cg.create()
        .with_context(|| format!("{file}: create group {}", g.name))?;
    for (_, settings) in &g.controllers {
        for (n, v) in settings {
            cg.set(n, v)
                .with_context(|| format!("{file}: set {n}={v} in group {}", g.name))?;
        }
    }
    let perm = |kv: &[(String, String)], k: &str| {
        kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    };
    let owner = |kv: &[(String, String)]| -> anyhow::Result<Option<(u32, u32)>> {
        match (perm(kv, "uid"), perm(kv, "gid")) {
            (None, None) => Ok(None),
            (u, g) => parse_owner(&format!(
                "{}:{}",
                u.unwrap_or_else(|| "0".to_owned()),
                g.unwrap_or_default()
            ))
            .map(Some),
        }
    };
    let mode =
        |kv: &[(String, String)], k: &str| perm(kv, k).as_deref().map(parse_mode).transpose();
    let owners = Owners {
        admin: owner(&g.admin)?,
        tasks: owner(&g.task)?,
        dir_mode: mode(&g.admin, "dperm")?,
        file_mode: mode(&g.admin, "fperm")?,
        task_mode: mode(&g.task, "fperm")?,
    };
    cg.set_owners(&owners)
        .with_context(|| format!("{file}: set owners of group {}", g.name))
}

/// libcgroup's default configuration file, read for templates.
const CGCONFIG: &str = "/etc/cgconfig.conf";

/// The `template` blocks `exec` and `classify` may make groups from.
struct Templates {
    file: String,
    conf: corral_cgroups::conf::Conf,
}

impl Templates {
    /// `--config FILE`, else /etc/cgconfig.conf if it exists, else none.
    fn load(config: Option<&std::path::Path>) -> anyhow::Result<Templates> {
        let path = match config {
            Some(p) => p.to_owned(),
            None if std::path::Path::new(CGCONFIG).exists() => PathBuf::from(CGCONFIG),
            None => {
                return Ok(Templates {
                    file: String::new(),
                    conf: Default::default(),
                })
            }
        };
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {file}"))?;
        let conf = corral_cgroups::conf::parse(&text).with_context(|| format!("parse {file}"))?;
        Ok(Templates { file, conf })
    }

    /// `spec` with its path's template variables expanded; when a template
    /// has that path as its name and the group does not exist yet, the
    /// group is made from the template first (cgconfig.conf(5)).
    fn instantiate(
        &self,
        h: &Hierarchy,
        spec: &str,
        vars: &corral_cgroups::conf::TemplateVars,
    ) -> anyhow::Result<String> {
        let (_, path) = split_spec(spec)?;
        if !path.contains('%') {
            return Ok(spec.to_owned());
        }
        let name = corral_cgroups::conf::expand(path, vars);
        let expanded = format!("{}{name}", &spec[..spec.len() - path.len()]);
        if let Some(t) = self.conf.template(path) {
            if !group(h, &expanded)?.existing().exists() {
                let g = corral_cgroups::conf::ConfGroup {
                    name: name.clone(),
                    ..t.clone()
                };
                make_group(h, &self.file, &g)
                    .with_context(|| format!("make group {name} from template {path}"))?;
            }
        }
        Ok(expanded)
    }
}

/// Template variables of process `pid`.
fn vars_of_pid(pid: i32) -> anyhow::Result<corral_cgroups::conf::TemplateVars> {
    corral_cgroups::conf::TemplateVars::of_pid(pid)
        .with_context(|| format!("read /proc/{pid}/status"))
}
