#!/usr/bin/env bash
# The main job in one command: build corral, make a busybox rootfs from
# Debian's busybox-static, and run a container in it.
#   sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
scripts/deps.sh
cargo build --release --quiet
corral=$PWD/target/x86_64-unknown-linux-gnu/release/corral
demo=$(mktemp -d /tmp/corral-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
bench/make-rootfs.sh "$demo/bundle/rootfs" >/dev/null
cd "$demo/bundle"
"$corral" spec
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo \"hello from $(hostname), I am pid $$ in my own pid namespace\"; exit 42"]
json.dump(c, open("config.json", "w"), indent=2)
PY
set +e
"$corral" --root "$demo/state" run demo
status=$?
set -e
echo "container exited with status $status (42 expected)"
[ "$status" -eq 42 ]
