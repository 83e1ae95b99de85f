#!/usr/bin/env bash
# WAN: the parameter server over shaped links, on this one machine, against ps-train in the same run.
#
# Builds a small network of Linux network namespaces (one per host, plus a "switch" namespace holding a
# bridge; each host joins the bridge through a veth pair), shapes the server's link in both directions
# with tc tbf, and runs one ps-server session per (link rate, configuration, shard count) with N
# ps-workers, each in its own namespace; with --shards, sharded sessions keep their parameters in M
# ps-shard processes, each in its own namespace behind its own link shaped like the server's. ps-train
# runs first, in the root namespace, as the yardstick. Prints Markdown tables; the raw logs stay in a
# temporary directory printed at the end.
#
#   sudo Benchmarks/wan/run.sh [options]
#   sudo Benchmarks/wan/run.sh --links 1gbit,100mbit --config 'fp32|--uncompressed|' \
#       --config 'fp16|--uncompressed --push-encoding fp16 --pull-encoding fp16|'
#   sudo Benchmarks/wan/run.sh --epochs 1 --workers 2 --links 100mbit --train-samples 12000   # quick
#   sudo Benchmarks/wan/run.sh --links 100mbit --shards 0,1,2,4          # the server alone, then 1, 2, 4 shards
#
# Only addresses inside the namespaces it creates are used (10.250.0.0/24 by default); the root
# namespace's interfaces and routes are not touched, and nothing leaves the machine. Every process it
# starts is ended by PID, and every namespace it created is deleted, on exit, on failure and on Ctrl-C.
# Needs root, ip and tc (iproute2), timeout (coreutils), python3, and swift unless --no-build.
# There is no added delay: this kernel has no netem, so the links have bandwidth but no latency.
# See Benchmarks/wan/README.md.
set -euo pipefail

# ---------------------------------------------------------------------------------------------------
# Configuration. Everything here can also be set on the command line (see --help).
#
# A configuration is "LABEL|EXTRA PS-SERVER FLAGS|EXTRA PS-WORKER FLAGS" (flags split on whitespace).
# Add a line here, or pass --config (repeatable; replaces this list), to compare new encodings:
#   "fp16|--uncompressed --push-encoding fp16 --pull-encoding fp16|"
#   "topk-1%-H32|--push-encoding topk:0.01 --local-steps 32 --eval-every 6|"
# (an update is one unit of batch x local-steps samples, so --eval-every in a configuration keeps its
# evaluations as frequent in samples as the others'; every --flag is checked against --help first)
# ps-server's own defaults changed with the encodings (local steps and compressed pushes and pulls);
# --uncompressed restores the whole model in fp32 both ways on every unit, hence "fp32" below. With a
# ps-server older than --uncompressed, pass --config 'fp32||'.
CONFIGS=(
    "fp32|--uncompressed|"
    "default||"
)
LINKS="1gbit"            # server link rates, comma- or space-separated, in tc's units; "none" = unshaped
WORKERS=4
MODEL=mlp
EPOCHS=5
TARGET=97.5              # test accuracy, percent, for "time to"
EVAL_EVERY=100           # ps-server --eval-every (updates), if its --help lists it and the configuration sets none
TRAIN_EVAL_EVERY=100     # ps-train --eval-every (batches of 64), if its --help lists it
EVAL_INTERVAL=""         # seconds: --eval-interval for ps-server and ps-train alike, if their --help lists it (unset: none)
SESSION_TIMEOUT=1200     # seconds allowed for one ps-server session (and for ps-train)
SERVER_FLAGS=""          # extra ps-server flags for every configuration
WORKER_FLAGS=""          # extra ps-worker flags for every configuration
TRAIN_FLAGS=""           # extra ps-train flags
TRAIN_SAMPLES=""         # --train-samples N for ps-server and --train-limit N for ps-train
SHAPE_WORKERS=0          # 1: shape every worker's link at the same rate as the server's
SHARDS="0"               # shard counts, comma-separated: 0 = the server holds the parameters; M = ps-server --shards M
MAX_SHARDS=8             # shards take addresses .2 to .9 (the server is .1, workers .11 and up)
TBF_BURST_MS=10          # tbf bucket: this many milliseconds at the rate, at least TBF_MIN_BURST bytes
TBF_MIN_BURST=131072     #   (>= the 64 KiB GSO packets veth hands to the qdisc, so none is split)
TBF_LATENCY=50ms         # tbf queue: how long a packet may wait for tokens before being dropped
WORKER_GRACE=10          # seconds the workers get to leave after ps-server exits, before they are ended
CHECK_SECONDS=4          # link check: seconds of bulk TCP each way, per link rate (rate read after the first); 0 skips it
SUBNET=10.250.0          # /24 used inside the namespaces only
PORT=18900               # first port; each session takes the next one
PREFIX_BASE=dp-wan       # namespaces are "$PREFIX_BASE-$$-srv", "-w1", ..., "-sw"
BUILD=1
CHECK_ONLY=0             # 1: build the network, check the links, and stop (no training)
# ---------------------------------------------------------------------------------------------------

usage() {
    cat <<EOF
usage: $0 [options]

  --links RATES          server link rates, comma-separated, tc units (default: $LINKS); "none" = unshaped
  --config 'L|S|W'       a configuration: label, extra ps-server flags, extra ps-worker flags
                         (repeatable; replaces the defaults: ${CONFIGS[*]})
  --workers N            workers per session (default: $WORKERS)
  --model M              mlp or cnn, for ps-server and ps-train (default: $MODEL)
  --epochs N             for ps-server and ps-train (default: $EPOCHS)
  --target PERCENT       test accuracy for "time to" (default: $TARGET)
  --eval-every N         ps-server --eval-every N updates, when its --help lists it (default: $EVAL_EVERY;
                         a configuration's own --eval-every wins)
  --train-eval-every N   ps-train --eval-every N batches, when its --help lists it (default: $TRAIN_EVAL_EVERY)
  --eval-interval S      also --eval-interval S (seconds of training) for ps-server and ps-train, when their
                         --help lists it: both evaluated on one time axis whatever an update's size
  --train-samples N      ps-server --train-samples N and ps-train --train-limit N
  --server-flags 'F'     extra ps-server flags for every configuration
  --worker-flags 'F'     extra ps-worker flags for every configuration
  --train-flags 'F'      extra ps-train flags
  --shape-workers        shape every worker's link too, at the same rate
  --shards LIST          shard counts to run each configuration with, comma-separated (default: $SHARDS;
                         0 = unsharded): M runs ps-server --shards M and M ps-shard processes, each in its
                         own namespace behind a link shaped like the server's (1 to $MAX_SHARDS)
  --burst-ms MS          tbf burst in milliseconds at the rate (default: $TBF_BURST_MS; at least $TBF_MIN_BURST bytes)
  --tbf-latency T        tbf latency (default: $TBF_LATENCY)
  --check-seconds S      link check per rate and direction (default: $CHECK_SECONDS; 0 skips it)
  --timeout S            seconds allowed per session and for ps-train (default: $SESSION_TIMEOUT)
  --port P               first port (default: $PORT)
  --no-build             use the existing release binaries in .build/release
  --check-only           build the network and run the link checks only (no training)
EOF
}

die() { echo "wan: $*" >&2; exit 2; }
while (($#)); do
    case "$1" in
        --links) LINKS="$2"; shift 2 ;;
        --config) if [[ "${config_given:-0}" == 0 ]]; then CONFIGS=(); config_given=1; fi
                  CONFIGS+=("$2"); shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --model) MODEL="$2"; shift 2 ;;
        --epochs) EPOCHS="$2"; shift 2 ;;
        --target) TARGET="$2"; shift 2 ;;
        --eval-every) EVAL_EVERY="$2"; shift 2 ;;
        --train-eval-every) TRAIN_EVAL_EVERY="$2"; shift 2 ;;
        --eval-interval) EVAL_INTERVAL="$2"; shift 2 ;;
        --train-samples) TRAIN_SAMPLES="$2"; shift 2 ;;
        --server-flags) SERVER_FLAGS="$2"; shift 2 ;;
        --worker-flags) WORKER_FLAGS="$2"; shift 2 ;;
        --train-flags) TRAIN_FLAGS="$2"; shift 2 ;;
        --shape-workers) SHAPE_WORKERS=1; shift ;;
        --shards) SHARDS="$2"; shift 2 ;;
        --burst-ms) TBF_BURST_MS="$2"; shift 2 ;;
        --tbf-latency) TBF_LATENCY="$2"; shift 2 ;;
        --check-seconds) CHECK_SECONDS="$2"; shift 2 ;;
        --timeout) SESSION_TIMEOUT="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --check-only) CHECK_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
[[ "$WORKERS" =~ ^[1-9][0-9]*$ && "$WORKERS" -le 200 ]] || die "--workers takes 1 to 200"
[[ "$EPOCHS" =~ ^[1-9][0-9]*$ ]] || die "--epochs takes a positive integer"
[[ "$SESSION_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout takes a positive number of seconds"
[[ "$CHECK_SECONDS" =~ ^[0-9]+$ && ( "$CHECK_SECONDS" == 0 || "$CHECK_SECONDS" -ge 2 ) ]] \
    || die "--check-seconds takes 0 (no check) or a whole number of seconds, at least 2"
[[ "$PORT" =~ ^[1-9][0-9]*$ && "$PORT" -lt 60000 ]] || die "--port takes a port below 60000"
[[ -z "$TRAIN_SAMPLES" || "$TRAIN_SAMPLES" =~ ^[1-9][0-9]*$ ]] || die "--train-samples takes a positive integer"
((${#CONFIGS[@]})) || die "no configuration"
IFS=', ' read -ra shard_list <<< "$SHARDS"
((${#shard_list[@]})) || die "--shards takes a list of shard counts, e.g. 1,2,4"
SHARD_NAMESPACES=0       # shard namespaces to create: the largest count asked for
for m in "${shard_list[@]}"; do
    [[ "$m" =~ ^[0-9]+$ && "$m" -le "$MAX_SHARDS" ]] || die "--shards takes counts from 0 to $MAX_SHARDS, not '$m'"
    ((m > SHARD_NAMESPACES)) && SHARD_NAMESPACES=$m
done
for c in "${CONFIGS[@]}"; do
    [[ "$c" == *"|"*"|"* ]] || die "a configuration is 'LABEL|SERVER FLAGS|WORKER FLAGS', not '$c'"
    [[ "${c%%|*}" =~ ^[A-Za-z0-9._+%-]+$ ]] || die "configuration labels take letters, digits and ._+%- ('${c%%|*}')"
done
if [[ " $SERVER_FLAGS " == *" --train-samples "* ]]; then
    echo "wan: note: --server-flags has --train-samples; use --train-samples N so that ps-train trains on as many" >&2
fi

# ---------------------------------------------------------------------------------------------------
# Preconditions: root, the tools, and no namespaces left from an earlier run.
[[ "$(id -u)" == 0 ]] || die "needs root (it creates network namespaces and qdiscs); run it with sudo"
for tool in ip tc timeout python3; do
    command -v "$tool" >/dev/null || die "needs '$tool' on PATH (ip and tc: iproute2; timeout: coreutils)"
done
cd "$(dirname "$0")/../.."
here=Benchmarks/wan
existing="$(ip netns list | awk '{print $1}' | grep -E "^${PREFIX_BASE}-" || true)"
if [[ -n "$existing" ]]; then
    die "network namespaces named ${PREFIX_BASE}-* exist already (another run, or one that was killed with -9):
$existing
  delete them with: for n in $(echo $existing); do ip netns del \$n; done"
fi
IFS=', ' read -ra link_list <<< "$LINKS"
for link in "${link_list[@]}"; do
    [[ "$link" == none ]] || python3 "$here/wan.py" rate-bytes "$link" >/dev/null || die "bad link rate '$link'"
done

PREFIX="${PREFIX_BASE}-$$"
SW="$PREFIX-sw"
SRV="$PREFIX-srv"
SRV_ADDR="$SUBNET.1"
worker_ns() { echo "$PREFIX-w$1"; }
worker_addr() { echo "$SUBNET.$((10 + $1))"; }
shard_ns() { echo "$PREFIX-s$1"; }
shard_addr() { echo "$SUBNET.$((1 + $1))"; }

# ---------------------------------------------------------------------------------------------------
# Cleanup: every process by PID, then every namespace; on exit, failure, Ctrl-C and SIGTERM.
PIDS=()
NAMESPACES=()
LOGS=""
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
# ours PID: whether PID is still a child of this script (a PID that has exited may be reused by
# another process, which must not get our signals).
ours() { [[ "$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')" == "$$" ]]; }
# live_pids: our children still running, then every process inside our namespaces (their children).
live_pids() {
    local p
    for p in "${PIDS[@]}"; do ours "$p" && echo "$p"; done
    namespace_pids
}
namespace_pids() {
    local ns
    for ns in "${NAMESPACES[@]}"; do ip netns pids "$ns" 2>/dev/null || true; done
}
cleanup() {
    local rc=$? p ns i left
    # A second Ctrl-C (or a SIGINT sent to the whole process group, as `timeout` forwards it) must not cut
    # the cleanup short and leave namespaces behind: ignore them until it is done.
    trap - EXIT
    trap '' INT TERM
    set +e
    # Our children (timeout, python), then anything still running inside our namespaces (their children).
    for p in $(live_pids); do kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < 150; i++)); do
        left="$(live_pids | tr '\n' ' ')"
        [[ -z "${left// /}" ]] && break
        sleep 0.1
    done
    if [[ -n "${left// /}" ]]; then
        echo "wan: cleanup: SIGKILL to $left(still running 15 s after SIGTERM)" >&2
        for p in $left; do kill -KILL "$p" 2>/dev/null; done
    fi
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for ((i = ${#NAMESPACES[@]} - 1; i >= 0; i--)); do
        ip netns del "${NAMESPACES[i]}" 2>/dev/null || echo "wan: cleanup: could not delete namespace ${NAMESPACES[i]}" >&2
    done
    ((${#NAMESPACES[@]})) && echo "wan: cleanup: ended our processes, deleted ${#NAMESPACES[@]} namespace(s) ($PREFIX-*)" >&2
    if ((rc != 0)) && [[ -n "$LOGS" ]]; then echo "wan: failed (status $rc); logs in $LOGS" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "wan: interrupted" >&2; exit 130' INT
trap 'echo "wan: terminated" >&2; exit 143' TERM

# start LOG CMD...: runs CMD in the background, output to LOG, and records its PID in $started.
start() {
    local log="$1"; shift
    "$@" > "$log" 2>&1 &
    started=$!
    PIDS+=("$started")
}
# reap PID: waits for PID (a trapped signal interrupts the wait) and sets $status.
reap() {
    status=0
    wait "$1" || status=$?
    forget_pid "$1"
}
say() { printf '[%4ds] %s\n' "$SECONDS" "$*" >&2; }

# ---------------------------------------------------------------------------------------------------
LOGS="$(mktemp -d /tmp/downpour-wan.XXXXXX)"
say "logs in $LOGS"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

if ((BUILD)); then
    command -v swift >/dev/null || die "needs swift on PATH (e.g. /opt/swift/usr/bin), or --no-build"
    for product in ps-server ps-worker ps-train $( ((SHARD_NAMESPACES)) && echo ps-shard ); do
        say "swift build -c release --product $product"
        swift build -c release --product "$product" > "$LOGS/build-$product.log" 2>&1 \
            || { tail -n 20 "$LOGS/build-$product.log" >&2; die "the release build of $product failed"; }
    done
fi
BIN="$PWD/.build/release"
for product in ps-server ps-worker ps-train $( ((SHARD_NAMESPACES)) && echo ps-shard ); do
    [[ -x "$BIN/$product" ]] || die "$BIN/$product is missing (build it, or drop --no-build)"
done
if ((SHARD_NAMESPACES)); then
    grep -q -- "--shards\b" <<< "$("$BIN/ps-server" --help 2>&1)" || die "$BIN/ps-server has no --shards (an older build?)"
fi

# Every flag of every configuration must be one ps-server or ps-worker knows, before anything starts.
server_help="$("$BIN/ps-server" --help 2>&1)"
worker_help="$("$BIN/ps-worker" --help 2>&1)"
for c in "${CONFIGS[@]}"; do
    IFS='|' read -r label config_server config_worker <<< "$c"
    for flag in $SERVER_FLAGS $config_server; do
        [[ "$flag" != --* ]] || grep -q -- "${flag%%=*}\b" <<< "$server_help" \
            || die "configuration '$label': ps-server --help does not list $flag"
    done
    for flag in $WORKER_FLAGS $config_worker; do
        [[ "$flag" != --* ]] || grep -q -- "${flag%%=*}\b" <<< "$worker_help" \
            || die "configuration '$label': ps-worker --help does not list $flag"
    done
done

# Finer time to accuracy and the target, where the binaries offer them (both arrived with the encodings).
train_help="$("$BIN/ps-train" --help 2>&1)"
has_flag() { grep -q -- "$1\b" <<< "$2"; }
target_fraction="$(python3 -c "import sys; print(float(sys.argv[1]) / 100)" "$TARGET")"
eval_flags=()
train_flags=()
has_flag --target-accuracy "$server_help" && eval_flags+=(--target-accuracy "$target_fraction")
has_flag --target-accuracy "$train_help" && train_flags+=(--target-accuracy "$target_fraction")
if has_flag --eval-every "$server_help"; then
    eval_note="ps-server evaluates every $EVAL_EVERY updates (--eval-every, unless the configuration sets its own) and at epoch ends"
else
    EVAL_EVERY=""
    eval_note="ps-server has no --eval-every: it evaluates at epoch ends only"
fi
if has_flag --eval-every "$train_help"; then
    train_flags+=(--eval-every "$TRAIN_EVAL_EVERY")
    eval_note+="; ps-train every $TRAIN_EVAL_EVERY batches and at epoch ends"
else
    eval_note+="; ps-train at epoch ends only"
fi
if [[ -n "$EVAL_INTERVAL" ]]; then
    has_flag --eval-interval "$server_help" || die "--eval-interval: this ps-server has no --eval-interval"
    has_flag --eval-interval "$train_help" || die "--eval-interval: this ps-train has no --eval-interval"
    eval_flags+=(--eval-interval "$EVAL_INTERVAL")
    train_flags+=(--eval-interval "$EVAL_INTERVAL")
    eval_note+="; both also every $EVAL_INTERVAL s of training (--eval-interval)"
fi
eval_note+=". \"Time to\" is the training time at the first evaluation at or above the target: seconds_to_target= of the summary line where the binary prints it, else the elapsed time on the first such evaluation line"
train_limit=()
server_limit=()
if [[ -n "$TRAIN_SAMPLES" ]]; then
    train_limit=(--train-limit "$TRAIN_SAMPLES")
    server_limit=(--train-samples "$TRAIN_SAMPLES")
fi

# ---------------------------------------------------------------------------------------------------
# Topology: a switch namespace with a bridge; the server and every worker join it through a veth pair
# created directly between the namespaces (nothing is created in the root namespace).
in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }
new_namespace() {
    ip netns add "$1"
    NAMESPACES+=("$1")
    ip -n "$1" link set lo up
    in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
}
# join_switch NS PORT_NAME ADDRESS: veth eth0 in NS, its peer PORT_NAME on the bridge.
join_switch() {
    ip -n "$1" link add eth0 type veth peer name "$2" netns "$SW"
    ip -n "$SW" link set "$2" master br0 up
    ip -n "$1" addr add "$3/24" dev eth0
    ip -n "$1" link set eth0 up
}
say "creating namespaces $PREFIX-{sw,srv,w1..w$WORKERS$( ((SHARD_NAMESPACES)) && echo ",s1..s$SHARD_NAMESPACES")}; server at $SRV_ADDR"
new_namespace "$SW"
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
new_namespace "$SRV"
join_switch "$SRV" v-srv "$SRV_ADDR"
for i in $(seq 1 "$WORKERS"); do
    new_namespace "$(worker_ns "$i")"
    join_switch "$(worker_ns "$i")" "v-w$i" "$(worker_addr "$i")"
done
for k in $(seq 1 "$SHARD_NAMESPACES"); do
    new_namespace "$(shard_ns "$k")"
    join_switch "$(shard_ns "$k")" "v-s$k" "$(shard_addr "$k")"
done

# shape NS DEV SWITCH_PORT RATE: tbf at the egress of both ends of one link, so both directions are
# shaped (the host's sending side and the switch's side towards the host).
tbf_args=()
shape() {
    local ns="$1" dev="$2" port="$3" rate="$4"
    if [[ "$rate" == none ]]; then
        tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
        tc -n "$SW" qdisc del dev "$port" root 2>/dev/null || true
        return
    fi
    local bytes burst
    bytes="$(python3 "$here/wan.py" rate-bytes "$rate")"
    burst=$(( bytes * TBF_BURST_MS / 1000 ))
    ((burst >= TBF_MIN_BURST)) || burst=$TBF_MIN_BURST
    tbf_args=(tbf rate "$rate" burst "$burst" latency "$TBF_LATENCY")
    tc -n "$ns" qdisc replace dev "$dev" root "${tbf_args[@]}"
    tc -n "$SW" qdisc replace dev "$port" root "${tbf_args[@]}"
}
counter() { in_ns "$SRV" cat "/sys/class/net/eth0/statistics/$1"; }
# link_bytes NS: rx+tx bytes of the veth eth0 in NS (a host's whole link).
link_bytes() { echo $(( $(in_ns "$1" cat /sys/class/net/eth0/statistics/rx_bytes) + $(in_ns "$1" cat /sys/class/net/eth0/statistics/tx_bytes) )); }
# qdisc_bytes NS DEV: bytes the root qdisc sent ("-" without one). Unlike the veth's counters, which see
# GSO super-packets (up to 64 KiB, headers once), a qdisc counts each packet's segments with their own
# headers, as they would cross a real link of 1500-byte frames.
qdisc_bytes() {
    tc -n "$1" -s qdisc show dev "$2" | awk '/^qdisc tbf/ { q = 1 } q && /Sent/ { print $2; found = 1; exit }
                                            END { if (!found) print "-" }'
}
# link_frames NS PORT: bytes both tbf qdiscs of a host's link sent (host -> switch, switch -> host).
link_frames() {
    local a b
    a="$(qdisc_bytes "$1" eth0)"; b="$(qdisc_bytes "$SW" "$2")"
    if [[ "$a" == - || "$b" == - ]]; then echo -; else echo $((a + b)); fi
}
server_frames() { link_frames "$SRV" v-srv; }
# shard_links M: "veth_bytes frame_bytes" of shards 1..M's links, one line each ("-" for frames when unshaped).
shard_links() {
    local k
    for k in $(seq 1 "$1"); do echo "$(link_bytes "$(shard_ns "$k")") $(link_frames "$(shard_ns "$k")" "v-s$k")"; done
}

# link_check RATE: bulk TCP (Python) server -> w1 and w1 -> server; the wire rate comes from the
# server veth's counters (Ethernet frames), the goodput from the bytes the receiver read.
check_port=$((PORT - 1))
# stamped_counters COUNTER QDISC_NS QDISC_DEV: "veth_bytes qdisc_bytes seconds", the time being the
# midpoint of the two readings.
stamped_counters() {
    local a b v q
    a="$(date +%s.%N)"
    v="$(counter "$1")"; q="$(qdisc_bytes "$2" "$3")"
    b="$(date +%s.%N)"
    echo "$v $q $(python3 -c "import sys; print((float(sys.argv[1]) + float(sys.argv[2])) / 2)" "$a" "$b")"
}
link_check() {
    local link="$1" from to addr dir counter_name qns qdev bytes secs sink_pid out
    local v0 v1 q0 q1 t0 t1
    local w1; w1="$(worker_ns 1)"
    for dir in down up; do
        # The direction's own qdisc: the server's end for server -> w1, the switch's end for w1 -> server.
        if [[ "$dir" == down ]]; then from="$SRV"; to="$w1"; addr="$(worker_addr 1)"; counter_name=tx_bytes; qns="$SRV"; qdev=eth0
        else from="$w1"; to="$SRV"; addr="$SRV_ADDR"; counter_name=rx_bytes; qns="$SW"; qdev=v-srv; fi
        start "$LOGS/check-$link-$dir-sink.log" ip netns exec "$to" timeout -k 5 $((CHECK_SECONDS + 40)) \
            python3 "$here/wan.py" sink "$addr" "$check_port"
        sink_pid=$started
        start "$LOGS/check-$link-$dir-source.log" ip netns exec "$from" timeout -k 5 $((CHECK_SECONDS + 40)) \
            python3 "$here/wan.py" source "$addr" "$check_port" "$CHECK_SECONDS"
        # The rates are read in the steady state, from 1 s in to 0.5 s before the end, so that neither TCP's
        # slow start nor tbf's full bucket at the start counts; each reading is timed at its midpoint.
        sleep 1
        read -r v0 q0 t0 < <(stamped_counters "$counter_name" "$qns" "$qdev")
        sleep "$((CHECK_SECONDS - 2)).5"
        read -r v1 q1 t1 < <(stamped_counters "$counter_name" "$qns" "$qdev")
        reap "$started"
        ((status == 0)) || { cat "$LOGS/check-$link-$dir-source.log" >&2; die "link check ($link, $dir) failed"; }
        reap "$sink_pid"
        read -r bytes secs < "$LOGS/check-$link-$dir-source.log"
        out="$(python3 - "$link" "$bytes" "$secs" "$v0" "$v1" "$q0" "$q1" "$t0" "$t1" <<'PY'
import sys, subprocess
link, payload, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
v0, v1, q0, q1 = sys.argv[4:8]
window = float(sys.argv[9]) - float(sys.argv[8])
rate = None if link == "none" else int(subprocess.check_output(
    ["python3", "Benchmarks/wan/wan.py", "rate-bytes", link]))
mbit = lambda b: f"{b * 8 / window / 1e6:,.1f}"
text = f"{payload * 8 / secs / 1e6:,.1f} Mbit/s payload; {mbit(int(v1) - int(v0))} by the veth's counters"
if q0 != "-" and q1 != "-":
    frames = int(q1) - int(q0)
    text += f", {mbit(frames)} in frames (tbf's count)"
    if rate:
        text += f" = {frames / window / rate:.3f} of the rate"
print(text)
PY
)"
        if [[ "$dir" == down ]]; then check_down="$out"; else check_up="$out"; fi
        ((++check_port))
    done
    # Round trips on the idle link: no delay is added, so this is the stack's (and Python's) own cost.
    start "$LOGS/check-$link-echo.log" ip netns exec "$SRV" timeout -k 5 40 python3 "$here/wan.py" echo "$SRV_ADDR" "$check_port"
    sink_pid=$started
    start "$LOGS/check-$link-ping.log" ip netns exec "$w1" timeout -k 5 40 python3 "$here/wan.py" ping "$SRV_ADDR" "$check_port" 2000
    reap "$started"
    ((status == 0)) || { cat "$LOGS/check-$link-ping.log" >&2; die "link check ($link, round trips) failed"; }
    reap "$sink_pid"
    ((++check_port))
    read -r rtt_median rtt_p99 < "$LOGS/check-$link-ping.log"
    check_rtt="$rtt_median µs (p99 $rtt_p99 µs)"
    check_lines+=("| $link | $check_down | $check_up | $check_rtt |")
}

# ---------------------------------------------------------------------------------------------------
results="$LOGS/results.jsonl"
: > "$results"
json_line() { python3 -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' "$@"; }

if ((!CHECK_ONLY)); then
say "ps-train --model $MODEL --epochs $EPOCHS ${train_limit[*]} ${train_flags[*]} $TRAIN_FLAGS (root namespace)"
read -ra extra_train <<< "$TRAIN_FLAGS"
start "$LOGS/ps-train.log" timeout -k 10 "$SESSION_TIMEOUT" \
    "$BIN/ps-train" --model "$MODEL" --epochs "$EPOCHS" "${train_limit[@]}" "${train_flags[@]}" "${extra_train[@]}"
reap "$started"
((status == 0)) || { tail -n 20 "$LOGS/ps-train.log" >&2; die "ps-train exited with status $status"; }
say "ps-train: $(python3 "$here/wan.py" run-summary "$LOGS/ps-train.log" "$TARGET")"
python3 - "$LOGS/ps-train.log" >> "$results" <<'PY'
import json, sys
print(json.dumps({"kind": "ps-train", "link": "none", "config": "ps-train", "workers": 1, "log": sys.argv[1]}))
PY
fi

check_lines=()
session_notes=()
session_lines=()
port=$PORT
session=0
for link in "${link_list[@]}"; do
    shape "$SRV" eth0 v-srv "$link"
    for i in $(seq 1 "$WORKERS"); do
        if ((SHAPE_WORKERS)); then shape "$(worker_ns "$i")" eth0 "v-w$i" "$link"
        else shape "$(worker_ns "$i")" eth0 "v-w$i" none; fi
    done
    # Every shard's link like the server's: a shard is a parameter server for its range.
    for k in $(seq 1 "$SHARD_NAMESPACES"); do shape "$(shard_ns "$k")" eth0 "v-s$k" "$link"; done
    say "link $link: ${tbf_args[*]:-unshaped} on the server's veth$( ((SHARD_NAMESPACES)) && echo " and each shard's"), both ends; workers $( ((SHAPE_WORKERS)) && echo "shaped too" || echo unshaped)"
    if ((CHECK_SECONDS > 0)); then
        link_check "$link"
        say "link check $link: server -> w1 $check_down; w1 -> server $check_up; round trip $check_rtt"
    fi
    ((CHECK_ONLY)) && continue
    for config in "${CONFIGS[@]}"; do
    for shards in "${shard_list[@]}"; do
        IFS='|' read -r label config_server config_worker <<< "$config"
        read -ra sflags <<< "$SERVER_FLAGS $config_server"
        read -ra wflags <<< "$WORKER_FLAGS $config_worker"
        ((++session))
        what="$link, $label"; tag="$session-$link-$label"
        if ((shards)); then what+=", $shards shard(s)"; tag+="-m$shards"; fi
        tc -n "$SRV" -s qdisc show dev eth0 > "$LOGS/tc-$tag-before.txt"
        # Every link's counters before anything of this session starts.
        rx0="$(counter rx_bytes)"; tx0="$(counter tx_bytes)"; frames0="$(server_frames)"
        shard_before="$(shard_links "$shards")"
        # Shards first, each in its namespace: the server assigns their ranges once all M are there, and
        # tells workers to dial the address it sees each shard connect from (its namespace's).
        shard_pids=()
        shard_flags=()
        if ((shards)); then
            shard_flags=(--shards "$shards")
            for k in $(seq 1 "$shards"); do
                start "$LOGS/shard-$tag-s$k.log" ip netns exec "$(shard_ns "$k")" timeout -k 10 $((SESSION_TIMEOUT + 120)) \
                    "$BIN/ps-shard" "$SRV_ADDR" "$port" 0.2 --once --name "wan-s$k"
                shard_pids+=("$started")
            done
        fi
        worker_pids=()
        for i in $(seq 1 "$WORKERS"); do
            start "$LOGS/worker-$tag-w$i.log" ip netns exec "$(worker_ns "$i")" timeout -k 10 $((SESSION_TIMEOUT + 120)) \
                "$BIN/ps-worker" "$SRV_ADDR" "$port" 0.2 --once --name "wan-w$i" "${wflags[@]}"
            worker_pids+=("$started")
        done
        session_eval=()
        if [[ -n "$EVAL_EVERY" && " ${sflags[*]} " != *" --eval-every "* ]]; then session_eval=(--eval-every "$EVAL_EVERY"); fi
        server_cmd=("$BIN/ps-server" --host "$SRV_ADDR" --insecure --port "$port" --workers "$WORKERS"
                    --model "$MODEL" --epochs "$EPOCHS" "${server_limit[@]}" "${eval_flags[@]}" "${session_eval[@]}"
                    "${shard_flags[@]}" "${sflags[@]}")
        echo "${server_cmd[*]}" > "$LOGS/server-$tag.cmd"
        say "session $session: $what: ps-server ${server_cmd[*]:1} in $SRV; $WORKERS ps-worker(s) ${wflags[*]}$( ((shards)) && echo "; ps-shard in $PREFIX-s1..s$shards")"
        start "$LOGS/server-$tag.log" ip netns exec "$SRV" timeout -k 10 "$SESSION_TIMEOUT" "${server_cmd[@]}"
        reap "$started"
        server_status=$status
        rx1="$(counter rx_bytes)"; tx1="$(counter tx_bytes)"; frames1="$(server_frames)"
        shard_after="$(shard_links "$shards")"
        tc -n "$SRV" -s qdisc show dev eth0 > "$LOGS/tc-$tag-after.txt"
        if ((server_status != 0)); then
            tail -n 20 "$LOGS/server-$tag.log" >&2
            ((server_status == 124)) && die "ps-server ran past --timeout $SESSION_TIMEOUT s ($what)"
            die "ps-server exited with status $server_status ($what); its log: $LOGS/server-$tag.log"
        fi
        # The workers and shards leave after the session (--once); give them WORKER_GRACE s, then end them.
        for ((t = 0; t < WORKER_GRACE * 10; t++)); do
            alive=0
            for p in "${worker_pids[@]}" "${shard_pids[@]}"; do ours "$p" && alive=1; done
            ((alive)) || break
            sleep 0.1
        done
        ended=0
        for p in "${worker_pids[@]}"; do
            if ours "$p"; then kill -TERM "$p"; ((++ended)); fi
            reap "$p"
        done
        shards_ended=0
        for p in "${shard_pids[@]}"; do
            if ours "$p"; then kill -TERM "$p"; ((++shards_ended)); fi
            reap "$p"
        done
        told="$(cat "$LOGS"/worker-"$tag"-w*.log | grep -c '^session over' || true)"
        if ((ended + shards_ended)); then
            say "session $session: $ended worker(s) and $shards_ended shard(s) still running ${WORKER_GRACE} s after ps-server exited; ended them"
        fi
        if ((told < WORKERS)); then
            session_notes+=("session $session ($what): $told of $WORKERS worker(s) were told the session was over; $ended still running ${WORKER_GRACE} s after ps-server exited were ended by this script (logs: worker-$tag-w*.log)")
        fi
        if ((shards_ended)); then
            session_notes+=("session $session ($what): $shards_ended of $shards shard(s) still running ${WORKER_GRACE} s after ps-server exited were ended by this script (logs: shard-$tag-s*.log)")
        fi
        # Each shard link's bytes over the session, and their sums ("-" for frames when unshaped).
        shard_veth=0; shard_frame_sum=0; shard_each=()
        if ((shards)); then
            mapfile -t before_lines <<< "$shard_before"
            mapfile -t after_lines <<< "$shard_after"
            for ((k = 0; k < shards; k++)); do
                read -r v0 f0 <<< "${before_lines[k]}"
                read -r v1 f1 <<< "${after_lines[k]}"
                shard_each+=("$((v1 - v0))")
                shard_veth=$((shard_veth + v1 - v0))
                if [[ "$f0" == - || "$f1" == - || "$shard_frame_sum" == - ]]; then shard_frame_sum=-
                else shard_frame_sum=$((shard_frame_sum + f1 - f0)); fi
            done
        fi
        exchange="$(grep -m1 '^exchange:' "$LOGS/server-$tag.log" || true)"
        session_lines+=("session $session ($what): \`ps-server ${server_cmd[*]:1}\`${exchange:+; it printed \"$exchange\"}")
        json_line kind ps-server link "$link" config "$label" workers "$WORKERS" log "$LOGS/server-$tag.log" \
            rx_bytes "$((rx1 - rx0))" tx_bytes "$((tx1 - tx0))" \
            frame_bytes "$([[ "$frames0" == - || "$frames1" == - ]] && echo - || echo $((frames1 - frames0)))" \
            shards "$shards" shard_veth_bytes "$shard_veth" shard_frame_bytes "$shard_frame_sum" \
            shard_link_bytes "${shard_each[*]}" \
            >> "$results"
        say "session $session: $(python3 "$here/wan.py" run-summary "$LOGS/server-$tag.log" "$TARGET") veth_bytes=$((rx1 - rx0 + tx1 - tx0)) frame_bytes=$([[ "$frames0" == - || "$frames1" == - ]] && echo - || echo $((frames1 - frames0)))$( ((shards)) && echo " shard_veth_bytes=$shard_veth shard_frame_bytes=$shard_frame_sum")"
        ((++port))
    done
    done
done

# ---------------------------------------------------------------------------------------------------
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
{
    echo "## WAN: ps-server over shaped links, against ps-train"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPU(s) shared by the server, the workers and other load; load average $load_before before, $load_after after."
    echo "Model $MODEL, $EPOCHS epoch(s)${TRAIN_SAMPLES:+ of $TRAIN_SAMPLES samples}, $WORKERS worker(s), target $TARGET%. Server flags: ${SERVER_FLAGS:-none}; worker flags: ${WORKER_FLAGS:-none}."
    echo "Links: tc tbf on both ends of the server's veth (so both directions), burst ${TBF_BURST_MS} ms at the rate (at least $TBF_MIN_BURST bytes), latency $TBF_LATENCY; worker links $( ((SHAPE_WORKERS)) && echo "shaped at the same rate" || echo unshaped)."
    echo "No added delay: this kernel has no netem, so the links have bandwidth but no latency of their own (see the round trips below)."
    echo "Time to target: $eval_note."
    echo
    if ((${#check_lines[@]})); then
        echo "Link check, before the sessions at each rate: $CHECK_SECONDS s of bulk TCP from Python each way between the server"
        echo "and w1: payload as the receiver read it (whole transfer); then, from 1 s in to the end, the server veth's counters"
        echo "and the Ethernet frames that direction's tbf qdisc sent, against the rate. Also 2000 one-byte TCP round trips"
        echo "from Python on the idle link:"
        echo
        echo "| link | server → w1 | w1 → server | round trip, median |"
        echo "| --- | --- | --- | --- |"
        printf '%s\n' "${check_lines[@]}"
        echo
    fi
    if ((CHECK_ONLY)); then echo "logs: $LOGS"; exit 0; fi
    python3 "$here/wan.py" report "$results" "$TARGET"
    echo
    echo "bytes/sample: the server link's bytes (with shards, and every shard link's) over the session divided by samples="
    echo "from ps-server's summary line, TCP/IP and Ethernet headers and ACKs included; \"busiest link\": the one link (server's"
    echo "or a shard's) that carried the most, by its veth counters. \"veth counters\": rx+tx bytes of the veth; the veth sees"
    echo "GSO super-packets of up to 64 KiB, so it counts headers once per super-packet. \"1500-byte frames\": bytes sent by"
    echo "the two tbf qdiscs of each link, which count every segment with its own headers, as a real link would carry"
    echo "them (\"-\" when unshaped). \"veth ÷ protocol bytes\": veth bytes over bytes_in+bytes_out (with shards, plus"
    echo "shard_bytes_in+shard_bytes_out) from ps-server's summary line (\"-\" while ps-server does not print them)."
    echo "Ratios ÷ ps-train: above 1 is faster for samples/s and slower for time to target; ps-train ran alone, first, in"
    echo "the root namespace."
    echo
    echo "Sessions:"
    echo
    printf -- '- %s\n' "${session_lines[@]}"
    echo
    if ((${#session_notes[@]})); then
        printf -- '- %s\n' "${session_notes[@]}"
        echo
    fi
    echo "logs: $LOGS"
} | tee "$LOGS/table.md"
