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
    private let typePrefix: String
    private let readFile: (String) -> String?

    /// Creates a compiler that reads schemas with `readFile`.
    ///
    /// - Parameters:
    ///   - typePrefix: Put before the Swift name of every top-level message and enum, and so before
    ///     every reference to it, so that generated types cannot clash with hand-written ones in the
    ///     same module (`Downpour_` gives `Downpour_WorkUnit` and `Downpour_ErrorReport.Code`), as
    ///     swift-protobuf prefixes by package. Nested types keep their names: their parent qualifies
    ///     them. The wire format and the proto names in decoding errors do not change. It applies to
    ///     every schema of one compilation, imported ones included, so generate schemas that import
    ///     each other with the same prefix. Empty (the default) for none; else a valid start of a
    ///     Swift identifier (see ``isValidTypePrefix(_:)``).
    ///   - readFile: Returns a file's text, or `nil` when it cannot be read.
    public init(typePrefix: String = "", readFile: @escaping (String) -> String?) {
        precondition(Self.isValidTypePrefix(typePrefix), "type prefix '\(typePrefix)' cannot start a Swift identifier")
        self.typePrefix = typePrefix
        self.readFile = readFile
    }

    /// Whether `prefix` can start a Swift type name: empty, or ASCII letters, digits and `_`, not
    /// starting with a digit.
    public static func isValidTypePrefix(_ prefix: String) -> Bool {
        guard let first = prefix.unicodeScalars.first else { return true }
        func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
            scalar.isASCII && (scalar == "_" || scalar.properties.isAlphabetic || ("0"..."9").contains(scalar))
        }
        return !("0"..."9").contains(first) && prefix.unicodeScalars.allSatisfy(isWordCharacter)
    }

    /// Compiles `paths` into one Swift file each; files they import are checked but not generated.
    ///
    /// - Parameter paths: Schema paths, as they should appear in error messages and generated headers.
    /// - Returns: The generated files, in the order of `paths`.
    /// - Throws: ``SchemaErrors`` holding every problem found.
    public func compile(_ paths: [String]) throws(SchemaErrors) -> [GeneratedFile] {
        let files = try SchemaLoader(readFile: readFile).load(paths)
        var checker = Checker(typePrefix: typePrefix)
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
