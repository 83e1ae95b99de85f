/// The order of one epoch: a permutation of `0..<count` that depends only on `(seed, epoch)`.
///
/// Workers and the server derive the same permutation independently, so a work unit travels as
/// `(epoch, range)` and never as a list of indices.
///
/// ```swift
/// let permutation = EpochPermutation(seed: 42, epoch: 0, count: train.count)
/// for unit in permutation.units(batchSize: 64, batchesPerUnit: 10) {
///     for batch in permutation.batches(of: 64, in: unit.range) { train.gather(indices: batch, ...) }
/// }
/// ```
public struct EpochPermutation: Sendable, Hashable {
    public let seed: UInt64
    public let epoch: Int
    /// The shuffled indices `0..<count`, as `Int32` (compact, and what `Dataset.gather` takes).
    public let indices: [Int32]

    public var count: Int { indices.count }

    /// Shuffles `0..<count` with Fisher-Yates driven by `Xoshiro256(seed: derive(seed, epoch))`.
    public init(seed: UInt64, epoch: Int, count: Int) {
        precondition(count >= 0 && count <= Int(Int32.max))
        self.seed = seed
        self.epoch = epoch
        var generator = Xoshiro256(seed: SplitMix64.derive(seed, UInt64(truncatingIfNeeded: epoch)))
        var indices = (0..<Int32(count)).map { $0 }
        indices.withUnsafeMutableBufferPointer { buffer in
            var i = buffer.count - 1
            while i > 0 {
                buffer.swapAt(i, generator.next(below: i + 1))
                i -= 1
            }
        }
        self.indices = indices
    }

    /// Cuts the epoch into consecutive mini-batches of `size` positions (the last may be shorter).
    public func batches(of size: Int, in range: Range<Int>? = nil) -> [ArraySlice<Int32>] {
        precondition(size > 0)
        let range = range ?? 0..<count
        return stride(from: range.lowerBound, to: range.upperBound, by: size).map { start in
            indices[start..<min(start + size, range.upperBound)]
        }
    }

    /// Cuts the epoch into work units of `batchSize * batchesPerUnit` positions (the last may be shorter).
    public func units(batchSize: Int, batchesPerUnit: Int) -> [WorkUnit] {
        WorkUnit.units(epoch: epoch, count: count, batchSize: batchSize, batchesPerUnit: batchesPerUnit)
    }
}

/// A slice of one epoch's permutation that a worker trains on: `batchesPerUnit` mini-batches.
public struct WorkUnit: Sendable, Hashable {
    public var epoch: Int
    /// The unit's number within its epoch.
    public var index: Int
    /// Positions in the epoch's permutation (not dataset indices).
    public var range: Range<Int>

    public init(epoch: Int, index: Int, range: Range<Int>) {
        self.epoch = epoch
        self.index = index
        self.range = range
    }

    /// How many units an epoch of `count` images has.
    public static func unitCount(count: Int, batchSize: Int, batchesPerUnit: Int) -> Int {
        let size = batchSize * batchesPerUnit
        precondition(size > 0)
        return (count + size - 1) / size
    }

    /// Every unit of an epoch of `count` images, in order.
    public static func units(epoch: Int, count: Int, batchSize: Int, batchesPerUnit: Int) -> [WorkUnit] {
        let size = batchSize * batchesPerUnit
        return (0..<unitCount(count: count, batchSize: batchSize, batchesPerUnit: batchesPerUnit)).map { index in
            WorkUnit(epoch: epoch, index: index, range: (index * size)..<min((index + 1) * size, count))
        }
    }
}
