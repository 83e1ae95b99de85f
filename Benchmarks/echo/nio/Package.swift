// swift-tools-version:6.0
// The SwiftNIO echo server the Reactor is compared with. A package of its own, so that Downpour
// itself does not depend on SwiftNIO. Build: swift build -c release --scratch-path .build
import PackageDescription

let package = Package(
    name: "NIOEchoServer",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "nio-echo-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/NIOEchoServer"
        ),
    ],
    swiftLanguageModes: [.v6]
)
