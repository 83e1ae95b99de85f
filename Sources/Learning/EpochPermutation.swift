/// The order of one epoch: a permutation of `0..<count` that depends only on `(seed, epoch)`.
///
/// The server and a single process derive the same permutation from the seed alone.
///
/// ```swift
/// let permutation = EpochPermutation(seed: 42, epoch: 0, count: train.count)
/// for batch in permutation.batches(of: 64) { train.gather(indices: batch, ...) }
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
}
