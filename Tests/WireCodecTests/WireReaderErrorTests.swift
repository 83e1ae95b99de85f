import Testing
import WireCodec

/// A malformed input and the error it must produce.
struct MalformedInput: CustomTestStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var error: WireDecodingError
    var testDescription: String { name }
}

@Suite("WireReader rejects malformed input with a typed error")
struct WireReaderErrorTests {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        return bytes + [UInt8(value)]
    }

    static let cases: [MalformedInput] = [
        MalformedInput(name: "varint cut off", bytes: [0x18, 0x80], error: .truncated),
        MalformedInput(name: "value missing after tag", bytes: [0x18], error: .truncated),
        MalformedInput(name: "fixed32 cut off", bytes: [0x15, 0, 0], error: .truncated),
        MalformedInput(name: "fixed64 cut off", bytes: [0x09, 0, 0, 0, 0, 0, 0, 0], error: .truncated),
        MalformedInput(name: "tag cut off", bytes: [0x80], error: .truncated),
        MalformedInput(name: "varint of eleven bytes", bytes: [0x18] + Array(repeating: 0xFF, count: 10) + [0x01], error: .overlongVarint),
        MalformedInput(name: "double sent as varint", bytes: [0x08, 0x01], error: .wrongWireType(fieldNumber: 1, wireType: .varint)),
        MalformedInput(name: "string sent as fixed32", bytes: [0x75, 0, 0, 0, 0], error: .wrongWireType(fieldNumber: 14, wireType: .fixed32)),
        MalformedInput(name: "length past the end", bytes: [0x72, 0x05, 0x61], error: .lengthPastEnd(length: 5, available: 1)),
        MalformedInput(name: "length of 2^64 - 1", bytes: [0x7A] + varint(.max), error: .lengthPastEnd(length: .max, available: 0)),
        MalformedInput(name: "invalid UTF-8", bytes: [0x72, 0x02, 0xC3, 0x28], error: .invalidUTF8(fieldNumber: 14)),
        MalformedInput(name: "invalid UTF-8 after nine ASCII bytes", bytes: [0x72, 0x0A] + Array("abcdefghi".utf8) + [0xFF], error: .invalidUTF8(fieldNumber: 14)),
        MalformedInput(name: "four-byte UTF-8 cut to three", bytes: [0x72, 0x03, 0xF0, 0x9F, 0x98], error: .invalidUTF8(fieldNumber: 14)),
        MalformedInput(name: "overlong UTF-8 encoding of '/'", bytes: [0x72, 0x02, 0xC0, 0xAF], error: .invalidUTF8(fieldNumber: 14)),
        MalformedInput(name: "UTF-8 surrogate", bytes: [0x72, 0x03, 0xED, 0xA0, 0x80], error: .invalidUTF8(fieldNumber: 14)),
        MalformedInput(name: "field number 0", bytes: [0x00, 0x00], error: .invalidFieldNumber(0)),
        MalformedInput(name: "field number 2^29", bytes: varint(UInt64(1) << 32), error: .invalidFieldNumber(1 << 29)),
        MalformedInput(name: "wire type 6", bytes: [0x0E], error: .invalidWireType(6)),
        MalformedInput(name: "wire type 7", bytes: [0x0F], error: .invalidWireType(7)),
        MalformedInput(name: "end group with no start", bytes: varint(100 << 3 | 4), error: .unmatchedEndGroup(fieldNumber: 100)),
        MalformedInput(name: "group never ended", bytes: varint(100 << 3 | 3) + [0x08, 0x01], error: .truncated),
        MalformedInput(name: "group ended by another field", bytes: varint(100 << 3 | 3) + varint(101 << 3 | 4), error: .unmatchedEndGroup(fieldNumber: 101)),
        MalformedInput(name: "nested length past its parent", bytes: [0x0A, 0x02, 0x72, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65], error: .lengthPastEnd(length: 5, available: 0)),
    ]

    @Test("each malformed input throws its error", arguments: cases)
    func malformed(_ input: MalformedInput) {
        // Most cases are Scalars' fields; the last one is Everything's nested Scalars.
        let decode: () throws(WireDecodingError) -> Void = input.name.hasPrefix("nested")
            ? { () throws(WireDecodingError) in _ = try Everything(serializedBytes: input.bytes) }
            : { () throws(WireDecodingError) in _ = try Scalars(serializedBytes: input.bytes) }
        #expect(throws: input.error) { try decode() }
    }

    @Test("a packed float field whose length is not a multiple of 4")
    func malformedPacked() {
        #expect(throws: WireDecodingError.malformedPackedField(fieldNumber: 2, length: 3)) {
            try RepeatedScalars(serializedBytes: [0x12, 0x03, 1, 2, 3])
        }
    }

    static func nestedTrees(_ depth: Int) -> Tree {
        (0..<depth).reduce(Tree(label: "leaf")) { inner, _ in Tree(left: inner) }
    }

    @Test("nesting deeper than the limit", arguments: [63, 64, 65, 1000])
    func nesting(depth: Int) throws {
        let bytes = Self.nestedTrees(depth).serializedBytes()
        if depth <= 64 {
            #expect(try Tree(serializedBytes: bytes) == Self.nestedTrees(depth))
        } else {
            #expect(throws: WireDecodingError.nestingTooDeep(limit: 64)) { try Tree(serializedBytes: bytes) }
        }
        let generous = WireDecodingOptions(maxDepth: 2000)
        #expect(try Tree(serializedBytes: bytes, options: generous) == Self.nestedTrees(depth))
    }

    @Test("unknown groups nested deeper than the limit")
    func nestedGroups() {
        let start = Self.varint(100 << 3 | 3)
        let bytes = Array(Array(repeating: start, count: 100).joined())
        #expect(throws: WireDecodingError.nestingTooDeep(limit: 64)) { try Scalars(serializedBytes: bytes) }
    }

    @Test("every prefix of a valid message decodes or throws, and never traps")
    func everySplitPoint() throws {
        var random = RandomMessages(seed: 5)
        let bytes = random.everything().serializedBytes()
        var failures = 0
        for end in 0...bytes.count {
            do throws(WireDecodingError) {
                _ = try Everything(serializedBytes: bytes[..<end])
            } catch {
                failures += 1
                switch error {
                case .truncated, .lengthPastEnd: break
                default: Issue.record("a cut at \(end) of \(bytes.count) bytes threw \(error)")
                }
            }
        }
        #expect(failures > 0)
    }
}
