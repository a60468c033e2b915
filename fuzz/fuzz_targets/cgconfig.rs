//! libcgroup's cgconfig.conf format, as `corral cgroup` reads it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corral_cgroups::conf::fuzz_conf(data));
