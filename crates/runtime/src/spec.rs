//! Loading, validating and generating `config.json`.
//!
//! Errors name the JSON path and the offending value (`config.json:
//! linux.namespaces[2].type: unknown variant "foo" …`), so an engine that
//! shows our last error line shows the user what to fix.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Lowest `ociVersion` accepted.
pub const OCI_VERSION_MIN: (u64, u64, u64) = (1, 0, 0);
/// `ociVersion` must be below this (1.3.x is the newest accepted).
pub const OCI_VERSION_LIMIT: (u64, u64) = (1, 4);
/// The spec version corral implements, reported in state and `spec`.
pub const OCI_VERSION: &str = "1.2.1";

/// The largest `config.json` accepted (docs/security.md): real ones are
/// tens of KiB (a long seccomp profile, many mounts and variables); a
/// bigger one is refused before it is parsed, so that a hostile bundle
/// cannot make the runtime hold, copy and store hundreds of MiB.
pub const CONFIG_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A bundle's `config.json` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Reading the file failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`CONFIG_MAX_BYTES`].
    #[error("{path} is larger than {limit} bytes ({size} bytes): refused")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The JSON does not parse or does not match the OCI schema.
    #[error("{file}: {at}{msg}")]
    Parse {
        /// The file name (`config.json`).
        file: String,
        /// The JSON path, with a trailing `: `, or empty at the top level.
        at: String,
        /// serde's message.
        msg: String,
    },
    /// A value is well-formed JSON but not acceptable.
    #[error("config.json: {field}: {problem}")]
    Invalid {
        /// The JSON path of the field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Reads and parses `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    use std::io::Read;
    let path = bundle.join("config.json");
    let file = std::fs::File::open(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    // Read at most one byte past the limit: the size on disk may change
    // under us, what we read may not.
    let mut data = Vec::new();
    file.take(CONFIG_MAX_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
    if data.len() as u64 > CONFIG_MAX_BYTES {
        let size = std::fs::metadata(&path).map_or(data.len() as u64, |m| m.len());
        return Err(SpecError::TooLarge {
            path,
            size,
            limit: CONFIG_MAX_BYTES,
        });
    }
    parse(&data, "config.json")
}

/// Parses a config from bytes; `file` names it in errors.
pub fn parse(data: &[u8], file: &str) -> Result<Spec, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        let msg = friendly(&path, &err.into_inner().to_string());
        SpecError::Parse {
            file: file.to_owned(),
            at,
            msg,
        }
    })
}

/// Rewrites serde's "unknown variant `foo`, expected one of …" into what
/// the field is: `unknown namespace "foo"`.
fn friendly(path: &str, msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown variant `") else {
        return msg.to_owned();
    };
    let value = rest.split('`').next().unwrap_or_default();
    let what = if path.contains("namespaces[") {
        "namespace"
    } else if path.contains("capabilities") {
        "capability"
    } else if path.contains("rlimits[") {
        "rlimit"
    } else if path.contains("devices[") {
        "device type"
    } else if path.contains("seccomp") {
        seccomp_kind(path)
    } else {
        "value"
    };
    let expected = rest
        .split_once("expected ")
        .map(|(_, e)| e.replace('`', ""))
        .unwrap_or_default();
    let expected = expected.split(" at line").next().unwrap_or_default();
    format!("unknown {what} {value:?} (expected {expected})")
}

/// Parses `major.minor.patch[-pre][+build]`.
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// Checks `ociVersion`: 1.0.0 through 1.3.x, pre-release forms included.
pub fn check_version(v: &str) -> Result<(), SpecError> {
    let Some((major, minor, patch)) = parse_version(v) else {
        return Err(invalid(
            "ociVersion",
            format!("{v:?} is not a version (want 1.x.y)"),
        ));
    };
    if (major, minor, patch) < OCI_VERSION_MIN || (major, minor) >= OCI_VERSION_LIMIT {
        return Err(invalid(
            "ociVersion",
            format!("unsupported version {v:?} (corral supports 1.0.0 through 1.3.x)"),
        ));
    }
    Ok(())
}

/// Validates what must hold before anything is created. `bundle` is
/// absolute; returns the absolute rootfs path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    check_version(spec.version())?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let rootfs = bundle.join(root.path());
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ))
        }
        Err(e) => {
            return Err(invalid(
                "root.path",
                format!("rootfs {} does not exist: {e}", rootfs.display()),
            ))
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "no program to run"));
    }
    check_lsm(process)?;
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(invalid(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not NAME=VALUE"),
                ));
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("namespace {:?} given twice", ns.typ().to_string()),
            ));
        }
    }
    let has = |t: LinuxNamespaceType| {
        namespaces
            .iter()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let has_any = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_any(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "setting the hostname needs a uts namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_any(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "domainname",
            "setting the domainname needs a uts namespace",
        ));
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a new user namespace",
        ));
    }
    if has(LinuxNamespaceType::User) && !maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uid and gid mappings",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !has(LinuxNamespaceType::Time)
    {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            check_sysctl(key, &has)?;
        }
    }
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let dest = m.destination();
        if dest
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!("{} must not contain ..", dest.display()),
            ));
        }
    }
    if let Some(profile) = linux.seccomp() {
        crate::seccomp::check(profile).map_err(|e| invalid(e.field, e.problem))?;
    }
    Ok(rootfs)
}

/// What an unknown value under `linux.seccomp` is, from its JSON path.
fn seccomp_kind(path: &str) -> &'static str {
    if path.contains("architectures") {
        "seccomp architecture"
    } else if path.contains("flags") {
        "seccomp flag"
    } else if path.ends_with(".op") {
        "seccomp operator"
    } else {
        "seccomp action"
    }
}

/// Whether AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim_start().starts_with('Y'))
}

/// Whether SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// As runc: an AppArmor profile or SELinux label asked for on a host
/// without that LSM is an error, not silently dropped protection.
fn check_lsm(process: &oci_spec::runtime::Process) -> Result<(), SpecError> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(invalid(
                "process.apparmorProfile",
                format!("profile {profile:?} requested but AppArmor is not enabled on this host"),
            ));
        }
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(invalid(
                "process.selinuxLabel",
                format!("label {label:?} requested but SELinux is not enabled on this host"),
            ));
        }
    }
    Ok(())
}

/// Refuses sysctls that are not namespaced, or whose namespace the
/// container does not have: writing them would change the host.
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), SpecError> {
    let field = || format!("linux.sysctl.{key}");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let need = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err(invalid(
            field(),
            "not a namespaced sysctl: it would change the host",
        ));
    };
    if key.contains("..") || key.contains('/') {
        return Err(invalid(field(), "malformed sysctl name"));
    }
    if !has(need) {
        return Err(invalid(
            field(),
            format!(
                "needs a new {} namespace, or it would change the host",
                need
            ),
        ));
    }
    Ok(())
}

/// The default `config.json` that `corral spec` writes: runc's shape, a
/// shell with a small set of capabilities, read-only root, masked /proc.
pub fn default_spec(rootless: bool, uid: u32, gid: u32) -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "corral",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        // As runc's `spec --rootless`: a user namespace mapping the caller to
        // root, no network namespace (no privileges to set one up), /sys bound
        // from the host, no device rules, no gid=5 on devpts.
        let linux = &mut spec["linux"];
        linux["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
        if let Some(mounts) = spec["mounts"].as_array_mut() {
            for m in mounts.iter_mut() {
                if m["destination"] == "/sys" {
                    *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                if m["type"] == "devpts" {
                    if let Some(opts) = m["options"].as_array_mut() {
                        opts.retain(|o| o != "gid=5");
                    }
                }
            }
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_past_the_limit_is_refused_unparsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // Not even JSON: the size is checked first.
        std::fs::write(&path, vec![b' '; CONFIG_MAX_BYTES as usize + 1]).unwrap();
        match load(dir.path()) {
            Err(SpecError::TooLarge { size, limit, .. }) => {
                assert_eq!((size, limit), (CONFIG_MAX_BYTES + 1, CONFIG_MAX_BYTES));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // At the limit it is parsed (and here refused as empty JSON).
        std::fs::write(&path, vec![b' '; CONFIG_MAX_BYTES as usize]).unwrap();
        assert!(matches!(load(dir.path()), Err(SpecError::Parse { .. })));
    }

    #[test]
    fn versions() {
        for v in [
            "1.0.0",
            "1.0.2-dev",
            "1.1.0",
            "1.2.1",
            "1.3.0",
            "1.3.7-rc.1+git",
        ] {
            assert!(check_version(v).is_ok(), "{v}");
        }
        for v in [
            "0.9.0", "1.4.0", "2.0.0", "9.9.9", "1.0", "", "x.y.z", "1.0.0.0",
        ] {
            let err = check_version(v).unwrap_err().to_string();
            assert!(err.starts_with("config.json: ociVersion: "), "{err}");
        }
    }

    #[test]
    fn parse_errors_name_the_json_path() {
        let mut spec = default_spec(false, 0, 0);
        spec["linux"]["namespaces"][2]["type"] = "foo".into();
        let err = parse(spec.to_string().as_bytes(), "config.json")
            .unwrap_err()
            .to_string();
        let want = "config.json: linux.namespaces[2].type: unknown namespace \"foo\" (expected one of mount, ";
        assert!(err.starts_with(want), "{err}");
        let err = parse(b"{not json", "config.json").unwrap_err().to_string();
        assert!(err.starts_with("config.json: "), "{err}");
    }

    #[test]
    fn default_spec_round_trips_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        for rootless in [false, true] {
            let v = default_spec(rootless, 1000, 1000);
            let spec = parse(v.to_string().as_bytes(), "config.json").unwrap();
            assert_eq!(
                validate(&spec, dir.path()).unwrap(),
                dir.path().join("rootfs")
            );
        }
    }

    #[test]
    fn validation_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let cases: &[(&str, serde_json::Value, &str)] = &[
            ("/process/cwd", "relative".into(), "process.cwd"),
            ("/process/args", serde_json::json!([]), "process.args"),
            ("/root/path", "missing-dir".into(), "root.path"),
            (
                "/linux/sysctl",
                serde_json::json!({"kernel.panic": "1"}),
                "linux.sysctl.kernel.panic",
            ),
            ("/ociVersion", "9.9.9".into(), "ociVersion"),
            (
                "/process/apparmorProfile",
                "corral-test".into(),
                "process.apparmorProfile",
            ),
            (
                "/process/selinuxLabel",
                "system_u:system_r:container_t:s0".into(),
                "process.selinuxLabel",
            ),
        ];
        for (ptr, value, field) in cases {
            if (field.contains("apparmor") && apparmor_enabled())
                || (field.contains("selinux") && selinux_enabled())
            {
                continue; // the LSM is there: the request is valid here
            }
            let mut v = default_spec(false, 0, 0);
            *v.pointer_mut(ptr.rsplit_once('/').unwrap().0)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .entry(ptr.rsplit_once('/').unwrap().1)
                .or_insert(serde_json::Value::Null) = value.clone();
            let spec = parse(v.to_string().as_bytes(), "config.json").unwrap();
            let err = validate(&spec, dir.path()).unwrap_err().to_string();
            assert!(err.starts_with(&format!("config.json: {field}: ")), "{err}");
        }
    }
}
