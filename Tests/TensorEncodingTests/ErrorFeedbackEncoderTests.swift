import Testing
import TensorEncoding

/// The residual is exactly what the receiver did not get, so no gradient mass is ever lost; DGC's
/// momentum correction and masking follow the paper.
@Suite("Error feedback")
struct ErrorFeedbackEncoderTests {
    static let encodings: [TensorEncoding] = [.fp32, .fp16, .bf16, .q8(blockSize: 64), .sign(blockSize: 100), .topK(count: 10)]

    /// A gradient with a steady part per value (so mass builds up where an encoding drops it) and
    /// noise around it.
    static func gradient(step: Int, bias: [Float], using generator: inout SeededGenerator) -> [Float] {
        bias.map { $0 + Float.random(in: -0.01...0.01, using: &generator) }
    }

    @Test("no mass is lost over 1,000 steps: decoded + residual = inputs", arguments: encodings)
    func conservesMass(_ encoding: TensorEncoding) throws {
        let n = 300
        var generator = SeededGenerator(seed: 77)
        let bias = (0..<n).map { _ in Float.random(in: -0.001...0.001, using: &generator) * (Bool.random(using: &generator) ? 1 : 100) }
        var compressor = ErrorFeedbackEncoder(count: n, encoding: encoding)
        var sent = [Double](repeating: 0, count: n)
        var input = [Double](repeating: 0, count: n)
        var plainSent = [Double](repeating: 0, count: n)
        var magnitude = 0.0
        for step in 0..<1000 {
            let g = Self.gradient(step: step, bias: bias, using: &generator)
            let before = compressor.residual
            let payload = try compressor.encode(g)
            let decoded = try encoding.decoded(payload, count: n)
            for i in 0..<n {
                input[i] += Double(g[i])
                sent[i] += Double(decoded[i])
                magnitude += Double(g[i].magnitude)
            }
            // Exactly the accumulator minus what the receiver decodes, in binary32.
            #expect(bits(compressor.residual) == bits((0..<n).map { (before[$0] + g[$0]) - decoded[$0] }))
            // The same encoding without memory, for contrast.
            let plain = try encoding.decoded(encoding.encoded(g), count: n)
            for i in 0..<n { plainSent[i] += Double(plain[i]) }
        }
        let residual = compressor.residual.map(Double.init)
        let lost = zip(input, zip(sent, residual)).map { $0 - ($1.0 + $1.1) }.map(\.magnitude).reduce(0, +)
        // Float rounding of one addition and one subtraction per value and step.
        #expect(lost <= 1e-6 * magnitude, "lost \(lost) of \(magnitude)")
        // Without error feedback, the lossy encodings do lose mass (so the check above can fail).
        let plainLost = zip(input, plainSent).map { ($0 - $1).magnitude }.reduce(0, +)
        if encoding != .fp32 {
            #expect(plainLost > 100 * lost + 1e-3)
        }
    }

    @Test("fp32 leaves a zero residual")
    func fp32IsExact() throws {
        var generator = SeededGenerator(seed: 1)
        var compressor = ErrorFeedbackEncoder(count: 500, encoding: .fp32)
        for _ in 0..<5 {
            let g = randomVector(count: 500, using: &generator)
            #expect(try TensorEncoding.fp32.decoded(compressor.encode(g), count: 500) == g)
            #expect(compressor.residual.allSatisfy { $0 == 0 })
        }
    }

    @Test("fp16 keeps what the clamp cut off")
    func clampRemainderIsKept() throws {
        var compressor = ErrorFeedbackEncoder(count: 2, encoding: .fp16)
        #expect(try TensorEncoding.fp16.decoded(compressor.encode([100_000, -1]), count: 2) == [65504, -1])
        #expect(compressor.residual == [34496, 0])
        #expect(try TensorEncoding.fp16.decoded(compressor.encode([0, 0]), count: 2) == [34496, 0])
        #expect(compressor.residual == [0, 0])
    }

    @Test("DGC: momentum correction and factor masking, step by step (Lin et al. 2018, Algorithm 1)")
    func deepGradientCompression() throws {
        // u ← m·u + g; v ← v + u; send the top k of v; clear v and u where sent. With m = 0.5, k = 1
        // and a constant g = (1, 0.25, −0.5), by hand:
        //   step 1: u = (1, .25, −.5),     v = (1, .25, −.5)        sends #0 = 1
        //   step 2: u = (1, .375, −.75),   v = (1, .625, −1.25)     sends #2 = −1.25
        //   step 3: u = (1.5, .4375, −.5), v = (2.5, 1.0625, −.5)   sends #0 = 2.5
        //   step 4: u = (1, .46875, −.75), v = (1, 1.53125, −1.25)  sends #1 = 1.53125
        var compressor = ErrorFeedbackEncoder(count: 3, encoding: .topK(count: 1), momentum: 0.5)
        let g: [Float] = [1, 0.25, -0.5]
        let expected: [(sent: [Float], residual: [Float], velocity: [Float])] = [
            ([1, 0, 0], [0, 0.25, -0.5], [0, 0.25, -0.5]),
            ([0, 0, -1.25], [1, 0.625, 0], [1, 0.375, 0]),
            ([2.5, 0, 0], [0, 1.0625, -0.5], [0, 0.4375, -0.5]),
            ([0, 1.53125, 0], [1, 0, -1.25], [1, 0, -0.75]),
        ]
        for (step, want) in expected.enumerated() {
            let sent = try TensorEncoding.topK(count: 1).decoded(compressor.encode(g), count: 3)
            #expect(sent == want.sent, "step \(step + 1)")
            #expect(compressor.residual == want.residual, "step \(step + 1)")
            #expect(compressor.velocity == want.velocity, "step \(step + 1)")
        }
        // Without masking the velocity, #0 would be sent again at step 3 with the stale momentum of
        // step 1 still in it; with plain error feedback (m = 0), step 2 sends #0 (|1| ties |−1|).
        var plain = ErrorFeedbackEncoder(count: 3, encoding: .topK(count: 1))
        _ = try plain.encode(g)
        #expect(try TensorEncoding.topK(count: 1).decoded(plain.encode(g), count: 3) == [1, 0, 0])
        #expect(plain.velocity.isEmpty)
    }

    @Test("a non-finite accumulator throws, appends nothing and keeps everything in the residual")
    func nonFiniteInput() {
        for encoding in Self.encodings {
            var compressor = ErrorFeedbackEncoder(count: 4, encoding: encoding)
            var output: [UInt8] = [0xAB]
            let values: [Float] = [1, .nan, 2, 3]
            #expect(throws: TensorDecodingError.self, "\(encoding)") {
                try values.withUnsafeBufferPointer { try compressor.encode($0, into: &output) }
            }
            #expect(output == [0xAB])
            #expect(bits(compressor.residual) == bits(values))
            compressor.reset()
            #expect(compressor.residual == [0, 0, 0, 0])
            #expect(throws: Never.self) { try compressor.encode([1, 2, 3, 4]) }
        }
    }

    @Test("the encoding can change between steps (DGC's sparsity warm-up); the residual carries over")
    func changingEncoding() throws {
        var compressor = ErrorFeedbackEncoder(count: 4, encoding: .topK(count: 1), momentum: 0.9)
        _ = try compressor.encode([4, 3, 2, 1])
        #expect(compressor.residual == [0, 3, 2, 1])
        compressor.encoding = .topK(count: 3)
        #expect(try TensorEncoding.topK(count: 3).decoded(compressor.encode([0, 0, 0, 0]), count: 4) == [0, 5.7, 3.8, 1.9].map { Float(Float16($0)) })
    }

    @Test("payloads append to what the output already holds")
    func appends() throws {
        var compressor = ErrorFeedbackEncoder(count: 2, encoding: .fp16)
        var output: [UInt8] = [1, 2, 3]
        try [Float](arrayLiteral: 1, -2.5).withUnsafeBufferPointer { try compressor.encode($0, into: &output) }
        #expect(output == [1, 2, 3, 0x00, 0x3C, 0x00, 0xC1])
    }
}
