/// How long work units take, from the lease to the push, over the most recent units: what a lease's
/// deadline is derived from.
///
/// A lease expires after `max(floor, multiple x p99)`: a high percentile, so that a healthy but slow
/// worker is not cut off by the tail of its own distribution, times a margin, with a floor for the
/// session's first units (nothing observed yet, and the first units pay for warm-up) and for very fast
/// models, where a scheduling hiccup would otherwise look like a stuck worker.
public struct UnitTimeEstimate: Sendable {
    /// Unit times kept: the percentile follows the session as it speeds up or slows down.
    public static let window = 1_000
    /// Below this many observations the percentile is not trusted and the floor alone applies.
    public static let minimumObservations = 20
    /// The percentile is recomputed after this many new observations (a sort of the window), not on every push.
    static let recomputeEvery = 32

    private var seconds: [Double] = []
    private var next = 0
    private var sinceRecompute = 0
    private var cachedP99: Double?

    public init() {}

    /// Units observed, up to `window`.
    public var count: Int { seconds.count }

    /// The 99th percentile of the observed unit times, in seconds; nil until `minimumObservations`.
    public var p99: Double? { cachedP99 }

    /// Records one unit's time, from the lease to its push.
    public mutating func record(_ duration: Duration) {
        let value = max(0, duration.seconds)
        if seconds.count < Self.window {
            seconds.append(value)
        } else {
            seconds[next] = value
            next = (next + 1) % Self.window
        }
        sinceRecompute += 1
        if seconds.count >= Self.minimumObservations, cachedP99 == nil || sinceRecompute >= Self.recomputeEvery {
            sinceRecompute = 0
            let sorted = seconds.sorted()
            // Nearest rank: the smallest value with at least 99% of the observations at or below it.
            let rank = Int((Double(sorted.count) * 0.99).rounded(.up))
            cachedP99 = sorted[max(0, rank - 1)]
        }
    }

    /// The lease deadline: `max(floor, multiple x p99)`, or `floor` before enough observations.
    public func leaseTimeout(floor: Duration, multiple: Double) -> Duration {
        guard let p99 = cachedP99 else { return floor }
        return max(floor, .seconds(p99 * multiple))
    }
}
