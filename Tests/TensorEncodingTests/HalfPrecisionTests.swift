import Testing
import TensorEncoding

/// fp16 and bf16 against references that share no code with the encoder: Swift's `Float16` (whose
/// conversions are compiler-rt's) and a bfloat16 rounding done in Double.
@Suite("fp16 and bf16 conversions")
struct HalfPrecisionTests {
    /// Binary32 bit patterns to convert: a stride through all 2³² of them, plus every pattern in the
    /// regions where rounding changes character (binary16 subnormals, the clamp, bfloat16's top).
    static let patterns: [UInt32] = {
        var patterns = Array(stride(from: UInt32(0), to: UInt32.max - 8191, by: 8191))
        // Around 2⁻²⁵…2⁻¹³: half-way cases of binary16 subnormals and the subnormal/normal border.
        patterns += stride(from: UInt32(0x3300_0000), to: 0x3900_0000, by: 127)
        // 65504 to 65536 and beyond: where rounding would reach infinity and the clamp takes over.
        patterns += (0x477F_D000 as UInt32)...0x4780_2000
        // The largest binary32 values, where bfloat16 would round up to infinity.
        patterns += (0x7F7F_0000 as UInt32)...0x7F80_0001
        // Infinities and NaNs.
        patterns += [0x7F80_0000, 0x7FC0_0000, 0x7F80_0001, 0x7FFF_FFFF, 0x7FBF_FFFF]
        return patterns + patterns.map { $0 | 0x8000_0000 }
    }()

    /// The binary16 bits the fp16 encoding must give: Float16's, except that a finite value beyond
    /// ±65504 is clamped.
    static func expectedHalf(_ x: Float) -> UInt16 {
        if x.isFinite && x.magnitude > 65504 { return x < 0 ? 0xFBFF : 0x7BFF }
        return Float16(x).bitPattern
    }

    @Test("fp16 encodes like Float16, clamped, at every sampled bit pattern")
    func fp16MatchesFloat16() {
        let values = Self.patterns.map { Float(bitPattern: $0) }
        let bytes = TensorEncoding.fp16.encoded(values)
        #expect(bytes.count == 2 * values.count)
        var mismatches: [String] = []
        for (i, x) in values.enumerated() {
            let half = UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8
            if x.isNaN {
                // NaN stays NaN (payload not kept): exponent all ones, mantissa not zero.
                if half & 0x7C00 != 0x7C00 || half & 0x03FF == 0 { mismatches.append("NaN \(x.bitPattern) -> \(half)") }
            } else if half != Self.expectedHalf(x) {
                mismatches.append("\(x) (0x\(String(x.bitPattern, radix: 16))) -> 0x\(String(half, radix: 16)), expected 0x\(String(Self.expectedHalf(x), radix: 16))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
    }

    @Test("fp16 never turns a finite value into an infinity")
    func fp16ClampsInsteadOfOverflowing() throws {
        let values: [Float] = [65504, 65519, 65520, 70000, 1e10, .greatestFiniteMagnitude]
        let decoded = try TensorEncoding.fp16.decoded(TensorEncoding.fp16.encoded(values + values.map { -$0 }), count: 12)
        #expect(decoded == Array(repeating: 65504, count: 6) + Array(repeating: -65504, count: 6))
    }

    @Test("fp16 decodes every finite binary16 exactly, as Float16 does")
    func fp16DecodesEveryHalf() throws {
        let halves = (0...UInt16.max).filter { $0 & 0x7C00 != 0x7C00 }
        let bytes = halves.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] }
        let decoded = try TensorEncoding.fp16.decoded(bytes, count: halves.count)
        let expected = halves.map { Float(Float16(bitPattern: $0)) }
        #expect(bits(decoded) == bits(expected))
        // And back again: every binary16 is a binary32, so encoding returns the same bits.
        #expect(TensorEncoding.fp16.encoded(decoded) == bytes)
    }

    /// The bfloat16 nearest to `x` (ties to even), found by comparing distances in Double, then
    /// clamped to the largest finite bfloat16.
    static func expectedBFloat(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x0040 }
        if x.isInfinite { return UInt16(bits >> 16) }
        let down = bits & 0xFFFF_0000
        let up = down &+ 0x1_0000
        let below = Double(x).magnitude - Double(Float(bitPattern: down)).magnitude
        // Rounding up from the largest finite bfloat16 reaches the infinity's bits; clamp.
        let upMagnitude = up & 0x7FFF_FFFF >= 0x7F80_0000 ? Double.infinity : Double(Float(bitPattern: up)).magnitude
        let above = upMagnitude - Double(x).magnitude
        let chooseUp = above < below || (above == below && (down >> 16) & 1 == 1)
        if chooseUp && up & 0x7FFF_FFFF >= 0x7F80_0000 { return UInt16(down >> 16) }
        return UInt16((chooseUp ? up : down) >> 16)
    }

    @Test("bf16 rounds to nearest even and clamps, at every sampled bit pattern")
    func bf16MatchesReference() {
        let values = Self.patterns.map { Float(bitPattern: $0) }
        let bytes = TensorEncoding.bf16.encoded(values)
        var mismatches: [String] = []
        for (i, x) in values.enumerated() {
            let b = UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8
            let expected = Self.expectedBFloat(x)
            if x.isNaN ? (b & 0x7F80 != 0x7F80 || b & 0x7F == 0) : b != expected {
                mismatches.append("0x\(String(x.bitPattern, radix: 16)) -> 0x\(String(b, radix: 16)), expected 0x\(String(expected, radix: 16))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
    }
}
