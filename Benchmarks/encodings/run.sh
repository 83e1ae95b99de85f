#!/usr/bin/env bash
# Builds encoding-bench in release mode and runs it: TensorEncoding's encode, decode and decodeAdding
# at 407,050 values beside memcpy. Usage: Benchmarks/encodings/run.sh [runs] (default 9)
set -euo pipefail
cd "$(dirname "$0")"
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product encoding-bench >/dev/null
.build/release/encoding-bench "${1:-9}"
