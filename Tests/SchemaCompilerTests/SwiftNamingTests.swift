import SchemaCompiler
import Testing

@Suite("Schema names become idiomatic Swift names")
struct SwiftNamingTests {
    /// Compiles a one-message schema and returns the generated Swift.
    static func generate(_ body: String) throws -> String {
        let source = "syntax = \"proto3\";\n\(body)\n"
        return try #require(try SchemaCompiler { _ in source }.compile(["n.proto"]).first).contents
    }

    @Test("fields are lowerCamelCase with capitalised acronyms", arguments: [
        ("worker_id", "workerID"), ("unix_nanos", "unixNanos"), ("url_path", "urlPath"), ("session_uuid", "sessionUUID"),
        ("x", "x"), ("heartbeat_interval_ms", "heartbeatIntervalMs"), ("workerId", "workerId"), ("default", "`default`"),
        ("self", "self_"), ("type", "type"), ("class", "`class`"),
    ])
    func fieldNames(field: String, swift: String) throws {
        let code = try Self.generate("message M { int32 \(field) = 1; }")
        #expect(code.contains("public var \(swift): Int32 = 0"))
    }

    @Test("enum cases lose their common prefix", arguments: [
        ("UpdateKind", ["UPDATE_KIND_GRADIENT", "UPDATE_KIND_DELTA"], ["gradient", "delta"]),
        ("Code", ["CODE_UNSPECIFIED", "CODE_NOT_FINITE"], ["unspecified", "notFinite"]),
        ("Mood", ["CALM", "ANGRY"], ["calm", "angry"]),
        ("Shade", ["COLOR_DARK", "COLOR_LIGHT_GRAY"], ["dark", "lightGray"]),
        ("Level", ["LEVEL_1", "LEVEL_2"], ["level1", "level2"]),
        ("Only", ["ONLY_VALUE"], ["value"]),
        ("Kw", ["KW_DEFAULT", "KW_SELF"], ["`default`", "self_"]),
    ])
    func enumCases(name: String, values: [String], cases: [String]) throws {
        let body = values.enumerated().map { "\($0.element) = \($0.offset);" }.joined(separator: " ")
        let code = try Self.generate("enum \(name) { \(body) }")
        for swiftCase in cases {
            #expect(code.contains("    case \(swiftCase)\n"), "missing case \(swiftCase) in:\n\(code)")
        }
    }

    @Test("comments right above a declaration become its doc comment; trailing ones do not")
    func comments() throws {
        let code = try Self.generate("""
            // A message.
            message M {
              int32 a = 1; // trailing, about a

              // Detached by the blank line below.

              // About b,
              // on two lines.
              int32 b = 2;
              /* About c. */
              int32 c = 3;
            }
            """)
        #expect(code.contains("/// A message.\npublic struct M"))
        #expect(code.contains("    public var a: Int32 = 0\n    /// About b,\n    /// on two lines.\n    public var b: Int32 = 0\n    /// About c.\n    public var c"))
        #expect(!code.contains("trailing"))
        #expect(!code.contains("Detached"))
    }

    @Test("a oneof becomes an optional property of a nested enum")
    func oneof() throws {
        let code = try Self.generate("message A {}\nmessage E { oneof body { A hello = 1; string work_unit = 2; } }")
        #expect(code.contains("public enum Body: Hashable, Sendable {\n        case hello(A)\n        case workUnit(String)\n    }"))
        #expect(code.contains("public var body: Body? = nil"))
    }

    @Test("nested types are nested; recursive fields are boxed")
    func nesting() throws {
        let code = try Self.generate("message Outer { message Inner { Outer back = 1; } Inner inner = 1; enum Kind { KIND_A = 0; } Kind kind = 2; }")
        #expect(code.contains("public struct Outer: WireMessage, Hashable {\n    public enum Kind: WireEnum, CaseIterable {"))
        #expect(code.contains("    public struct Inner: WireMessage, Hashable {"))
        #expect(code.contains("private var _inner: WireIndirect<Outer.Inner>? = nil"))
        #expect(code.contains("public var kind: Outer.Kind = .a"))
        #expect(code.contains("extension Outer.Inner {"))
    }
}
