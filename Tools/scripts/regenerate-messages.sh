#!/usr/bin/env bash
# Regenerates every Swift target generated from Schemas/: one Schemas folder per target.
#   Schemas/Messages      -> Sources/Messages       (the parameter-server protocol)
#   Schemas/Benchmark     -> Sources/BenchMessages  (ps-bench codec's messages)
#   Schemas/Checkpoint    -> Sources/CheckpointFormat (the body of ps-server's checkpoint files)
#   Schemas/TestMessages  -> Tests/WireCodecTests/Generated (the codec's conformance tests)
# Pass --check to change nothing and fail when a generated file is out of date.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build --product ps-codegen >/dev/null
codegen="$(swift build --show-bin-path)/ps-codegen"
for pair in Messages:Sources/Messages Benchmark:Sources/BenchMessages Checkpoint:Sources/CheckpointFormat TestMessages:Tests/WireCodecTests/Generated; do
    schemas="Schemas/${pair%%:*}"
    target="${pair##*:}"
    [ -d "$schemas" ] || continue
    "$codegen" "$schemas"/*.proto --out "$target" "$@"
done
