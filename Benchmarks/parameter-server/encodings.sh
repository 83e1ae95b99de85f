#!/usr/bin/env bash
# Bytes per sample and accuracy of the exchange settings, side by side in one run: each configuration
# is an async (or MODE) session of WORKERS ps-workers on this machine over loopback, release builds,
# with ps-train alone first as the yardstick. Loopback has no bandwidth limit: this measures what
# crosses the wire and what it costs in accuracy; Benchmarks/wan/run.sh measures time over shaped links.
#
#   Benchmarks/parameter-server/encodings.sh [extra ps-server flags...]
#
# Environment: MODEL (mlp; ps-train and every session), TRAIN_EVAL_EVERY (ps-train's --eval-every, 100), WORKERS (4), MODE (async), EPOCHS (5), CONFIGS (a ;-separated list of
# "label=SERVER_FLAGS" or "label=SERVER_FLAGS|WORKER_FLAGS"; default below), SEEDS (a space-separated
# list of --seed values: every configuration runs once per seed, the configurations alternating within
# each seed, after ps-train with that seed; default: the server's own seed, once).
set -euo pipefail
cd "$(dirname "$0")/../.."
workers="${WORKERS:-4}"
mode="${MODE:-async}"
epochs="${EPOCHS:-5}"
model="${MODEL:-mlp}"
# ps-train evaluates every this many batches (outside its training time), for a time to 97.5% as fine
# as the sessions' with --eval-every 12 (12 units of 512 samples: 8 batches of ps-train's 64).
train_eval_every="${TRAIN_EVAL_EVERY:-100}"
port="${PORT:-18890}"
default_configs="fp32 H=1=--uncompressed;fp32 H=8=--batch-size 64 --local-steps 8 --push-encoding fp32 --pull-encoding fp32 --pull-delta-encoding none;q8/q8 H=8=--batch-size 64 --local-steps 8 --push-encoding q8 --pull-encoding q8 --pull-delta-encoding none;sign/q8 H=8, whole weights=--batch-size 64 --local-steps 8 --pull-delta-encoding none;sign/q8 H=8, sign:256 deltas=--batch-size 64 --local-steps 8;sign/q8 H=8, sign(4096) deltas=--batch-size 64 --local-steps 8 --pull-delta-encoding sign;sign/q8 H=8, topk 1% deltas=--batch-size 64 --local-steps 8 --pull-delta-encoding topk:0.01;sign/q8 H=8, q8 deltas=--batch-size 64 --local-steps 8 --pull-delta-encoding q8;sign/q8 H=16, sign:256 deltas=--batch-size 64 --local-steps 16;topk 1%/q8 H=16, topk 2% deltas=--batch-size 64 --local-steps 16 --push-encoding topk:0.01;sign/q8 H=32, sign:256 deltas=--batch-size 64 --local-steps 32;sign/q8 32 x 16, sign:256 deltas (default)="
configs="${CONFIGS:-$default_configs}"
seeds="${SEEDS:-}"

source Benchmarks/parameter-server/common.sh
release_build ps-server ps-worker ps-train

"$bin/ps-train" --model "$model" --epochs "$epochs" --eval-every "$train_eval_every" >"$logs/ps-train.log" 2>&1
echo "ps-train alone: test_accuracy $(field "$logs/ps-train.log" test_accuracy), $(field "$logs/ps-train.log" samples_per_second) samples/s"
echo
echo "| configuration | seed | test accuracy | bytes per sample | vs the first | samples/s | seconds | staleness mean | time to 97.5% |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
baseline=""
IFS=';' read -ra entries <<<"$configs"
for seed in ${seeds:-default}; do
    if [ "$seed" != default ]; then
        # The yardstick with the same seed: its accuracy moves by 0.1 to 0.2 point from seed to seed too.
        "$bin/ps-train" --model "$model" --epochs "$epochs" --seed "$seed" --eval-every "$train_eval_every" >"$logs/ps-train-$seed.log" 2>&1
        echo "| ps-train alone | $seed | $(field "$logs/ps-train-$seed.log" test_accuracy) | - | - | $(field "$logs/ps-train-$seed.log" samples_per_second) | $(field "$logs/ps-train-$seed.log" seconds) | - | $(field "$logs/ps-train-$seed.log" seconds_to_target) |"
    fi
    for entry in "${entries[@]}"; do
        # The label may contain "=" (H=1); the flags follow the last "=", the workers' after a "|".
        label="${entry%=*}"; flags="${entry##*=}"
        server_flags="${flags%%|*}"; worker_flags=""
        [[ "$flags" == *"|"* ]] && worker_flags="${flags#*|}"
        seed_flags=""; [ "$seed" != default ] && seed_flags="--seed $seed"
        name="$(echo "$label-$seed" | tr -c 'a-zA-Z0-9' '_')"
        pids=()
        for i in $(seq 1 "$workers"); do
            # shellcheck disable=SC2086
            "$bin/ps-worker" 127.0.0.1 "$port" 0.2 --once --name "w$i" $worker_flags >"$logs/$name-w$i.log" 2>&1 &
            pids+=($!)
        done
        # shellcheck disable=SC2086
        timeout 900 "$bin/ps-server" --port "$port" --workers "$workers" --mode "$mode" --epochs "$epochs" --model "$model" $seed_flags $server_flags "$@" \
            >"$logs/$name-server.log" 2>&1
        cleanup; wait 2>/dev/null || true
        server="$logs/$name-server.log"
        bps="$(field "$server" bytes_per_sample)"
        [ -z "$baseline" ] && baseline="$bps"
        echo "| $label | $seed | $(field "$server" test_accuracy) | $bps | $(awk -v a="$bps" -v b="$baseline" 'BEGIN { printf "%.4fx", a / b }') | $(field "$server" samples_per_second) | $(field "$server" seconds) | $(field "$server" staleness_mean) | $(field "$server" seconds_to_target) |"
    done
done
echo
echo "(logs in $logs)"
