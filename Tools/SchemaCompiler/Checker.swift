/// Resolves type names and checks the rules protoc enforces, collecting every error it finds.
struct Checker {
    /// Put before every top-level type's Swift name; nested types are reached through them.
    private let typePrefix: String
    private var errors: [SchemaError] = []
    private var symbols: [String: Symbol] = [:]

    private enum Symbol {
        case message(MessageDecl)
        case enumeration(EnumDecl)

        var location: SourceLocation {
            switch self {
            case .message(let decl): decl.location
            case .enumeration(let decl): decl.location
            }
        }

        var file: SchemaFile? {
            switch self {
            case .message(let decl): decl.file
            case .enumeration(let decl): decl.file
            }
        }
    }

    /// Names Swift code generated into the same module relies on; a schema type may not shadow them.
    private static let shadowedTypeNames: Set<String> = [
        "Any", "Array", "Bool", "Dictionary", "Double", "Error", "Float", "Hashable", "Equatable", "Int",
        "Int32", "Int64", "Never", "Optional", "Result", "Self", "Sendable", "String", "Type", "UInt8",
        "UInt32", "UInt64", "UnknownFields", "WireDecodingError", "WireEnum", "WireIndirect", "WireMessage",
        "WireReader", "WireSize", "WireTag", "WireWriter", "CaseIterable", "Protocol",
    ]

    /// Creates a checker that names top-level Swift types `typePrefix` + their schema name.
    init(typePrefix: String = "") {
        self.typePrefix = typePrefix
    }

    /// Checks `files`, which include every file they import.
    ///
    /// - Throws: ``SchemaErrors`` holding every problem found.
    mutating func check(_ files: [SchemaFile]) throws(SchemaErrors) {
        for file in files {
            declare(file)
        }
        var topLevel: [String: TypeDecl] = [:]
        for file in files {
            let declarations: [TypeDecl] = file.messages + file.enums
            for decl in declarations {
                // The same full name is already reported as a duplicate definition.
                if let previous = topLevel[decl.name], previous.fullName != decl.fullName {
                    report("'\(decl.name)' is already a top-level type at \(previous.location); generated Swift types share one module", at: decl.location)
                }
                topLevel[decl.name] = decl
            }
            for message in file.messages { check(message, in: file) }
            for decl in file.enums { check(decl) }
            checkEnumValueScope(file.enums, scope: "package '\(file.package)'")
        }
        if !errors.isEmpty { throw SchemaErrors(errors) }
    }

    private mutating func report(_ message: String, at location: SourceLocation) {
        errors.append(SchemaError(message, at: location))
    }

    // MARK: Declaring

    private mutating func declare(_ file: SchemaFile) {
        for message in file.messages { declare(message, file: file, scope: file.package, swiftPath: []) }
        for decl in file.enums { declare(decl, file: file, scope: file.package, swiftPath: []) }
    }

    private mutating func declare(_ message: MessageDecl, file: SchemaFile, scope: String, swiftPath: [String]) {
        name(message, file: file, scope: scope, swiftPath: swiftPath)
        add(.message(message), named: message.fullName)
        for nested in message.messages {
            nested.parent = message
            declare(nested, file: file, scope: message.fullName, swiftPath: message.swiftPath)
        }
        for nested in message.enums {
            nested.parent = message
            declare(nested, file: file, scope: message.fullName, swiftPath: message.swiftPath)
        }
    }

    private mutating func declare(_ decl: EnumDecl, file: SchemaFile, scope: String, swiftPath: [String]) {
        name(decl, file: file, scope: scope, swiftPath: swiftPath)
        add(.enumeration(decl), named: decl.fullName)
    }

    private mutating func name(_ decl: TypeDecl, file: SchemaFile, scope: String, swiftPath: [String]) {
        decl.file = file
        decl.fullName = scope.isEmpty ? decl.name : "\(scope).\(decl.name)"
        decl.swiftPath = swiftPath.isEmpty ? [typePrefix + decl.name] : swiftPath + [decl.name]
        checkTypeName(decl.name, at: decl.location)
    }

    private mutating func add(_ symbol: Symbol, named name: String) {
        if let previous = symbols[name] {
            if previous.location != symbol.location {
                report("'\(name)' is already defined at \(previous.location)", at: symbol.location)
            }
            return
        }
        symbols[name] = symbol
    }

    private mutating func checkTypeName(_ name: String, at location: SourceLocation) {
        if Self.shadowedTypeNames.contains(name) {
            report("the name '\(name)' would shadow a Swift or WireCodec type in generated code; choose another", at: location)
        }
    }

    // MARK: Messages

    private mutating func check(_ message: MessageDecl, in file: SchemaFile) {
        var numbers: [Int: FieldDecl] = [:]
        var names: [String: SourceLocation] = [:]
        var swiftNames: [String: String] = [:]
        checkReservedRanges(message.reservedRanges)
        for field in message.fields {
            if let previous = names[field.name] {
                report("field name '\(field.name)' is already used at \(previous)", at: field.location)
            }
            names[field.name] = field.location
            let swiftName = SwiftNaming.propertyName(field.name)
            if let previous = swiftNames[swiftName], previous != field.name {
                report("fields '\(previous)' and '\(field.name)' would both be named '\(swiftName)' in Swift", at: field.location)
            }
            swiftNames[swiftName] = field.name
            checkNumber(field, reservedRanges: message.reservedRanges, numbers: &numbers)
            for reserved in message.reservedNames where reserved.name == field.name {
                report("field name '\(field.name)' is reserved (at \(reserved.location))", at: field.location)
            }
            if let key = field.mapKey {
                resolve(key, from: message, in: file)
                let isValidKey: Bool
                switch key.resolved {
                case .scalar(let scalar)?: isValidKey = scalar.isValidMapKey
                case nil: isValidKey = true  // Already reported as an unknown type.
                default: isValidKey = false
                }
                if !isValidKey {
                    report("a map key must be an integer, bool or string type, not '\(key.name)'", at: key.location)
                }
            }
            resolve(field.type, from: message, in: file)
        }
        for oneof in message.oneofs {
            if let previous = names[oneof.name] {
                report("oneof name '\(oneof.name)' is already used at \(previous)", at: oneof.location)
            }
            names[oneof.name] = oneof.location
            let typeName = SwiftNaming.typeName(oneof.name)
            if let clash = message.messages.first(where: { $0.name == typeName }) {
                report("oneof '\(oneof.name)' becomes the Swift type '\(typeName)', which clashes with the message at \(clash.location)", at: oneof.location)
            }
            if oneof.fields.isEmpty {
                report("oneof '\(oneof.name)' must have at least one field", at: oneof.location)
            }
        }
        for nested in message.messages { check(nested, in: file) }
        for nested in message.enums { check(nested) }
        checkEnumValueScope(message.enums, scope: "message '\(message.name)'")
    }

    private mutating func checkNumber(_ field: FieldDecl, reservedRanges: [ReservedRange], numbers: inout [Int: FieldDecl]) {
        let number = field.number
        if number < 1 || number > 536_870_911 {
            report("field number \(number) is out of range: field numbers go from 1 to 536870911", at: field.numberLocation)
            return
        }
        if (19_000...19_999).contains(number) {
            report("field number \(number) is in 19000 to 19999, which protobuf reserves for itself", at: field.numberLocation)
        }
        if let previous = numbers[number] {
            report("field number \(number) is already used by field '\(previous.name)' at \(previous.location)", at: field.numberLocation)
        }
        numbers[number] = field
        for reserved in reservedRanges where reserved.range.contains(number) {
            report("field '\(field.name)' uses number \(number), which is reserved (at \(reserved.location))", at: field.numberLocation)
        }
    }

    private mutating func checkReservedRanges(_ ranges: [ReservedRange]) {
        for range in ranges where range.range.lowerBound < 1 {
            report("reserved field number \(range.range.lowerBound) is out of range: field numbers start at 1", at: range.location)
        }
    }

    /// Resolves `reference` as protobuf does: from the innermost enclosing scope outwards.
    private mutating func resolve(_ reference: TypeReference, from message: MessageDecl, in file: SchemaFile) {
        if reference.resolved != nil { return }
        var candidates: [String] = []
        if reference.name.hasPrefix(".") {
            candidates = [String(reference.name.dropFirst())]
        } else {
            var scope = message.fullName
            while true {
                candidates.append(scope.isEmpty ? reference.name : "\(scope).\(reference.name)")
                if scope.isEmpty { break }
                scope = scope.lastIndex(of: ".").map { String(scope[..<$0]) } ?? ""
            }
        }
        let symbols = self.symbols
        guard let symbol = candidates.lazy.compactMap({ symbols[$0] }).first else {
            report("unknown type '\(reference.name)'", at: reference.location)
            return
        }
        if let definingFile = symbol.file, definingFile !== file,
            !file.imports.contains(where: { SchemaLoader.resolve($0.path, from: file.path) == definingFile.path })
        {
            report("type '\(reference.name)' is defined in \(definingFile.path), which this file does not import", at: reference.location)
        }
        switch symbol {
        case .message(let decl): reference.resolved = .message(decl)
        case .enumeration(let decl): reference.resolved = .enumeration(decl)
        }
    }

    // MARK: Enums

    private mutating func check(_ decl: EnumDecl) {
        guard let first = decl.values.first else {
            report("enum '\(decl.name)' must have at least one value", at: decl.location)
            return
        }
        if first.number != 0 {
            report("the first value of a proto3 enum must be 0, so that it is the default; '\(first.name)' is \(first.number)", at: first.location)
        }
        var numbers: [Int: EnumValueDecl] = [:]
        var swiftNames: [String: String] = [:]
        let caseNames = SwiftNaming.enumCaseNames(decl.values.map(\.name), enumName: decl.name)
        for (value, caseName) in zip(decl.values, caseNames) {
            if let previous = numbers[value.number] {
                report("enum value \(value.number) is already used by '\(previous.name)' at \(previous.location) (aliases are not supported)", at: value.location)
            }
            numbers[value.number] = value
            if let previous = swiftNames[caseName], previous != value.name {
                report("enum values '\(previous)' and '\(value.name)' would both be the Swift case '\(caseName)'", at: value.location)
            }
            swiftNames[caseName] = value.name
            for reserved in decl.reservedRanges where reserved.range.contains(value.number) {
                report("enum value '\(value.name)' uses \(value.number), which is reserved (at \(reserved.location))", at: value.location)
            }
            for reserved in decl.reservedNames where reserved.name == value.name {
                report("enum value name '\(value.name)' is reserved (at \(reserved.location))", at: value.location)
            }
        }
    }

    /// protobuf scopes enum values beside their enum, so two enums in one scope may not share a value name.
    private mutating func checkEnumValueScope(_ enums: [EnumDecl], scope: String) {
        var seen: [String: (EnumDecl, SourceLocation)] = [:]
        for decl in enums {
            for value in decl.values {
                if let (other, location) = seen[value.name], other !== decl {
                    report("enum value '\(value.name)' is already defined in enum '\(other.name)' at \(location); enum values share their enum's scope (\(scope))", at: value.location)
                }
                seen[value.name] = (decl, value.location)
            }
        }
    }
}
