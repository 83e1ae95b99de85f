import Foundation
import Testing

@testable import ps_codegen

@Suite("The ps-codegen command")
struct PSCodegenTests {
    @Test("--help says what the tool does")
    func help() {
        #expect(PSCodegen.helpMessage(columns: 100) == """
            OVERVIEW: Generate Swift messages from .proto schemas (a documented proto3 subset; see
            Schemas/README.md).

            Writes one Swift file per schema into the output folder, named after the schema
            (parameter_server.proto -> parameter_server.pb.swift). Imported schemas are checked but only
            generated when named too. Errors are printed as file:line:column: message.

            USAGE: ps-codegen <schemas> ... --out <out> [--check]

            ARGUMENTS:
              <schemas>               The .proto schemas to generate, as paths relative to the current folder.

            OPTIONS:
              --out <out>             The folder to write the generated Swift files into.
              --check                 Write nothing; fail if any generated file differs from what is in --out.
              -h, --help              Show help information.

            """)
    }

    @Test("arguments that are not schemas are refused")
    func validation() {
        #expect(throws: (any Error).self) { try PSCodegen.parse(["notes.txt", "--out", "x"]) }
        #expect(throws: (any Error).self) { try PSCodegen.parse(["a.proto"]) }
    }

    /// The built ps-codegen, beside the test bundle.
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ps-codegen")

    @Test(
        "a bad schema exits non-zero with file:line:column: message and no stack trace",
        .enabled(if: FileManager.default.isExecutableFile(atPath: binary.path))
    )
    func badSchemaExitCode() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ps-codegen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("syntax = \"proto3\";\nmessage M {\n  Foo foo = 1;\n  int32 a = 1\n}\n".utf8).write(to: folder.appendingPathComponent("bad.proto"))
        let process = Process()
        process.executableURL = Self.binary
        process.currentDirectoryURL = folder
        process.arguments = ["bad.proto", "--out", "out"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(message == "bad.proto:4:14: missing ';' after '1'\n")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }
}
