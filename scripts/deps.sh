#!/usr/bin/env bash
# Installs what building and testing corral needs on a fresh Debian machine
# (as root): busybox-static for the test rootfs, libseccomp-dev for the
# seccomp filters (the libseccomp crate links it), runc (the reference the
# versus_runc tests compare with), procps (ps, for `corral ps`), python3 (the
# pty driver), gcc (the checkpoint probes), podman and containerd (the
# engines the integration tests drive corral with), plus what a caller names
# (the benchmarks' hyperfine, crun). Quiet when everything is there already.
set -euo pipefail
want=()
for p in busybox-static libseccomp-dev runc procps python3 gcc podman containerd "$@"; do dpkg -s "$p" >/dev/null 2>&1 || want+=("$p"); done
if ((${#want[@]})); then
  echo "installing: ${want[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
