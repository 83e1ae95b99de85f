import Testing
import WireCodec

/// A malformed input and the error it must produce.
struct MalformedInput: CustomTestStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var error: WireDecodingError
    var testDescription: String { name }
}

@Suite("WireReader rejects malformed input with a typed error naming offset, field and message")
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

    /// The error expected from decoding `Scalars` (or another message of the test schema).
    static func error(
        _ reason: WireDecodingError.Reason, at offset: Int, field: Int? = nil, _ wireType: WireType = .varint,
        in message: String = "Scalars"
    ) -> WireDecodingError {
        WireDecodingError(
            reason, offset: offset, field: field.map { WireTag(fieldNumber: $0, wireType: wireType) },
            messageName: "downpour.test." + message
        )
    }

    /// Inputs for `Scalars`; those named "Everything: ..." for `Everything`.
    static let cases: [MalformedInput] = [
        MalformedInput(name: "varint cut off", bytes: [0x18, 0x80], error: error(.truncatedVarint(remaining: 1), at: 1, field: 3)),
        MalformedInput(name: "value missing after tag", bytes: [0x18], error: error(.truncatedVarint(remaining: 0), at: 1, field: 3)),
        MalformedInput(name: "fixed32 cut off", bytes: [0x15, 0, 0], error: error(.truncated(needed: 4, remaining: 2), at: 1, field: 2, .fixed32)),
        MalformedInput(name: "fixed64 cut off", bytes: [0x09] + Array(repeating: 0, count: 7), error: error(.truncated(needed: 8, remaining: 7), at: 1, field: 1, .fixed64)),
        MalformedInput(name: "tag cut off", bytes: [0x18, 0x01, 0x80], error: error(.truncatedVarint(remaining: 1), at: 2)),
        MalformedInput(name: "varint of eleven bytes", bytes: [0x18] + Array(repeating: 0xFF, count: 10) + [0x01], error: error(.overlongVarint, at: 1, field: 3)),
        MalformedInput(name: "length past the end", bytes: [0x72, 0x05, 0x61], error: error(.lengthPastEnd(length: 5, remaining: 1), at: 1, field: 14, .lengthDelimited)),
        MalformedInput(name: "length of 2^64 - 1", bytes: [0x7A] + varint(.max), error: error(.lengthPastEnd(length: .max, remaining: 0), at: 1, field: 15, .lengthDelimited)),
        MalformedInput(name: "invalid UTF-8", bytes: [0x72, 0x02, 0xC3, 0x28], error: error(.invalidUTF8, at: 2, field: 14, .lengthDelimited)),
        MalformedInput(name: "invalid UTF-8 after nine ASCII bytes", bytes: [0x72, 0x0A] + Array("abcdefghi".utf8) + [0xFF], error: error(.invalidUTF8, at: 11, field: 14, .lengthDelimited)),
        MalformedInput(name: "invalid UTF-8 after a valid é", bytes: [0x72, 0x04, 0xC3, 0xA9, 0xC3, 0x28], error: error(.invalidUTF8, at: 4, field: 14, .lengthDelimited)),
        MalformedInput(name: "four-byte UTF-8 cut to three", bytes: [0x72, 0x03, 0xF0, 0x9F, 0x98], error: error(.invalidUTF8, at: 2, field: 14, .lengthDelimited)),
        MalformedInput(name: "overlong UTF-8 encoding of '/'", bytes: [0x72, 0x02, 0xC0, 0xAF], error: error(.invalidUTF8, at: 2, field: 14, .lengthDelimited)),
        MalformedInput(name: "UTF-8 surrogate", bytes: [0x72, 0x03, 0xED, 0xA0, 0x80], error: error(.invalidUTF8, at: 2, field: 14, .lengthDelimited)),
        MalformedInput(name: "field number 0", bytes: [0x00, 0x00], error: error(.invalidFieldNumber(0), at: 0)),
        MalformedInput(name: "tag beyond 32 bits", bytes: [0x18, 0x01] + varint(UInt64(1) << 32), error: error(.invalidFieldNumber(1 << 29), at: 2)),
        MalformedInput(name: "tag of six bytes", bytes: [0x98, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05], error: error(.overlongTag, at: 0)),
        MalformedInput(name: "tag of six bytes cut off", bytes: [0x98, 0x80, 0x80, 0x80, 0x80], error: error(.overlongTag, at: 0)),
        MalformedInput(name: "wire type 6", bytes: [0x0E], error: error(.invalidWireType(6), at: 0)),
        MalformedInput(name: "wire type 7", bytes: [0x0F], error: error(.invalidWireType(7), at: 0)),
        MalformedInput(name: "end group with no start", bytes: varint(100 << 3 | 4), error: error(.unmatchedEndGroup(fieldNumber: 100), at: 0)),
        MalformedInput(name: "known field sent as an end-group tag", bytes: [0x18, 0x01, 0x1C], error: error(.unmatchedEndGroup(fieldNumber: 3), at: 2)),
        MalformedInput(name: "group never ended", bytes: varint(100 << 3 | 3) + [0x08, 0x01], error: error(.unterminatedGroup, at: 0, field: 100, .startGroup)),
        MalformedInput(name: "group ended by another field", bytes: varint(100 << 3 | 3) + varint(101 << 3 | 4), error: error(.unmatchedEndGroup(fieldNumber: 101), at: 2, field: 100, .startGroup)),
        MalformedInput(name: "fixed32 cut off inside a group", bytes: [0x18, 0x01] + varint(100 << 3 | 3) + [0x15, 0x00], error: error(.truncated(needed: 4, remaining: 1), at: 5, field: 100, .startGroup)),
        MalformedInput(name: "Everything: nested length past its parent", bytes: [0x0A, 0x02, 0x72, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65], error: error(.lengthPastEnd(length: 5, remaining: 0), at: 3, field: 14, .lengthDelimited)),
        MalformedInput(name: "Everything: tag of six bytes in a nested message", bytes: [0x0A, 0x07, 0x98, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05], error: error(.overlongTag, at: 2)),
        MalformedInput(name: "Everything: nested message past the end", bytes: [0x0A, 0x09, 0x18, 0x01], error: error(.lengthPastEnd(length: 9, remaining: 2), at: 1, field: 1, .lengthDelimited, in: "Everything")),
        MalformedInput(name: "Everything: nested message type named in full", bytes: [0x62, 0x02, 0x08, 0x80], error: error(.truncatedVarint(remaining: 1), at: 3, field: 1, in: "Everything.Nested")),
        MalformedInput(name: "Everything: map key of invalid UTF-8", bytes: [0x42, 0x04, 0x0A, 0x02, 0xC3, 0x28], error: error(.invalidUTF8, at: 4, field: 8, .lengthDelimited, in: "Everything")),
        MalformedInput(name: "Everything: map value cut off", bytes: [0x42, 0x02, 0x10, 0x80], error: error(.truncatedVarint(remaining: 1), at: 3, field: 8, .lengthDelimited, in: "Everything")),
        MalformedInput(name: "Everything: end-group tag in a map entry", bytes: [0x42, 0x01, 0x0C], error: error(.unmatchedEndGroup(fieldNumber: 1), at: 2, field: 8, .lengthDelimited, in: "Everything")),
        MalformedInput(name: "Everything: map value message cut off", bytes: [0x4A, 0x04, 0x12, 0x02, 0x08, 0x80], error: error(.truncatedVarint(remaining: 1), at: 5, field: 1, in: "Point")),
        MalformedInput(name: "Everything: map entry cut off after its message value", bytes: [0x4A, 0x04, 0x12, 0x00, 0x18, 0x80], error: error(.truncatedVarint(remaining: 1), at: 5, field: 9, .lengthDelimited, in: "Everything")),
    ]

    @Test("each malformed input throws its error", arguments: cases)
    func malformed(_ input: MalformedInput) {
        let decode: () throws(WireDecodingError) -> Void = input.name.hasPrefix("Everything")
            ? { () throws(WireDecodingError) in _ = try Everything(serializedBytes: input.bytes) }
            : { () throws(WireDecodingError) in _ = try Scalars(serializedBytes: input.bytes) }
        #expect(throws: input.error) { try decode() }
    }

    @Test("a packed float field whose length is not a multiple of 4")
    func malformedPacked() {
        let expected = Self.error(.malformedPackedField(length: 3, elementSize: 4), at: 1, field: 2, .lengthDelimited, in: "RepeatedScalars")
        #expect(throws: expected) { try RepeatedScalars(serializedBytes: [0x12, 0x03, 1, 2, 3]) }
    }

    @Test("a hand-written message's errors name offset and field but no message")
    func handWrittenMessage() throws {
        let bytes: [UInt8] = [0x18, 0x01, 0x25, 0x00]
        let error = bytes.withUnsafeBytes { buffer -> WireDecodingError? in
            var reader = WireReader(bytes: buffer)
            do throws(WireDecodingError) {
                while let tag = try reader.nextTag() {
                    _ = tag.wireType == .varint ? try reader.readVarint() : UInt64(try reader.readFixed32())
                }
                return nil
            } catch {
                return error
            }
        }
        #expect(error == WireDecodingError(.truncated(needed: 4, remaining: 1), offset: 3, field: WireTag(fieldNumber: 4, wireType: .fixed32)))
    }

    @Test("descriptions say what, where and in which field and message", arguments: [
        ([0x72, 0x05, 0x61], "length past the end: field 14 (length-delimited) in downpour.test.Scalars at offset 1 needs 5 bytes, 1 remains"),
        ([0x15, 0, 0], "truncated: field 2 (fixed32) in downpour.test.Scalars at offset 1 needs 4 bytes, 2 remain"),
        ([0x18, 0x80, 0x80], "truncated: field 3 (varint) in downpour.test.Scalars at offset 1 is a varint longer than the 2 bytes that remain"),
        ([0x18] + Array(repeating: 0xFF, count: 11), "overlong varint: field 3 (varint) in downpour.test.Scalars at offset 1 runs past 10 bytes"),
        ([0x98, 0x80, 0x80, 0x80, 0x80, 0x00], "overlong tag: tag in downpour.test.Scalars at offset 0 runs past 5 bytes"),
        ([0x72, 0x02, 0xC3, 0x28], "invalid UTF-8: field 14 (length-delimited) in downpour.test.Scalars has a byte at offset 2 that is not part of valid UTF-8"),
        ([0x0E], "invalid wire type: tag in downpour.test.Scalars at offset 0 carries wire type 6, which does not exist"),
        ([0xA3, 0x06, 0xAC, 0x06], "unmatched end-group: field 100 (start-group) in downpour.test.Scalars at offset 2 ends group 101, which is not open"),
    ] as [([UInt8], String)])
    func descriptions(bytes: [UInt8], description: String) {
        do throws(WireDecodingError) {
            _ = try Scalars(serializedBytes: bytes)
            Issue.record("decoded \(bytes)")
        } catch {
            #expect(error.description == description)
        }
    }

    @Test("the reason can be matched without the rest of the error")
    func matchingOnReason() {
        do throws(WireDecodingError) {
            _ = try Scalars(serializedBytes: [0x72, 0x02, 0xC3, 0x28])
            Issue.record("decoded invalid UTF-8")
        } catch where error.reason == .invalidUTF8 {
            #expect(error.field?.fieldNumber == 14)
        } catch {
            Issue.record("unexpected \(error)")
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
            // Each level is the tag of `left` (field 2) and a length; the 65th such length is refused.
            var offset = 0
            for _ in 0..<64 {
                offset += 1
                while bytes[offset] >= 0x80 { offset += 1 }
                offset += 1
            }
            let expected = Self.error(.nestingTooDeep(limit: 64), at: offset + 1, field: 2, .lengthDelimited, in: "Tree")
            #expect(throws: expected) { try Tree(serializedBytes: bytes) }
        }
        let generous = WireDecodingOptions(maxDepth: 2000)
        #expect(try Tree(serializedBytes: bytes, options: generous) == Self.nestedTrees(depth))
    }

    @Test("unknown groups nested deeper than the limit")
    func nestedGroups() {
        let start = Self.varint(100 << 3 | 3)
        let bytes = Array(Array(repeating: start, count: 100).joined())
        // The 65th start-group tag, two bytes each, is the one refused.
        #expect(throws: Self.error(.nestingTooDeep(limit: 64), at: 128, field: 100, .startGroup)) {
            try Scalars(serializedBytes: bytes)
        }
    }

    @Test("every prefix of a valid message decodes or throws a truncation, and never traps")
    func everySplitPoint() throws {
        var random = RandomMessages(seed: 5)
        let bytes = random.everything().serializedBytes()
        var failures = 0
        for end in 0...bytes.count {
            do throws(WireDecodingError) {
                _ = try Everything(serializedBytes: bytes[..<end])
            } catch {
                failures += 1
                #expect(error.offset <= end, "a cut at \(end) reported offset \(error.offset)")
                switch error.reason {
                case .truncated, .truncatedVarint, .lengthPastEnd: break
                default: Issue.record("a cut at \(end) of \(bytes.count) bytes threw \(error)")
                }
            }
        }
        #expect(failures > 0)
    }
}
