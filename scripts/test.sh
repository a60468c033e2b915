#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root):
#   sudo scripts/test.sh
# formatting, clippy, every test including the root-only ones, and the
# cgroup v2 lane in a QEMU VM (skip it with CORRAL_SKIP_V2=1), and every fuzz
# target for 10 seconds (skip it with CORRAL_SKIP_FUZZ=1).
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
scripts/deps.sh
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test (host: cgroup $(test -e /sys/fs/cgroup/cgroup.controllers && echo v2 || echo v1/hybrid))"
cargo test --workspace -- --include-ignored
if [ "${CORRAL_SKIP_V2:-0}" != 1 ] && [ -x ../shared/vm/vm-run ]; then
  echo "== cgroup v2 lane (QEMU VM): the cgroups crate"
  crates/cgroups/v2-lane.sh
  echo "== cgroup v2 lane (QEMU VM): the runtime's lifecycle and error tests, the cgroup tool"
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/vm-runner.sh 600" \
    cargo test -p corral --test lifecycle --test errors --test cgroup_tool -- --include-ignored --test-threads=2
fi
if [ "${CORRAL_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz: every target for 10 s (docs/security.md)"
  fuzz/run.sh 10
fi
