#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 10) on its seed corpus:
#   fuzz/run.sh [SECONDS]
# Installs cargo-fuzz (crates.io) when missing; needs the nightly toolchain
# (`cargo +nightly fuzz`), which the machines ship beside stable. New inputs
# go to a scratch corpus, so fuzz/corpus keeps only the committed seeds; a
# crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
seconds=${1:-10}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
echo "== cargo +nightly fuzz build"
cargo +nightly fuzz build
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo +nightly fuzz list); do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "$scratch/$target"
  # libseccomp 2.5.4 leaks 96-byte blocks inside the library for some
  # filters corral builds and frees correctly (docs/security.md): leak
  # detection, per input (libFuzzer) and at exit (ASan), would report that.
  # TMPDIR: the config target makes its bundle under it, and libFuzzer
  # exits without destructors; the scratch directory goes at exit.
  extra=() env=(env TMPDIR="$scratch")
  if [ "$target" = seccomp_profile ]; then
    extra=(-detect_leaks=0) env+=(ASAN_OPTIONS=detect_leaks=0)
  fi
  rc=0
  "${env[@]}" cargo +nightly fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" >"$scratch/$target.log" 2>&1 || rc=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$scratch/$target.log" || true
  if [ "$rc" != 0 ]; then
    tail -n 60 "$scratch/$target.log"
    echo "fuzz/run.sh: $target failed (exit $rc); its input is in fuzz/artifacts/$target/"
    exit 1
  fi
done
