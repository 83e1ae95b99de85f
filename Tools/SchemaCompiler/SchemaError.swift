/// A place in a schema file: the file's path and a 1-based line and column.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem in a schema, reported as `file:line:column: message`.
public struct SchemaError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ message: String, at location: SourceLocation) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): \(message)" }
}

/// Every problem found in a set of schemas, in the order of files, lines and columns.
public struct SchemaErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [SchemaError]

    public init(_ errors: [SchemaError]) {
        self.errors = errors.sorted { ($0.location.file, $0.location.line, $0.location.column) < ($1.location.file, $1.location.line, $1.location.column) }
    }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
