//! An OCI `linux.seccomp` profile, translated and built into a filter.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corral_runtime::seccomp::fuzz_profile(data));
