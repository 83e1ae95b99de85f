/// The parameter server's session logic as a value: membership, work dispatch, staleness and rounds.
///
/// It owns no sockets, no clock and no model. Each event method takes what happened (a worker joined, a
/// push arrived, time passed) and returns the actions to carry out, in order. The server runtime
/// executes them; tests drive it directly with a fake clock.
///
/// Invariants it keeps:
/// - the model version only goes up, by one per applied update (or per sync round);
/// - every work unit is applied exactly once per epoch: a leaving worker's units are requeued, a
///   refused or too-stale update's unit is requeued, a duplicate is dropped;
/// - no worker that has left can block the others, in any mode.
public struct SessionCoordinator: Sendable {
    /// Something the runtime must do.
    public enum Action: Sendable {
        /// Send the model's current weights to the worker.
        case sendWeights(WorkerID)
        /// Send a work unit; the worker must compute it on weights of at least `minVersion`.
        case sendUnit(WorkerID, WorkUnitLedger.Assignment, minVersion: UInt64)
        /// Apply an update to the model; the version is now `version`.
        case apply(Update, version: UInt64)
        /// Tell the worker what became of its push.
        case acknowledge(WorkerID, Acknowledgement)
        /// Tell the worker one of its messages was refused; close it after when `fatal`.
        case refuse(WorkerID, Refusal)
        /// Close the worker's connection (it has already been removed from the session).
        case disconnect(WorkerID)
        /// Enough workers are present and training has begun.
        case startTraining
        /// Every unit of `epoch` has been applied.
        case finishEpoch(Int)
        /// Every unit of every epoch has been applied: evaluate, tell the workers, stop.
        case finishSession
        /// A worker joined the session (for reports and metrics; the log line comes separately).
        case memberJoined(WorkerID, name: String)
        /// A worker left the session, and why.
        case memberLeft(WorkerID, name: String, reason: String)
        /// A line for the operator's log.
        case log(String)
    }

    /// An update to apply to the model.
    public struct Update: Sendable {
        public var values: [Float]
        public var kind: UpdateKind
        /// Multiplies the learning rate (gradients) or the delta (deltas): 1 except under `inverse`.
        public var scale: Float
        public var sampleCount: Int
    }

    /// The answer to one push.
    public struct Acknowledgement: Sendable, Equatable {
        public var unitID: UInt64
        public var applied: Bool
        public var serverVersion: UInt64
        public var staleness: UInt64
        public var reason: String
    }

    /// Why a message was refused.
    public struct Refusal: Sendable, Equatable {
        public enum Reason: String, Sendable {
            case wrongDimensions = "wrong_dimensions"
            case notFinite = "not_finite"
            case unknownUnit = "unknown_unit"
        }
        public var reason: Reason
        public var message: String
        public var fatal: Bool
    }

    /// A push as the runtime decoded it.
    public struct PushInput: Sendable {
        public var unitID: UInt64
        public var baseVersion: UInt64
        public var kind: UpdateKind
        public var loss: Float
        public var sampleCount: Int
        public var values: [Float]

        public init(unitID: UInt64, baseVersion: UInt64, kind: UpdateKind, loss: Float, sampleCount: Int, values: [Float]) {
            self.unitID = unitID
            self.baseVersion = baseVersion
            self.kind = kind
            self.loss = loss
            self.sampleCount = sampleCount
            self.values = values
        }
    }

    /// Where the session is.
    public enum Phase: Sendable, Equatable {
        case waitingForWorkers
        case training
        case finished
    }

    /// One connected worker as the session sees it.
    struct Member: Sendable {
        var name: String
        /// Units held, oldest first.
        var held: [UInt64] = []
        /// Updates of this worker applied so far, offset at join so a newcomer starts level (ssp).
        var clock: Int
        var lastHeard: ContinuousClock.Instant
        var capacity: Int
    }

    /// The sync round in progress.
    struct Round: Sendable {
        var version: UInt64
        /// Members that hold a unit of this round and have not pushed.
        var awaiting: Set<WorkerID>
        var sum: [Float]
        var samples = 0
        var kind: UpdateKind = .gradient
        /// Pushes taken into the round, applied when it closes.
        var pushes: [(worker: WorkerID, unitID: UInt64, staleness: UInt64)] = []
    }

    public let policy: SessionPolicy
    /// Length of the parameter buffer every update must have.
    public let parameterCount: Int

    public private(set) var phase: Phase = .waitingForWorkers
    public private(set) var version: UInt64
    public private(set) var ledger: WorkUnitLedger
    public private(set) var statistics = SessionStatistics()
    private var members: [WorkerID: Member] = [:]
    private var round: Round?

    /// Creates a coordinator.
    /// - Parameters:
    ///   - policy: the session's rules.
    ///   - ledger: the session's work units.
    ///   - parameterCount: the model's parameter count; updates of another length are refused.
    ///   - version: the model version to start from (0 for a new session).
    ///   - statistics: the figures so far (a resumed session's, from its checkpoint).
    public init(
        policy: SessionPolicy, ledger: WorkUnitLedger, parameterCount: Int, version: UInt64 = 0,
        statistics: SessionStatistics = SessionStatistics()
    ) {
        precondition(parameterCount > 0, "a model has parameters")
        self.policy = policy
        self.ledger = ledger
        self.parameterCount = parameterCount
        self.version = version
        self.statistics = statistics
    }

    /// Workers in the session now.
    public var activeWorkers: [WorkerID] { members.keys.sorted() }

    /// The name a worker gave at its handshake.
    public func name(of worker: WorkerID) -> String? { members[worker]?.name }

    /// The mean training loss and the staleness since the last call, and starts a new period.
    public mutating func takeEpochFigures() -> (loss: Double?, staleness: StalenessStatistics) {
        statistics.takeEpochFigures()
    }

    /// Units a worker holds now.
    public func unitsHeld(by worker: WorkerID) -> [UInt64] { members[worker]?.held ?? [] }

    // MARK: Events

    /// A worker finished its handshake.
    /// - Parameters:
    ///   - capacity: units it is willing to hold at once; capped by the policy.
    public mutating func join(_ worker: WorkerID, name: String, capacity: Int, now: ContinuousClock.Instant) -> [Action] {
        guard phase != .finished, members[worker] == nil else { return [] }
        let levelClock = members.values.map(\.clock).min() ?? 0
        members[worker] = Member(
            name: name,
            clock: levelClock,
            lastHeard: now,
            capacity: max(1, min(capacity, policy.unitsAhead))
        )
        statistics.joins += 1
        var actions: [Action] = [
            .memberJoined(worker, name: name),
            .log("worker \(worker) (\(name)) joined; \(members.count) active"),
        ]
        switch phase {
        case .waitingForWorkers:
            if members.count >= policy.workersToStart {
                phase = .training
                actions.append(.startTraining)
                if policy.mode != .sync {
                    // Sync rounds send the round's weights with each unit; the other modes send them once here.
                    actions += members.keys.sorted().map { Action.sendWeights($0) }
                }
                actions += dispatchAll()
            } else {
                actions.append(.log("waiting for \(policy.workersToStart - members.count) more worker(s)"))
            }
        case .training:
            if policy.mode == .sync {
                // A newcomer joins the next round; if no round is running it starts one now.
                if round == nil { actions += startRound() }
            } else {
                actions.append(.sendWeights(worker))
                actions += dispatch(to: worker)
            }
        case .finished:
            break
        }
        return actions
    }

    /// A worker left: it said so, its connection closed, or it was dropped.
    public mutating func leave(_ worker: WorkerID, reason: String) -> [Action] {
        guard let member = members.removeValue(forKey: worker) else { return [] }
        statistics.leaves += 1
        let requeued = member.held.filter { ledger.requeue($0) }
        var actions: [Action] = [
            .memberLeft(worker, name: member.name, reason: reason),
            .log("worker \(worker) (\(member.name)) left: \(reason); \(requeued.count) unit(s) requeued; \(members.count) active"),
        ]
        guard phase == .training else { return actions }
        switch policy.mode {
        case .sync:
            if var current = round {
                current.awaiting.remove(worker)
                round = current
                if current.awaiting.isEmpty { actions += closeRound() }
            }
        case .async, .ssp:
            // The leaver's units (and, in ssp, a slowest clock that no longer holds anyone back).
            actions += dispatchAll()
        }
        return actions
    }

    /// Anything arrived from the worker: it is alive.
    public mutating func heard(from worker: WorkerID, now: ContinuousClock.Instant) {
        members[worker]?.lastHeard = now
    }

    /// Time passed: drop workers silent for longer than the heartbeat timeout.
    public mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        let silent = members.filter { now - $0.value.lastHeard > policy.heartbeatTimeout }.keys.sorted()
        var actions: [Action] = []
        for worker in silent {
            actions += leave(worker, reason: "silent for more than \(policy.heartbeatTimeout)")
            actions.append(.disconnect(worker))
        }
        return actions
    }

    /// A worker pushed the result of a work unit.
    public mutating func push(from worker: WorkerID, _ input: PushInput) -> [Action] {
        guard phase == .training, members[worker] != nil else { return [] }
        if let refusal = validate(input) {
            statistics.rejected[refusal.reason.rawValue, default: 0] += 1
            releaseHeld(input.unitID, of: worker, requeue: true)
            var actions: [Action] = [
                .refuse(worker, refusal),
                .log("refused a push from \(worker) for unit \(input.unitID): \(refusal.message)"),
            ]
            actions += afterPush(from: worker)
            return actions
        }
        let staleness = version >= input.baseVersion ? version - input.baseVersion : 0
        switch policy.mode {
        case .sync:
            return pushIntoRound(from: worker, input, staleness: staleness)
        case .async, .ssp:
            return applyNow(from: worker, input, staleness: staleness)
        }
    }

    // MARK: Asynchronous and SSP

    private mutating func applyNow(from worker: WorkerID, _ input: PushInput, staleness: UInt64) -> [Action] {
        var actions: [Action] = []
        if policy.stalenessPolicy == .bound, staleness > UInt64(policy.maxStaleness), ledger.isOutstanding(input.unitID) {
            statistics.rejected["stale", default: 0] += 1
            releaseHeld(input.unitID, of: worker, requeue: true)
            actions.append(.acknowledge(worker, Acknowledgement(
                unitID: input.unitID, applied: false, serverVersion: version, staleness: staleness,
                reason: "staleness \(staleness) is over the bound \(policy.maxStaleness); unit requeued")))
            return actions + afterPush(from: worker)
        }
        releaseHeld(input.unitID, of: worker, requeue: false)
        switch ledger.complete(input.unitID) {
        case .unknown:
            statistics.rejected[Refusal.Reason.unknownUnit.rawValue, default: 0] += 1
            actions.append(.refuse(worker, Refusal(
                reason: .unknownUnit, message: "unit \(input.unitID) is not part of this session", fatal: false)))
        case .duplicate:
            actions.append(.acknowledge(worker, Acknowledgement(
                unitID: input.unitID, applied: false, serverVersion: version, staleness: staleness,
                reason: "unit \(input.unitID) was already applied")))
        case .accepted(let finishedEpoch):
            let scale: Float = policy.stalenessPolicy == .inverse ? 1 / Float(max(1, staleness)) : 1
            version += 1
            members[worker]?.clock += 1
            statistics.recordApplied(samples: input.sampleCount, loss: input.loss, staleness: staleness)
            actions.append(.apply(Update(values: input.values, kind: input.kind, scale: scale, sampleCount: input.sampleCount), version: version))
            actions.append(.acknowledge(worker, Acknowledgement(
                unitID: input.unitID, applied: true, serverVersion: version, staleness: staleness, reason: "")))
            actions += epochAndSessionEnd(finishedEpoch)
        }
        return actions + afterPush(from: worker)
    }

    /// Refills after a push: only the pusher in async; everyone in ssp, since the slowest clock may have moved.
    private mutating func afterPush(from worker: WorkerID) -> [Action] {
        guard phase == .training else { return [] }
        switch policy.mode {
        case .async: return dispatch(to: worker)
        case .ssp: return dispatchAll()
        case .sync: return []
        }
    }

    private mutating func dispatchAll() -> [Action] {
        guard phase == .training else { return [] }
        if policy.mode == .sync {
            return round == nil ? startRound() : []
        }
        var actions: [Action] = []
        for worker in members.keys.sorted() {
            actions += dispatch(to: worker)
        }
        return actions
    }

    /// Tops up a worker's held units, as far as its capacity and (in ssp) the clock bound allow.
    private mutating func dispatch(to worker: WorkerID) -> [Action] {
        guard phase == .training, policy.mode != .sync else { return [] }
        var actions: [Action] = []
        // Reads counts in place rather than copying the member (and its held array) on every test.
        while let held = members[worker]?.held.count, let capacity = members[worker]?.capacity,
              held < capacity, mayStartAnother(worker) {
            guard let assignment = ledger.assignNext(to: worker) else { break }
            members[worker]?.held.append(assignment.unitID)
            actions.append(.sendUnit(worker, assignment, minVersion: 0))
        }
        return actions
    }

    /// In ssp a worker at clock c holding h units may take another while c + h - slowest <= K.
    private func mayStartAnother(_ worker: WorkerID) -> Bool {
        guard policy.mode == .ssp, let member = members[worker] else { return true }
        let slowest = members.values.map(\.clock).min() ?? member.clock
        return member.clock + member.held.count - slowest <= policy.maxStaleness
    }

    // MARK: Synchronous rounds

    private mutating func startRound() -> [Action] {
        guard phase == .training, !members.isEmpty else { return [] }
        var next = Round(version: version, awaiting: [], sum: [])
        var actions: [Action] = []
        for worker in members.keys.sorted() {
            guard let assignment = ledger.assignNext(to: worker) else { break }
            members[worker]?.held.append(assignment.unitID)
            next.awaiting.insert(worker)
            actions.append(.sendWeights(worker))
            actions.append(.sendUnit(worker, assignment, minVersion: version))
        }
        if !next.awaiting.isEmpty { round = next }
        return actions
    }

    private mutating func pushIntoRound(from worker: WorkerID, _ input: PushInput, staleness: UInt64) -> [Action] {
        guard var current = round, current.awaiting.contains(worker),
              members[worker]?.held.contains(input.unitID) == true else {
            // Not this worker's unit in this round: a late duplicate or a confused peer.
            releaseHeld(input.unitID, of: worker, requeue: false)
            if ledger.isDone(input.unitID) {
                _ = ledger.complete(input.unitID)  // a done unit only counts as a duplicate
            }
            return [.acknowledge(worker, Acknowledgement(
                unitID: input.unitID, applied: false, serverVersion: version, staleness: staleness,
                reason: "unit \(input.unitID) is not outstanding in this round"))]
        }
        releaseHeld(input.unitID, of: worker, requeue: false)
        current.awaiting.remove(worker)
        let weight = Float(input.sampleCount)
        if current.sum.isEmpty {
            current.sum = input.values.map { $0 * weight }
        } else {
            current.sum.withUnsafeMutableBufferPointer { sum in
                input.values.withUnsafeBufferPointer { values in
                    for i in 0..<sum.count { sum[i] += values[i] * weight }
                }
            }
        }
        current.samples += input.sampleCount
        current.kind = input.kind
        current.pushes.append((worker, input.unitID, staleness))
        statistics.recordLoss(input.loss, samples: input.sampleCount)
        round = current
        return current.awaiting.isEmpty ? closeRound() : []
    }

    /// Applies the round's averaged update, acknowledges its pushes and starts the next round.
    private mutating func closeRound() -> [Action] {
        guard let closing = round else { return [] }
        round = nil
        var actions: [Action] = []
        if !closing.pushes.isEmpty {
            var average = closing.sum
            let inverse = 1 / Float(max(1, closing.samples))
            for i in average.indices { average[i] *= inverse }
            version += 1
            actions.append(.apply(Update(values: average, kind: closing.kind, scale: 1, sampleCount: closing.samples), version: version))
            var finishedEpoch: Int?
            for push in closing.pushes {
                if case .accepted(let finished?) = ledger.complete(push.unitID) { finishedEpoch = finished }
                statistics.recordApplied(samples: ledger.sampleCount(of: push.unitID), loss: nil, staleness: push.staleness)
                members[push.worker]?.clock += 1
                if members[push.worker] != nil {
                    actions.append(.acknowledge(push.worker, Acknowledgement(
                        unitID: push.unitID, applied: true, serverVersion: version, staleness: push.staleness, reason: "")))
                }
            }
            statistics.rounds += 1
            actions += epochAndSessionEnd(finishedEpoch)
        }
        return actions + startRound()
    }

    // MARK: Shared

    private mutating func epochAndSessionEnd(_ finishedEpoch: Int?) -> [Action] {
        guard let epoch = finishedEpoch else { return [] }
        var actions: [Action] = [.finishEpoch(epoch)]
        if ledger.isFinished {
            phase = .finished
            actions.append(.finishSession)
        }
        return actions
    }

    private func validate(_ input: PushInput) -> Refusal? {
        if input.values.count != parameterCount {
            return Refusal(
                reason: .wrongDimensions,
                message: "update has \(input.values.count) values but the model has \(parameterCount) parameters",
                fatal: false)
        }
        let allFinite = input.values.withUnsafeBufferPointer { values in
            // A float is NaN or infinite exactly when its exponent bits are all ones; adding one to the
            // exponent field then carries into bit 31, and only then. OR-ing those sums is a branch-free
            // integer reduction of three instructions per vector, which vectorises where a
            // floating-point one would not (its order matters).
            var carries: UInt32 = 0
            for value in values { carries |= (value.bitPattern & 0x7F80_0000) &+ 0x0080_0000 }
            return carries & 0x8000_0000 == 0
        }
        if !allFinite || !input.loss.isFinite {
            return Refusal(reason: .notFinite, message: "update holds NaN or infinity", fatal: false)
        }
        return nil
    }

    private mutating func releaseHeld(_ unitID: UInt64, of worker: WorkerID, requeue: Bool) {
        guard let position = members[worker]?.held.firstIndex(of: unitID) else { return }
        members[worker]?.held.remove(at: position)
        if requeue { ledger.requeue(unitID) }
    }
}
