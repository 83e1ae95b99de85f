import Testing
import TensorEncoding

/// Every encoding decodes to within its documented error bound, on seeded random vectors with edge
/// values, at counts that are and are not multiples of the block size, from payloads at any address.
@Suite("Round trips within the error bounds")
struct RoundTripTests {
    static let counts = [1, 2, 7, 255, 256, 257, 1000, 4097, 9000]

    /// Random vectors of every count in `counts`, three per count.
    static func vectors(seed: UInt64) -> [[Float]] {
        var generator = SeededGenerator(seed: seed)
        return counts.flatMap { count in (0..<3).map { _ in randomVector(count: count, using: &generator, edges: true) } }
    }

    /// Decodes `bytes` from an aligned and a misaligned address, requiring the same bits.
    static func decode(_ encoding: TensorEncoding, _ bytes: [UInt8], count: Int) throws -> [Float] {
        let aligned = try encoding.decoded(bytes, count: count, misalignment: 0)
        let odd = try encoding.decoded(bytes, count: count, misalignment: 3)
        #expect(bits(aligned) == bits(odd))
        return aligned
    }

    @Test("fp32 is exact")
    func fp32() throws {
        for values in Self.vectors(seed: 1) {
            #expect(bits(try Self.decode(.fp32, TensorEncoding.fp32.encoded(values), count: values.count)) == bits(values))
        }
    }

    @Test("fp16: within half an ulp, clamped beyond 65504")
    func fp16() throws {
        for values in Self.vectors(seed: 2) {
            let decoded = try Self.decode(.fp16, TensorEncoding.fp16.encoded(values), count: values.count)
            for (x, y) in zip(values, decoded) {
                if x.magnitude > 65504 {
                    #expect(y == (x < 0 ? -65504 : 65504))
                } else {
                    // Half a binary16 ulp: 2⁻¹¹ relative for normals, 2⁻²⁵ absolute for subnormals.
                    #expect((x - y).magnitude <= max(0x1p-11 * x.magnitude, 0x1p-25), "\(x) -> \(y)")
                }
                #expect(y.sign == x.sign || y == 0)
            }
        }
    }

    @Test("bf16: within half an ulp everywhere")
    func bf16() throws {
        for values in Self.vectors(seed: 3) {
            let decoded = try Self.decode(.bf16, TensorEncoding.bf16.encoded(values), count: values.count)
            for (x, y) in zip(values, decoded) {
                #expect(y.isFinite)
                // 2⁻⁸ relative (7 stored mantissa bits); 2⁻¹³⁴ absolute among binary32 subnormals.
                #expect(Double(x - y).magnitude <= max(0x1p-8 * Double(x.magnitude), 0x1p-134), "\(x) -> \(y)")
            }
        }
    }

    @Test("q8: |x - x'| <= s/2 per block, s = max|x|/127", arguments: [1, 3, 64, 256, 4096])
    func q8(blockSize: Int) throws {
        let encoding = TensorEncoding.q8(blockSize: blockSize)
        for values in Self.vectors(seed: 4) {
            let bytes = encoding.encoded(values)
            let decoded = try Self.decode(encoding, bytes, count: values.count)
            for (block, start) in stride(from: 0, to: values.count, by: blockSize).enumerated() {
                let end = min(start + blockSize, values.count)
                let offset = block * (4 + blockSize)
                let scale = Float(bitPattern: bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
                let largest = values[start..<end].map(\.magnitude).max()!
                // The scale is max|x| / 127, rounded (up, when it is subnormal).
                #expect(scale >= largest / 127 * (1 - 0x1p-22) && scale <= max(largest / 127 * (1 + 0x1p-22), largest / 127 + 0x1p-149))
                #expect(decoded[start..<end].allSatisfy { $0.isFinite })
                for i in start..<end {
                    let error = Double(values[i]) - Double(decoded[i])
                    #expect(error.magnitude <= Double(scale) / 2 * (1 + 0x1p-14), "value \(i): \(values[i]) -> \(decoded[i]), s = \(scale)")
                }
            }
        }
    }

    @Test("q8 keeps tiny and huge blocks within the bound")
    func q8Extremes() throws {
        let encoding = TensorEncoding.q8(blockSize: 4)
        // Blocks whose max|x| / 127 is subnormal (rounded up, not down), zero, or near the top of
        // the binary32 range (127 · s must stay finite).
        let blocks: [[Float]] = [
            [.leastNonzeroMagnitude, 0, -.leastNonzeroMagnitude, 0],
            [190 * .leastNonzeroMagnitude, 63 * .leastNonzeroMagnitude, -95 * .leastNonzeroMagnitude, 7 * .leastNonzeroMagnitude],
            [0x1p-133, -0x1.4p-129, 0x1.6p-130, 0],
            [0, -0.0, 0, 0],
            [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e38, -3e38],
        ]
        for block in blocks {
            let bytes = encoding.encoded(block)
            let scale = Float(bitPattern: bytes[0..<4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
            let decoded = try encoding.decoded(bytes, count: 4)
            for (x, y) in zip(block, decoded) {
                #expect(y.isFinite)
                #expect((Double(x) - Double(y)).magnitude <= Double(scale) / 2 * (1 + 0x1p-14), "\(x) -> \(y), s = \(scale)")
            }
        }
    }

    @Test("sign: ±(mean |x|) per block, and ‖x − x′‖² = ‖x‖² − ‖x‖₁²/B", arguments: [1, 8, 13, 4096])
    func sign(blockSize: Int) throws {
        let encoding = TensorEncoding.sign(blockSize: blockSize)
        // Edge values would make ‖x‖² overflow in the identity; the identity needs moderate values.
        var generator = SeededGenerator(seed: 5)
        for count in Self.counts {
            let values = randomVector(count: count, using: &generator)
            let decoded = try Self.decode(encoding, encoding.encoded(values), count: count)
            for start in stride(from: 0, to: count, by: blockSize) {
                let x = values[start..<min(start + blockSize, count)].map(Double.init)
                let y = decoded[start..<min(start + blockSize, count)].map(Double.init)
                let mean = x.map(\.magnitude).reduce(0, +) / Double(x.count)
                for (xi, yi) in zip(x, y) {
                    #expect((yi < 0) == (xi < 0))
                    #expect((yi.magnitude - mean).magnitude <= mean * 0x1p-23)
                }
                let error = zip(x, y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                let norm2 = x.map { $0 * $0 }.reduce(0, +)
                let norm1 = x.map(\.magnitude).reduce(0, +)
                let identity = norm2 - norm1 * norm1 / Double(x.count)
                #expect((error - identity).magnitude <= 1e-6 * norm2 + 1e-300)
            }
        }
    }

    @Test("topk: the k largest as fp16, zeros elsewhere", arguments: [0, 1, 10, 100, 10_000])
    func topK(k: Int) throws {
        let encoding = TensorEncoding.topK(count: k)
        for values in Self.vectors(seed: 6) {
            let decoded = try Self.decode(encoding, encoding.encoded(values), count: values.count)
            #expect(decoded.filter { $0 != 0 }.count <= min(k, values.count))
            let expected = Set(TopKSelectionTests.referenceSelection(values, k: k))
            let asHalves = try TensorEncoding.fp16.decoded(TensorEncoding.fp16.encoded(values), count: values.count)
            for i in 0..<values.count {
                if expected.contains(i) {
                    #expect(decoded[i].bitPattern == asHalves[i].bitPattern)
                } else {
                    #expect(decoded[i] == 0)
                }
            }
        }
    }

    @Test("a single value")
    func singleValue() throws {
        for encoding in [TensorEncoding.fp32, .fp16, .bf16, .sign(), .topK(count: 1), .topK(count: 3)] {
            for x: Float in [3.25, -3.25, 0] {
                #expect(try encoding.decoded(encoding.encoded([x]), count: 1) == [x], "\(encoding)")
            }
        }
        // q8: s = 3.25 / 127 rounded, so 127 · s is 3.25 to within its rounding.
        for x: Float in [3.25, -3.25, 0] {
            let decoded = try TensorEncoding.q8().decoded(TensorEncoding.q8().encoded([x]), count: 1)
            #expect((decoded[0] - x).magnitude <= x.magnitude * 0x1p-22)
        }
    }
}
