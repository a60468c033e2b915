//! `corral cgroup …` against the kernel: every test creates its groups below
//! its own `corral-test-…` parent (so moving a process out never writes a
//! hierarchy root), checks the kernel's files, and removes everything in a
//! guard's `Drop`, failing or not. Runs on v1/hybrid hosts and on pure v2.
#![allow(clippy::unwrap_used)] // tests: a panic is the test failing

use std::{
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const CTRLS: &str = "memory,pids,cpu";

fn corral(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("cgroup")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = corral(args);
    assert!(
        out.status.success(),
        "corral cgroup {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one line of stderr of a command that must fail with status 1.
fn fails(args: &[&str]) -> String {
    let out = corral(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "corral cgroup {args:?} should fail"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("corral: "), "{err}");
    err
}

fn is_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The kernel's directory of `path` in `controller`'s hierarchy.
fn kdir(controller: &str, path: &str) -> PathBuf {
    if is_v2() {
        PathBuf::from("/sys/fs/cgroup").join(path)
    } else {
        PathBuf::from("/sys/fs/cgroup").join(controller).join(path)
    }
}

fn kread(controller: &str, path: &str, file: &str) -> String {
    let p = kdir(controller, path).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

/// A `corral-test-…` parent group in memory, pids and cpu; `child` names
/// a group below it. Drop kills what is left inside and removes it all.
struct Parent {
    name: String,
}

impl Parent {
    fn new(tag: &str) -> Parent {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("corral-test-{}-{n}-{tag}", std::process::id());
        let p = Parent { name };
        ok(&["create", "-g", &format!("{CTRLS}:/{}", p.name)]);
        p
    }

    fn child(&self, name: &str) -> String {
        format!("{}/{name}", self.name)
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for c in ["memory", "pids", "cpu"] {
            let root = kdir(c, &self.name);
            let mut stack = vec![root];
            while let Some(d) = stack.pop() {
                if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                }
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        stack.push(e.path());
                    }
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let out = corral(&["delete", "-r", "-g", &format!("{CTRLS}:/{}", self.name)]);
        if !out.status.success() {
            eprintln!(
                "test cleanup: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn create_set_get_exec_classify_delete() {
    let p = Parent::new("cycle");
    let g = p.child("g");
    ok(&["create", "-g", &format!("{CTRLS}:/{g}")]);
    for c in ["memory", "pids", "cpu"] {
        assert!(kdir(c, &g).is_dir(), "{c}: {}", kdir(c, &g).display());
    }
    if !is_v2() {
        assert!(
            !kdir("freezer", &g).exists(),
            "only the controllers asked for"
        );
    }
    ok(&[
        "set",
        "-r",
        "memory.limit_in_bytes=64M",
        "-r",
        "pids.max=12",
        "-r",
        "cpu.shares=512",
        &g,
    ]);
    if is_v2() {
        assert_eq!(kread("memory", &g, "memory.max"), "67108864");
        assert_eq!(kread("cpu", &g, "cpu.weight"), "59");
    } else {
        assert_eq!(kread("memory", &g, "memory.limit_in_bytes"), "67108864");
        assert_eq!(kread("cpu", &g, "cpu.shares"), "512");
    }
    assert_eq!(kread("pids", &g, "pids.max"), "12");

    // cgget's format: the group, "name: value" lines, a blank line.
    let out = ok(&["get", "-r", "memory.limit_in_bytes", "-r", "pids.max", &g]);
    assert_eq!(
        out,
        format!("{g}:\nmemory.limit_in_bytes: 67108864\npids.max: 12\n\n")
    );
    assert_eq!(ok(&["get", "-n", "-v", "-r", "pids.max", &g]), "12\n");
    // A name of the other version reads the same kernel value.
    // Weights are coarser than shares: on v2, 512 shares read back as the
    // shares value that maps to the same weight.
    if is_v2() {
        let shares: u64 = ok(&["get", "-n", "-v", "-r", "cpu.shares", &g])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(corral_cgroups::v2::cpu::shares_to_weight(shares), 59);
    } else {
        assert_eq!(ok(&["get", "-n", "-v", "-r", "cpu.weight", &g]), "59\n");
    }

    let seen = ok(&[
        "exec",
        "-g",
        &format!("pids,memory:/{g}"),
        "--",
        "cat",
        "/proc/self/cgroup",
    ]);
    let want = if is_v2() {
        format!("0::/{g}")
    } else {
        format!("pids:/{g}")
    };
    assert!(seen.lines().any(|l| l.ends_with(&want)), "{seen}");

    let mut sleeper = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = sleeper.id().to_string();
    ok(&["classify", "-g", &format!("{CTRLS}:/{g}"), &pid]);
    assert!(kread("pids", &g, "cgroup.procs").lines().any(|l| l == pid));

    // A live process: refused, naming it, and nothing removed.
    let err = fails(&["delete", "-g", &format!("{CTRLS}:/{g}")]);
    assert!(err.contains(&pid) && err.contains("-r"), "{err}");
    for c in ["memory", "pids", "cpu"] {
        assert!(kdir(c, &g).is_dir(), "{c} removed after a refused delete");
    }
    if is_v2() {
        // The parent enables controllers for its children: v2 lets no
        // process live there, so -r cannot move it and says why.
        let err = fails(&["delete", "-r", "-g", &format!("{CTRLS}:/{g}")]);
        assert!(
            err.contains(&pid) && err.contains("allows no process"),
            "{err}"
        );
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        // -r removes child groups too, leaf first.
        ok(&["create", "-g", &format!("{CTRLS}:/{g}/sub/leaf")]);
        ok(&["delete", "-r", "-g", &format!("{CTRLS}:/{g}")]);
    } else {
        // -r moves it to the parent, as cgdelete does, from child groups
        // too, and removes them leaf first.
        ok(&["create", "-g", &format!("{CTRLS}:/{g}/sub/leaf")]);
        ok(&["classify", "-g", &format!("{CTRLS}:/{g}/sub/leaf"), &pid]);
        ok(&["delete", "-r", "-g", &format!("{CTRLS}:/{g}")]);
        let procs = kread("pids", &p.name, "cgroup.procs");
        assert!(procs.lines().any(|l| l == pid), "{procs}");
    }
    for c in ["memory", "pids", "cpu"] {
        assert!(!kdir(c, &g).exists(), "{c} left behind");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
#[ignore = "needs root"]
fn names_of_the_other_version_are_translated() {
    let p = Parent::new("translate");
    let g = p.child("t");
    ok(&["create", "-g", &format!("{CTRLS}:/{g}")]);
    if is_v2() {
        ok(&[
            "set",
            "-r",
            "memory.limit_in_bytes=-1",
            "-r",
            "cpu.cfs_quota_us=50000",
            &g,
        ]);
        assert_eq!(kread("memory", &g, "memory.max"), "max");
        assert_eq!(kread("cpu", &g, "cpu.max"), "50000 100000");
        ok(&["set", "-r", "cpu.cfs_period_us=20000", &g]);
        assert_eq!(kread("cpu", &g, "cpu.max"), "50000 20000");
        assert_eq!(
            ok(&["get", "-n", "-v", "-r", "cpu.cfs_quota_us", &g]),
            "50000\n"
        );
    } else {
        ok(&[
            "set",
            "-r",
            "memory.max=32M",
            "-r",
            "cpu.max=50000 100000",
            &g,
        ]);
        assert_eq!(kread("memory", &g, "memory.limit_in_bytes"), "33554432");
        assert_eq!(kread("cpu", &g, "cpu.cfs_quota_us"), "50000");
        ok(&["set", "-r", "cpu.weight=100", &g]);
        assert_eq!(kread("cpu", &g, "cpu.shares"), "1024");
        assert_eq!(
            ok(&["get", "-n", "-v", "-r", "cpu.max", &g]),
            "50000 100000\n"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn bad_input_gets_one_line_naming_it() {
    let p = Parent::new("bad");
    let g = p.child("b");
    ok(&["create", "-g", &format!("{CTRLS}:/{g}")]);
    let err = fails(&["set", "-r", "pids.max=banana", &g]);
    assert!(
        err.contains("pids.max") && err.contains("\"banana\""),
        "{err}"
    );
    assert_eq!(kread("pids", &g, "pids.max"), "max", "nothing written");
    let err = fails(&["set", "-r", "cpu.shares=lots", &g]);
    assert!(err.contains("cpu.shares") && err.contains("lots"), "{err}");
    let err = fails(&["create", "-g", "bogus:/x"]);
    assert!(err.contains("unknown controller \"bogus\""), "{err}");
    let err = fails(&["create", "-g", "pids:/../.."]);
    assert!(err.contains("escapes"), "{err}");
    let err = fails(&["set", "-r", "pids.nosuch=1", &g]);
    assert!(err.contains("no setting pids.nosuch"), "{err}");
    let v1_only = if is_v2() {
        "memory.swappiness=10"
    } else {
        "memory.high=1M"
    };
    let err = fails(&["set", "-r", v1_only, &g]);
    assert!(err.contains("equivalent"), "{err}");
    let missing = p.child("missing");
    let err = fails(&["get", "-r", "pids.max", &missing]);
    assert!(err.contains("does not exist"), "{err}");
    let err = fails(&["delete", "-g", &format!("pids:/{missing}")]);
    assert!(err.contains("No such file"), "{err}");
    // A group with a child group is refused without -r, and kept.
    ok(&["create", "-g", &format!("pids:/{g}/sub")]);
    let err = fails(&["delete", "-g", &format!("pids:/{g}")]);
    assert!(err.contains("child groups"), "{err}");
    assert!(kdir("pids", &format!("{g}/sub")).is_dir());
}

#[test]
#[ignore = "needs root"]
fn a_v1_cpuset_group_gets_its_parents_cpus_and_mems() {
    if is_v2() {
        return; // v2 cpuset files start empty and mean "the parent's"
    }
    /// Removes the cpuset group (and its children) however the test ends.
    struct Top(String);
    impl Drop for Top {
        fn drop(&mut self) {
            let _ = corral(&["delete", "-r", "-g", &format!("cpuset:/{}", self.0)]);
        }
    }
    let top = Top(format!("corral-test-{}-cpuset", std::process::id()));
    // The top group is made by walking from the mount, the nested ones
    // next to an existing parent and by walking to a missing one.
    for g in [
        top.0.clone(),
        format!("{}/a", top.0),
        format!("{}/b/c", top.0),
    ] {
        ok(&["create", "-g", &format!("cpuset:/{g}")]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            assert!(!kread("cpuset", &g, file).is_empty(), "{g}: {file} empty");
        }
    }
    ok(&["delete", "-r", "-g", &format!("cpuset:/{}", top.0)]);
    assert!(!kdir("cpuset", &top.0).exists());
}

#[test]
#[ignore = "needs root"]
fn a_pids_limit_of_12_holds_against_40_forks() {
    let p = Parent::new("forks");
    let g = p.child("f");
    ok(&["create", "-g", &format!("pids:/{g}")]);
    ok(&["set", "-r", "pids.max=12", &g]);
    let out = corral(&[
        "exec",
        "-g",
        &format!("pids:/{g}"),
        "--",
        "sh",
        "-c",
        "for i in $(seq 40); do sleep 1 & done; wait",
    ]);
    assert!(!out.status.success(), "some fork must fail");
    let events = kread("pids", &g, "pids.events");
    let refused: u64 = events.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(refused > 0, "pids.events: {events}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["stat", "--json", &format!("pids:/{g}")])).unwrap();
    assert_eq!(json["stats"]["pids_limit"], 12);
    assert!(json["stats"]["pids_current"].as_u64().unwrap() <= 12);
}

#[test]
#[ignore = "needs root"]
fn stat_tree_list_and_subsys() {
    let p = Parent::new("show");
    let g = p.child("s");
    ok(&["create", "-g", &format!("{CTRLS}:/{g}")]);
    ok(&["set", "-r", "pids.max=7", &g]);
    let table = ok(&["stat", &g]);
    assert!(table.contains("PIDS       0 / 7"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["stat", "--json", &g])).unwrap();
    assert_eq!(json["stats"]["pids_limit"], 7);
    let tree = ok(&["tree", "-g", "pids", &format!("/{}", p.name)]);
    assert!(
        tree.lines().any(|l| l.trim_start().starts_with("s ")),
        "{tree}"
    );
    let list = ok(&["list", &format!("pids:/{}", p.name)]);
    let name = if is_v2() { "cpu,memory,pids" } else { "pids" };
    assert!(list.contains(&format!(":/{g}")), "{list}");
    assert!(list.lines().next().unwrap().ends_with('/'), "{list}");
    let subsys = ok(&["subsys", "-m"]);
    if is_v2() {
        assert!(
            subsys.lines().any(|l| l.ends_with(" /sys/fs/cgroup")),
            "{subsys}"
        );
    } else {
        assert!(
            subsys.lines().any(|l| l == "pids /sys/fs/cgroup/pids"),
            "{subsys}"
        );
        assert!(list.starts_with(&format!("{name}:")), "{list}");
    }
}

#[test]
#[ignore = "needs root"]
fn apply_creates_the_groups_of_a_cgconfig_file() {
    let p = Parent::new("conf");
    let g = p.child("c");
    let conf = format!(
        "# test\ngroup {g} {{\n  perm {{\n    task {{ uid = root; gid = root; fperm = 660; }}\n    admin {{ uid = 0; gid = 0; dperm = 755; fperm = 644; }}\n  }}\n  pids {{ pids.max = 9; }}\n  memory {{ memory.limit_in_bytes = \"16M\"; }}\n}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cgconfig.conf");
    std::fs::write(&file, conf).unwrap();
    ok(&["apply", "-l", file.to_str().unwrap()]);
    assert_eq!(kread("pids", &g, "pids.max"), "9");
    let mem = if is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(kread("memory", &g, mem), "16777216");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(kdir("pids", &g).join("cgroup.procs"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    std::fs::write(&file, "group x {\n  pids { pids.max 9; }\n}\n").unwrap();
    let err = fails(&["apply", "-l", file.to_str().unwrap()]);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
#[ignore = "needs root"]
fn apply_checks_mounts_and_uses_default_and_exec_makes_groups_from_templates() {
    let p = Parent::new("tmpl");
    let (d, pattern) = (p.child("d"), p.child("t-%u-%p"));
    let conf = format!(
        "mount {{ pids = /corral-nowhere/pids; }}\n\
         group {d} {{ pids {{ pids.max = 5; }} }}\n\
         default {{ perm {{ task {{ uid = root; gid = root; fperm = 640; }} }} }}\n\
         template {pattern} {{ pids {{ pids.max = 7; }} }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cgconfig.conf");
    std::fs::write(&file, conf).unwrap();
    let file = file.to_str().unwrap();

    let out = corral(&["apply", "-l", file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("mount pids = /corral-nowhere/pids: corral does not mount hierarchies"),
        "{err}"
    );
    assert_eq!(kread("pids", &d, "pids.max"), "5");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(kdir("pids", &d).join("cgroup.procs"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "the default block's task fperm");
    let made = p.child("t-root-cat");
    assert!(
        !kdir("pids", &made).exists(),
        "apply makes no template group"
    );

    // exec expands %u and %p and makes the group from the template.
    let spec = format!("pids:{pattern}");
    let out = ok(&[
        "exec",
        "--config",
        file,
        "--sticky",
        "-g",
        &spec,
        "--",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert_eq!(kread("pids", &made, "pids.max"), "7");
    let want = if is_v2() {
        format!("0::/{made}")
    } else {
        format!(":pids:/{made}")
    };
    assert!(out.lines().any(|l| l.ends_with(&want)), "{out}");
    // A second exec joins the group that now exists.
    let again = ok(&[
        "exec",
        "--config",
        file,
        "-g",
        &spec,
        "--",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(again.lines().any(|l| l.ends_with(&want)), "{again}");
}
