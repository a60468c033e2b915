//! config.json: parsed as `corral create` parses it, then validated against
//! a bundle whose `rootfs` exists, so a config that parses reaches every
//! check past the rootfs lookup (namespaces, mounts, sysctls, seccomp).
//! Validation only reads: it stats the rootfs and reads LSM state in /sys.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

fn bundle() -> &'static PathBuf {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("corral-fuzz-bundle-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).expect("create the fuzz bundle's rootfs");
        dir
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = corral_runtime::spec::parse(data, "config.json") {
        let _ = corral_runtime::spec::validate(&spec, bundle());
    }
});
