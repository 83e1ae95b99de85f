import Testing
import WireCodec

@Suite("Mutated messages: Downpour decodes as Google's protobuf does")
struct DifferentialTests {
    /// Enough inputs to meet every kind of mutation many times, few enough for a second or two.
    static let inputCount = 4000

    @Test("Downpour and Google's protobuf agree on accepting, refusing and re-encoding mutated messages")
    func mutatedMessages() throws {
        var mutator = MessageMutator(seed: 0xD1FF)
        var inputs: [[UInt8]] = []
        for index in 0..<Self.inputCount {
            var random = RandomMessages(seed: 50_000 + UInt64(index))
            random.longLists = false
            random.maxMapEntries = 2
            inputs.append(mutator.mutate(random.everything().serializedBytes()))
        }
        let ours = inputs.map { bytes in
            Result { () throws(WireDecodingError) in try Everything(serializedBytes: bytes) }
        }
        // Google is also asked to read back what Downpour wrote, in the same batch.
        let ourBytes = ours.map { try? $0.get().serializedBytes() }
        let requests = (inputs + ourBytes.compactMap { $0 }).map { (type: "downpour.test.Everything", bytes: $0) }
        let verdicts = try GoogleProtobuf.reencode(requests)
        var rereads = verdicts[inputs.count...].makeIterator()

        var tally = Tally()
        for index in inputs.indices {
            let label = "input \(index): \(inputs[index].map { String($0, radix: 16) }.joined(separator: " "))"
            let reread = ourBytes[index] == nil ? nil : rereads.next()
            switch (ours[index], verdicts[index]) {
            case (.success(let message), .accepted(let theirs, let droppedFromMapEntries)):
                tally.accepted += 1
                if !message.unknownFields.isEmpty { tally.withUnknownFields += 1 }
                if droppedFromMapEntries { tally.droppedFromMapEntries += 1 }
                let mine = ourBytes[index]!
                if mine == theirs { continue }
                // Google's C++ runtime writes an unknown field's varints at their shortest; Downpour,
                // like upb and swift-protobuf, writes them back as they came. Then Google reads
                // Downpour's longer bytes back to exactly its own.
                if mine.count > theirs.count, reread?.bytes == theirs {
                    tally.unknownFieldSpelling += 1
                } else {
                    tally.record("\(label)\n  Downpour wrote \(mine)\n  Google wrote   \(theirs)")
                }
            case (.failure, .rejected):
                tally.rejected += 1
            case (.failure(let error), .accepted):
                // Google's C++ runtime drops the bits of a five-byte tag beyond 32 and reads another
                // field; upb and swift-protobuf refuse such a tag, and so does Downpour.
                if case .invalidFieldNumber(let number) = error.reason, number > UInt64(WireFormat.maxFieldNumber) {
                    tally.tagBeyond32Bits += 1
                } else {
                    tally.record("\(label)\n  Google accepts, Downpour refuses: \(error)")
                }
            case (.success, .rejected):
                tally.record("\(label)\n  Google refuses, Downpour accepts")
            }
        }
        print("differential: \(Self.inputCount) inputs, \(tally.accepted) accepted by both (\(tally.withUnknownFields) with unknown fields, \(tally.droppedFromMapEntries) with fields dropped from map entries, \(tally.unknownFieldSpelling) differing only in how unknown fields' varints are spelled), \(tally.rejected) refused by both, \(tally.tagBeyond32Bits) tags beyond 32 bits that only Google's C++ runtime accepts, \(tally.disagreements.count) disagreements")
        #expect(tally.disagreements.isEmpty, "\(tally.disagreements.count) disagreements, first: \(tally.disagreements.prefix(5).joined(separator: "\n"))")
        // The mutations must have exercised both verdicts and the wrong-wire-type rule.
        #expect(tally.accepted > Self.inputCount / 5)
        #expect(tally.rejected > Self.inputCount / 5)
        #expect(tally.withUnknownFields > Self.inputCount / 20)
        // The two tolerated differences stay rare, so a new difference cannot hide among them.
        #expect(tally.unknownFieldSpelling + tally.tagBeyond32Bits < Self.inputCount / 20)
    }

    struct Tally {
        var accepted = 0
        var rejected = 0
        var withUnknownFields = 0
        var droppedFromMapEntries = 0
        var unknownFieldSpelling = 0
        var tagBeyond32Bits = 0
        var disagreements: [String] = []

        mutating func record(_ disagreement: String) {
            disagreements.append(disagreement)
        }
    }
}
