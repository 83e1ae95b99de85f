import TensorEncoding

/// SplitMix64: a small, fast, seeded generator, so that every property test is reproducible.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Finite values that exercise the encodings' corners: zeros of both signs, binary32 and binary16
/// subnormals, the binary16 and bfloat16 limits and their neighbours, and the binary32 extremes.
let edgeValues: [Float] = [
    0, -0.0, 1, -1, 0.1, -2.5,
    .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, 0x1p-133, -0x1.4p-129,
    0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-14, 0x1.ff8p-15, 6e-8, -5.96e-8,
    65504, 65519.99, 65520, -65536, 1e5, -3e38,
    0x1.fep127, 0x1.fdp127, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
]

/// A vector like a gradient: magnitudes spread over many octaves (2⁻³⁰ to 2⁸), both signs, some
/// exact zeros and runs of equal values, and edge values sprinkled in when `edges` is true.
func randomVector(count: Int, using generator: inout SeededGenerator, edges: Bool = false) -> [Float] {
    var values = (0..<count).map { _ -> Float in
        switch Int.random(in: 0..<20, using: &generator) {
        case 0: return 0
        case 1: return 0.25
        default:
            let magnitude = Float.random(in: 1..<2, using: &generator) * Float(sign: .plus, exponent: Int.random(in: -30...8, using: &generator), significand: 1)
            return Bool.random(using: &generator) ? magnitude : -magnitude
        }
    }
    if edges && count > 0 {
        for value in edgeValues where Int.random(in: 0..<2, using: &generator) == 0 {
            values[Int.random(in: 0..<count, using: &generator)] = value
        }
    }
    return values
}

/// Bytes from hex pairs separated by spaces, as the README writes them: `"00 3C FF 7B"`.
func hex(_ text: String) -> [UInt8] {
    text.split(separator: " ").map { UInt8($0, radix: 16)! }
}

/// Bytes as the README writes them.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }.joined(separator: " ")
}

extension TensorEncoding {
    /// Decodes from a copy of `bytes` placed `misalignment` bytes past an aligned address, as a frame
    /// lands anywhere in a receive buffer.
    func decoded(_ bytes: [UInt8], count: Int, misalignment: Int) throws(TensorDecodingError) -> [Float] {
        let padded = [UInt8](repeating: 0xEE, count: misalignment) + bytes
        var values = [Float](repeating: .nan, count: count)
        let result = padded.withUnsafeBytes { raw in
            values.withUnsafeMutableBufferPointer { output in
                Result { () throws(TensorDecodingError) in
                    try decode(UnsafeRawBufferPointer(rebasing: raw[misalignment...]), into: output)
                }
            }
        }
        try result.get()
        return values
    }

    /// `decodeAdding` on arrays.
    func decodeAdding(_ bytes: [UInt8], scale: Float, into output: inout [Float]) throws(TensorDecodingError) {
        let result = bytes.withUnsafeBytes { raw in
            output.withUnsafeMutableBufferPointer { output in
                Result { () throws(TensorDecodingError) in try decodeAdding(raw, scale: scale, into: output) }
            }
        }
        try result.get()
    }

    /// The error `decode` throws, or nil.
    func refusal(_ bytes: [UInt8], count: Int) -> TensorDecodingError? {
        do {
            _ = try decoded(bytes, count: count)
            return nil
        } catch {
            return error
        }
    }
}

extension ErrorFeedbackEncoder {
    /// `encode` on arrays, returning the payload.
    mutating func encode(_ values: [Float]) throws(TensorDecodingError) -> [UInt8] {
        var output: [UInt8] = []
        let result = values.withUnsafeBufferPointer { values in
            Result { () throws(TensorDecodingError) in try encode(values, into: &output) }
        }
        try result.get()
        return output
    }
}

/// The bits of a binary32, for exact comparisons that also hold for −0 and NaN.
func bits(_ values: [Float]) -> [UInt32] {
    values.map(\.bitPattern)
}
