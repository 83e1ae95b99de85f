import Testing
import WireCodec

@Suite("WireReader decodes what protobuf allows")
struct WireReaderTests {
    @Test("unpacked repeated numbers are accepted and appended to packed ones")
    func unpackedRepeated() throws {
        let one = Float(1.5).bitPattern.littleEndian
        let two = Float(-2).bitPattern.littleEndian
        func bytes(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
        let encoded = [0x15] + bytes(one) + [0x12, 0x04] + bytes(two) + [0x15] + bytes(one)
        let decoded = try RepeatedScalars(serializedBytes: encoded)
        #expect(decoded.fFloat == [1.5, -2, 1.5])
        let varints: [UInt8] = [0x18, 0x01, 0x1A, 0x02, 0x02, 0x03, 0x18, 0x7F]
        #expect(try RepeatedScalars(serializedBytes: varints).fInt32 == [1, 2, 3, 127])
    }

    @Test("a repeated message field merges its occurrences; the last scalar wins")
    func merging() throws {
        let first = Everything(scalars: Scalars(fInt32: 1, fString: "first"), choice: .choicePoint(Point(x: 1)))
        let second = Everything(scalars: Scalars(fBool: true, fString: "second"), choice: .choicePoint(Point(y: 2)))
        let decoded = try Everything(serializedBytes: first.serializedBytes() + second.serializedBytes())
        #expect(decoded.scalars == Scalars(fInt32: 1, fBool: true, fString: "second"))
        #expect(decoded.choice == Everything.Choice.choicePoint(Point(x: 1, y: 2)))
        let third = Everything(choice: .choiceText("text"))
        #expect(try Everything(serializedBytes: first.serializedBytes() + third.serializedBytes()).choice == Everything.Choice.choiceText("text"))
    }

    @Test("unknown fields of every wire type are kept in order and written back")
    func unknownFields() throws {
        var bytes: [UInt8] = [0x08, 0x01]
        bytes += [0xA0, 0x06, 0x96, 0x01]  // 100: varint 150
        bytes += [0xA9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]  // 101: fixed64
        bytes += [0xB2, 0x06, 0x02, 0x68, 0x69]  // 102: length-delimited
        bytes += [0xBB, 0x06, 0x08, 0x01, 0xBC, 0x06]  // 103: a group holding field 1
        bytes += [0xC5, 0x06, 9, 9, 9, 9]  // 104: fixed32
        let point = try Point(serializedBytes: bytes)
        #expect(point.x == -1)
        #expect(point.unknownFields.count == bytes.count - 2)
        #expect(point.serializedBytes() == bytes)
        let dropped = try Point(serializedBytes: bytes, options: WireDecodingOptions(discardUnknownFields: true))
        #expect(dropped.unknownFields.isEmpty)
        #expect(dropped.serializedBytes() == [0x08, 0x01])
    }

    /// Field 3's tag, 0x18, padded with 0x80 bytes to `length` bytes.
    static func paddedTag(length: Int) -> [UInt8] {
        length == 1 ? [0x18] : [0x98] + Array(repeating: 0x80, count: length - 2) + [0x00]
    }

    @Test("a tag padded to at most five bytes is read; six are refused, as Google's protobuf refuses them")
    func tagLength() throws {
        let inputs = (1...7).map { Self.paddedTag(length: $0) + [0x05] }
        let verdicts = try GoogleProtobuf.reencode(inputs.map { (type: "downpour.test.Scalars", bytes: $0) })
        for (length, (input, verdict)) in zip(1..., zip(inputs, verdicts)) {
            if length <= WireFormat.maxTagLength {
                let decoded = try Scalars(serializedBytes: input)
                #expect(decoded.fInt32 == 5)
                #expect(decoded.serializedBytes() == [0x18, 0x05])
                #expect(verdict == .accepted([0x18, 0x05], droppedFromMapEntries: false), "a tag of \(length) bytes")
            } else {
                #expect(throws: WireDecodingError(.overlongTag, offset: 0, messageName: "downpour.test.Scalars")) {
                    try Scalars(serializedBytes: input)
                }
                #expect(verdict == .rejected, "a tag of \(length) bytes")
            }
        }
    }

    @Test("an enum value this schema does not know survives decoding and encoding")
    func unrecognizedEnum() throws {
        let bytes: [UInt8] = [0x80, 0x01, 0x2A]  // field 16 = 42
        let scalars = try Scalars(serializedBytes: bytes)
        #expect(scalars.fColor == .unrecognized(42))
        #expect(scalars.serializedBytes() == bytes)
        #expect(Color(rawValue: -1) == .infrared)
        #expect(Color.allCases == [.unspecified, .red, .green, .infrared])
    }

    @Test("bool decodes any non-zero varint as true; int32 keeps the low 32 bits")
    func lenientScalars() throws {
        #expect(try Scalars(serializedBytes: [0x68, 0x02]).fBool)
        let minusOne: [UInt8] = [0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        #expect(try Scalars(serializedBytes: minusOne).fInt32 == -1)
        #expect(try Scalars(serializedBytes: [0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).fInt32 == -1)
    }

    @Test("packed numbers and bytes decode at every alignment", arguments: 0..<8)
    func alignment(offset: Int) throws {
        let message = RepeatedScalars(
            fDouble: [1.5, -0.0, .infinity], fFloat: (0..<100).map { Float($0) / 7 }, fFixed64: [.max, 0, 1],
            fSfixed32: [-1, .min], fBytes: [[1, 2, 3], []]
        )
        let bytes = Array(repeating: 0, count: offset) + message.serializedBytes()
        #expect(try RepeatedScalars(serializedBytes: bytes[offset...]) == message)
    }

    @Test("a packed field that arrives twice is appended, at any alignment", arguments: 0..<4)
    func packedTwice(offset: Int) throws {
        let message = RepeatedScalars(fDouble: [1, 2, 3], fFloat: [4, 5], fSint64: [-6, 7], fSfixed64: [.min])
        let once = message.serializedBytes()
        let bytes = Array(repeating: 0, count: offset) + once + once
        let decoded = try RepeatedScalars(serializedBytes: bytes[offset...])
        #expect(decoded.fDouble == [1, 2, 3, 1, 2, 3])
        #expect(decoded.fFloat == [4, 5, 4, 5])
        #expect(decoded.fSint64 == [-6, 7, -6, 7])
        #expect(decoded.fSfixed64 == [.min, .min])
    }

    @Test("decoding from a raw buffer and from a slice")
    func entryPoints() throws {
        let message = Point(x: 3, y: -4)
        let bytes = [0xFF] + message.serializedBytes()
        #expect(try Point(serializedBytes: bytes[1...]) == message)
        let fromRaw = bytes.withUnsafeBytes { raw in
            try? Point(serializedBytes: UnsafeRawBufferPointer(rebasing: raw[1...]))
        }
        #expect(fromRaw == message)
    }
}
