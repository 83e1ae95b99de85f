import FoundationEssentials
import Glibc

/// Xoshiro256** seeded through SplitMix64: a fast generator whose output depends only on the seed, on
/// every platform and Swift version, so the same seed gives the same weights and batches bit for bit.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Hashable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Seeds the four words from SplitMix64(seed), as the xoshiro authors recommend.
    public init(seed: UInt64) {
        var splitMix = SplitMix64(seed: seed)
        s0 = splitMix.next()
        s1 = splitMix.next()
        s2 = splitMix.next()
        s3 = splitMix.next()
    }

    public mutating func next() -> UInt64 {
        let result = (s1 &* 5).rotatedLeft(7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3.rotatedLeft(45)
        return result
    }

    /// A uniform integer in `0..<bound`, without modulo bias (Lemire's method).
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0)
        let bound = UInt64(bound)
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return Int(product.high)
    }

    /// A uniform `Double` in `[0, 1)` from the top 53 bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A standard normal sample (Box-Muller; one of the pair is discarded for simplicity).
    public mutating func nextNormal() -> Double {
        let u1 = 1 - nextUnit()  // (0, 1]: log is finite
        let u2 = nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// SplitMix64, used to expand one seed into independent seeds.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Mixes a seed with stream numbers (e.g. an epoch) into a new seed.
    public static func derive(_ seed: UInt64, _ streams: UInt64...) -> UInt64 {
        var generator = SplitMix64(seed: seed)
        var result = generator.next()
        for stream in streams {
            generator = SplitMix64(seed: result ^ (stream &* 0xD1B5_4A32_D192_ED03))
            result = generator.next()
        }
        return result
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}
