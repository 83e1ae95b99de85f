/// How schema names become Swift names.
///
/// - Fields and oneofs: `snake_case` becomes `lowerCamelCase`; the words `id`, `url`, `uri`, `uuid`, `http`,
///   `json`, `ip`, `tcp` and `api` are written in capitals after the first word (`worker_id` → `workerID`).
/// - Enum cases: the prefix every value shares (normally the enum's name in SCREAMING_SNAKE_CASE) is
///   dropped, then the rest is camel-cased (`UPDATE_KIND_GRADIENT` → `gradient`, `CODE_NOT_FINITE` → `notFinite`).
/// - Oneofs: the property keeps the camel-cased name, its enum type is capitalised (`body` → `Body`).
/// - Swift keywords are escaped with backticks; `self`, `Type`, `init`, names of generated members
///   (`unknownFields`, `serializedSize`, `rawValue`, `unrecognized`...) get a `_` suffix.
enum SwiftNaming {
    private static let acronyms: Set<String> = ["id", "url", "uri", "uuid", "http", "json", "ip", "tcp", "api"]

    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
        "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows",
        "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue", "default",
        "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch",
        "where", "while", "Any", "as", "await", "false", "is", "nil", "self", "Self", "super", "throws", "true",
        "try", "Type", "some", "any", "consume", "copy", "borrowing", "consuming",
    ]

    /// Names that mean something after a dot even in backticks (`message.self`), or that generated code
    /// declares itself (`serializedSize()`, `unknownFields`, an enum's `rawValue` and `unrecognized`);
    /// they get a `_` suffix.
    private static let reservedMemberNames: Set<String> = [
        "self", "Self", "Type", "Protocol", "init", "deinit", "subscript",
        "serializedSize", "serializedBytes", "unknownFields", "rawValue", "unrecognized", "allCases",
    ]

    /// `worker_id` → `workerID`; `self` → `self_`.
    static func propertyName(_ name: String) -> String {
        let words = name.split(separator: "_").map { word in
            // `worker_id` and `WORKER_ID` are lowercased word by word; `workerID` keeps its inner capitals.
            word.allSatisfy { !$0.isLowercase } ? word.lowercased() : word.prefix(1).lowercased() + word.dropFirst()
        }
        let name = camelCase(words, capitalizeFirst: false)
        return reservedMemberNames.contains(name) ? name + "_" : name
    }

    /// `work_unit` → `WorkUnit`.
    static func typeName(_ name: String) -> String {
        let words = name.split(separator: "_").map(String.init)
        return words.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// A name escaped with backticks when it is a keyword.
    static func escaped(_ name: String) -> String {
        keywords.contains(name) ? "`\(name)`" : name
    }

    /// Case names for an enum's values, with their common SCREAMING prefix removed.
    static func enumCaseNames(_ values: [String], enumName: String) -> [String] {
        let prefix = commonPrefix(values, enumName: enumName)
        return values.map { value in
            let name = camelCase(value.dropFirst(prefix.count).split(separator: "_").map { $0.lowercased() }, capitalizeFirst: false)
            return reservedMemberNames.contains(name) ? name + "_" : name
        }
    }

    /// The enum's name in SCREAMING_SNAKE_CASE plus `_` when every value starts with it; otherwise the
    /// longest prefix ending in `_` that all (two or more) values share. Never a prefix that would leave a
    /// value empty or starting with a digit.
    private static func commonPrefix(_ values: [String], enumName: String) -> String {
        func fits(_ prefix: String) -> Bool {
            !prefix.isEmpty && values.allSatisfy { value in
                value.hasPrefix(prefix) && value.count > prefix.count
                    && !(value.dropFirst(prefix.count).first?.isNumber ?? true)
            }
        }
        let screaming = screamingSnakeCase(enumName) + "_"
        if fits(screaming) { return screaming }
        guard values.count > 1, var shared = values.first.map({ Substring($0) }) else { return "" }
        for value in values.dropFirst() {
            shared = shared.prefix(zip(shared, value).prefix { $0 == $1 }.count)
        }
        guard let underscore = shared.lastIndex(of: "_") else { return "" }
        let prefix = String(shared[...underscore])
        return fits(prefix) ? prefix : ""
    }

    /// `UpdateKind` → `UPDATE_KIND`.
    static func screamingSnakeCase(_ name: String) -> String {
        var result = ""
        var previous: Character?
        for character in name {
            if character.isUppercase, let previous, previous.isLowercase || previous.isNumber {
                result.append("_")
            }
            result += character.uppercased()
            previous = character
        }
        return result
    }

    private static func camelCase(_ words: [String], capitalizeFirst: Bool) -> String {
        var result = ""
        for (index, word) in words.enumerated() {
            if index == 0 && !capitalizeFirst {
                result += word
            } else if acronyms.contains(word) {
                result += word.uppercased()
            } else {
                result += word.prefix(1).uppercased() + word.dropFirst()
            }
        }
        return result.isEmpty ? "_" : result
    }
}
