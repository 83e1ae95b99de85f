extension TensorEncoding {
    // MARK: Encoding

    /// Appends the encoding of `values` to `output`.
    ///
    /// The array grows once, by ``maxEncodedSize(count:)`` bytes, and for ``topK(count:)`` shrinks
    /// back to the exact size; keep one array and empty it with `removeAll(keepingCapacity: true)`
    /// between calls, and nothing is allocated.
    ///
    /// Infinities and NaNs are encoded as such (for ``q8(blockSize:)`` and ``sign(blockSize:)``, as
    /// the block's scale), so that the receiver refuses the payload rather than apply a value that
    /// was silently replaced.
    ///
    /// - Parameters:
    ///   - values: The values; for ``topK(count:)``, at most 2³² − 1 of them.
    ///   - output: The array to append to.
    /// - Precondition: The encoding's block size is positive, or its entry count not negative.
    public func encode(_ values: UnsafeBufferPointer<Float>, into output: inout [UInt8]) {
        let start = output.count
        let reserved = maxEncodedSize(count: values.count)
        // Swift arrays cannot grow without initialising, so the bytes are zeroed first: a memset,
        // a small part of the cost of any encoding but fp32.
        output.append(contentsOf: repeatElement(0, count: reserved))
        let written = output.withUnsafeMutableBytes { bytes in
            encode(values, into: UnsafeMutableRawBufferPointer(rebasing: bytes[start...]))
        }
        output.removeLast(reserved - written)
    }

    /// Writes the encoding of `values` at the start of `buffer`, which has room for
    /// ``maxEncodedSize(count:)`` bytes, and returns the number of bytes written.
    ///
    /// For all encodings but ``topK(count:)`` the size is known beforehand, so this can fill a frame
    /// in place (`connection.sendFrame(payloadSize:)`).
    ///
    /// - Parameters:
    ///   - values: The values; for ``topK(count:)``, at most 2³² − 1 of them.
    ///   - buffer: At least ``maxEncodedSize(count:)`` bytes, at any alignment. For ``topK(count:)``
    ///     all of them may be written, not only those of the payload.
    /// - Returns: The payload's length: ``maxEncodedSize(count:)`` except for ``topK(count:)``.
    /// - Precondition: `buffer` is large enough; the block size is positive, or the entry count not
    ///   negative.
    @discardableResult
    public func encode(_ values: UnsafeBufferPointer<Float>, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = values.count
        let size = maxEncodedSize(count: count)
        precondition(buffer.count >= size, "\(self): \(buffer.count) bytes of room for \(size)")
        guard let output = buffer.baseAddress else { return 0 }  // size is 0 too
        guard let x = values.baseAddress else {
            // No values: only topk writes anything, its entry count of 0.
            if case .topK = self { output.storeBytes(of: 0, as: UInt32.self) }
            return size
        }
        switch self {
        case .fp32:
            DenseEncodings.encodeFP32(x, count: count, into: output)
        case .fp16:
            DenseEncodings.encodeFP16(x, count: count, into: output)
        case .bf16:
            DenseEncodings.encodeBF16(x, count: count, into: output)
        case .q8(let blockSize):
            Q8Encoding.encode(x, count: count, blockSize: blockSize, into: output)
        case .sign(let blockSize):
            SignEncoding.encode(x, count: count, blockSize: blockSize, into: output)
        case .topK(let k):
            precondition(count <= Int(UInt32.max), "topk: \(count) values, more than 2^32 - 1")
            return TopKEncoding.encode(x, count: count, entries: min(k, count), into: output, reserved: size)
        }
        return size
    }

    /// The encoding of `values`, in a new array (a convenience; the hot path appends to a reused one).
    ///
    /// - Parameter values: The values.
    /// - Returns: The payload.
    public func encoded(_ values: [Float]) -> [UInt8] {
        var output: [UInt8] = []
        values.withUnsafeBufferPointer { encode($0, into: &output) }
        return output
    }

    // MARK: Decoding

    /// Decodes a payload of `output.count` values into `output`, overwriting it.
    ///
    /// The whole payload is checked before anything is written: its exact length (no trailing
    /// bytes), every value finite, every scale finite and not negative, and for ``topK(count:)`` the
    /// entries themselves. For ``topK(count:)`` the number of entries is read from the payload (the
    /// case's count is not consulted) and the values not listed become 0.
    ///
    /// - Parameters:
    ///   - bytes: The payload, at any alignment.
    ///   - output: Where the values go; its count is the number of values, n.
    /// - Throws: ``TensorDecodingError`` naming the fault and its offset; `output` is then untouched.
    public func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Float>) throws(TensorDecodingError) {
        let layout = try validate(bytes, count: output.count)
        guard let out = output.baseAddress else { return }  // no values
        let count = output.count
        let payload = bytes.baseAddress!  // n > 0 values take at least one byte in every encoding
        switch self {
        case .fp32:
            DenseEncodings.decodeFP32(payload, count: count, into: out)
        case .fp16:
            DenseEncodings.decodeFP16(payload, count: count, into: out)
        case .bf16:
            DenseEncodings.decodeBF16(payload, count: count, into: out)
        case .q8(let blockSize):
            Q8Encoding.decode(payload, count: count, blockSize: blockSize, into: out)
        case .sign(let blockSize):
            SignEncoding.decode(payload, count: count, blockSize: blockSize, into: out)
        case .topK:
            out.update(repeating: 0, count: count)
            TopKEncoding.forEachEntry(payload, layout: layout) { index, half in
                out[index] = HalfPrecision.float(fromFiniteHalf: half)
            }
        }
    }

    /// Adds `scale` times the decoded payload to `output` (`output[i] += scale * x′[i]`), without
    /// materialising the decoded vector: the server applies an update straight from its receive
    /// buffer this way. For ``topK(count:)`` only the k entries listed are touched.
    ///
    /// The result is the same, bit for bit, as ``decode(_:into:)`` followed by
    /// `output[i] += scale * decoded[i]`. The payload is checked as by ``decode(_:into:)`` before
    /// anything is added, so a refused update is never half applied. Sums that overflow are not
    /// checked: the payload is finite, what `scale` and `output` make of it is the caller's.
    ///
    /// - Parameters:
    ///   - bytes: The payload, at any alignment.
    ///   - scale: The factor, such as minus the learning rate.
    ///   - output: The vector to add to; its count is the number of values, n.
    /// - Throws: ``TensorDecodingError`` naming the fault and its offset; `output` is then untouched.
    public func decodeAdding(
        _ bytes: UnsafeRawBufferPointer, scale: Float, into output: UnsafeMutableBufferPointer<Float>
    ) throws(TensorDecodingError) {
        let layout = try validate(bytes, count: output.count)
        guard let out = output.baseAddress else { return }
        let count = output.count
        let payload = bytes.baseAddress!
        switch self {
        case .fp32:
            DenseEncodings.decodeAddingFP32(payload, count: count, scale: scale, into: out)
        case .fp16:
            DenseEncodings.decodeAddingFP16(payload, count: count, scale: scale, into: out)
        case .bf16:
            DenseEncodings.decodeAddingBF16(payload, count: count, scale: scale, into: out)
        case .q8(let blockSize):
            Q8Encoding.decodeAdding(payload, count: count, blockSize: blockSize, scale: scale, into: out)
        case .sign(let blockSize):
            SignEncoding.decodeAdding(payload, count: count, blockSize: blockSize, scale: scale, into: out)
        case .topK:
            TopKEncoding.forEachEntry(payload, layout: layout) { index, half in
                out[index] += scale * HalfPrecision.float(fromFiniteHalf: half)
            }
        }
    }

    /// Decodes a payload of `count` values into a new array (a convenience; the hot path decodes
    /// into memory it already has).
    ///
    /// - Parameters:
    ///   - bytes: The payload.
    ///   - count: The number of values, n.
    /// - Returns: The values.
    /// - Throws: ``TensorDecodingError`` naming the fault and its offset.
    public func decoded(_ bytes: [UInt8], count: Int) throws(TensorDecodingError) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        // Array's closure-taking methods rethrow untyped errors, so the typed one is carried out.
        let failure = bytes.withUnsafeBytes { payload in
            values.withUnsafeMutableBufferPointer { output in
                Result { () throws(TensorDecodingError) in try decode(payload, into: output) }
            }
        }
        try failure.get()
        return values
    }

    /// Checks the whole payload for `count` values; returns where a topk payload's parts are.
    func validate(_ bytes: UnsafeRawBufferPointer, count: Int) throws(TensorDecodingError) -> TopKEncoding.Layout {
        if case .topK = self {
            return try TopKEncoding.validate(bytes, count: count, encoding: self)
        }
        // The block size comes from the peer's message, so a bad one is refused, not trapped on.
        if let blockSize = parameter, blockSize <= 0 {
            throw TensorDecodingError(self, .invalidBlockSize(blockSize), offset: 0)
        }
        let expected = maxEncodedSize(count: count)
        guard bytes.count == expected else {
            throw TensorDecodingError(self, .wrongLength(actual: bytes.count, expected: expected, values: count), offset: bytes.count)
        }
        let empty = TopKEncoding.Layout(entries: 0, valueStart: 0)
        guard let payload = bytes.baseAddress, count > 0 else { return empty }
        switch self {
        case .fp32:
            if DenseEncodings.anyNonFiniteFP32(payload, count: count) {
                let index = DenseEncodings.firstIndex(payload, count: count, width: 4) { $0 & 0x7F80_0000 == 0x7F80_0000 }
                let bits = payload.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)
                throw TensorDecodingError(self, .nonFiniteValue(index: index, bits: bits), offset: 4 * index)
            }
        case .fp16:
            if DenseEncodings.anyNonFiniteFP16(payload, count: count) {
                let index = DenseEncodings.firstIndex(payload, count: count, width: 2) { HalfPrecision.isNonFinite(half: UInt16($0)) }
                let bits = payload.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)
                throw TensorDecodingError(self, .nonFiniteValue(index: index, bits: UInt32(bits)), offset: 2 * index)
            }
        case .bf16:
            if DenseEncodings.anyNonFiniteBF16(payload, count: count) {
                let index = DenseEncodings.firstIndex(payload, count: count, width: 2) { HalfPrecision.isNonFinite(bfloat: UInt16($0)) }
                let bits = payload.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)
                throw TensorDecodingError(self, .nonFiniteValue(index: index, bits: UInt32(bits)), offset: 2 * index)
            }
        case .q8(let blockSize):
            try Q8Encoding.validate(payload, count: count, blockSize: blockSize, encoding: self)
        case .sign(let blockSize):
            try SignEncoding.validate(payload, count: count, blockSize: blockSize, encoding: self)
        case .topK:
            break  // handled above
        }
        return empty
    }
}
