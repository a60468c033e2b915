#!/usr/bin/env bash
# 50-way concurrent run/exec/kill/delete against one state root, for a given
# time; counts operations and failures, then checks that nothing is left:
# mounts, cgroups, processes, state directories. Not part of CI (issue 7).
#   sudo scripts/stress.sh [SECONDS] [WORKERS]     (default: 300 s, 50 workers)
# CORRAL_BIN picks the binary (default: target/x86_64-unknown-linux-gnu/release/corral, built here).
# Exit status 0 only with zero failures and zero leaks.
set -euo pipefail
cd "$(dirname "$0")/.."

# PID 1 here does not reap orphans: detached containers are reparented to
# the nearest child subreaper, so make this shell one (bash reaps any child).
if [ "${CORRAL_STRESS_SUBREAPER:-}" != 1 ]; then
  export CORRAL_STRESS_SUBREAPER=1
  exec python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
os.execvp("bash", ["bash"] + sys.argv[1:])' "$0" "$@"
fi

duration=${1:-300}
workers=${2:-50}
if [ -z "${CORRAL_BIN:-}" ]; then
  cargo build --release --quiet
  CORRAL_BIN=$PWD/target/x86_64-unknown-linux-gnu/release/corral
fi
corral=$CORRAL_BIN

work=$(mktemp -d /tmp/corral-stress.XXXXXX)
prefix="stress-$$"
state="$work/state"
bench/make-rootfs.sh "$work/rootfs" >/dev/null
# Two bundles share the read-only rootfs: one container sleeps (for exec and
# kill), the other exits at once (a foreground run).
for kind in long short; do
  mkdir -p "$work/$kind"
  (cd "$work/$kind" && "$corral" spec)
  python3 - "$work/$kind/config.json" "$work/rootfs" "$kind" <<'PY'
import json, sys
path, rootfs, kind = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "1000"] if kind == "long" else ["true"]
json.dump(c, open(path, "w"), indent=2)
PY
done

# One worker: its own ids, one line per operation in its log ("ok OP" or
# "FAIL OP: stderr").
worker() {
  local w=$1 end=$2 i=0 log="$work/log.$1" err="$work/err.$1"
  : >"$log"
  op() { # op NAME corral-args...: runs corral, logs the outcome
    local name=$1
    shift
    if "$corral" --root "$state" "$@" </dev/null >/dev/null 2>"$err"; then
      echo "ok $name" >>"$log"
    else
      echo "FAIL $name ($*): $(tr '\n' ' ' <"$err")" >>"$log"
      return 1
    fi
  }
  while [ "$(date +%s)" -lt "$end" ]; do
    local id="$prefix-w$w-$i"
    i=$((i + 1))
    if op run-detach run -d --bundle "$work/long" "$id"; then
      op exec exec "$id" true || true
      op exec-shell exec "$id" sh -c 'echo $$ >/dev/null' || true
      op list list -q || true
      op kill kill "$id" KILL || true
      local tries=0
      while [ $tries -lt 250 ]; do
        "$corral" --root "$state" state "$id" 2>/dev/null | grep -q '"status": *"stopped"' && break
        sleep 0.02
        tries=$((tries + 1))
      done
      [ $tries -lt 250 ] && echo "ok wait-stopped" >>"$log" || echo "FAIL wait-stopped $id" >>"$log"
      op delete delete "$id" || op delete-force delete --force "$id" || true
    fi
    op run run --bundle "$work/short" "$id-fg" || true
  done
}

echo "stress: $workers workers for ${duration}s, binary $corral, work dir $work"
end=$(($(date +%s) + duration))
started=$(date +%s.%N)
pids=()
for w in $(seq 1 "$workers"); do
  worker "$w" "$end" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
sleep 1 # let the last killed processes be reaped

ops=$(cat "$work"/log.* | wc -l)
fails=$(cat "$work"/log.* | grep -c '^FAIL' || true)
echo "operations: $ops in ${elapsed}s ($(echo "$ops / $elapsed" | bc) per second); failures: $fails"
cat "$work"/log.* | awk '{print $1, $2}' | sort | uniq -c | sort -rn
if [ "$fails" -gt 0 ]; then
  echo "first failures:"
  grep -h '^FAIL' "$work"/log.* | head -10
fi

leaks=0
leak() { echo "LEAK $*"; leaks=$((leaks + 1)); }
while read -r line; do leak "mount: $line"; done < <(grep -e "$work" -e "$prefix" /proc/self/mountinfo || true)
while read -r dir; do leak "cgroup: $dir"; done < <(find /sys/fs/cgroup -maxdepth 4 -type d -name "*$prefix*" 2>/dev/null || true)
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = $$ ] && continue
  root=$(readlink "$p/root" 2>/dev/null || true)
  cg=$(cat "$p/cgroup" 2>/dev/null || true)
  if [[ "$root" == "$work"* ]] || [[ "$cg" == *"$prefix"* ]]; then
    leak "process $pid: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
  fi
done
zombies=$(ps -o stat= --ppid $$ 2>/dev/null | grep -c '^Z' || true)
[ "$zombies" -eq 0 ] || leak "$zombies unreaped zombie children"
if [ -d "$state" ]; then
  for d in "$state"/*; do [ -e "$d" ] && leak "state dir: $d"; done
fi
echo "leaks: $leaks"

if [ "$leaks" -eq 0 ]; then rm -rf "$work"; else echo "kept $work"; fi
[ "$fails" -eq 0 ] && [ "$leaks" -eq 0 ]
