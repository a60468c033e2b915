//! A container's console: the pty slave its runtime made at create and put
//! on the init's fds 0–2 (and /dev/console), the controlling terminal of
//! the init's session.
//!
//! Dump ([`crate::container::DumpExtra::console`]): the runtime passes an
//! fd of that slave. Every fd of the tree on the same file (same devpts
//! instance and inode) is recorded as [`FdKind::Console`](crate::image::FdKind),
//! not as a path; the terminal's settings (termios, window size) go to
//! [`Inventory::console`](crate::image::Inventory). The dump refuses a
//! console that is not the controlling terminal of the root's session
//! (root leading it, its group in the foreground): the restored root is
//! the session leader of the new pty, nothing else; and one with input
//! not read yet (the new pty would not have it). Output the process wrote
//! and the engine has not read from the old master yet is not seen, and
//! lost.
//!
//! Restore ([`crate::container::IntoTask::console`]): the restoring runtime
//! made a new pty as `create` does (sent its master over the console
//! socket, made the slave the controlling terminal of the prepared init,
//! which leads its session). Console fds get that slave at their numbers,
//! and the recorded settings are put on it before the process runs.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;

use rustix::termios::{
    ControlModes, InputModes, LocalModes, OptionalActions, OutputModes, SpecialCodeIndex, Winsize,
};

use crate::collect::{unsupported, DumpError};
use crate::image::ConsoleImage;

/// The special characters recorded, by name (rustix indexes them only by
/// these constants).
const SPECIAL: [(&str, SpecialCodeIndex); 17] = [
    ("VINTR", SpecialCodeIndex::VINTR),
    ("VQUIT", SpecialCodeIndex::VQUIT),
    ("VERASE", SpecialCodeIndex::VERASE),
    ("VKILL", SpecialCodeIndex::VKILL),
    ("VEOF", SpecialCodeIndex::VEOF),
    ("VTIME", SpecialCodeIndex::VTIME),
    ("VMIN", SpecialCodeIndex::VMIN),
    ("VSWTC", SpecialCodeIndex::VSWTC),
    ("VSTART", SpecialCodeIndex::VSTART),
    ("VSTOP", SpecialCodeIndex::VSTOP),
    ("VSUSP", SpecialCodeIndex::VSUSP),
    ("VEOL", SpecialCodeIndex::VEOL),
    ("VREPRINT", SpecialCodeIndex::VREPRINT),
    ("VDISCARD", SpecialCodeIndex::VDISCARD),
    ("VWERASE", SpecialCodeIndex::VWERASE),
    ("VLNEXT", SpecialCodeIndex::VLNEXT),
    ("VEOL2", SpecialCodeIndex::VEOL2),
];

/// The identity (dev, ino) and settings of the console `fd` of the tree
/// rooted at `pid`; refuses a console that is not a pty slave or not the
/// controlling terminal of `pid`'s session with `pid` leading it and its
/// group in the foreground.
pub(crate) fn dump(pid: i32, fd: BorrowedFd<'_>) -> Result<((u64, u64), ConsoleImage), DumpError> {
    let refuse = |what: String| Err(unsupported(pid, None, what));
    let st = rustix::fs::fstat(fd).map_err(|e| DumpError::Trace {
        pid,
        op: "fstat the container's console".into(),
        source: e.into(),
    })?;
    let major = rustix::fs::major(st.st_rdev);
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || !(136..=143).contains(&major) {
        return refuse(format!(
            "the container's console is no pty slave (device {major}:{})",
            rustix::fs::minor(st.st_rdev)
        ));
    }
    let path = std::path::PathBuf::from(format!("/proc/{pid}/stat"));
    let stat =
        std::fs::read_to_string(&path).map_err(|source| DumpError::Proc { pid, path, source })?;
    // Fields 5 (pgrp), 6 (session) and 8 (tpgid), counted after `comm`.
    let f: Vec<i64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|v| v.parse().unwrap_or(-1))
                .collect()
        })
        .unwrap_or_default();
    let field = |n: usize| f.get(n - 3).copied().unwrap_or(-1);
    let (pgrp, session, tpgid) = (field(5), field(6), field(8));
    if crate::files::ctty_of(pid)? != st.st_rdev {
        return refuse("the container's console is not its controlling terminal".into());
    }
    if session != i64::from(pid) {
        return refuse(format!(
            "session {session} holds the container's console, not one it leads"
        ));
    }
    if tpgid != pgrp {
        return refuse(format!(
            "process group {tpgid} in the foreground of the container's console, not its own {pgrp}"
        ));
    }
    // Input typed and not read yet waits in this pty's queue: the new pty
    // would not have it (its master is the engine's, not ours to write).
    let unread = rustix::io::ioctl_fionread(fd).map_err(|e| DumpError::Trace {
        pid,
        op: "FIONREAD on the container's console".into(),
        source: e.into(),
    })?;
    if unread != 0 {
        return refuse(format!(
            "{unread} bytes of input on the container's console not read yet"
        ));
    }
    let mut image = read(fd).map_err(|e| DumpError::Trace {
        pid,
        op: "read the settings of the container's console".into(),
        source: e.into(),
    })?;
    image.controlling = true;
    Ok(((st.st_dev, st.st_ino), image))
}

/// The settings of the terminal behind `fd` (`controlling` left false).
pub(crate) fn read(fd: BorrowedFd<'_>) -> rustix::io::Result<ConsoleImage> {
    let t = rustix::termios::tcgetattr(fd)?;
    let ws = rustix::termios::tcgetwinsize(fd)?;
    let cc: BTreeMap<String, u8> = SPECIAL
        .iter()
        .map(|(name, i)| ((*name).to_owned(), t.special_codes[*i]))
        .collect();
    Ok(ConsoleImage {
        iflag: t.input_modes.bits(),
        oflag: t.output_modes.bits(),
        cflag: t.control_modes.bits(),
        lflag: t.local_modes.bits(),
        line: t.line_discipline,
        cc,
        ispeed: t.input_speed(),
        ospeed: t.output_speed(),
        winsize: [ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel],
        controlling: false,
    })
}

/// Puts the recorded settings on the terminal behind `fd`.
pub(crate) fn apply(fd: BorrowedFd<'_>, c: &ConsoleImage) -> rustix::io::Result<()> {
    let mut t = rustix::termios::tcgetattr(fd)?;
    t.input_modes = InputModes::from_bits_retain(c.iflag);
    t.output_modes = OutputModes::from_bits_retain(c.oflag);
    t.control_modes = ControlModes::from_bits_retain(c.cflag);
    t.local_modes = LocalModes::from_bits_retain(c.lflag);
    t.line_discipline = c.line;
    for (name, i) in SPECIAL {
        if let Some(&v) = c.cc.get(name) {
            t.special_codes[i] = v;
        }
    }
    t.set_input_speed(c.ispeed)?;
    t.set_output_speed(c.ospeed)?;
    rustix::termios::tcsetattr(fd, OptionalActions::Now, &t)?;
    let [ws_row, ws_col, ws_xpixel, ws_ypixel] = c.winsize;
    rustix::termios::tcsetwinsize(
        fd,
        Winsize {
            ws_row,
            ws_col,
            ws_xpixel,
            ws_ypixel,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn settings_read_from_one_pty_come_back_on_another() {
        let pty = || {
            let m = rustix::pty::openpt(
                rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY,
            )
            .unwrap();
            rustix::pty::unlockpt(&m).unwrap();
            let s = rustix::pty::ioctl_tiocgptpeer(
                &m,
                rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY,
            )
            .unwrap();
            (m, s)
        };
        let (_m1, s1) = pty();
        let mut t = rustix::termios::tcgetattr(&s1).unwrap();
        t.local_modes -= LocalModes::ICANON | LocalModes::ECHO;
        t.special_codes[SpecialCodeIndex::VMIN] = 1;
        t.special_codes[SpecialCodeIndex::VINTR] = 7;
        t.set_speed(9600).unwrap();
        rustix::termios::tcsetattr(&s1, OptionalActions::Now, &t).unwrap();
        let ws = Winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 5,
            ws_ypixel: 6,
        };
        rustix::termios::tcsetwinsize(&s1, ws).unwrap();
        let dumped = read(s1.as_fd()).unwrap();
        assert_eq!(dumped.winsize, [33, 101, 5, 6]);
        assert_eq!(dumped.cc["VINTR"], 7);

        let (_m2, s2) = pty();
        assert_ne!(read(s2.as_fd()).unwrap(), dumped);
        apply(s2.as_fd(), &dumped).unwrap();
        assert_eq!(read(s2.as_fd()).unwrap(), dumped);
    }
}
