/// A token of the schema language.
struct Token: Equatable {
    enum Kind: Equatable {
        case identifier(String)
        case integer(UInt64)
        case string(String)
        case symbol(Character)
        case end
    }

    var kind: Kind
    var location: SourceLocation
    /// The comment lines right above the token, with no blank line between, without `//`.
    var comments: [String]

    var text: String {
        switch kind {
        case .identifier(let name): name
        case .integer(let value): String(value)
        case .string(let value): "\"\(value)\""
        case .symbol(let symbol): String(symbol)
        case .end: "end of file"
        }
    }
}

/// Splits a schema into tokens, keeping the comments that precede each one.
struct Lexer {
    private let file: String
    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var line = 1
    private var column = 1

    init(file: String, source: String) {
        self.file = file
        self.scalars = Array(source.unicodeScalars)
    }

    /// Returns every token, ending with `.end`.
    ///
    /// - Throws: ``SchemaError`` for an unterminated string or comment, or a character the language
    ///   does not use.
    mutating func tokenize() throws(SchemaError) -> [Token] {
        var tokens: [Token] = []
        while true {
            let comments = try skipTriviaCollectingComments()
            let location = here
            guard let scalar = peek() else {
                tokens.append(Token(kind: .end, location: location, comments: comments))
                return tokens
            }
            let kind: Token.Kind
            if scalar.properties.isAlphabetic && scalar.isASCII || scalar == "_" {
                kind = .identifier(readWhile { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_") })
            } else if ("0"..."9").contains(scalar) {
                kind = .integer(try readInteger(at: location))
            } else if scalar == "\"" || scalar == "'" {
                kind = .string(try readString(at: location))
            } else if "{}[]()<>;=,.-+:".unicodeScalars.contains(scalar) {
                advance()
                kind = .symbol(Character(scalar))
            } else {
                throw SchemaError("unexpected character '\(scalar)'", at: location)
            }
            tokens.append(Token(kind: kind, location: location, comments: comments))
        }
    }

    private var here: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < scalars.count ? scalars[index + offset] : nil
    }

    private mutating func advance() {
        if scalars[index] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    private mutating func readWhile(_ predicate: (Unicode.Scalar) -> Bool) -> String {
        var text = String.UnicodeScalarView()
        while let scalar = peek(), predicate(scalar) {
            text.append(scalar)
            advance()
        }
        return String(text)
    }

    /// Skips spaces and comments; returns the comment lines directly above what comes next.
    ///
    /// A comment on the same line as the previous token (`int32 a = 1; // about a`) is that token's
    /// trailing comment, not the next declaration's, so it is dropped.
    private mutating func skipTriviaCollectingComments() throws(SchemaError) -> [String] {
        var comments: [String] = []
        var newlinesSinceComment = 0
        var isTrailing = index > 0
        while let scalar = peek() {
            if scalar == "\n" {
                newlinesSinceComment += 1
                if newlinesSinceComment >= 2 { comments = [] }
                if isTrailing {
                    comments = []
                    isTrailing = false
                }
                advance()
            } else if scalar == " " || scalar == "\t" || scalar == "\r" {
                advance()
            } else if scalar == "/" && peek(1) == "/" {
                advance()
                advance()
                var text = readWhile { $0 != "\n" }
                if text.hasPrefix(" ") { text.removeFirst() }
                comments.append(text)
                newlinesSinceComment = 0
            } else if scalar == "/" && peek(1) == "*" {
                let start = here
                advance()
                advance()
                var text = String.UnicodeScalarView()
                while !(peek() == "*" && peek(1) == "/") {
                    guard let inside = peek() else { throw SchemaError("unterminated comment: '/*' has no closing '*/'", at: start) }
                    text.append(inside)
                    advance()
                }
                advance()
                advance()
                // ` * ` margins and trailing spaces go; so do the empty lines of `/*` and ` */` themselves.
                var lines = String(text).split(separator: "\n", omittingEmptySubsequences: false).map { line in
                    var line = Substring(line.drop { $0 == " " || $0 == "*" })
                    while line.last == " " || line.last == "\t" || line.last == "\r" { line.removeLast() }
                    return String(line)
                }
                while lines.first?.isEmpty == true { lines.removeFirst() }
                while lines.last?.isEmpty == true { lines.removeLast() }
                comments += lines
                newlinesSinceComment = 0
            } else {
                break
            }
        }
        return comments
    }

    private mutating func readInteger(at location: SourceLocation) throws(SchemaError) -> UInt64 {
        let text = readWhile { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_" || $0 == ".") }
        let value: UInt64?
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            value = UInt64(text.dropFirst(2), radix: 16)
        } else if text.count > 1 && text.hasPrefix("0") {
            value = UInt64(text.dropFirst(), radix: 8)
        } else {
            value = UInt64(text, radix: 10)
        }
        guard let value else {
            if text.allSatisfy({ $0.isNumber }) {
                throw SchemaError("number '\(text)' is too large", at: location)
            }
            throw SchemaError("'\(text)' is not a whole number (only integers are used in this schema subset)", at: location)
        }
        return value
    }

    private mutating func readString(at location: SourceLocation) throws(SchemaError) -> String {
        let quote = scalars[index]
        advance()
        var text = String.UnicodeScalarView()
        while true {
            guard let scalar = peek(), scalar != "\n" else {
                throw SchemaError("unterminated string: missing closing \(quote) before the end of the line", at: location)
            }
            advance()
            if scalar == quote { return String(text) }
            if scalar == "\\" {
                guard let escaped = peek(), escaped != "\n" else { continue }
                advance()
                switch escaped {
                case "n": text.append("\n")
                case "t": text.append("\t")
                case "r": text.append("\r")
                case "0": text.append("\0")
                default: text.append(escaped)
                }
            } else {
                text.append(scalar)
            }
        }
    }
}
