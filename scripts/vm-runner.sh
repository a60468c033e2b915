#!/usr/bin/env bash
# cargo's test runner for the cgroup v2 lane: runs one test binary in a
# throwaway QEMU VM (../shared/vm/vm-run, pure cgroup v2) and exits with its
# status.
#
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="scripts/vm-runner.sh 900" cargo test ...
#
# The first argument is vm-run's timeout in seconds; the rest is the test
# binary and its arguments. The VM's kernel console (errors only: hung
# tasks after 30 s, RCU stalls, oopses) goes to a file; when the binary
# fails it is printed. 20 s before the timeout a watchdog in the VM dumps
# every task's state and stack there (ps, sysrq t). When the VM stops making
# progress (vm-run's timeout, exit 124; seen once in CI, under TCG, with no
# console kept), the binary runs once more in a fresh VM: two timeouts in
# a row fail the lane. Env: VM_RUN (default ../shared/vm/vm-run).
set -uo pipefail
here=$(cd "$(dirname "$(realpath "$0")")" && pwd)
vm_run=${VM_RUN:-$here/../../shared/vm/vm-run}
timeout=$1
shift
console=$(mktemp "${TMPDIR:-/tmp}/corral-vm-console.XXXXXX")
trap 'rm -f "$console"' EXIT
export VM_RUN_APPEND="${VM_RUN_APPEND:-} sysctl.kernel.hung_task_timeout_secs=30"
for attempt in 1 2; do
  # -v copies the console to stderr: into the file, with vm-run's own
  # messages. The tests' stdout (libtest's report) passes through.
  "$vm_run" -q -v --timeout "$timeout" -- sh -c '
    (sleep "$1"; echo "vm-runner: still running; every task:" >&2
     ps -eo pid,ppid,stat,wchan:30,etime,args >&2
     echo t >/proc/sysrq-trigger; dmesg >&2) &
    shift; exec "$@"' sh "$((timeout > 40 ? timeout - 20 : timeout))" "$@" 2>"$console"
  rc=$?
  if [ "$rc" = 0 ]; then
    exit 0
  fi
  echo "vm-runner: $1 exited $rc in the VM (attempt $attempt); the VM's console and stderr:" >&2
  cat "$console" >&2
  if [ "$rc" != 124 ] || [ "$attempt" = 2 ]; then
    exit "$rc"
  fi
  echo "vm-runner: the VM made no progress for $timeout s; running $1 once more" >&2
done
