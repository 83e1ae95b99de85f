import ArgumentParser
import Foundation
import SchemaCompiler

/// `ps-codegen`: compiles schemas in Downpour's proto3 subset into Swift value types and codecs.
@main
struct PSCodegen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-codegen",
        abstract: "Generate Swift messages from .proto schemas (a documented proto3 subset; see Schemas/README.md).",
        discussion: """
            Writes one Swift file per schema into the output folder, named after the schema \
            (parameter_server.proto -> parameter_server.pb.swift). Imported schemas are checked but \
            only generated when named too. Errors are printed as file:line:column: message.
            """
    )

    @Argument(help: "The .proto schemas to generate, as paths relative to the current folder.")
    var schemas: [String]

    @Option(name: .long, help: "The folder to write the generated Swift files into.")
    var out: String

    @Option(name: .long, help: ArgumentHelp(
        "Put this before every top-level type's Swift name (Downpour_WorkUnit, Downpour_ErrorReport.Code), so generated types cannot clash with hand-written ones; references follow, nested types keep their names.",
        valueName: "prefix"))
    var typePrefix: String?

    @Flag(name: .long, help: "Write nothing; fail if any generated file differs from what is in --out.")
    var check = false

    func validate() throws {
        if schemas.isEmpty { throw ValidationError("name at least one .proto schema") }
        for schema in schemas where !schema.hasSuffix(".proto") {
            throw ValidationError("'\(schema)' is not a .proto file")
        }
        if let typePrefix, typePrefix.isEmpty || !SchemaCompiler.isValidTypePrefix(typePrefix) {
            throw ValidationError("--type-prefix takes letters, digits and '_', not starting with a digit, e.g. Downpour_")
        }
    }

    func run() throws {
        let compiler = SchemaCompiler(typePrefix: typePrefix ?? "") { path in
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            return String(data: data, encoding: .utf8)
        }
        let files: [GeneratedFile]
        do {
            files = try compiler.compile(schemas)
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode.failure
        }
        var stale: [String] = []
        for file in files {
            let path = (out as NSString).appendingPathComponent(file.name)
            let existing = FileManager.default.contents(atPath: path)
            if existing == Data(file.contents.utf8) { continue }
            if check {
                stale.append(path)
                continue
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try Data(file.contents.utf8).write(to: URL(fileURLWithPath: path))
        }
        if !stale.isEmpty {
            FileHandle.standardError.write(Data("out of date: \(stale.joined(separator: ", "))\n".utf8))
            throw ExitCode.failure
        }
    }
}
