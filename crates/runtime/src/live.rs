//! Operations on a live container's cgroup: pause, resume, update, the
//! pids behind `ps`, and the stats behind `events`.

use corral_cgroups::{Watch, Watcher};
use oci_spec::runtime::LinuxResources;
use serde::Serialize;

use crate::container::{status_of, Error};
use crate::state::{Status, Store};

/// `corral pause`: freezes every process of the container.
pub fn pause(store: &Store, id: &str) -> Result<(), Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    let status = status_of(&dir, &st);
    if status != Status::Running && status != Status::Created {
        return Err(Error::Status {
            id: id.into(),
            status,
            what: "only a running container can be paused",
        });
    }
    let cg = st
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Unsupported(format!("container {id:?} has no cgroup to freeze")))?;
    cg.freeze()?;
    tracing::info!(container_id = %id, "paused");
    Ok(())
}

/// `corral resume`: thaws a paused container.
pub fn resume(store: &Store, id: &str) -> Result<(), Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    let status = status_of(&dir, &st);
    if status != Status::Paused {
        return Err(Error::Status {
            id: id.into(),
            status,
            what: "only a paused container can be resumed",
        });
    }
    let cg = st
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Unsupported(format!("container {id:?} has no cgroup")))?;
    cg.thaw()?;
    tracing::info!(container_id = %id, "resumed");
    Ok(())
}

/// `corral update`: applies `resources` to the container's cgroup and
/// records them in its state, so a later `state`/`events` reflects them.
pub fn update(store: &Store, id: &str, resources: &LinuxResources) -> Result<(), Error> {
    let dir = store.open(id)?;
    let mut st = dir.load()?;
    let status = status_of(&dir, &st);
    if status == Status::Stopped {
        return Err(Error::Status {
            id: id.into(),
            status,
            what: "cannot update a stopped container",
        });
    }
    let cg = st
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Unsupported(format!("container {id:?} has no cgroup")))?;
    cg.apply(resources)?;
    if let Some(linux) = st.config.linux_mut() {
        let merged = merge(linux.resources().clone().unwrap_or_default(), resources);
        linux.set_resources(Some(merged));
    }
    dir.save(&st)?;
    tracing::info!(container_id = %id, "updated");
    Ok(())
}

/// `old` with every field `new` sets replaced.
fn merge(mut old: LinuxResources, new: &LinuxResources) -> LinuxResources {
    if new.memory().is_some() {
        old.set_memory(*new.memory());
    }
    if new.cpu().is_some() {
        old.set_cpu(new.cpu().clone());
    }
    if new.pids().is_some() {
        old.set_pids(*new.pids());
    }
    if new.block_io().is_some() {
        old.set_block_io(new.block_io().clone());
    }
    if new.hugepage_limits().is_some() {
        old.set_hugepage_limits(new.hugepage_limits().clone());
    }
    if new.unified().is_some() {
        old.set_unified(new.unified().clone());
    }
    old
}

/// The pids of every process of the container (for `ps`).
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>, Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    drop(dir);
    match &st.cgroup {
        Some(cg) => Ok(cg.pids()?),
        None => Ok(vec![st.pid]),
    }
}

/// One `events` entry, as runc prints it.
#[derive(Debug, Serialize)]
pub struct Event {
    /// `stats`, `oom`, …
    #[serde(rename = "type")]
    pub typ: &'static str,
    /// The container.
    pub id: String,
    /// The payload.
    pub data: serde_json::Value,
}

/// A stats event of the container, in runc's `events --stats` shape.
pub fn stats(store: &Store, id: &str) -> Result<Event, Error> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    let status = status_of(&dir, &st);
    drop(dir);
    if status == Status::Stopped {
        return Err(Error::Status {
            id: id.into(),
            status,
            what: "no stats for a container that is not running",
        });
    }
    let cg = st
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Unsupported(format!("container {id:?} has no cgroup")))?;
    // runc's shape: cpu usage and throttling, memory with memory.stat,
    // pids, blkio, hugetlb, and PSI where there is a unified directory.
    let data = serde_json::to_value(cg.metrics()?).unwrap_or(serde_json::Value::Null);
    Ok(Event {
        typ: "stats",
        id: id.to_owned(),
        data,
    })
}

/// A watcher of the container's OOM kills (for `oom` events): the kernel
/// wakes it (v1 eventfd, v2 inotify on `memory.events`), nothing polls
/// counters. `None` when the container has no cgroup or no memory
/// controller.
pub fn oom_watcher(store: &Store, id: &str) -> Result<Option<Watcher>, Error> {
    let st = crate::container::state_file(store, id)?;
    let Some(cg) = &st.cgroup else {
        return Ok(None);
    };
    let watch = Watch {
        oom: true,
        ..Watch::default()
    };
    match cg.watch(&watch) {
        Ok(w) => Ok(Some(w)),
        Err(corral_cgroups::Error::ControllerUnavailable { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether the container still runs (for the `events` stream).
pub fn is_running(store: &Store, id: &str) -> bool {
    let Ok(dir) = store.open(id) else {
        return false;
    };
    dir.load()
        .is_ok_and(|st| status_of(&dir, &st) != Status::Stopped)
}
