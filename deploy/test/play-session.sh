#!/usr/bin/env bash
# Plays one Downpour session from deploy/kubernetes with podman, for real, and checks it. Outside the
# default CI suite (it installs podman, builds the image and trains a CNN for a minute or two).
#
#   deploy/test/play-session.sh [--compare-local] [--skip-build] [--timeout SECONDS]
#
# As root (it installs podman, runc, netavark, aardvark-dns, catatonit and curl when missing):
#  1. validates the manifests (deploy/test/validate-manifests.sh) and builds the image
#     (Tools/scripts/build-image.sh; --skip-build reuses localhost/downpour:latest);
#  2. turns the manifests into what podman 4.3 plays (deploy/test/to-podman.py says what and why),
#     on a network of its own, with the token in a podman secret;
#  3. plays the server's pod and the worker Deployment (2 replicas), probes the metrics endpoint the
#     way the manifests' readiness and liveness probes do, and mid-session scales the workers to 3
#     (after epoch 1) and back to 1 (after epoch 2): one worker is stopped with SIGTERM, as
#     `kubectl scale` does, and one is frozen (podman pod pause), as a node that drops off the
#     network, which the server notices only by its missing heartbeats;
#  4. checks the server's summary line: it exited 0, test accuracy >= MIN_ACCURACY (0.98), units ==
#     units_expected, nothing applied twice, both scaled-away workers left before the session ended;
#  5. with --compare-local, runs the same session with local processes (the same executables, the
#     same scaling at the same points) and checks the two accuracies agree within
#     ACCURACY_TOLERANCE (0.005).
# Everything it creates (pods, containers, volumes, the network, the secret, local processes) is
# removed on exit, also on failure or Ctrl-C. Logs stay in .build-deploy/play-logs/.
#
# podman is configured for this script's commands only, through CONTAINERS_CONF (a file in a
# temporary directory): the OCI runtime runc (crun fails on this kernel's hybrid cgroups), no
# default ulimits (runc cannot raise nofile past the limit podman itself runs under here), and
# netavark with aardvark-dns, so that pods find each other by name.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

compare_local=0
build=1
timeout=900
while [ $# -gt 0 ]; do
    case "$1" in
        --compare-local) compare_local=1; shift ;;
        --skip-build) build=0; shift ;;
        --timeout) timeout=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "play-session.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
min_accuracy=${MIN_ACCURACY:-0.98}
tolerance=${ACCURACY_TOLERANCE:-0.005}
image=localhost/downpour:latest
started=$SECONDS
deadline=$((SECONDS + timeout))

say() { printf '[play %4ds] %s\n' $((SECONDS - started)) "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
# podman's own chatter (syslog, health-check timers without systemd, volumes still in use by the
# other replicas) goes to a log, shown when a command fails.
quietly() { "$@" >/dev/null 2>>"$logs/podman.log" || { tail -5 "$logs/podman.log" >&2; fail "$*"; }; }

# MARK: Install and configure

[ "$(id -u)" -eq 0 ] || { echo "play-session.sh: run as root (rootful podman; it installs packages with apt-get)" >&2; exit 1; }
packages=(podman runc netavark aardvark-dns catatonit curl)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Written for Debian 12's podman 4.3: later versions name a Deployment's pods differently and play more
# kinds (to-podman.py would then do too much).
version=$(podman version --format '{{.Client.Version}}' 2>/dev/null || echo unknown)
case "$version" in 4.*) ;; *) say "WARNING: podman $version; this test was written for podman 4.3 (Debian 12)" ;; esac

work=$(mktemp -d /tmp/downpour-play.XXXXXX)
logs=$root/.build-deploy/play-logs
rm -rf "$logs"
mkdir -p "$logs"
cat > "$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
EOF
export CONTAINERS_CONF=$work/containers.conf
network=downpour-play-$$
secret=downpour-token
created_network=0
created_secret=0
played=()
local_pids=()
volumes=()

cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    for pid in "${local_pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    for pid in "${local_pids[@]}"; do wait "$pid" 2>/dev/null; done
    if command -v podman >/dev/null; then
        for pod in $(podman pod ps --format '{{.Name}}' 2>/dev/null); do
            case " ${pods_made[*]:-} " in *" $pod "*) podman pod rm -f -t 0 "$pod" >/dev/null 2>&1 ;; esac
        done
        for file in "${played[@]}"; do podman kube down "$file" >/dev/null 2>&1; done
        for volume in "${volumes[@]}"; do podman volume rm -f "$volume" >/dev/null 2>&1; done
        [ $created_secret -eq 1 ] && podman secret rm "$secret" >/dev/null 2>&1
        [ $created_network -eq 1 ] && podman network rm -f "$network" >/dev/null 2>&1
        left=$(podman pod ps --format '{{.Name}}' 2>/dev/null | grep -E '^downpour-(server|worker)' || true)
        [ -n "$left" ] && say "WARNING: pods left behind: $left"
    fi
    rm -rf "$work"
    say "torn down; logs in ${logs#"$root/"}/"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# MARK: Image, manifests, network, secret

say "validating the manifests"
deploy/test/validate-manifests.sh >/dev/null
python=$root/.build-deploy/venv/bin/python
if [ $build -eq 1 ]; then
    say "building the image (Tools/scripts/build-image.sh)"
    build_started=$SECONDS
    Tools/scripts/build-image.sh > "$logs/build-image.log" 2>&1 || { tail -20 "$logs/build-image.log" >&2; fail "the image did not build"; }
    say "image built in $((SECONDS - build_started)) s: $(grep '^built' "$logs/build-image.log")"
fi
podman image exists "$image" || fail "no image $image (run without --skip-build)"
say "image $image: $(($(podman image inspect --format '{{.Size}}' "$image") / 1024 / 1024)) MiB"

"$python" deploy/test/to-podman.py deploy/kubernetes "$work/play" --extra-workers 1 --prefix "$network" 2> "$logs/to-podman.txt" >/dev/null
sed 's/^/    /' "$logs/to-podman.txt" >&2
read -r -a volumes <<<"$(sed -n 's/.*emptyDir volumes become podman volumes //p' "$logs/to-podman.txt" | tr ',\n' '  ')"
replicas=$("$python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["spec"]["replicas"])' "$work/play/workers.yaml")
[ "$replicas" -eq 2 ] || fail "the worker Deployment has $replicas replicas; this test scales 2 -> 3 -> 1"
pods_made=(downpour-server downpour-worker-pod-0 downpour-worker-pod-1 downpour-worker-extra-pod-0)
for pod in "${pods_made[@]}"; do
    if podman pod exists "$pod"; then pods_made=(); fail "a pod named $pod exists already (remove it first: podman pod rm -f $pod)"; fi
done
if podman secret inspect "$secret" >/dev/null 2>&1; then fail "a podman secret named $secret exists already"; fi

quietly podman network create "$network"
created_network=1
token=$(head -c 32 /dev/urandom | base64 -w0)
# podman 4.3 reads a secretKeyRef's secret as a JSON map of base64 values (later versions too).
printf '{"token":"%s"}' "$(printf '%s' "$token" | base64 -w0)" | quietly podman secret create "$secret" -
created_secret=1

# MARK: Waiting, probing, scaling: the same steps for pods and for local processes

mode=podman   # or local
server_log() {
    if [ $mode = podman ]; then podman logs downpour-server-server 2>&1; else cat "$logs/local-server.log"; fi
}
server_running() {
    if [ $mode = podman ]; then
        [ "$(podman inspect --format '{{.State.Running}}' downpour-server-server 2>/dev/null)" = true ]
    else
        kill -0 "$server_pid" 2>/dev/null
    fi
}
log_has() { server_log | grep -qE "$1"; }

# The manifests' probes, done from outside as a kubelet does: GET /metrics on the metrics port.
metrics_url=
liveness_failures=0
last_liveness=0
# shellcheck disable=SC2120  # wait_for passes the file to keep the readiness probe's answer in
probe() { curl -fsS -o "${1:-/dev/null}" --max-time 5 "$metrics_url"; }
liveness() {
    [ -n "$metrics_url" ] && [ $((SECONDS - last_liveness)) -ge 10 ] && server_running || return 0
    last_liveness=$SECONDS
    if probe; then
        liveness_failures=0
    else
        liveness_failures=$((liveness_failures + 1))
        say "liveness probe failed ($liveness_failures of 3)"
        [ $liveness_failures -lt 3 ] || fail "the liveness probe failed 3 times: a kubelet would have killed the server"
    fi
}
# Waits until "$@" succeeds, probing liveness meanwhile; fails past the deadline, or when the server
# exits first (unless the wait is for its exit).
wait_for() {
    local what=$1
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
        [ "$what" = "the server to exit" ] || server_running || log_has '^mode=' \
            || { server_log | tail -20 >&2; fail "the server exited while waiting for $what"; }
        liveness
        sleep 1
    done
}

scale_up() {
    if [ $mode = podman ]; then
        say "scale 2 -> 3: podman kube play workers-extra.yaml (kubectl scale deployment/downpour-worker --replicas=3)"
        played+=("$work/play/workers-extra.yaml")
        quietly podman kube play --network "$network" "$work/play/workers-extra.yaml"
    else
        say "scale 2 -> 3: a third ps-worker"
        start_local_worker 3
    fi
}
scale_down() {
    if [ $mode = podman ]; then
        say "scale 3 -> 1: SIGTERM to downpour-worker-extra-pod-0 (as kubectl scale does); downpour-worker-pod-1 frozen (podman pod pause: a node gone silent)"
        quietly podman pod pause downpour-worker-pod-1
        quietly podman pod stop -t 15 downpour-worker-extra-pod-0
    else
        say "scale 3 -> 1: SIGTERM to worker 3; worker 2 frozen (SIGSTOP)"
        kill -STOP "${local_pids[2]}"
        kill -TERM "${local_pids[3]}"
    fi
}
forget_frozen() {
    if [ $mode = podman ]; then
        # SIGKILL first: it takes the frozen worker as it thaws, before it runs again (and rejoins).
        quietly podman pod kill -s KILL downpour-worker-pod-1
        quietly podman pod rm -f -t 0 downpour-worker-pod-1 downpour-worker-extra-pod-0
    else
        kill -KILL "${local_pids[2]}" 2>/dev/null || true
    fi
}

# Runs the session in the current mode and leaves its summary line in $summary.
run_session() {
    local t0=$SECONDS
    wait_for "the server to listen" log_has '^ps-server listening'
    if [ $mode = podman ]; then
        local infra ip
        infra=$(podman pod inspect --format '{{.InfraContainerID}}' downpour-server)
        ip=$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$infra")
        metrics_url=http://$ip:9090/metrics
        wait_for "the readiness probe ($metrics_url)" probe "$logs/metrics-at-start.txt"
        say "readiness probe: GET $metrics_url answered ($(grep -vc '^#' "$logs/metrics-at-start.txt") samples)"
        say "playing the worker Deployment (2 replicas)"
        played+=("$work/play/workers.yaml")
        quietly podman kube play --network "$network" "$work/play/workers.yaml"
    else
        start_local_worker 1
        start_local_worker 2
    fi
    wait_for "training to start" log_has '^training started'
    say "training started with 2 workers"
    wait_for "epoch 1" log_has '^epoch 1/'
    scale_up
    wait_for "the third worker to join" log_has 'joined; 3 active'
    say "$(server_log | grep -m1 'joined; 3 active')"
    wait_for "epoch 2" log_has '^epoch 2/'
    log_has '^mode=' && fail "the session ended before the workers were scaled down (too short to test)"
    [ $mode = podman ] && podman stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.CPUPerc}}' > "$logs/stats.txt" 2>/dev/null || true
    scale_down
    wait_for "the frozen worker to be dropped" log_has 'left: .*; 1 active'
    say "$(server_log | grep 'left: ' | tail -2 | paste -sd '|' | sed 's/|/ ... /')"
    forget_frozen
    wait_for "the server to exit" eval '! server_running'
    summary=$(server_log | grep '^mode=' | tail -1)
    [ -n "$summary" ] || { server_log | tail -20 >&2; fail "the server printed no summary line"; }
    say "session took $((SECONDS - t0)) s"
}

field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
check_summary() {
    local name=$1 summary=$2 exit_code=$3
    say "$name summary: $summary"
    [ "$exit_code" = 0 ] || fail "$name: ps-server exited with $exit_code"
    local accuracy units expected twice joins leaves
    accuracy=$(field test_accuracy "$summary"); units=$(field units "$summary"); expected=$(field units_expected "$summary")
    twice=$(field applied_twice "$summary"); joins=$(field joins "$summary"); leaves=$(field leaves "$summary")
    [ "$units" = "$expected" ] || fail "$name: units=$units but units_expected=$expected: work was lost"
    [ "$twice" = 0 ] || fail "$name: applied_twice=$twice"
    [ "$joins" -ge 3 ] && [ "$leaves" -ge 2 ] || fail "$name: joins=$joins leaves=$leaves: the scaling did not happen mid-session"
    awk -v a="$accuracy" -v m="$min_accuracy" 'BEGIN { exit !(a >= m) }' || fail "$name: test accuracy $accuracy < $min_accuracy"
    local final_line
    final_line=$(server_log | grep -n '^final test accuracy' | cut -d: -f1)
    [ "$(server_log | grep -n 'left: ' | tail -1 | cut -d: -f1)" -lt "$final_line" ] || fail "$name: the workers left after the session ended"
    say "$name: OK: test_accuracy=$accuracy (>= $min_accuracy), units=$units of $expected, joins=$joins, leaves=$leaves, requeued=$(field requeued "$summary")"
}

# MARK: The session on podman

say "playing the server (the Job's pod) on network $network"
played+=("$work/play/server.yaml")
quietly podman kube play --network "$network" "$work/play/server.yaml"
run_session
podman_summary=$summary
podman_exit=$(podman inspect --format '{{.State.ExitCode}}' downpour-server-server)
server_log > "$logs/server.log"
for container in $(podman ps -a --format '{{.Names}}' | grep -E '^downpour-worker.*-worker$'); do
    podman logs "$container" > "$logs/$container.log" 2>&1 || true
done
say "a worker after the session: $(podman logs --tail 1 downpour-worker-pod-0-worker 2>&1)"
check_summary podman "$podman_summary" "$podman_exit"
for file in "${played[@]}"; do podman kube down "$file" >/dev/null 2>>"$logs/podman.log" || true; done

# MARK: The same session with local processes

if [ $compare_local -eq 1 ]; then
    bin=${SCRATCH:-$root/.build-image}/release   # what build-image.sh built the image from
    [ -x "$bin/ps-server" ] && [ -x "$bin/ps-worker" ] || fail "no executables in $bin (run without --skip-build)"
    mapfile -t server_args < <("$python" -c '
import sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
for argument in job["spec"]["template"]["spec"]["containers"][0]["args"]:
    if not argument.startswith(("--host=", "--port=", "--metrics-port=")):
        print(argument)' deploy/kubernetes/server-job.yaml)
    mode=local
    metrics_url=   # the probes are the manifests'; local processes serve no metrics here
    liveness_failures=0
    say "the same session with local processes: ps-server ${server_args[*]} (loopback, a free port)"
    # The containers choose OpenBLAS kernels from cpuid; a core type set in this shell would differ.
    env -u OPENBLAS_CORETYPE DOWNPOUR_TOKEN="$token" "$bin/ps-server" --port 0 "${server_args[@]}" > "$logs/local-server.log" 2>&1 &
    server_pid=$!
    local_pids=("$server_pid")
    start_local_worker() {
        local port
        port=$(grep -m1 -oE 'listening on 127\.0\.0\.1:[0-9]+' "$logs/local-server.log" | cut -d: -f2)
        env -u OPENBLAS_CORETYPE DOWNPOUR_TOKEN="$token" "$bin/ps-worker" 127.0.0.1 "$port" 5 > "$logs/local-worker-$1.log" 2>&1 &
        local_pids+=($!)
        disown $!   # no "Killed" from bash when the frozen one is killed
    }
    run_session
    local_summary=$summary
    wait "$server_pid" && local_exit=0 || local_exit=$?
    check_summary local "$local_summary" "$local_exit"
    podman_accuracy=$(field test_accuracy "$podman_summary")
    local_accuracy=$(field test_accuracy "$local_summary")
    say "accuracy: podman $podman_accuracy, local processes $local_accuracy"
    awk -v a="$podman_accuracy" -v b="$local_accuracy" -v t="$tolerance" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }' \
        || fail "the accuracies differ by more than $tolerance"
fi

say "PASS in $((SECONDS - started)) s"
