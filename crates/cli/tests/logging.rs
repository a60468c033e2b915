//! `--log FILE --log-format json`: the log file gets one JSON object per line
//! with runc's keys (`level`, `msg`, `time`), as containerd's shim reads them.
//!
//! Run as root: `cargo test -p corral --test logging -- --include-ignored`;
//! against runc: `CORRAL_BIN=/usr/sbin/runc cargo test …`.

mod common;

use std::fs;

use common::{is_rfc3339, Bundle};
use serde_json::Value;

#[test]
#[ignore = "needs root"]
fn json_log_of_a_failed_create() {
    let bundle = Bundle::new("jsonlog");
    fs::remove_dir_all(bundle.rootfs()).unwrap();
    let log = bundle.tmp_dir().join("runtime.log");
    let dir = bundle.dir();
    let args = [
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        dir.to_str().unwrap(),
        bundle.id(),
    ];
    let out = bundle.runtime(&args);
    // runc with --log still prints the message on stderr, without the
    // `time=… level=error msg=` decoration: `runc create failed: invalid
    // rootfs: stat <bundle>/rootfs: no such file or directory`.
    out.assert_error(&["rootfs"], &[]);

    let text =
        fs::read_to_string(&log).unwrap_or_else(|e| panic!("no log at {}: {e}", log.display()));
    let records: Vec<Value> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("log line {line:?} is not JSON: {e}"))
        })
        .collect();
    assert!(!records.is_empty(), "empty log");
    for record in &records {
        let level = record["level"]
            .as_str()
            .unwrap_or_else(|| panic!("no level: {record}"));
        assert_eq!(level, level.to_lowercase(), "level is lowercase: {record}");
        assert!(record["msg"].is_string(), "no msg: {record}");
        let time = record["time"]
            .as_str()
            .unwrap_or_else(|| panic!("no time: {record}"));
        assert!(is_rfc3339(time), "time {time:?} is not RFC 3339");
    }
    let errors: Vec<&Value> = records.iter().filter(|r| r["level"] == "error").collect();
    assert!(!errors.is_empty(), "no error record in:\n{text}");
    assert!(
        errors
            .iter()
            .any(|r| r["msg"].as_str().is_some_and(|m| m.contains("rootfs"))),
        "no error record names the rootfs:\n{text}"
    );
    bundle.assert_no_leaks();
}

#[test]
fn rfc3339_checker_accepts_and_refuses() {
    for good in [
        "2026-11-23T13:49:49Z",
        "2026-11-23T13:47:18.041851102Z",
        "2026-11-23T13:47:18+01:00",
        "2026-11-23t13:47:18.5-05:30",
    ] {
        assert!(is_rfc3339(good), "{good}");
    }
    for bad in [
        "",
        "2026-11-23 13:49:49Z",
        "2026-11-23T13:49:49",
        "2026-11-23T13:49:49.Z",
        "2026-11-23T13:49:49+0100",
        "26-11-23T13:49:49Z",
        "Nov 23 13:49:49",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
    }
}
