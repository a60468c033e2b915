//! Per-container syslog: the container's `/dev/log` is a unix datagram
//! socket in its state directory, read by a small receiver process that
//! corral starts with the container and that ends with it (it watches the
//! init's pidfd). Each message is stamped with the time and the container
//! id and appended as a JSON line to `syslog.log`, rotated to `syslog.log.1`
//! so both stay within the configured size. A flood never blocks the
//! container's logger for long (the receiver always reads) and never grows
//! memory: beyond a rate limit messages are dropped and counted, and the
//! count is logged.
//!
//! Asked for with the annotation `run.corral.syslog=true` or `--syslog`;
//! `run.corral.syslog.max-bytes` sets the size (default 4 MiB),
//! `run.corral.syslog.forward=true` also sends each message to the host's
//! /dev/log tagged `corral/<id>`.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{PollFd, PollFlags};

use crate::state::rfc3339;
use crate::sys::{self, Forked};

/// The socket's name in the state directory.
pub const SOCKET: &str = "syslog.sock";
/// The log's name in the state directory.
pub const LOG: &str = "syslog.log";
/// Default size of the log and its rotated copy together.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 20;
const ANNOTATION: &str = "run.corral.syslog";
const MAX_BYTES: &str = "run.corral.syslog.max-bytes";
const FORWARD: &str = "run.corral.syslog.forward";
/// Messages per second accepted before dropping (with a burst as large).
const RATE: f64 = 2000.0;

/// What the receiver does.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Size of `syslog.log` plus `syslog.log.1`.
    pub max_bytes: u64,
    /// Also send to the host's /dev/log.
    pub forward: bool,
}

/// The syslog settings the container asks for, if it asks.
pub fn wanted(
    annotations: &std::collections::HashMap<String, String>,
    flag: bool,
) -> Option<Settings> {
    if !flag && annotations.get(ANNOTATION).map(String::as_str) != Some("true") {
        return None;
    }
    let max_bytes = annotations
        .get(MAX_BYTES)
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 4096)
        .unwrap_or(DEFAULT_MAX_BYTES);
    let forward = annotations.get(FORWARD).map(String::as_str) == Some("true");
    Some(Settings { max_bytes, forward })
}

/// Binds the container's syslog socket in `dir`; returns it and its path.
pub fn bind(dir: &Path) -> std::io::Result<(UnixDatagram, PathBuf)> {
    let path = dir.join(SOCKET);
    let sock = UnixDatagram::bind(&path)?;
    // The container's users, any uid, must be able to log.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
    Ok((sock, path))
}

/// Starts the receiver: a child process that reads `sock` until the process
/// behind `init` exits, writing to `dir/syslog.log`.
pub fn spawn_receiver(
    sock: &UnixDatagram,
    init: BorrowedFd<'_>,
    dir: &Path,
    id: &str,
    settings: &Settings,
) -> std::io::Result<()> {
    match sys::clone3(0, None)? {
        Forked::Parent { .. } => Ok(()),
        Forked::Child => {
            // Nothing of the runtime's but what the receiver needs: stdio
            // to /dev/null, every other fd closed (the exec FIFO above all,
            // whose reader must be the init alone).
            let keep = [sock.as_fd(), init];
            let code = match sys::keep_only_fds(&keep) {
                Ok(fds) => match fds[0].try_clone_to_owned() {
                    Ok(sock) => {
                        receive(&UnixDatagram::from(sock), fds[1], dir, id, settings);
                        0
                    }
                    Err(_) => 1,
                },
                Err(_) => 1,
            };
            sys::exit_now(code)
        }
    }
}

struct Log {
    path: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
    half: u64,
}

impl Log {
    fn open(dir: &Path, max: u64) -> Log {
        let path = dir.join(LOG);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Log {
            path,
            file,
            size,
            half: max / 2,
        }
    }

    fn append(&mut self, line: &[u8]) {
        if self.size + line.len() as u64 > self.half {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
            self.size = 0;
        }
        if let Some(f) = &mut self.file {
            if f.write_all(line).is_ok() {
                self.size += line.len() as u64;
            }
        }
    }
}

fn entry(id: &str, msg: &str) -> Vec<u8> {
    let v = serde_json::json!({"time": rfc3339(SystemTime::now()), "id": id, "msg": msg});
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The receiver's loop (in its own process).
fn receive(sock: &UnixDatagram, init: BorrowedFd<'_>, dir: &Path, id: &str, s: &Settings) {
    let mut log = Log::open(dir, s.max_bytes);
    let forward = s.forward.then(|| UnixDatagram::unbound().ok()).flatten();
    let _ = sock.set_nonblocking(true);
    let mut buf = vec![0u8; 8192];
    let (mut tokens, mut last) = (RATE, Instant::now());
    let mut dropped: u64 = 0;
    let mut init_gone = false;
    loop {
        let mut fds = [
            PollFd::new(sock, PollFlags::IN),
            PollFd::new(&init, PollFlags::IN),
        ];
        let timeout = init_gone.then_some(rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        if !fds[1].revents().is_empty() {
            init_gone = true;
        }
        let mut got = false;
        while let Ok(n) = sock.recv(&mut buf) {
            got = true;
            let now = Instant::now();
            tokens = (tokens + now.duration_since(last).as_secs_f64() * RATE).min(RATE);
            last = now;
            if tokens < 1.0 {
                dropped += 1;
                continue;
            }
            tokens -= 1.0;
            if dropped > 0 {
                log.append(&entry(
                    id,
                    &format!("corral: dropped {dropped} messages (over {RATE} per second)"),
                ));
                dropped = 0;
            }
            let msg = String::from_utf8_lossy(&buf[..n]);
            let msg = msg.trim_end_matches(['\n', '\0']);
            log.append(&entry(id, msg));
            if let Some(f) = &forward {
                let _ = f.send_to(format!("corral/{id}: {msg}").as_bytes(), "/dev/log");
            }
        }
        if init_gone && !got {
            if dropped > 0 {
                log.append(&entry(
                    id,
                    &format!("corral: dropped {dropped} messages (over {RATE} per second)"),
                ));
            }
            return;
        }
    }
}

/// One stored message.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct Message {
    /// When it arrived, RFC 3339.
    pub time: String,
    /// The container.
    pub id: String,
    /// The message as the container sent it (syslog header included).
    pub msg: String,
}

/// Reads the stored messages of the container whose state dir is `dir`,
/// oldest first, those at or after `since` (RFC 3339) only.
pub fn read(dir: &Path, since: Option<&str>) -> Vec<(String, Message)> {
    let mut out = Vec::new();
    for name in [format!("{LOG}.1"), LOG.to_owned()] {
        let Ok(text) = std::fs::read_to_string(dir.join(&name)) else {
            continue;
        };
        for line in text.lines() {
            if let Ok(m) = serde_json::from_str::<Message>(line) {
                if since.is_none_or(|s| m.time.as_str() >= s) {
                    out.push((line.to_owned(), m));
                }
            }
        }
    }
    out
}

/// How long `--follow` waits between looks at the log.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_by_annotation_or_flag_with_settings() {
        let mut a = std::collections::HashMap::new();
        assert!(wanted(&a, false).is_none());
        assert_eq!(wanted(&a, true).unwrap().max_bytes, DEFAULT_MAX_BYTES);
        a.insert(ANNOTATION.to_owned(), "true".to_owned());
        a.insert(MAX_BYTES.to_owned(), "65536".to_owned());
        a.insert(FORWARD.to_owned(), "true".to_owned());
        let s = wanted(&a, false).unwrap();
        assert_eq!((s.max_bytes, s.forward), (65536, true));
    }

    #[test]
    fn the_log_rotates_within_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), 4096);
        for i in 0..200 {
            log.append(&entry("c", &format!("message number {i}")));
        }
        let main = std::fs::metadata(dir.path().join(LOG)).unwrap().len();
        let old = std::fs::metadata(dir.path().join("syslog.log.1"))
            .unwrap()
            .len();
        assert!(main <= 2048 && old <= 2048, "{main} {old}");
        let all = read(dir.path(), None);
        assert_eq!(all.last().unwrap().1.msg, "message number 199");
        assert!(all.windows(2).all(|w| w[0].1.time <= w[1].1.time));
        let since = all[all.len() - 3].1.time.clone();
        assert!(read(dir.path(), Some(&since)).len() >= 3);
    }
}
