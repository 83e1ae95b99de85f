#!/usr/bin/env bash
# The README's main command: a local parameter server and 2 workers train the MLP on the bundled MNIST
# in async mode, on 127.0.0.1. Installs what is missing, builds in release mode, runs one session.
# Extra arguments go to ps-server (for example: --mode sync, --epochs 3, --model cnn).
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/scripts/install-deps.sh
# The toolchain's usual place on these machines, in case the shell has not put it on PATH.
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

echo "Building ps-server and ps-worker (release) ..."
swift build -c release --product ps-server 2>&1 | tail -n 1
swift build -c release --product ps-worker 2>&1 | tail -n 1
bin="$(swift build -c release --show-bin-path)"

port="${DOWNPOUR_PORT:-8888}"
workers="${DOWNPOUR_WORKERS:-2}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/downpour-demo.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

for i in $(seq 1 "$workers"); do
    "$bin/ps-worker" 127.0.0.1 "$port" 1 --once --name "demo-worker-$i" >"$logs/worker-$i.log" 2>&1 &
    pids+=($!)
done
echo "Started $workers workers (logs in $logs); starting the server on 127.0.0.1:$port"
"$bin/ps-server" --port "$port" --workers "$workers" --mode async "$@"
for pid in "${pids[@]}"; do wait "$pid" || true; done
pids=()
