//! Per-container syslog: busybox's `logger` in the container writes to
//! /dev/log; `corral syslog` reads the messages back, stamped with the
//! container id. A flood is bounded (rotated files, dropped and counted
//! messages) and never blocks the container.
//!
//! Run as root: `cargo test -p corral --test syslog -- --include-ignored`.

mod common;

use std::fs;

use common::{is_runc, Bundle};
use serde_json::Value;

#[test]
#[ignore = "needs root"]
fn logger_messages_reach_corral_syslog() {
    if is_runc() {
        return; // corral's own feature
    }
    let bundle = Bundle::new("syslog");
    bundle.set_args(&[
        "sh",
        "-c",
        "logger -t app hello-from-logger; logger -p user.err second",
    ]);
    bundle
        .runtime(&["run", "--keep", "--syslog", bundle.id()])
        .assert_success();
    let out = bundle.runtime(&["syslog", bundle.id()]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains(&format!(" {}: ", bundle.id())),
        "stamped with the id: {out}"
    );
    assert!(lines[0].ends_with("app: hello-from-logger"), "{out}");
    assert!(
        lines[1].contains("<11>") && lines[1].ends_with("second"),
        "priority kept: {out}"
    );
    let out = bundle.runtime(&["syslog", "--json", bundle.id()]);
    let first: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], bundle.id());
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    // --since after the last message prints nothing.
    let out = bundle.runtime(&["syslog", "--since", "2999-01-01T00:00:00Z", bundle.id()]);
    assert_eq!(out.stdout, "", "{out}");
    // delete removes the log with the state directory.
    let state = bundle.state_dir();
    assert!(state.join("syslog.log").exists());
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    assert!(!state.exists());
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn a_flood_is_bounded_and_does_not_block() {
    if is_runc() {
        return;
    }
    let bundle = Bundle::new("syslogflood");
    bundle.edit_config(|c| {
        c["annotations"] = serde_json::json!({
            "run.corral.syslog": "true",
            "run.corral.syslog.max-bytes": "65536"
        });
    });
    // One logger process sending 60000 messages as fast as it can.
    bundle.set_args(&[
        "sh",
        "-c",
        "yes flood-message | head -n 60000 | logger -t flood; echo done",
    ]);
    let out = bundle.runtime(&["run", "--keep", bundle.id()]);
    out.assert_success();
    assert_eq!(out.stdout, "done\n", "the logger finished: {out}");
    let state = bundle.state_dir();
    let size = |name: &str| fs::metadata(state.join(name)).map_or(0, |m| m.len());
    assert!(
        size("syslog.log") + size("syslog.log.1") <= 65536,
        "bounded by max-bytes"
    );
    assert!(size("syslog.log.1") > 0, "rotated");
    let out = bundle.runtime(&["syslog", bundle.id()]);
    assert!(
        out.stdout.contains("flood: flood-message"),
        "{}",
        &out.stdout[..out.stdout.len().min(500)]
    );
    assert!(
        out.stdout.contains("corral: dropped "),
        "drops are counted and said"
    );
    bundle.runtime(&["delete", bundle.id()]).assert_success();
    bundle.assert_no_leaks();
}
