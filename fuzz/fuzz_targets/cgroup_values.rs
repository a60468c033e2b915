//! Cgroup values: what `corral cgroup set/get` and `events`/`stats` read
//! from and write to cgroup files. The input is `name\nvalue\ncontent`: the
//! name and value drive the v1/v2 setting translation, the content (and the
//! whole input) every file parser of the crate.
#![no_main]

use corral_cgroups::settings::{self, Version};
use corral_cgroups::{metrics, misc, path, psi, rdma, v1, v2};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let name = parts.next().unwrap_or("");
    let value = parts.next().unwrap_or("");
    let content = parts.next().unwrap_or("");
    // The "current" file a conversion reads: the content, as the kernel's.
    let current = |_: &str| Ok::<String, ()>(content.to_owned());
    for version in [Version::V1, Version::V2] {
        let _ = settings::controller_of(name);
        let _ = settings::map(name, version);
        let _ = settings::plan_write(name, value, version, current);
        let _ = settings::convert_read(name, content, version, current);
        let _ = settings::convert_read(name, value, version, current);
    }
    for t in [&*text, content] {
        let _ = metrics::parse_keyed(t);
        let _ = metrics::parse_blkio(t);
        let _ = metrics::parse_io_stat(t);
        let _ = psi::parse(t);
        let _ = misc::parse(t);
        let _ = rdma::parse(t);
        let _ = v2::parse_max(t);
        let _ = v2::keyed(t, name);
        let _ = v2::cpuset::parse(t);
        let _ = v1::net_prio::parse_ifpriomap(t);
        let _ = v1::net_prio::valid_ifname(t);
        let _ = v1::hugetlb::valid_page_size(t);
        let _ = path::normalize(t);
        let _ = path::OwnCgroups::parse(t);
    }
});
