import Testing
import TensorEncoding

/// `decodeAdding` is `decode` followed by `output[i] += scale * decoded[i]`, bit for bit, and for
/// topk touches nothing else.
@Suite("decodeAdding")
struct DecodeAddingTests {
    static let encodings: [TensorEncoding] = [.fp32, .fp16, .bf16, .q8(), .q8(blockSize: 7), .sign(), .sign(blockSize: 13), .topK(count: 37)]

    @Test("equals decode then add, bit for bit", arguments: encodings)
    func equalsDecodeThenAdd(_ encoding: TensorEncoding) throws {
        var generator = SeededGenerator(seed: 42)
        for count in [1, 100, 1001] {
            let values = randomVector(count: count, using: &generator)
            // −0.0 where topk sends nothing: adding even a zero would turn it into +0.0.
            let base = randomVector(count: count, using: &generator).map { $0 == 0 ? -0.0 : $0 }
            let bytes = encoding.encoded(values)
            let decoded = try encoding.decoded(bytes, count: count)
            for scale: Float in [1, -1, -0.037, 3] {
                var fused = base
                try encoding.decodeAdding(bytes, scale: scale, into: &fused)
                var expected = base
                for i in 0..<count {
                    if case .topK = encoding, decoded[i] == 0, values[i] != 0 || !Self.listed(i, bytes) { continue }
                    expected[i] += scale * decoded[i]
                }
                #expect(bits(fused) == bits(expected), "\(encoding), \(count) values, scale \(scale)")
            }
        }
    }

    /// Whether a topk payload lists index `i`.
    static func listed(_ i: Int, _ bytes: [UInt8]) -> Bool {
        TopKSelectionTests.entries(bytes).indices.contains(i)
    }

    @Test("topk leaves every unlisted entry as it was, even a NaN")
    func topKTouchesOnlyItsEntries() throws {
        var output: [Float] = [.nan, -0.0, 5, .infinity, 7]
        try TensorEncoding.topK(count: 1).decodeAdding([1, 0, 0, 0, 2, 0, 0x3C], scale: 2, into: &output)
        #expect(bits(output) == bits([.nan, -0.0, 7, .infinity, 7]))
    }
}
