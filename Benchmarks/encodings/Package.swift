// swift-tools-version:6.0
// Release benchmark of TensorEncoding: encode, decode and decodeAdding of every encoding at the size of
// the MLP 784-512-10 (407,050 values), beside a plain memcpy of the same bytes. A separate package, as
// Benchmarks/codec is, so that it builds TensorEncoding alone, in release, without resolving the main
// package's dependencies. Run: Benchmarks/encodings/run.sh [runs]
import PackageDescription

let package = Package(
    name: "EncodingBenchmark",
    targets: [
        // A symbolic link to Sources/TensorEncoding, so the benchmark measures exactly that code.
        .target(name: "TensorEncoding", exclude: ["README.md"]),
        .executableTarget(name: "encoding-bench", dependencies: ["TensorEncoding"]),
    ],
    swiftLanguageModes: [.v6]
)
