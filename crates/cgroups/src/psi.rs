//! Pressure stall information (PSI, `Documentation/accounting/psi.rst`):
//! the `cpu.pressure`, `memory.pressure` and `io.pressure` files every
//! non-root cgroup v2 directory has (a core feature: no controller needed,
//! so on a hybrid host the unified directory has them too).
//!
//! ```text
//! some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//!      |          |          |           `- stalled time since creation, µs
//!      `- share of wall time (percent) some / all non-idle tasks stalled,
//!         over the last 10, 60 and 300 seconds
//! ```
//!
//! Kernels before 5.13 have no `full` line in `cpu.pressure`.
//!
//! A trigger is written to an open pressure file as `some|full STALL WINDOW`
//! (µs); the fd then polls `POLLPRI` each time the tasks stalled for STALL
//! within a WINDOW. The kernel wants 500 ms ≤ WINDOW ≤ 10 s and
//! STALL ≤ WINDOW; the trigger lives as long as that fd. Since Linux 6.5 a
//! process without `CAP_SYS_RESOURCE` (root in most containers, and this
//! development host) may only use windows that are whole multiples of 2 s
//! (`EINVAL` otherwise), so ours use 2 s windows.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

/// The resource a pressure file is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsiResource {
    /// `cpu.pressure`: runnable tasks waiting for a CPU.
    Cpu,
    /// `memory.pressure`: tasks waiting on reclaim, refaults, swap-in.
    Memory,
    /// `io.pressure`: tasks waiting on block I/O.
    Io,
}

impl PsiResource {
    /// The three, in file order.
    pub const ALL: [PsiResource; 3] = [Self::Cpu, Self::Memory, Self::Io];

    /// The file of a cgroup v2 directory.
    pub fn file(self) -> &'static str {
        match self {
            Self::Cpu => "cpu.pressure",
            Self::Memory => "memory.pressure",
            Self::Io => "io.pressure",
        }
    }
}

impl fmt::Display for PsiResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file())
    }
}

/// Which line of a pressure file: some task stalled, or every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsiKind {
    /// At least one non-idle task stalled.
    Some,
    /// All non-idle tasks stalled at once.
    Full,
}

/// One line of a pressure file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiData {
    /// Percent of the last 10 s.
    pub avg10: f64,
    /// Percent of the last 60 s.
    pub avg60: f64,
    /// Percent of the last 300 s.
    pub avg300: f64,
    /// Stalled time in total, µs.
    pub total: u64,
}

/// A whole pressure file, in runc's `PSIStats` shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    /// The `some` line.
    pub some: PsiData,
    /// The `full` line (all zero where the kernel has none).
    pub full: PsiData,
}

/// Parses a pressure file; `None` unless it has a well-formed `some` line
/// (and a well-formed `full` line, if it has one).
pub fn parse(text: &str) -> Option<Psi> {
    let mut some = None;
    let mut full = PsiData::default();
    for line in text.lines() {
        let (kind, rest) = line.trim().split_once(' ')?;
        let data = parse_line(rest)?;
        match kind {
            "some" => some = Some(data),
            "full" => full = data,
            _ => return None,
        }
    }
    Some(Psi { some: some?, full })
}

fn parse_line(rest: &str) -> Option<PsiData> {
    let mut d = PsiData::default();
    let mut seen = 0u8;
    for field in rest.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        let pct = || value.parse::<f64>().ok().filter(|v| v.is_finite());
        match key {
            "avg10" => d.avg10 = pct()?,
            "avg60" => d.avg60 = pct()?,
            "avg300" => d.avg300 = pct()?,
            "total" => d.total = value.parse().ok()?,
            _ => continue, // a field a later kernel adds
        }
        seen += 1;
    }
    (seen == 4).then_some(d)
}

/// A PSI trigger: fire when the cgroup's tasks stalled on `resource` for
/// `stall` within any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PsiTrigger {
    /// The pressure file.
    pub resource: PsiResource,
    /// `some` or `full`.
    pub kind: PsiKind,
    /// Stalled time that fires the trigger.
    pub stall: Duration,
    /// The window it is measured over (500 ms to 10 s).
    pub window: Duration,
}

/// The shortest and longest window the kernel takes.
const WINDOW: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(10));

impl PsiTrigger {
    /// The line written to the pressure file (`some 150000 1000000`).
    pub fn line(&self) -> String {
        let kind = match self.kind {
            PsiKind::Some => "some",
            PsiKind::Full => "full",
        };
        format!(
            "{kind} {} {}",
            self.stall.as_micros(),
            self.window.as_micros()
        )
    }

    /// Whether the kernel will take it from a process with
    /// `CAP_SYS_RESOURCE`: a window of 500 ms to 10 s and a non-zero stall
    /// no longer than the window.
    pub fn is_valid(&self) -> bool {
        (WINDOW.0..=WINDOW.1).contains(&self.window)
            && !self.stall.is_zero()
            && self.stall <= self.window
    }

    /// Whether the kernel will take it from any process: valid, and a
    /// window of a whole multiple of 2 s (Linux 6.5's rule for callers
    /// without `CAP_SYS_RESOURCE`).
    pub fn is_valid_unprivileged(&self) -> bool {
        self.is_valid() && self.window.as_micros().rem_euclid(2_000_000) == 0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn both_lines_parse_and_a_missing_full_line_reads_as_zero() {
        let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\n\
                    full avg10=0.10 avg60=0.00 avg300=0.00 total=99\n";
        let p = parse(text).unwrap();
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.some.avg60, 0.25);
        assert_eq!(p.some.total, 12345);
        assert_eq!(p.full.avg10, 0.1);
        assert_eq!(p.full.total, 99);
        let old = parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert_eq!(old.full, PsiData::default());
        assert_eq!(old.some.total, 7);
    }

    #[test]
    fn malformed_files_are_refused() {
        for bad in [
            "",
            "some avg10=1 avg60=2 total=3",
            "some avg10=x avg60=0 avg300=0 total=0",
            "other avg10=0 avg60=0 avg300=0 total=0",
            "full avg10=0 avg60=0 avg300=0 total=0",
            "some avg10=NaN avg60=0 avg300=0 total=0",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_trigger_is_written_in_microseconds_and_checked_as_the_kernel_does() {
        let t = PsiTrigger {
            resource: PsiResource::Memory,
            kind: PsiKind::Some,
            stall: Duration::from_millis(150),
            window: Duration::from_secs(1),
        };
        assert_eq!(t.line(), "some 150000 1000000");
        assert!(t.is_valid());
        assert!(!t.is_valid_unprivileged());
        let two = PsiTrigger {
            window: Duration::from_secs(2),
            ..t
        };
        assert!(two.is_valid_unprivileged());
        let short = PsiTrigger {
            window: Duration::from_millis(100),
            stall: Duration::from_millis(50),
            ..t
        };
        assert!(!short.is_valid());
        let over = PsiTrigger {
            stall: Duration::from_secs(2),
            ..t
        };
        assert!(!over.is_valid());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn printed_files_parse_back(
            a in 0u32..10000, b in 0u32..10000, c in 0u32..10000, t in any::<u64>(),
        ) {
            let pct = |v: u32| f64::from(v) / 100.0;
            let text = format!(
                "some avg10={:.2} avg60={:.2} avg300={:.2} total={t}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                pct(a), pct(b), pct(c)
            );
            let p = parse(&text).unwrap();
            prop_assert!((p.some.avg10 - pct(a)).abs() < 1e-9);
            prop_assert!((p.some.avg60 - pct(b)).abs() < 1e-9);
            prop_assert!((p.some.avg300 - pct(c)).abs() < 1e-9);
            prop_assert_eq!(p.some.total, t);
        }
    }
}
