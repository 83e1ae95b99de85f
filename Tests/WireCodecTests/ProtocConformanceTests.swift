import Testing
import WireCodec

/// A named message for parameterised tests, so that the test log shows the name and not the values.
struct NamedMessage: CustomTestStringConvertible, Sendable {
    var name: String
    var message: Everything
    var testDescription: String { name }
}

@Suite("Downpour and protoc agree byte for byte")
struct ProtocConformanceTests {
    static let megabyte = 1 << 20

    static let edgeCases: [NamedMessage] = [
        NamedMessage(name: "all defaults", message: Everything()),
        NamedMessage(name: "minus one and one", message: Everything(scalars: Scalars(
            fDouble: -1, fFloat: -1, fInt32: -1, fInt64: -1, fUint32: 1, fUint64: 1, fSint32: -1, fSint64: -1,
            fFixed32: 1, fFixed64: 1, fSfixed32: -1, fSfixed64: -1, fBool: true, fString: "x", fBytes: [0], fColor: .infrared
        ))),
        NamedMessage(name: "maximum of every width", message: Everything(scalars: Scalars(
            fDouble: .greatestFiniteMagnitude, fFloat: .greatestFiniteMagnitude, fInt32: .max, fInt64: .max,
            fUint32: .max, fUint64: .max, fSint32: .max, fSint64: .max, fFixed32: .max, fFixed64: .max,
            fSfixed32: .max, fSfixed64: .max, fColor: .green
        ))),
        NamedMessage(name: "minimum of every width", message: Everything(scalars: Scalars(
            fDouble: -.greatestFiniteMagnitude, fFloat: .leastNonzeroMagnitude, fInt32: .min, fInt64: .min,
            fSint32: .min, fSint64: .min, fSfixed32: .min, fSfixed64: .min
        ))),
        NamedMessage(name: "infinities", message: Everything(scalars: Scalars(fDouble: -.infinity, fFloat: .infinity))),
        NamedMessage(name: "negative zero", message: Everything(scalars: Scalars(fDouble: -0.0, fFloat: -0.0))),
        NamedMessage(name: "NaN", message: Everything(scalars: Scalars(fDouble: .nan, fFloat: .nan))),
        NamedMessage(name: "zeros and empties with explicit presence", message: Everything(optionals: OptionalScalars(
            fDouble: 0, fFloat: 0, fInt32: 0, fInt64: 0, fUint32: 0, fUint64: 0, fSint32: 0, fSint64: 0, fFixed32: 0,
            fFixed64: 0, fSfixed32: 0, fSfixed64: 0, fBool: false, fString: "", fBytes: [], fColor: .unspecified
        ))),
        NamedMessage(name: "1 MB string and bytes", message: Everything(scalars: Scalars(
            fString: String(repeating: "é", count: megabyte / 2), fBytes: (0..<megabyte).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        ))),
        NamedMessage(name: "non-ASCII text", message: Everything(scalars: Scalars(fString: "héllo wörld, 日本語, 🙂👍🏽"))),
        NamedMessage(name: "empty repeated fields", message: Everything(lists: RepeatedScalars())),
        NamedMessage(name: "large repeated fields", message: Everything(lists: RepeatedScalars(
            fDouble: (0..<10_000).map { Double($0) / 3 }, fFloat: (0..<300_000).map { Float($0) * 0.25 - 7 },
            fInt32: (0..<10_000).map { Int32($0) - 5000 }, fInt64: (0..<1000).map { Int64($0) << 40 },
            fUint32: (0..<1000).map { UInt32($0) * 4_000_000 }, fUint64: (0..<1000).map { UInt64($0) << 50 },
            fSint32: (-500..<500).map { Int32($0) }, fSint64: (-500..<500).map { Int64($0) * 1_000_000_007 },
            fFixed32: (0..<1000).map { UInt32($0) }, fFixed64: (0..<1000).map { UInt64($0) },
            fSfixed32: (-500..<500).map { Int32($0) }, fSfixed64: (-500..<500).map { Int64($0) },
            fBool: (0..<1000).map { $0 % 3 == 0 }, fString: (0..<1000).map { "s\($0)" }, fBytes: [[], [1], [2, 3]],
            fColor: [.red, .infrared, .unspecified, .green]
        ))),
        NamedMessage(name: "oneof text", message: Everything(choice: .choiceText(""))),
        NamedMessage(name: "oneof number", message: Everything(choice: .choiceNumber(0))),
        NamedMessage(name: "oneof point", message: Everything(choice: .choicePoint(Point(x: -1, y: .min)))),
        NamedMessage(name: "oneof enum", message: Everything(choice: .choiceColor(.infrared))),
        NamedMessage(name: "maps with one entry", message: Everything(
            counts: ["héllo": -1], points: [UInt64.max: Point(x: 1, y: -1)], flags: [true: ""], colors: [-1: .infrared]
        )),
        NamedMessage(name: "map entries holding defaults", message: Everything(
            counts: ["": 0], points: [0: Point()], flags: [false: ""], colors: [0: .unspecified]
        )),
        NamedMessage(name: "nested and recursive messages", message: Everything(
            nested: deepNested(10), tree: deepTree(60)
        )),
        NamedMessage(name: "keyword fields and extreme field numbers", message: Everything(
            nested: Everything.Nested(mood: .unrecognized_, children: [Everything.Nested(mood: .rawValue_)]),
            default: "d", self_: true, unknownFields_: true, serializedSize_: 7,
            justBelowProtobufRange: 1, justAboveProtobufRange: -1, largestFieldNumber: .max
        )),
    ]

    static func deepNested(_ depth: Int) -> Everything.Nested {
        depth == 0 ? Everything.Nested(mood: .angry) : Everything.Nested(children: [deepNested(depth - 1), Everything.Nested()])
    }

    static func deepTree(_ depth: Int) -> Tree {
        depth == 0 ? Tree(label: "leaf", extra: .leaf(-1)) : Tree(label: "\(depth)", left: deepTree(depth - 1), extra: depth % 2 == 0 ? .only(Tree()) : nil)
    }

    /// protoc decodes Downpour's bytes and, encoding the same values, produces the same bytes.
    static func expectProtocReencodesSameBytes(_ message: Everything) throws {
        let ours = message.serializedBytes()
        let text = try Protoc.decode(ours, as: "Everything")
        let theirs = try Protoc.encode(text, as: "Everything")
        #expect(theirs == ours, "protoc's bytes differ from Downpour's for:\n\(text.prefix(2000))")
    }

    @Test("edge cases: Downpour encodes, protoc decodes and re-encodes the same bytes", arguments: edgeCases)
    func edgeCaseThroughProtoc(_ named: NamedMessage) throws {
        try Self.expectProtocReencodesSameBytes(named.message)
    }

    @Test("edge cases: Downpour decodes its own bytes back to the same message", arguments: edgeCases)
    func edgeCaseRoundTrip(_ named: NamedMessage) throws {
        let bytes = named.message.serializedBytes()
        let decoded = try Everything(serializedBytes: bytes)
        // NaN is not equal to itself, so compare the bytes of the decoded message too.
        #expect(decoded.serializedBytes() == bytes)
        if named.name != "NaN" { #expect(decoded == named.message) }
    }

    @Test("protoc encodes text, Downpour decodes the same values and encodes the same bytes")
    func protocToDownpour() throws {
        let text = """
            scalars { f_double: -0.5 f_float: 3.25 f_int32: -1 f_int64: -9223372036854775808 f_uint32: 4294967295
              f_uint64: 18446744073709551615 f_sint32: -2147483648 f_sint64: 9223372036854775807 f_fixed32: 7
              f_fixed64: 8 f_sfixed32: -9 f_sfixed64: -10 f_bool: true f_string: "h\\303\\251llo \\360\\237\\231\\202"
              f_bytes: "\\000\\377" f_color: COLOR_INFRARED }
            optionals { f_int32: 0 f_string: "" f_color: COLOR_UNSPECIFIED }
            lists { f_float: [1, -2, inf, -inf] f_sint64: [-1, 1] f_string: ["", "a"] f_color: [COLOR_RED, COLOR_INFRARED] }
            choice_point { x: -2 y: 3 }
            counts { key: "a" value: 1 }
            nested { mood: MOOD_ANGRY children { children { mood: MOOD_ANGRY } } }
            tree { left { left { label: "deep" } } only { leaf: 5 } }
            default: "keyword" self: true largest_field_number: 2147483647
            """
        let theirs = try Protoc.encode(text, as: "Everything")
        let decoded = try Everything(serializedBytes: theirs)
        let expected = Everything(
            scalars: Scalars(
                fDouble: -0.5, fFloat: 3.25, fInt32: -1, fInt64: .min, fUint32: .max, fUint64: .max, fSint32: .min,
                fSint64: .max, fFixed32: 7, fFixed64: 8, fSfixed32: -9, fSfixed64: -10, fBool: true,
                fString: "héllo 🙂", fBytes: [0, 255], fColor: .infrared
            ),
            optionals: OptionalScalars(fInt32: 0, fString: "", fColor: .unspecified),
            lists: RepeatedScalars(fFloat: [1, -2, .infinity, -.infinity], fSint64: [-1, 1], fString: ["", "a"], fColor: [.red, .infrared]),
            choice: .choicePoint(Point(x: -2, y: 3)),
            counts: ["a": 1],
            nested: Everything.Nested(mood: .angry, children: [Everything.Nested(children: [Everything.Nested(mood: .angry)])]),
            tree: Tree(left: Tree(left: Tree(label: "deep")), extra: .only(Tree(extra: .leaf(5)))),
            default: "keyword", self_: true, largestFieldNumber: .max
        )
        #expect(decoded == expected)
        #expect(decoded.serializedBytes() == theirs)
    }

    @Test("random messages with single-entry maps: protoc re-encodes the same bytes", arguments: 0..<24)
    func randomThroughProtoc(seed: UInt64) throws {
        var random = RandomMessages(seed: seed)
        random.maxMapEntries = 1
        try Self.expectProtocReencodesSameBytes(random.everything())
    }

    @Test("random messages with larger maps: protoc keeps every value", arguments: 0..<6)
    func randomMapsThroughProtoc(seed: UInt64) throws {
        var random = RandomMessages(seed: 1000 + seed)
        random.maxMapEntries = 8
        let message = random.everything()
        let text = try Protoc.decode(message.serializedBytes(), as: "Everything")
        #expect(try Everything(serializedBytes: Protoc.encode(text, as: "Everything")) == message)
    }

    @Test("unknown fields: protoc sees every field an older schema relayed")
    func unknownFieldsThroughProtoc() throws {
        var random = RandomMessages(seed: 77)
        random.maxMapEntries = 1
        let message = random.everything()
        let relayed = try EverythingV1(serializedBytes: message.serializedBytes()).serializedBytes()
        #expect(relayed == message.serializedBytes())
        let text = try Protoc.decode(relayed, as: "Everything")
        #expect(try Protoc.encode(text, as: "Everything") == relayed)
    }
}
