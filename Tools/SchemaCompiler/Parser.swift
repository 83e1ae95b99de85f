/// Parses the proto3 subset described in `Schemas/README.md`, stopping at the first syntax error.
struct Parser {
    private let tokens: [Token]
    private var index = 0
    private let file: SchemaFile

    init(path: String, source: String) throws(SchemaError) {
        var lexer = Lexer(file: path, source: source)
        self.tokens = try lexer.tokenize()
        self.file = SchemaFile(path: path)
    }

    /// Parses the whole file.
    ///
    /// - Throws: ``SchemaError`` at the first token that does not fit the grammar.
    mutating func parse() throws(SchemaError) -> SchemaFile {
        file.comments = current.comments
        guard case .identifier("syntax") = current.kind else {
            throw SchemaError("a schema must start with 'syntax = \"proto3\";'", at: current.location)
        }
        advance()
        try expect("=")
        let syntaxLocation = current.location
        guard case .string(let syntax) = current.kind else { throw unexpected("the string \"proto3\"") }
        guard syntax == "proto3" else {
            throw SchemaError("only syntax \"proto3\" is supported, not \"\(syntax)\"", at: syntaxLocation)
        }
        advance()
        try expect(";")
        while true {
            switch current.kind {
            case .end:
                return file
            case .symbol(";"):
                advance()
            case .identifier("package"):
                advance()
                file.package = try fullIdentifier()
                try expect(";")
            case .identifier("import"):
                let location = current.location
                advance()
                if case .identifier(let word) = current.kind, word == "public" || word == "weak" { advance() }
                guard case .string(let path) = current.kind else { throw unexpected("the path of the schema to import, in quotes") }
                advance()
                try expect(";")
                file.imports.append(ImportDecl(path: path, location: location))
            case .identifier("message"):
                file.messages.append(try message())
            case .identifier("enum"):
                file.enums.append(try enumeration())
            case .identifier(let word):
                throw unsupported(word)
            default:
                throw unexpected("'message', 'enum', 'import' or 'package'")
            }
        }
    }

    // MARK: Declarations

    private mutating func message() throws(SchemaError) -> MessageDecl {
        let comments = current.comments
        advance()
        let (name, location) = try identifier("a message name")
        let message = MessageDecl(name: name, comments: comments, location: location)
        try expect("{")
        while true {
            switch current.kind {
            case .symbol("}"):
                advance()
                return message
            case .symbol(";"):
                advance()
            case .identifier("message"):
                message.messages.append(try self.message())
            case .identifier("enum"):
                message.enums.append(try enumeration())
            case .identifier("reserved"):
                try reserved(ranges: &message.reservedRanges, names: &message.reservedNames, maximum: 536_870_911)
            case .identifier("oneof"):
                let oneof = try self.oneof()
                message.oneofs.append(oneof)
                message.fields += oneof.fields
            case .identifier("map"):
                message.fields.append(try field(label: .singular, isMap: true))
            case .identifier("repeated"):
                advance()
                message.fields.append(try field(label: .repeated, isMap: false))
            case .identifier("optional"):
                advance()
                message.fields.append(try field(label: .optional, isMap: false))
            case .identifier("required"):
                throw SchemaError("'required' does not exist in proto3; fields are optional by default", at: current.location)
            case .identifier(let word) where ["option", "extensions", "extend", "group", "service"].contains(word):
                throw unsupported(word)
            case .identifier, .symbol("."):
                message.fields.append(try field(label: .singular, isMap: false))
            case .end:
                throw SchemaError("message '\(name)' is not closed: missing '}'", at: current.location)
            default:
                throw unexpected("a field, 'message', 'enum', 'oneof', 'reserved' or '}'")
            }
        }
    }

    private mutating func oneof() throws(SchemaError) -> OneofDecl {
        let comments = current.comments
        advance()
        let (name, location) = try identifier("a oneof name")
        let oneof = OneofDecl(name: name, comments: comments, location: location)
        try expect("{")
        while true {
            switch current.kind {
            case .symbol("}"):
                advance()
                return oneof
            case .symbol(";"):
                advance()
            case .identifier(let word) where ["repeated", "optional", "map"].contains(word):
                throw SchemaError("a oneof field cannot be '\(word)'", at: current.location)
            case .identifier, .symbol("."):
                let field = try field(label: .singular, isMap: false)
                field.oneof = oneof
                oneof.fields.append(field)
            case .end:
                throw SchemaError("oneof '\(name)' is not closed: missing '}'", at: current.location)
            default:
                throw unexpected("a field or '}'")
            }
        }
    }

    /// `[label] type name = number;` or `map<K, V> name = number;`; a label has been consumed.
    private mutating func field(label: FieldDecl.Label, isMap: Bool) throws(SchemaError) -> FieldDecl {
        let comments = tokens[label == .singular ? index : index - 1].comments
        var mapKey: TypeReference?
        let type: TypeReference
        if isMap {
            advance()
            try expect("<")
            let keyLocation = current.location
            mapKey = TypeReference(name: try fullIdentifier(), location: keyLocation)
            try expect(",")
            let valueLocation = current.location
            type = TypeReference(name: try fullIdentifier(), location: valueLocation)
            try expect(">")
        } else {
            let typeLocation = current.location
            type = TypeReference(name: try fullIdentifier(), location: typeLocation)
        }
        let (name, location) = try identifier("a field name")
        try expect("=")
        let numberLocation = current.location
        guard case .integer(let number) = current.kind else { throw unexpected("a field number") }
        advance()
        if case .symbol("[") = current.kind {
            throw SchemaError("field options in '[...]' are not supported by ps-codegen's schema subset", at: current.location)
        }
        try expect(";")
        return FieldDecl(
            name: name, number: Int(clamping: number), label: label, type: type, mapKey: mapKey,
            comments: comments, location: location, numberLocation: numberLocation
        )
    }

    private mutating func enumeration() throws(SchemaError) -> EnumDecl {
        let comments = current.comments
        advance()
        let (name, location) = try identifier("an enum name")
        let decl = EnumDecl(name: name, comments: comments, location: location)
        try expect("{")
        while true {
            switch current.kind {
            case .symbol("}"):
                advance()
                return decl
            case .symbol(";"):
                advance()
            case .identifier("reserved"):
                try reserved(ranges: &decl.reservedRanges, names: &decl.reservedNames, maximum: Int(Int32.max))
            case .identifier("option"):
                throw unsupported("option")
            case .identifier:
                let valueComments = current.comments
                let (valueName, valueLocation) = try identifier("an enum value name")
                try expect("=")
                let negative = current.kind == .symbol("-")
                if negative { advance() }
                let numberLocation = current.location
                guard case .integer(let magnitude) = current.kind else { throw unexpected("the value's number") }
                advance()
                guard magnitude <= (negative ? 2_147_483_648 : 2_147_483_647) else {
                    throw SchemaError("enum value \(negative ? "-" : "")\(magnitude) does not fit in int32", at: numberLocation)
                }
                if case .symbol("[") = current.kind {
                    throw SchemaError("enum value options in '[...]' are not supported by ps-codegen's schema subset", at: current.location)
                }
                try expect(";")
                let number = negative ? -Int(magnitude) : Int(magnitude)
                decl.values.append(EnumValueDecl(name: valueName, number: number, comments: valueComments, location: valueLocation))
            case .end:
                throw SchemaError("enum '\(name)' is not closed: missing '}'", at: current.location)
            default:
                throw unexpected("an enum value, 'reserved' or '}'")
            }
        }
    }

    private mutating func reserved(
        ranges: inout [ReservedRange], names: inout [ReservedName], maximum: Int
    ) throws(SchemaError) {
        advance()
        if case .string = current.kind {
            while true {
                guard case .string(let name) = current.kind else { throw unexpected("a reserved name in quotes") }
                names.append(ReservedName(name: name, location: current.location))
                advance()
                if current.kind != .symbol(",") { break }
                advance()
            }
        } else {
            while true {
                let location = current.location
                let low = try reservedNumber()
                var high = low
                if current.kind == .identifier("to") {
                    advance()
                    if current.kind == .identifier("max") {
                        advance()
                        high = maximum
                    } else {
                        high = try reservedNumber()
                    }
                }
                guard low <= high else {
                    throw SchemaError("reserved range \(low) to \(high) is empty: the first number must not exceed the second", at: location)
                }
                ranges.append(ReservedRange(range: low...high, location: location))
                if current.kind != .symbol(",") { break }
                advance()
            }
        }
        try expect(";")
    }

    private mutating func reservedNumber() throws(SchemaError) -> Int {
        let negative = current.kind == .symbol("-")
        if negative { advance() }
        guard case .integer(let value) = current.kind else { throw unexpected("a reserved number") }
        advance()
        return negative ? -Int(clamping: value) : Int(clamping: value)
    }

    // MARK: Tokens

    private var current: Token { tokens[index] }

    private mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    private mutating func expect(_ symbol: Character) throws(SchemaError) {
        guard current.kind == .symbol(symbol) else {
            if symbol == ";" {
                // Point just after the previous token: that is where the ';' belongs.
                let previous = tokens[max(index - 1, 0)]
                let location = SourceLocation(
                    file: previous.location.file, line: previous.location.line,
                    column: previous.location.column + previous.text.count
                )
                throw SchemaError("missing ';' after '\(previous.text)'", at: location)
            }
            throw unexpected("'\(symbol)'")
        }
        advance()
    }

    private mutating func identifier(_ what: String) throws(SchemaError) -> (String, SourceLocation) {
        guard case .identifier(let name) = current.kind else { throw unexpected(what) }
        let location = current.location
        advance()
        return (name, location)
    }

    /// A possibly dotted name: `Foo`, `pkg.Foo.Bar`, `.pkg.Foo`.
    private mutating func fullIdentifier() throws(SchemaError) -> String {
        var name = ""
        if current.kind == .symbol(".") {
            name = "."
            advance()
        }
        while true {
            guard case .identifier(let part) = current.kind else { throw unexpected("a name") }
            name += part
            advance()
            guard current.kind == .symbol(".") else { return name }
            name += "."
            advance()
        }
    }

    private func unexpected(_ expected: String) -> SchemaError {
        SchemaError("expected \(expected), found '\(current.text)'", at: current.location)
    }

    private func unsupported(_ word: String) -> SchemaError {
        switch word {
        case "option":
            SchemaError("options are not supported by ps-codegen's schema subset", at: current.location)
        case "service", "rpc":
            SchemaError("services are not supported: ps-codegen generates messages only", at: current.location)
        case "extend", "extensions":
            SchemaError("extensions do not exist in proto3", at: current.location)
        case "group":
            SchemaError("groups do not exist in proto3; use a nested message", at: current.location)
        default:
            SchemaError("expected 'message', 'enum', 'import' or 'package', found '\(word)'", at: current.location)
        }
    }
}
