// swift-tools-version:6.0
// Downpour: distributed training with a parameter server, on libuv.
//
// Layering (imports point one way):
//   CLibUV      <- Reactor                       (event loop, TCP, framing; knows nothing of ML)
//   WireCodec   <- Messages                      (protobuf wire format; Messages is generated from Schemas/)
//   CZlib+CBLAS <- Learning                      (MNIST, tensors, models, optimisers; no networking)
//   Learning    <- model families (Examples/*) <- ModelCatalog   (the models the executables can train)
//   Reactor + Messages + Learning <- ParameterServer <- executables (thin command lines over its hosts)
import PackageDescription

let swiftSettings: [SwiftSetting] = []

let package = Package(
    name: "Downpour",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Locking", targets: ["Locking"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "WireCodec", targets: ["WireCodec"]),
        .library(name: "Messages", targets: ["Messages"]),
        .library(name: "Learning", targets: ["Learning"]),
        .library(name: "ParameterServer", targets: ["ParameterServer"]),
        .library(name: "TensorEncoding", targets: ["TensorEncoding"]),
        .executable(name: "ps-server", targets: ["ps-server"]),
        .executable(name: "ps-worker", targets: ["ps-worker"]),
        .executable(name: "ps-shard", targets: ["ps-shard"]),
        .executable(name: "ps-train", targets: ["ps-train"]),
        .executable(name: "ps-codegen", targets: ["ps-codegen"]),
        .executable(name: "ps-bench", targets: ["ps-bench"]),
        .executable(name: "ps-fleet", targets: ["ps-fleet"]),
        .executable(name: "ps-soak", targets: ["ps-soak"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(
            name: "CLibUV",
            path: "Sources/CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // dlopen/dlsym and cpuid; OpenBLAS itself is loaded at run time (see Learning's BLAS.swift).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        // TLS 1.3 for the Reactor's connections (issue #14), driven through memory BIOs.
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),

        // MARK: Stand-alone libraries
        // The one lock (over pthread, visible to ThreadSanitizer) that the libraries and tools share.
        .target(name: "Locking", swiftSettings: swiftSettings),
        .target(
            name: "Reactor",
            dependencies: ["CLibUV", "COpenSSL", "Locking"],
            swiftSettings: swiftSettings
        ),
        .target(name: "WireCodec", swiftSettings: swiftSettings),
        .target(name: "Messages", dependencies: ["WireCodec"], swiftSettings: swiftSettings),
        // Generated from Schemas/Benchmark for `ps-bench codec`; not the protocol's messages.
        .target(name: "BenchMessages", dependencies: ["WireCodec"], swiftSettings: swiftSettings),
        // Generated from Schemas/Checkpoint: the body of ps-server's checkpoint files.
        .target(name: "CheckpointFormat", dependencies: ["WireCodec"], swiftSettings: swiftSettings),
        .target(name: "Learning", dependencies: ["CZlib", "CBLAS", "Locking"], swiftSettings: swiftSettings),
        .target(name: "SchemaCompiler", path: "Tools/SchemaCompiler", swiftSettings: swiftSettings),
        // Spawning, reaping and finding the executables ps-fleet and ps-soak supervise: the operators'
        // tools need it, the library and its servers do not, so it stays out of ParameterServer.
        .target(name: "ProcessTooling", path: "Tools/ProcessTooling", swiftSettings: swiftSettings),
        // Compact encodings of Float32 vectors for the wire (fp16, bf16, q8, topk, sign) and error
        // feedback; no dependencies, nothing of sockets or protobuf. README.md documents the layouts.
        .target(name: "TensorEncoding", exclude: ["README.md"], swiftSettings: swiftSettings),

        // MARK: Model families
        // The example of a model family of one's own (Examples/Spirals/README.md).
        .target(name: "SpiralsModel", dependencies: ["Learning"], path: "Examples/Spirals/Sources/SpiralsModel", swiftSettings: swiftSettings),
        // The families ps-server, ps-worker and ps-train can train: register a model of your own here.
        .target(name: "ModelCatalog", dependencies: ["Learning", "SpiralsModel"], swiftSettings: swiftSettings),

        // MARK: The parameter server
        .target(
            name: "ParameterServer",
            dependencies: [
                "Reactor", "WireCodec", "Messages", "CheckpointFormat", "Learning", "TensorEncoding", "CZlib", "COpenSSL",
                "Locking", .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables
        .executableTarget(
            name: "ps-server",
            dependencies: ["ParameterServer", "ModelCatalog", "Learning", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ps-worker",
            dependencies: ["ParameterServer", "ModelCatalog", "Learning", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ps-shard",
            dependencies: ["ParameterServer", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ps-train",
            dependencies: ["Learning", "ModelCatalog", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ps-codegen",
            dependencies: ["SchemaCompiler", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/ps-codegen",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ps-bench",
            dependencies: [
                "Reactor", "WireCodec", "Messages", "BenchMessages", "Learning", "ParameterServer", "TensorEncoding", "Locking",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/ps-bench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ps-fleet",
            dependencies: [
                "ParameterServer", "ProcessTooling", "Reactor", "Learning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/ps-fleet",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ps-soak",
            dependencies: [
                "ParameterServer", "ProcessTooling", "Learning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/ps-soak",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "Locking"], swiftSettings: swiftSettings),
        .testTarget(name: "WireCodecTests", dependencies: ["WireCodec", "Messages"], swiftSettings: swiftSettings),
        .testTarget(name: "SchemaCompilerTests", dependencies: ["SchemaCompiler", "ps-codegen"], swiftSettings: swiftSettings),
        .testTarget(name: "LearningTests", dependencies: ["Learning"], swiftSettings: swiftSettings),
        .testTarget(name: "ParameterServerTests", dependencies: ["ParameterServer", "TensorEncoding"], swiftSettings: swiftSettings),
        .testTarget(name: "TensorEncodingTests", dependencies: ["TensorEncoding"], swiftSettings: swiftSettings),
        .testTarget(name: "EndToEndTests", dependencies: ["ParameterServer", "Messages", "WireCodec"], swiftSettings: swiftSettings),
        .testTarget(name: "ModelCatalogTests", dependencies: ["ModelCatalog", "SpiralsModel", "Learning", "ParameterServer", "Reactor", "Messages", "TensorEncoding"], swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
