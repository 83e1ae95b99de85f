/// Running figures over the staleness of applied updates: count, mean, maximum and a histogram.
public struct StalenessStatistics: Sendable, Equatable {
    /// Upper bounds (inclusive) of the histogram's buckets; a last bucket holds everything above.
    public static let bucketBounds: [UInt64] = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64]

    public private(set) var count: UInt64 = 0
    public private(set) var sum: UInt64 = 0
    public private(set) var maximum: UInt64 = 0
    /// Counts per bucket of `bucketBounds`, plus one overflow bucket.
    public private(set) var buckets: [UInt64] = Array(repeating: 0, count: StalenessStatistics.bucketBounds.count + 1)

    public init() {}

    /// Figures kept elsewhere (a checkpoint); nil when they contradict each other.
    public init?(count: UInt64, sum: UInt64, maximum: UInt64, buckets: [UInt64]) {
        guard buckets.count == Self.bucketBounds.count + 1, buckets.reduce(0, { $0 &+ $1 }) == count,
              count > 0 || (sum == 0 && maximum == 0) else { return nil }
        self.count = count
        self.sum = sum
        self.maximum = maximum
        self.buckets = buckets
    }

    /// The mean staleness, or 0 before any update.
    public var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }

    /// Records one applied update's staleness.
    public mutating func record(_ staleness: UInt64) {
        count += 1
        sum += staleness
        maximum = max(maximum, staleness)
        let bucket = Self.bucketBounds.firstIndex { staleness <= $0 } ?? Self.bucketBounds.count
        buckets[bucket] += 1
    }
}
