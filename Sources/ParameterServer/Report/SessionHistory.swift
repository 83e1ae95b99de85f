/// What a session did over time, for its run report: epoch results and evaluations between them, a
/// throughput and traffic series, membership events, the staleness histogram and the configuration.
public struct SessionHistory: Sendable {
    /// One evaluated epoch.
    public struct EpochPoint: Sendable, Equatable {
        public var epoch: Int
        public var seconds: Double
        public var updates: UInt64
        public var testAccuracy: Double
        public var testLoss: Double
        public var trainLoss: Double?
        /// Protocol bytes in and out when the epoch ended (see `sessionWireBytes`); 0 if not known.
        public var wireBytes: UInt64

        public init(epoch: Int, seconds: Double, updates: UInt64, testAccuracy: Double, testLoss: Double, trainLoss: Double?,
                    wireBytes: UInt64 = 0) {
            self.epoch = epoch
            self.seconds = seconds
            self.updates = updates
            self.testAccuracy = testAccuracy
            self.testLoss = testLoss
            self.trainLoss = trainLoss
            self.wireBytes = wireBytes
        }
    }

    /// One evaluation between epoch ends (ps-server's `--eval-every` or `--eval-interval`), placed when it was taken.
    public struct EvaluationPoint: Sendable, Equatable {
        public var seconds: Double
        public var updates: UInt64
        public var wireBytes: UInt64
        public var testAccuracy: Double
        public var testLoss: Double

        public init(seconds: Double, updates: UInt64, wireBytes: UInt64, testAccuracy: Double, testLoss: Double) {
            self.seconds = seconds
            self.updates = updates
            self.wireBytes = wireBytes
            self.testAccuracy = testAccuracy
            self.testLoss = testLoss
        }
    }

    /// Applied updates, samples trained and protocol bytes counted at one moment.
    public struct ThroughputPoint: Sendable, Equatable {
        public var seconds: Double
        public var updates: UInt64
        /// Protocol bytes in and out so far (see `sessionWireBytes`); 0 if not known.
        public var wireBytes: UInt64
        public var samples: UInt64

        public init(seconds: Double, updates: UInt64, wireBytes: UInt64 = 0, samples: UInt64 = 0) {
            self.seconds = seconds
            self.updates = updates
            self.wireBytes = wireBytes
            self.samples = samples
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

    /// One shard's figures at one moment (a sharded session), as its ShardState counted them since
    /// its range was assigned.
    public struct ShardPoint: Sendable, Equatable {
        public var seconds: Double
        /// The range's index, and the shard that held it then.
        public var index: Int
        public var shard: String
        public var updates: UInt64
        public var bytesIn: UInt64
        public var bytesOut: UInt64
        public var stalenessMean: Double
        public var stalenessMax: UInt64
        public var workers: Int

        public init(seconds: Double, index: Int, shard: String, updates: UInt64, bytesIn: UInt64, bytesOut: UInt64,
                    stalenessMean: Double, stalenessMax: UInt64, workers: Int) {
            self.seconds = seconds
            self.index = index
            self.shard = shard
            self.updates = updates
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.stalenessMean = stalenessMean
            self.stalenessMax = stalenessMax
            self.workers = workers
        }
    }

    public var title: String
    /// The session's settings, in the order to show them.
    public var configuration: [(String, String)]
    public var epochs: [EpochPoint] = []
    /// Evaluations between epoch ends, in the order they were taken.
    public var evaluations: [EvaluationPoint] = []
    public var throughput: [ThroughputPoint] = []
    public var membership: [MembershipEvent] = []
    /// A sharded session's shards over time: each shard's figures about once a second.
    public var shards: [ShardPoint] = []
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

    /// Bytes that earlier server processes of a resumed session moved, fixed on the first call of
    /// `sessionWireBytes` (nil until then).
    private var carriedWireBytes: UInt64?

    /// The session's protocol bytes so far, given this process's count: a resumed session's process
    /// counts from zero, so the largest count in the history it restored is added to it (the traffic
    /// between that history's last point and the crash is not known, and not counted). Call it only
    /// once the restored points are in place.
    public mutating func sessionWireBytes(_ bytesInThisProcess: UInt64) -> UInt64 {
        let carried = carriedWireBytes ?? max(
            throughput.map(\.wireBytes).max() ?? 0, epochs.map(\.wireBytes).max() ?? 0, evaluations.map(\.wireBytes).max() ?? 0)
        carriedWireBytes = carried
        return carried &+ bytesInThisProcess
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
