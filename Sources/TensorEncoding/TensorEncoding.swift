// The kernels copy binary32 values and write multi-byte fields as the host lays them out, so the
// wire's little-endian layout is only right on a little-endian host (every platform Swift supports
// except s390x).
#if !_endian(little)
#error("TensorEncoding writes the host's byte order, which must be little-endian like the wire")
#endif

/// A compact encoding of a vector of binary32 values, for a parameter server's pushed updates and
/// pulled weights.
///
/// Every encoding is a flat, little-endian byte layout that a third party can implement from
/// `Sources/TensorEncoding/README.md`. The number of values `n` is not part of any payload: the
/// receiver knows it (it owns the parameters), and a payload of the wrong length is refused. Neither
/// are the block sizes of ``q8(blockSize:)`` and ``sign(blockSize:)``: both sides must agree on them.
///
/// | Encoding | Bytes for n values | Error per value |
/// | --- | --- | --- |
/// | ``fp32`` | 4n | none |
/// | ``fp16`` | 2n | half a binary16 ulp: at most 2⁻¹¹·\|x\| (2⁻²⁵ below 2⁻¹⁴); beyond ±65504, clamped |
/// | ``bf16`` | 2n | half a bfloat16 ulp: at most 2⁻⁸·\|x\| |
/// | ``q8(blockSize:)`` | n + 4·⌈n/B⌉ | s/2 with s = max\|x\|/127 of the block (up to binary32 rounding) |
/// | ``topK(count:)`` | 4 + 2k + 1 to 5 bytes per index (bound: ``maxEncodedSize(count:)``) | the k largest magnitudes as ``fp16``; the rest are dropped |
/// | ``sign(blockSize:)`` | 4 + ⌈L/8⌉ per block of L values | ‖x − x′‖² = ‖x‖² − ‖x‖₁²/L per block |
///
/// Encoding appends to a byte array (or fills caller memory); decoding validates the whole payload
/// before writing anything, so a refused payload leaves the output untouched:
///
/// ```swift
/// let encoding = TensorEncoding.q8()
/// var bytes: [UInt8] = []
/// gradient.withUnsafeBufferPointer { encoding.encode($0, into: &bytes) }
/// try bytes.withUnsafeBytes { payload in
///     try weights.withUnsafeMutableBufferPointer { w in
///         try encoding.decodeAdding(payload, scale: -learningRate, into: w)
///     }
/// }
/// ```
public enum TensorEncoding: Sendable, Hashable {
    /// IEEE 754 binary32, little-endian: the values as they are (4 bytes each).
    case fp32
    /// IEEE 754 binary16, little-endian, rounded to nearest even; finite values beyond the binary16
    /// range are clamped to ±65504 (2 bytes each).
    case fp16
    /// bfloat16: the upper 16 bits of binary32, rounded to nearest even; finite values beyond its
    /// range are clamped to ±3.3895314e38 (2 bytes each).
    case bf16
    /// Blockwise 8-bit quantisation: per block of `blockSize` values, a binary32 scale and one
    /// signed byte per value.
    case q8(blockSize: Int = TensorEncoding.defaultQ8BlockSize)
    /// The `count` entries of largest magnitude, as ascending indices and ``fp16`` values; the
    /// others read as zero. A decoder reads the number of entries from the payload.
    case topK(count: Int)
    /// Scaled sign: per block of `blockSize` values, the mean magnitude and one sign bit per value
    /// (Karimireddy et al. 2019).
    case sign(blockSize: Int = TensorEncoding.defaultSignBlockSize)

    /// The block size ``q8(blockSize:)`` uses unless told otherwise: 256 values, so the scale costs
    /// 4 bytes per 256 (1.6 % on top of the bytes).
    public static let defaultQ8BlockSize = 256

    /// The block size ``sign(blockSize:)`` uses unless told otherwise: 4096 values, so the scale
    /// costs 32 bits per 4096 (0.8 % on top of the sign bits).
    ///
    /// Smaller blocks never increase the error (see `README.md`) but cost 32 bits each.
    public static let defaultSignBlockSize = 4096

    /// The wire name: `fp32`, `fp16`, `bf16`, `q8`, `topk` or `sign`.
    public var name: String {
        switch self {
        case .fp32: "fp32"
        case .fp16: "fp16"
        case .bf16: "bf16"
        case .q8: "q8"
        case .topK: "topk"
        case .sign: "sign"
        }
    }

    /// The encoding's parameter: the block size of ``q8(blockSize:)`` and ``sign(blockSize:)``, the
    /// entry count of ``topK(count:)``, `nil` for the others.
    public var parameter: Int? {
        switch self {
        case .fp32, .fp16, .bf16: nil
        case .q8(let blockSize), .sign(let blockSize): blockSize
        case .topK(let count): count
        }
    }

    /// The number of bytes the encoders write for `count` values: exact for
    /// every encoding but ``topK(count:)``, for which it is an upper bound.
    ///
    /// With k = min(count of the encoding, `count`), a ``topK(count:)`` payload is 4 + 2k bytes plus
    /// one varint per entry. Entry i stores cᵢ = indexᵢ − indexᵢ₋₁ − 1, and the cᵢ add up to at most
    /// n − k, so at most ⌊(n − k)/128ʲ⌋ of them reach 128ʲ and need a (j + 1)-th byte. The bound is
    /// 4 + 2k + k + Σⱼ₌₁…₄ min(k, ⌊(n − k)/128ʲ⌋), close to the size when the gaps are even.
    ///
    /// - Parameter count: The number of values, n.
    /// - Returns: The encoded size in bytes (for `topK`, the most it can be).
    public func maxEncodedSize(count: Int) -> Int {
        precondition(count >= 0, "negative value count \(count)")
        switch self {
        case .fp32:
            return count * 4
        case .fp16, .bf16:
            return count * 2
        case .q8(let blockSize):
            precondition(blockSize > 0, "q8 block size \(blockSize) is not positive")
            return count + 4 * Self.blockCount(count, blockSize)
        case .sign(let blockSize):
            precondition(blockSize > 0, "sign block size \(blockSize) is not positive")
            return SignEncoding.size(count: count, blockSize: blockSize)
        case .topK(let k):
            precondition(k >= 0, "topk count \(k) is negative")
            return TopKEncoding.maxSize(count: count, entries: min(k, count))
        }
    }

    /// ⌈count / blockSize⌉, without the overflow of `count + blockSize - 1` for huge block sizes.
    @inline(__always)
    static func blockCount(_ count: Int, _ blockSize: Int) -> Int {
        count == 0 ? 0 : (count - 1) / blockSize + 1
    }
}

extension TensorEncoding: CustomStringConvertible {
    /// The wire name and, when it has one, the parameter: `fp16`, `q8(256)`, `topk(4070)`.
    public var description: String {
        parameter.map { "\(name)(\($0))" } ?? name
    }
}
