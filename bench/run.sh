#!/usr/bin/env bash
# Benchmark: `run` of a busybox bundle executing /bin/true, corral vs crun vs
# runc (Debian's), side by side in one hyperfine run. Every runtime runs under
# the same wrapper: a private mount namespace with /sys/fs/cgroup/unified
# unmounted (crun refuses this host's hybrid layout otherwise), so the
# comparison is fair. Prints hyperfine's table, the ratios, corral's peak RSS
# and binary size.
#
#   bench/run.sh [--runs N]        (root; installs hyperfine, crun, runc, busybox-static)
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
RUNS=200
[[ ${1:-} == --runs ]] && RUNS=$2

need=()
for p in hyperfine:hyperfine crun:crun runc:runc busybox:busybox-static; do
  command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
CORRAL=$PWD/target/x86_64-unknown-linux-gnu/release/corral

work=$(mktemp -d /tmp/corral-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
bench/make-rootfs.sh "$work/bundle/rootfs" >/dev/null
(cd "$work/bundle" && "$CORRAL" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["ociVersion"] = "1.0.2-dev"  # crun 1.8 knows no later version
json.dump(c, open(p, "w"))
PY

wrap() { # the private-mount-namespace wrapper all three runtimes run under
  echo "unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec $1 --root $work/state-$2 run -b $work/bundle bench-$2-\$\$ >/dev/null'"
}
# CORRAL_OTHER=BIN adds another corral binary (an older build) to the run.
other=()
[[ -n ${CORRAL_OTHER:-} ]] && other=(-n other "$(wrap "$CORRAL_OTHER" other)")
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/result.json" \
  -n floor "unshare -m -p -n -i -u -f true" \
  -n corral "$(wrap "$CORRAL" corral)" \
  "${other[@]}" \
  -n crun "$(wrap crun crun)" \
  -n runc "$(wrap runc runc)"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c = r["corral"]["mean"]
for name in ("floor", "other", "crun", "runc"):
    if name not in r:
        continue
    print(f"corral / {name}: {c / r[name]['mean']:.2f}x  (corral {c*1e3:.2f} ms, {name} {r[name]['mean']*1e3:.2f} ms)")
PY
rss=$( { /usr/bin/time -f %M unshare -m --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; exec $CORRAL --root $work/state-rss run -b $work/bundle rss >/dev/null"; } 2>&1 | tail -1)
echo "corral peak RSS: ${rss} KiB; binary size: $(stat -c %s "$CORRAL") bytes"
