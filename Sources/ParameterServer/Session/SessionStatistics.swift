/// What a session has done so far, for progress lines, the summary and metrics.
public struct SessionStatistics: Sendable, Equatable {
    /// Updates applied to the model (in sync mode, pushes taken into applied rounds).
    public var updatesApplied: UInt64 = 0
    /// Pushes not applied, by reason: `duplicate`, `not_leased`, `lease_expired`, `unknown_unit`,
    /// `future_version`, `stale`, `wrong_dimensions`, `not_finite`, `bad_encoding`.
    public var rejected: [String: UInt64] = [:]
    /// Units whose update was applied although it had been applied before, found by an audit
    /// independent of the ledger. Always 0; anything else is a bug.
    public var appliedTwice: UInt64 = 0
    /// Leases that ran out before their unit was pushed (the unit went back to the queue).
    public var leasesExpired: UInt64 = 0
    /// Backup leases: copies of outstanding units handed to idle workers at the session's tail.
    public var backupLeases: UInt64 = 0
    /// Training samples behind applied updates.
    public var samplesTrained: UInt64 = 0
    /// Staleness of applied updates.
    public var staleness = StalenessStatistics()
    /// Sync rounds closed.
    public var rounds: UInt64 = 0
    public var joins: UInt64 = 0
    public var leaves: UInt64 = 0
    /// Staleness of updates applied since the last call to `takeEpochFigures()`.
    private var periodStaleness = StalenessStatistics()
    /// Sample-weighted training loss since the last call to `takeEpochFigures()`.
    private var lossSum: Double = 0
    private var lossSamples: Double = 0

    public init() {}

    /// All rejections, whatever the reason.
    public var rejectedTotal: UInt64 { rejected.values.reduce(0, +) }

    /// Pushes refused because their unit had already been applied.
    public var duplicates: UInt64 { rejected[SessionCoordinator.PushRefusal.duplicate.rawValue] ?? 0 }

    /// The rejections as `reason:count` pairs sorted by reason, joined by commas; "-" when there are none.
    public var rejectedByReason: String {
        let pairs = rejected.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
        return pairs.isEmpty ? "-" : pairs.joined(separator: ",")
    }

    mutating func recordApplied(samples: Int, loss: Float?, staleness value: UInt64) {
        updatesApplied += 1
        samplesTrained += UInt64(samples)
        staleness.record(value)
        periodStaleness.record(value)
        if let loss { recordLoss(loss, samples: samples) }
    }

    mutating func recordLoss(_ loss: Float, samples: Int) {
        lossSum += Double(loss) * Double(samples)
        lossSamples += Double(samples)
    }

    /// The mean training loss reported by pushes and the staleness of updates applied since the last
    /// call, and starts a new period.
    public mutating func takeEpochFigures() -> (loss: Double?, staleness: StalenessStatistics) {
        defer {
            lossSum = 0
            lossSamples = 0
            periodStaleness = StalenessStatistics()
        }
        return (lossSamples > 0 ? lossSum / lossSamples : nil, periodStaleness)
    }
}
