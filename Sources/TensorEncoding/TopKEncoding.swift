/// The kernels of `topk`: uint32 k, then k LEB128 varints cᵢ = indexᵢ − indexᵢ₋₁ − 1 (index₋₁ = −1,
/// so c₀ is the first index and adjacent indices cost one zero byte), then k binary16 values.
///
/// The k entries are those of largest |x|, lowest index first among equal magnitudes, compared as
/// the bit patterns of |x| (whose integer order is the numeric order, with infinities and NaNs above
/// every finite value). They are found without sorting, in two ways that select the same entries:
///
/// - **Radix selection** (always correct, linear in the worst case): a histogram of the magnitudes'
///   top 11 bits finds the bucket that holds the k-th largest; two more histograms over that bucket's
///   members only (11 and 9 bits) find its exact magnitude; a last pass writes the entries.
/// - **Sampled candidates** (the fast path for a large vector and a small k): radix selection among
///   every 16th magnitude gives a threshold that a little more than k values should reach; one vectorised
///   pass gathers the indices of those that do, and radix selection among these candidates alone
///   finds the k. If the sample misled (fewer than k candidates, or far too many), the radix
///   selection over all values runs instead, so the result never depends on the sample.
///
/// No per-value allocation: histograms and candidate lists are temporary allocations.
enum TopKEncoding {
    /// The most bytes k entries of n values can take; see ``TensorEncoding/maxEncodedSize(count:)``.
    static func maxSize(count n: Int, entries k: Int) -> Int {
        var indexBytes = k
        var power = 128
        let spare = n - k
        for _ in 1...4 {
            indexBytes += min(k, spare / power)
            power *= 128
        }
        return 4 + indexBytes + 2 * k
    }

    // MARK: Encoding

    /// Writes the payload for the `k` largest of `count` values and returns its length.
    ///
    /// - Parameters:
    ///   - k: At most `count`.
    ///   - reserved: ``maxSize(count:entries:)``: the values are written at its end while the
    ///     indices grow from the front, then moved down behind them.
    static func encode(
        _ values: UnsafePointer<Float>, count: Int, entries k: Int, into output: UnsafeMutableRawPointer, reserved: Int
    ) -> Int {
        output.storeBytes(of: UInt32(k), as: UInt32.self)
        guard k > 0 else { return 4 }
        var writer = EntryWriter(output: output, valueArea: reserved &- 2 &* k)
        if k == count {
            writer.write(values, indices: count, threshold: Threshold(magnitude: 0, ties: .max), entries: k) { $0 }
        } else if !writeSampled(values, count: count, entries: k, into: &writer) {
            let threshold = Self.threshold(count: count, entries: k) { magnitude(values[$0]) }
            writer.write(values, indices: count, threshold: threshold, entries: k) { $0 }
        }
        precondition(writer.written == k, "topk selected \(writer.written) of \(k) entries")
        // copyMemory is memmove: the two ranges may overlap.
        (output + writer.position).copyMemory(from: output + writer.valueArea, byteCount: 2 &* k)
        return writer.position &+ 2 &* k
    }

    /// The bit pattern of |x|.
    @inline(__always)
    static func magnitude(_ x: Float) -> UInt32 {
        x.bitPattern & 0x7FFF_FFFF
    }

    /// Writes entries as they are selected: varints from the front, values into the area at the end.
    struct EntryWriter {
        let output: UnsafeMutableRawPointer
        let valueArea: Int
        var position = 4
        var previous = -1
        var written = 0

        init(output: UnsafeMutableRawPointer, valueArea: Int) {
            self.output = output
            self.valueArea = valueArea
        }

        /// Writes, in order, the selected among the values at `index(0) < index(1) < …`, stopping
        /// at the k-th.
        @inline(__always)
        mutating func write(
            _ values: UnsafePointer<Float>, indices: Int, threshold: Threshold, entries k: Int, index: (Int) -> Int
        ) {
            var ties = threshold.ties
            var j = 0
            while written < k && j < indices {
                let i = index(j)
                let x = values[i]
                let magnitude = TopKEncoding.magnitude(x)
                if magnitude >= threshold.magnitude {
                    var take = magnitude > threshold.magnitude
                    if !take && ties > 0 {
                        ties &-= 1
                        take = true
                    }
                    if take {
                        writeVarint(UInt32(truncatingIfNeeded: i &- previous &- 1))
                        output.storeBytes(of: HalfPrecision.half(x), toByteOffset: valueArea &+ 2 &* written, as: UInt16.self)
                        previous = i
                        written &+= 1
                    }
                }
                j &+= 1
            }
        }

        @inline(__always)
        private mutating func writeVarint(_ value: UInt32) {
            var value = value
            while value >= 0x80 {
                output.storeBytes(of: UInt8(truncatingIfNeeded: value) | 0x80, toByteOffset: position, as: UInt8.self)
                value >>= 7
                position &+= 1
            }
            output.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: position, as: UInt8.self)
            position &+= 1
        }
    }

    /// Which values are selected: every magnitude above `magnitude`, and the first `ties` (in index
    /// order) equal to it.
    struct Threshold {
        var magnitude: UInt32
        var ties: Int
    }

    // MARK: Sampled candidates

    /// One value in this many is sampled.
    static let sampleStride = 16

    /// The sampled path: returns false, having written nothing, when it does not apply (a small
    /// vector, a large k) or the sample misled; the caller then selects over all values.
    static func writeSampled(_ values: UnsafePointer<Float>, count: Int, entries k: Int, into writer: inout EntryWriter) -> Bool {
        // Below 16,384 values or above 1/32 of them, the full selection costs little more.
        guard count >= 16_384 && k <= count / 32 else { return false }
        let samples = count / sampleStride
        // Aim for the sampled rank that k values would have, plus three standard deviations of a
        // binomial count and a little more, so that the sample rarely leaves fewer than k candidates.
        let expected = Double(k) * Double(samples) / Double(count)
        let rank = Int(expected + 3 * expected.squareRoot() + 4)
        // The rank-th largest sampled magnitude, exactly: a histogram bucket's lower bound would do
        // when values are spread out, but error feedback piles residuals up just below the last
        // step's threshold, and a whole bucket of them is far more than k.
        let lowest = threshold(count: samples, entries: min(rank, samples - 1)) { magnitude(values[$0 &* sampleStride]) }.magnitude
        // A threshold of 0 takes everything: no help.
        guard lowest > 0 else { return false }
        // Room for four times the expected number of candidates; more means the sample misled.
        let capacity = min(count, 4 * rank * sampleStride + 1024)
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: capacity) { buffer in
            let candidates = buffer.baseAddress!
            guard let found = gatherCandidates(values, count: count, atLeast: lowest, into: candidates, capacity: capacity), found >= k else {
                return false
            }
            let threshold = Self.threshold(count: found, entries: k) { magnitude(values[Int(candidates[$0])]) }
            writer.write(values, indices: found, threshold: threshold, entries: k) { Int(candidates[$0]) }
            return true
        }
    }

    /// The indices, in order, of the values whose magnitude is at least `lowest` (> 0), or nil when
    /// there are more than `capacity`.
    ///
    /// Values are scanned 16 at a time with a branch-free reduction that the compiler vectorises:
    /// lowest − 1 − magnitude is negative exactly when magnitude ≥ lowest (no overflow: both are
    /// below 2³¹), so the OR of the differences has its sign bit set when any of the 16 qualifies.
    /// Only then are they looked at one by one.
    static func gatherCandidates(
        _ values: UnsafePointer<Float>, count: Int, atLeast lowest: UInt32, into candidates: UnsafeMutablePointer<UInt32>, capacity: Int
    ) -> Int? {
        let bound = Int32(bitPattern: lowest &- 1)
        var found = 0
        var start = 0
        while start < count {
            let length = min(16, count &- start)
            var any: Int32 = 0
            if length == 16 {
                for j in 0..<16 {
                    any |= bound &- Int32(bitPattern: magnitude(values[start &+ j]))
                }
            } else {
                any = -1  // the tail: look at each
            }
            if any < 0 {
                for j in 0..<length where magnitude(values[start &+ j]) >= lowest {
                    guard found < capacity else { return nil }
                    candidates[found] = UInt32(truncatingIfNeeded: start &+ j)
                    found &+= 1
                }
            }
            start &+= length
        }
        return found
    }

    // MARK: Radix selection

    /// Finds the threshold for the `k` largest of `count` magnitudes, 0 < k ≤ count, reading the
    /// i-th with `magnitude(i)`.
    @inline(__always)
    static func threshold(count: Int, entries k: Int, magnitude: (Int) -> UInt32) -> Threshold {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * 2048) { histograms in
            histograms.initialize(repeating: 0)
            // Four histograms, one per index modulo 4: neighbouring values often fall in the same
            // bucket, and four counters let those increments run without waiting for one another.
            let h0 = histograms.baseAddress!
            let h1 = h0 + 2048
            let h2 = h0 + 4096
            let h3 = h0 + 6144
            var i = 0
            while i &+ 4 <= count {
                h0[Int(truncatingIfNeeded: magnitude(i) >> 20)] &+= 1
                h1[Int(truncatingIfNeeded: magnitude(i &+ 1) >> 20)] &+= 1
                h2[Int(truncatingIfNeeded: magnitude(i &+ 2) >> 20)] &+= 1
                h3[Int(truncatingIfNeeded: magnitude(i &+ 3) >> 20)] &+= 1
                i &+= 4
            }
            while i < count {
                h0[Int(truncatingIfNeeded: magnitude(i) >> 20)] &+= 1
                i &+= 1
            }
            for b in 0..<2048 {
                h0[b] = h0[b] &+ h1[b] &+ h2[b] &+ h3[b]
            }
            let (bucket, above) = findBucket(h0, buckets: 2048, entries: k)
            let inBucket = Int(h0[bucket])
            let top = UInt32(bucket) << 20
            if above + inBucket == k {
                // The whole bucket is taken: every magnitude from its lowest one up.
                return Threshold(magnitude: top, ties: .max)
            }
            // Only this bucket's magnitudes matter now; gather them, without branching on which
            // values belong (each is written, and the cursor moves on only for members).
            return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: inBucket + 1) { scratch in
                let keys = scratch.baseAddress!
                var members = 0
                for i in 0..<count {
                    let key = magnitude(i)
                    keys[members] = key
                    members &+= key >> 20 == UInt32(bucket) ? 1 : 0
                }
                return refine(keys, count: members, prefix: top, entries: k - above)
            }
        }
    }

    /// The two lower levels: bits 19…9, then bits 8…0, of the `count` magnitudes in `keys`, which
    /// share their top 11 bits (`prefix`); `k` of them are to be taken.
    private static func refine(_ keys: UnsafeMutablePointer<UInt32>, count: Int, prefix: UInt32, entries k: Int) -> Threshold {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 2048) { histogram in
            let h = histogram.baseAddress!
            histogram.initialize(repeating: 0)
            for i in 0..<count {
                h[Int(truncatingIfNeeded: (keys[i] >> 9) & 0x7FF)] &+= 1
            }
            let (middle, aboveMiddle) = findBucket(h, buckets: 2048, entries: k)
            let k2 = k - aboveMiddle
            // Keep only the members of that bucket, in place.
            var members = 0
            for i in 0..<count {
                let key = keys[i]
                keys[members] = key
                members &+= (key >> 9) & 0x7FF == UInt32(middle) ? 1 : 0
            }
            histogram.update(repeating: 0)
            for i in 0..<members {
                h[Int(truncatingIfNeeded: keys[i] & 0x1FF)] &+= 1
            }
            let (low, aboveLow) = findBucket(h, buckets: 512, entries: k2)
            return Threshold(magnitude: prefix | UInt32(middle) << 9 | UInt32(low), ties: k2 - aboveLow)
        }
    }

    /// The highest bucket at which the counts from the top reach `k`, and the count above it.
    private static func findBucket(_ histogram: UnsafeMutablePointer<UInt32>, buckets: Int, entries k: Int) -> (bucket: Int, above: Int) {
        var above = 0
        var bucket = buckets - 1
        while above + Int(histogram[bucket]) < k {
            above += Int(histogram[bucket])
            bucket -= 1
        }
        return (bucket, above)
    }

    // MARK: Decoding

    /// Where a validated payload's parts are.
    struct Layout {
        var entries: Int
        var valueStart: Int
    }

    /// Checks a payload for `count` values: the entry count against the length, every varint
    /// (minimal, at most 32 bits, inside the index bytes), every index below `count`, the indices
    /// ending exactly where the values start, and every value finite.
    static func validate(_ bytes: UnsafeRawBufferPointer, count: Int, encoding: TensorEncoding) throws(TensorDecodingError) -> Layout {
        guard bytes.count >= 4 else {
            throw TensorDecodingError(encoding, .missingEntryCount(actual: bytes.count), offset: 0)
        }
        let k = Int(bytes.loadUnaligned(as: UInt32.self))
        guard k <= count else {
            throw TensorDecodingError(encoding, .tooManyEntries(entries: k, values: count), offset: 0)
        }
        let minimum = 4 + 3 * k
        let maximum = 4 + 7 * k
        guard bytes.count >= minimum && bytes.count <= maximum else {
            throw TensorDecodingError(
                encoding, .entryCountDisagreesWithLength(entries: k, actual: bytes.count, minimum: minimum, maximum: maximum), offset: 0)
        }
        let valueStart = bytes.count - 2 * k
        var position = 4
        var index = -1
        for entry in 0..<k {
            let start = position
            var code = 0
            var shift = 0
            while true {
                guard position < valueStart else {
                    throw TensorDecodingError(encoding, .indicesOverrunValues(entry: entry), offset: start)
                }
                let byte = bytes[position]
                position += 1
                // The fifth byte carries bits 28…31 only; and a last byte of 0 after others is a
                // longer spelling of a shorter varint, which would give one vector two encodings.
                guard shift < 28 || byte <= 0x0F, byte != 0 || shift == 0 else {
                    throw TensorDecodingError(encoding, .malformedVarint(entry: entry), offset: start)
                }
                code |= Int(byte & 0x7F) << shift
                if byte < 0x80 { break }
                shift += 7
            }
            index += code + 1
            guard index < count else {
                throw TensorDecodingError(encoding, .indexPastEnd(entry: entry, index: index, values: count), offset: start)
            }
            let valueOffset = valueStart + 2 * entry
            let half = bytes.loadUnaligned(fromByteOffset: valueOffset, as: UInt16.self)
            guard !HalfPrecision.isNonFinite(half: half) else {
                throw TensorDecodingError(encoding, .nonFiniteValue(index: index, bits: UInt32(half)), offset: valueOffset)
            }
        }
        guard position == valueStart else {
            throw TensorDecodingError(encoding, .extraBytesAfterIndices(extra: valueStart - position), offset: position)
        }
        return Layout(entries: k, valueStart: valueStart)
    }

    /// Calls `body` with each entry's index and binary16 bits, in order, for a validated payload.
    @inline(__always)
    static func forEachEntry(_ bytes: UnsafeRawPointer, layout: Layout, _ body: (Int, UInt16) -> Void) {
        var position = 4
        var index = -1
        for entry in 0..<layout.entries {
            var code = 0
            var shift = 0
            while true {
                let byte = bytes.load(fromByteOffset: position, as: UInt8.self)
                position &+= 1
                code |= Int(byte & 0x7F) &<< shift
                if byte < 0x80 { break }
                shift &+= 7
            }
            index &+= code &+ 1
            body(index, bytes.loadUnaligned(fromByteOffset: layout.valueStart &+ 2 &* entry, as: UInt16.self))
        }
    }
}
