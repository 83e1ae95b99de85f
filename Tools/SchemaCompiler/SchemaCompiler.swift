/// One generated Swift file.
public struct GeneratedFile: Hashable, Sendable {
    /// The file's name, such as `parameter_server.pb.swift`.
    public var name: String
    /// The Swift source.
    public var contents: String
}

/// Compiles schemas in ps-codegen's proto3 subset into Swift: lexer, parser, checker and emitter.
///
/// ```swift
/// let compiler = SchemaCompiler { path in try? String(contentsOfFile: path, encoding: .utf8) }
/// let files = try compiler.compile(["Schemas/Messages/parameter_server.proto"])
/// ```
public struct SchemaCompiler {
    private let readFile: (String) -> String?

    /// Creates a compiler that reads schemas with `readFile`.
    ///
    /// - Parameter readFile: Returns a file's text, or `nil` when it cannot be read.
    public init(readFile: @escaping (String) -> String?) {
        self.readFile = readFile
    }

    /// Compiles `paths` into one Swift file each; files they import are checked but not generated.
    ///
    /// - Parameter paths: Schema paths, as they should appear in error messages and generated headers.
    /// - Returns: The generated files, in the order of `paths`.
    /// - Throws: ``SchemaErrors`` holding every problem found.
    public func compile(_ paths: [String]) throws(SchemaErrors) -> [GeneratedFile] {
        let files = try SchemaLoader(readFile: readFile).load(paths)
        var checker = Checker()
        try checker.check(files)
        let requested = Set(paths.map(SchemaLoader.normalized))
        return files.filter { requested.contains($0.path) }.map { file in
            GeneratedFile(name: Self.outputName(for: file.path), contents: SwiftEmitter.emit(file))
        }
    }

    /// `Schemas/Messages/parameter_server.proto` → `parameter_server.pb.swift`.
    public static func outputName(for path: String) -> String {
        var name = Substring(path.split(separator: "/").last ?? Substring(path))
        if name.hasSuffix(".proto") { name = name.dropLast(6) }
        return name + ".pb.swift"
    }
}
