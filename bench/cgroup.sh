#!/usr/bin/env bash
# The cgroup cycle of issue 5, three ways in one hyperfine run:
#   create a group in memory+pids+cpu, set three values, attach a process,
#   read stats, delete
# with Debian's cgroup-tools (cgcreate; cgset; cgclassify; cgget; cgdelete),
# with `corral cgroup` (the same five commands), and through the library
# (crates/cgroups/examples/cgroup_cycle.rs). Each command runs CYCLES cycles;
# the ratios printed at the end are cgroup-tools' mean time over each.
# A fourth line, "kernel floor" (crates/cgroups/examples/cgroup_floor.rs),
# does the cycle as bare syscalls: the kernel's own cost, so cgroup-tools /
# floor is the best ratio any library can reach on this host (v1 and hybrid
# hosts; the kernel's cost grows with its state, see docs/cgroups.md).
#
# Usage (as root): bench/cgroup.sh [CYCLES] [extra hyperfine args]
# Needs: hyperfine, cgroup-tools (apt-get install hyperfine cgroup-tools).
# Every group is below one parent, corral-test-bench-PID, so the attached
# process moves back to that parent on delete and no root cgroup is written.
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
cycles=${1:-20}
shift || true
for tool in hyperfine cgcreate cgset cgclassify cgget cgdelete python3; do
  command -v "$tool" >/dev/null || { echo "bench/cgroup.sh: $tool is missing" >&2; exit 1; }
done
cargo build --release --quiet -p corral -p corral-cgroups --example cgroup_cycle --example cgroup_floor
corral=$PWD/target/x86_64-unknown-linux-gnu/release/corral
lib=$PWD/target/x86_64-unknown-linux-gnu/release/examples/cgroup_cycle
floor=$PWD/target/x86_64-unknown-linux-gnu/release/examples/cgroup_floor

parent=corral-test-bench-$$
ctrls=memory,pids,cpu
work=$(mktemp -d)
sleep 1000000 &
victim=$!
cleanup() {
  kill "$victim" 2>/dev/null || true
  wait "$victim" 2>/dev/null || true
  "$corral" cgroup delete -r -g "$ctrls:/$parent" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$corral" cgroup create -g "$ctrls:/$parent"
"$corral" cgroup classify -g "$ctrls:/$parent" "$victim"

g=$parent/cycle
cat >"$work/tools.sh" <<SH
for i in \$(seq $cycles); do
  cgcreate -g $ctrls:/$g
  cgset -r memory.limit_in_bytes=64M -r pids.max=100 -r cpu.shares=512 $g
  cgclassify -g $ctrls:/$g $victim
  cgget -r memory.usage_in_bytes -r pids.current -r cpuacct.usage $g >/dev/null 2>&1 || true
  cgdelete -g $ctrls:/$g
done
SH
cat >"$work/corral.sh" <<SH
for i in \$(seq $cycles); do
  $corral cgroup create -g $ctrls:/$g
  $corral cgroup set -r memory.limit_in_bytes=64M -r pids.max=100 -r cpu.shares=512 $g
  $corral cgroup classify -g $ctrls:/$g $victim
  $corral cgroup get -r memory.usage_in_bytes -r pids.current -r cpuacct.usage $g >/dev/null
  $corral cgroup delete -r -g $ctrls:/$g
done
SH

floor_cmd=()
if [ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/pids ] && [ -d /sys/fs/cgroup/cpu ]; then
  floor_cmd=(-n "kernel floor" "$floor $parent $victim $cycles")
fi
hyperfine --warmup 2 --export-json "$work/out.json" "$@" \
  -n cgroup-tools "bash $work/tools.sh" \
  -n "corral cgroup" "bash $work/corral.sh" \
  -n library "$lib $parent $victim $cycles" \
  "${floor_cmd[@]}"

python3 - "$work/out.json" "$cycles" <<'PY'
import json, sys
res = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
n = int(sys.argv[2])
tools = res["cgroup-tools"]
for name, mean in res.items():
    print(f"{name:14} {mean / n * 1000:8.3f} ms per cycle   cgroup-tools / {name} = {tools / mean:6.2f}x")
lib_ok = tools / res["library"] >= 10
cli_ok = res["corral cgroup"] <= tools
if "kernel floor" in res:
    print(f"the kernel alone allows at most {tools / res['kernel floor']:.2f}x here; "
          f"the library's own cost is {(res['library'] - res['kernel floor']) / n * 1000:.3f} ms per cycle")
print(f"library >= 10x faster than cgroup-tools: {'yes' if lib_ok else 'NO'}")
print(f"corral cgroup no slower than cgroup-tools: {'yes' if cli_ok else 'NO'}")
sys.exit(0 if lib_ok and cli_ok else 1)
PY
