import Foundation
import SchemaCompiler
import Testing

@Suite("--type-prefix names every generated type so it cannot clash")
struct TypePrefixTests {
    /// Two schemas, one importing the other: top-level messages and an enum, a nested message and a
    /// nested enum, and every kind of reference to them (singular, repeated, map value, oneof, a
    /// recursive boxed field, an enum default).
    static let schemas = [
        "shapes.proto": """
            syntax = "proto3";
            package demo;
            enum Color { COLOR_RED = 0; COLOR_GREEN = 1; }
            message Point { float x = 1; Color color = 2; }
            """,
        "scene.proto": """
            syntax = "proto3";
            package demo;
            import "shapes.proto";
            message Scene {
              message Layer { Point origin = 1; Kind kind = 2; }
              enum Kind { KIND_FLAT = 0; KIND_DEEP = 1; }
              Layer top = 1;
              repeated Layer layers = 2;
              map<string, Point> named = 3;
              Color color = 4;
              Kind kind = 5;
              oneof body { Point point = 6; Scene child = 7; }
              Scene parent = 8;
            }
            """,
    ]

    static func compile(prefix: String) throws -> [String: String] {
        let files = try SchemaCompiler(typePrefix: prefix) { schemas[$0] }.compile(["shapes.proto", "scene.proto"])
        return Dictionary(uniqueKeysWithValues: files.map { ($0.name, $0.contents) })
    }

    @Test("top-level types are prefixed, nested ones are reached through them, and proto names stay")
    func declarationsAndReferences() throws {
        let files = try Self.compile(prefix: "Demo_")
        let shapes = try #require(files["shapes.pb.swift"])
        let scene = try #require(files["scene.pb.swift"])
        #expect(shapes.contains("public enum Demo_Color: WireEnum, CaseIterable {"))
        #expect(shapes.contains("public static let allCases: [Demo_Color] = [.red, .green]"))
        #expect(shapes.contains("public struct Demo_Point: WireMessage, Hashable {"))
        #expect(shapes.contains("public var color: Demo_Color = .red"))
        #expect(shapes.contains("extension Demo_Point {"))

        #expect(scene.contains("public struct Demo_Scene: WireMessage, Hashable {"))
        #expect(scene.contains("    public enum Kind: WireEnum, CaseIterable {"))
        #expect(scene.contains("    public struct Layer: WireMessage, Hashable {"))
        #expect(scene.contains("public var origin: Demo_Point? = nil"))
        #expect(scene.contains("public var kind: Demo_Scene.Kind = .flat"))
        #expect(scene.contains("public var layers: [Demo_Scene.Layer] = []"))
        #expect(scene.contains("public var named: [String: Demo_Point] = [:]"))
        #expect(scene.contains("case point(Demo_Point)"))
        #expect(scene.contains("indirect case child(Demo_Scene)"))
        #expect(scene.contains("private var _parent: WireIndirect<Demo_Scene>? = nil"))
        #expect(scene.contains("extension Demo_Scene.Layer {"))
        #expect(scene.contains("ProtoMessage<Demo_Scene.Layer>"))
        #expect(scene.contains("ProtoEnum<Demo_Color>"))
        // Decoding errors name the schema's types, whatever Swift calls them.
        #expect(scene.contains("throw error.inMessage(\"demo.Scene.Layer\")"))
    }

    @Test("the prefix is the only difference: every use of a top-level type's name carries it")
    func onlyTheNamesChange() throws {
        let plain = try Self.compile(prefix: "")
        let prefixed = try Self.compile(prefix: "Demo_")
        // A top-level name used as a Swift name: not part of a longer word, a member (`.red`) or a
        // proto name in a string literal (`"demo.Scene"`).
        let bareName = try NSRegularExpression(pattern: #"(?<![\w."])(Scene|Point|Color)\b"#)
        for (name, code) in plain {
            let range = NSRange(code.startIndex..., in: code)
            let expected = bareName.stringByReplacingMatches(in: code, range: range, withTemplate: "Demo_$1")
            #expect(expected != code, "\(name) names no top-level type")
            #expect(prefixed[name] == expected, "\(name) differs from its plain version by more than the prefix")
        }
    }

    @Test("without a prefix the output is what it always was")
    func defaultIsUnprefixed() throws {
        let files = try Self.compile(prefix: "")
        let unprefixed = try SchemaCompiler { Self.schemas[$0] }.compile(["shapes.proto", "scene.proto"])
        #expect(unprefixed.map(\.contents) == ["shapes.pb.swift", "scene.pb.swift"].map { files[$0] })
        #expect(files["scene.pb.swift"]?.contains("public struct Scene: WireMessage, Hashable {") == true)
    }

    @Test("a prefix must be able to start a Swift identifier", arguments: [
        ("", true), ("Downpour_", true), ("PS", true), ("_x", true), ("Ps2", true),
        ("9a", false), ("a-b", false), ("a b", false), ("é", false), ("Ps.", false),
    ])
    func validity(prefix: String, valid: Bool) {
        #expect(SchemaCompiler.isValidTypePrefix(prefix) == valid)
    }
}
