/// The scalar types of proto3.
public enum ScalarType: String, CaseIterable, Sendable {
    case double, float, int32, int64, uint32, uint64, sint32, sint64
    case fixed32, fixed64, sfixed32, sfixed64, bool, string, bytes

    /// Whether a map may be keyed by this type: integers, `bool` and `string`.
    var isValidMapKey: Bool {
        switch self {
        case .double, .float, .bytes: false
        default: true
        }
    }
}

/// A type named in a field declaration, before and after resolution.
final class TypeReference {
    enum Resolved {
        case scalar(ScalarType)
        case message(MessageDecl)
        case enumeration(EnumDecl)
    }

    let name: String
    let location: SourceLocation
    var resolved: Resolved?

    init(name: String, location: SourceLocation) {
        self.name = name
        self.location = location
        self.resolved = ScalarType(rawValue: name).map { .scalar($0) }
    }
}

/// `reserved 2, 15, 9 to 11;` or `reserved "foo", "bar";`.
struct ReservedRange {
    var range: ClosedRange<Int>
    var location: SourceLocation
}

struct ReservedName {
    var name: String
    var location: SourceLocation
}

/// A field of a message, a oneof member, or a map.
final class FieldDecl {
    enum Label { case singular, optional, repeated }

    let name: String
    let number: Int
    let label: Label
    let type: TypeReference
    /// The key type when the field is a `map<K, V>`; `type` is then the value type.
    let mapKey: TypeReference?
    let comments: [String]
    let location: SourceLocation
    let numberLocation: SourceLocation
    weak var oneof: OneofDecl?

    init(
        name: String, number: Int, label: Label, type: TypeReference, mapKey: TypeReference?,
        comments: [String], location: SourceLocation, numberLocation: SourceLocation
    ) {
        self.name = name
        self.number = number
        self.label = label
        self.type = type
        self.mapKey = mapKey
        self.comments = comments
        self.location = location
        self.numberLocation = numberLocation
    }
}

final class OneofDecl {
    let name: String
    let comments: [String]
    let location: SourceLocation
    var fields: [FieldDecl] = []

    init(name: String, comments: [String], location: SourceLocation) {
        self.name = name
        self.comments = comments
        self.location = location
    }
}

/// What messages and enums share: a name in a scope, and reserved numbers and names.
class TypeDecl {
    let name: String
    let comments: [String]
    let location: SourceLocation
    /// The name with the package and enclosing messages, such as `downpour.ErrorReport.Code`.
    var fullName = ""
    /// The enclosing messages' names and this one's, as Swift spells the nested type; the outermost
    /// carries the type prefix, if any (`Downpour_ErrorReport`, `Code`).
    var swiftPath: [String] = []
    /// The name this type is declared with in Swift: its own, prefixed when it is top-level.
    var swiftName: String { swiftPath.last ?? name }
    weak var parent: MessageDecl?
    weak var file: SchemaFile?
    var reservedRanges: [ReservedRange] = []
    var reservedNames: [ReservedName] = []

    init(name: String, comments: [String], location: SourceLocation) {
        self.name = name
        self.comments = comments
        self.location = location
    }
}

final class MessageDecl: TypeDecl {
    /// Fields in declaration order, oneof members included.
    var fields: [FieldDecl] = []
    var oneofs: [OneofDecl] = []
    var messages: [MessageDecl] = []
    var enums: [EnumDecl] = []
}

struct EnumValueDecl {
    var name: String
    var number: Int
    var comments: [String]
    var location: SourceLocation
}

final class EnumDecl: TypeDecl {
    var values: [EnumValueDecl] = []
}

struct ImportDecl {
    var path: String
    var location: SourceLocation
}

/// One parsed `.proto` file.
final class SchemaFile {
    let path: String
    var comments: [String] = []
    var package = ""
    var imports: [ImportDecl] = []
    var messages: [MessageDecl] = []
    var enums: [EnumDecl] = []

    init(path: String) {
        self.path = path
    }
}
