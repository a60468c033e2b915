use super::*;

fn e(pid: i32, ppid: i32, pgid: i32, sid: i32) -> ProcEntry {
    ProcEntry {
        pid,
        ppid,
        pgid,
        sid,
        zombie: None,
        exit_signal: None,
    }
}

#[test]
fn a_tree_in_the_restorers_session_is_made_parents_first() {
    let tree = [
        e(10, 1, 5, 4),
        e(11, 10, 5, 4),
        e(12, 11, 5, 4),
        e(13, 10, 5, 4),
    ];
    let plan = Plan::new(&tree).unwrap();
    let made: Vec<(i32, i32)> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::Create { pid, parent } => (*pid, *parent),
            Step::Setsid(_) => panic!("no session here"),
        })
        .collect();
    assert_eq!(made, [(11, 10), (12, 11), (13, 10)]);
    assert!(plan.groups.iter().all(|(_, g)| g.is_none()));
}

#[test]
fn a_session_leader_makes_its_old_session_children_before_setsid() {
    // 20 led a session after forking 21, which kept the old one; 22 came
    // after and is in 20's session; 23 is a group of its own inside it.
    let tree = [
        e(10, 1, 10, 4),
        e(20, 10, 20, 20),
        e(21, 20, 10, 4),
        e(22, 20, 20, 20),
        e(23, 20, 23, 20),
    ];
    let plan = Plan::new(&tree).unwrap();
    let at = |s: Step| plan.steps.iter().position(|x| *x == s).unwrap();
    let create = |pid| Step::Create { pid, parent: 20 };
    assert!(at(create(21)) < at(Step::Setsid(20)));
    assert!(at(Step::Setsid(20)) < at(create(22)));
    assert_eq!(
        plan.groups[..3],
        [(10, Some(10)), (20, Some(20)), (23, Some(23))]
    );
    assert!(plan.groups.contains(&(22, Some(20))));
}

#[test]
fn a_session_or_group_led_from_outside_is_refused_by_process() {
    let session = [e(10, 1, 5, 4), e(11, 10, 11, 77)];
    let err = Plan::new(&session).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pid 11: session 77 whose leader is not in the tree"
    );
    let group = [e(10, 1, 5, 4), e(11, 10, 66, 4)];
    let err = Plan::new(&group).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pid 11: process group 66 whose leader is not in the tree"
    );
    // A group whose leader left it is as good as gone.
    let left = [e(10, 1, 5, 4), e(11, 10, 12, 4), e(12, 10, 11, 4)];
    assert!(Plan::new(&left).is_err());
}

#[test]
fn zombies_cannot_be_parents_and_come_last() {
    let mut z = e(11, 10, 5, 4);
    z.zombie = Some(7 << 8);
    let plan = Plan::new(&[e(10, 1, 5, 4), z.clone()]).unwrap();
    assert_eq!(plan.zombies, [(11, 10, 7 << 8)]);
    assert!(Plan::new(&[e(10, 1, 5, 4), z.clone(), e(12, 11, 5, 4)]).is_err());
    z.zombie = Some(libc::SIGSEGV | 0x80);
    let err = Plan::new(&[e(10, 1, 5, 4), z]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pid 11: zombie with wait status 0x8b (a core dump, or not an exit)"
    );
}

#[test]
fn stat_gives_ids_and_a_zombies_status() {
    let mut line = "42 (a) b) Z 10 11 12 0 -1".to_string();
    for field in 9..52 {
        line.push_str(if field == 38 { " 17" } else { " 0" }); // exit_signal SIGCHLD
    }
    line.push_str(" 1792\n");
    let (entry, state) = parse_stat_ids(42, &line).unwrap();
    assert_eq!(state, 'Z');
    assert_eq!(
        entry,
        ProcEntry {
            zombie: Some(1792),
            ..e(42, 10, 11, 12)
        }
    );
    let other = line.replace(" 17 ", " 0 ");
    assert_eq!(parse_stat_ids(42, &other).unwrap().0.exit_signal, Some(0));
    let own = std::fs::read_to_string("/proc/self/stat").unwrap();
    let me = std::process::id() as i32;
    let (entry, _) = parse_stat_ids(me, &own).unwrap();
    // Not rustix's getpgrp/getsid: they panic on 0, the id of a group or
    // session led from outside our pid namespace (as under a CI runner that
    // never called setsid).
    assert_eq!(entry.pgid, crate::sys::getpgid(0).unwrap());
}

#[test]
fn an_image_without_a_tree_is_one_process() {
    let inv = Inventory {
        kernel_release: String::new(),
        corral_version: String::new(),
        root_pid: 9,
        tasks: vec![9],
        tree: vec![],
        shared_fds: vec![],
        time_ns: None,
        console: None,
        pid_ns: false,
        mount_ns: false,
        inherited_stdio: vec![],
    };
    check_inventory(&inv).unwrap();
    let mut bad = inv.clone();
    bad.tasks.push(10);
    assert!(check_inventory(&bad).is_err());
    let mut bad = inv;
    bad.shared_fds = vec![vec![TaskFd { pid: 3, fd: 1 }, TaskFd { pid: 9, fd: 1 }]];
    assert!(check_inventory(&bad).is_err());
}
