/// An independent record of which work units have had an update applied, so that "every sample
/// exactly once" is checked rather than assumed: the ledger decides what may be applied, and this
/// audit catches a unit applied a second time anyway (`SessionStatistics.appliedTwice`, which must
/// stay 0).
///
/// It keeps one bit per unit of the epochs still open, and only a count for the epochs before them,
/// whose every unit has been applied: memory stays proportional to an epoch however long the session
/// (a session of 60,000 samples in units of 64 holds 118 bytes per open epoch).
public struct AppliedUnitAudit: Sendable {
    private let unitsPerEpoch: Int
    private let epochs: Int
    /// Every unit of the epochs below this has been applied.
    private var completeEpochs = 0
    /// The applied units of each open epoch, one bit per unit, and how many there are.
    private var open: [Int: (bits: [UInt64], applied: Int)] = [:]

    /// An audit of `epochs` epochs of `unitsPerEpoch` units, none applied.
    public init(unitsPerEpoch: Int, epochs: Int) {
        self.unitsPerEpoch = max(1, unitsPerEpoch)
        self.epochs = max(0, epochs)
    }

    /// An audit of a ledger's session in which exactly the units the ledger counts as done were applied:
    /// a new session's (none), or a resumed one's.
    public init(_ ledger: WorkUnitLedger) {
        self.init(unitsPerEpoch: ledger.unitsPerEpoch, epochs: ledger.epochs)
        let progress = ledger.progress
        completeEpochs = progress.finishedEpochs
        for unit in progress.doneUnits { _ = recordApplied(unit) }
    }

    /// Records that `unitID`'s update was applied.
    /// - Returns: false when it had been applied before (or is no unit of the session).
    public mutating func recordApplied(_ unitID: UInt64) -> Bool {
        guard unitID < UInt64(unitsPerEpoch * epochs) else { return false }
        let epoch = Int(unitID) / unitsPerEpoch, index = Int(unitID) % unitsPerEpoch
        guard epoch >= completeEpochs else { return false }
        var entry = open[epoch] ?? (Array(repeating: 0, count: (unitsPerEpoch + 63) / 64), 0)
        let (word, bit) = (index / 64, UInt64(index % 64))
        guard entry.bits[word] & (1 << bit) == 0 else { return false }
        entry.bits[word] |= 1 << bit
        entry.applied += 1
        open[epoch] = entry
        // Epochs complete in order in the common case; one that completes early waits for those below.
        while let lowest = open[completeEpochs], lowest.applied == unitsPerEpoch {
            open[completeEpochs] = nil
            completeEpochs += 1
        }
        return true
    }

    /// Whether `unitID`'s update has been applied.
    public func isApplied(_ unitID: UInt64) -> Bool {
        guard unitID < UInt64(unitsPerEpoch * epochs) else { return false }
        let epoch = Int(unitID) / unitsPerEpoch, index = Int(unitID) % unitsPerEpoch
        if epoch < completeEpochs { return true }
        guard let entry = open[epoch] else { return false }
        return entry.bits[index / 64] & (1 << UInt64(index % 64)) != 0
    }

    /// Epochs whose bits are held: the open ones.
    public var openEpochCount: Int { open.count }
}
