/// The book of work units for a session: which samples each unit holds, who holds it, which are done.
///
/// A unit is the samples behind one push: `samplesPerUnit` consecutive indices of an epoch's seeded
/// permutation (the last unit of an epoch may be shorter). Unit identifiers are unique within the
/// session: `epoch * unitsPerEpoch + index`.
///
/// The ledger guarantees that each epoch trains on every sample exactly once, whatever the churn:
/// a unit counts as done only when its update is applied; a unit whose holder leaves goes back to the
/// front of the queue; a push for a unit that is already done is reported as a duplicate.
///
/// Epochs overlap only at their edges: once every unit of the current epoch has been handed out, the
/// next epoch's units become available, so that no worker idles while the last units of an epoch are
/// being computed.
public struct WorkUnitLedger: Sendable {
    /// What became of a completed unit.
    public enum Completion: Equatable, Sendable {
        /// The unit is now done. `finishedEpoch` is set when this completed its epoch.
        case accepted(finishedEpoch: Int?)
        /// The unit was already done; the update must not be applied again.
        case duplicate
        /// No such unit in this session.
        case unknown
    }

    /// A unit handed to a worker.
    public struct Assignment: Equatable, Sendable {
        public let unitID: UInt64
        public let epoch: Int
        public let indices: [UInt32]
    }

    private enum UnitState: Sendable {
        case pending
        case held(WorkerID)
        case done
    }

    /// Samples in one unit: batch size times local steps.
    public let samplesPerUnit: Int
    /// Training samples an epoch covers.
    public let sampleCount: Int
    /// Epochs in the session.
    public let epochs: Int
    /// Units in each epoch.
    public let unitsPerEpoch: Int

    private let permutation: @Sendable (_ epoch: Int) -> [UInt32]
    private var permutations: [Int: [UInt32]] = [:]
    /// The state of each unit of every open, unfinished epoch, by index within the epoch. Finished
    /// epochs are dropped, so memory stays proportional to an epoch, however long the session.
    private var epochStates: [Int: [UnitState]] = [:]
    private var queue: [UInt64] = []
    private var queueHead = 0
    private var doneInEpoch: [Int: Int] = [:]
    /// The highest epoch whose units have been opened for assignment.
    private var openedEpoch = -1

    /// Units that went back to the queue because their holder left, went silent or was refused.
    public private(set) var requeuedCount = 0
    /// Pushes for units that were already done.
    public private(set) var duplicateCount = 0
    /// Units applied so far.
    public private(set) var completedCount = 0
    /// Epochs fully trained so far.
    public private(set) var finishedEpochs = 0

    /// Creates the ledger.
    /// - Parameters:
    ///   - sampleCount: training samples per epoch; must be positive.
    ///   - samplesPerUnit: samples behind one push (batch size x local steps); must be positive.
    ///   - epochs: epochs in the session; must be positive.
    ///   - permutation: the epoch's order of sample indices, a permutation of `0..<sampleCount`.
    ///     It must be deterministic, since units are rebuilt from it after a requeue.
    public init(
        sampleCount: Int,
        samplesPerUnit: Int,
        epochs: Int,
        permutation: @escaping @Sendable (_ epoch: Int) -> [UInt32]
    ) {
        precondition(sampleCount > 0 && samplesPerUnit > 0 && epochs > 0, "ledger sizes must be positive")
        self.sampleCount = sampleCount
        self.samplesPerUnit = samplesPerUnit
        self.epochs = epochs
        self.unitsPerEpoch = (sampleCount + samplesPerUnit - 1) / samplesPerUnit
        self.permutation = permutation
    }

    /// Total units in the session.
    public var totalUnits: Int { unitsPerEpoch * epochs }

    /// Whether every unit of every epoch is done.
    public var isFinished: Bool { finishedEpochs == epochs }

    /// Units waiting in the queue, not counting epochs not yet opened.
    public var pendingCount: Int { queue.count - queueHead }

    /// The epoch that training is in: the lowest epoch not yet finished.
    public var currentEpoch: Int { min(finishedEpochs, epochs - 1) }

    /// Whether a unit could be handed out now.
    public var hasAvailableUnit: Bool {
        pendingCount > 0 || openedEpoch + 1 < epochs
    }

    /// Hands the next unit to `worker`, or returns nil when none is available right now.
    public mutating func assignNext(to worker: WorkerID) -> Assignment? {
        if pendingCount == 0 {
            guard openedEpoch + 1 < epochs else { return nil }
            openEpoch(openedEpoch + 1)
        }
        let unitID = queue[queueHead]
        queueHead += 1
        compactQueueIfNeeded()
        setState(.held(worker), of: unitID)
        return assignment(for: unitID)
    }

    /// Records that `unitID`'s update is being applied.
    ///
    /// The first completion of a unit wins, whoever held it; any later one is a duplicate.
    public mutating func complete(_ unitID: UInt64) -> Completion {
        guard let state = state(of: unitID) else { return .unknown }
        switch state {
        case .done:
            duplicateCount += 1
            return .duplicate
        case .pending:
            // A unit that went back to the queue but whose first holder still delivered: take it and
            // drop it from the queue, so it is not trained twice.
            removeFromQueue(unitID)
        case .held:
            break
        }
        setState(.done, of: unitID)
        completedCount += 1
        let epoch = Int(unitID) / unitsPerEpoch
        let done = doneInEpoch[epoch, default: 0] + 1
        doneInEpoch[epoch] = done
        guard done == unitsPerEpoch else { return .accepted(finishedEpoch: nil) }
        // Epochs finish in order in the common case; an epoch that completes before an earlier one
        // is counted when the earlier one completes.
        var finished: Int?
        while finishedEpochs < epochs, doneInEpoch[finishedEpochs, default: 0] == unitsPerEpoch {
            finished = finishedEpochs
            permutations[finishedEpochs] = nil
            epochStates[finishedEpochs] = nil
            doneInEpoch[finishedEpochs] = nil
            finishedEpochs += 1
        }
        return .accepted(finishedEpoch: finished)
    }

    /// Puts a held unit back at the front of the queue, for example after its update was refused.
    /// - Returns: whether the unit was held (and so was requeued).
    @discardableResult
    public mutating func requeue(_ unitID: UInt64) -> Bool {
        guard case .held? = state(of: unitID) else { return false }
        setState(.pending, of: unitID)
        pushFront(unitID)
        requeuedCount += 1
        return true
    }

    /// Puts every unit `worker` holds back at the front of the queue, in their original order.
    /// - Returns: the units requeued.
    @discardableResult
    public mutating func requeueAll(heldBy worker: WorkerID) -> [UInt64] {
        let held = units(heldBy: worker)
        for unitID in held.reversed() {
            requeue(unitID)
        }
        return held
    }

    /// Whether `unitID` is a unit of this session that is not done yet.
    public func isOutstanding(_ unitID: UInt64) -> Bool {
        switch state(of: unitID) {
        case .pending?, .held?: return true
        case .done?, nil: return false
        }
    }

    /// Whether `unitID` has been applied already.
    public func isDone(_ unitID: UInt64) -> Bool {
        if case .done? = state(of: unitID) { return true }
        return false
    }

    /// The units `worker` holds now, in order.
    public func units(heldBy worker: WorkerID) -> [UInt64] {
        epochStates.flatMap { epoch, states in
            states.indices.compactMap { index -> UInt64? in
                if case .held(let holder) = states[index], holder == worker {
                    return UInt64(epoch * unitsPerEpoch + index)
                }
                return nil
            }
        }.sorted()
    }

    /// Samples behind a unit.
    public func sampleCount(of unitID: UInt64) -> Int {
        let index = Int(unitID) % unitsPerEpoch
        return min(samplesPerUnit, sampleCount - index * samplesPerUnit)
    }

    // MARK: Checkpoints

    /// Which units are done: what a checkpoint keeps of the ledger. Units held by workers are not
    /// kept: after a resume no worker holds anything, so they wait in the queue again.
    public struct Progress: Sendable, Equatable {
        /// Every unit of the epochs below this is done.
        public var finishedEpochs: Int
        /// The highest epoch opened for assignment, or -1.
        public var openedEpoch: Int
        /// The units done in the epochs from `finishedEpochs` through `openedEpoch`, ascending.
        public var doneUnits: [UInt64]
        public var completedCount: Int
        public var requeuedCount: Int
        public var duplicateCount: Int

        public init(finishedEpochs: Int, openedEpoch: Int, doneUnits: [UInt64], completedCount: Int,
                    requeuedCount: Int, duplicateCount: Int) {
            self.finishedEpochs = finishedEpochs
            self.openedEpoch = openedEpoch
            self.doneUnits = doneUnits
            self.completedCount = completedCount
            self.requeuedCount = requeuedCount
            self.duplicateCount = duplicateCount
        }
    }

    /// Why a `Progress` does not fit this ledger.
    public struct ProgressError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The ledger's progress now.
    public var progress: Progress {
        let done = epochStates.flatMap { epoch, states in
            states.indices.compactMap { index -> UInt64? in
                if case .done = states[index] { return UInt64(epoch * unitsPerEpoch + index) }
                return nil
            }
        }.sorted()
        return Progress(finishedEpochs: finishedEpochs, openedEpoch: openedEpoch, doneUnits: done,
                        completedCount: completedCount, requeuedCount: requeuedCount, duplicateCount: duplicateCount)
    }

    /// Replaces the ledger's state with `progress`: the done units stay done and every other unit of
    /// the opened epochs waits in the queue, lowest first. Nothing changes when it throws.
    /// - Throws: `ProgressError` when `progress` does not describe a session of this ledger's sizes.
    public mutating func restore(_ progress: Progress) throws(ProgressError) {
        func fail(_ text: String) -> ProgressError { ProgressError(description: "work-unit progress: \(text)") }
        let (finished, opened) = (progress.finishedEpochs, progress.openedEpoch)
        guard (0...epochs).contains(finished) else { throw fail("\(finished) finished epochs of \(epochs)") }
        guard (-1..<epochs).contains(opened), opened >= finished - 1 else {
            throw fail("epoch \(opened) opened with \(finished) finished, of \(epochs)")
        }
        let firstOpen = UInt64(finished * unitsPerEpoch), end = UInt64((opened + 1) * unitsPerEpoch)
        var previous: UInt64?
        for unit in progress.doneUnits {
            guard unit >= firstOpen, unit < end else { throw fail("unit \(unit) is outside the open epochs") }
            guard previous.map({ $0 < unit }) ?? true else { throw fail("done units are not ascending and unique") }
            previous = unit
        }
        guard progress.completedCount == finished * unitsPerEpoch + progress.doneUnits.count else {
            throw fail("\(progress.completedCount) units completed, but \(finished) finished epoch(s) and "
                + "\(progress.doneUnits.count) done unit(s) make \(finished * unitsPerEpoch + progress.doneUnits.count)")
        }
        guard progress.requeuedCount >= 0, progress.duplicateCount >= 0 else { throw fail("negative counts") }
        // An epoch whose every unit is done would have been counted as finished.
        let doneInFirstOpen = progress.doneUnits.prefix { $0 < firstOpen + UInt64(unitsPerEpoch) }.count
        guard finished == epochs || doneInFirstOpen < unitsPerEpoch else {
            throw fail("epoch \(finished) is complete but not counted as finished")
        }

        permutations = [:]
        epochStates = [:]
        doneInEpoch = [:]
        queue = []
        queueHead = 0
        var done = Set(progress.doneUnits)
        if finished < epochs, opened >= finished {
            for epoch in finished...opened {
                var states = [UnitState](repeating: .pending, count: unitsPerEpoch)
                for index in 0..<unitsPerEpoch {
                    let unit = UInt64(epoch * unitsPerEpoch + index)
                    if done.remove(unit) != nil {
                        states[index] = .done
                        doneInEpoch[epoch, default: 0] += 1
                    } else {
                        queue.append(unit)
                    }
                }
                epochStates[epoch] = states
            }
        }
        openedEpoch = opened
        finishedEpochs = finished
        completedCount = progress.completedCount
        requeuedCount = progress.requeuedCount
        duplicateCount = progress.duplicateCount
    }

    // MARK: Private

    private mutating func openEpoch(_ epoch: Int) {
        openedEpoch = epoch
        epochStates[epoch] = Array(repeating: .pending, count: unitsPerEpoch)
        let first = UInt64(epoch * unitsPerEpoch)
        for offset in 0..<UInt64(unitsPerEpoch) {
            queue.append(first + offset)
        }
    }

    /// A unit's state; nil for a unit of no epoch of this session or of one not opened yet. Every unit
    /// of a finished epoch is done.
    private func state(of unitID: UInt64) -> UnitState? {
        guard unitID < UInt64(totalUnits) else { return nil }
        let epoch = Int(unitID) / unitsPerEpoch
        if epoch < finishedEpochs { return .done }
        return epochStates[epoch]?[Int(unitID) % unitsPerEpoch]
    }

    private mutating func setState(_ state: UnitState, of unitID: UInt64) {
        let epoch = Int(unitID) / unitsPerEpoch
        epochStates[epoch]?[Int(unitID) % unitsPerEpoch] = state
    }

    /// The samples of `unitID`, a unit of an open epoch (for a backup copy of a unit already out).
    mutating func assignment(for unitID: UInt64) -> Assignment {
        let epoch = Int(unitID) / unitsPerEpoch
        let index = Int(unitID) % unitsPerEpoch
        if permutations[epoch] == nil {
            let order = permutation(epoch)
            precondition(order.count == sampleCount, "permutation must cover every sample")
            permutations[epoch] = order
        }
        let start = index * samplesPerUnit
        let end = min(start + samplesPerUnit, sampleCount)
        return Assignment(unitID: unitID, epoch: epoch, indices: Array(permutations[epoch]![start..<end]))
    }

    private mutating func pushFront(_ unitID: UInt64) {
        if queueHead > 0 {
            queueHead -= 1
            queue[queueHead] = unitID
        } else {
            queue.insert(unitID, at: 0)
        }
    }

    private mutating func removeFromQueue(_ unitID: UInt64) {
        if let position = queue[queueHead...].firstIndex(of: unitID) {
            queue.remove(at: position)
        }
    }

    /// Drops consumed entries once they dominate, so the queue's memory stays proportional to what is pending.
    private mutating func compactQueueIfNeeded() {
        if queueHead > 1024, queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }
}
