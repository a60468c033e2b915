#!/usr/bin/env bash
# cgroup v2 lane: the corral-cgroups tests, root-only ones included, on a
# pure cgroup v2 kernel in a QEMU VM (see ../shared/vm/README.md). The tests
# are built on the host; cargo runs each test binary through vm-run
# (scripts/vm-runner.sh: the VM's console on failure, one more run when the
# VM stops making progress).
#
# Usage: crates/cgroups/v2-lane.sh [extra test-binary arguments]
# Env:   VM_RUN  path of vm-run (default: <repo>/../shared/vm/vm-run)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
VM_RUN=$(realpath "${VM_RUN:-$repo/../shared/vm/vm-run}")

# One-time fetch of qemu and the kernel, cached afterwards; quiet unless it fails.
"$VM_RUN" -q --setup

# Doc tests would run on the host, not in the VM: --lib --tests keeps them out.
VM_RUN=$VM_RUN CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$repo/scripts/vm-runner.sh 1800" \
    cargo test --manifest-path "$here/Cargo.toml" --lib --tests -- --include-ignored "$@"
