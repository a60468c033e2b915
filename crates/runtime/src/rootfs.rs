//! The container's root filesystem: the spec's mounts, /dev, masked and
//! read-only paths, `pivot_root`. Runs in the container's init, in its new
//! mount namespace.
//!
//! Every path under the rootfs is reached from one trusted root fd with
//! `openat2(RESOLVE_IN_ROOT)`: `..` and symlinks resolve as if the rootfs
//! were `/`, so an image cannot make us act on the host. Mounts are made with
//! the new mount API (`open_tree`/`fsopen` give a mount fd, `mount_setattr`
//! sets its flags, `move_mount` attaches it to a target fd we opened), so no
//! path string is resolved twice.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags,
};

use crate::sys::{self, mount_attr};

/// Setting up the rootfs failed; each variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A path under the rootfs could not be opened or created.
    #[error("{op} {path} in the rootfs")]
    Path {
        /// What was being done.
        op: &'static str,
        /// The path, relative to the container's `/`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A mount failed.
    #[error("mount {typ} {source_path} on {dest}: {step}")]
    Mount {
        /// Filesystem type or "bind".
        typ: String,
        /// The mount source.
        source_path: String,
        /// The destination in the container.
        dest: PathBuf,
        /// Which step failed (option name included where one is at fault).
        step: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file used for masking is not what it must be.
    #[error("refusing to mask with {path}: not the null device (char 1:3)")]
    NotDevNull {
        /// The path that was checked.
        path: PathBuf,
    },
    /// Switching the root failed.
    #[error("{op} into {path}")]
    Pivot {
        /// The call.
        op: &'static str,
        /// The rootfs.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn perr<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> RootfsError + 'a {
    move |e| RootfsError::Path {
        op,
        path: path.to_owned(),
        source: e.into(),
    }
}

/// Opens `path` beneath `root` as an `O_PATH` handle. `..` and symlinks are
/// resolved as if `root` were `/`, so a link in the image cannot reach the host.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), resolve)
}

/// `path` without its leading `/` (`.` for the root itself).
fn relative(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

/// What to create when a mount target does not exist.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A directory.
    Dir,
    /// An empty regular file.
    File,
}

/// Opens `path` under `root` (`O_PATH`), creating it and its missing parent
/// directories first. Each component is created with `*at` on the fd of its
/// parent, itself reached with `RESOLVE_IN_ROOT`.
pub fn ensure(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> Result<OwnedFd, RootfsError> {
    match open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(perr("open", path)(e)),
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| perr("create", path)(Errno::INVAL))?;
    let dir = ensure_dir(root, parent)?;
    let made = match kind {
        Kind::Dir => rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)),
        Kind::File => rustix::fs::openat(
            &dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
    };
    match made {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(perr("create", path)(e)),
    }
    open_in_root(root, path, OFlags::PATH).map_err(perr("open", path))
}

/// As [`ensure`] for a directory, but a real directory fd (to create in):
/// `O_PATH` fds cannot be used with `mkdirat`/`openat(O_CREAT)`, so the
/// object itself is reopened through "." — no new lookup of a path string.
pub fn ensure_dir(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, RootfsError> {
    let fd = ensure(root, path, Kind::Dir)?;
    rustix::fs::openat(
        &fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(perr("open", path))
}

/// A mount's options, split into what `mount_setattr`, the filesystem and
/// the propagation need.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Bind mount.
    pub bind: bool,
    /// Recursive bind (`rbind`).
    pub recursive_bind: bool,
    /// Attributes to set on the top mount.
    pub set: u64,
    /// Attributes to clear on the top mount.
    pub clear: u64,
    /// Attributes to set recursively (`rro`, `rnosuid`, …).
    pub rec_set: u64,
    /// Attributes to clear recursively.
    pub rec_clear: u64,
    /// Propagation (`MS_SHARED` …) and whether it is recursive.
    pub propagation: Option<(u64, bool)>,
    /// Filesystem options: `key=value` or flags, passed to `fsconfig`.
    pub data: Vec<String>,
}

/// The `mount_setattr` bits an option sets and clears, if it is one.
fn attr_of(name: &str) -> Option<(u64, u64)> {
    use mount_attr::*;
    Some(match name {
        "ro" => (RDONLY, 0),
        "rw" => (0, RDONLY),
        "nosuid" => (NOSUID, 0),
        "suid" => (0, NOSUID),
        "nodev" => (NODEV, 0),
        "dev" => (0, NODEV),
        "noexec" => (NOEXEC, 0),
        "exec" => (0, NOEXEC),
        "noatime" => (NOATIME, ATIME_MASK),
        "strictatime" => (STRICTATIME, ATIME_MASK),
        "relatime" => (RELATIME, ATIME_MASK),
        "atime" => (0, NOATIME),
        "nodiratime" => (NODIRATIME, 0),
        "diratime" => (0, NODIRATIME),
        "nosymfollow" => (NOSYMFOLLOW, 0),
        "symfollow" => (0, NOSYMFOLLOW),
        _ => return None,
    })
}

/// Splits OCI mount options.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in options {
        if let Some((set, clear)) = attr_of(opt) {
            o.set = (o.set & !clear) | set;
            o.clear = (o.clear & !set) | clear;
            continue;
        }
        // "rro", "rnosuid", …: the same attributes, applied recursively.
        if let Some((set, clear)) = opt.strip_prefix('r').and_then(attr_of) {
            o.rec_set = (o.rec_set & !clear) | set;
            o.rec_clear = (o.rec_clear & !set) | clear;
            continue;
        }
        match opt.as_str() {
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
            }
            "private" => o.propagation = Some((libc::MS_PRIVATE, false)),
            "rprivate" => o.propagation = Some((libc::MS_PRIVATE, true)),
            "shared" => o.propagation = Some((libc::MS_SHARED, false)),
            "rshared" => o.propagation = Some((libc::MS_SHARED, true)),
            "slave" => o.propagation = Some((libc::MS_SLAVE, false)),
            "rslave" => o.propagation = Some((libc::MS_SLAVE, true)),
            "unbindable" => o.propagation = Some((libc::MS_UNBINDABLE, false)),
            "runbindable" => o.propagation = Some((libc::MS_UNBINDABLE, true)),
            // Flags with no mount-attribute meaning here.
            "defaults" | "async" | "sync" | "nosync" => {}
            _ => o.data.push(opt.clone()),
        }
    }
    o
}

/// What the rootfs setup needs besides the spec.
pub struct Context<'a> {
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    /// Absolute host path of the bundle (relative bind sources start here).
    pub bundle: &'a Path,
    /// The container has a new user namespace (devices are bound, not made).
    pub userns: bool,
    /// The container has a new network namespace (else sysfs is bound ro).
    pub netns: bool,
    /// The container's cgroup directories on the host, per v1 controller
    /// name (`"memory"` …) or `""` for the unified hierarchy.
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    /// Per entry of `spec.mounts`: the user namespace whose mappings that
    /// mount's `uidMappings`/`gidMappings` ask for (an idmapped bind mount).
    pub idmaps: Vec<Option<BorrowedFd<'a>>>,
}

/// Makes `/` a slave (or what `rootfsPropagation` asks) so nothing we mount
/// propagates to the host, and binds the rootfs onto itself so it is a mount
/// `pivot_root` accepts. Returns the fd of that mount.
pub fn prepare_root(spec: &Spec, ctx: &Context<'_>) -> Result<OwnedFd, RootfsError> {
    let prop = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone());
    let flags = match prop.as_deref() {
        Some("shared") | Some("rshared") => MountPropagationFlags::SHARED,
        Some("private") | Some("rprivate") => MountPropagationFlags::PRIVATE,
        Some("unbindable") | Some("runbindable") => MountPropagationFlags::UNBINDABLE,
        _ => MountPropagationFlags::DOWNSTREAM,
    };
    let root_err = |op, source: Errno| RootfsError::Pivot {
        op,
        path: ctx.rootfs.to_owned(),
        source: source.into(),
    };
    rustix::mount::mount_change("/", flags | MountPropagationFlags::REC)
        .map_err(|e| root_err("set propagation of /", e))?;
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        ctx.rootfs,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| root_err("bind", e))?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        ctx.rootfs,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| root_err("bind", e))?;
    // pivot_root refuses a new root whose parent mount is shared; a private
    // rootfs mount keeps our mounts below it from reaching the host.
    rustix::mount::mount_change(ctx.rootfs, MountPropagationFlags::PRIVATE)
        .map_err(|e| root_err("make private", e))?;
    rustix::fs::open(
        ctx.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| root_err("open", e))
}

/// Mounts every entry of `spec.mounts` under `root`.
pub fn mount_all(root: BorrowedFd<'_>, spec: &Spec, ctx: &Context<'_>) -> Result<(), RootfsError> {
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let idmap = ctx.idmaps.get(i).copied().flatten();
        mount_one(root, m, idmap, ctx)?;
    }
    Ok(())
}

fn mount_one(
    root: BorrowedFd<'_>,
    m: &Mount,
    idmap: Option<BorrowedFd<'_>>,
    ctx: &Context<'_>,
) -> Result<(), RootfsError> {
    let options = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().clone().unwrap_or_default();
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dest = m.destination();
    let merr = |step: String| {
        let (typ, source) = (&typ, &source);
        move |e: Errno| mount_error(typ, source, dest, step, e)
    };
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, dest, &options, ctx, &merr);
    }
    if typ == "sysfs" && ctx.userns && !ctx.netns {
        // sysfs cannot be mounted in a user namespace that does not own a
        // network namespace: bind the host's, read-only.
        let mut o = parse_options(&["rbind".into(), "ro".into()]);
        o.set |= options.set;
        return bind(root, Source::Host(Path::new("/sys")), dest, &o, None, &merr);
    }
    if options.bind || typ == "bind" {
        let src = ctx.bundle.join(&source);
        let src = match inside_rootfs(ctx.rootfs, &src) {
            Some(rel) => Source::InRoot(rel),
            None => Source::Host(&src),
        };
        return bind(root, src, dest, &options, idmap, &merr);
    }
    if idmap.is_some() {
        return Err(merr("uidMappings".into())(Errno::INVAL));
    }
    let target = ensure(root, dest, Kind::Dir)?;
    let fs = rustix::mount::fsopen(typ.as_str(), FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(merr("fsopen".into()))?;
    if !source.is_empty() {
        // Some filesystems (proc, mqueue) have no "source" parameter; the
        // source is only a label for them.
        let _ = rustix::mount::fsconfig_set_string(&fs, "source", source.as_str());
    }
    for opt in &options.data {
        let res = match opt.split_once('=') {
            Some((k, v)) => rustix::mount::fsconfig_set_string(&fs, k, v),
            None => rustix::mount::fsconfig_set_flag(&fs, opt.as_str()),
        };
        res.map_err(merr(format!("option {opt:?}")))?;
    }
    rustix::mount::fsconfig_create(&fs).map_err(merr("create".into()))?;
    let attrs = MountAttrFlags::from_bits_retain((options.set | options.rec_set) as u32);
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(merr("fsmount".into()))?;
    attach(mnt.as_fd(), target.as_fd(), &options, &merr)
}

/// Where a bind mount's source is.
#[derive(Clone, Debug)]
enum Source<'a> {
    /// A host path, as the config or the runtime chose it.
    Host(&'a Path),
    /// A path inside the rootfs, which the image controls: resolved there
    /// (`RESOLVE_IN_ROOT`), so a symlink in the image cannot name a host
    /// directory for the container to get.
    InRoot(PathBuf),
}

/// `src` relative to `rootfs` when it lies inside it, compared without
/// following links (`.` and `..` taken lexically), against the rootfs as
/// given and as the kernel resolves it.
fn inside_rootfs(rootfs: &Path, src: &Path) -> Option<PathBuf> {
    let src = lexical(src);
    let canonical = std::fs::canonicalize(rootfs).ok();
    [Some(lexical(rootfs)), canonical]
        .into_iter()
        .flatten()
        .find_map(|r| src.strip_prefix(&r).ok().map(Path::to_owned))
        .map(|rel| Path::new("/").join(rel))
}

/// `path` with `.` dropped and `..` taking off the component before it.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn bind<F, G>(
    root: BorrowedFd<'_>,
    src: Source<'_>,
    dest: &Path,
    o: &MountOptions,
    idmap: Option<BorrowedFd<'_>>,
    merr: &F,
) -> Result<(), RootfsError>
where
    F: Fn(String) -> G,
    G: FnOnce(Errno) -> RootfsError,
{
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if o.recursive_bind {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = match src {
        Source::Host(path) => rustix::mount::open_tree(rustix::fs::CWD, path, flags),
        Source::InRoot(path) => open_in_root(root, &path, OFlags::PATH)
            .and_then(|fd| rustix::mount::open_tree(&fd, "", flags | OpenTreeFlags::AT_EMPTY_PATH)),
    }
    .map_err(merr("open source".into()))?;
    let is_dir = rustix::fs::fstat(&tree)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .unwrap_or(true);
    let target = ensure(root, dest, if is_dir { Kind::Dir } else { Kind::File })?;
    if o.set != 0 || o.clear != 0 {
        sys::mount_setattr(tree.as_fd(), false, o.set, o.clear, 0, None).map_err(|e| {
            merr("set flags".into())(Errno::from_io_error(&e).unwrap_or(Errno::INVAL))
        })?;
    }
    if let Some(userns) = idmap {
        // An idmapped mount: file owners are shown (and written) through
        // the mappings of `userns`. Only a detached mount can be idmapped.
        sys::mount_setattr(
            tree.as_fd(),
            o.recursive_bind,
            mount_attr::IDMAP,
            0,
            0,
            Some(userns),
        )
        .map_err(|e| merr("idmap".into())(Errno::from_io_error(&e).unwrap_or(Errno::INVAL)))?;
    }
    attach(tree.as_fd(), target.as_fd(), o, merr)
}

/// Sets recursive attributes and propagation on `mnt`, then attaches it on
/// `target`.
fn attach<F, G>(
    mnt: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    o: &MountOptions,
    merr: &F,
) -> Result<(), RootfsError>
where
    F: Fn(String) -> G,
    G: FnOnce(Errno) -> RootfsError,
{
    let to_errno = |e: std::io::Error| Errno::from_io_error(&e).unwrap_or(Errno::INVAL);
    if o.rec_set != 0 || o.rec_clear != 0 {
        sys::mount_setattr(mnt, true, o.rec_set, o.rec_clear, 0, None)
            .map_err(|e| merr("set recursive flags".into())(to_errno(e)))?;
    }
    rustix::mount::move_mount(
        mnt,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(merr("attach".into()))?;
    if let Some((prop, rec)) = o.propagation {
        // The attached mount is now reachable from the target fd's mount.
        sys::mount_setattr(mnt, rec, 0, 0, prop, None)
            .map_err(|e| merr("set propagation".into())(to_errno(e)))?;
    }
    Ok(())
}

/// A `cgroup` mount: on a v2-only host a cgroup2 filesystem (the init is in
/// its own cgroup namespace by now, so it shows the container's subtree);
/// with v1 hierarchies a tmpfs holding a bind of the container's own cgroup
/// directory per controller, as runc does.
fn mount_cgroup<F, G>(
    root: BorrowedFd<'_>,
    dest: &Path,
    o: &MountOptions,
    ctx: &Context<'_>,
    merr: &F,
) -> Result<(), RootfsError>
where
    F: Fn(String) -> G,
    G: FnOnce(Errno) -> RootfsError,
{
    if ctx.cgroup_dirs.is_empty() {
        // No cgroup of its own (rootless without delegation): the host's
        // hierarchy, read-only, as runc shows it then.
        let mut bind_ro = parse_options(&["rbind".into(), "ro".into()]);
        bind_ro.set |= o.set;
        return bind(
            root,
            Source::Host(Path::new("/sys/fs/cgroup")),
            dest,
            &bind_ro,
            None,
            merr,
        );
    }
    let v2_only = ctx.cgroup_dirs.iter().all(|(name, _)| name.is_empty());
    let target = ensure(root, dest, Kind::Dir)?;
    let attrs = MountAttrFlags::from_bits_retain(o.set as u32);
    if v2_only {
        let fs = rustix::mount::fsopen("cgroup2", FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(merr("fsopen".into()))?;
        rustix::mount::fsconfig_create(&fs).map_err(merr("create".into()))?;
        let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
            .map_err(merr("fsmount".into()))?;
        return attach(mnt.as_fd(), target.as_fd(), o, merr);
    }
    let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(merr("fsopen".into()))?;
    rustix::mount::fsconfig_set_string(&fs, "mode", "755").map_err(merr("option mode".into()))?;
    rustix::mount::fsconfig_create(&fs).map_err(merr("create".into()))?;
    let no_ro = MountAttrFlags::from_bits_retain((o.set & !mount_attr::RDONLY) as u32);
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, no_ro)
        .map_err(merr("fsmount".into()))?;
    attach(mnt.as_fd(), target.as_fd(), &MountOptions::default(), merr)?;
    let bind_opts = MountOptions {
        bind: true,
        set: o.set,
        ..MountOptions::default()
    };
    for (name, host_dir) in &ctx.cgroup_dirs {
        let sub = dest.join(if name.is_empty() {
            "unified"
        } else {
            name.as_str()
        });
        bind(root, Source::Host(host_dir), &sub, &bind_opts, None, merr)?;
    }
    if o.set & mount_attr::RDONLY != 0 {
        let top = open_in_root(root, dest, OFlags::PATH).map_err(perr("open", dest))?;
        sys::mount_setattr(top.as_fd(), false, mount_attr::RDONLY, 0, 0, None).map_err(|e| {
            merr("set flags".into())(Errno::from_io_error(&e).unwrap_or(Errno::INVAL))
        })?;
    }
    Ok(())
}

/// The devices every container gets (OCI "default devices").
const DEFAULT_DEVICES: &[(&str, u64, u64, u32)] = &[
    ("/dev/null", 1, 3, 0o666),
    ("/dev/zero", 1, 5, 0o666),
    ("/dev/full", 1, 7, 0o666),
    ("/dev/random", 1, 8, 0o666),
    ("/dev/urandom", 1, 9, 0o666),
    ("/dev/tty", 5, 0, 0o666),
];

/// Creates the default devices, `linux.devices` and the /dev symlinks. In a
/// user namespace, where mknod is not allowed, devices are bind-mounted from
/// the host instead.
pub fn setup_dev(root: BorrowedFd<'_>, spec: &Spec, ctx: &Context<'_>) -> Result<(), RootfsError> {
    let extra = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for &(path, major, minor, mode) in DEFAULT_DEVICES {
        if extra.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            root,
            Path::new(path),
            FileType::CharacterDevice,
            major,
            minor,
            mode,
            0,
            0,
            ctx.userns,
        )?;
    }
    for d in &extra {
        device_from_spec(root, d, ctx.userns)?;
    }
    let links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ];
    let dev = ensure_dir(root, Path::new("/dev"))?;
    for (target, link) in links {
        let name = &link[5..];
        if name == "ptmx" {
            // A real ptmx device node (from the image or the spec) stays.
            let _ = rustix::fs::unlinkat(&dev, name, rustix::fs::AtFlags::empty());
        }
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(perr("create", Path::new(link))(e)),
        }
    }
    Ok(())
}

fn device_from_spec(
    root: BorrowedFd<'_>,
    d: &LinuxDevice,
    userns: bool,
) -> Result<(), RootfsError> {
    let typ = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
        LinuxDeviceType::B => FileType::BlockDevice,
        LinuxDeviceType::P => FileType::Fifo,
        LinuxDeviceType::A => return Err(perr("create device", d.path())(Errno::INVAL)),
    };
    let mode = d.file_mode().unwrap_or(0o666);
    let (uid, gid) = (d.uid().unwrap_or(0), d.gid().unwrap_or(0));
    make_device(
        root,
        d.path(),
        typ,
        d.major() as u64,
        d.minor() as u64,
        mode,
        uid,
        gid,
        userns,
    )
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: BorrowedFd<'_>,
    path: &Path,
    typ: FileType,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    userns: bool,
) -> Result<(), RootfsError> {
    if !path.starts_with("/dev") {
        return Err(perr("create device", path)(Errno::INVAL));
    }
    if userns {
        let opts = MountOptions {
            bind: true,
            ..MountOptions::default()
        };
        let source = path.display().to_string();
        let merr = |step: String| {
            let source = &source;
            move |e: Errno| mount_error("bind", source, path, step, e)
        };
        return bind(root, Source::Host(path), path, &opts, None, &merr);
    }
    let parent = ensure_dir(root, path.parent().unwrap_or(Path::new("/dev")))?;
    let name = path
        .file_name()
        .ok_or_else(|| perr("create device", path)(Errno::INVAL))?;
    let _ = rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty());
    let dev = rustix::fs::makedev(major as u32, minor as u32);
    rustix::fs::mknodat(&parent, name, typ, Mode::from_raw_mode(mode & 0o7777), dev)
        .map_err(perr("create device", path))?;
    rustix::fs::chownat(
        &parent,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(perr("chown device", path))?;
    // mknod applied the umask; set the mode the spec asked for exactly.
    rustix::fs::chmodat(
        &parent,
        name,
        Mode::from_raw_mode(mode & 0o7777),
        rustix::fs::AtFlags::empty(),
    )
    .map_err(perr("chmod device", path))
}

/// Writes namespaced sysctls through the container's own /proc (checked to
/// be procfs), before /proc/sys is made read-only.
pub fn write_sysctls(root: BorrowedFd<'_>, spec: &Spec) -> Result<(), RootfsError> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().clone()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        write_procfs(root, &path, value.as_bytes())?;
    }
    Ok(())
}

/// Writes `value` to the procfs file `path` (`/proc/...`) of the container
/// whose root is `root`, making sure the write lands on that very file
/// (CVE-2025-52881). The image, or a racing container whose shared mounts
/// propagate into this one, may have put a symlink, a tmpfs or a bind mount
/// of another procfs file (`/proc/sysrq-trigger`, another process's
/// `comm`) where the file should be, which an "is it procfs" check alone
/// lets through. So: open the container's `/proc` and check that it is the
/// root of a procfs instance; resolve `thread-self` by reading it through
/// that instance; then open the rest beneath it with no symlink and no
/// mount crossing allowed (`RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`), and
/// write through that fd.
pub fn write_procfs(root: BorrowedFd<'_>, path: &Path, value: &[u8]) -> Result<(), RootfsError> {
    const PROC_ROOT_INO: u64 = 1;
    let proc_path = Path::new("/proc");
    let Ok(rel) = path.strip_prefix(proc_path) else {
        return Err(perr("write (not under /proc)", path)(Errno::INVAL));
    };
    let proc = open_in_root(root, proc_path, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(perr("open", proc_path))?;
    let fs = rustix::fs::fstatfs(&proc).map_err(perr("statfs", proc_path))?;
    let st = rustix::fs::fstat(&proc).map_err(perr("stat", proc_path))?;
    if fs.f_type != libc::PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
        return Err(perr("write (/proc is not the root of a procfs)", path)(
            Errno::XDEV,
        ));
    }
    let rel = match rel.strip_prefix("thread-self") {
        Ok(rest) => {
            let link = rustix::fs::readlinkat(&proc, "thread-self", Vec::new())
                .map_err(perr("read link", Path::new("/proc/thread-self")))?;
            let link: std::ffi::OsString =
                std::os::unix::ffi::OsStringExt::from_vec(link.into_bytes());
            PathBuf::from(link).join(rest)
        }
        Err(_) => rel.to_owned(),
    };
    let resolve = ResolveFlags::BENEATH
        | ResolveFlags::NO_SYMLINKS
        | ResolveFlags::NO_MAGICLINKS
        | ResolveFlags::NO_XDEV;
    let fd = rustix::fs::openat2(
        &proc,
        &rel,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        resolve,
    )
    .map_err(|e| match e {
        Errno::XDEV | Errno::LOOP => perr("write (a mount or symlink is over the path)", path)(e),
        e => perr("open", path)(e),
    })?;
    rustix::io::write(&fd, value)
        .map(drop)
        .map_err(perr("write", path))
}

/// Opens `path` under `root` (`O_PATH`); `None` when it does not exist
/// (masked and read-only paths the image lacks are skipped, as runc does).
fn open_existing(root: BorrowedFd<'_>, path: &Path) -> Result<Option<OwnedFd>, RootfsError> {
    match open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(perr("open", path)(e)),
    }
}

/// A mount failure: what (`typ`, `source`), where, at which step, why.
fn mount_error(typ: &str, source: &str, dest: &Path, step: String, e: Errno) -> RootfsError {
    RootfsError::Mount {
        typ: typ.to_owned(),
        source_path: source.to_owned(),
        dest: dest.to_owned(),
        step,
        source: e.into(),
    }
}

/// Hides `maskedPaths`: directories under a read-only empty tmpfs, files
/// under the container's /dev/null, checked by fd to be the null device
/// (CVE-2025-31133: never trust a path for the mask source).
pub fn mask_paths(root: BorrowedFd<'_>, spec: &Spec) -> Result<(), RootfsError> {
    let paths = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    if paths.is_empty() {
        return Ok(());
    }
    let null_path = Path::new("/dev/null");
    let null = open_in_root(root, null_path, OFlags::PATH).map_err(perr("open", null_path))?;
    let st = rustix::fs::fstat(&null).map_err(perr("stat", null_path))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice
        || st.st_rdev != rustix::fs::makedev(1, 3)
    {
        return Err(RootfsError::NotDevNull {
            path: null_path.to_owned(),
        });
    }
    for p in paths {
        let path = Path::new(&p);
        let Some(target) = open_existing(root, path)? else {
            continue;
        };
        let st = rustix::fs::fstat(&target).map_err(perr("stat", path))?;
        let merr = |step: String| move |e: Errno| mount_error("mask", "", path, step, e);
        let mnt = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
                .map_err(merr("fsopen".into()))?;
            rustix::mount::fsconfig_set_string(&fs, "size", "0").map_err(merr("size".into()))?;
            rustix::mount::fsconfig_create(&fs).map_err(merr("create".into()))?;
            rustix::mount::fsmount(
                &fs,
                FsMountFlags::FSMOUNT_CLOEXEC,
                MountAttrFlags::MOUNT_ATTR_RDONLY,
            )
            .map_err(merr("fsmount".into()))?
        } else {
            rustix::mount::open_tree(
                &null,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
            .map_err(merr("clone /dev/null".into()))?
        };
        attach(mnt.as_fd(), target.as_fd(), &MountOptions::default(), &merr)?;
    }
    Ok(())
}

/// Makes `readonlyPaths` read-only: a recursive clone of the very object we
/// opened, flagged read-only, attached back on it (one lookup, no window
/// for a swap between bind and remount).
pub fn readonly_paths(root: BorrowedFd<'_>, spec: &Spec) -> Result<(), RootfsError> {
    let paths = spec
        .linux()
        .as_ref()
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default();
    for p in paths {
        let path = Path::new(&p);
        let Some(target) = open_existing(root, path)? else {
            continue;
        };
        let merr = |step: String| move |e: Errno| mount_error("readonly", "", path, step, e);
        let tree = rustix::mount::open_tree(
            &target,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(merr("clone".into()))?;
        let o = MountOptions {
            rec_set: mount_attr::RDONLY
                | mount_attr::NOSUID
                | mount_attr::NODEV
                | mount_attr::NOEXEC,
            ..MountOptions::default()
        };
        attach(tree.as_fd(), target.as_fd(), &o, &merr)?;
    }
    Ok(())
}

/// Makes the rootfs mount read-only (`root.readonly`).
pub fn make_root_readonly(root: BorrowedFd<'_>, rootfs: &Path) -> Result<(), RootfsError> {
    sys::mount_setattr(root, false, mount_attr::RDONLY, 0, 0, None).map_err(|source| {
        RootfsError::Pivot {
            op: "make read-only",
            path: rootfs.to_owned(),
            source,
        }
    })
}

/// Switches the process root to the rootfs: `pivot_root(".", ".")` and a
/// lazy unmount of the old root stacked beneath (runc's trick, no temporary
/// directory), or with `no_pivot` a move onto `/` and `chroot`.
pub fn switch_root(root: BorrowedFd<'_>, rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    let err = |op: &'static str| {
        move |e: Errno| RootfsError::Pivot {
            op,
            path: rootfs.to_owned(),
            source: e.into(),
        }
    };
    rustix::process::fchdir(root).map_err(err("chdir"))?;
    if no_pivot {
        rustix::mount::mount_move(".", "/").map_err(err("move mount"))?;
        rustix::process::chroot(".").map_err(err("chroot"))?;
    } else {
        rustix::process::pivot_root(".", ".").map_err(err("pivot_root"))?;
        // The old root is stacked on "."; keep its unmount from propagating.
        rustix::mount::mount_change(
            ".",
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )
        .map_err(err("make old root slave"))?;
        let dot = CString::new(".").expect("no NUL");
        sys::umount_detach(&dot).map_err(|source| RootfsError::Pivot {
            op: "unmount old root",
            path: rootfs.to_owned(),
            source,
        })?;
    }
    rustix::process::chdir("/").map_err(err("chdir"))
}

/// Checks `path` has no `..` that would climb out (resolution stays in the
/// root anyway; this only gives a clearer error earlier).
pub fn is_contained(path: &Path) -> bool {
    !path.components().any(|c| c == Component::ParentDir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mount_attr::*;

    fn opts(s: &[&str]) -> MountOptions {
        parse_options(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_split_into_attrs_propagation_and_data() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]);
        assert_eq!(o.set, NOSUID | STRICTATIME | RDONLY);
        assert_eq!(o.clear, ATIME_MASK);
        assert_eq!(
            o.data,
            vec!["mode=755".to_string(), "size=65536k".to_string()]
        );
        let o = opts(&["rbind", "rro", "rprivate", "newinstance"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.rec_set, RDONLY);
        assert_eq!(o.propagation, Some((libc::MS_PRIVATE, true)));
        assert_eq!(o.data, vec!["newinstance".to_string()]);
        let o = opts(&["ro", "rw"]);
        assert_eq!((o.set, o.clear), (0, RDONLY));
        let o = opts(&["relatime"]);
        assert_eq!((o.set, o.clear), (RELATIME, ATIME_MASK));
    }

    #[test]
    fn open_in_root_keeps_links_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/marker"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("up")).unwrap();
        let rfd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        for link in ["abs/marker", "up/marker"] {
            let fd = open_in_root(rfd.as_fd(), Path::new(link), OFlags::RDONLY).unwrap();
            assert_eq!(
                std::io::read_to_string(std::fs::File::from(fd)).unwrap(),
                "inside"
            );
        }
        let fd = ensure(rfd.as_fd(), Path::new("/abs/new/dir"), Kind::Dir).unwrap();
        drop(fd);
        assert!(
            root.join("etc/new/dir").is_dir(),
            "created inside the root, not on the host /etc"
        );
        ensure(rfd.as_fd(), Path::new("/up/file"), Kind::File).unwrap();
        assert!(root.join("etc/file").is_file());
    }
}
