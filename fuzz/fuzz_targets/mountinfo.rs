//! /proc/self/mountinfo, as the cgroup hierarchy detection reads it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corral_cgroups::hierarchy::fuzz_mountinfo(data));
