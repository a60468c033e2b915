#!/usr/bin/env bash
# Benchmark: `corral cr dump` and `corral cr restore` of the memory probe
# (crates/checkpoint/tests/probes/memory.c), which fills N MiB of anonymous
# memory with a pseudo-random pattern. Every run dumps a fresh probe, restores
# it, signals it and requires "ok: 0 differences" (every word checked), so a
# fast but wrong restore fails the bench instead of scoring.
#
# The image directory is a private tmpfs: the whole bench runs in its own
# mount and pid namespace (`unshare -m -p -f --propagation private`), so the
# tmpfs vanishes with it, restored pids are free, and the namespace's init
# (this script) reaps the detached probes (trap 6).
#
# Times are wall clock around the corral command (process start, image
# parse, freeze/kill included); GB/s is page bytes / that time. Peak RSS is
# the VmHWM corral reports for itself.
#
#   bench/checkpoint.sh [--runs N] [--sizes "64 1024"] [--4g] [--huge]   (root)
#
# --huge mounts the tmpfs with huge=within_size: page-cache pages of 2 MiB
# make writing the image about twice as fast here (the cost of a dump is
# allocating page-cache pages 4 KiB at a time, not copying). Without it the
# tmpfs is as /dev/shm is mounted by default.
#
# CRIU 4.2 on these machines (../shared/CHECKPOINT-NOTES.md): 64 MiB dump
# 0.11 s, restore 0.10 s; 1 GiB 0.8-0.9 s each way (1.1-1.5 GB/s); 4 GiB dump
# 9-16 s.
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
RUNS=5
SIZES="64 1024"
HUGE=never
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --4g) SIZES="$SIZES 4096"; shift ;;
    --huge) HUGE=within_size; shift ;;
    --huge=*) HUGE=${1#--huge=}; shift ;;
    *) echo "usage: $0 [--runs N] [--sizes \"64 1024\"] [--4g] [--huge]" >&2; exit 2 ;;
  esac
done

if [[ -z ${CORRAL_CR_BENCH_NS:-} ]]; then
  cargo build --release --quiet -p corral
  work=$(mktemp -d /tmp/corral-cr-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  cc -static -O2 -o "$work/memory" crates/checkpoint/tests/probes/memory.c
  # Not exec: the trap above removes $work once the namespace is gone.
  CORRAL_CR_BENCH_NS=$work unshare -m -p -f --propagation private --mount-proc \
    "$0" --runs "$RUNS" --sizes "$SIZES" --huge="$HUGE"
  exit
fi

# From here on: pid 1 of a new pid namespace, with a private mount table.
work=$CORRAL_CR_BENCH_NS
CORRAL=$PWD/target/x86_64-unknown-linux-gnu/release/corral
max=0
for s in $SIZES; do ((s > max)) && max=$s; done
mkdir -p "$work/tmpfs"
mount -t tmpfs -o size=$((max + 256))m,huge=$HUGE corral-cr-bench "$work/tmpfs"
echo "image tmpfs: huge=$HUGE; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
t=$work/tmpfs
results=$work/results.tsv
: >"$results"

now() { echo "${EPOCHREALTIME/./}"; } # microseconds

wait_file() { # path, seconds
  local i
  for ((i = 0; i < $2 * 100; i++)); do
    [[ -e $1 ]] && return 0
    sleep 0.01
  done
  echo "timed out waiting for $1" >&2
  return 1
}

wait_verdict() { # log, seconds
  local i
  for ((i = 0; i < $2 * 100; i++)); do
    grep -qE '^(ok|FAIL):' "$1" 2>/dev/null && break
    sleep 0.01
  done
  if ! grep -q '^ok: 0 differences' "$1"; then
    echo "restored probe did not verify:" >&2
    cat "$1" >&2
    return 1
  fi
}

hwm() { sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' "$1"; }

for size in $SIZES; do
  for ((run = 1; run <= RUNS; run++)); do
    rm -rf "$t/img" "$t/ready" "$t/probe.log"
    "$work/memory" "$size" "$t/ready" >"$t/probe.log" 2>&1 </dev/null &
    probe=$!
    disown "$probe" # the dump kills it; we are pid 1 and reap it anyway
    wait_file "$t/ready" 120
    a=$(now)
    "$CORRAL" cr dump --pid "$probe" --images-dir "$t/img" 2>"$t/dump.err" ||
      { cat "$t/dump.err" >&2; exit 1; }
    b=$(now)
    bytes=$(stat -c %s "$t"/img/pages-*.img)
    c=$(now)
    "$CORRAL" cr restore --images-dir "$t/img" --detach 2>"$t/restore.err" ||
      { cat "$t/restore.err" >&2; exit 1; }
    d=$(now)
    kill -USR1 "$probe"
    wait_verdict "$t/probe.log" 120
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$run" "$bytes" $((b - a)) $((d - c)) \
      "$(hwm "$t/dump.err")" "$(hwm "$t/restore.err")" >>"$results"
    printf 'size %5s MiB run %d: dump %8.1f ms  restore %8.1f ms\n' "$size" "$run" \
      "$(echo "($b - $a) / 1000" | bc -l)" "$(echo "($d - $c) / 1000" | bc -l)"
  done
done
rm -rf "$t/img"

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
print()
print(f"{'size':>8} {'runs':>4} | {'dump s min/med/max':>24} {'GB/s max/med':>14} | "
      f"{'restore s min/med/max':>24} {'GB/s max/med':>14} | peak RSS MiB dump/restore")
for size in dict.fromkeys(r[0] for r in rows):
    rs = [r for r in rows if r[0] == size]
    nbytes = int(rs[0][2])
    def cols(i):
        t = sorted(int(r[i]) / 1e6 for r in rs)
        med = statistics.median(t)
        return (f"{t[0]:7.3f} {med:7.3f} {t[-1]:7.3f}",
                f"{nbytes / 1e9 / t[0]:6.2f} {nbytes / 1e9 / med:6.2f}")
    d, dg = cols(3)
    r, rg = cols(4)
    rss = max(float(r[5] or 0) for r in rs), max(float(r[6] or 0) for r in rs)
    print(f"{size + ' MiB':>8} {len(rs):>4} | {d:>24} {dg:>14} | {r:>24} {rg:>14} | "
          f"{rss[0]:.1f} / {rss[1]:.1f}")
print("bars (issue 8): dump and restore >= 2 GB/s at 1 GiB; 64 MiB restore < 0.030 s")
print("CRIU 4.2 here: 64 MiB 0.11 s / 0.10 s; 1 GiB 0.8-0.9 s each (1.1-1.5 GB/s)")
PY
