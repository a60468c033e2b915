//! Dump side: what each fd of a stopped task is, read without running
//! code in it. `pidfd_getfd` gives us a copy of any fd (the same open file
//! description), on which `tee` (pipes), `MSG_PEEK` with `SO_PEEK_OFF`
//! (sockets), `F_GET_SEALS`, `pread` and `SEEK_DATA` work without changing
//! what the task sees; fdinfo gives the rest, sock_diag the socket links.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt as _, FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use rustix::fs::SeekFrom;
use rustix::net::{AddressFamily, RecvFlags};

use super::unix_diag::{self, Diag};
use crate::collect::{DumpError, DumpOptions};
use crate::image::*;
use crate::proc as procfs;
use crate::sys;

/// Appends blobs to `files-<pid>.img`, created on the first one.
struct Blobs {
    path: PathBuf,
    file: Option<fs::File>,
    offset: u64,
}

impl Blobs {
    fn add(&mut self, data: &[u8]) -> Result<Blob, DumpError> {
        let io_err = |source| ImageError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        };
        if self.file.is_none() {
            let f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.path)
                .map_err(io_err)?;
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("created above");
        f.write_all(data).map_err(|source| ImageError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        })?;
        let blob = Blob {
            offset: self.offset,
            len: data.len() as u64,
        };
        self.offset += blob.len;
        Ok(blob)
    }
}

/// One fd being looked at.
struct Fd<'a> {
    pid: i32,
    fd: i32,
    link: &'a str,
    info: &'a str,
}

impl Fd<'_> {
    fn refuse(&self, what: impl Into<String>) -> DumpError {
        DumpError::Unsupported {
            pid: self.pid,
            fd: Some(self.fd),
            what: what.into(),
        }
    }

    fn needs(&self, what: impl Into<String>, option: &'static str) -> DumpError {
        DumpError::NeedsOption {
            pid: self.pid,
            fd: Some(self.fd),
            what: what.into(),
            option,
        }
    }

    fn copy(&self) -> Result<OwnedFd, DumpError> {
        sys::pidfd_getfd(self.pid, self.fd).map_err(|source| DumpError::Trace {
            pid: self.pid,
            op: format!("pidfd_getfd of fd {}", self.fd),
            source,
        })
    }

    fn io(&self, op: &str) -> impl Fn(io::Error) -> DumpError {
        let (pid, op) = (self.pid, format!("fd {}: {op}", self.fd));
        move |source| DumpError::Trace {
            pid,
            op: op.clone(),
            source,
        }
    }

    fn field(&self, name: &str) -> Result<&str, DumpError> {
        procfs::status_field(self.info, name)
            .ok_or_else(|| self.refuse(format!("{}: no {name} in fdinfo", self.link)))
    }
}

/// Reads every fd of `pid` but those in `skip` (a container's stdio,
/// [`crate::container`]) into the image; blob data goes to
/// `dir/files-<pid>.img`. Fds on the file `console` (dev, ino) are the
/// container's console ([`crate::console`]).
pub fn collect(
    pid: i32,
    opts: &DumpOptions,
    dir: &Path,
    skip: &[i32],
    console: Option<(u64, u64)>,
) -> Result<Vec<FdImage>, DumpError> {
    let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let proc_err = |path: PathBuf| move |source| DumpError::Proc { pid, path, source };
    let mut numbers = Vec::new();
    for e in fs::read_dir(&fd_dir).map_err(proc_err(fd_dir.clone()))? {
        let e = e.map_err(proc_err(fd_dir.clone()))?;
        if let Some(n) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
            numbers.push(n);
        }
    }
    numbers.retain(|n| !skip.contains(n));
    numbers.sort_unstable();
    let mut c = Collector {
        pid,
        opts,
        blobs: Blobs {
            path: dir.join(files_file_name(pid)),
            file: None,
            offset: 0,
        },
        seen: HashMap::new(),
        diag: None,
        ctty: ctty_of(pid)?,
        console,
        backlogged: Vec::new(),
    };
    let mut out: Vec<FdImage> = Vec::new();
    let mut ids: Vec<(u64, u64)> = Vec::new();
    for fd in numbers {
        let path = fd_dir.join(fd.to_string());
        let link = fs::read_link(&path)
            .map_err(proc_err(path.clone()))?
            .to_string_lossy()
            .into_owned();
        let md = fs::metadata(&path).map_err(proc_err(path.clone()))?;
        let info_path = PathBuf::from(format!("/proc/{pid}/fdinfo/{fd}"));
        let info = fs::read_to_string(&info_path).map_err(proc_err(info_path))?;
        let (pos, flags) = procfs::parse_fdinfo(&info).ok_or_else(|| DumpError::Unsupported {
            pid,
            fd: Some(fd),
            what: "unreadable fdinfo".into(),
        })?;
        let id = (md.dev(), md.ino());
        // A dup shares its open file description (offset, flags): find
        // the first earlier fd on the same inode that kcmp says is it.
        let mut dup_of = None;
        for (i, prev) in out.iter().enumerate() {
            if ids[i] == id && !matches!(prev.kind, FdKind::Dup { .. }) {
                let same = sys::kcmp_file(pid, prev.fd, fd).map_err(|source| DumpError::Trace {
                    pid,
                    op: format!("kcmp fds {} and {fd}", prev.fd),
                    source,
                })?;
                if same {
                    dup_of = Some(prev.fd);
                    break;
                }
            }
        }
        let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
        let flags = flags & !(libc::O_CLOEXEC as u32);
        ids.push(id);
        if let Some(of) = dup_of {
            // A dup shows its original's locks: recorded there.
            out.push(FdImage {
                fd,
                flags,
                cloexec,
                kind: FdKind::Dup { fd: of },
                locks: Vec::new(),
            });
            continue;
        }
        let locks = crate::locks::of_fd(pid, fd, &link, &info, opts.file_locks)?;
        let f = Fd {
            pid,
            fd,
            link: &link,
            info: &info,
        };
        let kind = c.kind(&f, &md, pos, flags)?;
        let image = FdImage {
            fd,
            flags,
            cloexec,
            kind,
            locks,
        };
        crate::locks::check_kind(pid, &image, &link, &image.locks)?;
        out.push(image);
    }
    c.pipe_data(&mut out)?;
    c.check_unix_peers(&out)?;
    Ok(out)
}

struct Collector<'a> {
    pid: i32,
    opts: &'a DumpOptions,
    blobs: Blobs,
    /// Files already saved (memfd, unlinked), by (dev, ino).
    seen: HashMap<(u64, u64), ()>,
    diag: Option<Diag>,
    /// The task's controlling terminal (`tty_nr` of stat), 0 for none.
    ctty: u64,
    /// The container's console (dev, ino), if it has one.
    console: Option<(u64, u64)>,
    /// Connected unix sockets without a peer inode: clients waiting in a
    /// listener's backlog (fd, inode).
    backlogged: Vec<(i32, u64)>,
}

impl Collector<'_> {
    fn kind(
        &mut self,
        f: &Fd,
        md: &fs::Metadata,
        pos: u64,
        flags: u32,
    ) -> Result<FdKind, DumpError> {
        if flags & libc::O_ASYNC as u32 != 0 {
            return Err(f.refuse(format!("{} with O_ASYNC (F_SETOWN)", f.link)));
        }
        let link = f.link;
        if let Some(ino) = bracketed(link, "pipe:[") {
            return Ok(FdKind::Pipe(PipeImage {
                ino,
                fifo: None,
                size: pipe_size(f)?,
                data: None,
            }));
        }
        if let Some(ino) = bracketed(link, "socket:[") {
            return self.socket(f, ino);
        }
        match link {
            "anon_inode:[eventfd]" => {
                let count = u64::from_str_radix(f.field("eventfd-count")?.trim(), 16)
                    .map_err(|_| f.refuse("eventfd: bad count in fdinfo"))?;
                let semaphore = procfs::status_field(f.info, "eventfd-semaphore") == Some("1");
                return Ok(FdKind::Eventfd { count, semaphore });
            }
            "anon_inode:[signalfd]" => {
                let mask = u64::from_str_radix(f.field("sigmask")?, 16)
                    .map_err(|_| f.refuse("signalfd: bad sigmask in fdinfo"))?;
                return Ok(FdKind::Signalfd { mask });
            }
            "anon_inode:[timerfd]" => return timerfd(f).map(FdKind::Timerfd),
            "anon_inode:[eventpoll]" => return epoll(f).map(|watches| FdKind::Epoll { watches }),
            "anon_inode:inotify" => return inotify(f).map(|watches| FdKind::Inotify { watches }),
            _ => {}
        }
        if !link.starts_with('/') {
            // anon_inode:[pidfd], [userfaultfd], [io_uring], …
            return Err(f.refuse(link));
        }
        let ft = md.file_type();
        if let Some(deleted) = link.strip_suffix(" (deleted)") {
            if let Some(name) = deleted.strip_prefix("/memfd:") {
                let copy = f.copy()?;
                if let Ok(seals) = rustix::fs::fcntl_get_seals(&copy) {
                    let data = self.file_data(f, &copy, md, pos)?;
                    return Ok(FdKind::Memfd(MemfdImage {
                        name: name.to_owned(),
                        seals: seals.bits(),
                        data,
                    }));
                }
            }
            if !ft.is_file() || md.nlink() != 0 {
                return Err(f.refuse(format!("unlinked {link} ({ft:?}, {} links)", md.nlink())));
            }
            let copy = f.copy()?;
            let data = self.file_data(f, &copy, md, pos)?;
            return Ok(FdKind::Unlinked(UnlinkedImage {
                path: deleted.to_owned(),
                uid: md.uid(),
                gid: md.gid(),
                data,
            }));
        }
        let file = FileId::of(link.to_owned(), md);
        if ft.is_fifo() {
            return Ok(FdKind::Pipe(PipeImage {
                ino: md.ino(),
                fifo: Some(file),
                size: pipe_size(f)?,
                data: None,
            }));
        }
        if ft.is_char_device() {
            let (major, minor) = (libc::major(md.rdev()), libc::minor(md.rdev()));
            if major == 1 {
                // Memory devices: null, zero, full, random, urandom.
                return Ok(FdKind::Path { file, pos });
            }
            let tty = matches!(major, 3 | 4 | 136..=143) || (major == 5 && minor != 2);
            if major == 5 && minor == 2 || (128..=135).contains(&major) {
                return Err(f.refuse(format!("pty master {link}")));
            }
            if self.console == Some((md.dev(), md.ino())) {
                return Ok(FdKind::Console {
                    path: link.to_owned(),
                });
            }
            if tty && self.console.is_some() {
                return Err(f.refuse(format!("terminal {link}, not the container's console")));
            }
            if tty {
                if md.rdev() != self.ctty {
                    return Err(f.refuse(format!(
                        "terminal {link}, not the process's controlling terminal"
                    )));
                }
                if !self.opts.shell_job {
                    return Err(f.needs(format!("terminal {link}"), "--shell-job"));
                }
                return Ok(FdKind::Tty {
                    path: link.to_owned(),
                });
            }
            return Err(f.refuse(format!("character device {link}")));
        }
        if !ft.is_file() && !ft.is_dir() {
            return Err(f.refuse(format!("{link} ({ft:?})")));
        }
        Ok(FdKind::Path { file, pos })
    }

    /// Contents (data extents only), size and mode of a memfd or unlinked
    /// file, saved once per file.
    fn file_data(
        &mut self,
        f: &Fd,
        copy: &OwnedFd,
        md: &fs::Metadata,
        pos: u64,
    ) -> Result<FileData, DumpError> {
        let mut extents = Vec::new();
        if self.seen.insert((md.dev(), md.ino()), ()).is_none() {
            let file = fs::File::from(copy.try_clone().map_err(f.io("dup"))?);
            let size = md.size();
            let mut at = 0u64;
            while at < size {
                // A dup of the task's fd shares its offset: pread and the
                // SEEK_DATA/SEEK_HOLE below are put back by the final seek.
                let start = match rustix::fs::seek(&file, SeekFrom::Data(at)) {
                    Ok(s) => s,
                    Err(rustix::io::Errno::NXIO) => break,
                    Err(e) => return Err(f.io("SEEK_DATA")(e.into())),
                };
                let end = rustix::fs::seek(&file, SeekFrom::Hole(start))
                    .map_err(|e| f.io("SEEK_HOLE")(e.into()))?
                    .min(size);
                let mut buf = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut buf, start).map_err(f.io("read"))?;
                extents.push((start, self.blobs.add(&buf)?));
                at = end;
            }
            rustix::fs::seek(&file, SeekFrom::Start(pos)).map_err(|e| f.io("seek")(e.into()))?;
        }
        Ok(FileData {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            extents,
            pos,
            mode: md.mode() & 0o7777,
        })
    }

    fn socket(&mut self, f: &Fd, ino: u64) -> Result<FdKind, DumpError> {
        let copy = f.copy()?;
        let domain =
            rustix::net::sockopt::socket_domain(&copy).map_err(|e| f.io("SO_DOMAIN")(e.into()))?;
        let stype =
            rustix::net::sockopt::socket_type(&copy).map_err(|e| f.io("SO_TYPE")(e.into()))?;
        if self.diag.is_none() {
            self.diag = Some(Diag::open_for(f.pid).map_err(f.io("open sock_diag"))?);
        }
        if domain == AddressFamily::INET || domain == AddressFamily::INET6 {
            let diag = self.diag.as_ref().expect("opened above");
            return super::inet::dump(&copy, ino, diag.fd())
                .map(FdKind::Inet)
                .map_err(|r| match r {
                    super::inet::Refusal::Unsupported(what) => f.refuse(what),
                    super::inet::Refusal::NeedsOption(what, option) => f.needs(what, option),
                    super::inet::Refusal::Io(op, e) => f.io(op)(e),
                });
        }
        if domain != AddressFamily::UNIX {
            return Err(f.refuse(format!("socket of family {}", domain.as_raw())));
        }
        let diag = self.diag.as_ref().expect("opened above");
        let d = diag.unix(ino).map_err(f.io("sock_diag"))?;
        if d.shutdown != 0 {
            return Err(f.refuse(format!("unix socket:[{ino}] shut down ({})", d.shutdown)));
        }
        // fds passed with SCM_RIGHTS and not received yet: a peek would
        // not take them, so the restored queue would lack them.
        let in_flight = procfs::status_field(f.info, "scm_fds").unwrap_or("0");
        if in_flight != "0" {
            return Err(f.refuse(format!(
                "unix socket:[{ino}] with {in_flight} fds in flight (SCM_RIGHTS)"
            )));
        }
        // Options the restore does not set again: refused, not dropped.
        for (opt, name, unset) in [
            (libc::SO_PEEK_OFF, "SO_PEEK_OFF", -1),
            (libc::SO_PASSCRED, "SO_PASSCRED", 0),
            (libc::SO_PASSSEC, "SO_PASSSEC", 0),
        ] {
            let v = sys::getsockopt_int(copy.as_fd(), libc::SOL_SOCKET, opt).map_err(f.io(name))?;
            if v != unset {
                return Err(f.refuse(format!("unix socket:[{ino}] with {name} set")));
            }
        }
        let name = d
            .name
            .as_deref()
            .map(|n| unix_name(f, ino, n))
            .transpose()?;
        let listen = d.state == unix_diag::STATE_LISTEN;
        let mut pending = Vec::new();
        if listen {
            // unix_diag names each pending connection by its client's
            // inode (the server side has none until accepted); what the
            // client sent waits on the server side, counted in its wqueue.
            for &client in &d.icons {
                let c = diag
                    .unix(client)
                    .map_err(f.io("sock_diag of a pending connection"))?;
                if c.wqueue != 0 {
                    return Err(f.refuse(format!(
                        "unix listener {}: data queued on a connection not accepted yet",
                        name.as_deref().unwrap_or("")
                    )));
                }
                pending.push(client);
            }
        }
        // (A datagram socket shows as established when another connected
        // to it, with no peer of its own: not a backlog.)
        let dgram = stype == rustix::net::SocketType::DGRAM;
        if d.state == unix_diag::STATE_ESTABLISHED && d.peer.is_none() && !dgram {
            // A client whose connection waits in a listener's backlog;
            // check_unix_peers wants that listener in the image.
            self.backlogged.push((f.fd, ino));
        }
        let queue = if listen {
            Vec::new()
        } else {
            self.peek_queue(f, &copy, stype)?
        };
        let buf = |opt| sys::getsockopt_int(copy.as_fd(), libc::SOL_SOCKET, opt).map(|v| v as u64);
        Ok(FdKind::Unix(UnixImage {
            ino,
            sock_type: stype.as_raw() as i32,
            name,
            peer: if listen { None } else { d.peer },
            listen: listen.then_some(d.wqueue),
            pending,
            queue,
            sndbuf: buf(libc::SO_SNDBUF).map_err(f.io("SO_SNDBUF"))?,
            rcvbuf: buf(libc::SO_RCVBUF).map_err(f.io("SO_RCVBUF"))?,
            shutdown: 0,
        }))
    }

    /// The receive queue, peeked message by message with `SO_PEEK_OFF`
    /// moving past each (the task's own peek offset is put back).
    fn peek_queue(
        &mut self,
        f: &Fd,
        copy: &OwnedFd,
        stype: rustix::net::SocketType,
    ) -> Result<Vec<Blob>, DumpError> {
        let old = sys::getsockopt_int(copy.as_fd(), libc::SOL_SOCKET, libc::SO_PEEK_OFF)
            .map_err(f.io("SO_PEEK_OFF"))?;
        sys::setsockopt_int(copy.as_fd(), libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0)
            .map_err(f.io("SO_PEEK_OFF"))?;
        let stream = stype == rustix::net::SocketType::STREAM;
        let mut buf = vec![0u8; 1 << 20];
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        let result = loop {
            let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT | RecvFlags::TRUNC;
            match rustix::net::recvfrom(copy, &mut buf[..], flags) {
                Ok((_, n, from)) => {
                    let named = match &from {
                        Some(a) => rustix::net::SocketAddrUnix::try_from(a.clone())
                            .map(|u| u.path().is_some() || u.abstract_name().is_some())
                            .unwrap_or(false),
                        None => false,
                    };
                    if n > buf.len() {
                        break Err(f.refuse(format!("a queued message of {n} bytes")));
                    }
                    if n == 0 {
                        if stream {
                            break Ok(());
                        }
                        break Err(f.refuse("an empty datagram queued"));
                    }
                    if named && !stream {
                        break Err(f.refuse("a datagram from a bound sender queued"));
                    }
                    if stream && !msgs.is_empty() {
                        msgs[0].extend_from_slice(&buf[..n]);
                    } else {
                        msgs.push(buf[..n].to_vec());
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break Ok(()),
                Err(e) => break Err(f.io("peek the queue")(e.into())),
            }
        };
        let _ = sys::setsockopt_int(copy.as_fd(), libc::SOL_SOCKET, libc::SO_PEEK_OFF, old);
        result?;
        msgs.iter().map(|m| self.blobs.add(m)).collect()
    }

    /// Saves each anonymous pipe's or FIFO's buffer once, through a read
    /// end (`tee`: copied, not consumed). An anonymous pipe must have both
    /// ends in the process.
    fn pipe_data(&mut self, out: &mut [FdImage]) -> Result<(), DumpError> {
        let mut done: Vec<u64> = Vec::new();
        for i in 0..out.len() {
            let FdKind::Pipe(p) = &out[i].kind else {
                continue;
            };
            if done.contains(&p.ino) {
                continue;
            }
            let ino = p.ino;
            let acc = |f: &FdImage| f.flags & libc::O_ACCMODE as u32;
            let ends: Vec<usize> = (0..out.len())
                .filter(|&j| matches!(&out[j].kind, FdKind::Pipe(q) if q.ino == ino))
                .collect();
            let reader = ends
                .iter()
                .copied()
                .find(|&j| acc(&out[j]) != libc::O_WRONLY as u32);
            let writer = ends
                .iter()
                .copied()
                .find(|&j| acc(&out[j]) != libc::O_RDONLY as u32);
            let fifo = p.fifo.is_some();
            let fd = out[i].fd;
            if !fifo && (reader.is_none() || writer.is_none()) {
                return Err(DumpError::Unsupported {
                    pid: self.pid,
                    fd: Some(fd),
                    what: format!("pipe:[{ino}] whose other end is outside the process"),
                });
            }
            done.push(ino);
            let Some(r) = reader else {
                let copy =
                    sys::pidfd_getfd(self.pid, fd).map_err(io_err(self.pid, fd, "pidfd_getfd"))?;
                let n = rustix::io::ioctl_fionread(&copy).unwrap_or(0);
                if n > 0 {
                    return Err(DumpError::Unsupported {
                        pid: self.pid,
                        fd: Some(fd),
                        what: format!(
                            "FIFO {}: {n} bytes buffered and no read end here",
                            fifo_path(p)
                        ),
                    });
                }
                continue;
            };
            let rfd = out[r].fd;
            let data = tee_all(self.pid, rfd)?;
            if !data.is_empty() {
                let blob = self.blobs.add(&data)?;
                if let FdKind::Pipe(p) = &mut out[r].kind {
                    p.data = Some(blob);
                }
            }
        }
        Ok(())
    }

    /// Every connected unix socket's peer (and every pending connection's
    /// client) must be a socket of the image.
    fn check_unix_peers(&self, out: &[FdImage]) -> Result<(), DumpError> {
        let socks: Vec<(i32, &UnixImage)> = out
            .iter()
            .filter_map(|f| match &f.kind {
                FdKind::Unix(u) => Some((f.fd, u)),
                _ => None,
            })
            .collect();
        let has = |ino: u64| socks.iter().any(|(_, u)| u.ino == ino);
        let pending = |ino: u64| socks.iter().any(|(_, u)| u.pending.contains(&ino));
        for &(fd, u) in &socks {
            let waiting = self.backlogged.iter().any(|&(_, i)| i == u.ino);
            let outside = u.peer.is_some_and(|p| !has(p))
                || (waiting && !pending(u.ino))
                || u.pending.iter().any(|&c| !has(c));
            if outside {
                let what = format!(
                    "unix socket:[{}] connected to a socket outside the dumped process",
                    u.ino
                );
                return Err(DumpError::NeedsOption {
                    pid: self.pid,
                    fd: Some(fd),
                    what,
                    option: "--ext-unix-sk",
                });
            }
            // One way is restored only for a datagram socket connected to
            // a bound one (its name is what connect takes).
            let mutual = u.peer.is_none_or(|p| {
                socks.iter().any(|(_, o)| {
                    o.ino == p
                        && (o.peer == Some(u.ino)
                            || (u.sock_type == libc::SOCK_DGRAM && o.name.is_some()))
                })
            });
            if !outside && !mutual {
                return Err(DumpError::Unsupported {
                    pid: self.pid,
                    fd: Some(fd),
                    what: format!(
                        "unix socket:[{}] connected one way to socket:[{}]",
                        u.ino,
                        u.peer.unwrap_or(0)
                    ),
                });
            }
            let listener_here = socks
                .iter()
                .any(|(_, l)| l.listen.is_some() && l.name == u.name && l.sock_type == u.sock_type);
            if u.peer.is_some() && u.name.is_some() && u.listen.is_none() {
                // A named end of a connection: accepted from a listener of
                // the image (restored through it), a datagram socket
                // connected one way (restored by bind and connect), or a
                // named datagram pair (a socketpair would lose the names).
                let stream = u.sock_type != libc::SOCK_DGRAM;
                let pair = socks
                    .iter()
                    .any(|(_, o)| Some(o.ino) == u.peer && o.peer == Some(u.ino));
                if (stream && !listener_here) || (!stream && pair) {
                    return Err(DumpError::Unsupported {
                        pid: self.pid,
                        fd: Some(fd),
                        what: format!(
                            "unix socket:[{}] named {} and connected: no listener of the image accepted it, or it is a named datagram pair",
                            u.ino,
                            u.name.as_deref().unwrap_or("")
                        ),
                    });
                }
            }
            if u.peer.is_none() && u.listen.is_none() && u.name.is_none() && !u.queue.is_empty() {
                return Err(DumpError::Unsupported {
                    pid: self.pid,
                    fd: Some(fd),
                    what: format!(
                        "unbound unconnected unix socket:[{}] with queued data",
                        u.ino
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A bound name as the image holds it: an absolute path, or `@` and the
/// abstract name. Relative paths (bind resolved them against a cwd the
/// restore does not have) and names that are not UTF-8 are refused.
fn unix_name(f: &Fd, ino: u64, raw: &[u8]) -> Result<String, DumpError> {
    let bad = |why: &str| f.refuse(format!("unix socket:[{ino}] bound to {why}"));
    match raw.split_first() {
        Some((0, rest)) => std::str::from_utf8(rest)
            .map(|n| format!("@{n}"))
            .map_err(|_| bad("an abstract name that is not UTF-8")),
        _ => {
            let n = std::str::from_utf8(raw)
                .map_err(|_| bad("a path that is not UTF-8"))?
                .trim_end_matches('\0');
            if !n.starts_with('/') {
                return Err(bad(&format!("the relative path {n}")));
            }
            Ok(n.to_owned())
        }
    }
}

fn fifo_path(p: &PipeImage) -> &str {
    p.fifo.as_ref().map(|f| f.path.as_str()).unwrap_or("")
}

fn io_err(pid: i32, fd: i32, op: &'static str) -> impl Fn(io::Error) -> DumpError {
    move |source| DumpError::Trace {
        pid,
        op: format!("fd {fd}: {op}"),
        source,
    }
}

/// `N` of `prefixN]`.
fn bracketed(link: &str, prefix: &str) -> Option<u64> {
    link.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
}

fn pipe_size(f: &Fd) -> Result<u64, DumpError> {
    let copy = f.copy()?;
    rustix::pipe::fcntl_getpipe_size(&copy)
        .map(|s| s as u64)
        .map_err(|e| f.io("F_GETPIPE_SZ")(e.into()))
}

/// The bytes buffered in the pipe whose read end is fd `rfd` of `pid`,
/// duplicated into a pipe of ours with `tee`, which does not consume them.
fn tee_all(pid: i32, rfd: i32) -> Result<Vec<u8>, DumpError> {
    let err = |op| io_err(pid, rfd, op);
    let src = sys::pidfd_getfd(pid, rfd).map_err(err("pidfd_getfd"))?;
    let queued = rustix::io::ioctl_fionread(&src).map_err(|e| err("FIONREAD")(e.into()))? as usize;
    if queued == 0 {
        return Ok(Vec::new());
    }
    let size = rustix::pipe::fcntl_getpipe_size(&src).map_err(|e| err("F_GETPIPE_SZ")(e.into()))?;
    let (r, w) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .map_err(|e| err("pipe")(e.into()))?;
    rustix::pipe::fcntl_setpipe_size(&w, size.max(queued))
        .map_err(|e| err("F_SETPIPE_SZ")(e.into()))?;
    let n = rustix::pipe::tee(&src, &w, queued, rustix::pipe::SpliceFlags::NONBLOCK)
        .map_err(|e| err("tee")(e.into()))?;
    if n != queued {
        return Err(DumpError::Trace {
            pid,
            op: format!("fd {rfd}: tee copied {n} of {queued} bytes"),
            source: io::ErrorKind::Other.into(),
        });
    }
    drop(w);
    let mut data = Vec::with_capacity(n);
    fs::File::from(r)
        .read_to_end(&mut data)
        .map_err(err("read"))?;
    Ok(data)
}

/// fdinfo of a timerfd: `clockid`, `ticks`, `settime flags`, `it_value`,
/// `it_interval`.
fn timerfd(f: &Fd) -> Result<TimerfdImage, DumpError> {
    let bad = || f.refuse("timerfd: unreadable fdinfo");
    let pair = |name: &str| -> Result<(u64, u64), DumpError> {
        let v = f
            .field(name)?
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')');
        let (s, ns) = v.split_once(',').ok_or_else(bad)?;
        Ok((
            s.trim().parse().map_err(|_| bad())?,
            ns.trim().parse().map_err(|_| bad())?,
        ))
    };
    Ok(TimerfdImage {
        clockid: f.field("clockid")?.trim().parse().map_err(|_| bad())?,
        ticks: f.field("ticks")?.trim().parse().map_err(|_| bad())?,
        settime_flags: u32::from_str_radix(f.field("settime flags")?.trim(), 8)
            .map_err(|_| bad())?,
        value: pair("it_value")?,
        interval: pair("it_interval")?,
    })
}

/// `key:value` of a space-separated fdinfo line (`tfd: 5 events: 19 …`).
fn word_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    line[at..].split_whitespace().next()
}

/// fdinfo `tfd:` lines of an epoll instance; each target must still be
/// open under that number in the task (the kernel keys a watch by file
/// and number).
fn epoll(f: &Fd) -> Result<Vec<EpollWatch>, DumpError> {
    let mut out = Vec::new();
    for line in f.info.lines().filter(|l| l.starts_with("tfd:")) {
        let bad = || f.refuse(format!("epoll: unreadable watch {line:?}"));
        let fd: i32 = word_after(line, "tfd:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let events = word_after(line, "events:")
            .and_then(|v| u32::from_str_radix(v, 16).ok())
            .ok_or_else(bad)?;
        let data = word_after(line, "data:")
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .ok_or_else(bad)?;
        let ino = word_after(line, "ino:")
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .ok_or_else(bad)?;
        let now = fs::metadata(format!("/proc/{}/fd/{fd}", f.pid))
            .map(|m| m.ino())
            .ok();
        if now != Some(ino) {
            return Err(f.refuse(format!("epoll watch on fd {fd}, since closed or replaced")));
        }
        out.push(EpollWatch { fd, events, data });
    }
    Ok(out)
}

/// fdinfo `inotify` lines; each watched file is found again through its
/// file handle (`open_by_handle_at` on a mount of its filesystem).
fn inotify(f: &Fd) -> Result<Vec<InotifyWatch>, DumpError> {
    let copy = f.copy()?;
    let queued = rustix::io::ioctl_fionread(&copy).unwrap_or(0);
    if queued > 0 {
        return Err(f.refuse(format!(
            "inotify with {queued} bytes of events not read yet"
        )));
    }
    let mut out = Vec::new();
    for line in f.info.lines().filter(|l| l.starts_with("inotify ")) {
        let bad = || f.refuse(format!("inotify: unreadable watch {line:?}"));
        let hex = |key| word_after(line, key).and_then(|v| u64::from_str_radix(v, 16).ok());
        let wd = hex("wd:").ok_or_else(bad)? as i32;
        let sdev = hex("sdev:").ok_or_else(bad)?;
        let ino = hex("ino:").ok_or_else(bad)?;
        let mask = hex("mask:").ok_or_else(bad)? as u32;
        let htype = hex("fhandle-type:").ok_or_else(bad)? as i32;
        let handle = word_after(line, "f_handle:")
            .and_then(|h| hex_decode(h).ok())
            .ok_or_else(bad)?;
        let path = handle_path(f.pid, sdev, htype, &handle).map_err(|e| {
            f.refuse(format!(
                "inotify watch {wd}: cannot find the watched file: {e}"
            ))
        })?;
        let md = stat_in_root_of(f.pid, &path)
            .map_err(|e| f.refuse(format!("inotify watch {wd}: {path}: {e}")))?;
        if md.ino() != ino {
            return Err(f.refuse(format!("inotify watch {wd}: {path} is another file now")));
        }
        out.push(InotifyWatch {
            wd,
            file: FileId::of(path, &md),
            mask,
        });
    }
    out.sort_by_key(|w| w.wd);
    Ok(out)
}

/// `stat` of `path` as the task sees it: resolved under its root
/// (/proc/PID/root, `RESOLVE_IN_ROOT`), a container's for a container.
fn stat_in_root_of(pid: i32, path: &str) -> io::Result<fs::Metadata> {
    let root = rustix::fs::open(
        format!("/proc/{pid}/root"),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    // openat2 refuses O_PATH with O_NOCTTY, which open_in_root adds.
    let file = rustix::fs::openat2(
        root.as_fd(),
        rel,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )?;
    fs::File::from(file).metadata()
}

/// The path of the file a handle names on the filesystem `sdev` (the
/// kernel's `MKDEV`: major << 20 | minor), as seen from the task's root.
fn handle_path(pid: i32, sdev: u64, htype: i32, handle: &[u8]) -> Result<String, String> {
    let (major, minor) = (sdev >> 20, sdev & 0xfffff);
    let want = format!("{major}:{minor}");
    let mountinfo =
        fs::read_to_string(format!("/proc/{pid}/mountinfo")).map_err(|e| e.to_string())?;
    let mount_point = mountinfo
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let dev = w.nth(2)?;
            let _root = w.next()?;
            let mp = w.next()?;
            (dev == want).then(|| mp.to_owned())
        })
        .next()
        .ok_or_else(|| format!("no mount of device {want}"))?;
    let mount =
        fs::File::open(format!("/proc/{pid}/root{mount_point}")).map_err(|e| e.to_string())?;
    let file = sys::open_by_handle_at(mount.as_fd(), htype, handle, libc::O_PATH | libc::O_CLOEXEC)
        .map_err(|e| format!("open_by_handle_at: {e}"))?;
    let link = fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ))
    .map_err(|e| e.to_string())?;
    Ok(link.to_string_lossy().into_owned())
}

/// `tty_nr` of /proc/PID/stat as a `dev_t` (0: no controlling terminal).
pub(crate) fn ctty_of(pid: i32) -> Result<u64, DumpError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = fs::read_to_string(&path).map_err(|source| DumpError::Proc {
        pid,
        path: path.clone(),
        source,
    })?;
    let nr: u64 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(4))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0) as u64;
    let (major, minor) = ((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
    Ok(if nr == 0 {
        0
    } else {
        libc::makedev(major as u32, minor as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(info: &str) -> Fd<'_> {
        Fd {
            pid: 1,
            fd: 5,
            link: "anon_inode:[timerfd]",
            info,
        }
    }

    #[test]
    fn timerfd_fdinfo_parses() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nclockid: 1\nticks: 2\n\
                    settime flags: 03\nit_value: (99, 969082864)\nit_interval: (3, 0)\n";
        let t = timerfd(&fd(info)).unwrap();
        assert_eq!(
            t,
            TimerfdImage {
                clockid: 1,
                ticks: 2,
                settime_flags: 3,
                value: (99, 969082864),
                interval: (3, 0),
            }
        );
        let err = timerfd(&fd("clockid: 1\n")).unwrap_err().to_string();
        assert_eq!(
            err,
            "pid 1 fd 5: anon_inode:[timerfd]: no ticks in fdinfo; not supported yet"
        );
    }

    #[test]
    fn fdinfo_words_and_links() {
        let line = "tfd:        3 events: 80000019 data:             1234  pos:0 ino:40e sdev:10";
        assert_eq!(word_after(line, "tfd:"), Some("3"));
        assert_eq!(word_after(line, "events:"), Some("80000019"));
        assert_eq!(word_after(line, "data:"), Some("1234"));
        assert_eq!(word_after(line, "ino:"), Some("40e"));
        assert_eq!(word_after(line, "wd:"), None);
        assert_eq!(bracketed("pipe:[4366401]", "pipe:["), Some(4366401));
        assert_eq!(bracketed("socket:[12]", "pipe:["), None);
        assert_eq!(bracketed("pipe:[x]", "pipe:["), None);
    }

    proptest::proptest! {
        #[test]
        fn fdinfo_parsers_never_panic(info in ".{0,200}") {
            let _ = timerfd(&fd(&info));
            for line in info.lines() {
                let _ = word_after(line, "tfd:");
                let _ = bracketed(line, "pipe:[");
            }
        }
    }
}
