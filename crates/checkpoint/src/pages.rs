//! Page data, the hot path of dump and restore: moving the contents of a
//! task's memory to its page file and back (trap 4: never a syscall or a
//! ptrace round trip per page).
//!
//! Both directions cut the page file into windows of [`WINDOW`] bytes and
//! hand them to a few worker threads (one per core, at most
//! [`MAX_WORKERS`]). The cost on these machines is not the copy (memcpy runs
//! at ~18 GB/s) but the allocation of fresh pages, page-cache pages on dump
//! and anonymous pages on restore, which the kernel does one 4 KiB page at a
//! time; two cores allocate nearly twice as fast as one.
//!
//! - Dump: each window is read with `process_vm_readv` (up to 1024 runs per
//!   call) into the worker's buffer and written once with `pwrite` at its
//!   offset. Runs in mappings without read permission go through
//!   `/proc/PID/mem`, which reads them anyway (`FOLL_FORCE`).
//! - Restore: each window of the page file is read with one `pread` into
//!   the worker's buffer and its runs go to the task with `UFFDIO_COPY` on
//!   a userfaultfd the task made (allocate, copy, map in one kernel step,
//!   without zeroing the page first), or with `process_vm_writev` where no
//!   userfaultfd is registered (private file mappings). Our RSS stays at a
//!   few windows whatever the image size. Mapping the window instead (no
//!   copy) measured slower: populating and unmapping 4 KiB page-cache PTEs
//!   took 40% of a 1 GiB restore, where the extra memcpy of `pread` runs
//!   at ~18 GB/s.
//!
//! The workers are threads of our own, started after the restored task was
//! forked: no code of ours runs in a child after they exist (STYLE §4).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::image::{PageRun, PAGE_SIZE};
use crate::sys;

/// Bytes of page file per unit of work, and the size of each worker's
/// buffer: small, so that a 64 MiB image still spreads over the workers
/// and the buffers' first-touch faults stay cheap.
pub const WINDOW: u64 = 2 << 20;
/// Most worker threads started, whatever the core count.
pub const MAX_WORKERS: usize = 4;
/// The kernel's `UIO_MAXIOV`.
const IOV_MAX: usize = 1024;

/// A page run and how to move it.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Where it is in the task and in the page file.
    pub run: PageRun,
    /// Dump: the mapping is readable (else `/proc/PID/mem`). Restore: the
    /// mapping is registered with the userfaultfd (else
    /// `process_vm_writev`).
    pub fast: bool,
}

/// Part of a run that falls in one window.
#[derive(Clone, Copy, Debug)]
struct Piece {
    addr: u64,
    len: u64,
    /// Offset in the page file.
    offset: u64,
    fast: bool,
}

/// One window: `[start, start + len)` of the page file and the pieces of
/// runs in it, in file order.
#[derive(Debug, Default)]
struct Window {
    start: u64,
    len: u64,
    pieces: Vec<Piece>,
}

/// Cuts `runs` (each at its own offset; a dump writes them in file order)
/// into windows of at most [`WINDOW`] bytes of the page file. Runs out of
/// file order only make more, shorter windows.
fn windows(runs: &[Run]) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for r in runs {
        let (mut addr, mut offset) = (r.run.addr, r.run.offset);
        let mut left = r.run.npages * PAGE_SIZE;
        while left > 0 {
            let index = offset / WINDOW;
            if out.last().is_none_or(|w| w.start / WINDOW != index) {
                out.push(Window {
                    start: index * WINDOW,
                    ..Window::default()
                });
            }
            let w = out.last_mut().expect("pushed above");
            let len = left.min((index + 1) * WINDOW - offset);
            w.pieces.push(Piece {
                addr,
                len,
                offset,
                fast: r.fast,
            });
            // max: an image from elsewhere may list runs out of file order.
            w.len = w.len.max(offset + len - w.start);
            (addr, offset, left) = (addr + len, offset + len, left - len);
        }
    }
    out
}

/// Page bytes this process has moved so far, dumping or restoring: read by
/// the progress line of `corral cr` ([`copied`]). One add per window.
static COPIED: AtomicU64 = AtomicU64::new(0);

/// Page bytes this process has read from tasks and written to page files,
/// or the other way, since it started.
pub fn copied() -> u64 {
    COPIED.load(Ordering::Relaxed)
}

/// Runs `work` on every window with a few threads; the first error stops
/// the others and is returned.
fn run_workers<S>(
    windows: &[Window],
    state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &Window) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = cores.clamp(1, MAX_WORKERS).min(windows.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let error = Mutex::new(None);
    let worker = || {
        let mut s = state();
        while !failed.load(Ordering::Relaxed) {
            let Some(w) = windows.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            match work(&mut s, w) {
                Ok(()) => {
                    COPIED.fetch_add(w.len, Ordering::Relaxed);
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    let mut slot = error.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                }
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(worker);
        }
        worker();
    });
    match error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn short(what: &str, n: usize, want: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{what} moved {n} of {want} bytes"),
    )
}

/// Dump: reads every run of task `pid` and writes it at its offset in
/// `out`. `mem` is the task's `/proc/PID/mem`, for unreadable mappings.
pub fn dump(pid: i32, runs: &[Run], mem: &File, out: &File) -> io::Result<()> {
    let windows = windows(runs);
    run_workers(
        &windows,
        || vec![0u8; WINDOW as usize],
        |buf, w| {
            let data = &mut buf[..w.len as usize];
            let mut at = 0usize;
            for batch in w.pieces.chunk_by(|a, b| a.fast == b.fast) {
                for chunk in batch.chunks(IOV_MAX) {
                    let len: u64 = chunk.iter().map(|p| p.len).sum();
                    let dst = &mut data[at..at + len as usize];
                    if chunk[0].fast {
                        let remote: Vec<(u64, u64)> =
                            chunk.iter().map(|p| (p.addr, p.len)).collect();
                        let n = sys::process_vm_readv(pid, dst, &remote)?;
                        if n as u64 != len {
                            return Err(short("process_vm_readv", n, len));
                        }
                    } else {
                        // process_vm_readv honours PROT_NONE; /proc/PID/mem
                        // reads it (FOLL_FORCE). Rare: guard pages are
                        // normally never present.
                        let mut o = 0usize;
                        for p in chunk {
                            mem.read_exact_at(&mut dst[o..o + p.len as usize], p.addr)?;
                            o += p.len as usize;
                        }
                    }
                    at += len as usize;
                }
            }
            out.write_all_at(data, w.start)
        },
    )
}

/// Restore: fills every run of task `pid` from `file`, with `uffd` for the
/// runs marked fast and `process_vm_writev` for the others.
pub fn restore(pid: i32, runs: &[Run], file: &File, uffd: Option<&sys::Uffd>) -> io::Result<()> {
    let windows = windows(runs);
    run_workers(
        &windows,
        || vec![0u8; WINDOW as usize],
        |buf, w| {
            let data = &mut buf[..w.len as usize];
            file.read_exact_at(data, w.start)?;
            let data = &*data;
            let bytes = |p: &Piece| {
                let at = (p.offset - w.start) as usize;
                &data[at..at + p.len as usize]
            };
            for batch in w.pieces.chunk_by(|a, b| a.fast == b.fast) {
                match uffd {
                    Some(uffd) if batch[0].fast => {
                        for p in batch {
                            uffd.copy(p.addr, bytes(p))?;
                        }
                    }
                    _ => {
                        for chunk in batch.chunks(IOV_MAX) {
                            let local: Vec<&[u8]> = chunk.iter().map(bytes).collect();
                            let remote: Vec<(u64, u64)> =
                                chunk.iter().map(|p| (p.addr, p.len)).collect();
                            let want: u64 = remote.iter().map(|r| r.1).sum();
                            let n = sys::process_vm_writev(pid, &local, &remote)?;
                            if n as u64 != want {
                                return Err(short("process_vm_writev", n, want));
                            }
                        }
                    }
                }
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(addr: u64, npages: u64, offset: u64) -> Run {
        Run {
            run: PageRun {
                addr,
                npages,
                offset,
            },
            fast: true,
        }
    }

    #[test]
    fn runs_are_cut_at_window_edges_and_cover_the_file_once() {
        let pages = WINDOW / PAGE_SIZE;
        let runs = [
            run(0x10000, 1, 0),
            run(0x100000, 2 * pages, PAGE_SIZE),
            run(0x7000_0000, 3, (2 * pages + 1) * PAGE_SIZE),
        ];
        let ws = windows(&runs);
        assert_eq!(ws.len(), 3);
        let mut next = 0;
        for w in &ws {
            assert_eq!(w.start % WINDOW, 0);
            assert!(w.len <= WINDOW);
            for p in &w.pieces {
                assert_eq!(p.offset, next);
                assert!(p.offset >= w.start && p.offset + p.len <= w.start + w.len);
                next += p.len;
            }
        }
        assert_eq!(next, (2 * pages + 4) * PAGE_SIZE);
        // The big run continues in memory where it left off.
        assert_eq!(ws[1].pieces[0].addr, 0x100000 + WINDOW - PAGE_SIZE);
        assert_eq!(ws[2].pieces[0].addr, 0x100000 + 2 * WINDOW - PAGE_SIZE);
    }

    #[test]
    fn runs_out_of_file_order_stay_inside_their_window() {
        let runs = [run(0x20000, 2, 2 * PAGE_SIZE), run(0x10000, 1, 0)];
        let ws = windows(&runs);
        for w in &ws {
            for p in &w.pieces {
                assert!(p.offset >= w.start && p.offset + p.len <= w.start + w.len);
            }
        }
        let runs = [run(0x20000, 1, 3 * PAGE_SIZE), run(0x10000, 1, PAGE_SIZE)];
        let ws = windows(&runs);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].len, 4 * PAGE_SIZE);
    }

    #[test]
    fn the_first_error_is_returned() {
        let ws = windows(&[run(0, 4 * WINDOW / PAGE_SIZE, 0)]);
        let seen = AtomicUsize::new(0);
        let err = run_workers(
            &ws,
            || (),
            |(), w| {
                seen.fetch_add(1, Ordering::Relaxed);
                if w.start == WINDOW {
                    return Err(io::Error::from_raw_os_error(libc::EFAULT));
                }
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EFAULT));
        assert!(seen.load(Ordering::Relaxed) >= 2);
    }
}
