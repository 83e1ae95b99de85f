#!/usr/bin/env bash
# A worker that heartbeats but never pushes (issue #11's target): how much longer does a session take
# with one beside the healthy workers than without it? Release builds, side by side, alternating runs,
# the median of each.
#
#   Benchmarks/parameter-server/stuck-worker.sh [RUNS] [extra ps-server flags...]
#
# Each run is an async session (ps-server's defaults: MLP 784-512-10, 5 epochs) with 2 healthy
# ps-workers; the "stuck" runs add a third worker started with --inject hang-after=0s, which takes its
# units and then never delivers one, while its heartbeats keep it connected. The server waits for all
# of them before training, so the stuck worker holds units from the start.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
shift $(( $# > 0 ? 1 : 0 ))
port="${PORT:-18889}"

source Benchmarks/parameter-server/common.sh
release_build ps-server ps-worker

# session NAME STUCK: one session; prints "seconds accuracy expired backups".
session() {
    local name="$1" stuck="$2" workers=2
    shift 2
    [ "$stuck" = 1 ] && workers=3
    pids=()
    for i in 1 2; do
        "$bin/ps-worker" 127.0.0.1 "$port" 0.2 --once --name "healthy-$i" >"$logs/$name-w$i.log" 2>&1 &
        pids+=($!)
    done
    if [ "$stuck" = 1 ]; then
        "$bin/ps-worker" 127.0.0.1 "$port" 0.2 --once --name stuck --inject hang-after=0s >"$logs/$name-stuck.log" 2>&1 &
        pids+=($!)
    fi
    "$bin/ps-server" --port "$port" --workers "$workers" "$@" >"$logs/$name-server.log" 2>&1
    cleanup
    wait 2>/dev/null || true
    echo "$(field "$logs/$name-server.log" seconds) $(field "$logs/$name-server.log" test_accuracy) $(field "$logs/$name-server.log" expired) $(field "$logs/$name-server.log" backups)"
}

clean=(); stuck=()
echo "| run | clean: seconds, accuracy | with a stuck worker: seconds, accuracy, leases expired, backups |"
echo "| --- | --- | --- |"
for run in $(seq 1 "$runs"); do
    read -r cs ca _ _ < <(session "clean-$run" 0 "$@")
    read -r ss sa se sb < <(session "stuck-$run" 1 "$@")
    clean+=("$cs"); stuck+=("$ss")
    echo "| $run | $cs s, $ca | $ss s, $sa, $se, $sb |"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
mc="$(median "${clean[@]}")"; ms="$(median "${stuck[@]}")"
echo
echo "median: clean $mc s, with a stuck worker $ms s: ratio $(awk -v a="$ms" -v b="$mc" 'BEGIN { printf "%.3f", a / b }') (logs in $logs)"
