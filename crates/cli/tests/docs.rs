//! Executed documentation: every shell example in README.md, CONTRIBUTING.md
//! and docs/*.md runs here, so a doc example that breaks fails CI.
//!
//! Fenced blocks are found by their info string:
//! - `sh` (or `bash`): a script; it must exit 0.
//! - `console`: lines starting with `$ ` are commands (a line ending in `\`
//!   continues on the next); the lines after a command, up to the next one,
//!   are its expected output (stdout and stderr together), compared line by
//!   line with trailing blanks ignored; a line `...` stands for any lines.
//!   A command shown without output is not compared.
//! - `sh no-run: REASON` / `console no-run: REASON`: not run; the reason is
//!   required (the test suite itself cannot run inside the test suite).
//!
//! Each block runs as root with `bash -eo pipefail` in a scratch directory
//! of its own, inside a private mount namespace, with `corral` (the binary
//! under test) first on PATH, a `sudo` that just runs its arguments, and the
//! repository's top-level entries linked into the scratch directory so that
//! `scripts/demo.sh` or `bench/make-rootfs.sh` work as written.
//!
//! Run as root: `cargo test -p corral --test docs -- --include-ignored`
//! (`CORRAL_DOCS_ONLY=docs/testing.md` or `=README.md:42` runs a subset).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap fails the test (STYLE §2)

mod common;
#[path = "common/engines.rs"]
mod engines;

use std::{
    fs,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::{kill_tracked, runtime_bin, spawn_tracked, wait_tracked};
use engines::{default_state_root, remove_cgroups_named, states_under, RunDirs};

/// Where a block came from, for messages.
struct Block {
    file: String,
    line: usize,
    kind: Kind,
    body: Vec<String>,
}

enum Kind {
    Script,
    Console,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The documents whose examples run.
fn documents() -> Vec<PathBuf> {
    let repo = repo();
    let mut docs = vec![repo.join("README.md"), repo.join("CONTRIBUTING.md")];
    let mut more: Vec<PathBuf> = fs::read_dir(repo.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// The shell blocks of `text`; an unmarked `no-run` (without a reason) is an error.
fn shell_blocks(file: &str, text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut words = info.trim().splitn(2, char::is_whitespace);
        let lang = words.next().unwrap_or("");
        let rest = words.next().unwrap_or("").trim();
        let mut body = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push(l.to_owned());
        }
        let kind = match lang {
            "sh" | "bash" | "shell" => Kind::Script,
            "console" => Kind::Console,
            _ => continue,
        };
        if let Some(reason) = rest.strip_prefix("no-run") {
            let reason = reason.trim_start_matches(':').trim();
            if reason.is_empty() {
                return Err(format!("{file}:{}: `no-run` needs a reason", n + 1));
            }
            continue;
        }
        if !rest.is_empty() {
            return Err(format!("{file}:{}: unknown marker {rest:?}", n + 1));
        }
        blocks.push(Block {
            file: file.to_owned(),
            line: n + 1,
            kind,
            body,
        });
    }
    Ok(blocks)
}

/// One command of a console block and the output the doc shows for it.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn console_steps(body: &[String]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continuing = false;
    for line in body {
        if continuing {
            let step = steps.last_mut().expect("a continued command");
            step.command.push('\n');
            step.command
                .push_str(line.strip_prefix("> ").unwrap_or(line));
            continuing = line.ends_with('\\');
        } else if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: cmd.to_owned(),
                expected: Vec::new(),
            });
            continuing = cmd.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.to_owned());
        }
    }
    steps
}

/// Does `actual` match `expected`, where an expected `...` line matches any run of lines?
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e.trim() == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, tail)| a.trim_end() == e.trim_end() && matches(rest, tail)),
    }
}

const MARK: &str = "@@corral-doc-step@@";

/// How long one block may run: the demo builds corral in release mode.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(900);

/// A scratch directory with the repo's entries linked in and a bin dir.
fn scratch(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("corral-doc-{name}-"))
        .tempdir()
        .unwrap();
    for entry in fs::read_dir(repo()).unwrap().flatten() {
        let file_name = entry.file_name();
        if file_name.to_string_lossy().starts_with('.') {
            continue;
        }
        symlink(entry.path(), dir.path().join(&file_name)).unwrap();
    }
    let bin = dir.path().join(".bin");
    fs::create_dir(&bin).unwrap();
    symlink(runtime_bin(), bin.join("corral")).unwrap();
    let sudo = bin.join("sudo");
    fs::write(&sudo, "#!/bin/sh\nexec \"$@\"\n").unwrap();
    fs::set_permissions(&sudo, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs one block; `Err` says what went wrong.
fn run_block(block: &Block) -> Result<(), String> {
    let name = Path::new(&block.file)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dir = scratch(&name);
    let steps = match block.kind {
        Kind::Script => vec![Step {
            command: block.body.join("\n"),
            expected: Vec::new(),
        }],
        Kind::Console => console_steps(&block.body),
    };
    let mut script = String::from("set -eo pipefail\nexec 2>&1\n");
    for step in &steps {
        script.push_str(&format!("printf '\\n{MARK}\\n'\n{}\n", step.command));
    }
    let path = format!(
        "{}:{}",
        dir.path().join(".bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Output to a file, not a pipe: a container the example starts in the
    // background (`corral create`) keeps its stdout open.
    let log = dir.path().join(".out");
    let file = fs::File::create(&log).unwrap();
    let mut child = spawn_tracked(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", path)
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(file),
    );
    let status = wait_tracked(&mut child, BLOCK_TIMEOUT);
    if status.is_none() {
        kill_tracked(&mut child);
    }
    let text = fs::read_to_string(&log).unwrap_or_default();
    let outputs: Vec<&str> = text.split(&format!("\n{MARK}\n")).skip(1).collect();
    let whence = format!("{}:{}", block.file, block.line);
    if !status.is_some_and(|s| s.success()) {
        let failed = steps
            .get(outputs.len().saturating_sub(1))
            .map_or("", |s| s.command.as_str());
        return Err(format!("{whence}: `{failed}` failed ({status:?}):\n{text}"));
    }
    for (step, actual) in steps.iter().zip(&outputs) {
        if step.expected.is_empty() {
            continue;
        }
        let actual: Vec<&str> = actual.trim_end_matches('\n').lines().collect();
        if !matches(&step.expected, &actual) {
            return Err(format!(
                "{whence}: `{}` printed\n{}\nbut the doc shows\n{}",
                step.command,
                actual.join("\n"),
                step.expected.join("\n")
            ));
        }
    }
    // The block cleaned up after itself: nothing runs from its directory.
    for pid in common::all_pids() {
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if cwd.starts_with(dir.path()) {
            return Err(format!("{whence}: left process {pid} running"));
        }
    }
    Ok(())
}

#[test]
fn every_shell_block_is_marked() {
    for doc in documents() {
        let text = fs::read_to_string(&doc).unwrap();
        shell_blocks(&doc.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn console_output_matching() {
    let exp = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches(&exp(&["a", "b"]), &["a", "b  "]));
    assert!(!matches(&exp(&["a", "b"]), &["a", "c"]));
    assert!(!matches(&exp(&["a"]), &["a", "b"]));
    assert!(matches(&exp(&["a", "...", "z"]), &["a", "x", "y", "z"]));
    assert!(matches(&exp(&["...", "z"]), &["z"]));
    assert!(!matches(&exp(&["...", "z"]), &["z", "y"]));
    let steps = console_steps(&exp(&["$ echo a \\", ">   b", "a b", "$ true"]));
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].command, "echo a \\\n  b");
    assert_eq!(steps[0].expected, exp(&["a b"]));
    assert!(shell_blocks("x", "```sh no-run\ntrue\n```\n").is_err());
    assert!(shell_blocks("x", "```sh no-run: why\ntrue\n```\n").is_ok_and(|b| b.is_empty()));
}

#[test]
#[ignore = "needs root"]
fn every_shell_example_in_the_docs_runs() {
    // The examples drive podman; hold the directories it hard-codes.
    let _run_dirs = RunDirs::new(&[
        "/run/containers",
        "/run/containerd",
        &default_state_root().to_string_lossy(),
    ]);
    let mut failures = Vec::new();
    let mut ran = 0;
    for doc in documents() {
        let text = fs::read_to_string(&doc).unwrap();
        let file = doc
            .strip_prefix(repo())
            .unwrap_or(&doc)
            .display()
            .to_string();
        for block in shell_blocks(&file, &text).unwrap() {
            // CORRAL_DOCS_ONLY=FILE:LINE (or a prefix) runs a subset while editing.
            if std::env::var("CORRAL_DOCS_ONLY")
                .is_ok_and(|only| !format!("{file}:{}", block.line).starts_with(&only))
            {
                continue;
            }
            ran += 1;
            if let Err(e) = run_block(&block) {
                failures.push(e);
            }
        }
    }
    // Waits for podman's monitors (conmon) to leave their cgroups, i.e. exit.
    let left = remove_cgroups_named("corral-doc");
    common::reap_orphans();
    assert!(left.is_empty(), "the examples left cgroups: {left:#?}");
    let state = states_under(&default_state_root(), Path::new("/tmp/corral-doc-"));
    assert!(state.is_empty(), "the examples left containers: {state:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        ran >= 5 || std::env::var("CORRAL_DOCS_ONLY").is_ok(),
        "only {ran} examples found"
    );
}
