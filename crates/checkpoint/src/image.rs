//! The image format: what a dump writes and a restore reads.
//!
//! An image is a directory (docs/image-format.md is the full description):
//!
//! ```text
//! DIR/
//!   inventory.json     header line + JSON: format version, kernel release, root pid, task list
//!   task-<pid>.json    header line + JSON: one task (threads, memory map, signals, fds, …)
//!   pages-<pid>.img    that task's page contents, runs of whole 4 KiB pages, page aligned
//! ```
//!
//! Every metadata file starts with one ASCII header line,
//!
//! ```text
//! corral-image <kind> v<version> crc32=<8 hex digits> len=<bytes>\n
//! ```
//!
//! followed by exactly `len` bytes of JSON whose CRC-32 (IEEE) is `crc32`.
//! `kind` is `inventory` or `task`. A reader accepts only [`FORMAT_VERSION`];
//! any other version is refused with an error naming it (there is no older
//! version yet; when one exists, it is converted or refused by name here).
//! The page file has no header: the task file says which runs of pages it
//! holds and where, and its total size, so a restore can `mmap` it whole.
//!
//! The reader is exposed to images from anywhere (a copied directory, a
//! migration peer), so it never panics and checks every offset against the
//! page file size ([`TaskImage::validate`]); [`fuzz_image`] is its fuzz entry.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::fd_image::*;

/// The one image format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Page size of every page run; x86_64 only for now.
pub const PAGE_SIZE: u64 = 4096;
/// Name of the inventory file in an image directory.
pub const INVENTORY_FILE: &str = "inventory.json";
const MAGIC: &str = "corral-image";
/// Longest header line accepted; real ones are under 80 bytes.
const MAX_HEADER: usize = 128;
/// Largest metadata body accepted (64 MiB): bounds what a hostile image can
/// make us allocate before the checksum is even checked.
const MAX_BODY: usize = 64 << 20;

/// Reading or writing an image failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file of the image could not be read or written.
    #[error("{op} {}", path.display())]
    Io {
        /// What was done: "read", "write", "create".
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The header line is missing or malformed.
    #[error("bad header in {what}: {reason}")]
    Header {
        /// Which file (or "input").
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image was written in a format version this build does not read.
    #[error("{what}: image format version {found} is not supported (this corral reads version {FORMAT_VERSION})")]
    Version {
        /// Which file.
        what: String,
        /// The version it declares.
        found: u32,
    },
    /// The body does not match its checksum or length.
    #[error("{what}: checksum mismatch (header says {expected:08x}, body has {actual:08x})")]
    Checksum {
        /// Which file.
        what: String,
        /// From the header.
        expected: u32,
        /// Computed.
        actual: u32,
    },
    /// The body is not the JSON the kind requires.
    #[error("{what}: cannot decode")]
    Decode {
        /// Which file.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The metadata decodes but contradicts itself or the page file.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which file.
        what: String,
        /// What is inconsistent.
        reason: String,
    },
}

/// Which metadata file a header belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `inventory.json`.
    Inventory,
    /// `task-<pid>.json`.
    Task,
    /// `sysv.json` ([`crate::sysv`]).
    Sysv,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Inventory => "inventory",
            Kind::Task => "task",
            Kind::Sysv => "sysv",
        }
    }
}

/// The image as a whole: what was dumped, from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Kernel release (`uname -r`) of the dumping machine.
    pub kernel_release: String,
    /// Version of the corral that wrote the image.
    pub corral_version: String,
    /// Pid of the root of the dumped tree.
    pub root_pid: i32,
    /// Every task of the image (its `task-<pid>.json`).
    pub tasks: Vec<i32>,
    /// Every process of the tree, the root first, each after its parent:
    /// ids, and the wait status of zombies (which have no task file).
    /// Absent in older images, which hold one process.
    #[serde(default)]
    pub tree: Vec<ProcEntry>,
    /// Groups of fds, in one task or several, that share one open file
    /// description (a dup, a fork): restored as one, so the offset stays
    /// shared. Only groups of two or more. Absent in older images.
    #[serde(default)]
    pub shared_fds: Vec<Vec<TaskFd>>,
    /// The tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME at the dump, when it
    /// had a time namespace other than the dumper's: the restore makes one
    /// in which they go on from there ([`crate::timens`]). Absent (`None`)
    /// in older images and for a tree in the dumper's namespace, restored
    /// into the restorer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ns: Option<crate::timens::TimeNsClocks>,
    /// The container's console (a pty the runtime made), when the root's
    /// fds held it ([`FdKind::Console`]): its settings, put on the pty
    /// the restoring runtime makes. Absent in older images and without a
    /// console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleImage>,
    /// The tree had a pid namespace of its own, the root its pid 1: every
    /// pid of the image is that namespace's, and a restore makes a new
    /// one. Absent (false) in older images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pid_ns: bool,
    /// With `pid_ns`: the root had a mount namespace of its own, the
    /// dumper's but for /proc; a restore makes a private copy of its own
    /// with a procfs of the new pid namespace on /proc. Absent (false) in
    /// older images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mount_ns: bool,
    /// Fds 0-2 of processes other than the root that were the root's own
    /// fd of the same number (one open file description), left out of the
    /// image like the root's stdio when the restoring runtime gives its
    /// own: each such process keeps the one it inherits. Absent (empty)
    /// in older images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherited_stdio: Vec<TaskFd>,
}

/// A container's console as the dump found it: the terminal's settings
/// (not tied to any open file) and its place in the root's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleImage {
    /// `c_iflag` of termios.
    pub iflag: u32,
    /// `c_oflag`.
    pub oflag: u32,
    /// `c_cflag`.
    pub cflag: u32,
    /// `c_lflag`.
    pub lflag: u32,
    /// `c_line`, the line discipline.
    pub line: u8,
    /// Special characters by name (`VINTR`, `VMIN`, …).
    pub cc: std::collections::BTreeMap<String, u8>,
    /// Input speed (baud).
    pub ispeed: u32,
    /// Output speed (baud).
    pub ospeed: u32,
    /// Window size: rows, columns, width and height in pixels.
    pub winsize: [u16; 4],
    /// It was the controlling terminal of the root's session (the root
    /// leading it, its group in the foreground).
    pub controlling: bool,
}

/// One process of the dumped tree, with its ids as the dumper saw them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcEntry {
    /// Pid.
    pub pid: i32,
    /// Parent pid; the root's parent is outside the tree.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// For a zombie (exited, not reaped), its wait status as `waitpid`
    /// gives it (`code << 8`, or the signal number); `None` for a live one.
    #[serde(default)]
    pub zombie: Option<i32>,
    /// The signal its parent gets when it ends, when not `SIGCHLD` (a
    /// `clone` with another exit signal, or 0 for none). Absent in older
    /// images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i32>,
}

/// An fd number in one task's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskFd {
    /// The task.
    pub pid: i32,
    /// The fd.
    pub fd: i32,
}

/// One process (thread group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskImage {
    /// Its pid (and thread group id).
    pub pid: i32,
    /// `comm`, at most 15 bytes.
    pub comm: String,
    /// The executable (`/proc/PID/exe`).
    pub exe: FileId,
    /// Working directory.
    pub cwd: String,
    /// Threads; the first is the thread group leader.
    pub threads: Vec<ThreadImage>,
    /// Address-space fields restored with `PR_SET_MM_MAP`.
    pub mm: MmFields,
    /// Memory map in address order.
    pub vmas: Vec<Vma>,
    /// Signal dispositions other than the default (signal numbers 1..=64).
    pub sigactions: Vec<SigAction>,
    /// Open file descriptors.
    pub fds: Vec<FdImage>,
    /// Name of the page data file inside the image directory.
    pub pages_file: String,
    /// Its size in bytes (a multiple of [`PAGE_SIZE`]).
    pub pages_size: u64,
    /// Kernel state of the process ([`crate::state`]). Absent in older
    /// images: nothing of it is restored then.
    #[serde(default)]
    pub state: crate::state::ProcState,
}

/// A file named by path and identified by device and inode, so a restore can
/// tell that the path still names the file that was dumped; or, when the
/// restore finds another inode there (a container restored on a fresh copy
/// of its image: containerd's `ctr container restore`, podman's
/// `--import`), by its type, size and modification time (to the
/// nanosecond, or to the second when the copy has none: tar archives that
/// keep whole seconds), as unpacking one image layer twice gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    /// Absolute path.
    pub path: String,
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// Type, size and mtime at the dump; absent in older images (then only
    /// the same inode will do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<FileStamp>,
}

/// What identifies a copy of a file: [`FileId::stamp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// `st_mode & S_IFMT`.
    pub kind: u32,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime`.
    pub mtime: i64,
    /// `st_mtime_nsec`.
    pub mtime_nsec: i64,
}

impl FileId {
    /// The id of the file at `path` whose metadata is `md`.
    pub fn of(path: String, md: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            path,
            dev: md.dev(),
            ino: md.ino(),
            stamp: Some(FileStamp {
                kind: md.mode() & libc::S_IFMT,
                size: md.size(),
                mtime: md.mtime(),
                mtime_nsec: md.mtime_nsec(),
            }),
        }
    }

    /// `None` if `md` (of the file found at [`FileId::path`] now) is the
    /// dumped file: the same inode, or a copy with the dumped stamp; else
    /// how it differs.
    pub fn difference(&self, md: &std::fs::Metadata) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        if (md.dev(), md.ino()) == (self.dev, self.ino) {
            return None;
        }
        let Some(s) = self.stamp else {
            return Some("another inode".into());
        };
        let now = FileStamp {
            kind: md.mode() & libc::S_IFMT,
            size: md.size(),
            mtime: md.mtime(),
            mtime_nsec: md.mtime_nsec(),
        };
        // A copy through a tar archive that keeps whole seconds (as
        // containerd's layer diffs do) has lost the nanoseconds.
        let same_time =
            now.mtime == s.mtime && (now.mtime_nsec == s.mtime_nsec || now.mtime_nsec == 0);
        let same = (now.kind, now.size) == (s.kind, s.size) && same_time;
        (!same).then(|| {
            format!(
                "another inode, and not a copy: type {:o}, {} bytes, mtime {}.{:09} then; type {:o}, {} bytes, mtime {}.{:09} now",
                s.kind, s.size, s.mtime, s.mtime_nsec, now.kind, now.size, now.mtime, now.mtime_nsec
            )
        })
    }
}

/// One thread's CPU and signal state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadImage {
    /// Thread id.
    pub tid: i32,
    /// General registers, FS/GS base included (TLS, trap 5).
    pub regs: Regs,
    /// `NT_X86_XSTATE` as read, hex encoded (FPU, SSE, AVX…).
    pub xstate: String,
    /// Blocked signals.
    pub sigmask: u64,
    /// Registered rseq area, if any (trap 2).
    pub rseq: Option<Rseq>,
    /// `clear_child_tid` (`set_tid_address`, `CLONE_CHILD_CLEARTID`): where
    /// the kernel writes 0 and wakes a futex when the thread exits, which
    /// `pthread_join` waits on. 0 for none. Absent in older images.
    #[serde(default)]
    pub clear_tid: u64,
    /// `get_robust_list`, if the thread registered one (glibc does for
    /// every thread). Absent in older images.
    #[serde(default)]
    pub robust_list: Option<RobustList>,
    /// Pending signals, alternate stack, parent-death signal
    /// ([`crate::state`]). Absent in older images.
    #[serde(default)]
    pub state: crate::state::ThreadState,
}

/// A thread's robust futex list (`set_robust_list`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobustList {
    /// Address of the list head.
    pub head: u64,
    /// Its length as registered.
    pub len: u64,
}

/// x86_64 `user_regs_struct`, field for field.
#[allow(missing_docs)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// `PTRACE_GET_RSEQ_CONFIGURATION` of a thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rseq {
    /// Address of the `struct rseq` area.
    pub addr: u64,
    /// Its registered length.
    pub len: u32,
    /// Abort signature.
    pub signature: u32,
}

/// The `mm_struct` fields `PR_SET_MM_MAP` sets, and the auxiliary vector.
#[allow(missing_docs)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmFields {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// `/proc/PID/auxv` as 64-bit words.
    pub auxv: Vec<u64>,
}

/// One mapping of the address space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vma {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// `MAP_SHARED` rather than private.
    pub shared: bool,
    /// What backs it.
    pub backing: Backing,
    /// The `VmFlags` of smaps (`gd`, `dd`, `hg`, …).
    pub vm_flags: Vec<String>,
    /// Page runs whose contents are in the page file.
    pub pages: Vec<PageRun>,
}

/// What a mapping maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Backing {
    /// Anonymous memory; `name` is `[heap]`, `[stack]`, `[anon:…]` or none.
    Anon {
        /// The name /proc/PID/maps shows.
        name: Option<String>,
    },
    /// A file, from `offset`.
    File {
        /// Which file.
        file: FileId,
        /// Offset in the file of `start`.
        offset: u64,
    },
    /// Kernel-provided `[vdso]`, `[vvar]`, `[vvar_vclock]`: never copied; the
    /// restorer moves its own to the same place (trap 1).
    Vdso {
        /// The name /proc/PID/maps shows.
        name: String,
    },
    /// A SysV shared memory segment attached with `shmat` (`/SYSV<key>
    /// (deleted)` in maps), from `offset`; its contents are the
    /// segment's, in `sysv.json` ([`crate::sysv`]), attached again at
    /// restore.
    Sysv {
        /// The segment's id (the mapping's inode number).
        shmid: i32,
        /// Offset in the segment of `start`.
        offset: u64,
    },
}

/// `npages` pages at `addr` whose contents sit at `offset` in the page file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRun {
    /// Page-aligned address.
    pub addr: u64,
    /// Number of pages.
    pub npages: u64,
    /// Page-aligned offset in the page file.
    pub offset: u64,
}

/// A signal disposition, as the kernel's `struct sigaction` holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigAction {
    /// Signal number.
    pub signo: u32,
    /// Handler address (1 = `SIG_IGN`).
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

/// One open file descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdImage {
    /// Its number.
    pub fd: i32,
    /// `O_*` flags from fdinfo (access mode, `O_APPEND`, …).
    pub flags: u32,
    /// Close-on-exec.
    pub cloexec: bool,
    /// What it refers to.
    pub kind: FdKind,
    /// File locks held through it (`--file-locks`, [`crate::locks`]).
    /// Absent when none, and in older images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<crate::locks::FileLock>,
}

/// What a file descriptor refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FdKind {
    /// A regular file, directory or device node reopened by path.
    Path {
        /// Which file.
        file: FileId,
        /// File position.
        pos: u64,
    },
    /// The same open file description as an earlier fd of the task (a
    /// `dup`): restored as a dup of it, sharing offset and flags.
    Dup {
        /// The earlier fd.
        fd: i32,
    },
    /// One end of a pipe or FIFO.
    Pipe(PipeImage),
    /// A unix socket.
    Unix(UnixImage),
    /// A TCP listener or a UDP socket.
    Inet(InetImage),
    /// An eventfd.
    Eventfd {
        /// Its counter.
        count: u64,
        /// `EFD_SEMAPHORE`.
        semaphore: bool,
    },
    /// A signalfd.
    Signalfd {
        /// The signals it reads.
        mask: u64,
    },
    /// A timerfd.
    Timerfd(TimerfdImage),
    /// An epoll instance with its watches.
    Epoll {
        /// Every watch.
        watches: Vec<EpollWatch>,
    },
    /// An inotify instance with its watches.
    Inotify {
        /// Every watch, by watch descriptor.
        watches: Vec<InotifyWatch>,
    },
    /// A memfd.
    Memfd(MemfdImage),
    /// A regular file unlinked while open.
    Unlinked(UnlinkedImage),
    /// The process's terminal (dumped with `--shell-job`): the restore
    /// opens the restorer's terminal in its place.
    Tty {
        /// The terminal it was.
        path: String,
    },
    /// The container's console, the pty slave its runtime made
    /// ([`crate::container`]): restored as the pty the restoring runtime
    /// made, its settings in [`Inventory::console`].
    Console {
        /// The path it had (`/dev/pts/0`, `/dev/console`).
        path: String,
    },
}

macro_rules! regs_conversions {
    ($($f:ident),*) => {
        impl From<&libc::user_regs_struct> for Regs {
            fn from(r: &libc::user_regs_struct) -> Self {
                Regs { $($f: r.$f),* }
            }
        }
        impl From<Regs> for libc::user_regs_struct {
            fn from(r: Regs) -> Self {
                libc::user_regs_struct { $($f: r.$f),* }
            }
        }
    };
}
regs_conversions!(
    r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
    eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs
);

impl ThreadImage {
    /// The xstate bytes.
    pub fn xstate_bytes(&self) -> Result<Vec<u8>, String> {
        hex_decode(&self.xstate)
    }
}

impl Vma {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the mapping is empty (never, in a valid image).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of pages with contents in the image.
    pub fn dumped_pages(&self) -> u64 {
        self.pages.iter().map(|r| r.npages).sum()
    }
}

impl TaskImage {
    /// Name of the metadata file of task `pid`.
    pub fn file_name(pid: i32) -> String {
        format!("task-{pid}.json")
    }

    /// Checks what serde cannot: mappings ordered, aligned and disjoint; page
    /// runs inside their mapping and inside the page file; at least one
    /// thread; xstate hex. A restore trusts nothing it has not checked here.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads.first().map(|t| t.tid) != Some(self.pid) {
            return Err("the first thread is not the thread group leader".into());
        }
        for (i, t) in self.threads.iter().enumerate() {
            if t.tid <= 0 || self.threads[..i].iter().any(|o| o.tid == t.tid) {
                return Err(format!("thread {}: bad or repeated tid", t.tid));
            }
            let x = t
                .xstate_bytes()
                .map_err(|e| format!("thread {}: xstate: {e}", t.tid))?;
            if x.len() > 1 << 16 {
                return Err(format!("thread {}: xstate of {} bytes", t.tid, x.len()));
            }
        }
        if !self.pages_size.is_multiple_of(PAGE_SIZE) {
            return Err(format!(
                "page file size {} not page aligned",
                self.pages_size
            ));
        }
        let mut prev_end = 0u64;
        let mut file_end = 0u64;
        for v in &self.vmas {
            if v.start % PAGE_SIZE != 0 || v.end % PAGE_SIZE != 0 || v.start >= v.end {
                return Err(format!("mapping {:#x}-{:#x} malformed", v.start, v.end));
            }
            if v.start < prev_end {
                return Err(format!("mapping {:#x}-{:#x} overlaps", v.start, v.end));
            }
            prev_end = v.end;
            for r in &v.pages {
                let bytes = r.npages.checked_mul(PAGE_SIZE);
                let end = bytes.and_then(|b| r.addr.checked_add(b));
                let fend = bytes.and_then(|b| r.offset.checked_add(b));
                let (Some(end), Some(fend)) = (end, fend) else {
                    return Err(format!("page run at {:#x} overflows", r.addr));
                };
                if r.npages == 0 || r.addr % PAGE_SIZE != 0 || r.offset % PAGE_SIZE != 0 {
                    return Err(format!("page run at {:#x} malformed", r.addr));
                }
                if r.addr < v.start || end > v.end {
                    return Err(format!("page run at {:#x} outside its mapping", r.addr));
                }
                if fend > self.pages_size {
                    return Err(format!("page run at {:#x} beyond the page file", r.addr));
                }
                file_end = file_end.max(fend);
            }
        }
        self.state.validate(self.threads.iter().map(|t| &t.state))?;
        if file_end != self.pages_size {
            return Err(format!(
                "page file size {} but runs end at {file_end}",
                self.pages_size
            ));
        }
        Ok(())
    }
}

/// Encodes `body` with its header line.
pub fn encode<T: Serialize>(kind: Kind, body: &T) -> Vec<u8> {
    let json = serde_json::to_vec_pretty(body).expect("image types serialize infallibly");
    let crc = crc32fast::hash(&json);
    let mut out = format!(
        "{MAGIC} {} v{FORMAT_VERSION} crc32={crc:08x} len={}\n",
        kind.name(),
        json.len()
    )
    .into_bytes();
    out.extend_from_slice(&json);
    out
}

/// Decodes a metadata file of `kind`; `what` names it in errors.
pub fn decode<T: for<'de> Deserialize<'de>>(
    kind: Kind,
    data: &[u8],
    what: &str,
) -> Result<T, ImageError> {
    let header_err = |reason: &str| ImageError::Header {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    let nl = data
        .iter()
        .take(MAX_HEADER)
        .position(|&b| b == b'\n')
        .ok_or_else(|| header_err("no header line"))?;
    let header = std::str::from_utf8(&data[..nl]).map_err(|_| header_err("not ASCII"))?;
    let body = &data[nl + 1..];
    let mut words = header.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(header_err("not a corral image file"));
    }
    if words.next() != Some(kind.name()) {
        return Err(header_err(&format!("not a {} file", kind.name())));
    }
    let version = words
        .next()
        .and_then(|w| w.strip_prefix('v'))
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| header_err("no version"))?;
    if version != FORMAT_VERSION {
        return Err(ImageError::Version {
            what: what.to_owned(),
            found: version,
        });
    }
    let expected = words
        .next()
        .and_then(|w| w.strip_prefix("crc32="))
        .and_then(|v| u32::from_str_radix(v, 16).ok())
        .ok_or_else(|| header_err("no crc32"))?;
    let len = words
        .next()
        .and_then(|w| w.strip_prefix("len="))
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| header_err("no len"))?;
    if words.next().is_some() {
        return Err(header_err("trailing words"));
    }
    if len > MAX_BODY || len != body.len() {
        return Err(header_err(&format!(
            "len={len} but the body has {} bytes",
            body.len()
        )));
    }
    let actual = crc32fast::hash(body);
    if actual != expected {
        return Err(ImageError::Checksum {
            what: what.to_owned(),
            expected,
            actual,
        });
    }
    serde_json::from_slice(body).map_err(|source| ImageError::Decode {
        what: what.to_owned(),
        source,
    })
}

/// An image directory opened for reading.
#[derive(Debug)]
pub struct ImageDir {
    /// The directory.
    pub dir: PathBuf,
    /// Its inventory.
    pub inventory: Inventory,
    /// Its tasks, in inventory order, each validated.
    pub tasks: Vec<TaskImage>,
}

fn read_file(path: &Path) -> Result<Vec<u8>, ImageError> {
    fs::read(path).map_err(|source| ImageError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })
}

/// Writes `data` to `dir/name` (created, must not exist).
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> Result<(), ImageError> {
    let path = dir.join(name);
    let io_err = |source| ImageError::Io {
        op: "write",
        path: path.clone(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err)?;
    f.write_all(data).map_err(io_err)
}

impl ImageDir {
    /// Reads and checks the inventory and every task file of `dir`.
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        let inv_path = dir.join(INVENTORY_FILE);
        let inventory: Inventory = decode(
            Kind::Inventory,
            &read_file(&inv_path)?,
            &inv_path.display().to_string(),
        )?;
        crate::tree::check_inventory(&inventory)
            .and_then(|()| inventory.time_ns.as_ref().map_or(Ok(()), |t| t.validate()))
            .map_err(|reason| ImageError::Invalid {
                what: inv_path.display().to_string(),
                reason,
            })?;
        let mut tasks = Vec::new();
        for &pid in &inventory.tasks {
            let path = dir.join(TaskImage::file_name(pid));
            let what = path.display().to_string();
            let task: TaskImage = decode(Kind::Task, &read_file(&path)?, &what)?;
            check_task(&task, pid, &what)?;
            tasks.push(task);
        }
        Ok(ImageDir {
            dir: dir.to_owned(),
            inventory,
            tasks,
        })
    }

    /// Path of a task's page file.
    pub fn pages_path(&self, task: &TaskImage) -> PathBuf {
        self.dir.join(&task.pages_file)
    }
}

fn check_task(task: &TaskImage, pid: i32, what: &str) -> Result<(), ImageError> {
    let invalid = |reason: String| ImageError::Invalid {
        what: what.to_owned(),
        reason,
    };
    if task.pid != pid {
        return Err(invalid(format!("holds pid {}, expected {pid}", task.pid)));
    }
    if task.pages_file != format!("pages-{pid}.img") {
        return Err(invalid(format!(
            "page file {:?} not pages-{pid}.img",
            task.pages_file
        )));
    }
    task.validate().map_err(invalid)
}

/// Fuzz entry: decodes `data` as an inventory, a task file and a SysV IPC
/// file ([`crate::sysv`]) and validates what decodes. Must never panic, whatever the bytes; proptest
/// drives it in the unit tests and a `cargo fuzz` target can wrap it.
pub fn fuzz_image(data: &[u8]) {
    if let Ok(inv) = decode::<Inventory>(Kind::Inventory, data, "input") {
        let _ = crate::tree::check_inventory(&inv);
    }
    if let Ok(inv) = serde_json::from_slice::<Inventory>(data) {
        let _ = crate::tree::check_inventory(&inv);
        let _ = inv.time_ns.map(|t| t.validate());
    }
    if let Ok(task) = decode::<TaskImage>(Kind::Task, data, "input") {
        let _ = check_task(&task, task.pid, "input");
    }
    // The same bytes as a bare body, so the fuzzer reaches serde and
    // `validate` without having to find a matching CRC.
    if let Ok(task) = serde_json::from_slice::<TaskImage>(data) {
        let _ = check_task(&task, task.pid, "input");
    }
    if let Ok(sysv) = decode::<crate::sysv::SysvImage>(Kind::Sysv, data, "input") {
        let _ = sysv.validate();
    }
    if let Ok(sysv) = serde_json::from_slice::<crate::sysv::SysvImage>(data) {
        let _ = sysv.validate();
    }
}

/// Lower-case hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Inverse of [`hex_encode`].
pub fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| "not hex".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_file_id_takes_the_same_inode_or_a_copy_with_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"twelve bytes").unwrap();
        let md = fs::metadata(&a).unwrap();
        let id = FileId::of(a.display().to_string(), &md);
        assert_eq!(id.difference(&md), None);
        let mtime = md.modified().unwrap();
        // A copy with the same size and mtime: taken.
        fs::write(&b, b"twelve bytes").unwrap();
        fs::File::options()
            .write(true)
            .open(&b)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(id.difference(&fs::metadata(&b).unwrap()), None);
        // The copy's mtime cut to the second (a tar archive): taken.
        let secs = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let f = fs::File::options().write(true).open(&b).unwrap();
        f.set_modified(whole).unwrap();
        let cut = id.difference(&fs::metadata(&b).unwrap());
        assert_eq!(cut, None);
        // Another second, another size, no stamp: refused, saying what.
        f.set_modified(whole + std::time::Duration::from_secs(1))
            .unwrap();
        let e = id.difference(&fs::metadata(&b).unwrap()).unwrap();
        assert!(e.starts_with("another inode, and not a copy: "), "{e}");
        fs::write(&b, b"thirteen bytes").unwrap();
        fs::File::options()
            .write(true)
            .open(&b)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(id
            .difference(&fs::metadata(&b).unwrap())
            .unwrap()
            .contains("; type 100000, 14 bytes, mtime "));
        let old = FileId { stamp: None, ..id };
        assert_eq!(
            old.difference(&fs::metadata(&b).unwrap()).as_deref(),
            Some("another inode")
        );
    }

    fn sample() -> TaskImage {
        TaskImage {
            pid: 42,
            comm: "probe".into(),
            exe: FileId {
                path: "/bin/probe".into(),
                dev: 1,
                ino: 2,
                stamp: None,
            },
            cwd: "/".into(),
            threads: vec![ThreadImage {
                tid: 42,
                regs: Regs::default(),
                xstate: hex_encode(&[1, 2, 0xff]),
                sigmask: 0,
                rseq: Some(Rseq {
                    addr: 0x1000,
                    len: 32,
                    signature: 0x53053053,
                }),
                clear_tid: 0x7000,
                robust_list: Some(RobustList {
                    head: 0x7010,
                    len: 24,
                }),
                state: Default::default(),
            }],
            mm: MmFields::default(),
            vmas: vec![Vma {
                start: 0x10000,
                end: 0x14000,
                prot: 3,
                shared: false,
                backing: Backing::Anon { name: None },
                vm_flags: vec!["rd".into(), "wr".into()],
                pages: vec![PageRun {
                    addr: 0x11000,
                    npages: 2,
                    offset: 0,
                }],
            }],
            sigactions: vec![],
            fds: vec![],
            pages_file: "pages-42.img".into(),
            pages_size: 2 * PAGE_SIZE,
            state: Default::default(),
        }
    }

    #[test]
    fn a_task_round_trips() {
        let t = sample();
        let bytes = encode(Kind::Task, &t);
        let back: TaskImage = decode(Kind::Task, &bytes, "t").unwrap();
        assert_eq!(back, t);
        check_task(&back, 42, "t").unwrap();
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut bytes = encode(Kind::Task, &sample());
        let last = bytes.len() - 3;
        bytes[last] ^= 0x20;
        let err = decode::<TaskImage>(Kind::Task, &bytes, "t").unwrap_err();
        assert!(matches!(err, ImageError::Checksum { .. }), "{err}");
    }

    #[test]
    fn another_version_is_refused_by_number() {
        let bytes = encode(Kind::Task, &sample());
        let text = String::from_utf8(bytes)
            .unwrap()
            .replacen(" v1 ", " v0 ", 1);
        let err = decode::<TaskImage>(Kind::Task, text.as_bytes(), "task-42.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "task-42.json: image format version 0 is not supported (this corral reads version 1)"
        );
    }

    #[test]
    fn time_namespace_clocks_round_trip_and_older_inventories_have_none() {
        let mut inv = Inventory {
            kernel_release: "6.18".into(),
            corral_version: "0.1.0".into(),
            root_pid: 1,
            tasks: vec![1],
            tree: vec![],
            shared_fds: vec![],
            time_ns: None,
            console: None,
            pid_ns: false,
            mount_ns: false,
            inherited_stdio: vec![],
        };
        let old = String::from_utf8(encode(Kind::Inventory, &inv)).unwrap();
        assert!(!old.contains("time_ns"), "{old}");
        inv.time_ns = Some(crate::timens::TimeNsClocks {
            monotonic: [1_000_123, 456],
            boottime: [2_000_123, 789],
        });
        let bytes = encode(Kind::Inventory, &inv);
        let body = &bytes[bytes.iter().position(|&b| b == b'\n').unwrap() + 1..];
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            json["time_ns"],
            serde_json::json!({"monotonic": [1_000_123, 456], "boottime": [2_000_123, 789]})
        );
        assert_eq!(
            decode::<Inventory>(Kind::Inventory, &bytes, "x").unwrap(),
            inv
        );
        inv.time_ns = None;
        let read = decode::<Inventory>(Kind::Inventory, old.as_bytes(), "x").unwrap();
        assert_eq!(read, inv);
    }

    #[test]
    fn an_image_with_bad_time_namespace_clocks_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let inv = Inventory {
            kernel_release: "6.18".into(),
            corral_version: "0.1.0".into(),
            root_pid: 1,
            tasks: vec![1],
            tree: vec![],
            shared_fds: vec![],
            console: None,
            pid_ns: false,
            mount_ns: false,
            inherited_stdio: vec![],
            time_ns: Some(crate::timens::TimeNsClocks {
                monotonic: [5, 1_000_000_000],
                boottime: [5, 0],
            }),
        };
        write_file(dir.path(), INVENTORY_FILE, &encode(Kind::Inventory, &inv)).unwrap();
        let err = ImageDir::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with("time_ns.monotonic: [5, 1000000000] is not a clock reading"),
            "{err}"
        );
    }

    #[test]
    fn an_inventory_is_not_a_task() {
        let inv = Inventory {
            kernel_release: "6.18".into(),
            corral_version: "0.1.0".into(),
            root_pid: 1,
            tasks: vec![1],
            tree: vec![],
            shared_fds: vec![],
            time_ns: None,
            console: None,
            pid_ns: false,
            mount_ns: false,
            inherited_stdio: vec![],
        };
        let bytes = encode(Kind::Inventory, &inv);
        assert!(decode::<TaskImage>(Kind::Task, &bytes, "x").is_err());
        assert_eq!(
            decode::<Inventory>(Kind::Inventory, &bytes, "x").unwrap(),
            inv
        );
    }

    #[test]
    fn runs_outside_the_page_file_or_mapping_are_refused() {
        let mut t = sample();
        t.pages_size = PAGE_SIZE;
        assert!(t.validate().is_err());
        let mut t = sample();
        t.vmas[0].pages[0].addr = 0x13000;
        assert!(t.validate().unwrap_err().contains("outside"));
        let mut t = sample();
        t.vmas[0].pages[0].npages = u64::MAX;
        assert!(t.validate().unwrap_err().contains("overflows"));
    }

    #[test]
    fn threads_must_start_with_the_leader_and_not_repeat() {
        let mut t = sample();
        t.threads.push(t.threads[0].clone());
        assert!(t.validate().unwrap_err().contains("repeated"));
        t.threads[1].tid = 43;
        t.validate().unwrap();
        t.threads.swap(0, 1);
        assert!(t.validate().unwrap_err().contains("leader"));
    }

    #[test]
    fn a_thread_without_the_newer_fields_still_reads() {
        let mut v = serde_json::to_value(sample()).unwrap();
        let th = v["threads"][0].as_object_mut().unwrap();
        th.remove("clear_tid");
        th.remove("robust_list");
        let t: TaskImage = serde_json::from_value(v).unwrap();
        assert_eq!(
            (t.threads[0].clear_tid, &t.threads[0].robust_list),
            (0, &None)
        );
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            hex_decode(&hex_encode(&[0, 0xab, 0x10])).unwrap(),
            vec![0, 0xab, 0x10]
        );
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }

    proptest! {
        #[test]
        fn fuzz_entry_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            fuzz_image(&data);
        }

        #[test]
        fn fuzz_entry_survives_mutated_images(pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
            let mut bytes = encode(Kind::Task, &sample());
            let i = pos % bytes.len();
            bytes[i] = byte;
            fuzz_image(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            fuzz_image(&bytes);
        }

        #[test]
        fn valid_bodies_with_any_numbers_never_panic(start in any::<u64>(), end in any::<u64>(),
                addr in any::<u64>(), npages in any::<u64>(), offset in any::<u64>(), size in any::<u64>()) {
            let mut t = sample();
            t.vmas[0].start = start;
            t.vmas[0].end = end;
            t.vmas[0].pages[0] = PageRun { addr, npages, offset };
            t.pages_size = size;
            let body = serde_json::to_vec(&t).unwrap();
            fuzz_image(&body);
            fuzz_image(&encode(Kind::Task, &t));
        }
    }
}
