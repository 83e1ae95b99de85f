/// Conversions between binary32 and the two 16-bit formats, by bit manipulation.
///
/// Swift's `Float16` exists on x86-64 Linux, but without the F16C instructions (which a generic
/// x86-64 build cannot assume) every `Float16(x)` and `Float(h)` is a call into compiler-rt
/// (`__truncsfhf2`, `__extendhfsf2`), one value at a time. These functions are branch-free integer
/// and float arithmetic that the compiler vectorises; `Benchmarks/encodings.md` compares the two, and
/// the tests check them against `Float16` bit for bit.
enum HalfPrecision {
    /// 65504, the largest finite binary16, as binary32 bits.
    static let maxHalfAsFloatBits: UInt32 = 0x477F_E000
    /// The binary32 bits of infinity.
    static let floatInfinityBits: UInt32 = 0x7F80_0000

    /// The binary16 bits of `x`: rounded to nearest even, subnormals included; a finite `x` beyond
    /// ±65504 becomes ±65504 (0x7BFF), an infinity stays an infinity and a NaN a (quiet) NaN.
    ///
    /// The FPU does the rounding. For |x| with binary32 exponent e (2ᵉ ≤ |x| < 2ᵉ⁺¹), the binary16
    /// ulp is 2ᵉ⁻¹⁰, or 2⁻²⁴ for all subnormals (e < −14); adding M = 2^(max(e, −14) + 13) leaves a
    /// sum whose own ulp is exactly that, so the sum holds |x| rounded to nearest even, and its bits
    /// minus M's count the binary16 ulps in it: the mantissa with its leading bit, which a carry turns
    /// into the next exponent. Adding the exponent from M's bits gives the binary16 bits. It replaced
    /// a version of F. Giesen's `float_to_half_fast3_rtne` (identical output for all 2³² inputs) with
    /// a quarter fewer instructions.
    @inline(__always)
    static func half(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let magnitude = bits & 0x7FFF_FFFF
        // Clamp before rounding: 65520 and above would round up to infinity, and the receiver
        // refuses infinities, so a finite value never becomes one. (Infinities and NaNs are clamped
        // too, and replaced at the end.)
        let clamped = magnitude < maxHalfAsFloatBits ? magnitude : maxHalfAsFloatBits
        let power = Float(bitPattern: (clamped & 0x7F80_0000) &+ (13 << 23))
        let magic = power > 0.5 ? power : 0.5  // 2⁻¹ = 2^(−14 + 13)
        let sum = Float(bitPattern: clamped) + magic
        let ulps = sum.bitPattern &- magic.bitPattern
        // M's biased exponent is E + 13, with E ≥ 113 (2⁻¹⁴); the binary16 exponent field is E − 113.
        let finite = ((magic.bitPattern &- (126 << 23)) >> 13) &+ ulps
        let special: UInt32 = magnitude > floatInfinityBits ? 0x7E00 : 0x7C00
        let result = Int32(bitPattern: magnitude >= floatInfinityBits ? special : finite)
        return signed16(result, sign: bits)
    }

    /// `magnitude` (below 2¹⁵) with the sign of the binary32 `bits`, as 16 bits.
    ///
    /// Computed as a sign-extended Int32 so that narrowing four of them at once is one saturating
    /// pack (SSE2's packssdw) rather than a series of shuffles.
    @inline(__always)
    private static func signed16(_ magnitude: Int32, sign bits: UInt32) -> UInt16 {
        let sign = (Int32(bitPattern: bits) >> 16) & Int32(bitPattern: 0xFFFF_8000)
        return UInt16(bitPattern: Int16(truncatingIfNeeded: magnitude | sign))
    }

    /// The binary32 value of the finite binary16 bits `h` (exactly: every binary16 is a binary32).
    ///
    /// Exponent and mantissa move to their binary32 places; a normal value then only needs its
    /// exponent rebiased (+112, an integer addition), and a subnormal, m·2⁻²⁴, is computed as
    /// 2⁻¹⁴·(1 + m/1024) − 2⁻¹⁴, exactly. Neither touches a binary32 subnormal, which would cost a
    /// microcode assist on x86.
    ///
    /// `h` is widened with its sign extended, which SSE2 does by interleaving `h` with itself. Widened
    /// with zeros and shifted up, the optimiser interleaves it with whatever register is at hand,
    /// which in `decodeAdding` was the previous iteration's sum: a chain through every iteration that
    /// made it three times slower (0.93 against 0.36 ns per value).
    ///
    /// - Precondition: `h` is not an infinity or a NaN (the callers have refused them).
    @inline(__always)
    static func float(fromFiniteHalf h: UInt16) -> Float {
        let bits = UInt32(bitPattern: Int32(Int16(bitPattern: h)))
        let sign = bits & 0x8000_0000
        let shifted = (bits & 0x7FFF) << 13
        let normal = shifted &+ 0x3800_0000
        let subnormal = (Float(bitPattern: shifted | 0x3880_0000) - 0x1p-14).bitPattern
        return Float(bitPattern: (bits & 0x7C00 == 0 ? subnormal : normal) | sign)
    }

    /// The binary32 value of any binary16 bits, infinities and NaNs included (for error messages).
    static func float(fromAnyHalf h: UInt16) -> Float {
        guard isNonFinite(half: h) else { return float(fromFiniteHalf: h) }
        let sign: Float = h & 0x8000 == 0 ? 1 : -1
        return h & 0x03FF == 0 ? sign * .infinity : .nan
    }

    /// Whether binary16 bits are an infinity or a NaN: all five exponent bits set.
    @inline(__always)
    static func isNonFinite(half h: UInt16) -> Bool {
        h & 0x7C00 == 0x7C00
    }

    /// The bfloat16 bits of `x`: its upper 16 bits, rounded to nearest even; a finite `x` that would
    /// round to an infinity becomes the largest finite bfloat16 (0x7F7F, 3.3895314e38), an infinity
    /// stays an infinity and a NaN stays a NaN (made quiet, so that truncation cannot clear it).
    @inline(__always)
    static func bfloat(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: bits >> 16) & 0x8000
        let magnitude = bits & 0x7FFF_FFFF
        // Magnitudes stay below 2³¹, so adding the rounding bias cannot wrap.
        let rounded = (magnitude + 0x7FFF + ((magnitude >> 16) & 1)) >> 16
        let finite = min(rounded, 0x7F7F)
        let result =
            magnitude > floatInfinityBits ? (magnitude >> 16) | 0x0040 : (magnitude == floatInfinityBits ? 0x7F80 : finite)
        return UInt16(truncatingIfNeeded: result) | sign
    }

    /// Whether bfloat16 bits are an infinity or a NaN: all eight exponent bits set.
    @inline(__always)
    static func isNonFinite(bfloat b: UInt16) -> Bool {
        b & 0x7F80 == 0x7F80
    }
}
