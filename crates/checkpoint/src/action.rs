//! `--action-script`: tell an outside program where a dump or restore is,
//! CRIU's way, so that applications (or their operators) that want to
//! know can quiesce, flush, lock or unlock the network.
//!
//! The script runs with `CRTOOLS_SCRIPT_ACTION` set to the stage
//! ([`Stage::name`]) and `CRTOOLS_INIT_PID` to the root of the tree, its
//! stdio inherited, and is waited for. A script that fails (non-zero exit,
//! killed, or not runnable) fails the dump or restore at that stage, as
//! CRIU does; the error names the script, the stage and its status.
//!
//! Stages, in order:
//! - dump: `pre-dump` (before any task is stopped), `network-lock` (every
//!   task stopped, nothing read yet), `post-dump` (the image written, the
//!   tasks still stopped: before they are killed or resumed),
//!   `network-unlock` (after the tasks are resumed, with
//!   `--leave-running`, or when a dump fails after `network-lock`);
//! - restore: `pre-restore` (before anything is created), `post-restore`
//!   (every task rebuilt, none running yet), `network-unlock` (just before
//!   they run).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a dump or restore is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before the dump stops anything.
    PreDump,
    /// Every task stopped, before any state is read.
    NetworkLock,
    /// The image is written; the tasks are still stopped.
    PostDump,
    /// The tasks run again (leave-running dump, failed dump, restore).
    NetworkUnlock,
    /// Before the restore creates anything.
    PreRestore,
    /// Every task rebuilt, none running yet.
    PostRestore,
}

impl Stage {
    /// The value of `CRTOOLS_SCRIPT_ACTION` (CRIU's names).
    pub fn name(self) -> &'static str {
        match self {
            Stage::PreDump => "pre-dump",
            Stage::NetworkLock => "network-lock",
            Stage::PostDump => "post-dump",
            Stage::NetworkUnlock => "network-unlock",
            Stage::PreRestore => "pre-restore",
            Stage::PostRestore => "post-restore",
        }
    }
}

/// The action script failed at a stage.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// It could not be started.
    #[error("action script {} at {stage}: cannot run it", script.display())]
    Spawn {
        /// The script.
        script: PathBuf,
        /// The stage.
        stage: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// It ran and failed.
    #[error("action script {} at {stage}: {status}", script.display())]
    Failed {
        /// The script.
        script: PathBuf,
        /// The stage.
        stage: &'static str,
        /// How it ended.
        status: std::process::ExitStatus,
    },
}

/// Runs `script` (if any) for `stage` of the tree rooted at `root_pid`.
pub fn run(script: Option<&Path>, stage: Stage, root_pid: i32) -> Result<(), ActionError> {
    let Some(script) = script else {
        return Ok(());
    };
    let status = Command::new(script)
        .env("CRTOOLS_SCRIPT_ACTION", stage.name())
        .env("CRTOOLS_INIT_PID", root_pid.to_string())
        .status()
        .map_err(|source| ActionError::Spawn {
            script: script.to_owned(),
            stage: stage.name(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(ActionError::Failed {
            script: script.to_owned(),
            stage: stage.name(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join("action.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn the_script_sees_the_stage_and_the_root_pid() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let s = script(
            dir.path(),
            &format!(
                "echo \"$CRTOOLS_SCRIPT_ACTION $CRTOOLS_INIT_PID\" >> {}",
                log.display()
            ),
        );
        run(Some(&s), Stage::PreDump, 42).unwrap();
        run(Some(&s), Stage::PostRestore, 7).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "pre-dump 42\npost-restore 7\n"
        );
    }

    #[test]
    fn a_failing_script_fails_the_stage_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = script(dir.path(), "exit 3");
        let e = run(Some(&s), Stage::NetworkLock, 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("network-lock") && e.contains("exit status: 3"),
            "{e}"
        );
        let e = run(Some(&dir.path().join("missing")), Stage::PreDump, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing") && e.contains("pre-dump"), "{e}");
        assert!(run(None, Stage::PreDump, 1).is_ok());
    }
}
