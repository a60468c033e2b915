//! Differential tests: the same scenario with Debian's runc and with corral,
//! each in its own bundle, container id and `--root`, comparing what a caller
//! (containerd, podman, a script) relies on: exit codes, the keys and value
//! types of `state` and `list --format json`, `list`'s table and `-q`, `spec`,
//! the `--pid-file` format and the keys of `--log-format json` records.
//!
//! Run as root: `cargo test -p corral --test versus_runc -- --include-ignored`.
//! runc (`/usr/sbin/runc`, Debian's 1.1.5) is the reference and must be
//! installed: a missing runc fails the tests, it does not skip them.
//!
//! Both bundles run runc's `spec` output (the reference input) with the same
//! edits, so only the runtime differs; corral's own `spec` is compared in
//! [`spec_matches_runc`]. Messages are not compared: corral's name the
//! offending thing (id, file, value) where runc's often do not, which is a
//! deliberate difference. Nor are values that differ by nature or by design:
//! pids, paths, times, `ociVersion` (runc 1.1.5 writes `1.0.2-dev`, corral the
//! spec version it implements) and `hostname`. Exit codes, JSON keys and value
//! types, status strings and `list -q` must match. Each test
//! collects every difference and fails once, listing them all with both
//! runtimes' output.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

mod common;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use common::{kill_pid, Bundle, Output};
use serde_json::Value;

/// Debian's runc, the reference.
const RUNC: &str = "/usr/sbin/runc";

fn runc_bin() -> PathBuf {
    assert!(
        Path::new(RUNC).is_file(),
        "{RUNC} is missing: these tests compare corral with Debian's runc; \
         run `apt-get install runc`"
    );
    PathBuf::from(RUNC)
}

fn corral_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_corral"))
}

// ---------------------------------------------------------------------------
// Two bundles, one scenario
// ---------------------------------------------------------------------------

/// One bundle driven by runc and one by corral, with the same `config.json`.
struct Pair {
    runc: Bundle,
    corral: Bundle,
}

impl Pair {
    fn new(name: &str) -> Pair {
        let runc = Bundle::with_runtime(&format!("{name}-runc"), runc_bin());
        let corral = Bundle::with_runtime(&format!("{name}-corral"), corral_bin());
        fs::copy(runc.config_path(), corral.config_path()).unwrap();
        let pair = Pair { runc, corral };
        pair.each(|b| b.set_hostname(name));
        pair
    }

    /// Does `f` to the runc bundle, then to the corral bundle.
    fn each(&self, f: impl Fn(&Bundle)) {
        f(&self.runc);
        f(&self.corral);
    }

    /// `f`'s result for the runc bundle and for the corral bundle.
    fn both<T>(&self, f: impl Fn(&Bundle) -> T) -> (T, T) {
        (f(&self.runc), f(&self.corral))
    }

    /// Runs `args` (with `{id}` replaced by each bundle's id) with both runtimes.
    fn runtime(&self, args: &[&str]) -> (Output, Output) {
        self.both(|b| {
            let args: Vec<&str> = args
                .iter()
                .map(|&a| if a == "{id}" { b.id() } else { a })
                .collect();
            b.runtime(&args)
        })
    }

    #[track_caller]
    fn assert_no_leaks(&self) {
        self.runc.assert_no_leaks();
        self.corral.assert_no_leaks();
    }
}

// ---------------------------------------------------------------------------
// Comparison and reporting
// ---------------------------------------------------------------------------

/// The differences one test found; [`Report::finish`] fails the test if any.
#[derive(Default)]
struct Report {
    diffs: Vec<String>,
}

impl Report {
    fn add(&mut self, scenario: &str, detail: String) {
        self.diffs.push(format!("* {scenario}: {detail}"));
    }

    /// Same exit code from both runtimes.
    fn code(&mut self, scenario: &str, runc: &Output, corral: &Output) {
        if runc.code != corral.code {
            self.add(
                scenario,
                format!(
                    "runc exits {}, corral exits {}\n  runc:   `{}`\n{}\n  corral: `{}`\n{}",
                    runc.code,
                    corral.code,
                    runc.cmd,
                    indent(runc),
                    corral.cmd,
                    indent(corral)
                ),
            );
        }
    }

    /// Same exit code, and runc's is `expected` (a guard against a scenario
    /// whose setup broke, so that both fail for the wrong reason).
    fn code_is(&mut self, scenario: &str, expected: i32, runc: &Output, corral: &Output) {
        assert_eq!(
            runc.code, expected,
            "{scenario}: runc itself no longer exits {expected} (fix the scenario):\n{runc}"
        );
        self.code(scenario, runc, corral);
    }

    /// Same text after normalisation.
    fn text(&mut self, scenario: &str, runc: &str, corral: &str) {
        if runc != corral {
            self.add(
                scenario,
                format!("\n  runc:   {runc:?}\n  corral: {corral:?}"),
            );
        }
    }

    /// Same JSON value.
    fn json(&mut self, scenario: &str, runc: &Value, corral: &Value) {
        if runc != corral {
            self.add(scenario, format!("\n  runc:   {runc}\n  corral: {corral}"));
        }
    }

    /// Same set of strings: lists what only one side has.
    fn set(&mut self, scenario: &str, runc: &BTreeSet<String>, corral: &BTreeSet<String>) {
        let only_runc: Vec<_> = runc.difference(corral).collect();
        let only_corral: Vec<_> = corral.difference(runc).collect();
        if !only_runc.is_empty() || !only_corral.is_empty() {
            self.add(
                scenario,
                format!("\n  only runc has:   {only_runc:?}\n  only corral has: {only_corral:?}"),
            );
        }
    }

    /// Same list, in the same order: shows the elements only one side has,
    /// then both lists if only the order differs.
    fn list(&mut self, scenario: &str, runc: &Value, corral: &Value) {
        if runc == corral {
            return;
        }
        let items = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().map(Value::to_string).collect())
                .unwrap_or_else(|| vec![format!("(not an array: {v})")])
        };
        let (r, c) = (items(runc), items(corral));
        let only_runc: Vec<_> = r.iter().filter(|x| !c.contains(x)).collect();
        let only_corral: Vec<_> = c.iter().filter(|x| !r.contains(x)).collect();
        let mut detail = String::new();
        for x in &only_runc {
            detail.push_str(&format!("\n  - {x}  (runc only)"));
        }
        for x in &only_corral {
            detail.push_str(&format!("\n  + {x}  (corral only)"));
        }
        if only_runc.is_empty() && only_corral.is_empty() {
            detail =
                format!("same elements, different order\n  runc:   {runc}\n  corral: {corral}");
        }
        self.add(scenario, detail);
    }

    /// Same JSON shape: every key runc has, corral has with the same type of
    /// value, recursively. Keys only corral has are allowed and printed (they
    /// show up with `--nocapture`).
    fn shape(&mut self, scenario: &str, runc: &Value, corral: &Value) {
        let mut extra = Vec::new();
        let mut wrong = Vec::new();
        shape_diff("$", runc, corral, &mut wrong, &mut extra);
        if !extra.is_empty() {
            eprintln!("{scenario}: keys only corral has: {extra:?}");
        }
        if !wrong.is_empty() {
            self.add(
                scenario,
                format!(
                    "{}\n  runc:   {runc}\n  corral: {corral}",
                    wrong.iter().map(|w| format!("\n  {w}")).collect::<String>()
                ),
            );
        }
    }

    #[track_caller]
    fn finish(self) {
        assert!(
            self.diffs.is_empty(),
            "corral differs from runc in {} case(s):\n{}",
            self.diffs.len(),
            self.diffs.join("\n")
        );
    }
}

fn indent(out: &Output) -> String {
    let mut s = String::new();
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            s.push_str(&format!("    {name}: {line}\n"));
        }
    }
    s.trim_end().to_owned()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Walks `runc` and `corral` together: `wrong` gets the keys corral lacks and
/// the values whose types differ, `extra` the keys only corral has.
fn shape_diff(
    path: &str,
    runc: &Value,
    corral: &Value,
    wrong: &mut Vec<String>,
    extra: &mut Vec<String>,
) {
    match (runc, corral) {
        (Value::Object(r), Value::Object(c)) => {
            for (key, rv) in r {
                let sub = format!("{path}.{key}");
                match c.get(key) {
                    Some(cv) => shape_diff(&sub, rv, cv, wrong, extra),
                    None => wrong.push(format!("{sub}: missing in corral (runc: {rv})")),
                }
            }
            for key in c.keys().filter(|k| !r.contains_key(*k)) {
                extra.push(format!("{path}.{key}"));
            }
        }
        (Value::Array(r), Value::Array(c)) => {
            if r.len() != c.len() {
                wrong.push(format!(
                    "{path}: runc has {} element(s), corral {}",
                    r.len(),
                    c.len()
                ));
            }
            for (i, (rv, cv)) in r.iter().zip(c).enumerate() {
                shape_diff(&format!("{path}[{i}]"), rv, cv, wrong, extra);
            }
        }
        _ if type_name(runc) != type_name(corral) => wrong.push(format!(
            "{path}: runc has a {} ({runc}), corral a {} ({corral})",
            type_name(runc),
            type_name(corral)
        )),
        _ => {}
    }
}

/// Parses a runtime's JSON output, failing the test with the output if it is not JSON.
#[track_caller]
fn parse(out: &Output) -> Value {
    out.assert_success();
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{out}", out.cmd))
}

/// `text` with the bundle's id, bundle path and state root replaced by
/// placeholders, so that two runtimes' outputs compare.
fn normalise(b: &Bundle, text: &str) -> String {
    text.replace(&b.dir().to_string_lossy().into_owned(), "<BUNDLE>")
        .replace(&b.state_root().to_string_lossy().into_owned(), "<ROOT>")
        .replace(b.id(), "<ID>")
}

// ---------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn exit_code_of_run_is_the_process_status() {
    let pair = Pair::new("vs-exit42");
    pair.each(|b| b.set_args(&["sh", "-c", "exit 42"]));
    let mut report = Report::default();
    let (r, c) = pair.runtime(&["run", "{id}"]);
    report.code_is("run of `exit 42`", 42, &r, &c);
    pair.assert_no_leaks();
    report.finish();
}

#[test]
#[ignore = "needs root"]
fn exit_code_of_run_of_a_killed_process() {
    let pair = Pair::new("vs-signals");
    let mut report = Report::default();

    // SIGKILL from the host (PID 1 of a pid namespace ignores its own).
    pair.each(|b| b.set_args(&["sleep", "1000"]));
    let (r, c) = pair.both(|b| {
        let run = b.spawn(&["run", b.id()]);
        b.wait_for_status("running");
        kill_pid(b.pid());
        run.wait()
    });
    report.code_is("run of a process killed by SIGKILL", 128 + 9, &r, &c);

    // SIGKILL through the runtime's `kill`.
    let (r, c) = pair.both(|b| {
        let run = b.spawn(&["run", b.id()]);
        b.wait_for_status("running");
        b.runtime(&["kill", b.id(), "KILL"]).assert_success();
        run.wait()
    });
    report.code_is("run of a process killed by `kill KILL`", 128 + 9, &r, &c);

    // SIGTERM sent to itself, outside a pid namespace (not an init).
    pair.each(|b| {
        b.remove_namespace("pid");
        b.set_args(&["sh", "-c", "kill -TERM $$; echo survived"]);
    });
    let (r, c) = pair.runtime(&["run", "{id}"]);
    report.code_is("run of a process killed by SIGTERM", 128 + 15, &r, &c);
    pair.assert_no_leaks();
    report.finish();
}

#[test]
#[ignore = "needs root"]
fn exit_codes_for_an_unknown_id() {
    let pair = Pair::new("vs-unknown");
    let mut report = Report::default();
    for args in [
        &["state", "{id}"][..],
        &["start", "{id}"],
        &["kill", "{id}"],
        &["kill", "{id}", "KILL"],
        &["delete", "{id}"],
    ] {
        let (r, c) = pair.runtime(args);
        report.code_is(&format!("`{}` of an unknown id", args.join(" ")), 1, &r, &c);
    }
    // runc exits 0: `delete --force` is idempotent (containerd relies on it).
    let (r, c) = pair.runtime(&["delete", "--force", "{id}"]);
    report.code_is("`delete --force` of an unknown id", 0, &r, &c);
    // `create` of an id that is not there yet is the normal case; with a
    // bundle directory that is not there it fails.
    let (r, c) = pair.both(|b| {
        let missing = b.tmp_dir().join("no-such-bundle");
        b.runtime(&["create", "--bundle", missing.to_str().unwrap(), b.id()])
    });
    report.code_is("`create` with a missing bundle directory", 1, &r, &c);
    pair.assert_no_leaks();
    report.finish();
}

#[test]
#[ignore = "needs root"]
fn exit_codes_through_the_lifecycle() {
    let pair = Pair::new("vs-lifecycle");
    pair.each(|b| b.set_args(&["sleep", "1000"]));
    let mut report = Report::default();

    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("create", 0, &r, &c);
    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("duplicate create", 1, &r, &c);
    for sig in ["NOSUCHSIG", "SIGNOSUCH", "99"] {
        let (r, c) = pair.runtime(&["kill", "{id}", sig]);
        report.code_is(&format!("kill with invalid signal {sig}"), 1, &r, &c);
    }
    pair.each(|b| assert_eq!(b.status(), "created"));
    // runc parses a number as is and sends it: signal 0 probes the process.
    let (r, c) = pair.runtime(&["kill", "{id}", "0"]);
    report.code_is("kill with signal 0 of a created container", 0, &r, &c);
    pair.each(|b| assert_eq!(b.status(), "created"));

    let (r, c) = pair.runtime(&["start", "{id}"]);
    report.code_is("start of a created container", 0, &r, &c);
    pair.each(|b| b.wait_for_status("running"));
    let (r, c) = pair.runtime(&["start", "{id}"]);
    report.code_is("start of a running container", 1, &r, &c);
    let (r, c) = pair.runtime(&["delete", "{id}"]);
    report.code_is("delete of a running container without --force", 1, &r, &c);
    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("create of the id of a running container", 1, &r, &c);

    let (r, c) = pair.runtime(&["kill", "{id}", "KILL"]);
    report.code_is("kill KILL of a running container", 0, &r, &c);
    pair.each(|b| b.wait_for_status("stopped"));
    let (r, c) = pair.runtime(&["start", "{id}"]);
    report.code_is("start of a stopped container", 1, &r, &c);
    let (r, c) = pair.runtime(&["state", "{id}"]);
    report.code_is("state of a stopped container", 0, &r, &c);
    let (r, c) = pair.runtime(&["delete", "{id}"]);
    report.code_is("delete of a stopped container", 0, &r, &c);
    let (r, c) = pair.runtime(&["state", "{id}"]);
    report.code_is("state of a deleted container", 1, &r, &c);
    pair.assert_no_leaks();
    report.finish();
}

#[test]
#[ignore = "needs root"]
fn exit_code_of_delete_of_a_created_container() {
    let pair = Pair::new("vs-delcreated");
    pair.each(|b| b.set_args(&["sleep", "1000"]));
    pair.each(|b| b.create());
    // runc deletes a created container without --force (it kills its init).
    let (r, c) = pair.runtime(&["delete", "{id}"]);
    let mut report = Report::default();
    report.code_is("delete of a created container without --force", 0, &r, &c);
    pair.assert_no_leaks();
    report.finish();
}

#[test]
#[ignore = "needs root"]
fn exit_codes_for_bad_configs() {
    let mut report = Report::default();

    let pair = Pair::new("vs-badjson");
    pair.each(|b| fs::write(b.config_path(), "{\"ociVersion\": \"1.0.2\", oops").unwrap());
    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("create with a malformed config.json", 1, &r, &c);
    let (r, c) = pair.runtime(&["run", "{id}"]);
    report.code_is("run with a malformed config.json", 1, &r, &c);
    pair.assert_no_leaks();

    let pair = Pair::new("vs-norootfs");
    pair.each(|b| fs::remove_dir_all(b.rootfs()).unwrap());
    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("create with a missing rootfs", 1, &r, &c);
    let (r, c) = pair.runtime(&["run", "{id}"]);
    report.code_is("run with a missing rootfs", 1, &r, &c);
    pair.assert_no_leaks();

    let pair = Pair::new("vs-relcwd");
    pair.each(|b| b.set_cwd("tmp"));
    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("create with a relative cwd", 1, &r, &c);
    let (r, c) = pair.runtime(&["run", "{id}"]);
    report.code_is("run with a relative cwd", 1, &r, &c);
    pair.assert_no_leaks();

    let pair = Pair::new("vs-noprog");
    pair.each(|b| b.set_args(&["/no-such-program"]));
    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("create of a missing program", 1, &r, &c);
    // A runtime error (1), not the shell's 127.
    let (r, c) = pair.runtime(&["run", "{id}"]);
    report.code_is("run of a missing program", 1, &r, &c);
    pair.each(|b| b.set_args(&["no-such-program-on-path"]));
    let (r, c) = pair.both(|b| b.try_create(b.id()));
    report.code_is("create of a program not on PATH", 1, &r, &c);
    let (r, c) = pair.runtime(&["run", "{id}"]);
    report.code_is("run of a program not on PATH", 1, &r, &c);
    pair.assert_no_leaks();

    report.finish();
}

#[test]
#[ignore = "needs root"]
fn exit_codes_for_bad_ids() {
    let pair = Pair::new("vs-badids");
    let mut report = Report::default();
    let long = "a".repeat(1025);
    for bad in ["../evil", "a/b", ".", "..", "", "a b", long.as_str()] {
        let (r, c) = pair.both(|b| b.try_create(bad));
        let shown = if bad.len() > 20 { "a×1025" } else { bad };
        report.code_is(&format!("create with id {shown:?}"), 1, &r, &c);
        for cmd in ["state", "start", "kill", "delete"] {
            let (r, c) = pair.both(|b| b.runtime(&[cmd, bad]));
            report.code(&format!("{cmd} with id {shown:?}"), &r, &c);
        }
    }
    pair.assert_no_leaks();
    report.finish();
}

// ---------------------------------------------------------------------------
// JSON shapes and listings
// ---------------------------------------------------------------------------

/// Compares `state` and `list --format json` of both containers, which are in `status`.
fn compare_state_and_list(pair: &Pair, status: &str, report: &mut Report) {
    let (r, c) = pair.runtime(&["state", "{id}"]);
    let (rs, cs) = (parse(&r), parse(&c));
    assert_eq!(rs["status"], status, "runc: {rs}");
    report.shape(&format!("`state` of a {status} container"), &rs, &cs);
    report.json(
        &format!("`state` status string of a {status} container"),
        &rs["status"],
        &cs["status"],
    );

    let (r, c) = pair.runtime(&["list", "--format", "json"]);
    let (rl, cl) = (parse(&r), parse(&c));
    report.shape(
        &format!("`list --format json` with a {status} container"),
        &rl,
        &cl,
    );
    report.json(
        &format!("`list --format json` status string ({status})"),
        &rl[0]["status"],
        &cl[0]["status"],
    );

    let (r, c) = pair.runtime(&["list", "-q"]);
    report.code(&format!("`list -q` ({status})"), &r, &c);
    report.text(
        &format!("`list -q` output ({status})"),
        &normalise(&pair.runc, &r.stdout),
        &normalise(&pair.corral, &c.stdout),
    );

    let (r, c) = pair.runtime(&["list"]);
    report.code(&format!("`list` ({status})"), &r, &c);
    report.text(
        &format!("`list` table header ({status})"),
        &table_header(&r),
        &table_header(&c),
    );
    let rows = |b: &Bundle, out: &Output| -> Vec<String> {
        out.stdout
            .lines()
            .skip(1)
            .map(|l| {
                normalise(b, l)
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .map(|l| {
                // The pid column differs.
                let mut f: Vec<&str> = l.split(' ').collect();
                if f.len() > 1 {
                    f[1] = "<PID>";
                }
                f.join(" ")
            })
            .collect()
    };
    report.text(
        &format!("`list` table rows: id, pid, status ({status})"),
        &rows(&pair.runc, &r).join("\n"),
        &rows(&pair.corral, &c).join("\n"),
    );
}

/// Compares the empty listings: runc prints `null` for `list --format json`.
fn compare_empty_list(pair: &Pair, when: &str, report: &mut Report) {
    let (r, c) = pair.runtime(&["list", "--format", "json"]);
    report.code(&format!("`list --format json` {when}"), &r, &c);
    report.text(
        &format!("`list --format json` {when}"),
        &r.stdout,
        &c.stdout,
    );
    let (r, c) = pair.runtime(&["list", "-q"]);
    report.code(&format!("`list -q` {when}"), &r, &c);
    report.text(&format!("`list -q` {when}"), &r.stdout, &c.stdout);
    let (r, c) = pair.runtime(&["list"]);
    report.code(&format!("`list` {when}"), &r, &c);
    report.text(
        &format!("`list` {when}: table header"),
        &table_header(&r),
        &table_header(&c),
    );
    report.text(&format!("`list` {when} (exact text)"), &r.stdout, &c.stdout);
}

/// The column names of `list`'s table (the padding is not compared).
fn table_header(out: &Output) -> String {
    out.stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
#[ignore = "needs root"]
fn state_and_list_through_the_lifecycle() {
    let pair = Pair::new("vs-state");
    pair.each(|b| b.set_args(&["sleep", "1000"]));
    let mut report = Report::default();

    compare_empty_list(
        &pair,
        "before any container (no --root dir yet)",
        &mut report,
    );
    pair.each(|b| b.create());
    compare_state_and_list(&pair, "created", &mut report);
    pair.runtime(&["start", "{id}"]);
    pair.each(|b| b.wait_for_status("running"));
    compare_state_and_list(&pair, "running", &mut report);
    pair.each(|b| {
        b.runtime(&["kill", b.id(), "KILL"]).assert_success();
        b.wait_for_status("stopped");
    });
    compare_state_and_list(&pair, "stopped", &mut report);

    let (r, c) = pair.runtime(&["kill", "{id}", "KILL"]);
    report.code_is("kill of a stopped container", 1, &r, &c);

    pair.each(|b| {
        b.runtime(&["delete", b.id()]).assert_success();
    });
    compare_empty_list(&pair, "after the last delete", &mut report);
    pair.assert_no_leaks();
    report.finish();
}

#[test]
#[ignore = "needs root"]
fn pid_file_format() {
    let pair = Pair::new("vs-pidfile");
    pair.each(|b| b.set_args(&["sleep", "1000"]));
    let mut report = Report::default();
    for (how, args) in [
        ("create", &["create", "--bundle", "{bundle}"][..]),
        ("run -d", &["run", "-d", "--bundle", "{bundle}"]),
    ] {
        let (r, c) = pair.both(|b| {
            let pid_file = b.tmp_dir().join(format!("{}.pid", how.replace(' ', "")));
            let dir = b.dir();
            let mut full: Vec<&str> = args
                .iter()
                .map(|&a| {
                    if a == "{bundle}" {
                        dir.to_str().unwrap()
                    } else {
                        a
                    }
                })
                .collect();
            full.extend(["--pid-file", pid_file.to_str().unwrap(), b.id()]);
            b.runtime(&full).assert_success();
            let text = fs::read_to_string(&pid_file).unwrap();
            assert_eq!(
                text.trim().parse::<i32>().ok(),
                Some(b.pid()),
                "{}: the pid file {text:?} holds the state's pid",
                b.bin().display()
            );
            b.runtime(&["delete", "--force", b.id()]).assert_success();
            // The format: digits as `N`, anything else kept.
            text.chars()
                .map(|ch| if ch.is_ascii_digit() { 'N' } else { ch })
                .collect::<String>()
                .replace("NN", "N")
                .replace("NN", "N")
                .replace("NN", "N")
        });
        report.text(&format!("`{how} --pid-file` content format"), &r, &c);
    }
    pair.assert_no_leaks();
    report.finish();
}

// ---------------------------------------------------------------------------
// spec
// ---------------------------------------------------------------------------

/// `spec ARGS` in a fresh directory of `b`, parsed.
fn spec_of(b: &Bundle, dir: &str, args: &[&str]) -> Value {
    let dir = b.tmp_dir().join(dir);
    fs::create_dir(&dir).unwrap();
    b.runtime_in(&dir, args).assert_success();
    serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap()
}

/// Compares two `spec` outputs; mounts on a destination in `skip_mounts`
/// are left out of the comparison.
fn compare_spec(
    what: &str,
    runc: &Value,
    corral: &Value,
    skip_mounts: &[&str],
    report: &mut Report,
) {
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .expect("a JSON object")
            .keys()
            .cloned()
            .collect()
    };
    report.set(
        &format!("`{what}`: top-level keys"),
        &keys(runc),
        &keys(corral),
    );
    let mounts = |config: &Value| -> Value {
        let all = config["mounts"].as_array().cloned().unwrap_or_default();
        all.into_iter()
            .filter(|m| {
                !m["destination"]
                    .as_str()
                    .is_some_and(|d| skip_mounts.contains(&d))
            })
            .collect()
    };
    report.list(&format!("`{what}`: mounts"), &mounts(runc), &mounts(corral));
    for field in ["namespaces", "maskedPaths", "readonlyPaths"] {
        report.list(
            &format!("`{what}`: linux.{field}"),
            &runc["linux"][field],
            &corral["linux"][field],
        );
    }
    // Shown, not compared: the rest of the document (hostname and ociVersion
    // may differ by design).
    let mut wrong = Vec::new();
    let mut extra = Vec::new();
    shape_diff("$", runc, corral, &mut wrong, &mut extra);
    if !wrong.is_empty() || !extra.is_empty() {
        eprintln!("`{what}` (not compared): shape: {wrong:?}; keys only corral has: {extra:?}");
    }
}

#[test]
#[ignore = "needs root"]
fn spec_matches_runc() {
    let pair = Pair::new("vs-spec");
    let mut report = Report::default();
    let (r, c) = pair.both(|b| spec_of(b, "plain", &["spec"]));
    compare_spec("spec", &r, &c, &[], &mut report);
    let (r, c) = pair.both(|b| spec_of(b, "rootless", &["spec", "--rootless"]));
    compare_spec("spec --rootless", &r, &c, &[], &mut report);
    report.set(
        "`spec --rootless`: linux keys",
        &r["linux"].as_object().unwrap().keys().cloned().collect(),
        &c["linux"].as_object().unwrap().keys().cloned().collect(),
    );
    report.shape(
        "`spec --rootless`: linux.uidMappings",
        &r["linux"]["uidMappings"],
        &c["linux"]["uidMappings"],
    );
    report.shape(
        "`spec --rootless`: linux.gidMappings",
        &r["linux"]["gidMappings"],
        &c["linux"]["gidMappings"],
    );
    pair.assert_no_leaks();
    report.finish();
}

// ---------------------------------------------------------------------------
// --log-format json
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn json_log_keys_of_a_failed_create() {
    let pair = Pair::new("vs-jsonlog");
    pair.each(|b| fs::remove_dir_all(b.rootfs()).unwrap());
    let mut report = Report::default();
    let ((r, r_log), (c, c_log)) = pair.both(|b| {
        let log = b.tmp_dir().join("runtime.log");
        let dir = b.dir();
        let out = b.runtime(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            dir.to_str().unwrap(),
            b.id(),
        ]);
        let text = fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{}: no log at {}: {e}", b.bin().display(), log.display()));
        let records: Vec<Value> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!("{}: log line {line:?} is not JSON: {e}", b.bin().display())
                })
            })
            .collect();
        (out, records)
    });
    report.code_is(
        "create with a missing rootfs and --log-format json",
        1,
        &r,
        &c,
    );
    // runc also prints the error on stderr.
    report.json(
        "stderr is not empty",
        &Value::Bool(!r.stderr.trim().is_empty()),
        &Value::Bool(!c.stderr.trim().is_empty()),
    );
    let keys_of = |records: &[Value], level: Option<&str>| -> BTreeSet<String> {
        records
            .iter()
            .filter(|rec| level.is_none_or(|l| rec["level"] == l))
            .flat_map(|rec| rec.as_object().unwrap().keys().cloned())
            .collect()
    };
    assert!(
        !keys_of(&r_log, Some("error")).is_empty(),
        "runc logged no error: {r_log:?}"
    );
    report.set(
        "keys of the error records",
        &keys_of(&r_log, Some("error")),
        &keys_of(&c_log, Some("error")),
    );
    report.set(
        "keys of all records",
        &keys_of(&r_log, None),
        &keys_of(&c_log, None),
    );
    for (name, log) in [("runc", &r_log), ("corral", &c_log)] {
        for rec in log.iter() {
            for key in ["level", "msg", "time"] {
                if !rec[key].is_string() {
                    report.add(
                        "log record types",
                        format!("{name}: {key} is not a string in {rec}"),
                    );
                }
            }
        }
    }
    pair.assert_no_leaks();
    report.finish();
}

// ---------------------------------------------------------------------------
// Usage errors
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn exit_codes_for_usage_errors() {
    let pair = Pair::new("vs-usage");
    let mut report = Report::default();
    for args in [
        &["state"][..],
        &["start"],
        &["delete"],
        &["kill"],
        &["state", "a", "b"],
        &["no-such-command"],
        &["list", "--no-such-flag"],
    ] {
        let (r, c) = pair.runtime(args);
        report.code(&format!("`{}`", args.join(" ")), &r, &c);
    }
    pair.assert_no_leaks();
    report.finish();
}
