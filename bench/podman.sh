#!/usr/bin/env bash
# Benchmark: `podman run --rm --rootfs R /bin/true` with corral, crun and runc
# (Debian's) as podman's --runtime, side by side in one hyperfine run; prints
# the ratios. The engine's own cost is in every number, so this shows what a
# podman user sees. Every runtime runs under the same wrapper: a private mount
# namespace with /sys/fs/cgroup/unified unmounted (crun refuses this host's
# hybrid layout otherwise), podman's flags for a minimal host (docs/testing.md)
# with storage private to the benchmark, and a cgroup parent removed at the end.
#
#   bench/podman.sh [--runs N]     (root; installs hyperfine, crun, runc, podman)
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
RUNS=40
[[ ${1:-} == --runs ]] && RUNS=$2

scripts/deps.sh hyperfine crun
cargo build --release --quiet
CORRAL=$PWD/target/release/corral

work=$(mktemp -d /tmp/corral-bench-podman.XXXXXX)
parent=corral-bench-podman-$$
fresh_run_dirs=()
for d in /run/corral /run/runc /run/crun /run/containers; do [ -e "$d" ] || fresh_run_dirs+=("$d"); done
cleanup() {
  for c in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/unified/"$parent"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$work" "${fresh_run_dirs[@]}"
}
trap cleanup EXIT
bench/make-rootfs.sh "$work/rootfs" >/dev/null

podman_cmd() { # $1 runtime binary, $2 name
  local g="--root $work/$2/root --runroot $work/$2/runroot --tmpdir $work/$2/libpod"
  g+=" --network-config-dir $work/$2/net --storage-driver vfs --cgroup-manager cgroupfs"
  g+=" --events-backend file --runtime $1"
  local r="--rm --network none --ulimit nofile=1024:4096 --ulimit nproc=1024:4096"
  r+=" --cgroup-parent /$parent --rootfs $work/rootfs /bin/true"
  echo "unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec podman $g run $r >/dev/null'"
}
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/result.json" \
  -n corral "$(podman_cmd "$CORRAL" corral)" \
  -n crun "$(podman_cmd "$(command -v crun)" crun)" \
  -n runc "$(podman_cmd "$(command -v runc)" runc)"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c = r["corral"]
for name in ("crun", "runc"):
    o = r[name]
    print(f"podman run --rm: corral / {name}: {c['mean'] / o['mean']:.2f}x by mean, "
          f"{c['median'] / o['median']:.2f}x by median  (corral {c['mean']*1e3:.1f} ms, "
          f"{name} {o['mean']*1e3:.1f} ms; medians {c['median']*1e3:.1f} / {o['median']*1e3:.1f} ms)")
PY
