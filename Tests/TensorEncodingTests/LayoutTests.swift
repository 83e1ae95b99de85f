import Testing
import TensorEncoding

/// The README's worked examples: tiny vectors and their bytes, computed by hand. These bytes are the
/// protocol; a change here is a change of the wire format.
@Suite("Byte layouts (the README's worked examples)")
struct LayoutTests {
    struct Example: Sendable, CustomTestStringConvertible {
        var encoding: TensorEncoding
        var values: [Float]
        var bytes: String
        var decoded: [Float]
        var testDescription: String { "\(encoding)" }
    }

    static let examples: [Example] = [
        // 1.0 = 0x3F800000, -2.5 = 0xC0200000, each little-endian.
        Example(encoding: .fp32, values: [1, -2.5], bytes: "00 00 80 3F 00 00 20 C0", decoded: [1, -2.5]),
        // 1.0 = 0x3C00, -2.5 = 0xC100; 0.1 rounds to 0x2E66 (0.0999755859375); 100000 is clamped to
        // 65504 = 0x7BFF; 2⁻²⁴ is the smallest subnormal, 0x0001.
        Example(
            encoding: .fp16, values: [1, -2.5, 0.1, 100_000, 0x1p-24], bytes: "00 3C 00 C1 66 2E FF 7B 01 00",
            decoded: [1, -2.5, 0.0999755859375, 65504, 0x1p-24]),
        // The upper halves of 0x3F800000 and 0xC0200000; 0.1 = 0x3DCCCCCD, whose lower half 0xCCCD is
        // above 0x8000, rounds up to 0x3DCD (0.10009765625).
        Example(encoding: .bf16, values: [1, -2.5, 0.1], bytes: "80 3F 20 C0 CD 3D", decoded: [1, -2.5, 0.10009765625]),
        // Block size 4. Block 0: max |x| = 127, s = 1.0; q = 127, round(-63.5) = -64 (ties to even),
        // round(0.4) = 0, round(1.5) = 2. Block 1 (one value): s = 31.75 / 127 = 0.25, q = -127.
        Example(
            encoding: .q8(blockSize: 4), values: [127, -63.5, 0.4, 1.5, -31.75],
            bytes: "00 00 80 3F 7F C0 00 02 00 00 80 3E 81", decoded: [127, -64, 0, 2, -31.75]),
        // Block size 4. Block 0: mean |x| = (1 + 2 + 3 + 6) / 4 = 3.0 = 0x40400000; negative at 1 and
        // 3: bits 0b1010. Block 1 (two values): mean 1.0; negative at 1: 0b10.
        Example(
            encoding: .sign(blockSize: 4), values: [1, -2, 3, -6, 0.5, -1.5], bytes: "00 00 40 40 0A 00 00 80 3F 02",
            decoded: [3, -3, 3, -3, 1, -1]),
        // k = 3: the largest magnitudes are -8 (index 7), -4 (2) and 2.5 (5). Indices 2, 5, 7 are
        // stored as 2 - (-1) - 1 = 2, 5 - 2 - 1 = 2, 7 - 5 - 1 = 1; values -4 = 0xC400, 2.5 = 0x4100,
        // -8 = 0xC800.
        Example(
            encoding: .topK(count: 3), values: [0.5, 0, -4, 0, 0, 2.5, 0, -8], bytes: "03 00 00 00 02 02 01 00 C4 00 41 00 C8",
            decoded: [0, 0, -4, 0, 0, 2.5, 0, -8]),
        // k = 2 of 300: indices 0 and 299, stored as 0 and 298 = 0x12A, whose varint is AA 02;
        // values 1.0 and -1.0.
        Example(
            encoding: .topK(count: 2), values: [1] + Array(repeating: 0.5, count: 298) + [-1],
            bytes: "02 00 00 00 00 AA 02 00 3C 00 BC", decoded: [1] + Array(repeating: 0, count: 298) + [-1]),
        // Ties go to the lowest index: |1| = |-1| = |1|, k = 2 takes indices 0 and 1.
        Example(encoding: .topK(count: 2), values: [1, -1, 1], bytes: "02 00 00 00 00 00 00 3C 00 BC", decoded: [1, -1, 0]),
    ]

    @Test("encodes to the hand-computed bytes and decodes back", arguments: examples)
    func example(_ example: Example) throws {
        let bytes = example.encoding.encoded(example.values)
        #expect(hex(bytes) == example.bytes)
        #expect(bytes.count <= example.encoding.maxEncodedSize(count: example.values.count))
        let decoded = try example.encoding.decoded(hex(example.bytes), count: example.values.count)
        #expect(decoded == example.decoded)
    }

    @Test("the encoded size is exact for all but topk", arguments: [
        TensorEncoding.fp32, .fp16, .bf16, .q8(), .q8(blockSize: 1), .q8(blockSize: 7), .sign(), .sign(blockSize: 1), .sign(blockSize: 13),
    ])
    func exactSizes(_ encoding: TensorEncoding) {
        var generator = SeededGenerator(seed: 7)
        for count in [0, 1, 2, 7, 8, 9, 255, 256, 257, 4095, 4096, 4097, 10_000] {
            let bytes = encoding.encoded(randomVector(count: count, using: &generator))
            #expect(bytes.count == encoding.maxEncodedSize(count: count), "\(count) values")
        }
        #expect(TensorEncoding.q8(blockSize: 256).maxEncodedSize(count: 407_050) == 407_050 + 4 * 1591)
        #expect(TensorEncoding.sign(blockSize: 4096).maxEncodedSize(count: 407_050) == 4 * 100 + 99 * 512 + 194)
    }

    @Test("an empty vector: no bytes, except topk's entry count")
    func emptyVector() throws {
        for encoding in [TensorEncoding.fp32, .fp16, .bf16, .q8(), .sign()] {
            #expect(encoding.encoded([]) == [])
            #expect(try encoding.decoded([], count: 0) == [])
        }
        #expect(TensorEncoding.topK(count: 5).encoded([]) == [0, 0, 0, 0])
        #expect(try TensorEncoding.topK(count: 5).decoded([0, 0, 0, 0], count: 0) == [])
    }

    @Test("topk's size bound holds, and evenly spread indices come close to it")
    func topKBound() throws {
        // Indices every 129 values: every stored gap is 128, a two-byte varint; 1000 of them in
        // 129,000 values is as many two-byte varints as (n - k) / 128 allows.
        let n = 129_000
        var values = [Float](repeating: 0.001, count: n)
        for i in stride(from: 128, to: n, by: 129) { values[i] = 1 }
        let encoding = TensorEncoding.topK(count: 1000)
        let bytes = encoding.encoded(values)
        #expect(bytes.count == 4 + 2 * 1000 + 2 * 1000)
        // The bound also allows ⌊128,000 / 128²⌋ = 7 three-byte varints, which cannot coexist with
        // 1000 two-byte ones; that is all it overestimates by.
        #expect(encoding.maxEncodedSize(count: n) == bytes.count + 7)
        // Random vectors stay within the bound.
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<50 {
            let count = Int.random(in: 0...5000, using: &generator)
            let k = Int.random(in: 0...count + 3, using: &generator)
            let bytes = TensorEncoding.topK(count: k).encoded(randomVector(count: count, using: &generator))
            #expect(bytes.count <= TensorEncoding.topK(count: k).maxEncodedSize(count: count))
            #expect(bytes.count >= 4 + 3 * min(k, count))
        }
    }

    @Test("wire names and descriptions")
    func names() {
        let encodings: [TensorEncoding] = [.fp32, .fp16, .bf16, .q8(), .topK(count: 4070), .sign()]
        #expect(encodings.map(\.name) == ["fp32", "fp16", "bf16", "q8", "topk", "sign"])
        #expect(encodings.map(\.description) == ["fp32", "fp16", "bf16", "q8(256)", "topk(4070)", "sign(4096)"])
    }
}
