import Foundation

/// Runs `protoc`, the reference implementation, on the conformance schema in `Schemas/TestMessages`.
enum Protoc {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The package's root folder, found from this file's path.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let schemaFolder = packageRoot.appendingPathComponent("Schemas/TestMessages")

    /// protoc's text format for `bytes`, decoded as the message `type` (such as `Everything`).
    static func decode(_ bytes: [UInt8], as type: String) throws -> String {
        String(decoding: try run(["--decode=downpour.test.\(type)"], input: bytes), as: UTF8.self)
    }

    /// protoc's binary encoding of a message given in text format.
    static func encode(_ text: String, as type: String) throws -> [UInt8] {
        try run(["--encode=downpour.test.\(type)"], input: Array(text.utf8))
    }

    /// protoc's output for raw fields, decoded without a schema.
    static func decodeRaw(_ bytes: [UInt8]) throws -> String {
        String(decoding: try run(["--decode_raw"], input: bytes), as: UTF8.self)
    }

    /// Runs protoc with files for standard input and output, so that megabytes cannot fill a pipe.
    private static func run(_ arguments: [String], input: [UInt8]) throws -> [UInt8] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("protoc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let inputURL = folder.appendingPathComponent("in")
        let outputURL = folder.appendingPathComponent("out")
        let errorURL = folder.appendingPathComponent("err")
        try Data(input).write(to: inputURL)
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["protoc", "-I", schemaFolder.path] + arguments + ["conformance.proto"]
        process.standardInput = try FileHandle(forReadingFrom: inputURL)
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = try FileHandle(forWritingTo: errorURL)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
            throw Failure(description: "protoc \(arguments.joined(separator: " ")) failed: \(message)")
        }
        return Array(try Data(contentsOf: outputURL))
    }
}
