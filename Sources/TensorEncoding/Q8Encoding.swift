/// The kernels of `q8`: per block, a binary32 scale s = max|x| / 127 and one signed byte
/// q = round(x / s) per value; decoded, q · s.
enum Q8Encoding {
    /// 1.5 · 2²³ (bits 0x4B40_0000, whose low byte is 0): adding it to a float of magnitude below
    /// 2²² leaves that float rounded to an integer (nearest, ties to even, as the FPU rounds), held
    /// in the low mantissa bits.
    private static let roundingMagic: Float = 12_582_912

    static func encode(_ values: UnsafePointer<Float>, count: Int, blockSize: Int, into output: UnsafeMutableRawPointer) {
        var start = 0
        var offset = 0
        while start < count {
            let length = min(blockSize, count &- start)
            let x = values + start
            let scale = Self.scale(x, count: length)
            output.storeBytes(of: scale.bitPattern, toByteOffset: offset, as: UInt32.self)
            quantize(x, count: length, scale: scale, into: output + (offset &+ 4))
            start &+= length
            offset &+= 4 &+ length
        }
    }

    /// The scale of one block: max|x| / 127, adjusted so that every |x| / s is at most 127 and
    /// 127 · s is finite. An all-zero block gives 0; a block holding an infinity or a NaN gives that
    /// infinity or a NaN, which the receiver refuses.
    static func scale(_ x: UnsafePointer<Float>, count: Int) -> Float {
        // The largest magnitude, compared as bit patterns: for non-negative floats the integer order
        // is the numeric order, and infinities and NaNs come out on top instead of being skipped by
        // a float comparison.
        var largest: UInt32 = 0
        for i in 0..<count {
            let magnitude = x[i].bitPattern & 0x7FFF_FFFF
            largest = magnitude > largest ? magnitude : largest
        }
        let maximum = Float(bitPattern: largest)
        guard largest != 0, largest < HalfPrecision.floatInfinityBits else { return maximum }
        let scale = maximum / 127
        if scale < .leastNormalMagnitude {
            // A subnormal quotient may have been rounded down by up to half its value, which would
            // push the largest |x| / s past 127 and into the clamp. Round up instead, in units of
            // 2⁻¹⁴⁹ (exact in Double: maximum < 2⁻¹¹⁹ here, so fewer than 2³⁰ units).
            let units = UInt32(Double(maximum) * 0x1p149)
            return Float(Double((units + 126) / 127) * 0x1p-149)
        }
        // Near Float.greatestFiniteMagnitude the rounded quotient can be large enough for 127 · s to
        // overflow, and the receiver refuses such a scale; one step down keeps |x| / s within 127
        // to a few ulps, which the clamp absorbs.
        return (scale * 127).isFinite ? scale : scale.nextDown
    }

    /// Writes q = x / s rounded to nearest even and clamped to −127…127, or zeros when the block
    /// is all zeros or not finite.
    static func quantize(_ x: UnsafePointer<Float>, count: Int, scale: Float, into output: UnsafeMutableRawPointer) {
        if scale >= .leastNormalMagnitude && scale.isFinite {
            // One reciprocal per block instead of a division per value; see README.md for what this
            // does to the bound.
            let reciprocal = 1 / scale
            for i in 0..<count {
                output.storeBytes(of: quantized(x[i] * reciprocal), toByteOffset: i, as: UInt8.self)
            }
        } else if scale > 0 && scale.isFinite {
            // A subnormal scale has no finite reciprocal: divide.
            for i in 0..<count {
                output.storeBytes(of: quantized(x[i] / scale), toByteOffset: i, as: UInt8.self)
            }
        } else {
            output.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        }
    }

    /// `y` rounded to the nearest integer (ties to even) and clamped to −127…127, as a byte.
    ///
    /// Clamped first (rounding and clamping to integer bounds commute), then rounded by the FPU:
    /// the low byte of y + 1.5·2²³ is the rounded value in two's complement. Float min/max and an
    /// addition, rather than `Int8(y.rounded())`, which checks for overflow on every value and
    /// stops the loop from being vectorised.
    @inline(__always)
    private static func quantized(_ y: Float) -> UInt8 {
        let clamped = min(max(y, -127), 127)
        return UInt8(truncatingIfNeeded: (clamped + roundingMagic).bitPattern)
    }

    /// Checks every scale and byte of a payload whose length is already known to be right.
    static func validate(_ bytes: UnsafeRawPointer, count: Int, blockSize: Int, encoding: TensorEncoding) throws(TensorDecodingError) {
        var start = 0
        var offset = 0
        var block = 0
        while start < count {
            let length = min(blockSize, count &- start)
            let bits = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            let scale = Float(bitPattern: bits)
            // A negative scale is never written (max|x| / 127 is not negative); 127 · s must stay
            // finite, or a decoded value could be an infinity.
            guard scale.isFinite, scale >= 0, (scale * 127).isFinite else {
                throw TensorDecodingError(encoding, .invalidScale(block: block, bits: bits), offset: offset)
            }
            let q = bytes + (offset &+ 4)
            // q & ~(q − 1) keeps q's lowest set bit, which is bit 7 only for 0x80: one OR-reduction
            // (see DenseEncodings.anyNonFiniteFP32 for why not a comparison).
            var lowest: UInt8 = 0
            for i in 0..<length {
                let byte = q.load(fromByteOffset: i, as: UInt8.self)
                lowest |= byte & ~(byte &- 1)
            }
            if lowest & 0x80 != 0 {
                let i = DenseEncodings.firstIndex(q, count: length, width: 1) { $0 == 0x80 }
                throw TensorDecodingError(encoding, .quantizedValueOutOfRange(index: start &+ i), offset: offset &+ 4 &+ i)
            }
            start &+= length
            offset &+= 4 &+ length
            block &+= 1
        }
    }

    static func decode(_ bytes: UnsafeRawPointer, count: Int, blockSize: Int, into output: UnsafeMutablePointer<Float>) {
        var start = 0
        var offset = 0
        while start < count {
            let length = min(blockSize, count &- start)
            let scale = bytes.loadUnaligned(fromByteOffset: offset, as: Float.self)
            let q = bytes + (offset &+ 4)
            let out = output + start
            for i in 0..<length {
                out[i] = Float(q.load(fromByteOffset: i, as: Int8.self)) * scale
            }
            start &+= length
            offset &+= 4 &+ length
        }
    }

    static func decodeAdding(_ bytes: UnsafeRawPointer, count: Int, blockSize: Int, scale factor: Float, into output: UnsafeMutablePointer<Float>) {
        var start = 0
        var offset = 0
        while start < count {
            let length = min(blockSize, count &- start)
            let scale = bytes.loadUnaligned(fromByteOffset: offset, as: Float.self)
            let q = bytes + (offset &+ 4)
            let out = output + start
            for i in 0..<length {
                // The same two roundings as decode followed by an addition, so the two agree exactly.
                out[i] += factor * (Float(q.load(fromByteOffset: i, as: Int8.self)) * scale)
            }
            start &+= length
            offset &+= 4 &+ length
        }
    }
}
