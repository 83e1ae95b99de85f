// swift-tools-version:6.0
// Downpour's libFuzzer targets, kept out of the root package so that `swift build` and `swift test`
// there never see them. Build and run one with `Tools/Fuzz/run.sh TARGET SECONDS` (see README.md):
//
//   swift build -c release --sanitize=fuzzer --sanitize=address --product FuzzFrameDecoder
//
// Each target is an executable whose only entry point is `LLVMFuzzerTestOneInput`; libFuzzer supplies
// `main`, so the Swift files are compiled as a library (`-parse-as-library`), not as a script.
import PackageDescription

let fuzzSettings: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "DownpourFuzz",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "FuzzFrameDecoder", targets: ["FuzzFrameDecoder"]),
        .executable(name: "FuzzEnvelope", targets: ["FuzzEnvelope"]),
        .executable(name: "FuzzServerConnection", targets: ["FuzzServerConnection"]),
        .executable(name: "FuzzTensorDecoding", targets: ["FuzzTensorDecoding"]),
        .executable(name: "FuzzTLSRecords", targets: ["FuzzTLSRecords"]),
        .executable(name: "FuzzWeightsReplica", targets: ["FuzzWeightsReplica"]),
    ],
    dependencies: [
        .package(name: "Downpour", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "FuzzFrameDecoder",
            dependencies: [.product(name: "Reactor", package: "Downpour")],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzEnvelope",
            dependencies: [
                .product(name: "WireCodec", package: "Downpour"),
                .product(name: "Messages", package: "Downpour"),
                .product(name: "Learning", package: "Downpour"),
            ],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzServerConnection",
            dependencies: [
                .product(name: "ParameterServer", package: "Downpour"),
                .product(name: "Reactor", package: "Downpour"),
                .product(name: "WireCodec", package: "Downpour"),
                .product(name: "Messages", package: "Downpour"),
                .product(name: "Learning", package: "Downpour"),
            ],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzTensorDecoding",
            dependencies: [.product(name: "TensorEncoding", package: "Downpour")],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzTLSRecords",
            dependencies: [.product(name: "Reactor", package: "Downpour")],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzWeightsReplica",
            dependencies: [
                .product(name: "ParameterServer", package: "Downpour"),
                .product(name: "Messages", package: "Downpour"),
                .product(name: "TensorEncoding", package: "Downpour"),
            ],
            swiftSettings: fuzzSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
