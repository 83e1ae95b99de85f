#!/usr/bin/env bash
# Builds the three echo servers (Reactor via ps-bench, plain C libuv, SwiftNIO) and the ps-bench client,
# runs every benchmark case against each server, side by side, and prints a table of medians and ratios.
#
# The server is pinned to one core and the client to another (taskset). Settings, by environment:
#   RUNS=5 SECONDS_PER_RUN=5 WARMUP=1 SERVER_CPU=0 CLIENT_CPU=1 SKIP_BUILD=1 SERVERS="reactor c nio"
#   CASES_MATCHING=pipelined (run only the cases whose name contains this)
#   CLIENT=c: drive the pipelined cases with the plain C libuv load client (c/echo_client.c) instead of
#   `ps-bench echo`, so that no Reactor code is on the client side (ping-pong cases still use ps-bench)
# Raw client output goes to Benchmarks/out/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/Benchmarks/out"
RUNS=${RUNS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
WARMUP=${WARMUP:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVERS=${SERVERS:-"reactor c nio"}
mkdir -p "$OUT"

PS_BENCH="$ROOT/.build/release/ps-bench"
C_SERVER="$OUT/c-echo-server"
C_CLIENT="$OUT/c-echo-client"
NIO_SCRATCH="$ROOT/Benchmarks/echo/nio/.build"
NIO_SERVER="$NIO_SCRATCH/release/nio-echo-server"

if [[ -z "${SKIP_BUILD:-}" ]]; then
    echo "== building" >&2
    gcc -O2 -Wall -o "$C_SERVER" "$ROOT/Benchmarks/echo/c/echo_server.c" -luv
    gcc -O2 -Wall -o "$C_CLIENT" "$ROOT/Benchmarks/echo/c/echo_client.c" -luv
    swift build -c release --package-path "$ROOT/Benchmarks/echo/nio" --scratch-path "$NIO_SCRATCH" >&2
    swift build -c release --package-path "$ROOT" --product ps-bench >&2
fi

declare -A PORT=([reactor]=7101 [c]=7102 [nio]=7103)
declare -A PIDS=()

start_server() {
    local name=$1 port=${PORT[$1]} log="$OUT/server-$1.log"
    case $name in
        reactor) taskset -c "$SERVER_CPU" "$PS_BENCH" echo-server --host 127.0.0.1 --port "$port" >"$log" 2>&1 & ;;
        c) taskset -c "$SERVER_CPU" "$C_SERVER" 127.0.0.1 "$port" >"$log" 2>&1 & ;;
        nio) taskset -c "$SERVER_CPU" "$NIO_SERVER" 127.0.0.1 "$port" >"$log" 2>&1 & ;;
    esac
    PIDS[$name]=$!
    for _ in $(seq 100); do
        grep -q "listening" "$log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server $name did not start:" >&2
    cat "$log" >&2
    return 1
}

stop_servers() {
    for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
    for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
    PIDS=()
}
trap stop_servers EXIT

for name in $SERVERS; do start_server "$name"; done

# name mode connections size window
CASES=(
    "pingpong-c1-64B pingpong 1 64 1"
    "pingpong-c64-64B pingpong 64 64 1"
    "pipelined-c1-64B-w128 pipelined 1 64 128"
    "pipelined-c4-400KiB-w4 pipelined 4 409600 4"
    "pipelined-c4-1MiB-w4 pipelined 4 1048576 4"
)

# Server CPU time (user + system, in clock ticks) so far, from /proc.
TICKS_PER_SECOND=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now() { date +%s.%N; }

RESULTS="$OUT/results.txt"
: >"$RESULTS"
for run in $(seq "$RUNS"); do
    for entry in "${CASES[@]}"; do
        read -r label mode connections size window <<<"$entry"
        [[ "$label" == *"${CASES_MATCHING:-}"* ]] || continue
        for name in $SERVERS; do
            ticks_before=$(cpu_ticks "${PIDS[$name]}")
            started=$(now)
            if [[ "${CLIENT:-}" == c && "$mode" == pipelined ]]; then
                line=$(taskset -c "$CLIENT_CPU" "$C_CLIENT" 127.0.0.1 "${PORT[$name]}" "$connections" "$size" "$window" \
                    "$SECONDS_PER_RUN" "$WARMUP" | tee -a "$OUT/client.log" | tail -1)
            else
                line=$(taskset -c "$CLIENT_CPU" "$PS_BENCH" echo --host 127.0.0.1 --port "${PORT[$name]}" \
                    --connections "$connections" --size "$size" --mode "$mode" --window "$window" \
                    --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" | tee -a "$OUT/client.log" | tail -1)
            fi
            # The share of a core the server got while the client ran: on a busy machine the rate
            # divided by it (frames per server CPU-second) is steadier than the rate itself.
            utilisation=$(awk -v t0="$ticks_before" -v t1="$(cpu_ticks "${PIDS[$name]}")" -v hz="$TICKS_PER_SECOND" \
                -v w0="$started" -v w1="$(now)" 'BEGIN { printf "%.3f", (t1 - t0) / hz / (w1 - w0) }')
            echo "server=$name case=$label run=$run server_cpu=$utilisation $line load=$(cut -d' ' -f1 /proc/loadavg)" \
                | tee -a "$RESULTS" >&2
        done
    done
done

stop_servers

# Medians per case and server, and the Reactor's ratios to the others.
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in open(sys.argv[1])]
for r in rows:
    cpu = float(r.get("server_cpu", "0"))
    if cpu > 0: r["per_cpu_s"] = str(float(r["frames_per_s"]) / cpu)
cases, servers = [], []
for r in rows:
    if r["case"] not in cases: cases.append(r["case"])
    if r["server"] not in servers: servers.append(r["server"])
def median(case, server, key):
    values = [float(r[key]) for r in rows if r["case"] == case and r["server"] == server and key in r]
    return statistics.median(values) if values else float("nan")
loads = sorted(float(r["load"]) for r in rows if "load" in r)
print(f"runs per cell: {len([r for r in rows if r['case'] == cases[0] and r['server'] == servers[0]])} (medians); "
      f"1-minute load average during the runs: {loads[0]:.1f} to {loads[-1]:.1f}" if loads else "")
header = "| case | metric | " + " | ".join(servers) + " | " + " | ".join(f"reactor/{s}" for s in servers if s != "reactor") + " |"
print(header)
print("|" + "---|" * (header.count("|") - 1))
for case in cases:
    metrics = [("frames_per_s", "round trips/s"), ("per_cpu_s", "round trips per server CPU-s"), ("p50_us", "p50 µs"), ("p99_us", "p99 µs")] \
        if case.startswith("pingpong") else [("frames_per_s", "frames/s"), ("mb_per_s", "MB/s"), ("per_cpu_s", "frames per server CPU-s")]
    for key, label in metrics:
        values = {s: median(case, s, key) for s in servers}
        cells = " | ".join(f"{values[s]:,.1f}" if values[s] < 1000 else f"{values[s]:,.0f}" for s in servers)
        ratios = " | ".join(f"{values['reactor'] / values[s]:.2f}" if "reactor" in values and values[s] else "-" for s in servers if s != "reactor")
        print(f"| {case} | {label} | {cells} | {ratios} |")
PY
