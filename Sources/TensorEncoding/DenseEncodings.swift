/// The kernels of `fp32`, `fp16` and `bf16`: one fixed-size element per value.
///
/// Each is a plain counted loop over raw memory with no early exit, so that the optimiser vectorises
/// it. Payload bytes may sit at any address (a frame lands anywhere in a receive buffer), so every
/// load and store is unaligned. Validation is its own pass, a reduction that only says whether
/// anything is wrong; the search for the first bad value, for the error, runs only then.
enum DenseEncodings {
    // MARK: fp32

    static func encodeFP32(_ values: UnsafePointer<Float>, count: Int, into output: UnsafeMutableRawPointer) {
        output.copyMemory(from: values, byteCount: count &* 4)
    }

    /// Whether any of `count` binary32 values is an infinity or a NaN.
    ///
    /// An exponent of all ones plus one carries into the sign bit: one OR-reduction, where a
    /// comparison per value tempts the optimiser into an early-exit loop it cannot vectorise.
    static func anyNonFiniteFP32(_ bytes: UnsafeRawPointer, count: Int) -> Bool {
        var carries: UInt32 = 0
        for i in 0..<count {
            carries |= (bytes.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self) & 0x7F80_0000) &+ 0x0080_0000
        }
        return carries & 0x8000_0000 != 0
    }

    static func decodeFP32(_ bytes: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(output).copyMemory(from: bytes, byteCount: count &* 4)
    }

    static func decodeAddingFP32(_ bytes: UnsafeRawPointer, count: Int, scale: Float, into output: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            output[i] += scale * bytes.loadUnaligned(fromByteOffset: i &* 4, as: Float.self)
        }
    }

    // MARK: fp16

    static func encodeFP16(_ values: UnsafePointer<Float>, count: Int, into output: UnsafeMutableRawPointer) {
        for i in 0..<count {
            output.storeBytes(of: HalfPrecision.half(values[i]), toByteOffset: i &* 2, as: UInt16.self)
        }
    }

    /// Whether any of `count` binary16 values is an infinity or a NaN (as ``anyNonFiniteFP32(_:count:)``).
    static func anyNonFiniteFP16(_ bytes: UnsafeRawPointer, count: Int) -> Bool {
        var carries: UInt16 = 0
        for i in 0..<count {
            carries |= (bytes.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self) & 0x7C00) &+ 0x0400
        }
        return carries & 0x8000 != 0
    }

    static func decodeFP16(_ bytes: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            output[i] = HalfPrecision.float(fromFiniteHalf: bytes.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
        }
    }

    static func decodeAddingFP16(_ bytes: UnsafeRawPointer, count: Int, scale: Float, into output: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            output[i] += scale * HalfPrecision.float(fromFiniteHalf: bytes.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
        }
    }

    // MARK: bf16

    static func encodeBF16(_ values: UnsafePointer<Float>, count: Int, into output: UnsafeMutableRawPointer) {
        for i in 0..<count {
            output.storeBytes(of: HalfPrecision.bfloat(values[i]), toByteOffset: i &* 2, as: UInt16.self)
        }
    }

    /// Whether any of `count` bfloat16 values is an infinity or a NaN (as ``anyNonFiniteFP32(_:count:)``).
    static func anyNonFiniteBF16(_ bytes: UnsafeRawPointer, count: Int) -> Bool {
        var carries: UInt16 = 0
        for i in 0..<count {
            carries |= (bytes.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self) & 0x7F80) &+ 0x0080
        }
        return carries & 0x8000 != 0
    }

    /// The index of the first value whose bits (`width` bytes, little-endian) satisfy `isBad`,
    /// searched only once a reduction has said there is one. Kept out of line so that the optimiser
    /// does not fuse it with the reduction into one loop that exits early and is not vectorised.
    @inline(never)
    static func firstIndex(_ bytes: UnsafeRawPointer, count: Int, width: Int, where isBad: (UInt32) -> Bool) -> Int {
        (0..<count).first { i in
            switch width {
            case 1: isBad(UInt32(bytes.load(fromByteOffset: i, as: UInt8.self)))
            case 2: isBad(UInt32(bytes.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))
            default: isBad(bytes.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
            }
        }!
    }

    static func decodeBF16(_ bytes: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            let b = UInt32(bytes.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            output[i] = Float(bitPattern: b << 16)
        }
    }

    static func decodeAddingBF16(_ bytes: UnsafeRawPointer, count: Int, scale: Float, into output: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            let b = UInt32(bytes.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            output[i] += scale * Float(bitPattern: b << 16)
        }
    }
}
