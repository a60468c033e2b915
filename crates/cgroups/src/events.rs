//! Notifications from the kernel about one cgroup: OOM kills, memory
//! pressure and PSI triggers, delivered by a [`Watcher`] that blocks in
//! `poll(2)` (no thread, no polling of counters).
//!
//! | event | cgroup v1 | cgroup v2 |
//! |---|---|---|
//! | [`Event::Oom`] | an eventfd on `memory.oom_control`, registered through `cgroup.event_control` | inotify (`IN_MODIFY`) on `memory.events`; an event when `oom_kill` grows |
//! | [`Event::MemoryPressure`] | an eventfd on `memory.pressure_level` with the level | a PSI trigger on `memory.pressure` (see [`PressureLevel::trigger`]) |
//! | [`Event::Psi`] | — (PSI is v2 only; on a hybrid host it works in the unified directory) | a trigger written to `*.pressure`, `POLLPRI` when it fires |
//! | [`Event::Removed`] | the kernel signals every eventfd of a removed cgroup | `POLLERR` on a trigger of a removed cgroup; else the 1 s liveness check of the iterator |
//!
//! Every fd is opened through the cgroup's directory fd; inotify, which only
//! takes paths, watches `/proc/self/fd/N` of the `memory.events` we opened,
//! so the watch is on exactly that file.

use std::{
    collections::VecDeque,
    io,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    time::Duration,
};

use rustix::{
    event::{EventfdFlags, PollFd, PollFlags, Timespec},
    fs::{inotify, OFlags},
};
use serde::{Deserialize, Serialize};

use crate::{
    cgroup::Cgroup,
    dir::CgroupDir,
    hybrid::{Controller, Place},
    psi::{PsiKind, PsiResource, PsiTrigger},
    Error,
};

/// Something the kernel reported about the cgroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The OOM killer acted in the cgroup. `oom_kills` is the kernel's
    /// count of kills so far (`oom_kill` in `memory.oom_control` or
    /// `memory.events`), where it has one.
    Oom {
        /// Kills so far.
        oom_kills: Option<u64>,
    },
    /// Memory pressure reached the level asked for.
    MemoryPressure {
        /// The level.
        level: PressureLevel,
    },
    /// A PSI trigger fired.
    Psi {
        /// The trigger.
        trigger: PsiTrigger,
    },
    /// The cgroup was removed; nothing follows.
    Removed,
}

/// v1's `memory.pressure_level` levels (cgroup-v1/memory.rst, section 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PressureLevel {
    /// Reclaiming memory at all (v2: some task stalled 100 ms in 2 s).
    Low,
    /// Reclaim is costly: swapping, dropping active caches (v2: some task
    /// stalled 300 ms in 2 s).
    Medium,
    /// About to OOM (v2: every task stalled 200 ms in 2 s).
    Critical,
}

impl PressureLevel {
    fn v1_name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::Critical => "critical",
        }
    }

    /// The PSI trigger that stands for this level on cgroup v2, which has no
    /// `memory.pressure_level`. The thresholds are ours: v2 has no levels.
    /// The 2 s window is one a process without `CAP_SYS_RESOURCE` may use.
    pub fn trigger(self) -> PsiTrigger {
        let (kind, stall_ms) = match self {
            Self::Low => (PsiKind::Some, 100),
            Self::Medium => (PsiKind::Some, 300),
            Self::Critical => (PsiKind::Full, 200),
        };
        PsiTrigger {
            resource: PsiResource::Memory,
            kind,
            stall: Duration::from_millis(stall_ms),
            window: Duration::from_secs(2),
        }
    }
}

/// What to watch. The default watches nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    /// OOM kills.
    pub oom: bool,
    /// Memory pressure at this level.
    pub memory_pressure: Option<PressureLevel>,
    /// PSI triggers (cgroup v2, or the unified directory of a hybrid host).
    pub psi: Vec<PsiTrigger>,
}

/// An eventfd, inotify or trigger fd could not be set up or waited on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} for cgroup {path}")]
pub struct WatchError {
    /// `linux.cgroupsPath` of the cgroup.
    pub path: String,
    /// What failed ("create an eventfd", "poll", ...).
    pub what: &'static str,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// What a ready fd means.
enum Kind {
    /// v1 eventfd on `memory.oom_control`.
    V1Oom,
    /// v1 eventfd on `memory.pressure_level`.
    V1Pressure(PressureLevel),
    /// inotify on v2 `memory.events`; the last `oom_kill` seen.
    V2MemoryEvents(u64),
    /// A PSI trigger, reported as this event.
    Trigger(Event),
}

struct Source {
    /// What we poll: the eventfd, the inotify fd or the trigger fd.
    fd: OwnedFd,
    /// The file the registration is about, kept open (the kernel drops a
    /// v1 registration when its file is closed; a trigger is `fd` itself).
    _file: Option<OwnedFd>,
    /// The directory, to read counters and to see the cgroup go.
    dir: CgroupDir,
    kind: Kind,
}

/// Kernel notifications of one cgroup; see the module doc. [`Watcher::wait`]
/// waits with a timeout; as an [`Iterator`] it blocks, and ends after
/// [`Event::Removed`]. Dropping it unregisters everything (closing the fds).
pub struct Watcher {
    path: String,
    sources: Vec<Source>,
    queue: VecDeque<Event>,
    closed: bool,
}

impl Cgroup {
    /// Starts watching what `w` asks for. Fails, naming the cgroup and the
    /// file, if a controller or file is missing (no memory controller, PSI
    /// without a unified hierarchy or with PSI disabled) or the kernel
    /// refuses a registration (a trigger with a window outside 0.5–10 s).
    pub fn watch(&self, w: &Watch) -> Result<Watcher, Error> {
        let mut sources = Vec::new();
        let mut triggers = w.psi.clone();
        if w.oom || w.memory_pressure.is_some() {
            let (place, dir) = self.memory_dir()?;
            match place {
                Place::V1(_) => {
                    if w.oom {
                        sources.push(self.v1_eventfd(&dir, "memory.oom_control", Kind::V1Oom)?);
                    }
                    if let Some(level) = w.memory_pressure {
                        let kind = Kind::V1Pressure(level);
                        sources.push(self.v1_eventfd(&dir, "memory.pressure_level", kind)?);
                    }
                }
                Place::Unified => {
                    if w.oom {
                        sources.push(self.v2_memory_events(&dir)?);
                    }
                    triggers.extend(w.memory_pressure.map(PressureLevel::trigger));
                }
            }
        }
        for t in triggers {
            let event = match w.memory_pressure {
                Some(level) if t == level.trigger() && !w.psi.contains(&t) => {
                    Event::MemoryPressure { level }
                }
                _ => Event::Psi { trigger: t },
            };
            sources.push(self.psi_trigger(t, event)?);
        }
        Ok(Watcher {
            path: self.path.clone(),
            sources,
            queue: VecDeque::new(),
            closed: false,
        })
    }

    fn memory_dir(&self) -> Result<(Place, CgroupDir), Error> {
        self.controller_dir(Controller::Memory, "OOM and memory pressure events")
    }

    fn watch_err(&self, what: &'static str) -> impl FnOnce(rustix::io::Errno) -> Error + '_ {
        move |e| {
            Error::Watch(WatchError {
                path: self.path.clone(),
                what,
                source: e.into(),
            })
        }
    }

    /// cgroup-v1/memory.rst: write "<eventfd> <fd of file> [args]" to
    /// `cgroup.event_control`.
    fn v1_eventfd(&self, dir: &CgroupDir, file: &str, kind: Kind) -> Result<Source, Error> {
        let flags = EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK;
        let efd = rustix::event::eventfd(0, flags).map_err(self.watch_err("create an eventfd"))?;
        let target = dir.open_file(file, OFlags::RDONLY)?;
        let mut line = format!("{} {}", efd.as_raw_fd(), target.as_raw_fd());
        if let Kind::V1Pressure(level) = kind {
            line.push(' ');
            line.push_str(level.v1_name());
        }
        dir.write("cgroup.event_control", &line)?;
        Ok(Source {
            fd: efd,
            _file: Some(target),
            dir: CgroupDir::open(dir.path())?,
            kind,
        })
    }

    fn v2_memory_events(&self, dir: &CgroupDir) -> Result<Source, Error> {
        let flags = inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK;
        let ino = inotify::init(flags).map_err(self.watch_err("create an inotify instance"))?;
        let file = dir.open_file("memory.events", OFlags::RDONLY)?;
        let magic = format!("/proc/self/fd/{}", file.as_raw_fd());
        inotify::add_watch(&ino, magic.as_str(), inotify::WatchFlags::MODIFY)
            .map_err(self.watch_err("watch memory.events with inotify"))?;
        // Read after the watch is in place, so no kill falls in between.
        let seen = oom_kill_count(dir, "memory.events")?.unwrap_or(0);
        Ok(Source {
            fd: ino,
            _file: Some(file),
            dir: CgroupDir::open(dir.path())?,
            kind: Kind::V2MemoryEvents(seen),
        })
    }

    fn psi_trigger(&self, t: PsiTrigger, event: Event) -> Result<Source, Error> {
        let u = self.unified.as_ref().ok_or(Error::Unsupported {
            resource: "PSI triggers (no unified hierarchy)",
            version: "v1",
        })?;
        let dir = CgroupDir::open(&u.path())?;
        let file = t.resource.file();
        let fd = dir.open_file(file, OFlags::RDWR | OFlags::NONBLOCK)?;
        dir.write_fd(&fd, file, &t.line())?;
        Ok(Source {
            fd,
            _file: None,
            dir,
            kind: Kind::Trigger(event),
        })
    }
}

/// `oom_kill N` of a v1 `memory.oom_control` or v2 `memory.events`.
fn oom_kill_count(dir: &CgroupDir, file: &str) -> Result<Option<u64>, Error> {
    let text = dir.read(file)?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok()))
}

/// How often the iterator checks that the cgroup still exists, for sources
/// the kernel does not wake on removal (inotify on `memory.events`).
const LIVENESS: Duration = Duration::from_secs(1);

impl Watcher {
    /// The next event, waiting at most `timeout` (`None`: forever); `None`
    /// when nothing came in time (possibly early: a wake-up that carried no
    /// event, such as a `memory.events` change other than a kill, or a
    /// signal), or once the watcher is closed.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, Error> {
        if let Some(e) = self.queue.pop_front() {
            return Ok(Some(e));
        }
        if self.closed || self.sources.is_empty() {
            if let Some(t) = timeout.filter(|_| !self.closed) {
                std::thread::sleep(t); // nothing to wait for, as asked
            }
            return Ok(None);
        }
        let ready = self.poll(timeout)?;
        for (i, revents) in ready {
            self.handle(i, revents)?;
            if self.closed {
                break;
            }
        }
        Ok(self.queue.pop_front())
    }

    /// Whether [`Event::Removed`] was delivered (or is queued).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// `poll(2)` on every source: the ready ones with their `revents`.
    fn poll(&self, timeout: Option<Duration>) -> Result<Vec<(usize, PollFlags)>, Error> {
        let mut fds: Vec<PollFd<'_>> = self
            .sources
            .iter()
            .map(|s| {
                let want = match s.kind {
                    Kind::Trigger(_) => PollFlags::PRI,
                    _ => PollFlags::IN,
                };
                PollFd::new(&s.fd, want)
            })
            .collect();
        let ts = timeout.map(|t| Timespec {
            tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) => {}
            // A signal: report nothing yet rather than wait too long.
            Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::Watch(WatchError {
                    path: self.path.clone(),
                    what: "poll the event sources",
                    source: e.into(),
                }))
            }
        }
        Ok(fds
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.revents().is_empty())
            .map(|(i, f)| (i, f.revents()))
            .collect())
    }

    fn handle(&mut self, i: usize, revents: PollFlags) -> Result<(), Error> {
        // A removed cgroup: the kernel signals v1 eventfds and makes trigger
        // fds report POLLERR; its files are gone from our directory fd.
        if self
            .sources
            .get(i)
            .is_some_and(|s| !s.dir.has("cgroup.procs"))
        {
            self.close();
            return Ok(());
        }
        let Some(s) = self.sources.get_mut(i) else {
            return Ok(());
        };
        match &mut s.kind {
            Kind::V1Oom => {
                drain(&s.fd);
                let kills = oom_kill_count(&s.dir, "memory.oom_control")?;
                self.queue.push_back(Event::Oom { oom_kills: kills });
            }
            Kind::V1Pressure(level) => {
                drain(&s.fd);
                let level = *level;
                self.queue.push_back(Event::MemoryPressure { level });
            }
            Kind::V2MemoryEvents(seen) => {
                drain(&s.fd);
                let now = oom_kill_count(&s.dir, "memory.events")?.unwrap_or(0);
                if now > *seen {
                    *seen = now;
                    self.queue.push_back(Event::Oom {
                        oom_kills: Some(now),
                    });
                }
            }
            Kind::Trigger(event) => {
                if revents.contains(PollFlags::ERR) {
                    // The trigger is gone but the cgroup is not: no more
                    // events from it; drop it instead of spinning.
                    tracing::warn!(path = %self.path, "a PSI trigger reported an error; dropped");
                    self.sources.remove(i);
                    return Ok(());
                }
                self.queue.push_back(event.clone());
            }
        }
        Ok(())
    }

    fn close(&mut self) {
        self.sources.clear();
        self.queue.push_back(Event::Removed);
        self.closed = true;
    }

    /// Whether the cgroup's directory still exists (checked through the
    /// first source's directory fd).
    fn cgroup_exists(&self) -> bool {
        self.sources
            .first()
            .is_none_or(|s| s.dir.has("cgroup.procs"))
    }
}

/// Empties an eventfd (one 8-byte counter) or an inotify fd (a queue of
/// events); both are non-blocking, so this stops at `EAGAIN`.
fn drain(fd: impl AsFd) {
    let mut buf = [0u8; 4096];
    while matches!(rustix::io::read(&fd, &mut buf), Ok(n) if n > 0) {}
}

impl Iterator for Watcher {
    type Item = Result<Event, Error>;

    /// Blocks until the next event; ends after [`Event::Removed`]. Checks
    /// every second that the cgroup still exists.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.closed && self.queue.is_empty() {
                return None;
            }
            if self.sources.is_empty() && self.queue.is_empty() {
                return None; // watching nothing
            }
            match self.wait(Some(LIVENESS)) {
                Ok(Some(e)) => return Some(Ok(e)),
                Ok(None) if !self.cgroup_exists() => self.close(),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_maps_to_a_trigger_the_kernel_takes() {
        for level in [
            PressureLevel::Low,
            PressureLevel::Medium,
            PressureLevel::Critical,
        ] {
            let t = level.trigger();
            assert!(t.is_valid_unprivileged(), "{level:?}: {}", t.line());
            assert_eq!(t.resource, PsiResource::Memory);
        }
        assert_eq!(
            PressureLevel::Medium.trigger().line(),
            "some 300000 2000000"
        );
    }

    #[test]
    fn events_serialize_with_a_type_tag() {
        let e = Event::Oom { oom_kills: Some(2) };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"oom","oom_kills":2}"#
        );
        let back: Event = serde_json::from_str(r#"{"type":"removed"}"#).unwrap();
        assert_eq!(back, Event::Removed);
    }

    #[test]
    fn a_watcher_of_nothing_ends_at_once() {
        let mut w = Watcher {
            path: "/x".into(),
            sources: Vec::new(),
            queue: VecDeque::new(),
            closed: false,
        };
        assert!(w.next().is_none());
        assert!(w.wait(Some(Duration::ZERO)).unwrap().is_none());
    }
}
