/// What a session did over time, for its run report: epoch results, a throughput series, membership
/// events, the staleness histogram and the configuration.
public struct SessionHistory: Sendable {
    /// One evaluated epoch.
    public struct EpochPoint: Sendable, Equatable {
        public var epoch: Int
        public var seconds: Double
        public var updates: UInt64
        public var testAccuracy: Double
        public var testLoss: Double
        public var trainLoss: Double?

        public init(epoch: Int, seconds: Double, updates: UInt64, testAccuracy: Double, testLoss: Double, trainLoss: Double?) {
            self.epoch = epoch
            self.seconds = seconds
            self.updates = updates
            self.testAccuracy = testAccuracy
            self.testLoss = testLoss
            self.trainLoss = trainLoss
        }
    }

    /// Applied updates counted at one moment.
    public struct ThroughputPoint: Sendable, Equatable {
        public var seconds: Double
        public var updates: UInt64

        public init(seconds: Double, updates: UInt64) {
            self.seconds = seconds
            self.updates = updates
        }
    }

    /// A worker joining or leaving.
    public struct MembershipEvent: Sendable, Equatable {
        public var seconds: Double
        public var worker: String
        public var joined: Bool
        public var reason: String

        public init(seconds: Double, worker: String, joined: Bool, reason: String) {
            self.seconds = seconds
            self.worker = worker
            self.joined = joined
            self.reason = reason
        }
    }

    public var title: String
    /// The session's settings, in the order to show them.
    public var configuration: [(String, String)]
    public var epochs: [EpochPoint] = []
    public var throughput: [ThroughputPoint] = []
    public var membership: [MembershipEvent] = []
    /// Bucket upper bounds and counts, as `StalenessStatistics` keeps them.
    public var stalenessBuckets: [(label: String, count: UInt64)] = []
    /// The summary line's pairs.
    public var summary: [String: String] = [:]
    /// Seconds from the server's start to the end of training.
    public var duration: Double = 0

    public init(title: String, configuration: [(String, String)]) {
        self.title = title
        self.configuration = configuration
    }

    /// Fills the histogram from the session's statistics.
    public mutating func record(staleness: StalenessStatistics) {
        let bounds = StalenessStatistics.bucketBounds
        stalenessBuckets = staleness.buckets.indices.map { index in
            let label: String
            if index == bounds.count {
                label = ">\(bounds.last!)"
            } else if index == 0 || bounds[index - 1] + 1 == bounds[index] {
                label = "\(bounds[index])"
            } else {
                label = "\(bounds[index - 1] + 1)-\(bounds[index])"
            }
            return (label, staleness.buckets[index])
        }
    }
}
