//! v1 `devices` controller: the OCI rules written one by one, in order, to
//! `devices.allow` or `devices.deny`; the kernel keeps the resulting list.
//! A leading deny-all rule becomes the kernel's short form `a`, which also
//! empties the inherited allow list.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::dir::{CgroupDir, FileError};

/// Whether `rule` matches every device with every access.
pub fn is_all(rule: &LinuxDeviceCgroup) -> bool {
    matches!(rule.typ(), None | Some(LinuxDeviceType::A))
        && rule.major().is_none()
        && rule.minor().is_none()
        && access(rule) == "rwm"
}

/// The rule's access, `rwm` when unset or empty.
pub fn access(rule: &LinuxDeviceCgroup) -> String {
    match rule.access().as_deref() {
        None | Some("") => "rwm".to_owned(),
        Some(a) => a.to_owned(),
    }
}

/// The line the kernel takes: `c 1:3 rwm`, `a` for everything.
pub fn line(rule: &LinuxDeviceCgroup) -> String {
    if is_all(rule) {
        return "a".to_owned();
    }
    let typ = match rule.typ() {
        None | Some(LinuxDeviceType::A) => "a",
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::P) => "p",
    };
    let num = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
    format!(
        "{typ} {}:{} {}",
        num(rule.major()),
        num(rule.minor()),
        access(rule)
    )
}

/// Writes the rules in order.
pub fn apply(dir: &CgroupDir, rules: &[LinuxDeviceCgroup]) -> Result<(), FileError> {
    for rule in rules {
        let file = if rule.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        dir.write(file, &line(rule))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    use super::*;

    #[test]
    fn lines() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(line(&deny_all), "a");
        let null = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(line(&null), "c 1:3 rw");
        let any_char = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .build()
            .unwrap();
        assert_eq!(line(&any_char), "c *:* rwm");
    }
}
