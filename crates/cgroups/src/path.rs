//! OCI `linux.cgroupsPath` → one directory per hierarchy.
//!
//! An absolute path is taken under each hierarchy's mount; a relative one
//! under the calling process's own cgroup of that hierarchy, as runc's
//! cgroupfs driver does (our own cgroup differs per hierarchy: on the
//! development machines memory is `/process_api/<hash>` and the rest `/`).
//! `..` is resolved lexically, which is sound here because cgroupfs has no
//! symlinks; a path whose `..` would climb out of its base is refused, and so
//! is a path naming the base itself (a hierarchy root, or our own cgroup,
//! which holds us).

use std::path::{Component, Path, PathBuf};

/// `linux.cgroupsPath` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// `..` would climb above the hierarchy root or the caller's cgroup.
    #[error("cgroups path {path:?} escapes its base with \"..\"")]
    Escapes {
        /// The path as given.
        path: String,
    },
    /// The path names a hierarchy root or the caller's own cgroup.
    #[error("cgroups path {path:?} names no cgroup of its own (it resolves to its base)")]
    Empty {
        /// The path as given.
        path: String,
    },
    /// /proc/self/cgroup could not be read.
    #[error("cannot read /proc/self/cgroup")]
    ReadSelf {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// /proc/self/cgroup lacks the line of a mounted hierarchy.
    #[error("/proc/self/cgroup has no line for the {hierarchy} hierarchy")]
    NotInSelf {
        /// The hierarchy's controllers, or "unified".
        hierarchy: String,
    },
}

/// Normalizes `path` (absolute or relative) to a list of components under its
/// base, refusing escapes and the base itself.
pub fn normalize(path: &str) -> Result<PathBuf, PathError> {
    let mut out = PathBuf::new();
    for comp in Path::new(path).components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(c) => out.push(c),
            Component::ParentDir => {
                if !out.pop() {
                    return Err(PathError::Escapes {
                        path: path.to_owned(),
                    });
                }
            }
            Component::Prefix(_) => {
                return Err(PathError::Escapes {
                    path: path.to_owned(),
                })
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(PathError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// Our own cgroup in each hierarchy, from /proc/self/cgroup text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    /// `(controllers, path)` for each v1 line (named hierarchies included).
    pub v1: Vec<(Vec<String>, String)>,
    /// The path on the `0::` line.
    pub unified: Option<String>,
}

impl OwnCgroups {
    /// Parses /proc/self/cgroup (`id:controllers:path` per line). Never panics.
    pub fn parse(text: &str) -> OwnCgroups {
        let mut own = OwnCgroups::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctrls.is_empty() {
                own.unified = Some(path.to_owned());
            } else {
                let ctrls = ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned);
                own.v1.push((ctrls.collect(), path.to_owned()));
            }
        }
        own
    }

    /// Reads /proc/self/cgroup.
    pub fn read() -> Result<OwnCgroups, PathError> {
        let text = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|source| PathError::ReadSelf { source })?;
        Ok(Self::parse(&text))
    }

    /// Our cgroup in the v1 hierarchy carrying `controllers`.
    pub fn v1_path(&self, controllers: &[String]) -> Result<&str, PathError> {
        self.v1
            .iter()
            .find(|(c, _)| controllers.iter().any(|want| c.contains(want)))
            .map(|(_, p)| p.as_str())
            .ok_or_else(|| PathError::NotInSelf {
                hierarchy: controllers.join(","),
            })
    }

    /// Our cgroup in the unified hierarchy.
    pub fn unified_path(&self) -> Result<&str, PathError> {
        self.unified.as_deref().ok_or_else(|| PathError::NotInSelf {
            hierarchy: "unified".to_owned(),
        })
    }
}

/// The directory, relative to a mount of a hierarchy, for `cgroups_path`.
///
/// `own` is our cgroup in that hierarchy (for relative paths) and
/// `mount_root` the hierarchy directory the mount shows.
pub fn resolve(
    cgroups_path: &str,
    own: Option<&str>,
    mount_root: &Path,
) -> Result<PathBuf, PathError> {
    if cgroups_path.starts_with('/') {
        return normalize(cgroups_path);
    }
    let own = Path::new(own.unwrap_or("/"));
    // Our cgroup as seen through this mount: strip the mount's root when the
    // mount shows a subtree (outside a cgroup namespace).
    let own = own.strip_prefix(mount_root).unwrap_or(own);
    let base = normalize_base(own);
    let rel = normalize(cgroups_path)?;
    Ok(base.join(rel))
}

/// The kernel's own path; `..` cannot appear, but never panic if it does.
fn normalize_base(p: &Path) -> PathBuf {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELF: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/b12aebf3dda5143a04f1193ad7388c89
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn absolute_paths_go_under_the_root() {
        assert_eq!(normalize("/a/b").unwrap(), Path::new("a/b"));
        assert_eq!(normalize("/a/./b/../c").unwrap(), Path::new("a/c"));
        assert_eq!(
            resolve("/x/y", Some("/own"), Path::new("/")).unwrap(),
            Path::new("x/y")
        );
    }

    #[test]
    fn escapes_and_roots_are_refused_with_the_path_named() {
        let err = normalize("/a/../../etc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroups path \"/a/../../etc\" escapes its base with \"..\""
        );
        assert!(matches!(normalize("/"), Err(PathError::Empty { .. })));
        assert!(matches!(normalize("a/.."), Err(PathError::Empty { .. })));
        assert!(matches!(
            resolve("../sibling", Some("/own"), Path::new("/")),
            Err(PathError::Escapes { .. })
        ));
    }

    #[test]
    fn relative_paths_go_under_our_own_cgroup_per_hierarchy() {
        let own = OwnCgroups::parse(SELF);
        let mem = own.v1_path(&["memory".to_owned()]).unwrap();
        assert_eq!(
            resolve("c1", Some(mem), Path::new("/")).unwrap(),
            Path::new("process_api/b12aebf3dda5143a04f1193ad7388c89/c1")
        );
        let cpu = own.v1_path(&["cpu".to_owned()]).unwrap();
        assert_eq!(
            resolve("c1", Some(cpu), Path::new("/")).unwrap(),
            Path::new("c1")
        );
        assert_eq!(own.unified_path().unwrap(), "/");
        assert!(own.v1_path(&["blkio".to_owned()]).is_err());
    }

    #[test]
    fn a_mount_of_a_subtree_strips_its_root() {
        assert_eq!(
            resolve("c", Some("/docker/abc/sub"), Path::new("/docker/abc")).unwrap(),
            Path::new("sub/c")
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_self_never_panics(text in "\\PC*") {
            let _ = OwnCgroups::parse(&text);
        }

        #[test]
        fn normalized_paths_never_escape(p in "[a/.]{0,20}") {
            if let Ok(n) = normalize(&p) {
                proptest::prop_assert!(n.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
    }
}
