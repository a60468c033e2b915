//! A terminal for `run`/`exec` in the foreground when the process wants one
//! and no `--console-socket` was given: corral is its own console socket.
//! It receives the pty master from the container's process, puts the host
//! terminal in raw mode, copies stdin to the master and the master to
//! stdout, passes window-size changes on, forwards signals, and restores the
//! host terminal when the process exits.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::event::{PollFd, PollFlags};
use rustix::termios::{OptionalActions, Termios};

use crate::sys::{self, SigSet};

/// The two ends of the internal console socket: the container's process
/// sends the master on `child`, corral receives it on `ours`.
pub struct ConsolePair {
    /// Our end.
    pub ours: UnixStream,
    /// The end the container's process inherits.
    pub child: UnixStream,
}

impl ConsolePair {
    /// A connected pair.
    pub fn new() -> std::io::Result<Self> {
        let (ours, child) = UnixStream::pair()?;
        Ok(ConsolePair { ours, child })
    }
}

/// Receives the pty master the container's process sent over `socket`.
pub fn recv_master(socket: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )?;
    for message in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = message {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "no pty master received",
    ))
}

/// The host terminal in raw mode; its previous mode comes back on drop.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts stdin in raw mode if it is a terminal.
    pub fn enter() -> Option<Self> {
        let stdin = rustix::stdio::stdin();
        if !rustix::termios::isatty(stdin) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Copies our terminal's window size to the container's pty.
fn copy_window_size(master: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

/// Writes all of `data` to `fd`, waiting while it would block.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut p = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = rustix::event::poll(&mut p, None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Proxies between our stdio and `master` until the process behind
/// `pidfd` (our child `pid`) exits; forwards the signals we receive (all
/// blocked, read through a signalfd) and window-size changes; returns the
/// exit status (128+N for signal N).
pub fn proxy_until_exit(pid: i32, pidfd: &OwnedFd, master: OwnedFd) -> i32 {
    let raw = RawTerminal::enter();
    copy_window_size(master.as_fd());
    let sigfd = sys::signalfd(&SigSet::full()).ok();
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = vec![0u8; 32 * 1024];
    let mut exited = false;
    loop {
        let mut fds = Vec::with_capacity(4);
        fds.push(PollFd::new(pidfd, PollFlags::IN));
        if master_open {
            fds.push(PollFd::new(&master, PollFlags::IN));
        }
        if stdin_open && !exited {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        if let Some(s) = &sigfd {
            fds.push(PollFd::new(s, PollFlags::IN));
        }
        // Once the process is gone, drain what its pty still holds, briefly.
        let timeout = exited.then_some(rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) if exited => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<(i32, PollFlags)> = fds
            .iter()
            .map(|f| (f.as_fd().as_raw_fd(), f.revents()))
            .collect();
        for (fd, rev) in ready {
            if rev.is_empty() {
                continue;
            }
            if fd == pidfd.as_raw_fd() {
                exited = true;
            } else if fd == master.as_raw_fd() {
                match rustix::io::read(&master, &mut buf) {
                    Ok(0) | Err(rustix::io::Errno::IO) => master_open = false,
                    Ok(n) => {
                        if write_all(stdout, &buf[..n]).is_err() {
                            master_open = false;
                        }
                    }
                    Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                    Err(_) => master_open = false,
                }
            } else if fd == stdin.as_raw_fd() {
                match rustix::io::read(stdin, &mut buf) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => {
                        let _ = write_all(master.as_fd(), &buf[..n]);
                    }
                    Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                    Err(_) => stdin_open = false,
                }
            } else if let Some(s) = &sigfd {
                if let Ok(Some(sig)) = sys::read_signalfd(s.as_fd()) {
                    match sig {
                        libc::SIGCHLD | libc::SIGURG => {}
                        libc::SIGWINCH => copy_window_size(master.as_fd()),
                        sig => {
                            let _ = sys::pidfd_signal(pidfd.as_fd(), sig);
                        }
                    }
                }
            }
        }
        if exited && !master_open {
            break;
        }
    }
    drop(raw);
    let child = rustix::process::Pid::from_raw(pid);
    match rustix::process::waitpid(child, rustix::process::WaitOptions::empty()) {
        Ok(Some((_, st))) => st
            .exit_status()
            .or_else(|| st.terminating_signal().map(|s| 128 + s))
            .unwrap_or(255),
        _ => 255,
    }
}
