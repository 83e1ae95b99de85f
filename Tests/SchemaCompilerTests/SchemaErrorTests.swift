import SchemaCompiler
import Testing

/// A schema with one mistake and the error ps-codegen must report for it.
struct BadSchema: CustomTestStringConvertible, Sendable {
    var name: String
    var source: String
    var error: String
    var testDescription: String { name }

    /// A schema whose body goes inside `message M { ... }` after the syntax line.
    static func inMessage(_ name: String, _ body: String, _ error: String) -> BadSchema {
        BadSchema(name: name, source: "syntax = \"proto3\";\nmessage M {\n\(body)\n}\n", error: error)
    }
}

@Suite("Schema errors read file:line:column: message")
struct SchemaErrorTests {
    static func compile(_ files: [String: String], _ paths: [String] = ["t.proto"]) -> String? {
        do throws(SchemaErrors) {
            _ = try SchemaCompiler { files[$0] }.compile(paths)
            return nil
        } catch {
            return error.description
        }
    }

    static let cases: [BadSchema] = [
        .inMessage("unknown type", "  Foo foo = 1;", "t.proto:3:3: unknown type 'Foo'"),
        .inMessage("duplicate field number", "  int32 a = 1;\n  int32 b = 1;", "t.proto:4:13: field number 1 is already used by field 'a' at t.proto:3:9"),
        .inMessage("duplicate field name", "  int32 a = 1;\n  string a = 2;", "t.proto:4:10: field name 'a' is already used at t.proto:3:9"),
        .inMessage("field number 0", "  int32 a = 0;", "t.proto:3:13: field number 0 is out of range: field numbers go from 1 to 536870911"),
        .inMessage("field number above 2^29 - 1", "  int32 a = 536870912;", "t.proto:3:13: field number 536870912 is out of range: field numbers go from 1 to 536870911"),
        .inMessage("field number in protobuf's range", "  int32 a = 19500;", "t.proto:3:13: field number 19500 is in 19000 to 19999, which protobuf reserves for itself"),
        .inMessage("reserved number in use", "  reserved 4 to 6;\n  int32 a = 5;", "t.proto:4:13: field 'a' uses number 5, which is reserved (at t.proto:3:12)"),
        .inMessage("reserved name in use", "  reserved \"a\";\n  int32 a = 1;", "t.proto:4:9: field name 'a' is reserved (at t.proto:3:12)"),
        .inMessage("missing semicolon", "  int32 a = 1\n  int32 b = 2;", "t.proto:3:14: missing ';' after '1'"),
        .inMessage("number too large to read", "  int32 a = 99999999999999999999;", "t.proto:3:13: number '99999999999999999999' is too large"),
        .inMessage("map keyed by float", "  map<float, string> m = 1;", "t.proto:3:7: a map key must be an integer, bool or string type, not 'float'"),
        .inMessage("map keyed by a message", "  map<M, string> m = 1;", "t.proto:3:7: a map key must be an integer, bool or string type, not 'M'"),
        .inMessage("required label", "  required int32 a = 1;", "t.proto:3:3: 'required' does not exist in proto3; fields are optional by default"),
        .inMessage("field options", "  repeated int32 a = 1 [packed = false];", "t.proto:3:24: field options in '[...]' are not supported by ps-codegen's schema subset"),
        .inMessage("empty oneof", "  oneof o {}", "t.proto:3:9: oneof 'o' must have at least one field"),
        .inMessage("repeated in a oneof", "  oneof o { repeated int32 a = 1; }", "t.proto:3:13: a oneof field cannot be 'repeated'"),
        .inMessage("enum not starting at 0", "  enum E { E_A = 1; }", "t.proto:3:12: the first value of a proto3 enum must be 0, so that it is the default; 'E_A' is 1"),
        .inMessage("duplicate enum number", "  enum E { E_A = 0; E_B = 0; }", "t.proto:3:21: enum value 0 is already used by 'E_A' at t.proto:3:12 (aliases are not supported)"),
        .inMessage("enum values clashing across enums", "  enum E { X = 0; }\n  enum F { X = 0; }", "t.proto:4:12: enum value 'X' is already defined in enum 'E' at t.proto:3:12; enum values share their enum's scope (message 'M')"),
        .inMessage("enum value out of int32", "  enum E { A = 2147483648; }", "t.proto:3:16: enum value 2147483648 does not fit in int32"),
        .inMessage("reserved enum value", "  enum E { reserved 1; A = 0; B = 1; }", "t.proto:3:31: enum value 'B' uses 1, which is reserved (at t.proto:3:21)"),
        .inMessage("message shadowing a Swift type", "  message String {}", "t.proto:3:11: the name 'String' would shadow a Swift or WireCodec type in generated code; choose another"),
        .inMessage("names that clash in Swift", "  int32 worker_id = 1;\n  int32 workerID = 2;", "t.proto:4:9: fields 'worker_id' and 'workerID' would both be named 'workerID' in Swift"),
        BadSchema(name: "unclosed message", source: "syntax = \"proto3\";\nmessage M {\n  int32 a = 1;\n", error: "t.proto:4:1: message 'M' is not closed: missing '}'"),
        .inMessage("unexpected character", "  int32 a = 1; @", "t.proto:3:16: unexpected character '@'"),
        BadSchema(name: "unterminated string", source: "syntax = \"proto3;\n", error: "t.proto:1:10: unterminated string: missing closing \" before the end of the line"),
        BadSchema(name: "unterminated comment", source: "syntax = \"proto3\";\n/* never closed\n", error: "t.proto:2:1: unterminated comment: '/*' has no closing '*/'"),
        BadSchema(name: "proto2", source: "syntax = \"proto2\";\n", error: "t.proto:1:10: only syntax \"proto3\" is supported, not \"proto2\""),
        BadSchema(name: "no syntax line", source: "message M {}\n", error: "t.proto:1:1: a schema must start with 'syntax = \"proto3\";'"),
        BadSchema(name: "options", source: "syntax = \"proto3\";\noption java_package = \"x\";\n", error: "t.proto:2:1: options are not supported by ps-codegen's schema subset"),
        BadSchema(name: "services", source: "syntax = \"proto3\";\nservice S {}\n", error: "t.proto:2:1: services are not supported: ps-codegen generates messages only"),
        BadSchema(name: "missing import", source: "syntax = \"proto3\";\nimport \"gone.proto\";\n", error: "t.proto:2:1: cannot find imported schema 'gone.proto'"),
        BadSchema(name: "duplicate message", source: "syntax = \"proto3\";\nmessage A {}\nmessage A {}\n", error: "t.proto:3:9: 'A' is already defined at t.proto:2:9"),
    ]

    @Test("each mistake is reported where it is, in words", arguments: cases)
    func badSchema(_ schema: BadSchema) {
        #expect(Self.compile(["t.proto": schema.source]) == schema.error)
    }

    @Test("every error in a file is reported, in order")
    func severalErrors() {
        let source = "syntax = \"proto3\";\nmessage M {\n  Foo a = 1;\n  int32 b = 1;\n  Bar c = 19000;\n}\n"
        #expect(Self.compile(["t.proto": source]) == """
            t.proto:3:3: unknown type 'Foo'
            t.proto:4:13: field number 1 is already used by field 'a' at t.proto:3:7
            t.proto:5:3: unknown type 'Bar'
            t.proto:5:11: field number 19000 is in 19000 to 19999, which protobuf reserves for itself
            """)
    }

    @Test("a type from a file that is not imported")
    func notImported() {
        let files = [
            "dir/a.proto": "syntax = \"proto3\";\nmessage A {}\n",
            "dir/b.proto": "syntax = \"proto3\";\nmessage B {\n  A a = 1;\n}\n",
        ]
        #expect(Self.compile(files, ["dir/a.proto", "dir/b.proto"]) == "dir/b.proto:3:3: type 'A' is defined in dir/a.proto, which this file does not import")
        var imported = files
        imported["dir/b.proto"] = "syntax = \"proto3\";\nimport \"a.proto\";\nmessage B {\n  A a = 1;\n}\n"
        #expect(Self.compile(imported, ["dir/b.proto"]) == nil)
    }

    @Test("an unreadable file")
    func unreadable() {
        #expect(Self.compile([:], ["missing.proto"]) == "missing.proto:1:1: cannot read this schema file (missing, unreadable or not UTF-8)")
    }
}
