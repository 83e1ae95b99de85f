/// Reads schema files and everything they import.
struct SchemaLoader {
    let readFile: (String) -> String?

    /// The path an `import` names, relative to the importing file's folder.
    static func resolve(_ importPath: String, from importer: String) -> String {
        guard let slash = importer.lastIndex(of: "/") else { return importPath }
        return normalized(String(importer[...slash]) + importPath)
    }

    /// Removes `.` components and folds `dir/..`.
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: false) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != "..", !last.isEmpty {
                parts.removeLast()
            } else {
                parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }

    /// Parses `paths` and, transitively, the files they import; each file once.
    ///
    /// - Throws: ``SchemaErrors`` with the first syntax error of each file and every missing import.
    func load(_ paths: [String]) throws(SchemaErrors) -> [SchemaFile] {
        var files: [SchemaFile] = []
        var errors: [SchemaError] = []
        var loaded: Set<String> = []
        var queue: [(path: String, importedAt: SourceLocation?)] = paths.map { (Self.normalized($0), nil) }
        while !queue.isEmpty {
            let (path, importedAt) = queue.removeFirst()
            if !loaded.insert(path).inserted { continue }
            guard let source = readFile(path) else {
                errors.append(SchemaError(
                    importedAt == nil ? "cannot read this schema file (missing, unreadable or not UTF-8)" : "cannot find imported schema '\(path)'",
                    at: importedAt ?? SourceLocation(file: path, line: 1, column: 1)
                ))
                continue
            }
            do throws(SchemaError) {
                var parser = try Parser(path: path, source: source)
                let file = try parser.parse()
                files.append(file)
                for decl in file.imports {
                    queue.append((Self.resolve(decl.path, from: path), decl.location))
                }
            } catch {
                errors.append(error)
            }
        }
        if !errors.isEmpty { throw SchemaErrors(errors) }
        return files
    }
}
