//! Every read and write of a cgroup file goes through [`CgroupDir`], a
//! directory fd of the cgroup: the file is opened with `openat2` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so a name can never leave the
//! directory, and a failed write names the directory, the file and the value.

use std::{
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, CWD};

/// A cgroup file or directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The cgroup directory could not be opened.
    #[error("cannot open cgroup directory {path}")]
    OpenDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The cgroup directory could not be created.
    #[error("cannot create cgroup directory {path}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The cgroup directory could not be removed.
    #[error("cannot remove cgroup directory {path}")]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file of the cgroup could not be opened (often: controller not enabled).
    #[error("cannot open {file} in cgroup {dir}")]
    Open {
        /// The cgroup directory.
        dir: PathBuf,
        /// The file name inside it.
        file: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a value (`EINVAL`, `ERANGE`, `EOVERFLOW`).
    #[error("{file}: invalid value {value:?} in cgroup {dir}")]
    InvalidValue {
        /// The cgroup directory.
        dir: PathBuf,
        /// The file name inside it.
        file: String,
        /// What we wrote.
        value: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Writing a value failed for another reason (`EBUSY`, `EPERM`, ...).
    #[error("{file}: cannot write {value:?} in cgroup {dir}")]
    Write {
        /// The cgroup directory.
        dir: PathBuf,
        /// The file name inside it.
        file: String,
        /// What we wrote.
        value: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("cannot read {file} in cgroup {dir}")]
    Read {
        /// The cgroup directory.
        dir: PathBuf,
        /// The file name inside it.
        file: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The owner or mode of a file could not be changed.
    #[error("cannot change owner or mode of {file} in cgroup {dir}")]
    Attr {
        /// The cgroup directory.
        dir: PathBuf,
        /// The file name inside it ("." for the directory).
        file: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file held something we could not parse.
    #[error("{file} in cgroup {dir}: cannot parse {content:?}")]
    Parse {
        /// The cgroup directory.
        dir: PathBuf,
        /// The file name inside it.
        file: String,
        /// What it held (trimmed).
        content: String,
    },
}

impl FileError {
    /// The errno underneath, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::OpenDir { source, .. }
            | Self::Mkdir { source, .. }
            | Self::Rmdir { source, .. }
            | Self::Open { source, .. }
            | Self::InvalidValue { source, .. }
            | Self::Write { source, .. }
            | Self::Read { source, .. }
            | Self::Attr { source, .. } => source.raw_os_error(),
            Self::Parse { .. } => None,
        }
    }

    /// True when the file or directory does not exist.
    pub fn is_not_found(&self) -> bool {
        self.raw_os_error() == Some(libc::ENOENT)
    }
}

const FILE_RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

/// An open cgroup directory and the path it was opened at (for messages).
#[derive(Debug)]
pub struct CgroupDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl CgroupDir {
    /// Opens the cgroup directory `path` (`O_RDONLY | O_DIRECTORY`), refusing
    /// symlinks on the way.
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = openat2(CWD, path, flags, ResolveFlags::NO_SYMLINKS).map_err(|e| {
            FileError::OpenDir {
                path: path.to_owned(),
                source: e.into(),
            }
        })?;
        Ok(Self {
            path: path.to_owned(),
            fd,
        })
    }

    /// Opens the child directory `name`, which must be one path component.
    pub fn open_child(&self, name: &str) -> Result<Self, FileError> {
        let path = self.path.join(name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = openat2(&self.fd, name, flags, FILE_RESOLVE).map_err(|e| FileError::OpenDir {
            path: path.clone(),
            source: e.into(),
        })?;
        Ok(Self { path, fd })
    }

    /// Creates the child directory `name`; returns false if it existed.
    pub fn mkdir_child(&self, name: &str) -> Result<bool, FileError> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::EXIST) => Ok(false),
            Err(e) => Err(FileError::Mkdir {
                path: self.path.join(name),
                source: e.into(),
            }),
        }
    }

    /// Removes the (empty) child cgroup `name`.
    pub fn rmdir_child(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(io::Error::from)
    }

    /// Whether the cgroup has child cgroups, from one `fstat`: kernfs keeps
    /// a directory's link count at 2 + its subdirectories, as other file
    /// systems do, and cgroup directories hold no other subdirectories.
    pub fn has_children(&self) -> Result<bool, FileError> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| FileError::Read {
            dir: self.path.clone(),
            file: ".".to_owned(),
            source: e.into(),
        })?;
        Ok(st.st_nlink > 2)
    }

    /// Names of the child cgroups (subdirectories).
    pub fn children(&self) -> Result<Vec<String>, FileError> {
        self.entries(rustix::fs::FileType::Directory)
    }

    /// Names of the regular files, in the kernel's directory order.
    pub fn files(&self) -> Result<Vec<String>, FileError> {
        self.entries(rustix::fs::FileType::RegularFile)
    }

    /// Names of the entries of type `want` (without `.` and `..`).
    fn entries(&self, want: rustix::fs::FileType) -> Result<Vec<String>, FileError> {
        let read_err = |e: rustix::io::Errno| FileError::Read {
            dir: self.path.clone(),
            file: ".".to_owned(),
            source: e.into(),
        };
        let mut dir = rustix::fs::Dir::read_from(&self.fd).map_err(read_err)?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(read_err)?;
            if entry.file_type() != want {
                continue;
            }
            if let Ok(name) = entry.file_name().to_str() {
                if name != "." && name != ".." {
                    out.push(name.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// Changes the owner (`None` leaves one unchanged) and, with `mode`, the
    /// permission bits of `file`, or of the directory itself for `"."`.
    /// Symlinks are never followed.
    pub fn set_attr(
        &self,
        file: &str,
        owner: Option<(Option<u32>, Option<u32>)>,
        mode: Option<u32>,
    ) -> Result<(), FileError> {
        let err = |e: rustix::io::Errno| FileError::Attr {
            dir: self.path.clone(),
            file: file.to_owned(),
            source: e.into(),
        };
        let target = if file == "." {
            None
        } else {
            let flags = OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW;
            Some(openat2(&self.fd, file, flags, FILE_RESOLVE).map_err(err)?)
        };
        let fd = target.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
        if let Some((uid, gid)) = owner {
            let uid = uid.map(rustix::fs::Uid::from_raw);
            let gid = gid.map(rustix::fs::Gid::from_raw);
            // An O_PATH fd takes chown/chmod through the *at calls with an
            // empty path (AT_EMPTY_PATH), not fchown/fchmod.
            rustix::fs::chownat(fd, "", uid, gid, AtFlags::EMPTY_PATH).map_err(err)?;
        }
        if let Some(mode) = mode {
            let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            // fchmodat has no AT_EMPTY_PATH before Linux 6.6: chmod through
            // the fd's magic link, which names exactly the file we opened.
            rustix::fs::chmod(path.as_str(), Mode::from_raw_mode(mode)).map_err(err)?;
        }
        Ok(())
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `file` of this cgroup for writing, to be written later (by a
    /// child that inherits the fd).
    pub fn open_for_write(&self, file: &str) -> Result<OwnedFd, FileError> {
        self.open_file(file, OFlags::WRONLY)
    }

    /// Opens `file` of this cgroup with `flags` (`O_CLOEXEC | O_NOFOLLOW`
    /// added), to keep: an event source or a PSI trigger.
    pub fn open_file(&self, file: &str, flags: OFlags) -> Result<OwnedFd, FileError> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        openat2(&self.fd, file, flags, FILE_RESOLVE).map_err(|e| FileError::Open {
            dir: self.path.clone(),
            file: file.to_owned(),
            source: e.into(),
        })
    }

    /// Writes `value` to `file` in one `write()`, as the kernel wants it.
    pub fn write(&self, file: &str, value: &str) -> Result<(), FileError> {
        let fd = self.open_file(file, OFlags::WRONLY)?;
        self.write_fd(&fd, file, value)
    }

    /// Writes `value` in one `write()` to `fd`, an open `file` of this
    /// cgroup (a PSI trigger is written to the fd it then lives on).
    pub fn write_fd(&self, fd: impl AsFd, file: &str, value: &str) -> Result<(), FileError> {
        tracing::debug!(dir = %self.path.display(), file, value, "cgroup write");
        match rustix::io::write(fd, value.as_bytes()) {
            Ok(n) if n == value.len() => Ok(()),
            Ok(_) => Err(FileError::Write {
                dir: self.path.clone(),
                file: file.to_owned(),
                value: value.to_owned(),
                source: io::Error::from(io::ErrorKind::WriteZero),
            }),
            Err(e) => {
                let (dir, file, value) = (self.path.clone(), file.to_owned(), value.to_owned());
                let source = io::Error::from(e);
                Err(match e {
                    rustix::io::Errno::INVAL
                    | rustix::io::Errno::RANGE
                    | rustix::io::Errno::OVERFLOW => FileError::InvalidValue {
                        dir,
                        file,
                        value,
                        source,
                    },
                    _ => FileError::Write {
                        dir,
                        file,
                        value,
                        source,
                    },
                })
            }
        }
    }

    /// Reads the whole of `file`.
    pub fn read(&self, file: &str) -> Result<String, FileError> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = openat2(&self.fd, file, flags, FILE_RESOLVE).map_err(|e| FileError::Open {
            dir: self.path.clone(),
            file: file.to_owned(),
            source: e.into(),
        })?;
        let mut buf = Vec::with_capacity(256);
        loop {
            let len = buf.len();
            buf.reserve(4096);
            match rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut buf)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => buf.truncate(len),
                Err(e) => {
                    return Err(FileError::Read {
                        dir: self.path.clone(),
                        file: file.to_owned(),
                        source: e.into(),
                    })
                }
            }
        }
        String::from_utf8(buf).map_err(|e| FileError::Parse {
            dir: self.path.clone(),
            file: file.to_owned(),
            content: String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads `file` and parses it with `parse`; a `None` from `parse` becomes
    /// [`FileError::Parse`].
    pub fn read_parsed<T>(
        &self,
        file: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, FileError> {
        let text = self.read(file)?;
        parse(&text).ok_or_else(|| FileError::Parse {
            dir: self.path.clone(),
            file: file.to_owned(),
            content: text.trim().to_owned(),
        })
    }

    /// Whether `file` exists in the directory.
    pub fn has(&self, file: &str) -> bool {
        rustix::fs::statat(&self.fd, file, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// The processes in this cgroup (`cgroup.procs`).
    pub fn procs(&self) -> Result<Vec<i32>, FileError> {
        self.read_parsed("cgroup.procs", parse_pids)
    }
}

impl AsFd for CgroupDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<CgroupDir> for OwnedFd {
    fn from(dir: CgroupDir) -> OwnedFd {
        dir.fd
    }
}

/// Parses `cgroup.procs`: one pid a line.
pub fn parse_pids(text: &str) -> Option<Vec<i32>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().ok())
        .collect()
}

/// `openat2`, falling back to `openat` with `O_NOFOLLOW` on kernels before
/// 5.6 (`ENOSYS`), where only the last component is then protected.
fn openat2<P: AsRef<Path>>(
    dirfd: impl AsFd,
    path: P,
    flags: OFlags,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let path = path.as_ref();
    match rustix::fs::openat2(&dirfd, path, flags, Mode::empty(), resolve) {
        Err(rustix::io::Errno::NOSYS) => {
            rustix::fs::openat(&dirfd, path, flags | OFlags::NOFOLLOW, Mode::empty())
        }
        Err(rustix::io::Errno::AGAIN) => {
            // openat2 returns EAGAIN when a concurrent rename races the lookup.
            rustix::fs::openat2(&dirfd, path, flags, Mode::empty(), resolve)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_parse_lines_and_reject_garbage() {
        assert_eq!(parse_pids("1\n22\n333\n"), Some(vec![1, 22, 333]));
        assert_eq!(parse_pids(""), Some(vec![]));
        assert_eq!(parse_pids("1\nx\n"), None);
    }

    #[test]
    fn files_are_read_and_written_beneath_the_directory_only() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), "hello\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", tmp.path().join("link")).unwrap();
        let dir = CgroupDir::open(tmp.path()).unwrap();
        assert_eq!(dir.read("a").unwrap(), "hello\n");
        dir.write("a", "HELLO").unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("a")).unwrap(),
            "HELLO\n"
        );
        assert!(dir.read("link").is_err());
        assert!(dir.read("../a").is_err());
        let err = dir.write("missing", "1").unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
