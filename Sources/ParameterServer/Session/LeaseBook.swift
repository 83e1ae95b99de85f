/// The live leases on a session's outstanding work units: which worker holds each unit, since when,
/// and whether as a backup. A unit has one lease, or two while a backup copy is out.
///
/// A pure value with no clock of its own; `SessionCoordinator` keeps it and decides what a lease
/// allows (see its documentation).
struct LeaseBook: Sendable {
    /// One worker's lease on one unit.
    struct Lease: Sendable, Equatable {
        var worker: WorkerID
        /// When the unit was sent: a unit time, and the lease's deadline, count from here.
        var since: ContinuousClock.Instant
        /// Whether this is a backup copy of a unit another worker was leased first.
        var isBackup: Bool
    }

    private var byUnit: [UInt64: [Lease]] = [:]

    /// Units with at least one live lease.
    var leasedUnitCount: Int { byUnit.count }

    /// `worker`'s lease on `unitID`, if it holds one.
    func lease(on unitID: UInt64, heldBy worker: WorkerID) -> Lease? {
        byUnit[unitID]?.first { $0.worker == worker }
    }

    /// Every live lease on `unitID`.
    func holders(of unitID: UInt64) -> [Lease] { byUnit[unitID] ?? [] }

    /// Leases `unitID` to `worker` from `since`.
    mutating func grant(_ unitID: UInt64, to worker: WorkerID, since: ContinuousClock.Instant, isBackup: Bool) {
        byUnit[unitID, default: []].append(Lease(worker: worker, since: since, isBackup: isBackup))
    }

    /// Takes `worker`'s lease on `unitID` back.
    /// - Returns: the lease taken, if there was one, and whether another worker still holds the unit.
    @discardableResult
    mutating func revoke(_ unitID: UInt64, from worker: WorkerID) -> (lease: Lease?, othersHold: Bool) {
        guard var holders = byUnit[unitID], let index = holders.firstIndex(where: { $0.worker == worker }) else {
            return (nil, byUnit[unitID] != nil)
        }
        let lease = holders.remove(at: index)
        byUnit[unitID] = holders.isEmpty ? nil : holders
        return (lease, !holders.isEmpty)
    }

    /// Ends every lease on `unitID` (its update was applied): returns the holders.
    mutating func releaseAll(_ unitID: UInt64) -> [Lease] {
        byUnit.removeValue(forKey: unitID) ?? []
    }

    /// The leases whose deadline (`since + timeout`) is at or before `now`, oldest first.
    func expired(at now: ContinuousClock.Instant, timeout: Duration) -> [(unitID: UInt64, lease: Lease)] {
        byUnit.flatMap { unitID, holders in
            holders.filter { now - $0.since >= timeout }.map { (unitID: unitID, lease: $0) }
        }.sorted { ($0.lease.since, $0.unitID) < ($1.lease.since, $1.unitID) }
    }

    /// When the oldest live lease began.
    var oldestSince: ContinuousClock.Instant? {
        byUnit.values.lazy.flatMap { $0 }.map(\.since).min()
    }

    /// The unit to hand `worker` as a backup: of the units with a single lease, held by another
    /// worker, the one leased longest ago (the likeliest straggler); nil when there is none.
    func backupCandidate(for worker: WorkerID) -> UInt64? {
        var best: (since: ContinuousClock.Instant, unitID: UInt64)?
        for (unitID, holders) in byUnit where holders.count == 1 && holders[0].worker != worker {
            let candidate = (since: holders[0].since, unitID: unitID)
            if best.map({ (candidate.since, candidate.unitID) < ($0.since, $0.unitID) }) ?? true { best = candidate }
        }
        return best?.unitID
    }
}
