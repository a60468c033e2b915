//! Fail points: named places in create, start, run, exec and delete where a
//! test makes the runtime fail, to prove that every stage cleans up after
//! itself (issue 7; `crates/cli/tests/faults.rs`).
//!
//! Compiled in only with the `failpoints` feature (the `fail` crate's
//! `fail_point!`), which the cli crate's tests turn on through a
//! dev-dependency; `cargo build` and the release binary have none: [`hit`]
//! is then an empty inline function. At run time `FAILPOINTS=name=return`
//! (several separated by `;`, as the `fail` crate reads it) arms them.
//!
//! Each name is `<command>.<stage>`; [`ALL`] lists them for the test that
//! walks through every one.

/// Every fail point, in the order the commands reach them.
pub const ALL: &[&str] = &[
    "create.after_state_dir",
    "create.after_cgroup",
    "create.after_clone",
    "init.after_mounts",
    "create.before_hooks",
    "create.after_hooks",
    "init.before_ready",
    "create.after_ready",
    "start.before_wake",
    "start.after_wake",
    "run.after_start",
    "exec.after_clone",
    "exec.after_setns",
    "delete.after_kill",
    "delete.after_cgroup",
];

/// An armed fail point fired.
#[cfg(feature = "failpoints")]
#[derive(Debug, thiserror::Error)]
#[error("injected failure at fail point {0}")]
pub struct Injected(pub &'static str);

/// Without the `failpoints` feature no fail point can fire: the type has no
/// value, and the compiler drops every error path that carries one.
#[cfg(not(feature = "failpoints"))]
#[derive(Debug, thiserror::Error)]
pub enum Injected {}

/// Fails with [`Injected`] when the fail point `name` is armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &'static str) -> Result<(), Injected> {
    setup();
    debug_assert!(ALL.contains(&name), "fail point {name} is not in ALL");
    fail::fail_point!(name, |_| Err(Injected(name)));
    Ok(())
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &'static str) -> Result<(), Injected> {
    Ok(())
}

/// Arms the fail points `FAILPOINTS` names, once per process (the `fail`
/// crate's `FailScenario::setup` does the same but holds a lock meant for
/// tests running in one process).
#[cfg(feature = "failpoints")]
fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(spec) = std::env::var("FAILPOINTS") else {
            return;
        };
        for entry in spec.split(';').filter(|e| !e.trim().is_empty()) {
            if let Some((name, actions)) = entry.split_once('=') {
                if let Err(e) = fail::cfg(name.trim(), actions.trim()) {
                    tracing::warn!(entry, error = %e, "bad FAILPOINTS entry");
                }
            }
        }
    });
}
