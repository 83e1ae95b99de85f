#!/usr/bin/env bash
# Accuracy at equal epochs of sharded sessions beside the unsharded one, in one run: for each seed,
# an async (or MODE) session of WORKERS ps-workers with the parameters in the server (0 shards) and in
# each count of ps-shard processes in SHARDS, on this machine over loopback, release builds. Loopback
# has no bandwidth limit: this measures what sharding costs in accuracy (the slices' own encodings and
# weight chains, an extra round trip before an update is applied); Benchmarks/wan/run.sh measures time
# over shaped links.
#
#   Benchmarks/parameter-server/shards.sh [extra ps-server flags...]
#
# Environment: WORKERS (4), MODE (async), EPOCHS (5), SHARDS ("0 2 4"), SEEDS ("1 2").
set -euo pipefail
cd "$(dirname "$0")/../.."
workers="${WORKERS:-4}"
mode="${MODE:-async}"
epochs="${EPOCHS:-5}"
shard_counts="${SHARDS:-0 2 4}"
seeds="${SEEDS:-1 2}"
port="${PORT:-18895}"

source Benchmarks/parameter-server/common.sh
release_build ps-server ps-worker ps-shard

echo "| seed | shards | test accuracy | vs 0 shards | seconds | staleness mean | server bytes/sample | shard bytes/sample |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for seed in $seeds; do
    reference=""
    for shards in $shard_counts; do
        name="seed$seed-shards$shards"
        pids=()
        for i in $(seq 1 "$shards"); do
            "$bin/ps-shard" 127.0.0.1 "$port" 0.2 --once --name "shard-$i" >"$logs/$name-shard$i.log" 2>&1 &
            pids+=($!)
        done
        for i in $(seq 1 "$workers"); do
            "$bin/ps-worker" 127.0.0.1 "$port" 0.2 --once --name "w$i" >"$logs/$name-w$i.log" 2>&1 &
            pids+=($!)
        done
        # shellcheck disable=SC2086
        timeout 900 "$bin/ps-server" --port "$port" --workers "$workers" --mode "$mode" --epochs "$epochs" --seed "$seed" \
            --shards "$shards" "$@" >"$logs/$name-server.log" 2>&1
        cleanup; wait 2>/dev/null || true
        server="$logs/$name-server.log"
        accuracy="$(field "$server" test_accuracy)"
        [ -z "$reference" ] && reference="$accuracy"
        echo "| $seed | $shards | $accuracy | $(awk -v a="$accuracy" -v b="$reference" 'BEGIN { printf "%+.2f points", 100 * (a - b) }') |" \
            "$(field "$server" seconds) | $(field "$server" staleness_mean) | $(field "$server" bytes_per_sample) |" \
            "$(field "$server" shard_bytes_per_sample) |"
    done
done
echo
echo "(logs in $logs)"
