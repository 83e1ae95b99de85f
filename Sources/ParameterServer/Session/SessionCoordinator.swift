/// The parameter server's session logic as a value: membership, work dispatch, staleness and rounds.
///
/// It owns no sockets, no clock and no model. Each event method takes what happened (a worker joined, a
/// push arrived, time passed) and returns the actions to carry out, in order. The server runtime
/// executes them; tests drive it directly with a fake clock.
///
/// Invariants it keeps:
/// - the model version only goes up, by one per applied update (or per sync round);
/// - every work unit is applied exactly once per epoch: each unit sent is a *lease* to one worker, and
///   only a push from a worker holding a live lease on the unit is applied; a leaving worker's units
///   are requeued, a refused or too-stale update's unit is requeued, anything else is refused and
///   changes nothing; an audit independent of the ledger counts any unit applied twice;
/// - no worker can block the others, in any mode: one that leaves or goes silent is dropped, and a
///   lease that outlives its deadline (`UnitTimeEstimate`) is taken back and its unit requeued.
public struct SessionCoordinator: Sendable {
    /// Something the runtime must do.
    public enum Action: Sendable {
        /// Send the model's current weights to the worker.
        case sendWeights(WorkerID)
        /// Send a work unit; the worker must compute it on weights of at least `minVersion`.
        case sendUnit(WorkerID, WorkUnitLedger.Assignment, minVersion: UInt64)
        /// Apply an update to the model; the version is now `version`.
        case apply(ModelUpdate, version: UInt64)
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

    /// The answer to one push.
    public struct Acknowledgement: Sendable, Equatable {
        public var unitID: UInt64
        public var applied: Bool
        public var serverVersion: UInt64
        public var staleness: UInt64
        public var reason: String
        /// Why the push was not applied; nil when it was.
        public var refusal: PushRefusal?
    }

    /// Why a well-formed push was not applied (answered with `PushAck{applied=false}`, not an error,
    /// whose `reason` starts with the raw value and a colon).
    public enum PushRefusal: String, Sendable, CaseIterable {
        /// Its unit had already been applied (the losing copy of a backup lands here too).
        case duplicate
        /// A unit of the session that is not leased to the pusher: leased to another worker, waiting
        /// in the queue, or in an epoch not opened yet.
        case notLeased = "not_leased"
        /// The pusher's lease on the unit ran out and the unit went back to the queue.
        case leaseExpired = "lease_expired"
        /// No unit of the session has this id.
        case unknownUnit = "unknown_unit"
        /// Too stale for the `bound` policy; the unit was requeued.
        case stale
        /// Computed on weights of a version the server never had (ahead of its own); the unit was
        /// requeued.
        case futureVersion = "future_version"
    }

    /// Why a message was refused with an `ErrorReport`.
    public struct Refusal: Sendable, Equatable {
        public enum Reason: String, Sendable {
            case wrongDimensions = "wrong_dimensions"
            case notFinite = "not_finite"
            case badEncoding = "bad_encoding"
            /// A sharded session's push that carries values instead of being staged at the shards.
            case wrongShard = "wrong_shard"
        }
        public var reason: Reason
        public var message: String
        public var fatal: Bool
    }

    /// A push as the runtime decoded it.
    public struct PushInput: Sendable {
        public var unitID: UInt64
        public var baseVersion: UInt64
        public var kind: ModelUpdate.Kind
        public var loss: Float
        public var sampleCount: Int
        public var values: [Float]
        /// Why the push's encoded values could not be decoded, when they could not: it is refused
        /// (`bad_encoding`) and its unit requeued.
        public var decodingError: String?
        /// A sharded session's push: no values here, its slices wait at every shard
        /// (`Push.staged`); the shards checked them.
        public var staged = false

        public init(unitID: UInt64, baseVersion: UInt64, kind: ModelUpdate.Kind, loss: Float, sampleCount: Int, values: [Float]) {
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
        /// Units it holds a live lease on, oldest first.
        var held: [UInt64] = []
        /// Updates of this worker applied so far, offset at join so a newcomer starts level (ssp).
        var clock: Int
        var lastHeard: ContinuousClock.Instant
        var capacity: Int
        /// Leases of this worker that expired since its last applied push. While positive it is leased
        /// one unit at a time, and none until `excludedUntil`.
        var expiries = 0
        /// After an expiry the worker gets no unit (and does not count in ssp's slowest clock) until
        /// then: a stuck worker costs one unit's deadline per back-off, not one per unit.
        var excludedUntil: ContinuousClock.Instant?
        /// Units whose lease on this worker expired lately, so that a late push is told why (bounded).
        var expiredUnits: [UInt64] = []
        /// Units this worker held a copy of that another worker's copy completed (backups), likewise.
        var supersededUnits: [UInt64] = []

        /// Units it may hold now.
        var allowance: Int { expiries > 0 ? 1 : capacity }

        func isExcluded(at now: ContinuousClock.Instant) -> Bool { excludedUntil.map { now < $0 } ?? false }
    }

    /// The sync round in progress.
    struct Round: Sendable {
        var version: UInt64
        /// Members that hold a unit of this round and have not pushed.
        var awaiting: Set<WorkerID>
        var sum: [Float]
        var samples = 0
        var kind: ModelUpdate.Kind = .gradient
        /// Pushes taken into the round, applied when it closes.
        var pushes: [(worker: WorkerID, unitID: UInt64, staleness: UInt64)] = []
    }

    public let policy: SessionPolicy
    /// Length of the parameter buffer every update must have.
    public let parameterCount: Int
    /// Whether the parameters are at shards (`ps-server --shards`): pushes are then staged there and
    /// carry no values, and an update names its pushes (`ModelUpdate.sources`) instead.
    public var parametersAtShards = false

    public private(set) var phase: Phase = .waitingForWorkers
    public private(set) var version: UInt64
    public private(set) var ledger: WorkUnitLedger
    public private(set) var statistics = SessionStatistics()
    private var members: [WorkerID: Member] = [:]
    private var round: Round?
    /// The live leases of the outstanding units.
    private var leases = LeaseBook()
    /// How long units take, for the leases' deadline.
    public private(set) var unitTimes = UnitTimeEstimate()
    /// Which units have been applied, kept apart from the ledger to catch a unit applied twice.
    private var audit: AppliedUnitAudit
    /// The latest time any event carried; leases granted by an event start then.
    private var now = ContinuousClock.now

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
        self.audit = AppliedUnitAudit(ledger)
    }

    /// Workers in the session now.
    public var activeWorkers: [WorkerID] { members.keys.sorted() }

    /// The name a worker gave at its handshake.
    public func name(of worker: WorkerID) -> String? { members[worker]?.name }

    /// The mean training loss and the staleness since the last call, and starts a new period.
    public mutating func takeEpochFigures() -> (loss: Double?, staleness: StalenessStatistics) {
        statistics.takeEpochFigures()
    }

    /// Whether the open sync round holds a push of `worker` (of `unitID`, or of any unit when nil): in a
    /// sharded session its slices are still to be applied when the round closes, even if the worker left.
    public func roundHoldsPush(of worker: WorkerID, unit unitID: UInt64? = nil) -> Bool {
        round?.pushes.contains { $0.worker == worker && (unitID == nil || $0.unitID == unitID) } ?? false
    }

    /// Units a worker holds a live lease on now.
    public func unitsHeld(by worker: WorkerID) -> [UInt64] { members[worker]?.held ?? [] }

    /// How long a lease lasts now: `max(leaseFloor, leaseMultiple x p99)` of recent unit times.
    public var leaseTimeout: Duration { unitTimes.leaseTimeout(floor: policy.leaseFloor, multiple: policy.leaseMultiple) }

    /// The next moment `tick(now:)` has something to do: a lease's deadline, a worker's heartbeat
    /// deadline or the end of a worker's exclusion. The runtime sets a timer for it, so that each of
    /// these fires on time rather than on the next periodic tick.
    public var nextDeadline: ContinuousClock.Instant? {
        let timeout = leaseTimeout
        var next: ContinuousClock.Instant?
        func consider(_ instant: ContinuousClock.Instant) {
            if next.map({ instant < $0 }) ?? true { next = instant }
        }
        if let oldest = leases.oldestSince { consider(oldest + timeout) }
        for member in members.values {
            consider(member.lastHeard + policy.heartbeatTimeout)
            if let until = member.excludedUntil { consider(until) }
        }
        return next
    }

    // MARK: Events

    /// The units a worker asking for `requested` at once is granted (`Welcome.units_ahead`): at least
    /// one, at most the policy's `unitsAhead`.
    public func unitsAhead(requested: Int) -> Int { max(1, min(requested, policy.unitsAhead)) }

    /// A worker finished its handshake.
    /// - Parameters:
    ///   - capacity: units it is willing to hold at once; capped by the policy.
    public mutating func join(_ worker: WorkerID, name: String, capacity: Int, now: ContinuousClock.Instant) -> [Action] {
        self.now = now
        guard phase != .finished, members[worker] == nil else { return [] }
        members[worker] = Member(
            name: name,
            clock: slowestClock() ?? 0,
            lastHeard: now,
            capacity: unitsAhead(requested: capacity)
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
    public mutating func leave(_ worker: WorkerID, reason: String, now: ContinuousClock.Instant) -> [Action] {
        self.now = now
        guard let member = members[worker] else { return [] }
        let requeued = member.held.filter { takeBack($0, from: worker) }
        members[worker] = nil
        statistics.leaves += 1
        var actions: [Action] = [
            .memberLeft(worker, name: member.name, reason: reason),
            .log("worker \(worker) (\(member.name)) left: \(reason); \(requeued.count) unit(s) requeued; \(members.count) active"),
        ]
        guard phase == .training else { return actions }
        switch policy.mode {
        case .sync:
            actions += leaveRound(worker)
        case .async, .ssp:
            // The leaver's units (and, in ssp, a slowest clock that no longer holds anyone back).
            actions += dispatchAll()
        }
        return actions
    }

    /// Anything arrived from the worker: it is alive.
    public mutating func heard(from worker: WorkerID, now: ContinuousClock.Instant) {
        self.now = now
        members[worker]?.lastHeard = now
    }

    /// Time passed: drops workers silent for the heartbeat timeout, takes back leases past their
    /// deadline, and lets workers whose exclusion ended take units again. See `nextDeadline`.
    public mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        self.now = now
        var actions: [Action] = []
        let silent = members.filter { now - $0.value.lastHeard >= policy.heartbeatTimeout }.keys.sorted()
        for worker in silent {
            actions += leave(worker, reason: "silent for more than \(policy.heartbeatTimeout)", now: now)
            actions.append(.disconnect(worker))
        }
        guard phase == .training else { return actions }
        let expired = expireLeases(now: now)
        actions += expired
        var readmitted = false
        for worker in members.keys.sorted() {
            guard let until = members[worker]?.excludedUntil, now >= until else { continue }
            members[worker]?.excludedUntil = nil
            // Level its clock as a newcomer's, so that a worker held back does not hold ssp back in turn.
            if let slowest = slowestClock(excluding: worker), let clock = members[worker]?.clock, clock < slowest {
                members[worker]?.clock = slowest
            }
            readmitted = true
        }
        if readmitted || !expired.isEmpty { actions += dispatchAll() }
        return actions
    }

    /// A worker pushed the result of a work unit.
    ///
    /// Only a push for a unit leased to `worker` can change anything; any other is answered with
    /// `applied=false` and its reason (`PushRefusal`), and counted.
    public mutating func push(from worker: WorkerID, _ input: PushInput, now: ContinuousClock.Instant) -> [Action] {
        self.now = now
        guard members[worker] != nil else { return [] }
        let staleness = version >= input.baseVersion ? version - input.baseVersion : 0
        guard phase == .training, let lease = leases.lease(on: input.unitID, heldBy: worker) else {
            return [refusePush(from: worker, input.unitID, staleness: staleness)]
        }
        if input.baseVersion > version {
            statistics.rejected[PushRefusal.futureVersion.rawValue, default: 0] += 1
            takeBack(input.unitID, from: worker)
            let ack = Acknowledgement(
                unitID: input.unitID, applied: false, serverVersion: version, staleness: 0,
                reason: "future_version: base_version \(input.baseVersion) is ahead of the server's version \(version); unit requeued",
                refusal: .futureVersion)
            var actions: [Action] = [.acknowledge(worker, ack)]
            actions += policy.mode == .sync ? leaveRound(worker) : afterPush(from: worker)
            return actions
        }
        if let refusal = validate(input) {
            statistics.rejected[refusal.reason.rawValue, default: 0] += 1
            takeBack(input.unitID, from: worker)
            var actions: [Action] = [.refuse(worker, refusal)]
            actions += policy.mode == .sync ? leaveRound(worker) : afterPush(from: worker)
            return actions
        }
        switch policy.mode {
        case .sync:
            return pushIntoRound(from: worker, input, lease: lease, staleness: staleness)
        case .async, .ssp:
            return applyNow(from: worker, input, lease: lease, staleness: staleness)
        }
    }

    // MARK: Leases

    /// Leases `unitID` to `worker` from now.
    private mutating func grant(_ unitID: UInt64, to worker: WorkerID, isBackup: Bool) {
        leases.grant(unitID, to: worker, since: now, isBackup: isBackup)
        members[worker]?.held.append(unitID)
    }

    /// Takes `worker`'s lease on `unitID` back, and requeues the unit when no one else holds it.
    /// - Returns: whether the unit was requeued.
    @discardableResult
    private mutating func takeBack(_ unitID: UInt64, from worker: WorkerID) -> Bool {
        let (lease, othersHold) = leases.revoke(unitID, from: worker)
        dropHeld(unitID, of: worker)
        return lease != nil && !othersHold && ledger.requeue(unitID)
    }

    /// Ends every lease on a unit whose update is being applied; returns the other holders, whose
    /// capacity is free again (and whose own push will be refused as a duplicate).
    private mutating func endLeases(of unitID: UInt64, appliedFor worker: WorkerID) -> [WorkerID] {
        var others: [WorkerID] = []
        for lease in leases.releaseAll(unitID) {
            dropHeld(unitID, of: lease.worker)
            guard lease.worker != worker else { continue }
            others.append(lease.worker)
            members[lease.worker]?.supersededUnits.append(unitID)
            if members[lease.worker]?.supersededUnits.count ?? 0 > 64 { members[lease.worker]?.supersededUnits.removeFirst() }
        }
        return others
    }

    private mutating func dropHeld(_ unitID: UInt64, of worker: WorkerID) {
        guard let position = members[worker]?.held.firstIndex(of: unitID) else { return }
        members[worker]?.held.remove(at: position)
    }

    /// Takes back every lease past its deadline: the unit is requeued (unless a backup copy is still
    /// out), the holder is excluded for a back-off and then leased one unit at a time until one of its
    /// pushes is applied. In sync mode the holder also drops out of the round, which closes without it.
    private mutating func expireLeases(now: ContinuousClock.Instant) -> [Action] {
        let timeout = leaseTimeout
        var actions: [Action] = []
        for (unitID, lease) in leases.expired(at: now, timeout: timeout) {
            let worker = lease.worker
            let requeued = takeBack(unitID, from: worker)
            statistics.leasesExpired += 1
            guard var member = members[worker] else { continue }
            // Leases that run out together are one lapse: only a lapse after the back-off counts again.
            if member.isExcluded(at: now) { continue }
            member.expiries += 1
            // One deadline, then two, four, ... up to 64: a stuck worker costs a unit's deadline per
            // back-off, while a worker that was only slow once is soon trusted again.
            let backoff = timeout * (1 << min(member.expiries - 1, 6))
            member.excludedUntil = now + backoff
            member.expiredUnits.append(unitID)
            if member.expiredUnits.count > 64 { member.expiredUnits.removeFirst() }
            members[worker] = member
            actions.append(.log("lease on unit \(unitID) held by worker \(worker) (\(member.name)) expired after "
                + "\(Self.describe(timeout))" + (requeued ? "; unit requeued" : "; its backup copy is still out")
                + "; \(worker) gets no unit for \(Self.describe(backoff)), then one at a time"))
            if policy.mode == .sync { actions += leaveRound(worker) }
        }
        return actions
    }

    /// Refuses a push from a worker that holds no live lease on its unit, saying why.
    private mutating func refusePush(from worker: WorkerID, _ unitID: UInt64, staleness: UInt64) -> Action {
        let refusal: PushRefusal
        let reason: String
        if unitID >= UInt64(ledger.totalUnits) {
            refusal = .unknownUnit
            reason = "unit \(unitID) is not part of this session (its units are 0 to \(ledger.totalUnits - 1))"
        } else if ledger.isDone(unitID) || audit.isApplied(unitID) {
            refusal = .duplicate
            reason = members[worker]?.supersededUnits.contains(unitID) == true
                ? "unit \(unitID) was already applied, from another worker's copy (a backup at the session's tail)"
                : "unit \(unitID) was already applied"
        } else if members[worker]?.expiredUnits.contains(unitID) == true {
            refusal = .leaseExpired
            reason = "this worker's lease on unit \(unitID) expired and the unit went back to the queue"
        } else {
            refusal = .notLeased
            reason = "unit \(unitID) is not leased to this worker"
        }
        statistics.rejected[refusal.rawValue, default: 0] += 1
        return .acknowledge(worker, Acknowledgement(
            unitID: unitID, applied: false, serverVersion: version, staleness: staleness,
            reason: "\(refusal.rawValue): \(reason)", refusal: refusal))
    }

    /// Counts an applied unit in the audit, which catches one applied twice.
    private mutating func audited(_ unitID: UInt64) {
        if !audit.recordApplied(unitID) { statistics.appliedTwice += 1 }
    }

    // MARK: Asynchronous and SSP

    private mutating func applyNow(from worker: WorkerID, _ input: PushInput, lease: LeaseBook.Lease, staleness: UInt64) -> [Action] {
        if policy.stalenessPolicy == .bound, staleness > UInt64(policy.maxStaleness) {
            statistics.rejected[PushRefusal.stale.rawValue, default: 0] += 1
            takeBack(input.unitID, from: worker)
            let ack = Acknowledgement(
                unitID: input.unitID, applied: false, serverVersion: version, staleness: staleness,
                reason: "stale: staleness \(staleness) is over the bound \(policy.maxStaleness); unit requeued", refusal: .stale)
            return [.acknowledge(worker, ack)] + afterPush(from: worker)
        }
        unitTimes.record(now - lease.since)
        let losers = endLeases(of: input.unitID, appliedFor: worker)
        guard case .accepted(let finishedEpoch) = ledger.complete(input.unitID) else {
            // A leased unit is outstanding in the ledger, so this is unreachable; refuse rather than apply.
            return [refusePush(from: worker, input.unitID, staleness: staleness)] + afterPush(from: worker)
        }
        audited(input.unitID)
        let scale = policy.stalenessPolicy.scale(staleness: staleness, workers: members.count)
        version += 1
        members[worker]?.clock += 1
        members[worker]?.expiries = 0
        statistics.recordApplied(samples: input.sampleCount, loss: input.loss, staleness: staleness)
        var actions: [Action] = [
            .apply(ModelUpdate(values: input.values, kind: input.kind, scale: scale, sampleCount: input.sampleCount,
                               arrivalsPerStep: max(1, members.count),
                               sources: [.init(unitID: input.unitID, worker: worker, sampleCount: input.sampleCount)]), version: version),
            .acknowledge(worker, Acknowledgement(
                unitID: input.unitID, applied: true, serverVersion: version, staleness: staleness, reason: "", refusal: nil)),
        ]
        actions += epochAndSessionEnd(finishedEpoch)
        actions += afterPush(from: worker)
        // A backup's other holder has room again (its own push of this unit will be a duplicate).
        if policy.mode == .async { for other in losers { actions += dispatch(to: other) } }
        return actions
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

    /// Tops up a worker's leases, as far as its allowance and (in ssp) the clock bound allow. When no
    /// unit is waiting (the session's tail), an idle worker gets a backup copy of the oldest lease.
    private mutating func dispatch(to worker: WorkerID) -> [Action] {
        guard phase == .training, policy.mode != .sync else { return [] }
        var actions: [Action] = []
        while mayTakeAnother(worker) {
            if let assignment = ledger.assignNext(to: worker) {
                grant(assignment.unitID, to: worker, isBackup: false)
                actions.append(.sendUnit(worker, assignment, minVersion: 0))
            } else if policy.backups, members[worker]?.expiries == 0, let unitID = leases.backupCandidate(for: worker) {
                grant(unitID, to: worker, isBackup: true)
                statistics.backupLeases += 1
                actions.append(.sendUnit(worker, ledger.assignment(for: unitID), minVersion: 0))
            } else {
                break
            }
        }
        return actions
    }

    /// Whether `worker` may be leased one more unit now: present, not excluded, under its allowance,
    /// and in ssp within the clock bound: a worker at clock c holding h units may take another while
    /// c + h - slowest <= K.
    private func mayTakeAnother(_ worker: WorkerID) -> Bool {
        // Reads fields in place rather than copying the member (and its arrays) on every test.
        guard let held = members[worker]?.held.count, let allowance = members[worker]?.allowance,
              held < allowance, members[worker]?.isExcluded(at: now) == false else { return false }
        guard policy.mode == .ssp, let clock = members[worker]?.clock else { return true }
        return clock + held - (slowestClock() ?? clock) <= policy.maxStaleness
    }

    /// The slowest clock among workers that are not excluded: an excluded worker holds no one back.
    private func slowestClock(excluding skipped: WorkerID? = nil) -> Int? {
        var slowest: Int?
        for (worker, member) in members where worker != skipped && !member.isExcluded(at: now) {
            slowest = min(slowest ?? member.clock, member.clock)
        }
        return slowest
    }

    // MARK: Synchronous rounds

    private mutating func startRound() -> [Action] {
        guard phase == .training, !members.isEmpty else { return [] }
        var next = Round(version: version, awaiting: [], sum: [])
        var actions: [Action] = []
        for worker in members.keys.sorted() where members[worker]?.isExcluded(at: now) == false {
            guard let assignment = ledger.assignNext(to: worker) else { break }
            grant(assignment.unitID, to: worker, isBackup: false)
            next.awaiting.insert(worker)
            actions.append(.sendWeights(worker))
            actions.append(.sendUnit(worker, assignment, minVersion: version))
        }
        if !next.awaiting.isEmpty { round = next }
        return actions
    }

    /// The worker no longer takes part in the round (it left, its lease expired, its push was
    /// refused): the round closes once everyone else has pushed.
    private mutating func leaveRound(_ worker: WorkerID) -> [Action] {
        guard var current = round, current.awaiting.remove(worker) != nil else { return [] }
        round = current
        return current.awaiting.isEmpty ? closeRound() : []
    }

    private mutating func pushIntoRound(from worker: WorkerID, _ input: PushInput, lease: LeaseBook.Lease, staleness: UInt64) -> [Action] {
        // Taken out of `round` (and put back below) so that `current.sum` is the array's only reference:
        // a copy left in `round` would make the in-place sum below copy the whole model on every push.
        guard round?.awaiting.contains(worker) == true, var current = round.take() else {
            // Sync leases are only granted with a round, so this is unreachable; refuse rather than apply.
            takeBack(input.unitID, from: worker)
            return [refusePush(from: worker, input.unitID, staleness: staleness)]
        }
        unitTimes.record(now - lease.since)
        // The unit stays outstanding in the ledger until the round closes; nobody holds a lease on it.
        _ = endLeases(of: input.unitID, appliedFor: worker)
        current.awaiting.remove(worker)
        let weight = Float(input.sampleCount)
        if input.staged {
            // The shards sum the round's slices; the round only names its pushes.
        } else if current.sum.isEmpty {
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
        guard var closing = round.take() else { return [] }
        var actions: [Action] = []
        if !closing.pushes.isEmpty {
            // Moved out, not copied: the average is computed in the sum's own storage.
            var average: [Float] = []
            swap(&average, &closing.sum)
            let inverse = 1 / Float(max(1, closing.samples))
            for i in average.indices { average[i] *= inverse }
            version += 1
            let sources = closing.pushes.map {
                ModelUpdate.Source(unitID: $0.unitID, worker: $0.worker, sampleCount: ledger.sampleCount(of: $0.unitID))
            }
            actions.append(.apply(ModelUpdate(values: average, kind: closing.kind, scale: 1, sampleCount: closing.samples,
                                              sources: sources), version: version))
            var finishedEpoch: Int?
            for push in closing.pushes {
                if case .accepted(let finished?) = ledger.complete(push.unitID) { finishedEpoch = finished }
                audited(push.unitID)
                statistics.recordApplied(samples: ledger.sampleCount(of: push.unitID), loss: nil, staleness: push.staleness)
                members[push.worker]?.clock += 1
                members[push.worker]?.expiries = 0
                if members[push.worker] != nil {
                    actions.append(.acknowledge(push.worker, Acknowledgement(
                        unitID: push.unitID, applied: true, serverVersion: version, staleness: push.staleness,
                        reason: "", refusal: nil)))
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
        if let decodingError = input.decodingError {
            return Refusal(reason: .badEncoding, message: decodingError, fatal: false)
        }
        if input.staged {
            // The shards checked the slices' lengths and values; only the loss is here.
            guard parametersAtShards else {
                return Refusal(reason: .wrongShard, message: "Push.staged is set, but this session's parameters are not sharded: "
                    + "send the values in the Push", fatal: false)
            }
            return input.loss.isFinite ? nil : Refusal(reason: .notFinite, message: "the push's loss is not finite", fatal: false)
        }
        if input.values.count != parameterCount {
            return Refusal(
                reason: .wrongDimensions,
                message: "update has \(input.values.count) values but the model has \(parameterCount) parameters",
                fatal: false)
        }
        if !input.values.allFinite || !input.loss.isFinite {
            return Refusal(reason: .notFinite, message: "update holds NaN or infinity", fatal: false)
        }
        if parametersAtShards {
            return Refusal(reason: .wrongShard, message: "this session's parameters are sharded: push the slices to the shards, "
                + "then Push.staged to the server", fatal: false)
        }
        return nil
    }

    /// A duration for the log, as "5.0 s".
    private static func describe(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return "\((seconds * 10).rounded() / 10) s"
    }
}
