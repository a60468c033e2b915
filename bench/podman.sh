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
#   ROUNDS=R bench/podman.sh …     (default 5 rounds, see below)
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
RUNS=40
[[ ${1:-} == --runs ]] && RUNS=$2

scripts/deps.sh hyperfine crun
cargo build --release --quiet
CORRAL=$PWD/target/x86_64-unknown-linux-gnu/release/corral

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
# Load on a shared machine drifts over a minute; hyperfine runs each command's
# runs back to back, so the benchmark is split into rounds with the order of
# the three rotated, and the ratios come from all samples together.
ROUNDS=${ROUNDS:-5}
per=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
names=(corral crun runc)
bins=("$CORRAL" "$(command -v crun)" "$(command -v runc)")
for ((round = 0; round < ROUNDS; round++)); do
  args=()
  for ((i = 0; i < 3; i++)); do
    j=$(( (i + round) % 3 ))
    args+=(-n "${names[j]}" "$(podman_cmd "${bins[j]}" "${names[j]}")")
  done
  hyperfine -N --warmup 2 --runs "$per" --export-json "$work/round-$round.json" "${args[@]}" |
    grep -E "^Benchmark|Time \(mean"
done

python3 - "$work" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
times = {}
for r in range(rounds):
    for x in json.load(open(f"{work}/round-{r}.json"))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
mean = {k: statistics.mean(v) for k, v in times.items()}
median = {k: statistics.median(v) for k, v in times.items()}
n = len(times["corral"])
for name in ("crun", "runc"):
    print(f"podman run --rm ({n} runs each, {rounds} rounds): corral / {name}: "
          f"{mean['corral'] / mean[name]:.2f}x by mean, {median['corral'] / median[name]:.2f}x by median "
          f"(means: corral {mean['corral']*1e3:.1f} ms, {name} {mean[name]*1e3:.1f} ms; "
          f"medians {median['corral']*1e3:.1f} / {median[name]*1e3:.1f} ms)")
PY
