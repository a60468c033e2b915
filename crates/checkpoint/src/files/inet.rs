//! Inet sockets that are not connections: TCP listeners (with no
//! connection waiting to be accepted) and UDP sockets, bound and perhaps
//! connected, v4 or v6. Dump: the address from `getsockname` and
//! `getpeername` on a `pidfd_getfd` copy, the options from `getsockopt`,
//! the backlog and accept queue from `inet_diag` (NETLINK_SOCK_DIAG, in the
//! task's network namespace). Restore: `socket`, the options, `bind`,
//! `listen` or `connect`. Established TCP connections stay refused
//! (`--tcp-established`), as do sockets with queued data and options the
//! restore would not set again.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::image::InetImage;
use crate::restore::RestoreError;
use crate::sys;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;

/// Why a socket is not dumped: a refusal, or one naming the option that
/// would allow it.
pub(super) enum Refusal {
    Unsupported(String),
    NeedsOption(String, &'static str),
    Io(&'static str, io::Error),
}

/// Options whose value the restore does not set again: refused when set.
const REFUSED: [(i32, i32, &str); 4] = [
    (libc::SOL_IP, libc::IP_TRANSPARENT, "IP_TRANSPARENT"),
    (libc::SOL_IP, libc::IP_FREEBIND, "IP_FREEBIND"),
    (libc::SOL_TCP, libc::TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT"),
    (libc::SOL_TCP, libc::TCP_FASTOPEN, "TCP_FASTOPEN"),
];

fn addr_of(a: rustix::net::SocketAddrAny) -> Option<SocketAddr> {
    SocketAddr::try_from(a).ok().filter(|a| a.port() != 0)
}

/// Reads the inet socket `copy` (inode `ino`) of the task.
pub(super) fn dump(copy: &OwnedFd, ino: u64, diag: BorrowedFd<'_>) -> Result<InetImage, Refusal> {
    let int = |level, opt, name| {
        sys::getsockopt_int(copy.as_fd(), level, opt).map_err(|e| Refusal::Io(name, e))
    };
    let family = int(libc::SOL_SOCKET, libc::SO_DOMAIN, "SO_DOMAIN")?;
    let sock_type = int(libc::SOL_SOCKET, libc::SO_TYPE, "SO_TYPE")?;
    let protocol = int(libc::SOL_SOCKET, libc::SO_PROTOCOL, "SO_PROTOCOL")?;
    let tcp = sock_type == libc::SOCK_STREAM && protocol == libc::IPPROTO_TCP;
    let udp = sock_type == libc::SOCK_DGRAM && protocol == libc::IPPROTO_UDP;
    if !tcp && !udp {
        return Err(Refusal::Unsupported(format!(
            "inet socket:[{ino}] of type {sock_type}, protocol {protocol}"
        )));
    }
    let addr = rustix::net::getsockname(copy)
        .ok()
        .and_then(addr_of)
        .map(|a| a.to_string());
    let peer = rustix::net::getpeername(copy)
        .ok()
        .flatten()
        .and_then(addr_of)
        .map(|a| a.to_string());
    let listening = int(libc::SOL_SOCKET, libc::SO_ACCEPTCONN, "SO_ACCEPTCONN")? != 0;
    let named = addr.as_deref().unwrap_or("unbound");
    let mut listen = None;
    if tcp {
        if peer.is_some() {
            return Err(Refusal::NeedsOption(
                "established TCP connection".into(),
                "--tcp-established",
            ));
        }
        if listening {
            let (queued, backlog) = listener_queue(diag, family, ino)
                .map_err(|e| Refusal::Io("inet_diag", e))?
                .ok_or_else(|| {
                    Refusal::Unsupported(format!("TCP listener {named}: not found by inet_diag"))
                })?;
            if queued != 0 {
                return Err(Refusal::Unsupported(format!(
                    "TCP listener {named} with {queued} connections waiting to be accepted"
                )));
            }
            listen = Some(backlog);
        } else {
            // Unbound, bound, connecting or closing: not told apart here.
            return Err(Refusal::Unsupported(format!(
                "TCP socket {named}, neither listening nor connected"
            )));
        }
    } else {
        let queued =
            rustix::io::ioctl_fionread(copy).map_err(|e| Refusal::Io("FIONREAD", e.into()))?;
        // FIONREAD says 0 for an empty datagram too: peek to be sure.
        let mut b = [0u8; 1];
        let waiting = queued != 0
            || rustix::net::recv(copy, &mut b, RecvFlags::PEEK | RecvFlags::DONTWAIT).is_ok();
        if waiting {
            return Err(Refusal::Unsupported(format!(
                "UDP socket {named} with datagrams not read yet"
            )));
        }
    }
    for (level, opt, name) in REFUSED {
        if (udp && level == libc::SOL_TCP) || int(level, opt, name)? == 0 {
            continue;
        }
        return Err(Refusal::Unsupported(format!(
            "inet socket {named} with {name} set"
        )));
    }
    // A device name (SO_BINDTODEVICE) shows as a non-zero interface index.
    if int(libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX, "SO_BINDTOIFINDEX")? != 0 {
        return Err(Refusal::Unsupported(format!(
            "inet socket {named} bound to a device (SO_BINDTODEVICE)"
        )));
    }
    let flag = |level, opt, name| int(level, opt, name).map(|v| v != 0);
    Ok(InetImage {
        family,
        sock_type,
        protocol,
        addr,
        peer,
        listen,
        reuseaddr: flag(libc::SOL_SOCKET, libc::SO_REUSEADDR, "SO_REUSEADDR")?,
        reuseport: flag(libc::SOL_SOCKET, libc::SO_REUSEPORT, "SO_REUSEPORT")?,
        v6only: family == libc::AF_INET6
            && flag(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, "IPV6_V6ONLY")?,
        nodelay: tcp && flag(libc::SOL_TCP, libc::TCP_NODELAY, "TCP_NODELAY")?,
        keepalive: flag(libc::SOL_SOCKET, libc::SO_KEEPALIVE, "SO_KEEPALIVE")?,
        sndbuf: int(libc::SOL_SOCKET, libc::SO_SNDBUF, "SO_SNDBUF")? as u64,
        rcvbuf: int(libc::SOL_SOCKET, libc::SO_RCVBUF, "SO_RCVBUF")? as u64,
    })
}

/// The accept queue length and backlog of the TCP listener with inode
/// `ino`, from an `inet_diag` dump of the listeners of `family` in the
/// namespace of `diag`; `None` if it is not there.
fn listener_queue(diag: BorrowedFd<'_>, family: i32, ino: u64) -> io::Result<Option<(u32, u32)>> {
    let mut req = Vec::with_capacity(72);
    req.extend(72u32.to_ne_bytes());
    req.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend(2u32.to_ne_bytes()); // seq
    req.extend(0u32.to_ne_bytes()); // port id
    req.push(family as u8);
    req.push(libc::IPPROTO_TCP as u8);
    req.extend([0u8; 2]); // extensions, pad
    req.extend((1u32 << TCP_LISTEN).to_ne_bytes());
    req.extend([0u8; 40]); // ports, addresses, interface
    req.extend([0xffu8; 8]); // no cookie
    rustix::net::send(diag, &req, SendFlags::empty())?;
    let mut buf = vec![0u8; 1 << 16];
    let mut found = None;
    loop {
        let (n, _) = rustix::net::recv(diag, &mut buf[..], RecvFlags::empty())?;
        let mut at = 0;
        while at + 16 <= n {
            let b = &buf[at..n];
            let len = u32::from_ne_bytes(b[0..4].try_into().expect("4")) as usize;
            let kind = u16::from_ne_bytes(b[4..6].try_into().expect("2"));
            if len < 16 || len > b.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed inet_diag answer",
                ));
            }
            match kind {
                NLMSG_DONE => return Ok(found),
                NLMSG_ERROR => {
                    let errno = b
                        .get(16..20)
                        .map(|e| i32::from_ne_bytes(e.try_into().expect("4")));
                    return Err(io::Error::from_raw_os_error(-errno.unwrap_or(-libc::EIO)));
                }
                _ => {
                    // inet_diag_msg: family, state, timer, retrans, the
                    // 48-byte id, expires, rqueue, wqueue, uid, inode.
                    let msg = &b[16..len];
                    let word = |o: usize| {
                        msg.get(o..o + 4)
                            .map(|w| u32::from_ne_bytes(w.try_into().expect("4")))
                    };
                    if let (Some(rq), Some(wq), Some(inode)) = (word(56), word(60), word(68)) {
                        if u64::from(inode) == ino {
                            found = Some((rq, wq));
                        }
                    }
                }
            }
            at += (len + 3) & !3;
        }
    }
}

/// Makes the socket `i` again: options, bind, listen or connect.
pub(super) fn make(i: &InetImage, what: &str) -> Result<OwnedFd, RestoreError> {
    let e = |op: &str| {
        let path = std::path::PathBuf::from(format!("{what}: {op}"));
        move |source: io::Error| RestoreError::Open {
            path: path.clone(),
            source,
        }
    };
    let en = |op: &str| {
        let f = e(op);
        move |x: rustix::io::Errno| f(x.into())
    };
    let parse = |a: &str| {
        a.parse::<SocketAddr>()
            .map_err(|_| RestoreError::Unsupported(format!("{what}: bad address {a}")))
    };
    let family = match i.family {
        libc::AF_INET => AddressFamily::INET,
        libc::AF_INET6 => AddressFamily::INET6,
        f => return Err(RestoreError::Unsupported(format!("{what}: family {f}"))),
    };
    let tcp = i.sock_type == libc::SOCK_STREAM;
    let s = rustix::net::socket_with(
        family,
        SocketType::from_raw(i.sock_type as u32),
        SocketFlags::CLOEXEC,
        Some(rustix::net::Protocol::from_raw(
            std::num::NonZeroU32::new(i.protocol as u32)
                .ok_or_else(|| RestoreError::Unsupported(format!("{what}: protocol 0")))?,
        )),
    )
    .map_err(en("socket"))?;
    let set = |level, opt, v: bool, name| {
        sys::setsockopt_int(s.as_fd(), level, opt, i32::from(v)).map_err(e(name))
    };
    set(
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        i.reuseaddr,
        "SO_REUSEADDR",
    )?;
    set(
        libc::SOL_SOCKET,
        libc::SO_REUSEPORT,
        i.reuseport,
        "SO_REUSEPORT",
    )?;
    set(
        libc::SOL_SOCKET,
        libc::SO_KEEPALIVE,
        i.keepalive,
        "SO_KEEPALIVE",
    )?;
    if i.family == libc::AF_INET6 {
        set(
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            i.v6only,
            "IPV6_V6ONLY",
        )?;
    }
    if tcp {
        set(libc::SOL_TCP, libc::TCP_NODELAY, i.nodelay, "TCP_NODELAY")?;
    }
    // getsockopt reports twice what setsockopt was given.
    for (opt, force, v, name) in [
        (libc::SO_SNDBUF, libc::SO_SNDBUFFORCE, i.sndbuf, "SO_SNDBUF"),
        (libc::SO_RCVBUF, libc::SO_RCVBUFFORCE, i.rcvbuf, "SO_RCVBUF"),
    ] {
        let now = sys::getsockopt_int(s.as_fd(), libc::SOL_SOCKET, opt).map_err(e(name))?;
        if v != 0 && now as u64 != v {
            let half = i32::try_from(v / 2).unwrap_or(i32::MAX);
            sys::setsockopt_int(s.as_fd(), libc::SOL_SOCKET, force, half).map_err(e(name))?;
        }
    }
    if let Some(a) = &i.addr {
        rustix::net::bind(&s, &parse(a)?).map_err(en(&format!("bind {a}")))?;
    }
    if let Some(backlog) = i.listen {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        rustix::net::listen(&s, backlog).map_err(en("listen"))?;
    }
    if let Some(p) = &i.peer {
        rustix::net::connect(&s, &parse(p)?).map_err(en(&format!("connect {p}")))?;
    }
    Ok(s)
}
