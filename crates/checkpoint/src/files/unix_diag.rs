//! What `sock_diag` (NETLINK_SOCK_DIAG, `unix_diag`) tells of one unix
//! socket by inode: name, peer, state, queue lengths, pending connections,
//! shutdown state. /proc and `getsockopt` show none of the peer links.
//! No crate we keep speaks unix_diag, and the request is one fixed struct,
//! so it is built by hand here.

use std::io;
use std::os::fd::OwnedFd;

use rustix::net::{self, AddressFamily, Protocol, RecvFlags, SendFlags, SocketType};

const NETLINK_SOCK_DIAG: u32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const SHOW_NAME: u32 = 0x1;
const SHOW_PEER: u32 = 0x4;
const SHOW_ICONS: u32 = 0x8;
const SHOW_RQLEN: u32 = 0x10;
const ATTR_NAME: u16 = 0;
const ATTR_PEER: u16 = 2;
const ATTR_ICONS: u16 = 3;
const ATTR_RQLEN: u16 = 4;
const ATTR_SHUTDOWN: u16 = 6;

/// `TCP_LISTEN`, the state of a listening unix socket.
pub const STATE_LISTEN: u8 = 10;
/// `TCP_ESTABLISHED`, the state of a connected stream socket.
pub const STATE_ESTABLISHED: u8 = 1;

/// One unix socket as sock_diag describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnixDiag {
    /// `SOCK_*` type.
    pub sock_type: u8,
    /// `TCP_*` state: `TCP_LISTEN` (10), `TCP_ESTABLISHED` (1), `TCP_CLOSE` (7).
    pub state: u8,
    /// Bound name as `sun_path` bytes (abstract: a leading NUL).
    pub name: Option<Vec<u8>>,
    /// Peer inode.
    pub peer: Option<u64>,
    /// Inodes of connections waiting to be accepted (listeners).
    pub icons: Vec<u64>,
    /// Bytes queued to read, or, listening, the connections queued.
    pub rqueue: u32,
    /// Bytes in flight from us, or, listening, the backlog.
    pub wqueue: u32,
    /// Shutdown bits.
    pub shutdown: u8,
}

/// A NETLINK_SOCK_DIAG socket.
pub struct Diag(OwnedFd);

impl Diag {
    /// Opens the netlink socket of `pid`'s network namespace (a
    /// container's sockets are not found from ours).
    pub fn open_for(pid: i32) -> io::Result<Self> {
        super::ns::diag_socket_of(pid).map(Diag)
    }

    /// The netlink socket (for the `inet_diag` queries of `inet`).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }

    /// Describes the unix socket with inode `ino`.
    pub fn unix(&self, ino: u64) -> io::Result<UnixDiag> {
        let ino32 = u32::try_from(ino).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut req = Vec::with_capacity(40);
        req.extend(40u32.to_ne_bytes());
        req.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req.extend(NLM_F_REQUEST.to_ne_bytes());
        req.extend(1u32.to_ne_bytes()); // seq
        req.extend(0u32.to_ne_bytes()); // port id
        req.push(libc::AF_UNIX as u8);
        req.extend([0u8; 3]); // protocol, pad
        req.extend(u32::MAX.to_ne_bytes()); // every state
        req.extend(ino32.to_ne_bytes());
        req.extend((SHOW_NAME | SHOW_PEER | SHOW_ICONS | SHOW_RQLEN).to_ne_bytes());
        req.extend([0xffu8; 8]); // no cookie
        net::send(&self.0, &req, SendFlags::empty())?;
        let mut buf = vec![0u8; 1 << 16];
        let (n, _) = net::recv(&self.0, &mut buf[..], RecvFlags::empty())?;
        parse(&buf[..n])
    }
}

/// A `NETLINK_SOCK_DIAG` socket of the calling thread's network namespace.
pub(super) fn netlink_socket() -> io::Result<OwnedFd> {
    let proto = Protocol::from_raw(NETLINK_SOCK_DIAG.try_into().expect("non-zero"));
    Ok(net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        net::SocketFlags::CLOEXEC,
        Some(proto),
    )?)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn bad() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed unix_diag answer")
}

/// Parses one answer: nlmsghdr, `unix_diag_msg`, attributes.
fn parse(b: &[u8]) -> io::Result<UnixDiag> {
    let kind = u16_at(b, 4).ok_or_else(bad)?;
    if kind == NLMSG_ERROR {
        let errno = u32_at(b, 16).ok_or_else(bad)? as i32;
        return Err(io::Error::from_raw_os_error(-errno));
    }
    let len = (u32_at(b, 0).ok_or_else(bad)? as usize).min(b.len());
    let msg = b.get(16..len).ok_or_else(bad)?;
    let mut d = UnixDiag {
        sock_type: *msg.get(1).ok_or_else(bad)?,
        state: *msg.get(2).ok_or_else(bad)?,
        ..UnixDiag::default()
    };
    let mut at = 16;
    while at + 4 <= msg.len() {
        let alen = u16_at(msg, at).ok_or_else(bad)? as usize;
        let atype = u16_at(msg, at + 2).ok_or_else(bad)?;
        if alen < 4 {
            return Err(bad());
        }
        let data = msg.get(at + 4..at + alen).ok_or_else(bad)?;
        match atype {
            ATTR_NAME => d.name = Some(data.to_vec()),
            ATTR_PEER => d.peer = u32_at(data, 0).map(u64::from).filter(|&p| p != 0),
            ATTR_ICONS => {
                d.icons = data
                    .chunks_exact(4)
                    .map(|c| u64::from(u32::from_ne_bytes(c.try_into().expect("4"))))
                    .collect()
            }
            ATTR_RQLEN => {
                d.rqueue = u32_at(data, 0).ok_or_else(bad)?;
                d.wqueue = u32_at(data, 4).ok_or_else(bad)?;
            }
            ATTR_SHUTDOWN => d.shutdown = *data.first().ok_or_else(bad)?,
            _ => {}
        }
        at += (alen + 3) & !3;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    #[ignore = "needs root"]
    fn a_pair_names_each_other_and_counts_queued_bytes() {
        use std::io::Write as _;
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"hello").unwrap();
        let ino = |s: &UnixStream| {
            let fd = std::os::fd::AsRawFd::as_raw_fd(s);
            std::fs::metadata(format!("/proc/self/fd/{fd}"))
                .unwrap()
                .ino()
        };
        let diag = Diag::open_for(std::process::id() as i32).unwrap();
        let db = diag.unix(ino(&b)).unwrap();
        assert_eq!(db.peer, Some(ino(&a)));
        assert_eq!(db.rqueue, 5);
        assert_eq!(db.sock_type, libc::SOCK_STREAM as u8);
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..64 {
            let _ = parse(&vec![0xffu8; n]);
            let _ = parse(&vec![0u8; n]);
        }
    }
}
