/// An independent record of which work units have had an update applied, one bit per unit of the
/// session, so that "every sample exactly once" is checked rather than assumed: the ledger decides
/// what may be applied, and this audit catches a unit applied a second time anyway
/// (`SessionStatistics.appliedTwice`, which must stay 0).
///
/// A session of 60,000 samples in units of 64 over 5 epochs takes 592 bytes; a soak of 400,000 units, 50 KiB.
public struct AppliedUnitAudit: Sendable, Equatable {
    private var words: [UInt64]
    private let totalUnits: UInt64

    /// An audit of `totalUnits` units, none applied.
    public init(totalUnits: Int) {
        self.totalUnits = UInt64(max(0, totalUnits))
        words = Array(repeating: 0, count: (max(0, totalUnits) + 63) / 64)
    }

    /// An audit of a ledger's session in which exactly the units the ledger counts as done were applied:
    /// a new session's (none), or a resumed one's.
    public init(_ ledger: WorkUnitLedger) {
        self.init(totalUnits: ledger.totalUnits)
        let progress = ledger.progress
        for unit in 0..<UInt64(progress.finishedEpochs * ledger.unitsPerEpoch) { _ = recordApplied(unit) }
        for unit in progress.doneUnits { _ = recordApplied(unit) }
    }

    /// Records that `unitID`'s update was applied.
    /// - Returns: false when it had been applied before (or is no unit of the session).
    public mutating func recordApplied(_ unitID: UInt64) -> Bool {
        guard unitID < totalUnits else { return false }
        let (word, bit) = (Int(unitID / 64), unitID % 64)
        guard words[word] & (1 << bit) == 0 else { return false }
        words[word] |= 1 << bit
        return true
    }

    /// Whether `unitID`'s update has been applied.
    public func isApplied(_ unitID: UInt64) -> Bool {
        guard unitID < totalUnits else { return false }
        return words[Int(unitID / 64)] & (1 << (unitID % 64)) != 0
    }
}
