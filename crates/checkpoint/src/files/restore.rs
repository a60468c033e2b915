//! Restore side: each fd kind is made again in our own process before the
//! fork (the new task inherits it, see `restore::Files`), with its data
//! written back: pipes and socket pairs are created whole when their first
//! end is met, listeners with their pending connections before any fd.
//! Epoll watches need the task's fd numbers, so they are added by syscalls
//! injected into the task once its fds are in place ([`add_epoll_watches`]).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

use crate::image::*;
use crate::inject::Injector;
use crate::restore::{RestoreError, RestoreOptions};
use crate::sys;

/// Makes the non-path fds of one task.
pub struct Builder<'a> {
    task: &'a TaskImage,
    opts: &'a RestoreOptions,
    data: Option<fs::File>,
    data_path: PathBuf,
    /// Anonymous pipes by inode: read and write end.
    pipes: HashMap<u64, (OwnedFd, OwnedFd)>,
    /// FIFOs by inode: an `O_RDWR` holder, so opening either end never
    /// blocks and the data has a place to wait.
    fifos: HashMap<u64, OwnedFd>,
    /// Unix sockets made ahead of their fd (pairs, listeners' clients).
    socks: HashMap<u64, OwnedFd>,
    /// Memfds and unlinked files by (dev, ino): a holder each fd reopens.
    files: HashMap<(u64, u64), OwnedFd>,
    /// The pty the container runtime made, for console fds.
    console: Option<BorrowedFd<'a>>,
    /// A container's root and network namespace, where its sockets and
    /// inotify watches are made ([`super::ns`]); `None` for here.
    place: Option<super::ns::Place<'a>>,
}

fn err(what: impl std::fmt::Display) -> impl Fn(std::io::Error) -> RestoreError {
    let path = PathBuf::from(what.to_string());
    move |source| RestoreError::Open {
        path: path.clone(),
        source,
    }
}

fn errno(what: impl std::fmt::Display) -> impl Fn(rustix::io::Errno) -> RestoreError {
    let f = err(what);
    move |e| f(e.into())
}

impl<'a> Builder<'a> {
    /// Opens the task's data file if it has one, makes every listener
    /// (bound, listening, with its pending connections) ahead of the fds.
    /// With `place` (a container's), sockets and inotify watches are made
    /// in its network namespace and under its root.
    pub fn new(
        task: &'a TaskImage,
        dir: &Path,
        opts: &'a RestoreOptions,
        console: Option<BorrowedFd<'a>>,
        place: Option<super::ns::Place<'a>>,
    ) -> Result<Self, RestoreError> {
        let data_path = dir.join(files_file_name(task.pid));
        let data = match fs::File::open(&data_path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(err(data_path.display())(e)),
        };
        let mut b = Builder {
            task,
            opts,
            data,
            data_path,
            pipes: HashMap::new(),
            fifos: HashMap::new(),
            socks: HashMap::new(),
            files: HashMap::new(),
            console,
            place,
        };
        let has_unix = task.fds.iter().any(|f| matches!(f.kind, FdKind::Unix(_)));
        if has_unix {
            super::ns::run_in(place, || b.bound_first())?;
        }
        Ok(b)
    }

    /// Every listener (with its connections), then every bound,
    /// unconnected socket: a datagram socket of the image may be connected
    /// to one, which must have its name first.
    fn bound_first(&mut self) -> Result<(), RestoreError> {
        let task = self.task;
        for fd in &task.fds {
            if let FdKind::Unix(u) = &fd.kind {
                if u.listen.is_some() {
                    self.listener(u)?;
                }
            }
        }
        for fd in &task.fds {
            if let FdKind::Unix(u) = &fd.kind {
                if u.listen.is_none() && u.peer.is_none() && u.name.is_some() {
                    let s = self.plain(u)?;
                    self.socks.insert(u.ino, s);
                }
            }
        }
        Ok(())
    }

    fn blob(&self, b: &Blob) -> Result<Vec<u8>, RestoreError> {
        let e = err(self.data_path.display());
        let Some(f) = &self.data else {
            return Err(e(std::io::ErrorKind::NotFound.into()));
        };
        // Checked against the file before allocating: the image may come
        // from anywhere.
        let size = f.metadata().map_err(&e)?.len();
        let fits = b.offset.checked_add(b.len).is_some_and(|end| end <= size);
        let len = usize::try_from(b.len)
            .ok()
            .filter(|_| fits)
            .ok_or_else(|| e(std::io::ErrorKind::UnexpectedEof.into()))?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, b.offset).map_err(e)?;
        Ok(buf)
    }

    /// A new fd for `fd` (any kind but `Path` and `Dup`), close-on-exec,
    /// with its file status flags.
    pub fn open(&mut self, fd: &FdImage) -> Result<OwnedFd, RestoreError> {
        let what = format!("fd {} of pid {}", fd.fd, self.task.pid);
        let acc = fd.flags & libc::O_ACCMODE as u32;
        let made = match &fd.kind {
            FdKind::Path { .. } | FdKind::Dup { .. } => {
                return Err(RestoreError::Unsupported(format!("{what}: not a made fd")))
            }
            FdKind::Pipe(p) => self.pipe(p, acc)?,
            FdKind::Unix(u) => {
                let place = self.place;
                super::ns::run_in(place, || self.unix(u))?
            }
            FdKind::Inet(i) => super::ns::run_in(self.place, || super::inet::make(i, &what))?,
            FdKind::Eventfd { count, semaphore } => {
                let mut flags = rustix::event::EventfdFlags::CLOEXEC;
                if *semaphore {
                    flags |= rustix::event::EventfdFlags::SEMAPHORE;
                }
                let e = rustix::event::eventfd(0, flags).map_err(errno(&what))?;
                if *count != 0 {
                    rustix::io::write(&e, &count.to_ne_bytes()).map_err(errno(&what))?;
                }
                e
            }
            FdKind::Signalfd { mask } => {
                sys::signalfd(*mask, libc::SFD_CLOEXEC).map_err(err(&what))?
            }
            FdKind::Timerfd(t) => {
                let tfd = sys::timerfd_create(t.clockid, libc::TFD_CLOEXEC).map_err(err(&what))?;
                // fdinfo shows the time left; an absolute timer (with its
                // TFD_TIMER_CANCEL_ON_SET) is set again at now + that, on
                // its clock. A disarmed timer keeps its interval.
                let flags = t.settime_flags as i32;
                let mut value = t.value;
                if flags & libc::TFD_TIMER_ABSTIME != 0 && value != (0, 0) {
                    let now = sys::clock_gettime(t.clockid).map_err(err(&what))?;
                    let ns = now.1 + value.1;
                    value = (now.0 + value.0 + ns / 1_000_000_000, ns % 1_000_000_000);
                }
                if t.value != (0, 0) || t.interval != (0, 0) {
                    sys::timerfd_settime(tfd.as_fd(), flags, t.interval, value)
                        .map_err(err(&what))?;
                }
                if t.ticks != 0 {
                    sys::timerfd_set_ticks(tfd.as_fd(), t.ticks).map_err(err(&what))?;
                }
                tfd
            }
            FdKind::Epoll { .. } => {
                rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)
                    .map_err(errno(&what))?
            }
            FdKind::Inotify { watches } => {
                let place = self.place;
                super::ns::run_in(place, || self.inotify(watches, &what))?
            }
            FdKind::Memfd(m) => {
                let key = (m.data.dev, m.data.ino);
                if !self.files.contains_key(&key) {
                    let name = std::ffi::CString::new(m.name.clone()).map_err(|_| {
                        RestoreError::Unsupported(format!("{what}: memfd name with NUL"))
                    })?;
                    let flags =
                        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
                    let f =
                        rustix::fs::memfd_create(name.as_c_str(), flags).map_err(errno(&what))?;
                    self.fill(&f, &m.data, &what)?;
                    let seals = rustix::fs::SealFlags::from_bits_retain(m.seals);
                    if !seals.is_empty() {
                        rustix::fs::fcntl_add_seals(&f, seals).map_err(errno(&what))?;
                    }
                    self.files.insert(key, f);
                }
                self.reopen(key, fd, m.data.pos, &what)?
            }
            FdKind::Unlinked(u) => {
                let key = (u.data.dev, u.data.ino);
                if !self.files.contains_key(&key) {
                    let f = recreate_unlinked(u, &what)?;
                    self.fill(&f, &u.data, &what)?;
                    self.files.insert(key, f);
                }
                self.reopen(key, fd, u.data.pos, &what)?
            }
            FdKind::Tty { path } => self.terminal(path, acc, &what)?,
            FdKind::Console { path } => self.console(path, acc, &what)?,
        };
        let keep = OFlags::NONBLOCK | OFlags::APPEND | OFlags::NOATIME | OFlags::DIRECT;
        let flags = OFlags::from_bits_retain(fd.flags) & keep;
        if !matches!(
            fd.kind,
            FdKind::Memfd(_) | FdKind::Unlinked(_) | FdKind::Tty { .. }
        ) {
            rustix::fs::fcntl_setfl(&made, flags).map_err(errno(&what))?;
        }
        Ok(made)
    }

    fn pipe(&mut self, p: &PipeImage, acc: u32) -> Result<OwnedFd, RestoreError> {
        let what = format!("pipe:[{}]", p.ino);
        let end = if let Some(file) = &p.fifo {
            if let Entry::Vacant(e) = self.fifos.entry(p.ino) {
                let holder = open_fifo(file, libc::O_RDWR)?;
                if p.size != 0 {
                    rustix::pipe::fcntl_setpipe_size(&holder, p.size as usize)
                        .map_err(errno(&file.path))?;
                }
                e.insert(holder);
            }
            open_fifo(file, acc as i32)?
        } else {
            if let Entry::Vacant(e) = self.pipes.entry(p.ino) {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                    .map_err(errno(&what))?;
                if p.size != 0 {
                    rustix::pipe::fcntl_setpipe_size(&w, p.size as usize).map_err(errno(&what))?;
                }
                e.insert((r, w));
            }
            let (r, w) = &self.pipes[&p.ino];
            let end = if acc == libc::O_WRONLY as u32 { w } else { r };
            end.try_clone().map_err(err(&what))?
        };
        if let Some(b) = &p.data {
            let data = self.blob(b)?;
            let w = match &p.fifo {
                Some(_) => &self.fifos[&p.ino],
                None => &self.pipes[&p.ino].1,
            };
            // The pipe is at least as big as when dumped, so this never blocks.
            let mut at = 0;
            while at < data.len() {
                at += rustix::io::write(w, &data[at..]).map_err(errno(&what))?;
            }
        }
        Ok(end)
    }

    fn listener(&mut self, u: &UnixImage) -> Result<(), RestoreError> {
        let what = format!("unix listener socket:[{}]", u.ino);
        let s = unix_socket(u.sock_type, &what)?;
        let name = u
            .name
            .as_deref()
            .ok_or_else(|| RestoreError::Unsupported(format!("{what} without a name")))?;
        let addr = unix_addr(name, &what)?;
        bind_unix(&s, &addr, name, &what)?;
        rustix::net::listen(&s, u.listen.unwrap_or(0) as i32).map_err(errno(&what))?;
        // Connections it accepted (their server end carries its name): made
        // the same way, so getsockname and getpeername answer as before.
        // Before the pending ones, which must stay in the backlog.
        let accepted: Vec<(UnixImage, UnixImage)> = self
            .task
            .fds
            .iter()
            .filter_map(|f| match &f.kind {
                FdKind::Unix(a) if a.listen.is_none() && a.name == u.name && a.peer.is_some() => {
                    Some(a.clone())
                }
                _ => None,
            })
            .filter(|a| a.sock_type == u.sock_type)
            .filter_map(|a| {
                let client = self.task.fds.iter().find_map(|f| match &f.kind {
                    FdKind::Unix(c) if Some(c.ino) == a.peer && c.peer == Some(a.ino) => {
                        Some(c.clone())
                    }
                    _ => None,
                })?;
                Some((a, client))
            })
            .collect();
        for (server_image, client_image) in accepted {
            let c = unix_socket(u.sock_type, &what)?;
            rustix::net::connect(&c, &addr).map_err(errno(&what))?;
            let server =
                rustix::net::accept_with(&s, SocketFlags::CLOEXEC).map_err(errno(&what))?;
            set_bufs(&server, &server_image, &what)?;
            set_bufs(&c, &client_image, &what)?;
            for m in &server_image.queue {
                send_all(&c, &self.blob(m)?, &what)?;
            }
            for m in &client_image.queue {
                send_all(&server, &self.blob(m)?, &what)?;
            }
            self.socks.insert(server_image.ino, server);
            self.socks.insert(client_image.ino, c);
        }
        for &client in &u.pending {
            let c = unix_socket(u.sock_type, &what)?;
            rustix::net::connect(&c, &addr).map_err(errno(&what))?;
            self.socks.insert(client, c);
        }
        self.socks.insert(u.ino, s);
        Ok(())
    }

    fn unix(&mut self, u: &UnixImage) -> Result<OwnedFd, RestoreError> {
        let what = format!("unix socket:[{}]", u.ino);
        let peer_image = |ino: u64| {
            self.task.fds.iter().find_map(|f| match &f.kind {
                FdKind::Unix(p) if p.ino == ino => Some(p.clone()),
                _ => None,
            })
        };
        if let Some(s) = self.socks.remove(&u.ino) {
            set_bufs(&s, u, &what)?;
            return Ok(s);
        }
        let s = match u.peer.and_then(peer_image) {
            Some(p) if p.peer == Some(u.ino) => {
                let ty = SocketType::from_raw(u.sock_type as u32);
                let (a, b) =
                    rustix::net::socketpair(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)
                        .map_err(errno(&what))?;
                set_bufs(&a, u, &what)?;
                set_bufs(&b, &p, &what)?;
                // Each end's queue is what the other end sent.
                for m in &u.queue {
                    send_all(&b, &self.blob(m)?, &what)?;
                }
                for m in &p.queue {
                    send_all(&a, &self.blob(m)?, &what)?;
                }
                self.socks.insert(p.ino, b);
                a
            }
            // Connected one way (a datagram socket to a bound one, made
            // ahead in `new`): connect to its name.
            Some(p) if p.name.is_some() && u.sock_type == libc::SOCK_DGRAM => {
                let s = self.plain(u)?;
                let name = p.name.as_deref().unwrap_or_default();
                let addr = unix_addr(name, &what)?;
                rustix::net::connect(&s, &addr).map_err(errno(&what))?;
                s
            }
            Some(_) | None if u.peer.is_some() && u.listen.is_none() => {
                return Err(RestoreError::Unsupported(format!(
                    "{what} connected to a socket this image does not pair it with"
                )))
            }
            _ => self.plain(u)?,
        };
        Ok(s)
    }

    /// An unconnected socket: bound to its name if it had one, with its
    /// queue sent to it from an unbound socket.
    fn plain(&self, u: &UnixImage) -> Result<OwnedFd, RestoreError> {
        let what = format!("unix socket:[{}]", u.ino);
        let s = unix_socket(u.sock_type, &what)?;
        set_bufs(&s, u, &what)?;
        if let Some(name) = &u.name {
            let addr = unix_addr(name, &what)?;
            bind_unix(&s, &addr, name, &what)?;
            if !u.queue.is_empty() {
                let tx = unix_socket(u.sock_type, &what)?;
                for m in &u.queue {
                    rustix::net::sendto(&tx, &self.blob(m)?, SendFlags::DONTWAIT, &addr)
                        .map_err(errno(&what))?;
                }
            }
        } else if !u.queue.is_empty() {
            return Err(RestoreError::Unsupported(format!(
                "{what}: data queued on an unbound, unconnected socket"
            )));
        }
        Ok(s)
    }

    fn inotify(&mut self, watches: &[InotifyWatch], what: &str) -> Result<OwnedFd, RestoreError> {
        use rustix::fs::inotify;
        // Non-blocking until drained below; `open` then sets the dumped flags.
        let flags = inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK;
        let ino = inotify::init(flags).map_err(errno(what))?;
        let allowed = libc::IN_ALL_EVENTS
            | libc::IN_ONESHOT
            | libc::IN_EXCL_UNLINK
            | libc::IN_ONLYDIR
            | libc::IN_DONT_FOLLOW;
        for w in watches {
            // Each number below costs an add and a remove: bound them.
            if !(1..=MAX_WD).contains(&w.wd) {
                return Err(RestoreError::Unsupported(format!(
                    "{what}: inotify watch descriptor {}",
                    w.wd
                )));
            }
            let flags = inotify::WatchFlags::from_bits_retain(w.mask & allowed);
            // Watch descriptors are handed out in increasing order: take
            // and drop numbers until the next one is the dumped one.
            loop {
                let got = inotify::add_watch(&ino, w.file.path.as_str(), flags)
                    .map_err(errno(&w.file.path))?;
                if got == w.wd {
                    break;
                }
                inotify::remove_watch(&ino, got).map_err(errno(&w.file.path))?;
                if got > w.wd {
                    return Err(RestoreError::Unsupported(format!(
                        "{what}: inotify watch {} (the kernel gave {got})",
                        w.wd
                    )));
                }
            }
            let md = fs::metadata(&w.file.path).map_err(err(&w.file.path))?;
            crate::restore::check_same(&w.file, &md)?;
        }
        // Dropping the numbers we did not want queued an IN_IGNORED each.
        let mut buf = [0u8; 4096];
        while rustix::io::read(&ino, &mut buf).is_ok_and(|n| n > 0) {}
        Ok(ino)
    }

    fn fill(&self, f: &OwnedFd, d: &FileData, what: &str) -> Result<(), RestoreError> {
        let file = fs::File::from(f.try_clone().map_err(err(what))?);
        for (at, b) in &d.extents {
            file.write_all_at(&self.blob(b)?, *at).map_err(err(what))?;
        }
        file.set_len(d.size).map_err(err(what))?;
        rustix::fs::fchmod(&file, Mode::from_bits_retain(d.mode)).map_err(errno(what))?;
        Ok(())
    }

    /// A new open file description of a memfd or unlinked file, through
    /// /proc/self/fd (its own offset and access mode).
    fn reopen(
        &self,
        key: (u64, u64),
        fd: &FdImage,
        pos: u64,
        what: &str,
    ) -> Result<OwnedFd, RestoreError> {
        let holder = &self.files[&key];
        let acc = fd.flags & libc::O_ACCMODE as u32;
        let keep = libc::O_APPEND | libc::O_NONBLOCK | libc::O_NOATIME;
        let f = fs::OpenOptions::new()
            .read(acc != libc::O_WRONLY as u32)
            .write(acc != libc::O_RDONLY as u32)
            .custom_flags(libc::O_CLOEXEC | (fd.flags as i32 & keep))
            .open(format!("/proc/self/fd/{}", holder.as_raw_fd()))
            .map_err(err(what))?;
        rustix::fs::seek(&f, SeekFrom::Start(pos)).map_err(errno(what))?;
        Ok(f.into())
    }

    /// A new open file description of the pty the container runtime made
    /// (through /proc/self/fd: the runtime's fd is outside the container),
    /// for the container's console `dumped`.
    fn console(&self, dumped: &str, acc: u32, what: &str) -> Result<OwnedFd, RestoreError> {
        let Some(c) = self.console else {
            return Err(RestoreError::Unsupported(format!(
                "{what}: the container's console {dumped}, and no terminal was made for it"
            )));
        };
        let f = fs::OpenOptions::new()
            .read(acc != libc::O_WRONLY as u32)
            .write(acc != libc::O_RDONLY as u32)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(format!("/proc/self/fd/{}", c.as_raw_fd()))
            .map_err(err(what))?;
        Ok(f.into())
    }

    /// The restorer's terminal in place of the dumped one (`--shell-job`).
    fn terminal(&self, dumped: &str, acc: u32, what: &str) -> Result<OwnedFd, RestoreError> {
        if !self.opts.shell_job {
            return Err(RestoreError::Unsupported(format!(
                "{what}: terminal {dumped}; pass --shell-job"
            )));
        }
        let path = match &self.opts.terminal {
            Some(p) => p.clone(),
            None => {
                let ours = [0, 1, 2]
                    .into_iter()
                    .find_map(|n| {
                        let fd = match n {
                            0 => std::io::stdin().as_fd().try_clone_to_owned().ok(),
                            1 => std::io::stdout().as_fd().try_clone_to_owned().ok(),
                            _ => std::io::stderr().as_fd().try_clone_to_owned().ok(),
                        }?;
                        rustix::termios::isatty(&fd)
                            .then(|| rustix::termios::ttyname(&fd, Vec::new()).ok())
                            .flatten()
                    })
                    .ok_or_else(|| {
                        RestoreError::Unsupported(format!(
                            "{what}: --shell-job needs a terminal on stdin, stdout or stderr"
                        ))
                    })?;
                PathBuf::from(ours.to_string_lossy().into_owned())
            }
        };
        let f = fs::OpenOptions::new()
            .read(acc != libc::O_WRONLY as u32)
            .write(acc != libc::O_RDONLY as u32)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(&path)
            .map_err(err(path.display()))?;
        Ok(f.into())
    }
}

/// Largest inotify watch descriptor restored (see [`Builder::inotify`]).
const MAX_WD: i32 = 1 << 16;

fn open_fifo(file: &FileId, acc: i32) -> Result<OwnedFd, RestoreError> {
    let f = fs::OpenOptions::new()
        .read(acc != libc::O_WRONLY)
        .write(acc != libc::O_RDONLY)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&file.path)
        .map_err(err(&file.path))?;
    let md = f.metadata().map_err(err(&file.path))?;
    crate::restore::check_same(file, &md)?;
    Ok(f.into())
}

fn unix_socket(ty: i32, what: &str) -> Result<OwnedFd, RestoreError> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::from_raw(ty as u32),
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(errno(what))
}

fn unix_addr(name: &str, what: &str) -> Result<SocketAddrUnix, RestoreError> {
    let r = match name.strip_prefix('@') {
        Some(abs) => SocketAddrUnix::new_abstract_name(abs.as_bytes()),
        None if name.starts_with('/') => SocketAddrUnix::new(name),
        // The dump refuses relative names; an image from elsewhere may hold one.
        None => {
            return Err(RestoreError::Unsupported(format!(
                "{what}: relative socket name {name}"
            )))
        }
    };
    r.map_err(errno(what))
}

/// Binds `s` to `addr`; a socket file left at the path by the dumped
/// process (a socket file outlives its socket) is removed first, unless a
/// live socket is bound to that path (/proc/net/unix): that is the dumped
/// process left running, or another one, and taking its name would cut it
/// off.
fn bind_unix(
    s: &OwnedFd,
    addr: &SocketAddrUnix,
    name: &str,
    what: &str,
) -> Result<(), RestoreError> {
    if let Some(path) = addr.path() {
        let path = Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
        let table = super::ns::unix_table().map_err(err("/proc/net/unix"))?;
        let live = table.lines().skip(1).any(|l| {
            l.split_whitespace()
                .nth(7)
                .is_some_and(|p| Path::new(p) == path)
        });
        if live {
            return Err(RestoreError::Unsupported(format!(
                "{what}: {name} is bound by a live socket; restoring it would take its name"
            )));
        }
        if let Ok(md) = fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt as _;
            if md.file_type().is_socket() {
                fs::remove_file(path).map_err(err(name))?;
            }
        }
    }
    rustix::net::bind(s, addr).map_err(errno(what))
}

fn set_bufs(s: &OwnedFd, u: &UnixImage, what: &str) -> Result<(), RestoreError> {
    // getsockopt reports twice what setsockopt was given.
    for (opt, v) in [
        (libc::SO_SNDBUFFORCE, u.sndbuf),
        (libc::SO_RCVBUFFORCE, u.rcvbuf),
    ] {
        if v != 0 {
            let half = i32::try_from(v / 2).unwrap_or(i32::MAX);
            sys::setsockopt_int(s.as_fd(), libc::SOL_SOCKET, opt, half).map_err(err(what))?;
        }
    }
    Ok(())
}

fn send_all(s: &OwnedFd, data: &[u8], what: &str) -> Result<(), RestoreError> {
    let n = rustix::net::send(s, data, SendFlags::DONTWAIT).map_err(errno(what))?;
    if n != data.len() {
        return Err(RestoreError::Unsupported(format!(
            "{what}: queued {n} of {} bytes",
            data.len()
        )));
    }
    Ok(())
}

/// Creates the unlinked file again at its old path (or beside it when
/// the name is taken now), with its owner, and unlinks it.
fn recreate_unlinked(u: &UnlinkedImage, what: &str) -> Result<OwnedFd, RestoreError> {
    let mut path = PathBuf::from(&u.path);
    for n in 0..100 {
        let r = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path);
        match r {
            Ok(f) => {
                if n > 0 {
                    // Only /proc/PID/fd shows the difference: the old name
                    // with " (deleted)" behind it.
                    tracing::warn!(path = %path.display(), was = %u.path, "unlinked file recreated under another name");
                }
                let _ = rustix::fs::fchown(
                    &f,
                    Some(rustix::process::Uid::from_raw(u.uid)),
                    Some(rustix::process::Gid::from_raw(u.gid)),
                );
                fs::remove_file(&path).map_err(err(path.display()))?;
                return Ok(f.into());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                path = PathBuf::from(format!("{}.corral-restore-{n}", u.path));
            }
            Err(e) => return Err(err(format!("{what}: {}", path.display()))(e)),
        }
    }
    Err(RestoreError::Unsupported(format!(
        "{what}: no free name beside {}",
        u.path
    )))
}

/// Adds each epoll watch of the image with the task's own fd numbers, by
/// `epoll_ctl` injected into the task (the kernel keys a watch by file and
/// number, so it cannot be done from here). Runs after every fd is in
/// place; `scratch` is a page of the task's we may write.
pub fn add_epoll_watches(
    inj: &Injector,
    scratch: u64,
    task: &TaskImage,
) -> Result<(), RestoreError> {
    for fd in &task.fds {
        let FdKind::Epoll { watches } = &fd.kind else {
            continue;
        };
        for w in watches {
            // struct epoll_event is packed on x86_64: u32 events, u64 data.
            let mut ev = w.events.to_le_bytes().to_vec();
            ev.extend(w.data.to_le_bytes());
            sys::process_vm_writev(inj.pid(), &[&ev], &[(scratch, ev.len() as u64)]).map_err(
                |source| RestoreError::Trace {
                    pid: inj.pid(),
                    op: "write an epoll_event".into(),
                    source,
                },
            )?;
            let args = [
                fd.fd as u64,
                libc::EPOLL_CTL_ADD as u64,
                w.fd as u64,
                scratch,
                0,
                0,
            ];
            inj.syscall(libc::SYS_epoll_ctl, args)?;
        }
    }
    Ok(())
}
