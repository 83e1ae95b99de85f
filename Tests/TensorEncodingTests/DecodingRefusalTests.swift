import Testing
import TensorEncoding

/// Every way a payload is refused: the reason, the offset, the message, and that nothing was written.
@Suite("Decoding refusals")
struct DecodingRefusalTests {
    typealias Reason = TensorDecodingError.Reason

    /// A payload, the value count it is decoded for, and the error it must give.
    struct Case: Sendable, CustomTestStringConvertible {
        var encoding: TensorEncoding
        var bytes: [UInt8]
        var count: Int
        var reason: Reason
        var offset: Int
        var testDescription: String { "\(encoding): \(reason)" }
    }

    /// 0x3F800000 (1.0), little-endian.
    static let one: [UInt8] = [0x00, 0x00, 0x80, 0x3F]

    static let cases: [Case] = [
        // Lengths: short, and long by one trailing byte.
        Case(encoding: .fp32, bytes: one + [0, 0, 0], count: 2, reason: .wrongLength(actual: 7, expected: 8, values: 2), offset: 7),
        Case(encoding: .fp16, bytes: [0, 0x3C, 0], count: 1, reason: .wrongLength(actual: 3, expected: 2, values: 1), offset: 3),
        Case(encoding: .bf16, bytes: [], count: 1, reason: .wrongLength(actual: 0, expected: 2, values: 1), offset: 0),
        Case(encoding: .q8(blockSize: 2), bytes: one + [1, 2] + one, count: 3, reason: .wrongLength(actual: 10, expected: 11, values: 3), offset: 10),
        Case(encoding: .sign(blockSize: 8), bytes: one + [1, 0], count: 8, reason: .wrongLength(actual: 6, expected: 5, values: 8), offset: 6),
        Case(encoding: .fp32, bytes: [0], count: 0, reason: .wrongLength(actual: 1, expected: 0, values: 0), offset: 1),
        // Non-finite values.
        Case(encoding: .fp32, bytes: one + [0, 0, 0x80, 0x7F], count: 2, reason: .nonFiniteValue(index: 1, bits: 0x7F80_0000), offset: 4),
        Case(encoding: .fp32, bytes: [1, 0, 0xC0, 0xFF] + one, count: 2, reason: .nonFiniteValue(index: 0, bits: 0xFFC0_0001), offset: 0),
        Case(encoding: .fp16, bytes: [0, 0x3C, 0, 0x3C, 0, 0x7C], count: 3, reason: .nonFiniteValue(index: 2, bits: 0x7C00), offset: 4),
        Case(encoding: .fp16, bytes: [0, 0xFE, 0, 0x3C], count: 2, reason: .nonFiniteValue(index: 0, bits: 0xFE00), offset: 0),
        Case(encoding: .bf16, bytes: [0x80, 0x3F, 0x80, 0xFF], count: 2, reason: .nonFiniteValue(index: 1, bits: 0xFF80), offset: 2),
        Case(encoding: .bf16, bytes: [0xC1, 0x7F], count: 1, reason: .nonFiniteValue(index: 0, bits: 0x7FC1), offset: 0),
        // q8 scales: NaN, infinity, negative, and so large that 127 · s overflows; then a byte of −128.
        Case(encoding: .q8(blockSize: 2), bytes: one + [1, 2] + [0, 0, 0xC0, 0x7F, 3], count: 3, reason: .invalidScale(block: 1, bits: 0x7FC0_0000), offset: 6),
        Case(encoding: .q8(blockSize: 2), bytes: [0, 0, 0x80, 0xFF, 0, 0], count: 2, reason: .invalidScale(block: 0, bits: 0xFF80_0000), offset: 0),
        Case(encoding: .q8(blockSize: 2), bytes: [0, 0, 0x80, 0xBF, 0, 0], count: 2, reason: .invalidScale(block: 0, bits: 0xBF80_0000), offset: 0),
        Case(encoding: .q8(blockSize: 2), bytes: [0xFF, 0xFF, 0x7F, 0x7F, 0, 0], count: 2, reason: .invalidScale(block: 0, bits: 0x7F7F_FFFF), offset: 0),
        Case(encoding: .q8(blockSize: 2), bytes: one + [0x7F, 0x81] + one + [0x80], count: 3, reason: .quantizedValueOutOfRange(index: 2), offset: 10),
        Case(encoding: .q8(blockSize: 0), bytes: [], count: 0, reason: .invalidBlockSize(0), offset: 0),
        Case(encoding: .q8(blockSize: -4), bytes: one, count: 1, reason: .invalidBlockSize(-4), offset: 0),
        // sign: NaN and negative scales, padding bits, block size.
        Case(encoding: .sign(blockSize: 8), bytes: [0, 0, 0xC0, 0xFF, 0x55], count: 8, reason: .invalidScale(block: 0, bits: 0xFFC0_0000), offset: 0),
        Case(encoding: .sign(blockSize: 3), bytes: one + [0x07] + [0, 0, 0x80, 0xBF, 0], count: 4, reason: .invalidScale(block: 1, bits: 0xBF80_0000), offset: 5),
        Case(encoding: .sign(blockSize: 3), bytes: one + [0x08] + one + [0], count: 4, reason: .nonZeroPadding(block: 0), offset: 4),
        Case(encoding: .sign(blockSize: 3), bytes: one + [0x07] + one + [0x02], count: 4, reason: .nonZeroPadding(block: 1), offset: 9),
        Case(encoding: .sign(blockSize: 0), bytes: [], count: 1, reason: .invalidBlockSize(0), offset: 0),
        // topk: the entry count and the length.
        Case(encoding: .topK(count: 1), bytes: [1, 0, 0], count: 4, reason: .missingEntryCount(actual: 3), offset: 0),
        Case(encoding: .topK(count: 1), bytes: [], count: 0, reason: .missingEntryCount(actual: 0), offset: 0),
        Case(encoding: .topK(count: 1), bytes: [5, 0, 0, 0, 0, 0, 0, 0, 0, 0x3C, 0, 0x3C, 0, 0x3C, 0, 0x3C, 0, 0x3C], count: 4,
             reason: .tooManyEntries(entries: 5, values: 4), offset: 0),
        Case(encoding: .topK(count: 1), bytes: [0xFF, 0xFF, 0xFF, 0xFF], count: 10, reason: .tooManyEntries(entries: 0xFFFF_FFFF, values: 10), offset: 0),
        Case(encoding: .topK(count: 1), bytes: [2, 0, 0, 0, 0, 0, 0x3C, 0, 0x3C], count: 4,
             reason: .entryCountDisagreesWithLength(entries: 2, actual: 9, minimum: 10, maximum: 18), offset: 0),
        Case(encoding: .topK(count: 1), bytes: [0, 0, 0, 0, 0], count: 4, reason: .entryCountDisagreesWithLength(entries: 0, actual: 5, minimum: 4, maximum: 4), offset: 0),
        Case(encoding: .topK(count: 1), bytes: [1, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0x3C], count: 4,
             reason: .entryCountDisagreesWithLength(entries: 1, actual: 12, minimum: 7, maximum: 11), offset: 0),
        // topk: the varints.
        Case(encoding: .topK(count: 1), bytes: [1, 0, 0, 0, 0x81, 0x00, 0, 0x3C], count: 4, reason: .malformedVarint(entry: 0), offset: 4),
        Case(encoding: .topK(count: 1), bytes: [1, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0x3C], count: 4, reason: .malformedVarint(entry: 0), offset: 4),
        Case(encoding: .topK(count: 1), bytes: [2, 0, 0, 0, 0x00, 0x81, 0x81, 0, 0x3C, 0, 0x3C], count: 400, reason: .indicesOverrunValues(entry: 1), offset: 5),
        Case(encoding: .topK(count: 1), bytes: [1, 0, 0, 0, 0x01, 0x00, 0, 0x3C], count: 4, reason: .extraBytesAfterIndices(extra: 1), offset: 5),
        Case(encoding: .topK(count: 1), bytes: [2, 0, 0, 0, 0x01, 0x02, 0, 0x3C, 0, 0x3C], count: 4, reason: .indexPastEnd(entry: 1, index: 4, values: 4), offset: 5),
        Case(encoding: .topK(count: 1), bytes: [1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0x3C], count: 4,
             reason: .indexPastEnd(entry: 0, index: 0xFFFF_FFFF, values: 4), offset: 4),
        Case(encoding: .topK(count: 1), bytes: [2, 0, 0, 0, 0x01, 0x00, 0, 0x3C, 0, 0x7E], count: 4, reason: .nonFiniteValue(index: 2, bits: 0x7E00), offset: 8),
        Case(encoding: .topK(count: 1), bytes: [1, 0, 0, 0, 0x00, 0x00, 0xFC], count: 1, reason: .nonFiniteValue(index: 0, bits: 0xFC00), offset: 5),
    ]

    @Test("refuses with the right reason and offset", arguments: cases)
    func refusal(_ example: Case) {
        let error = example.encoding.refusal(example.bytes, count: example.count)
        #expect(error?.reason == example.reason)
        #expect(error?.offset == example.offset)
        #expect(error?.encoding == example.encoding)
    }

    @Test("a refused payload leaves the output untouched", arguments: cases)
    func outputUntouched(_ example: Case) {
        let sentinel = (0..<example.count).map { Float($0) + 0.5 }
        var output = sentinel
        #expect(throws: TensorDecodingError.self) {
            try example.bytes.withUnsafeBytes { raw in
                try output.withUnsafeMutableBufferPointer { try example.encoding.decode(raw, into: $0) }
            }
        }
        #expect(output == sentinel)
        #expect(throws: TensorDecodingError.self) { try example.encoding.decodeAdding(example.bytes, scale: 2, into: &output) }
        #expect(output == sentinel)
    }

    @Test("a bad value at the very end still refuses the whole payload, before anything is written")
    func lateFaults() {
        var generator = SeededGenerator(seed: 9)
        let values = randomVector(count: 1000, using: &generator)
        for encoding in [TensorEncoding.fp32, .fp16, .bf16, .q8(blockSize: 100), .sign(blockSize: 100), .topK(count: 50)] {
            var bytes = encoding.encoded(values)
            switch encoding {
            case .fp32: bytes[bytes.count - 2 ..< bytes.count] = [0xC0, 0x7F]
            case .fp16, .topK: bytes[bytes.count - 1] = 0x7C
            case .bf16: bytes[bytes.count - 2 ..< bytes.count] = [0x80, 0x7F]
            case .q8: bytes[bytes.count - 1] = 0x80
            case .sign: bytes[bytes.count - 14] |= 0x80  // the last block's scale (4 + 13 bytes): negative
            }
            var output = values
            #expect(throws: TensorDecodingError.self) { try encoding.decodeAdding(bytes, scale: 1, into: &output) }
            #expect(bits(output) == bits(values), "\(encoding)")
        }
    }

    @Test("messages name the encoding, the fault and where it is")
    func messages() {
        let wrongLength = TensorDecodingError(.fp16, .wrongLength(actual: 810, expected: 812, values: 406), offset: 810)
        #expect(wrongLength.description == "fp16: 810 bytes for 406 values (expected 812)")
        let scale = TensorDecodingError(.q8(), .invalidScale(block: 3, bits: Float.nan.bitPattern), offset: 780)
        #expect(scale.description == "q8: scale of block 3 (byte 780) is nan")
        let pastEnd = TensorDecodingError(.topK(count: 20), .indexPastEnd(entry: 17, index: 412_000, values: 412_000), offset: 40)
        #expect(pastEnd.description == "topk: index 412000 at entry 17 (byte 40) is past the end (412000 values)")
        let value = TensorDecodingError(.bf16, .nonFiniteValue(index: 7, bits: 0xFF80), offset: 14)
        #expect(value.description == "bf16: value 7 (byte 14) is -inf")
        let padding = TensorDecodingError(.sign(), .nonZeroPadding(block: 99), offset: 51_281)
        #expect(padding.description == "sign: the unused bits of block 99's last byte (byte 51281) are not zero")
        // The messages of the real refusals are not empty and start with the wire name.
        for example in Self.cases {
            let error = example.encoding.refusal(example.bytes, count: example.count)
            #expect(error?.description.hasPrefix("\(example.encoding.name): ") == true)
        }
    }

    @Test("topk's gaps cannot express a repeated or descending index")
    func gapsAreAlwaysAscending() throws {
        // The smallest code, 0, after index 5 means index 6: there is no way to say 5 again.
        let bytes: [UInt8] = [3, 0, 0, 0, 5, 0, 0, 0, 0x3C, 0, 0x40, 0, 0x42]
        let decoded = try TensorEncoding.topK(count: 3).decoded(bytes, count: 8)
        #expect(decoded == [0, 0, 0, 0, 0, 1, 2, 3])
    }

    @Test("random and mutated payloads never trap the decoders", arguments: 0..<4)
    func hostileBytes(seed: UInt64) {
        var generator = SeededGenerator(seed: 500 + seed)
        let encodings: [TensorEncoding] = [.fp32, .fp16, .bf16, .q8(blockSize: 5), .sign(blockSize: 5), .topK(count: 7)]
        var accepted = 0
        for _ in 0..<600 {
            let encoding = encodings[Int.random(in: 0..<encodings.count, using: &generator)]
            let count = Int.random(in: 0...40, using: &generator)
            var bytes = encoding.encoded(randomVector(count: count, using: &generator))
            // Mutate a valid payload a little, or replace it with noise.
            if Bool.random(using: &generator), !bytes.isEmpty {
                for _ in 0..<Int.random(in: 1...3, using: &generator) where !bytes.isEmpty {
                    let i = Int.random(in: 0..<bytes.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: bytes[i] = UInt8.random(in: 0...255, using: &generator)
                    case 1: bytes.remove(at: i)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: i)
                    }
                }
            } else if Bool.random(using: &generator) {
                bytes = (0..<Int.random(in: 0...60, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            var output = [Float](repeating: 1, count: count)
            if (try? encoding.decoded(bytes, count: count)) != nil {
                accepted += 1
                // What decodes is finite, and decodeAdding accepts it too.
                #expect(throws: Never.self) { try encoding.decodeAdding(bytes, scale: 1, into: &output) }
                #expect(output.allSatisfy { $0.isFinite })
            }
        }
        #expect(accepted > 100)
    }
}
