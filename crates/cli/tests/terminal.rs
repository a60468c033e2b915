//! A terminal without a console socket: `run` with `terminal: true` in the
//! foreground, driven through a real pty by `pty/drive.py` (Python's pty
//! and termios, as a person at a terminal would use it).
//!
//! Run as root: `cargo test -p corral --test terminal -- --include-ignored`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{output_tracked, runtime_bin, Bundle};

/// Runs the pty driver; asserts all its checks passed.
fn drive(bundle: &Bundle, mode: &str) {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pty/drive.py");
    let out = output_tracked(
        Command::new("python3")
            .arg(&driver)
            .arg(runtime_bin())
            .arg(bundle.state_root())
            .arg(bundle.dir())
            .arg(bundle.id())
            .arg(mode),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("pty: 7 passed, 0 failed"), "{text}");
}

#[test]
#[ignore = "needs root"]
fn interactive_shell_through_corrals_own_pty() {
    let bundle = Bundle::new("pty");
    bundle.set_args(&["sh"]);
    bundle.set_terminal(true);
    drive(&bundle, "run");
    bundle.assert_no_leaks();
}

#[test]
#[ignore = "needs root"]
fn exec_tty_through_corrals_own_pty() {
    let bundle = Bundle::new("ptyexec");
    bundle.set_args(&["sleep", "1000"]);
    bundle.create();
    bundle.runtime(&["start", bundle.id()]).assert_success();
    bundle.wait_for_status("running");
    drive(&bundle, "exec");
    bundle.assert_no_leaks();
}
