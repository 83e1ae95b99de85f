#!/usr/bin/env bash
# Side-by-side: Downpour (ps-bench training) vs NumPy (numpy_mlp.py), 784-128-10 MLP, batch 64, one thread.
# Interleaves ROUNDS rounds so that both see the same machine load; prints every figure, then the medians
# and the ratio. Usage: Benchmarks/learning/run.sh [ROUNDS]   (default 5; add CNN=1 for the CNN figure)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"
rounds="${1:-5}"
swift build -c release --product ps-bench >/dev/null
export OPENBLAS_NUM_THREADS=1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cnn_flag="--skip-cnn"
if [[ "${CNN:-0}" == "1" ]]; then cnn_flag=""; fi
for round in $(seq "$rounds"); do
    .build/release/ps-bench training --threads 1 --batch-size 64 --runs 3 $cnn_flag | tee -a "$out/swift.txt" | tail -1
    python3 Benchmarks/learning/numpy_mlp.py --epochs 1 | tee -a "$out/numpy.txt" | tail -1
done
python3 - "$out" <<'PY'
import re, statistics, sys
out = sys.argv[1]
def values(file, key):
    return [float(v) for v in re.findall(rf"(?<![a-z_]){key}=([0-9.]+)", open(f"{out}/{file}").read())]
for unit in ("second", "cpu_second"):
    swift = values("swift.txt", f"mlp_samples_per_{unit}")
    numpy = values("numpy.txt", f"samples_per_{unit}")
    s, n = statistics.median(swift), statistics.median(numpy)
    print(f"samples per {unit}: swift median {s:.0f} ({min(swift):.0f}-{max(swift):.0f}), "
          f"numpy median {n:.0f} ({min(numpy):.0f}-{max(numpy):.0f}), ratio {s / n:.2f}")
cnn = values("swift.txt", "cnn_samples_per_cpu_second")
if cnn:
    print(f"swift_cnn: median {statistics.median(cnn):.0f} samples per CPU-second over {len(cnn)} rounds")
PY
