//! OCI hooks: each runs with the container state JSON on stdin, its own args
//! and env, and an optional timeout. A failing hook fails the operation.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// A hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// It could not be started.
    #[error("{stage} hook {path}: cannot run")]
    Spawn {
        /// The hook stage (`createRuntime`, …).
        stage: &'static str,
        /// The hook program.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited unsuccessfully.
    #[error("{stage} hook {path} failed: {status}{stderr}")]
    Failed {
        /// The hook stage.
        stage: &'static str,
        /// The hook program.
        path: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr, prefixed with ": ", or empty.
        stderr: String,
    },
    /// It ran past its timeout and was killed.
    #[error("{stage} hook {path} timed out after {secs} s")]
    Timeout {
        /// The hook stage.
        stage: &'static str,
        /// The hook program.
        path: String,
        /// The timeout.
        secs: i64,
    },
}

/// Runs the hooks of one stage in order, each with `state` on stdin.
pub fn run_hooks(stage: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    for hook in hooks {
        run_hook(stage, hook, state)?;
    }
    Ok(())
}

fn run_hook(stage: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        stage,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let mut delay = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Spawn {
                    stage,
                    path,
                    source,
                })
            }
        }
        if let Some((secs, when)) = deadline {
            if Instant::now() >= when {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout { stage, path, secs });
            }
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    let stderr = stderr.trim();
    let stderr = if stderr.is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.lines().last().unwrap_or(""))
    };
    Err(HookError::Failed {
        stage,
        path,
        status,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.env(vec!["HOOKVAR=yes".to_string()]).build().unwrap()
    }

    #[test]
    fn a_hook_gets_state_on_stdin_and_its_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("read s; echo \"$s $HOOKVAR\" > {}", out.display());
        run_hooks(
            "createRuntime",
            &[hook(&["sh", "-c", &script], None)],
            b"{\"id\":\"x\"}",
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            "{\"id\":\"x\"} yes\n"
        );
    }

    #[test]
    fn failure_and_timeout_are_named() {
        let err = run_hooks(
            "poststart",
            &[hook(&["sh", "-c", "echo boom >&2; exit 3"], None)],
            b"",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("poststart hook /bin/sh failed: exit status: 3: boom"),
            "{msg}"
        );
        let err =
            run_hooks("prestart", &[hook(&["sh", "-c", "sleep 5"], Some(1))], b"").unwrap_err();
        assert_eq!(err.to_string(), "prestart hook /bin/sh timed out after 1 s");
    }
}
