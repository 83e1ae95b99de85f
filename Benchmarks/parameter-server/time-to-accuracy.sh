#!/usr/bin/env bash
# Time to a test accuracy, and samples/s, for ps-server with 1, 2 and 4 workers in each mode, against
# ps-train, side by side in one run on this machine. Both evaluate at epoch ends and every EVAL_INTERVAL
# seconds of training (--eval-interval, on one time axis whatever an update's size), so "time to" is
# the training time at the first evaluation at or above the target (seconds_to_target= of the summary
# line); "epoch" is the first epoch whose end-of-epoch evaluation reached it.
#
#   Benchmarks/parameter-server/time-to-accuracy.sh [TARGET_PERCENT] [EPOCHS] [extra ps-server flags...]
#
# Prints a Markdown table. Environment: MODES (default "async sync ssp"), WORKER_COUNTS ("1 2 4"),
# EVAL_INTERVAL (seconds, default 0.25).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${1:-97.5}"
epochs="${2:-5}"
shift $(( $# > 2 ? 2 : $# ))
modes="${MODES:-async sync ssp}"
interval="${EVAL_INTERVAL:-0.25}"
counts="${WORKER_COUNTS:-1 2 4}"
port="${PORT:-18888}"

for product in ps-server ps-worker ps-train; do
    swift build -c release --product "$product" >/dev/null
done
bin="$(swift build -c release --show-bin-path)"
logs="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# first_reaching FILE: "seconds epoch" of the first epoch line at or above the target, or "- -".
first_reaching() {
    awk -v target="$target" '
        /^epoch [0-9]+\/[0-9]+/ {
            acc = ""; t = ""
            for (i = 1; i <= NF; i++) {
                if ($i ~ /%,?$/ && ($(i-1) == "accuracy" || $(i-1) == "test_acc")) { acc = $i; gsub(/[%,]/, "", acc) }
                if ($(i-1) == "elapsed") { t = $i; gsub(/[s,]/, "", t) }
            }
            split($2, e, "/")
            if (acc != "" && acc + 0 >= target + 0) { print t, e[1]; found = 1; exit }
        }
        END { if (!found) print "-", "-" }' "$1"
}
field() { tail -n 1 "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

fraction="$(awk -v t="$target" 'BEGIN { print t / 100 }')"
timing=(--target-accuracy "$fraction" --eval-interval "$interval")
echo "| run | time to ${target}% | epoch | samples/s | final accuracy | staleness mean | bytes per sample |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
"$bin/ps-train" --epochs "$epochs" "${timing[@]}" > "$logs/train.log" 2>&1
read -r _ epoch < <(first_reaching "$logs/train.log")
echo "| ps-train (1 process) | $(field "$logs/train.log" seconds_to_target) s | ${epoch} | $(field "$logs/train.log" samples_per_second) | $(field "$logs/train.log" test_accuracy) | - | - |"

for mode in $modes; do
    for n in $counts; do
        pids=()
        for i in $(seq 1 "$n"); do
            "$bin/ps-worker" 127.0.0.1 "$port" 0.2 --once --name "bench-$i" > "$logs/worker-$mode-$n-$i.log" 2>&1 &
            pids+=($!)
        done
        log="$logs/server-$mode-$n.log"
        "$bin/ps-server" --port "$port" --mode "$mode" --workers "$n" --epochs "$epochs" "${timing[@]}" "$@" > "$log" 2>&1
        for p in "${pids[@]}"; do wait "$p" || true; done
        read -r _ epoch < <(first_reaching "$log")
        echo "| $mode, $n worker(s) | $(field "$log" seconds_to_target) s | ${epoch} | $(field "$log" samples_per_second) | $(field "$log" test_accuracy) | $(field "$log" staleness_mean) | $(field "$log" bytes_per_sample) |"
    done
done
echo
echo "logs: $logs"
