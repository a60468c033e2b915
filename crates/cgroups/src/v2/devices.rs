//! v2 device access: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! built from the OCI rules, attached to the cgroup with `BPF_F_ALLOW_MULTI`.
//! Re-applying replaces our program atomically (`BPF_F_REPLACE`), so there is
//! never a moment without one.
//!
//! The program (the kernel passes `struct bpf_cgroup_dev_ctx *` in r1:
//! `access_type` = access << 16 | type, then `major`, `minor`, all u32):
//!
//! ```text
//! r2 = ctx->access_type & 0xffff      type: 1 block, 2 char
//! r3 = ctx->access_type >> 16         access: 1 mknod, 2 read, 4 write
//! r4 = ctx->major; r5 = ctx->minor
//! for each rule, last first (the last matching rule wins, as in v1):
//!     if r2 != TYPE goto next                       (unless type a)
//!     r1 = r3 & ACCESS; if r1 != r3 goto next       (unless rwm)
//!     if r4 != MAJOR goto next; if r5 != MINOR goto next   (unless *)
//!     r0 = ALLOW; exit
//! next: ...
//! r0 = DEFAULT; exit
//! ```
//!
//! A rule matching everything (`a *:* rwm`) ends the list: rules before it
//! can never match, and it decides the default. Without one, the default is
//! allow, as a fresh v1 devices cgroup inherits from its parent.

use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::{dir::CgroupDir, sys};

/// A device rule could not be compiled or the program not installed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A rule holds something no device or access can be.
    #[error("device rule {rule:?}: {reason}")]
    BadRule {
        /// The rule as the kernel's v1 line would read.
        rule: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `bpf(BPF_PROG_LOAD)` refused the program.
    #[error("cannot load the device program for cgroup {path} (verifier log: {log:?})")]
    Load {
        /// The cgroup.
        path: std::path::PathBuf,
        /// The verifier's log, if it wrote one.
        log: String,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// Querying, attaching or detaching failed.
    #[error("cannot {op} the device program of cgroup {path}")]
    Attach {
        /// "query", "attach", "replace", "detach".
        op: &'static str,
        /// The cgroup.
        path: std::path::PathBuf,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    /// Jump offset or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR
const ACC_MKNOD: i32 = 1; // BPF_DEVCG_ACC_MKNOD
const ACC_READ: i32 = 2; // BPF_DEVCG_ACC_READ
const ACC_WRITE: i32 = 4; // BPF_DEVCG_ACC_WRITE
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0xf) | (src << 4),
        off,
        imm,
    }
}

/// Compiles the rules into a program (see the module doc).
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, DeviceError> {
    let mut prog = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    let mut default_allow = true;
    for rule in rules.iter().rev() {
        if crate::v1::devices::is_all(rule) {
            default_allow = rule.allow();
            break;
        }
        if let Some(block) = rule_block(rule)? {
            prog.extend(block);
        }
    }
    prog.push(insn(ALU_MOV_K, 0, 0, 0, i32::from(default_allow)));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    Ok(prog)
}

fn rule_block(rule: &LinuxDeviceCgroup) -> Result<Option<Vec<Insn>>, DeviceError> {
    let bad = |reason| DeviceError::BadRule {
        rule: crate::v1::devices::line(rule),
        reason,
    };
    let typ = match rule.typ() {
        None | Some(LinuxDeviceType::A) => None,
        Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => Some(DEV_CHAR),
        Some(LinuxDeviceType::P) => {
            // The device cgroup never sees FIFOs; runc skips these too.
            tracing::debug!(rule = %crate::v1::devices::line(rule), "fifo device rule skipped");
            return Ok(None);
        }
    };
    let mut access = 0;
    for c in crate::v1::devices::access(rule).chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(bad("access may only hold r, w and m")),
        };
    }
    let number = |n: Option<i64>| match n {
        None | Some(-1) => Ok(None),
        Some(n) => i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| bad("major and minor must be 0..2^31")),
    };
    let (major, minor) = (number(rule.major())?, number(rule.minor())?);

    // Jumps are filled with the block's length once it is known.
    const NEXT: i16 = i16::MAX;
    let mut block = Vec::new();
    if let Some(t) = typ {
        block.push(insn(JMP_JNE_K, 2, 0, NEXT, t));
    }
    if access != ACC_ALL {
        block.push(insn(ALU_MOV_X, 1, 3, 0, 0));
        block.push(insn(ALU_AND_K, 1, 0, 0, access));
        block.push(insn(JMP_JNE_X, 1, 3, NEXT, 0));
    }
    if let Some(m) = major {
        block.push(insn(JMP_JNE_K, 4, 0, NEXT, m));
    }
    if let Some(m) = minor {
        block.push(insn(JMP_JNE_K, 5, 0, NEXT, m));
    }
    block.push(insn(ALU_MOV_K, 0, 0, 0, i32::from(rule.allow())));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = block.len();
    for (i, ins) in block.iter_mut().enumerate() {
        if ins.off == NEXT {
            // A jump lands `off` instructions after the one following it.
            ins.off = i16::try_from(len - i - 1).expect("a block has at most 9 instructions");
        }
    }
    Ok(Some(block))
}

/// Builds, loads and attaches the program for `rules` to the cgroup `dir`,
/// replacing the program attached there before, if there was exactly one;
/// with several (someone else's too), ours is added and the old ones detached.
pub fn apply(dir: &CgroupDir, rules: &[LinuxDeviceCgroup]) -> Result<(), DeviceError> {
    let insns = program(rules)?;
    let path = dir.path().to_owned();
    let prog =
        sys::bpf_prog_load_cgroup_device(&insns).map_err(|(source, log)| DeviceError::Load {
            path: path.clone(),
            log,
            source,
        })?;
    let attach_err = |op| {
        let path = path.clone();
        move |source| DeviceError::Attach { op, path, source }
    };
    let old = sys::bpf_prog_query_cgroup_device(dir.as_fd()).map_err(attach_err("query"))?;
    let old_fds: Vec<OwnedFd> = old
        .iter()
        .filter_map(|id| match sys::bpf_prog_get_fd_by_id(*id) {
            Ok(fd) => Some(Ok(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None, // detached meanwhile
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(attach_err("query"))?;
    if let [one] = old_fds.as_slice() {
        match sys::bpf_prog_attach_cgroup_device(dir.as_fd(), prog.as_fd(), Some(one.as_fd())) {
            Ok(()) => return Ok(()),
            // Before 5.6 there is no BPF_F_REPLACE: fall back to attach + detach.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(attach_err("replace")(e)),
        }
    }
    sys::bpf_prog_attach_cgroup_device(dir.as_fd(), prog.as_fd(), None)
        .map_err(attach_err("attach"))?;
    for fd in &old_fds {
        sys::bpf_prog_detach_cgroup_device(dir.as_fd(), fd.as_fd())
            .map_err(attach_err("detach"))?;
    }
    Ok(())
}

/// How many device programs are attached to the cgroup `dir` itself.
pub fn attached(dir: &CgroupDir) -> Result<usize, DeviceError> {
    sys::bpf_prog_query_cgroup_device(dir.as_fd())
        .map(|ids| ids.len())
        .map_err(|source| DeviceError::Attach {
            op: "query",
            path: dir.path().to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    use super::*;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    /// Runs the program the way the kernel would, on one access.
    fn run(prog: &[Insn], typ: i32, access: i32, major: i32, minor: i32) -> i32 {
        let ctx = [((access << 16) | typ) as u32, major as u32, minor as u32];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]),
                ALU_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU_MOV_K => r[dst] = i.imm as u32 as u64,
                ALU_MOV_X => r[dst] = r[src] as u32 as u64,
                JMP_JNE_K if r[dst] != i.imm as i64 as u64 => pc += usize::try_from(i.off).unwrap(),
                JMP_JNE_X if r[dst] != r[src] => pc += usize::try_from(i.off).unwrap(),
                JMP_JNE_K | JMP_JNE_X => {}
                JMP_EXIT => return r[0] as i32,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn deny_all_then_allow_some() {
        let rules = [
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(5), "r"),
            rule(true, LinuxDeviceType::C, Some(136), None, "rw"),
        ];
        let p = program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1, "null");
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 1, 3), 0, "block 1:3");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1, "zero read");
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 5), 0, "zero write");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 136, 7), 1, "pts");
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 136, 7), 0, "pts mknod");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 8, 0), 0, "other");
    }

    #[test]
    fn last_match_wins_and_default_is_allow_without_a_catch_all() {
        let rules = [
            rule(true, LinuxDeviceType::C, Some(1), None, "rwm"),
            rule(false, LinuxDeviceType::C, Some(1), Some(5), "w"),
        ];
        let p = program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 5), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 1);
    }

    #[test]
    fn bad_rules_are_named() {
        let err = program(&[rule(true, LinuxDeviceType::C, Some(1), Some(3), "rx")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device rule \"c 1:3 rx\": access may only hold r, w and m"
        );
        assert!(program(&[rule(true, LinuxDeviceType::C, Some(1 << 40), None, "r")]).is_err());
    }
}
