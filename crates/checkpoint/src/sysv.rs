//! SysV IPC objects of an IPC namespace: shared memory segments, semaphore
//! sets and message queues, dumped to `sysv.json` (+ `sysv-shm.img`, the
//! segments' contents) and recreated, under the same ids, in another
//! (fresh) IPC namespace.
//!
//! Every call here acts on the namespace of the calling thread
//! (`/proc/sysvipc/*`, `/proc/sys/kernel/*`, the `*ctl` calls), so each
//! function runs its work on a thread of ours that joins the namespace
//! with `setns` and ends with it; the rest of the process stays where it
//! was.
//!
//! Dump: the namespace's limits (`shmmax`, `shmall`, `shmmni`,
//! `shm_rmid_forced`, `msgmax`, `msgmnb`, `msgmni`, `sem`); each segment's
//! key, id, owner, mode, size, `SHM_LOCKED`, whether it was removed
//! (`IPC_RMID`) while still attached, and its data: the segment is attached
//! read-only and only its data extents (`SEEK_DATA`/`SEEK_HOLE` on the
//! segment's file, reached through `/proc/self/map_files`) are read, pages
//! of zeroes skipped; each semaphore set's values (`GETALL`); each queue's
//! `msg_qbytes` and messages in order, copied with `MSG_COPY`, so the queue
//! keeps them.
//!
//! Restore: refused unless the target namespace is empty and not the
//! restorer's own (the `*_next_id` files written below are per namespace;
//! written in ours they would steer the host's next ids). The limits are
//! written first (`shm_rmid_forced` off until [`finish`]: else our own
//! detach would destroy the segments we make); then each object is made
//! after writing its id to
//! `/proc/sys/kernel/{shm,sem,msg}_next_id` (the kernel gives the next
//! object exactly that id, then forgets it), filled, and given its owner
//! and mode. A segment that was removed while attached is removed again
//! by [`finish`], once the restored tasks have attached it.
//!
//! Not restored: creators (`cuid`, `cgid`: the kernel sets them from the
//! creating thread), times, the pids of the last operations (`sempid`,
//! `shm_lpid`, `msg_lspid`…), semaphore undo lists (`SEM_UNDO`
//! adjustments of each process: the kernel shows them nowhere). Refused:
//! segments of huge pages (`SHM_HUGETLB`; made again they would not be).
//!
//! A task's attachment of a segment is a mapping of `/SYSV<key> (deleted)`
//! whose inode number is the shmid; the task image records it as
//! `Backing::Sysv` and the restore attaches the segment again with an
//! injected `shmat` (crate::restore).

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::image::{self, hex_decode, hex_encode, ImageError, Kind, PAGE_SIZE};
use crate::sys;

/// The objects' metadata in an image directory.
pub const SYSV_FILE: &str = "sysv.json";
/// The segments' data: page-aligned runs, no header.
pub const SYSV_DATA_FILE: &str = "sysv-shm.img";
/// The limits dumped and restored, all in /proc/sys/kernel.
const SYSCTLS: [&str; 8] = [
    "shmmax",
    "shmall",
    "shmmni",
    "shm_rmid_forced",
    "msgmax",
    "msgmnb",
    "msgmni",
    "sem",
];
/// `SHM_DEST` and `SHM_LOCKED` in a segment's mode.
const SHM_DEST: u16 = 0o1000;
const SHM_LOCKED: u16 = 0o2000;
/// Largest message text read (a queue's `msg_qbytes` bounds it too).
const MAX_MSG: u64 = 64 << 20;

/// A SysV dump or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum SysvError {
    /// A call on the namespace or its objects failed.
    #[error("{what}")]
    Io {
        /// What was attempted, on what.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The image file could not be read or written, or is inconsistent.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Something this version cannot do.
    #[error("{0}; not supported yet")]
    Unsupported(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SysvError {
    let what = what.into();
    move |source| SysvError::Io { what, source }
}

/// What `sysv.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysvImage {
    /// `[name, value]` of the namespace's limits in /proc/sys/kernel.
    pub sysctls: Vec<(String, String)>,
    /// Shared memory segments.
    pub shm: Vec<ShmImage>,
    /// Semaphore sets.
    pub sem: Vec<SemImage>,
    /// Message queues.
    pub msg: Vec<MsgImage>,
    /// Size of [`SYSV_DATA_FILE`].
    pub data_size: u64,
}

/// What every object has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpcObject {
    /// Key (0: `IPC_PRIVATE`).
    pub key: i32,
    /// Id in its namespace.
    pub id: i32,
    /// Owner.
    pub uid: u32,
    /// Owner's group.
    pub gid: u32,
    /// Creator (recorded, not restored).
    pub cuid: u32,
    /// Creator's group (recorded, not restored).
    pub cgid: u32,
    /// Permission bits (`0o777`).
    pub mode: u16,
}

/// A shared memory segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmImage {
    /// Key, id, owner, mode.
    #[serde(flatten)]
    pub obj: IpcObject,
    /// Size in bytes.
    pub size: u64,
    /// Removed (`IPC_RMID`) but still attached: removed again once the
    /// restored tasks attach it.
    pub removed: bool,
    /// `SHM_LOCK`ed.
    pub locked: bool,
    /// Its data: everything else reads as zeroes.
    pub runs: Vec<ShmRun>,
}

/// `len` bytes at `offset` in the segment, stored at `at` in
/// [`SYSV_DATA_FILE`] (all three page-aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmRun {
    /// Offset in the segment.
    pub offset: u64,
    /// Length.
    pub len: u64,
    /// Offset in the data file.
    pub at: u64,
}

/// A semaphore set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemImage {
    /// Key, id, owner, mode.
    #[serde(flatten)]
    pub obj: IpcObject,
    /// Each semaphore's value.
    pub values: Vec<u16>,
}

/// A message queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgImage {
    /// Key, id, owner, mode.
    #[serde(flatten)]
    pub obj: IpcObject,
    /// `msg_qbytes`.
    pub qbytes: u64,
    /// The queued messages, the oldest first.
    pub messages: Vec<Message>,
}

/// One queued message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `mtype` (positive).
    pub mtype: i64,
    /// The text, hex.
    pub text: String,
}

impl SysvImage {
    /// Whether it holds no object.
    pub fn is_empty(&self) -> bool {
        self.shm.is_empty() && self.sem.is_empty() && self.msg.is_empty()
    }

    /// Checks what serde cannot: known limit names, ids not repeated,
    /// runs aligned and inside their segment and the data file, message
    /// types positive and texts hex.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in &self.sysctls {
            if !SYSCTLS.contains(&name.as_str()) {
                return Err(format!("limit {name:?} is not one of {SYSCTLS:?}"));
            }
            if !value
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '\t')
            {
                return Err(format!("limit {name}: value {value:?} is not numbers"));
            }
        }
        let ids = |objs: &mut dyn Iterator<Item = &IpcObject>, kind: &str| {
            let mut seen = std::collections::HashSet::new();
            for o in objs {
                if o.id < 0 || !seen.insert(o.id) {
                    return Err(format!("{kind} id {}: negative or repeated", o.id));
                }
            }
            Ok(())
        };
        ids(&mut self.shm.iter().map(|s| &s.obj), "shm")?;
        ids(&mut self.sem.iter().map(|s| &s.obj), "sem")?;
        ids(&mut self.msg.iter().map(|s| &s.obj), "msg")?;
        for s in &self.shm {
            for r in &s.runs {
                let aligned = [r.offset, r.len, r.at].iter().all(|v| v % PAGE_SIZE == 0);
                let inside = r.len > 0
                    && r.offset
                        .checked_add(r.len)
                        .is_some_and(|e| e <= s.size.next_multiple_of(PAGE_SIZE))
                    && r.at.checked_add(r.len).is_some_and(|e| e <= self.data_size);
                if !aligned || !inside {
                    return Err(format!("shm id {}: run {r:?} malformed", s.obj.id));
                }
            }
        }
        for s in &self.sem {
            if s.values.is_empty() {
                return Err(format!("sem id {}: no semaphores", s.obj.id));
            }
        }
        for q in &self.msg {
            for m in &q.messages {
                if m.mtype <= 0 {
                    return Err(format!("msg id {}: message type {}", q.obj.id, m.mtype));
                }
                hex_decode(&m.text).map_err(|e| format!("msg id {}: {e}", q.obj.id))?;
            }
        }
        Ok(())
    }
}

/// Runs `f` on a thread that joined the IPC namespace `ns`.
fn in_ns<T: Send>(
    ns: BorrowedFd<'_>,
    f: impl FnOnce() -> Result<T, SysvError> + Send,
) -> Result<T, SysvError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                ns,
                Some(rustix::thread::LinkNameSpaceType::InterProcessCommunication),
            )
            .map_err(|e| io_err("join the IPC namespace (setns)")(e.into()))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(SysvError::Unsupported(
                "a panic while working in an IPC namespace".into(),
            ))
        })
    })
}

/// The ids listed in /proc/sysvipc/`file` (the caller's namespace).
fn ids_of(file: &str) -> Result<Vec<(String, i32)>, SysvError> {
    let path = format!("/proc/sysvipc/{file}");
    let text = fs::read_to_string(&path).map_err(io_err(format!("read {path}")))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let key = f.next()?.to_owned();
            Some((key, f.next()?.parse().ok()?))
        })
        .collect())
}

/// The objects of IPC namespace `ns`, named (`shared memory segment key
/// 0 id 3`), for refusals.
pub fn list(ns: BorrowedFd<'_>) -> Result<Vec<String>, SysvError> {
    in_ns(ns, || {
        let mut found = Vec::new();
        for (file, kind) in [
            ("shm", "shared memory segment"),
            ("sem", "semaphore set"),
            ("msg", "message queue"),
        ] {
            for (key, id) in ids_of(file)? {
                found.push(format!("{kind} key {key} id {id}"));
            }
        }
        Ok(found)
    })
}

fn object(id: i32, p: &sys::IpcPerm) -> IpcObject {
    IpcObject {
        key: p.key,
        id,
        uid: p.uid,
        gid: p.gid,
        cuid: p.cuid,
        cgid: p.cgid,
        mode: p.mode & 0o777,
    }
}

fn read_sysctl(name: &str) -> Result<String, SysvError> {
    let path = format!("/proc/sys/kernel/{name}");
    let v = fs::read_to_string(&path).map_err(io_err(format!("read {path}")))?;
    Ok(v.trim_end_matches('\n').to_owned())
}

/// Dumps every object of IPC namespace `ns` (and its limits) to `dir`:
/// [`SYSV_FILE`] and, if a segment has data, [`SYSV_DATA_FILE`]. The
/// objects should not change meanwhile (a frozen or seized container).
/// Returns what was written.
pub fn dump(ns: BorrowedFd<'_>, dir: &Path) -> Result<SysvImage, SysvError> {
    fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let data_path = dir.join(SYSV_DATA_FILE);
    let img = in_ns(ns, || {
        let mut img = SysvImage::default();
        for name in SYSCTLS {
            img.sysctls.push((name.to_owned(), read_sysctl(name)?));
        }
        let mut data: Option<fs::File> = None;
        for (_, id) in ids_of("shm")? {
            let (perm, size, _) =
                sys::shm_stat(id).map_err(io_err(format!("shmctl({id}, IPC_STAT)")))?;
            let mut shm = ShmImage {
                obj: object(id, &perm),
                size,
                removed: perm.mode & SHM_DEST != 0,
                locked: perm.mode & SHM_LOCKED != 0,
                runs: Vec::new(),
            };
            let out = match &mut data {
                Some(f) => f,
                None => data.insert(
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&data_path)
                        .map_err(io_err(format!("create {}", data_path.display())))?,
                ),
            };
            dump_shm_data(&mut shm, out, &mut img.data_size)?;
            img.shm.push(shm);
        }
        for (_, id) in ids_of("sem")? {
            let (perm, n) = sys::sem_stat(id).map_err(io_err(format!("semctl({id}, IPC_STAT)")))?;
            let values =
                sys::sem_getall(id, n as usize).map_err(io_err(format!("semctl({id}, GETALL)")))?;
            img.sem.push(SemImage {
                obj: object(id, &perm),
                values,
            });
        }
        let msgmax: u64 = read_sysctl("msgmax")?.parse().unwrap_or(MAX_MSG);
        for (_, id) in ids_of("msg")? {
            let (perm, qnum, qbytes) =
                sys::msg_stat(id).map_err(io_err(format!("msgctl({id}, IPC_STAT)")))?;
            let max = msgmax.max(qbytes).min(MAX_MSG) as usize;
            let messages = (0..qnum)
                .map(|i| {
                    let (mtype, text) = sys::msg_copy(id, i, max).map_err(|e| {
                        if e.raw_os_error() == Some(libc::EINVAL) {
                            // MSG_COPY copies at most msgmax bytes.
                            SysvError::Unsupported(format!(
                                "message {i} of message queue {id} longer than kernel.msgmax ({msgmax}), which MSG_COPY cannot read"
                            ))
                        } else {
                            io_err(format!("copy message {i} of queue {id} (msgrcv MSG_COPY)"))(e)
                        }
                    })?;
                    Ok(Message {
                        mtype,
                        text: hex_encode(&text),
                    })
                })
                .collect::<Result<_, SysvError>>()?;
            img.msg.push(MsgImage {
                obj: object(id, &perm),
                qbytes,
                messages,
            });
        }
        Ok(img)
    })?;
    image::write_file(dir, SYSV_FILE, &image::encode(Kind::Sysv, &img))?;
    Ok(img)
}

/// Attaches segment `shm` read-only and appends its data extents, zero
/// pages left out, to `out` from `*end` on.
fn dump_shm_data(shm: &mut ShmImage, out: &fs::File, end: &mut u64) -> Result<(), SysvError> {
    let id = shm.obj.id;
    let len = shm.size.next_multiple_of(PAGE_SIZE);
    let at = sys::ShmAttach::new(id, len, true)
        .map_err(io_err(format!("attach shared memory segment {id}")))?;
    if huge_pages(at.addr())? {
        // Made again, it would be of small pages.
        return Err(SysvError::Unsupported(format!(
            "shared memory segment {id} (key {:#x}) of huge pages (SHM_HUGETLB)",
            shm.obj.key
        )));
    }
    let bytes = at.bytes();
    for (start, stop) in data_extents(at.addr(), len) {
        let mut page = start;
        while page < stop {
            let zero = |p: u64| {
                bytes[p as usize..(p + PAGE_SIZE) as usize]
                    .iter()
                    .all(|&b| b == 0)
            };
            if zero(page) {
                page += PAGE_SIZE;
                continue;
            }
            let first = page;
            while page < stop && !zero(page) {
                page += PAGE_SIZE;
            }
            out.write_all_at(&bytes[first as usize..page as usize], *end)
                .map_err(io_err(format!("write {SYSV_DATA_FILE}")))?;
            shm.runs.push(ShmRun {
                offset: first,
                len: page - first,
                at: *end,
            });
            *end += page - first;
        }
    }
    Ok(())
}

/// Whether our mapping at `addr` is of huge pages (`ht` in smaps).
fn huge_pages(addr: u64) -> Result<bool, SysvError> {
    let path = "/proc/thread-self/smaps";
    let text = fs::read_to_string(path).map_err(io_err(format!("read {path}")))?;
    let maps = crate::proc::parse_smaps(&text)
        .map_err(|e| io_err(format!("parse {path}"))(io::Error::other(e)))?;
    Ok(maps
        .iter()
        .any(|m| m.start == addr && m.vm_flags.iter().any(|f| f == "ht")))
}

/// The page-aligned data extents of the segment attached at `addr` (`len`
/// bytes), by `SEEK_DATA`/`SEEK_HOLE` on its file; the whole segment if
/// the file cannot be asked.
fn data_extents(addr: u64, len: u64) -> Vec<(u64, u64)> {
    use rustix::fs::SeekFrom;
    let whole = vec![(0, len)];
    let path = format!("/proc/self/map_files/{addr:x}-{:x}", addr + len);
    let Ok(f) = fs::File::open(&path) else {
        return whole;
    };
    let mut extents = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let start = match rustix::fs::seek(&f, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return whole,
        };
        let Ok(stop) = rustix::fs::seek(&f, SeekFrom::Hole(start)) else {
            return whole;
        };
        let start = (start / PAGE_SIZE * PAGE_SIZE).min(len);
        let stop = stop.next_multiple_of(PAGE_SIZE).min(len);
        if start < stop {
            extents.push((start, stop));
        }
        pos = stop.max(pos + PAGE_SIZE);
    }
    extents
}

/// Reads and checks `dir`/[`SYSV_FILE`]; `None` if the image has none.
pub fn read(dir: &Path) -> Result<Option<SysvImage>, SysvError> {
    let path = dir.join(SYSV_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ImageError::Io {
                op: "read",
                path,
                source,
            }
            .into())
        }
    };
    let what = path.display().to_string();
    let img: SysvImage = image::decode(Kind::Sysv, &data, &what)?;
    img.validate()
        .map_err(|reason| ImageError::Invalid { what, reason })?;
    Ok(Some(img))
}

/// What [`restore`] leaves for [`finish`].
#[derive(Debug, Default)]
pub struct Pending {
    /// Segments to remove once attached.
    removed: Vec<i32>,
    /// `shm_rmid_forced` as dumped: written last (see [`restore`]).
    rmid_forced: Option<String>,
}

/// (device, inode) of an nsfs file.
fn ns_id(path: &str) -> Result<(u64, u64), SysvError> {
    let md = fs::metadata(path).map_err(io_err(format!("stat {path}")))?;
    Ok((md.dev(), md.ino()))
}

/// Recreates the objects of `img` (its data in `dir`) in IPC namespace
/// `ns`, which must be empty and not the caller's own, under their dumped
/// ids. The segments removed while attached exist until [`finish`].
pub fn restore(ns: BorrowedFd<'_>, dir: &Path, img: &SysvImage) -> Result<Pending, SysvError> {
    let md = rustix::fs::fstat(ns).map_err(|e| io_err("stat the IPC namespace")(e.into()))?;
    let target = (md.st_dev, md.st_ino);
    if ns_id("/proc/self/ns/ipc")? == target {
        return Err(SysvError::Unsupported(
            "recreating SysV IPC objects in the restorer's own IPC namespace".into(),
        ));
    }
    let data_path = dir.join(SYSV_DATA_FILE);
    let data = if img.data_size > 0 {
        let f =
            fs::File::open(&data_path).map_err(io_err(format!("open {}", data_path.display())))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < img.data_size {
            return Err(ImageError::Invalid {
                what: data_path.display().to_string(),
                reason: format!("{len} bytes, {SYSV_FILE} says {}", img.data_size),
            }
            .into());
        }
        Some(f)
    } else {
        None
    };
    in_ns(ns, || {
        // Every write below goes to the namespace of this thread: make
        // sure it is the target.
        if ns_id("/proc/thread-self/ns/ipc")? != target {
            return Err(SysvError::Unsupported(
                "a thread that did not end up in the target IPC namespace".into(),
            ));
        }
        if let Some(obj) = ["shm", "sem", "msg"]
            .iter()
            .map(|f| ids_of(f))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .next()
        {
            return Err(SysvError::Unsupported(format!(
                "restoring into an IPC namespace that already holds objects (key {} id {})",
                obj.0, obj.1
            )));
        }
        let mut pending = Pending::default();
        // With shm_rmid_forced set, a segment is destroyed as soon as no
        // one has it attached and its creator (our thread) is gone, or
        // when the limit is written (shm_destroy_orphaned): off until the
        // restored tasks attached theirs, whatever config.json set.
        write_sysctl("shm_rmid_forced", "0")?;
        // A queue's qbytes may exceed msgmnb (raised before the limit was
        // lowered; raising it past msgmnb takes CAP_SYS_RESOURCE, which we
        // may lack): msgmnb is raised as far as the queues need while they
        // are made, and set as dumped after. (No message is longer than
        // msgmax: the dump could not have read it.)
        let need = [(
            "msgmnb",
            img.msg.iter().map(|q| q.qbytes).max().unwrap_or(0),
        )];
        let mut after = Vec::new();
        for (name, value) in &img.sysctls {
            let raise = need.iter().find(|(n, _)| n == name).map(|&(_, v)| v);
            match (name.as_str(), raise, value.parse::<u64>()) {
                ("shm_rmid_forced", ..) => pending.rmid_forced = Some(value.clone()),
                (_, Some(need), Ok(v)) if need > v => {
                    write_sysctl(name, &need.to_string())?;
                    after.push((name, value));
                }
                _ => write_sysctl(name, value)?,
            }
        }
        for s in &img.shm {
            restore_shm(s, data.as_ref())?;
            if s.removed {
                pending.removed.push(s.obj.id);
            }
        }
        for s in &img.sem {
            let o = &s.obj;
            next_id("sem", o.id)?;
            let what = || format!("semaphore set {} (key {:#x})", o.id, o.key);
            let id = sys::sem_get(o.key, s.values.len() as i32, create_flags(o))
                .map_err(io_err(format!("create {}", what())))?;
            check_id(id, o.id, "sem", "semaphore set")?;
            sys::sem_setall(id, &s.values)
                .map_err(io_err(format!("set the values of {}", what())))?;
            sys::sem_set(id, o.uid, o.gid, o.mode)
                .map_err(io_err(format!("set the owner of {}", what())))?;
        }
        for q in &img.msg {
            let o = &q.obj;
            next_id("msg", o.id)?;
            let what = || format!("message queue {} (key {:#x})", o.id, o.key);
            let id = sys::msg_get(o.key, create_flags(o))
                .map_err(io_err(format!("create {}", what())))?;
            check_id(id, o.id, "msg", "message queue")?;
            sys::msg_set(id, o.uid, o.gid, o.mode, q.qbytes)
                .map_err(io_err(format!("set the owner and size of {}", what())))?;
            for (i, m) in q.messages.iter().enumerate() {
                let text = hex_decode(&m.text).map_err(|reason| ImageError::Invalid {
                    what: SYSV_FILE.into(),
                    reason,
                })?;
                sys::msg_send(id, m.mtype, &text)
                    .map_err(io_err(format!("queue message {i} on {}", what())))?;
            }
        }
        for (name, value) in after {
            write_sysctl(name, value)?;
        }
        Ok(pending)
    })
}

fn create_flags(o: &IpcObject) -> i32 {
    libc::IPC_CREAT | libc::IPC_EXCL | i32::from(o.mode & 0o777)
}

fn check_id(got: i32, want: i32, short: &str, kind: &str) -> Result<(), SysvError> {
    if got == want {
        return Ok(());
    }
    Err(SysvError::Unsupported(format!(
        "{kind} {want} was made with id {got} (is /proc/sys/kernel/{short}_next_id honoured?)"
    )))
}

/// Sets a limit of the calling thread's namespace (the caller checked
/// which that is), unless it has that value already: in an IPC namespace
/// owned by a user namespace (a container's with a user namespace), only
/// that namespace's root may write its limits (its `*_next_id` are open to
/// us), and the default limits need no write.
fn write_sysctl(name: &str, value: &str) -> Result<(), SysvError> {
    let path = format!("/proc/sys/kernel/{name}");
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    if !name.ends_with("_next_id")
        && fs::read_to_string(&path).is_ok_and(|now| words(&now) == words(value))
    {
        return Ok(());
    }
    fs::write(&path, value).map_err(io_err(format!("write {value:?} to {path}")))
}

/// Has the next object of `kind` get `id` (`/proc/sys/kernel/KIND_next_id`).
fn next_id(kind: &str, id: i32) -> Result<(), SysvError> {
    write_sysctl(&format!("{kind}_next_id"), &id.to_string())
}

fn restore_shm(s: &ShmImage, data: Option<&fs::File>) -> Result<(), SysvError> {
    let o = &s.obj;
    let what = || format!("shared memory segment {} (key {:#x})", o.id, o.key);
    next_id("shm", o.id)?;
    let id = sys::shm_get(o.key, s.size, create_flags(o))
        .map_err(io_err(format!("create {}", what())))?;
    check_id(id, o.id, "shm", "shared memory segment")?;
    if !s.runs.is_empty() {
        let data =
            data.ok_or_else(|| SysvError::Unsupported(format!("{}: no data file", what())))?;
        let len = s.size.next_multiple_of(PAGE_SIZE);
        let mut at =
            sys::ShmAttach::new(id, len, false).map_err(io_err(format!("attach {}", what())))?;
        let bytes = at.bytes_mut();
        for r in &s.runs {
            let dst = &mut bytes[r.offset as usize..(r.offset + r.len) as usize];
            data.read_exact_at(dst, r.at)
                .map_err(io_err(format!("read the data of {}", what())))?;
        }
    }
    sys::shm_set(id, o.uid, o.gid, o.mode)
        .map_err(io_err(format!("set the owner of {}", what())))?;
    if s.locked {
        sys::shm_lock(id).map_err(io_err(format!("SHM_LOCK {}", what())))?;
    }
    Ok(())
}

/// Removes (`IPC_RMID`) the segments that were removed while attached,
/// now that the restored tasks have attached them again, and sets
/// `shm_rmid_forced` as dumped (which destroys the segments nobody
/// attached, as the kernel does when it is set).
pub fn finish(ns: BorrowedFd<'_>, pending: &Pending) -> Result<(), SysvError> {
    if pending.removed.is_empty() && pending.rmid_forced.is_none() {
        return Ok(());
    }
    let md = rustix::fs::fstat(ns).map_err(|e| io_err("stat the IPC namespace")(e.into()))?;
    let target = (md.st_dev, md.st_ino);
    if ns_id("/proc/self/ns/ipc")? == target {
        return Err(SysvError::Unsupported(
            "finishing a SysV IPC restore in the restorer's own IPC namespace".into(),
        ));
    }
    in_ns(ns.as_fd(), || {
        if ns_id("/proc/thread-self/ns/ipc")? != target {
            return Err(SysvError::Unsupported(
                "a thread that did not end up in the target IPC namespace".into(),
            ));
        }
        for &id in &pending.removed {
            sys::shm_rmid(id).map_err(io_err(format!("remove shared memory segment {id}")))?;
        }
        if let Some(v) = &pending.rmid_forced {
            write_sysctl("shm_rmid_forced", v)?;
        }
        Ok(())
    })
}

/// Removes every object of IPC namespace `ns` (not the caller's own): a
/// failed restore's, or a test's.
pub fn remove_all(ns: BorrowedFd<'_>) -> Result<(), SysvError> {
    let md = rustix::fs::fstat(ns).map_err(|e| io_err("stat the IPC namespace")(e.into()))?;
    if ns_id("/proc/self/ns/ipc")? == (md.st_dev, md.st_ino) {
        return Err(SysvError::Unsupported(
            "removing every SysV IPC object of the caller's own IPC namespace".into(),
        ));
    }
    in_ns(ns, || {
        for (_, id) in ids_of("shm")? {
            sys::shm_rmid(id).map_err(io_err(format!("remove shared memory segment {id}")))?;
        }
        for (_, id) in ids_of("sem")? {
            sys::sem_rmid(id).map_err(io_err(format!("remove semaphore set {id}")))?;
        }
        for (_, id) in ids_of("msg")? {
            sys::msg_rmid(id).map_err(io_err(format!("remove message queue {id}")))?;
        }
        Ok(())
    })
}
