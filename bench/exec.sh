#!/usr/bin/env bash
# Benchmark: `exec` of /bin/true into a running busybox container, corral vs
# crun vs runc (Debian's), side by side in one hyperfine run, all under the
# same private-mount-namespace wrapper as bench/run.sh. Prints the ratios.
#
#   bench/exec.sh [--runs N]        (root)
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
RUNS=200
[[ ${1:-} == --runs ]] && RUNS=$2
scripts/deps.sh hyperfine crun runc >/dev/null
cargo build --release --quiet
CORRAL=$PWD/target/x86_64-unknown-linux-gnu/release/corral

work=$(mktemp -d /tmp/corral-bench.XXXXXX)
cleanup() {
  for r in "$CORRAL" crun runc; do
    name=$(basename "$r")
    "$r" --root "$work/state-$name" delete --force "bench-exec-$name" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
bench/make-rootfs.sh "$work/bundle/rootfs" >/dev/null
(cd "$work/bundle" && "$CORRAL" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "100000"]
c["ociVersion"] = "1.0.2-dev"  # crun 1.8 knows no later version
json.dump(c, open(p, "w"))
PY

wrapped() { # the wrapper all runtimes run under (crun needs it on this hybrid host)
  echo "unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec $*'"
}
cmds=()
for r in "$CORRAL" crun runc; do
  name=$(basename "$r")
  sh -c "$(wrapped "$r --root $work/state-$name run -d -b $work/bundle bench-exec-$name </dev/null >/dev/null 2>&1")"
  cmds+=(-n "$name" "$(wrapped "$r --root $work/state-$name exec bench-exec-$name /bin/true")")
done
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/result.json" "${cmds[@]}"
python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c = r["corral"]["mean"]
for name in ("crun", "runc"):
    print(f"exec corral / {name}: {c / r[name]['mean']:.2f}x  (corral {c*1e3:.2f} ms, {name} {r[name]['mean']*1e3:.2f} ms)")
PY
