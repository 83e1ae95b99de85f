/// The kernels of `sign`: per block, a binary32 scale (the mean |x| of the block) and one bit per
/// value, 1 for x < 0, least significant bit first; decoded, ±scale.
enum SignEncoding {
    /// The encoded size: 4 bytes and ⌈length / 8⌉ bytes of bits per block.
    static func size(count: Int, blockSize: Int) -> Int {
        let blocks = TensorEncoding.blockCount(count, blockSize)
        guard blocks > 0 else { return 0 }
        let last = count - (blocks - 1) * blockSize
        return 4 * blocks + (blocks - 1) * bitBytes(blockSize) + bitBytes(last)
    }

    /// ⌈length / 8⌉, written so that it cannot overflow.
    @inline(__always)
    static func bitBytes(_ length: Int) -> Int {
        length / 8 + (length % 8 == 0 ? 0 : 1)
    }

    static func encode(_ values: UnsafePointer<Float>, count: Int, blockSize: Int, into output: UnsafeMutableRawPointer) {
        var start = 0
        var offset = 0
        while start < count {
            let length = min(blockSize, count &- start)
            let x = values + start
            output.storeBytes(of: meanMagnitude(x, count: length).bitPattern, toByteOffset: offset, as: UInt32.self)
            packSigns(x, count: length, into: output + (offset &+ 4))
            start &+= length
            offset &+= 4 &+ bitBytes(length)
        }
    }

    /// The mean |x|, summed in Double: no rounding to speak of, and no overflow even when every
    /// value is near Float.greatestFiniteMagnitude. An infinity or a NaN makes the mean one too.
    static func meanMagnitude(_ x: UnsafePointer<Float>, count: Int) -> Float {
        // Four sums, so that the additions do not wait for one another (the compiler may not
        // reorder floating-point additions on its own).
        var sum0 = 0.0
        var sum1 = 0.0
        var sum2 = 0.0
        var sum3 = 0.0
        var i = 0
        while i &+ 4 <= count {
            sum0 += Double(x[i].magnitude)
            sum1 += Double(x[i &+ 1].magnitude)
            sum2 += Double(x[i &+ 2].magnitude)
            sum3 += Double(x[i &+ 3].magnitude)
            i &+= 4
        }
        while i < count {
            sum0 += Double(x[i].magnitude)
            i &+= 1
        }
        return Float(((sum0 + sum1) + (sum2 + sum3)) / Double(count))
    }

    /// One bit per value, 1 for x < 0 (so −0 and NaN give 0), least significant bit first; the
    /// unused high bits of a last, partial byte are 0.
    static func packSigns(_ x: UnsafePointer<Float>, count: Int, into output: UnsafeMutableRawPointer) {
        var i = 0
        var byte = 0
        while i &+ 8 <= count {
            var bits: UInt8 = 0
            for j in 0..<8 {
                bits |= (x[i &+ j] < 0 ? 1 : 0) << j
            }
            output.storeBytes(of: bits, toByteOffset: byte, as: UInt8.self)
            i &+= 8
            byte &+= 1
        }
        if i < count {
            var bits: UInt8 = 0
            for j in 0..<(count &- i) {
                bits |= (x[i &+ j] < 0 ? 1 : 0) << j
            }
            output.storeBytes(of: bits, toByteOffset: byte, as: UInt8.self)
        }
    }

    /// Checks every scale and padding of a payload whose length is already known to be right.
    static func validate(_ bytes: UnsafeRawPointer, count: Int, blockSize: Int, encoding: TensorEncoding) throws(TensorDecodingError) {
        var start = 0
        var offset = 0
        var block = 0
        while start < count {
            let length = min(blockSize, count &- start)
            let bits = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            let scale = Float(bitPattern: bits)
            guard scale.isFinite, scale >= 0 else {
                throw TensorDecodingError(encoding, .invalidScale(block: block, bits: bits), offset: offset)
            }
            let used = length % 8
            if used != 0 {
                let last = offset &+ 4 &+ bitBytes(length) &- 1
                // Bits that stand for no value must be 0, so that every vector has one encoding.
                guard bytes.load(fromByteOffset: last, as: UInt8.self) >> used == 0 else {
                    throw TensorDecodingError(encoding, .nonZeroPadding(block: block), offset: last)
                }
            }
            start &+= length
            offset &+= 4 &+ bitBytes(length)
            block &+= 1
        }
    }

    static func decode(_ bytes: UnsafeRawPointer, count: Int, blockSize: Int, into output: UnsafeMutablePointer<Float>) {
        forEachBlock(bytes, count: count, blockSize: blockSize, into: output) { scale, signs, out, length in
            forEachSigned(scale, signs, count: length) { i, value in out[i] = value }
        }
    }

    static func decodeAdding(_ bytes: UnsafeRawPointer, count: Int, blockSize: Int, scale factor: Float, into output: UnsafeMutablePointer<Float>) {
        forEachBlock(bytes, count: count, blockSize: blockSize, into: output) { scale, signs, out, length in
            forEachSigned(scale, signs, count: length) { i, value in out[i] += factor * value }
        }
    }

    /// Calls `body` with each value's index in the block and ±scale: the scale's bits, with the
    /// float's sign bit set where the value's bit is.
    ///
    /// Eight values per byte, each tested against a constant mask (bit j of byte i/8), which the
    /// compiler turns into vector compares; a shift by a varying amount per value would not be.
    @inline(__always)
    private static func forEachSigned(_ scaleBits: UInt32, _ signs: UnsafeRawPointer, count: Int, _ body: (Int, Float) -> Void) {
        var i = 0
        while i &+ 8 <= count {
            let byte = UInt32(signs.load(fromByteOffset: i &>> 3, as: UInt8.self))
            for j in 0..<8 {
                body(i &+ j, Float(bitPattern: scaleBits | (byte & (1 << j) != 0 ? 0x8000_0000 : 0)))
            }
            i &+= 8
        }
        while i < count {
            let byte = UInt32(signs.load(fromByteOffset: i &>> 3, as: UInt8.self))
            body(i, Float(bitPattern: scaleBits | ((byte >> UInt32(i & 7)) & 1) << 31))
            i &+= 1
        }
    }

    /// Calls `body` with each block's scale bits (sign cleared: a validated scale of −0 reads as +0),
    /// its sign bytes, where its values go and how many there are.
    @inline(__always)
    private static func forEachBlock(
        _ bytes: UnsafeRawPointer, count: Int, blockSize: Int, into output: UnsafeMutablePointer<Float>,
        _ body: (UInt32, UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        var start = 0
        var offset = 0
        while start < count {
            let length = min(blockSize, count &- start)
            let scaleBits = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self) & 0x7FFF_FFFF
            body(scaleBits, bytes + (offset &+ 4), output + start, length)
            start &+= length
            offset &+= 4 &+ bitBytes(length)
        }
    }
}
