#!/usr/bin/env bash
# Builds and runs codec-compare: Downpour's WireCodec beside swift-protobuf 1.39 on the messages of
# Schemas/Benchmark, in one release build and one run. Usage: Benchmarks/codec/run.sh [runs]
set -euo pipefail
cd "$(dirname "$0")"
swift package resolve >/dev/null
# swift-protobuf's generator, built from the same checkout the comparison links against.
(cd .build/checkouts/swift-protobuf && swift build -c release --product protoc-gen-swift >/dev/null)
plugin="$(cd .build/checkouts/swift-protobuf && swift build -c release --show-bin-path)/protoc-gen-swift"
protoc --plugin=protoc-gen-swift="$plugin" --swift_out=Visibility=Public:Sources/SwiftProtobufBench \
    -I ../../Schemas/Benchmark codec_benchmark.proto
swift build -c release --product codec-compare >/dev/null
.build/release/codec-compare "${1:-9}"
