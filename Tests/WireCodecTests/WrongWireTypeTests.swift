import Testing
import WireCodec

/// A message of the test schema, named as protobuf names it, decoded and re-encoded by Downpour.
struct TestMessageType: Sendable {
    var name: String
    var reencode: @Sendable ([UInt8]) -> Result<(bytes: [UInt8], unknownFields: Int), WireDecodingError>

    static func of<M: WireMessage>(_: M.Type, _ name: String) -> TestMessageType {
        TestMessageType(name: "downpour.test." + name) { bytes in
            do throws(WireDecodingError) {
                let message = try M(serializedBytes: bytes)
                return .success((message.serializedBytes(), message.unknownFields.count))
            } catch {
                return .failure(error)
            }
        }
    }
}

@Suite("A known field with the wrong wire type is kept as an unknown field, as Google's protobuf keeps it")
struct WrongWireTypeTests {
    @Test("a string sent as a varint is kept, and written back after the known fields")
    func stringAsVarint() throws {
        // f_string (14) as the varint 5, then f_int32 (3) = 7.
        let decoded = try Scalars(serializedBytes: [0x70, 0x05, 0x18, 0x07])
        #expect(decoded.fString == "")
        #expect(decoded.fInt32 == 7)
        #expect(decoded.unknownFields.bytes == [0x70, 0x05])
        #expect(decoded.serializedBytes() == [0x18, 0x07, 0x70, 0x05])
        let dropped = try Scalars(serializedBytes: [0x70, 0x05, 0x18, 0x07], options: WireDecodingOptions(discardUnknownFields: true))
        #expect(dropped.serializedBytes() == [0x18, 0x07])
    }

    @Test("a message, map or oneof field with the wrong wire type leaves the field as it was")
    func structuredFields() throws {
        // scalars (1) as a varint; counts (8) as fixed32; choice_point (6) set, then sent as a varint.
        let bytes: [UInt8] = [0x08, 0x05, 0x45, 1, 2, 3, 4, 0x32, 0x02, 0x08, 0x01, 0x30, 0x01]
        let decoded = try Everything(serializedBytes: bytes)
        #expect(decoded.scalars == nil)
        #expect(decoded.counts.isEmpty)
        #expect(decoded.choice == .choicePoint(Point(x: -1)))
        #expect(decoded.unknownFields.bytes == [0x08, 0x05, 0x45, 1, 2, 3, 4, 0x30, 0x01])
        #expect(decoded.serializedBytes() == [0x32, 0x02, 0x08, 0x01, 0x08, 0x05, 0x45, 1, 2, 3, 4, 0x30, 0x01])
    }

    @Test("a repeated number takes packed and unpacked forms, and nothing else")
    func repeatedNumbers() throws {
        // f_fixed32 (9) unpacked, packed, then as a varint; f_string (14) as a varint.
        let bytes: [UInt8] = [0x4D, 1, 0, 0, 0, 0x4A, 0x04, 2, 0, 0, 0, 0x48, 0x03, 0x70, 0x01]
        let decoded = try RepeatedScalars(serializedBytes: bytes)
        #expect(decoded.fFixed32 == [1, 2])
        #expect(decoded.fString.isEmpty)
        #expect(decoded.unknownFields.bytes == [0x48, 0x03, 0x70, 0x01])
    }

    @Test("a known field sent as a group is kept whole")
    func groupForKnownField() throws {
        // f_int32 (3) as a group holding field 1 = 1.
        let bytes: [UInt8] = [0x1B, 0x08, 0x01, 0x1C]
        let decoded = try Scalars(serializedBytes: bytes)
        #expect(decoded.fInt32 == 0)
        #expect(decoded.serializedBytes() == bytes)
    }

    @Test("a map entry's key or value with the wrong wire type is dropped with the entry's other fields")
    func mapEntryFields() throws {
        // counts (8): an entry whose key comes as fixed32, and one with key "a", value 2 and a field 3.
        let bytes: [UInt8] = [0x42, 0x05, 0x0D, 1, 2, 3, 4, 0x42, 0x07, 0x0A, 0x01, 0x61, 0x10, 0x02, 0x18, 0x01]
        let decoded = try Everything(serializedBytes: bytes)
        #expect(decoded.counts == ["": 0, "a": 2])
        #expect(decoded.unknownFields.isEmpty)
    }

    @Test("a message value that appears twice in one map entry is merged, as Google's protobuf merges it")
    func mapEntryMessageValueMerges() throws {
        // points (9): key 1, value {x: -1}, value {y: -1}.
        let bytes: [UInt8] = [0x4A, 0x0A, 0x08, 0x01, 0x12, 0x02, 0x08, 0x01, 0x12, 0x02, 0x10, 0x01]
        #expect(try Everything(serializedBytes: bytes).points == [1: Point(x: -1, y: -1)])
    }

    static let messageTypes: [(type: TestMessageType, fieldNumbers: [Int], prefix: [UInt8], suffix: [UInt8])] = [
        (.of(Scalars.self, "Scalars"), Array(1...16), [0x18, 0x07], [0x68, 0x01]),
        (.of(OptionalScalars.self, "OptionalScalars"), Array(1...16), [0x18, 0x00], [0x68, 0x00]),
        (.of(RepeatedScalars.self, "RepeatedScalars"), Array(1...16), [0x1A, 0x02, 0x01, 0x02], [0x72, 0x01, 0x78]),
        (.of(Everything.self, "Everything"), Array(1...18) + [19, 18999, 20000, 536_870_911], [0x0A, 0x02, 0x18, 0x01], [0x80, 0x01, 0x01]),
        (.of(Everything.Nested.self, "Everything.Nested"), [1, 2, 3], [0x08, 0x01], [0x12, 0x00]),
        (.of(Tree.self, "Tree"), Array(1...7), [0x0A, 0x01, 0x74], [0x30, 0x03]),
        (.of(Point.self, "Point"), [1, 2, 3], [0x08, 0x01], [0x10, 0x04]),
    ]

    /// A well-formed value of every wire type, and a bare end-group tag.
    static func field(_ number: Int, wireType: UInt8) -> [UInt8] {
        let tag = WireReaderErrorTests.varint(UInt64(number) << 3 | UInt64(wireType))
        switch wireType {
        case 0: return tag + [0x96, 0x01]
        case 1: return tag + [1, 2, 3, 4, 5, 6, 7, 8]
        case 2: return tag + [0x02, 0x08, 0x01]
        case 3: return tag + [0x08, 0x01] + WireReaderErrorTests.varint(UInt64(number) << 3 | 4)
        case 5: return tag + [1, 2, 3, 4]
        default: return tag
        }
    }

    @Test("every field of every test message with every wire type: Downpour keeps what Google keeps, byte for byte")
    func everyFieldEveryWireType() throws {
        var inputs: [(type: TestMessageType, bytes: [UInt8])] = []
        for (type, numbers, prefix, suffix) in Self.messageTypes {
            for number in numbers {
                for wireType: UInt8 in [0, 1, 2, 3, 4, 5] {
                    inputs.append((type, prefix + Self.field(number, wireType: wireType) + suffix))
                }
            }
        }
        let verdicts = try GoogleProtobuf.reencode(inputs.map { ($0.type.name, $0.bytes) })
        var keptAsUnknown = 0
        var rejected = 0
        for (input, verdict) in zip(inputs, verdicts) {
            let ours = input.type.reencode(input.bytes)
            let label = "\(input.type.name) \(input.bytes.map { String($0, radix: 16) })"
            switch (ours, verdict) {
            case (.success(let ours), .accepted(let theirs, _)):
                #expect(ours.bytes == theirs, "\(label): Downpour wrote \(ours.bytes), Google \(theirs)")
                if ours.unknownFields > 0 { keptAsUnknown += 1 }
            case (.failure, .rejected):
                rejected += 1
            case (.failure(let error), .accepted):
                Issue.record("\(label): Google accepts, Downpour refuses: \(error)")
            case (.success, .rejected):
                Issue.record("\(label): Google refuses, Downpour accepts")
            }
        }
        // Most combinations are a known field with the wrong wire type; end-group tags and a packed
        // fixed-width payload of two bytes are refused by both.
        #expect(keptAsUnknown > 250)
        #expect(rejected >= 83)
    }
}
