//! Root-only tests of the controllers beyond cpu/memory/io/pids/hugetlb:
//! net_cls, net_prio, perf_event, rdma, misc and v2 cpuset partitions, each
//! where the kernel offers it, and the error where it does not.
//!
//! net_cls, net_prio and perf_event are not mounted on this host, nor in the
//! v2 VM. The test that needs them runs itself again under
//! `unshare -m --propagation private` and mounts those v1 hierarchies in that
//! private mount namespace only. A v1 hierarchy outlives its last mount if
//! it still has a child then, and a removed group stays a (dying) child for
//! a moment; so the test waits until the kernel has freed our group
//! (`/proc/cgroups` counts one cgroup, the root) before unmounting, and then
//! checks that the hierarchies are gone (hierarchy 0), as they were before.

#![allow(clippy::unwrap_used)] // a panic is the test failing

mod common;

use std::{path::Path, process::Command};

use common::{in_vm, TestCgroup, TestChild};
use corral_cgroups::{
    v2::cpuset::{Partition, PartitionState},
    Error, Layout,
};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxInterfacePriorityBuilder, LinuxNetworkBuilder, LinuxRdmaBuilder,
    LinuxResources, LinuxResourcesBuilder,
};

const IN_NS: &str = "CORRAL_TEST_PRIVATE_MOUNT_NS";

fn network(class_id: u32) -> LinuxResources {
    let lo = LinuxInterfacePriorityBuilder::default()
        .name("lo")
        .priority(5u32)
        .build()
        .unwrap();
    LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(class_id)
                .priorities(vec![lo])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Unmounts on drop (the namespace would too; this keeps the order: our
/// group is removed first, then the hierarchy's mount).
struct Mounted(Vec<std::path::PathBuf>);

impl Drop for Mounted {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = rustix::mount::unmount(p.as_path(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// `(hierarchy id, number of cgroups)` of `controller` in /proc/cgroups.
fn proc_cgroups(controller: &str) -> (u32, u32) {
    let text = std::fs::read_to_string("/proc/cgroups").unwrap();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&controller)).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .unwrap_or_else(|| panic!("{controller} not in /proc/cgroups"))
}

/// Polls `cond` every 10 ms for at most 10 s.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed().as_secs() < 10, "waited 10 s for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
#[ignore = "needs root"]
fn network_without_net_cls_is_refused_on_v1_and_ignored_on_v2() {
    let t = TestCgroup::new("nonet", true);
    let r = t.cg.apply(&network(7));
    if t.layout() == Layout::V2 {
        // v2 has neither controller: ignored with a warning, as runc does.
        r.unwrap();
    } else {
        let err = r.unwrap_err();
        assert!(
            matches!(err, Error::ControllerUnavailable { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "linux.resources.network.classID needs the net_cls controller, which is not available to cgroup {}",
                t.cg.cgroups_path()
            )
        );
    }
}

#[test]
#[ignore = "needs root"]
fn net_cls_net_prio_and_perf_event_in_a_private_mount_namespace() {
    if std::env::var_os(IN_NS).is_none() {
        let status = Command::new("unshare")
            .args(["-m", "--propagation", "private", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "net_cls_net_prio_and_perf_event_in_a_private_mount_namespace",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(IN_NS, "1")
            .status()
            .unwrap();
        assert!(status.success(), "the test in the private namespace failed");
        return;
    }
    let existed = ["net_cls", "perf_event"].map(|c| proc_cgroups(c).0 != 0);
    let tmp = tempfile::tempdir().unwrap();
    let mut mounted = Mounted(Vec::new());
    for opts in [c"net_cls,net_prio", c"perf_event"] {
        let target = tmp.path().join(opts.to_str().unwrap());
        std::fs::create_dir(&target).unwrap();
        rustix::mount::mount(
            "cgroup",
            &target,
            "cgroup",
            rustix::mount::MountFlags::empty(),
            opts,
        )
        .unwrap_or_else(|e| panic!("mount cgroup -o {opts:?}: {e}"));
        mounted.0.push(target);
    }
    let t = TestCgroup::new("net", true);
    let under = |m: &str| {
        t.cg.paths()
            .into_iter()
            .find(|p| p.starts_with(tmp.path().join(m)))
            .unwrap_or_else(|| panic!("no directory under the {m} mount: {:?}", t.cg.paths()))
    };
    let (net, perf) = (under("net_cls,net_prio"), under("perf_event"));
    assert!(net.is_dir() && perf.is_dir());

    t.cg.apply(&network(0x0010_0001)).unwrap();
    let read = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read(&net, "net_cls.classid").trim(), "1048577");
    assert!(
        read(&net, "net_prio.ifpriomap")
            .lines()
            .any(|l| l == "lo 5"),
        "{}",
        read(&net, "net_prio.ifpriomap")
    );

    // An interface name the kernel could never have is refused by us,
    // naming the file and the line.
    let bad = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .priorities(vec![LinuxInterfacePriorityBuilder::default()
                    .name("no such if")
                    .priority(1u32)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = t.cg.apply(&bad).unwrap_err().to_string();
    assert!(
        err.starts_with("net_prio.ifpriomap: invalid value \"no such if 1\" in cgroup /"),
        "{err}"
    );

    // perf_event: attaching is all there is.
    let child = TestChild::sleep();
    t.cg.add_task(child.pid()).unwrap();
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", child.pid())).unwrap();
    let rel = perf.strip_prefix(tmp.path().join("perf_event")).unwrap();
    let want = format!("perf_event:/{}", rel.display());
    assert!(own.lines().any(|l| l.ends_with(&want)), "{own}");
    drop(child);
    drop(t);
    assert!(!net.exists() && !perf.exists());
    for c in ["net_cls", "perf_event"] {
        wait_until(&format!("the kernel to free our {c} group"), || {
            proc_cgroups(c).1 == 1
        });
    }
    drop(mounted);
    for (c, existed) in ["net_cls", "perf_event"].into_iter().zip(existed) {
        if !existed {
            wait_until(&format!("the {c} hierarchy to go"), || {
                proc_cgroups(c).0 == 0
            });
        }
    }
}

#[test]
#[ignore = "needs root"]
fn rdma_limits_go_to_rdma_max_or_are_refused_clearly() {
    let t = TestCgroup::new("rdma", true);
    let mut map = std::collections::HashMap::new();
    map.insert(
        "corral_no_such_dev".to_owned(),
        LinuxRdmaBuilder::default()
            .hca_handles(2u32)
            .build()
            .unwrap(),
    );
    let r = LinuxResourcesBuilder::default().rdma(map).build().unwrap();
    let err = t.cg.apply(&r).unwrap_err().to_string();
    if t.dir_with("rdma.max").is_some() {
        // The controller exists (the VM); the kernel knows no such device.
        assert!(
            err.contains("rdma.max")
                && err.contains("corral_no_such_dev hca_handle=2 hca_object=max"),
            "{err}"
        );
        let max = t.read("rdma.max");
        assert!(corral_cgroups::rdma::parse(&max).is_some(), "{max:?}");
    } else {
        assert_eq!(
            err,
            format!(
                "linux.resources.rdma needs the rdma controller, which is not available to cgroup {}",
                t.cg.cgroups_path()
            )
        );
    }
}

#[test]
#[ignore = "needs root"]
fn misc_limits_are_read_and_refused_for_an_unknown_resource() {
    let t = TestCgroup::new("misc", true);
    if t.dir_with("misc.max").is_some() {
        let max = t.cg.misc_max().unwrap();
        assert_eq!(max.len(), t.read("misc.max").lines().count());
        let err = t.cg.set_misc_max("corral_nope", Some(1)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("misc.max: invalid value \"corral_nope 1\" in cgroup /"),
            "{err}"
        );
    } else {
        let err = t.cg.misc_max().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "misc resource limits needs the misc controller, which is not available to cgroup {}",
                t.cg.cgroups_path()
            )
        );
    }
}

#[test]
#[ignore = "needs root"]
fn a_v2_cpuset_partition_root_is_made_and_undone() {
    let t = TestCgroup::new("partition", true);
    if t.layout() != Layout::V2 {
        let err = t.cg.set_cpuset_partition(Partition::Root).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cpuset partitions (cpuset.cpus.partition) is not supported on cgroup v1"
        );
        return;
    }
    assert!(in_vm());
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(cpus >= 2, "a partition needs a CPU to take from the root");
    let last = (cpus - 1).to_string();
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .cpus(last.clone())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    t.cg.apply(&r).unwrap();
    assert_eq!(
        t.cg.cpuset_partition().unwrap().partition,
        Partition::Member
    );
    let state = t.cg.set_cpuset_partition(Partition::Root).unwrap();
    assert_eq!(
        state,
        PartitionState {
            partition: Partition::Root,
            invalid: None
        }
    );
    assert_eq!(t.read("cpuset.cpus.partition"), "root");
    assert_eq!(t.read("cpuset.cpus.effective"), last);
    let back = t.cg.set_cpuset_partition(Partition::Member).unwrap();
    assert_eq!(back.partition, Partition::Member);
    assert_eq!(t.read("cpuset.cpus.partition"), "member");
}
