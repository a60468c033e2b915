//! Image types of the file kinds beyond regular files: pipes and FIFOs,
//! unix sockets, eventfd, signalfd, timerfd, epoll, inotify, memfd, unlinked
//! files and terminals (variants of [`crate::image::FdKind`]).
//!
//! Contents that can be large (pipe buffers, socket queues, memfd and
//! unlinked-file data) are not in the JSON: they sit in the task's data
//! file `files-<pid>.img`, one [`Blob`] after another, with no header; the
//! task file names each by offset and length. The file exists only when
//! some blob does. Objects with two ends (a pipe, a socket pair) are
//! identified by inode, so each end finds the other, in this task or,
//! later, in another task of the tree.

use serde::{Deserialize, Serialize};

/// Name of the data file of task `pid`.
pub fn files_file_name(pid: i32) -> String {
    format!("files-{pid}.img")
}

/// `len` bytes at `offset` in the task's `files-<pid>.img`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// Offset in the data file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// One end of a pipe or FIFO; which end is the access mode of the fd's
/// flags (`O_RDONLY` or `O_WRONLY`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeImage {
    /// Inode of the pipe (`pipe:[ino]`, or the FIFO's own inode): ends with
    /// the same inode are one pipe.
    pub ino: u64,
    /// The FIFO's path, for a named pipe.
    pub fifo: Option<crate::image::FileId>,
    /// Buffer capacity (`F_GETPIPE_SZ`).
    pub size: u64,
    /// The bytes buffered in the pipe, read without consuming them
    /// (`tee`). Held by one end of the pipe only (the first read end).
    pub data: Option<Blob>,
}

/// A unix socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixImage {
    /// Socket inode (`socket:[ino]`).
    pub ino: u64,
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`.
    pub sock_type: i32,
    /// Bound name: a path, or `@name` for the abstract namespace.
    pub name: Option<String>,
    /// Inode of the connected peer. For a pair both ends are in the image.
    pub peer: Option<u64>,
    /// Listening, with this backlog (`listen`).
    pub listen: Option<u32>,
    /// Connections not yet accepted, in queue order: the inode of the
    /// client socket of each (an fd of the image).
    pub pending: Vec<u64>,
    /// Queued data in the receive queue: one blob per message for
    /// datagram and seqpacket sockets, one for a stream.
    pub queue: Vec<Blob>,
    /// `SO_SNDBUF` and `SO_RCVBUF` as `getsockopt` reports them.
    pub sndbuf: u64,
    /// See `sndbuf`.
    pub rcvbuf: u64,
    /// `shutdown` state: bit 0 no more receives, bit 1 no more sends.
    #[serde(default)]
    pub shutdown: u8,
}

/// An inet socket (TCP or UDP, v4 or v6) that is not a connection: a
/// TCP listener with no connection waiting, or a UDP socket, bound and
/// perhaps connected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InetImage {
    /// `AF_INET` or `AF_INET6`.
    pub family: i32,
    /// `SOCK_STREAM` (TCP) or `SOCK_DGRAM` (UDP).
    pub sock_type: i32,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub protocol: i32,
    /// Bound address and port (`127.0.0.1:8080`, `[::1]:53`), or null
    /// when unbound.
    #[serde(default)]
    pub addr: Option<String>,
    /// The peer of a connected UDP socket.
    #[serde(default)]
    pub peer: Option<String>,
    /// Listening, with this backlog.
    #[serde(default)]
    pub listen: Option<u32>,
    /// `SO_REUSEADDR`.
    #[serde(default)]
    pub reuseaddr: bool,
    /// `SO_REUSEPORT`.
    #[serde(default)]
    pub reuseport: bool,
    /// `IPV6_V6ONLY` (v6 only).
    #[serde(default)]
    pub v6only: bool,
    /// `TCP_NODELAY` (TCP only).
    #[serde(default)]
    pub nodelay: bool,
    /// `SO_KEEPALIVE`.
    #[serde(default)]
    pub keepalive: bool,
    /// `SO_SNDBUF` and `SO_RCVBUF` as `getsockopt` reports them; set again
    /// only when a new socket's differ (a size set is locked; the default
    /// is tuned by the kernel).
    #[serde(default)]
    pub sndbuf: u64,
    /// See `sndbuf`.
    #[serde(default)]
    pub rcvbuf: u64,
}

/// A timerfd (`timerfd_create`), its time left and interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerfdImage {
    /// `CLOCK_*` id.
    pub clockid: i32,
    /// Expirations not read yet (restored with `TFD_IOC_SET_TICKS`).
    pub ticks: u64,
    /// `timerfd_settime` flags (`TFD_TIMER_ABSTIME`…).
    pub settime_flags: u32,
    /// Time to the next expiration, relative, seconds and nanoseconds
    /// (0, 0 when disarmed).
    pub value: (u64, u64),
    /// Interval.
    pub interval: (u64, u64),
}

/// One watch of an epoll instance (fdinfo `tfd:` lines).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpollWatch {
    /// The watched fd number in the task.
    pub fd: i32,
    /// `EPOLL*` event bits (`EPOLLET`, `EPOLLONESHOT` included).
    pub events: u32,
    /// The `epoll_data` given with it.
    pub data: u64,
}

/// One watch of an inotify instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InotifyWatch {
    /// Watch descriptor; the restore makes the kernel hand out this number.
    pub wd: i32,
    /// The watched file, found through the file handle fdinfo shows.
    pub file: crate::image::FileId,
    /// `IN_*` mask.
    pub mask: u32,
}

/// Data of a file that exists only through its fds: a memfd or an
/// unlinked regular file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    /// Identity of the file when dumped (`st_dev`, `st_ino`): fds with the
    /// same identity are one file.
    pub dev: u64,
    /// See `dev`.
    pub ino: u64,
    /// Size (`st_size`).
    pub size: u64,
    /// Data extents (`SEEK_DATA`/`SEEK_HOLE`): file offset and contents;
    /// the rest is holes. Held by the first fd of the file only.
    pub extents: Vec<(u64, Blob)>,
    /// File position of this fd.
    pub pos: u64,
    /// `st_mode` permission bits.
    pub mode: u32,
}

/// A memfd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemfdImage {
    /// The name given to `memfd_create` (without the `memfd:` prefix).
    pub name: String,
    /// `F_GET_SEALS`.
    pub seals: u32,
    /// Contents and position.
    pub data: FileData,
}

/// A regular file unlinked while open: recreated from its saved contents
/// at its old path (or beside it), then unlinked again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkedImage {
    /// The path it had (without ` (deleted)`).
    pub path: String,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Contents and position.
    pub data: FileData,
}

impl crate::image::FdKind {
    /// One line for `cr show`: what the fd is and the state it carries.
    pub fn describe(&self) -> String {
        use crate::image::FdKind as K;
        let blobs = |q: &[Blob]| q.iter().map(|b| b.len).sum::<u64>();
        match self {
            K::Path { file, pos } => format!("{} pos {pos}", file.path),
            K::Dup { fd } => format!("dup of fd {fd}"),
            K::Pipe(p) => format!(
                "{} size {}, {} bytes buffered",
                p.fifo
                    .as_ref()
                    .map_or(format!("pipe:[{}]", p.ino), |f| format!("fifo {}", f.path)),
                p.size,
                p.data.map_or(0, |b| b.len)
            ),
            K::Unix(u) => format!(
                "unix socket:[{}] type {}{}{}{}, {} queued ({} bytes)",
                u.ino,
                u.sock_type,
                u.name
                    .as_ref()
                    .map_or(String::new(), |n| format!(" bound {n}")),
                u.peer
                    .map_or(String::new(), |p| format!(" peer socket:[{p}]")),
                u.listen.map_or(String::new(), |b| format!(
                    " listening (backlog {b}, {} pending)",
                    u.pending.len()
                )),
                u.queue.len(),
                blobs(&u.queue)
            ),
            K::Inet(i) => format!(
                "{} {}{}{}",
                if i.sock_type == libc::SOCK_STREAM {
                    "tcp"
                } else {
                    "udp"
                },
                i.addr.as_deref().unwrap_or("unbound"),
                i.peer
                    .as_ref()
                    .map_or(String::new(), |p| format!(" connected to {p}")),
                i.listen
                    .map_or(String::new(), |b| format!(" listening (backlog {b})")),
            ),
            K::Eventfd { count, semaphore } => format!(
                "eventfd count {count}{}",
                if *semaphore { " semaphore" } else { "" }
            ),
            K::Signalfd { mask } => format!("signalfd mask {mask:#x}"),
            K::Timerfd(t) => format!(
                "timerfd clock {} value {}.{:09}s interval {}.{:09}s ticks {}",
                t.clockid, t.value.0, t.value.1, t.interval.0, t.interval.1, t.ticks
            ),
            K::Epoll { watches } => format!("epoll, {} watches", watches.len()),
            K::Inotify { watches } => format!("inotify, {} watches", watches.len()),
            K::Memfd(m) => format!(
                "memfd:{} size {} seals {:#x} pos {}",
                m.name, m.data.size, m.seals, m.data.pos
            ),
            K::Unlinked(u) => format!(
                "unlinked {} size {} pos {}",
                u.path, u.data.size, u.data.pos
            ),
            K::Tty { path } => format!("terminal {path} (--shell-job)"),
            K::Console { path } => format!("the container's console {path}"),
        }
    }
}
