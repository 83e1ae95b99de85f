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

            USAGE: ps-codegen <schemas> ... --out <out> [--type-prefix <prefix>] [--check]

            ARGUMENTS:
              <schemas>               The .proto schemas to generate, as paths relative to the current folder.

            OPTIONS:
              --out <out>             The folder to write the generated Swift files into.
              --type-prefix <prefix>  Put this before every top-level type's Swift name (Downpour_WorkUnit,
                                      Downpour_ErrorReport.Code), so generated types cannot clash with
                                      hand-written ones; references follow, nested types keep their names.
              --check                 Write nothing; fail if any generated file differs from what is in --out.
              -h, --help              Show help information.

            """)
    }

    @Test("arguments that are not schemas are refused")
    func validation() {
        #expect(throws: (any Error).self) { try PSCodegen.parse(["notes.txt", "--out", "x"]) }
        #expect(throws: (any Error).self) { try PSCodegen.parse(["a.proto"]) }
    }

    @Test("a type prefix that cannot start a Swift name is refused", arguments: ["", "9x", "a-b", "Ps."])
    func badTypePrefix(prefix: String) {
        #expect(throws: (any Error).self) { try PSCodegen.parse(["a.proto", "--out", "x", "--type-prefix", prefix]) }
    }

    /// The built ps-codegen, beside the test bundle.
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ps-codegen")

    /// Runs the built ps-codegen with `arguments` in a new folder holding `files` (name and text).
    /// - Returns: Its exit status, its standard error, and what it wrote under `out` (name and text),
    ///   nil if it did not create `out`.
    static func runCodegen(_ arguments: [String], files: [String: String]) throws
        -> (status: Int32, errors: String, output: [String: String]?) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ps-codegen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (name, text) in files {
            try Data(text.utf8).write(to: folder.appendingPathComponent(name))
        }
        let process = Process()
        process.executableURL = binary
        process.currentDirectoryURL = folder
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let out = folder.appendingPathComponent("out")
        guard let written = try? FileManager.default.contentsOfDirectory(atPath: out.path) else {
            return (process.terminationStatus, message, nil)
        }
        let output = try Dictionary(uniqueKeysWithValues: written.map { name in
            (name, try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8))
        })
        return (process.terminationStatus, message, output)
    }

    @Test(
        "a bad schema exits non-zero with file:line:column: message and no stack trace",
        .enabled(if: FileManager.default.isExecutableFile(atPath: binary.path))
    )
    func badSchemaExitCode() throws {
        let result = try Self.runCodegen(
            ["bad.proto", "--out", "out"],
            files: ["bad.proto": "syntax = \"proto3\";\nmessage M {\n  Foo foo = 1;\n  int32 a = 1\n}\n"])
        #expect(result.status == 1)
        #expect(result.errors == "bad.proto:4:14: missing ';' after '1'\n")
        #expect(result.output == nil)
    }

    @Test(
        "--type-prefix names the generated types",
        .enabled(if: FileManager.default.isExecutableFile(atPath: binary.path))
    )
    func typePrefix() throws {
        let schema = "syntax = \"proto3\";\nmessage M { N n = 1; }\nmessage N {}\n"
        let result = try Self.runCodegen(["m.proto", "--out", "out", "--type-prefix", "Demo_"], files: ["m.proto": schema])
        #expect(result.status == 0)
        let code = try #require(result.output?["m.pb.swift"])
        #expect(code.contains("public struct Demo_M: WireMessage, Hashable {"))
        #expect(code.contains("public var n: Demo_N? = nil"))
        #expect(code.contains("public struct Demo_N: WireMessage, Hashable {"))
    }
}
