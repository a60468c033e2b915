//! Freezing, signalling and removal: the verbs that wait on the kernel. Each
//! wait is a loop of short sleeps (1 ms, doubling, capped) under a deadline.

use std::{
    path::Path,
    thread::sleep,
    time::{Duration, Instant},
};

use crate::{
    cgroup::Cgroup,
    dir::{CgroupDir, FileError},
    hybrid::{Controller, Place},
    sys, v1, v2, Error,
};

/// How long `freeze` waits for the kernel to freeze every task.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `destroy` waits for killed tasks to leave.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest single sleep of a wait loop.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Sleeps of 1 ms, doubling up to [`MAX_SLEEP`], until a deadline.
struct Backoff {
    start: Instant,
    limit: Duration,
    next: Duration,
}

impl Backoff {
    fn new(limit: Duration) -> Self {
        Self {
            start: Instant::now(),
            limit,
            next: Duration::from_millis(1),
        }
    }

    /// Sleeps once; false (without sleeping) once the deadline has passed.
    fn wait(&mut self) -> bool {
        let left = self.limit.saturating_sub(self.start.elapsed());
        if left.is_zero() {
            return false;
        }
        sleep(self.next.min(left));
        self.next = (self.next * 2).min(MAX_SLEEP);
        true
    }

    fn waited_ms(&self) -> u128 {
        self.start.elapsed().as_millis()
    }
}

impl Cgroup {
    /// Where `controller` lives for this cgroup and its directory there;
    /// `None` when no hierarchy of this cgroup has it.
    pub(crate) fn located_dir(
        &self,
        controller: Controller,
    ) -> Result<Option<(Place, CgroupDir)>, Error> {
        let Some(place) = self.locate(controller) else {
            return Ok(None);
        };
        let path = match place {
            Place::V1(i) => self.v1.get(i).map(|d| d.path()),
            Place::Unified => self.unified.as_ref().map(|u| u.path()),
        };
        match path {
            Some(p) => Ok(Some((place, CgroupDir::open(&p)?))),
            None => Ok(None),
        }
    }

    /// As [`Cgroup::located_dir`]; `ControllerUnavailable` naming
    /// `resource` when no hierarchy has the controller.
    pub(crate) fn controller_dir(
        &self,
        controller: Controller,
        resource: &'static str,
    ) -> Result<(Place, CgroupDir), Error> {
        self.located_dir(controller)?
            .ok_or_else(|| Error::ControllerUnavailable {
                resource,
                controller,
                path: self.path.clone(),
            })
    }

    fn freezer(&self) -> Result<(Place, CgroupDir), Error> {
        self.controller_dir(Controller::Freezer, "freezing")
    }

    /// Freezes every task and waits (at most 5 s) until the kernel reports
    /// the cgroup frozen; on timeout it thaws again and fails.
    pub fn freeze(&self) -> Result<(), Error> {
        let (place, dir) = self.freezer()?;
        request(place, &dir, true)?;
        let mut backoff = Backoff::new(FREEZE_TIMEOUT);
        while !state_is(place, &dir, true)? {
            if !backoff.wait() {
                let _ = request(place, &dir, false);
                return Err(Error::FreezeTimeout {
                    path: dir.path().to_owned(),
                    want: "frozen",
                    waited_ms: backoff.waited_ms(),
                });
            }
            if place != Place::Unified {
                // A v1 freezer can stall in FREEZING; asking again retries
                // the tasks that were in the middle of something.
                request(place, &dir, true)?;
            }
        }
        Ok(())
    }

    /// Thaws the cgroup and waits (bounded) until the kernel says so.
    pub fn thaw(&self) -> Result<(), Error> {
        let (place, dir) = self.freezer()?;
        request(place, &dir, false)?;
        let mut backoff = Backoff::new(FREEZE_TIMEOUT);
        while !state_is(place, &dir, false)? {
            if !backoff.wait() {
                return Err(Error::FreezeTimeout {
                    path: dir.path().to_owned(),
                    want: "thawed",
                    waited_ms: backoff.waited_ms(),
                });
            }
        }
        Ok(())
    }

    /// Whether the kernel reports the cgroup frozen (a v1 cgroup still
    /// FREEZING is not).
    pub fn is_frozen(&self) -> Result<bool, Error> {
        let (place, dir) = self.freezer()?;
        state_is(place, &dir, true)
    }

    /// Sends `signal` to every process of the cgroup. SIGKILL goes through
    /// `cgroup.kill` where the kernel has it (5.14+), which also reaches
    /// processes forked meanwhile; other signals, and SIGKILL elsewhere, go
    /// to each pid read from `cgroup.procs`. Processes gone meanwhile are fine.
    pub fn kill_all(&self, signal: i32) -> Result<(), Error> {
        let mut killed_in_kernel = false;
        if signal == libc::SIGKILL {
            killed_in_kernel = self.cgroup_kill()?;
        }
        let pids = if killed_in_kernel {
            // On hybrid hosts a task could be in v1 only: catch it too.
            let mut v1 = Vec::new();
            for d in &self.v1 {
                v1.extend(procs_or_empty(&d.path())?);
            }
            v1
        } else {
            self.pids()?
        };
        signal_each(&pids, signal)
    }

    /// Writes `cgroup.kill`; false where it or the directory does not exist.
    fn cgroup_kill(&self) -> Result<bool, Error> {
        let Some(u) = &self.unified else {
            return Ok(false);
        };
        match CgroupDir::open(&u.path()).and_then(|d| d.write("cgroup.kill", "1")) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Kills everything in the cgroup, waits until it has left, and removes
    /// the directories, child cgroups first, in every hierarchy. Absent
    /// directories are fine. Gives up after 10 s with an error naming the
    /// directory and the pids still in it.
    pub fn destroy(&self) -> Result<(), Error> {
        if self.cgroup_kill()? {
            // cgroup.kill cannot wake tasks a v1 freezer holds: SIGKILL
            // reaches them only once thawed.
            if let Some(Place::V1(i)) = self.locate(Controller::Freezer) {
                let path = self
                    .v1
                    .get(i)
                    .map(|d| d.path())
                    .expect("locate returns an index of v1");
                match CgroupDir::open(&path).and_then(|d| v1::freezer::request(&d, false)) {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        } else {
            self.kill_frozen()?;
        }
        // Killed tasks take a moment to leave; rmdir's EBUSY is the wait.
        let mut backoff = Backoff::new(DESTROY_TIMEOUT);
        for path in self.paths() {
            remove_dir(&path, &mut backoff)?;
        }
        tracing::debug!(path = %self.path, "cgroup removed");
        Ok(())
    }

    /// Without `cgroup.kill`: freeze, SIGKILL every pid, thaw, so no task
    /// forks a new one between our reading `cgroup.procs` and the kill.
    fn kill_frozen(&self) -> Result<(), Error> {
        let pids = self.pids()?;
        if pids.is_empty() {
            return Ok(());
        }
        let frozen = match self.freeze() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(path = %self.path, error = %e, "cannot freeze before killing; killing unfrozen");
                false
            }
        };
        // Pids read while frozen are complete.
        let pids = if frozen { self.pids()? } else { pids };
        signal_each(&pids, libc::SIGKILL)?;
        if frozen {
            // SIGKILL is delivered to frozen tasks only once they thaw.
            self.thaw()?;
        }
        Ok(())
    }
}

fn request(place: Place, dir: &CgroupDir, frozen: bool) -> Result<(), FileError> {
    match place {
        Place::V1(_) => v1::freezer::request(dir, frozen),
        Place::Unified => v2::freezer::request(dir, frozen),
    }
}

fn state_is(place: Place, dir: &CgroupDir, frozen: bool) -> Result<bool, Error> {
    Ok(match (place, frozen) {
        (Place::V1(_), true) => v1::freezer::is_frozen(dir)?,
        (Place::V1(_), false) => v1::freezer::is_thawed(dir)?,
        (Place::Unified, want) => v2::freezer::is_frozen(dir)? == want,
    })
}

fn procs_or_empty(path: &Path) -> Result<Vec<i32>, Error> {
    match CgroupDir::open(path).and_then(|d| d.procs()) {
        Ok(p) => Ok(p),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

fn signal_each(pids: &[i32], signal: i32) -> Result<(), Error> {
    for &pid in pids {
        match sys::kill(pid, signal) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(source) => {
                return Err(Error::Signal {
                    pid,
                    signal,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Removes the cgroup at `path` and every cgroup below it.
fn remove_dir(path: &Path, backoff: &mut Backoff) -> Result<(), Error> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Ok(());
    };
    match CgroupDir::open(parent) {
        Ok(parent) => remove_child(&parent, name, backoff),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `rmdir` of `parent/name`, leaf first. The fast path is one `rmdir`; only
/// when the kernel says EBUSY do we look inside: child cgroups are removed
/// first, tasks still there get SIGKILL, and we retry after a short sleep.
fn remove_child(parent: &CgroupDir, name: &str, backoff: &mut Backoff) -> Result<(), Error> {
    loop {
        let err = match parent.rmdir_child(name) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => e,
            Err(source) => {
                return Err(FileError::Rmdir {
                    path: parent.path().join(name),
                    source,
                }
                .into())
            }
        };
        let dir = match parent.open_child(name) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let children = dir.children()?;
        for child in &children {
            remove_child(&dir, child, backoff)?;
        }
        if !children.is_empty() {
            continue; // maybe only the children were in the way
        }
        let pids = dir.procs().unwrap_or_default();
        signal_each(&pids, libc::SIGKILL)?;
        if !backoff.wait() {
            return Err(Error::Busy {
                path: dir.path().to_owned(),
                pids: dir.procs().unwrap_or(pids),
                source: err,
            });
        }
    }
}
