import Testing
@testable import ParameterServer

/// Drives a coordinator the way the runtime does, with simulated workers that push what they hold.
struct CoordinatorHarness {
    var coordinator: SessionCoordinator
    var now = ContinuousClock().now
    /// Units each simulated worker has received and not pushed, oldest first, with their sample indices.
    var inbox: [WorkerID: [WorkUnitLedger.Assignment]] = [:]
    /// The weights version each worker last received.
    var weightsVersion: [WorkerID: UInt64] = [:]
    /// Sample indices behind every applied update, by epoch (async/ssp pushes, or sync round members).
    var trainedByEpoch: [Int: [UInt32]] = [:]
    var applied: [ModelUpdate] = []
    var acknowledgements: [WorkerID: [SessionCoordinator.Acknowledgement]] = [:]
    var refusals: [WorkerID: [SessionCoordinator.Refusal]] = [:]
    var disconnected: [WorkerID] = []
    var joined: [WorkerID] = []
    var left: [WorkerID] = []
    var finishedEpochs: [Int] = []
    var sessionFinished = 0
    var trainingStarted = 0
    /// Units each worker pushed and has not had acknowledged, to learn which samples an applied ack covers.
    var inFlight: [WorkerID: [UInt64: WorkUnitLedger.Assignment]] = [:]

    init(_ policy: SessionPolicy, samples: Int = 64, perUnit: Int = 8, epochs: Int = 2, parameters: Int = 4) {
        let ledger = WorkUnitLedger(sampleCount: samples, samplesPerUnit: perUnit, epochs: epochs,
                                    permutation: reversedOnOddEpochs(samples))
        coordinator = SessionCoordinator(policy: policy, ledger: ledger, parameterCount: parameters)
    }

    mutating func run(_ actions: [SessionCoordinator.Action]) {
        for action in actions {
            switch action {
            case .sendWeights(let worker): weightsVersion[worker] = coordinator.version
            case .sendUnit(let worker, let unit, _): inbox[worker, default: []].append(unit)
            case .apply(let update, _): applied.append(update)
            case .acknowledge(let worker, let ack):
                acknowledgements[worker, default: []].append(ack)
                if ack.applied, let unit = inFlight[worker]?[ack.unitID] {
                    trainedByEpoch[unit.epoch, default: []] += unit.indices
                }
                inFlight[worker]?[ack.unitID] = nil
            case .refuse(let worker, let refusal): refusals[worker, default: []].append(refusal)
            case .disconnect(let worker): disconnected.append(worker)
            case .startTraining: trainingStarted += 1
            case .finishEpoch(let epoch): finishedEpochs.append(epoch)
            case .finishSession: sessionFinished += 1
            case .memberJoined(let worker, _): joined.append(worker)
            case .memberLeft(let worker, _, _): left.append(worker)
            case .log: break
            }
        }
    }

    mutating func join(_ id: UInt64, capacity: Int = 2) {
        run(coordinator.join(WorkerID(id), name: "sim-\(id)", capacity: capacity, now: now))
    }

    mutating func leave(_ id: UInt64) {
        inbox[WorkerID(id)] = nil
        run(coordinator.leave(WorkerID(id), reason: "test", now: now))
    }

    /// The worker pushes its oldest unit, computed on the weights it last received.
    @discardableResult
    mutating func pushOldest(_ id: UInt64, values: [Float]? = nil, base: UInt64? = nil) -> Bool {
        let worker = WorkerID(id)
        // A real worker cannot compute before it has weights.
        guard var held = inbox[worker], !held.isEmpty, weightsVersion[worker] != nil else { return false }
        let unit = held.removeFirst()
        inbox[worker] = held
        inFlight[worker, default: [:]][unit.unitID] = unit
        let input = SessionCoordinator.PushInput(
            unitID: unit.unitID, baseVersion: base ?? weightsVersion[worker]!, kind: .gradient,
            loss: 1, sampleCount: unit.indices.count,
            values: values ?? Array(repeating: Float(id), count: coordinator.parameterCount))
        run(coordinator.push(from: worker, input, now: now))
        return true
    }

    /// Every sample of every finished epoch, trained once.
    func everySampleOncePerEpoch(samples: Int) -> Bool {
        finishedEpochs.allSatisfy { trainedByEpoch[$0]?.sorted() == (0..<UInt32(samples)).map { $0 } }
    }
}

@Suite struct SessionCoordinatorTests {
    @Test func waitsForEnoughWorkersBeforeTraining() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 2))
        h.join(1)
        #expect(h.coordinator.phase == .waitingForWorkers)
        #expect(h.inbox.isEmpty)
        h.join(2)
        #expect(h.coordinator.phase == .training)
        #expect(h.trainingStarted == 1)
        #expect(h.inbox[WorkerID(1)]?.count == 2 && h.inbox[WorkerID(2)]?.count == 2)
        #expect(h.weightsVersion[WorkerID(1)] == 0 && h.weightsVersion[WorkerID(2)] == 0)
    }

    @Test(arguments: [TrainingMode.async, .ssp, .sync])
    func sessionCompletesWithEverySampleOnce(mode: TrainingMode) {
        var h = CoordinatorHarness(SessionPolicy(mode: mode, maxStaleness: 1, workersToStart: 2))
        h.join(1); h.join(2)
        var turn: UInt64 = 0
        var steps = 0
        while h.sessionFinished == 0 && steps < 1000 {
            turn = turn % 2 + 1
            h.pushOldest(turn)
            steps += 1
        }
        #expect(h.sessionFinished == 1)
        #expect(h.coordinator.phase == .finished)
        #expect(h.finishedEpochs == [0, 1])
        #expect(h.everySampleOncePerEpoch(samples: 64))
        #expect(h.coordinator.statistics.samplesTrained == 128)
        if mode == .sync {
            #expect(h.applied.count == 8)  // 16 units, two per round
            #expect(h.coordinator.version == 8)
        } else {
            #expect(h.applied.count == 16)
            #expect(h.coordinator.version == 16)
        }
    }

    @Test(arguments: [TrainingMode.async, .ssp, .sync])
    func leaverUnitsAreRequeuedAndJoinerTrainsThem(mode: TrainingMode) {
        var h = CoordinatorHarness(SessionPolicy(mode: mode, maxStaleness: 2, workersToStart: 2))
        h.join(1); h.join(2)
        h.pushOldest(1)
        h.pushOldest(2)
        let versionBefore = h.coordinator.version
        let held = h.coordinator.unitsHeld(by: WorkerID(1))
        #expect(!held.isEmpty)
        h.leave(1)
        #expect(h.left == [WorkerID(1)])
        #expect(h.coordinator.ledger.requeuedCount >= held.count)
        h.join(3)
        #expect(h.joined == [WorkerID(1), WorkerID(2), WorkerID(3)])
        #expect(h.coordinator.version >= versionBefore)
        var steps = 0
        while h.sessionFinished == 0 && steps < 1000 {
            h.pushOldest(steps % 2 == 0 ? 2 : 3)
            steps += 1
        }
        #expect(h.sessionFinished == 1)
        #expect(h.everySampleOncePerEpoch(samples: 64))
    }

    @Test func joinerMidSessionGetsWeightsAndWorkAtOnce() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1))
        h.join(1)
        h.pushOldest(1)
        h.join(2)
        #expect(h.weightsVersion[WorkerID(2)] == h.coordinator.version)
        #expect(h.inbox[WorkerID(2)]?.count == 2)
    }

    @Test func boundPolicyDropsStaleUpdatesAndRequeuesTheirUnit() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, stalenessPolicy: .bound, maxStaleness: 1, workersToStart: 1))
        h.join(1)
        h.pushOldest(1, base: 0)  // staleness 0: applied, version 1
        h.pushOldest(1, base: 0)  // staleness 1: applied, version 2
        let requeuedBefore = h.coordinator.ledger.requeuedCount
        h.pushOldest(1, base: 0)  // staleness 2 > 1: dropped
        let last = h.acknowledgements[WorkerID(1)]!.last!
        #expect(!last.applied)
        #expect(last.staleness == 2)
        #expect(h.coordinator.version == 2)
        #expect(h.coordinator.ledger.requeuedCount == requeuedBefore + 1)
        #expect(h.coordinator.statistics.rejected["stale"] == 1)
    }

    @Test func inversePolicyDividesTheLearningRateByStaleness() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, stalenessPolicy: .inverse, workersToStart: 1))
        h.join(1, capacity: 2)
        h.pushOldest(1, base: 0)
        h.pushOldest(1, base: 0)
        h.pushOldest(1, base: 0)
        #expect(h.applied.map(\.scale) == [1, 1, 0.5])
        #expect(h.coordinator.statistics.staleness.maximum == 2)
    }

    @Test func scaledPolicyShrinksOnlyUpdatesStalerThanTheWorkersPresentPlusOne() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, stalenessPolicy: .scaled, workersToStart: 1))
        h.join(1, capacity: 8)
        // One worker: staleness up to 2 keeps the whole step, then (1 + 2) / (staleness + 1).
        for _ in 0..<6 { h.pushOldest(1, base: 0) }
        #expect(h.applied.map(\.scale) == [1, 1, 1, 0.75, 0.6, 0.5])
    }

    @Test(arguments: [(UInt64(0), 4, Float(1)), (UInt64(5), 4, Float(1)), (UInt64(6), 4, Float(6.0 / 7)), (UInt64(11), 4, Float(0.5)),
                      (UInt64(8), 2, Float(4.0 / 9)), (UInt64(3), 0, Float(0.75))])
    func scaledFactor(staleness: UInt64, workers: Int, expected: Float) {
        #expect(StalenessPolicy.scaled.scale(staleness: staleness, workers: workers) == expected)
        #expect(StalenessPolicy.none.scale(staleness: staleness, workers: workers) == 1)
    }

    @Test func sspHoldsTheFastWorkerWithinKClocksOfTheSlowest() {
        var h = CoordinatorHarness(SessionPolicy(mode: .ssp, maxStaleness: 1, workersToStart: 2), samples: 128)
        h.join(1); h.join(2)
        // Worker 1 runs ahead while worker 2 never pushes.
        var pushes = 0
        while h.pushOldest(1) { pushes += 1 }
        #expect(pushes == 2)  // clock 0 -> 2 would exceed slowest (0) + K (1) by one unit held
        #expect(h.inbox[WorkerID(1)]?.isEmpty == true)
        h.pushOldest(2)
        #expect(h.inbox[WorkerID(1)]?.isEmpty == false)  // the slowest moved; worker 1 may go on
    }

    @Test func sspLeaverNeverBlocksTheOthers() {
        var h = CoordinatorHarness(SessionPolicy(mode: .ssp, maxStaleness: 0, workersToStart: 2))
        h.join(1); h.join(2)
        h.pushOldest(1)
        #expect(h.inbox[WorkerID(1)]?.isEmpty == true)
        h.leave(2)
        #expect(h.inbox[WorkerID(1)]?.isEmpty == false)
    }

    @Test func syncRoundAveragesWeightedBySamples() {
        var h = CoordinatorHarness(SessionPolicy(mode: .sync, workersToStart: 2), samples: 12, perUnit: 4, epochs: 1, parameters: 2)
        h.join(1); h.join(2)
        h.pushOldest(1, values: [1, 2])
        #expect(h.applied.isEmpty)
        h.pushOldest(2, values: [3, 4])
        #expect(h.applied.count == 1)
        #expect(h.applied[0].values == [2, 3])
        // Round two: worker 2 gets the last 4 samples, worker 1 nothing more.
        #expect(h.coordinator.version == 1)
    }

    @Test func syncLeaverMidRoundDoesNotStallTheRound() {
        var h = CoordinatorHarness(SessionPolicy(mode: .sync, workersToStart: 3))
        h.join(1); h.join(2); h.join(3)
        h.pushOldest(1)
        h.pushOldest(2)
        #expect(h.applied.isEmpty)
        h.leave(3)
        #expect(h.applied.count == 1)
        #expect(h.inbox[WorkerID(1)]?.count == 1 && h.inbox[WorkerID(2)]?.count == 1)
    }

    @Test func syncJoinerWaitsForTheNextRound() {
        var h = CoordinatorHarness(SessionPolicy(mode: .sync, workersToStart: 1))
        h.join(1)
        h.join(2)
        #expect(h.inbox[WorkerID(2)] == nil)
        h.pushOldest(1)
        #expect(h.inbox[WorkerID(2)]?.count == 1)
    }

    @Test(arguments: [
        ([Float](repeating: 0, count: 3), "wrong_dimensions"),
        ([Float.nan, 0, 0, 0], "not_finite"),
        ([0, Float.infinity, 0, 0], "not_finite"),
    ])
    func badUpdatesAreRefusedAndTheirUnitRequeued(values: [Float], reason: String) {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1))
        h.join(1)
        h.pushOldest(1, values: values)
        #expect(h.refusals[WorkerID(1)]?.first?.reason.rawValue == reason)
        #expect(h.refusals[WorkerID(1)]?.first?.fatal == false)
        #expect(h.applied.isEmpty)
        #expect(h.coordinator.ledger.requeuedCount == 1)
        #expect(h.coordinator.statistics.rejected[reason] == 1)
        #expect(h.inbox[WorkerID(1)]?.count == 2)  // refilled: the refused unit is handed out again
    }

    @Test func silentWorkersAreDroppedAfterTheHeartbeatTimeout() {
        var policy = SessionPolicy(mode: .async, workersToStart: 1, heartbeatTimeout: .seconds(5))
        policy.leaseFloor = .seconds(60)  // only the heartbeat timeout is under test
        var h = CoordinatorHarness(policy)
        h.join(1); h.join(2)
        h.now += .seconds(4)
        h.coordinator.heard(from: WorkerID(2), now: h.now)
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.disconnected.isEmpty)
        h.now += .seconds(2)
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.disconnected == [WorkerID(1)])
        #expect(h.coordinator.activeWorkers == [WorkerID(2)])
        #expect(h.coordinator.ledger.requeuedCount == 2)
    }

    @Test func duplicatePushIsNotAppliedTwice() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1))
        h.join(1)
        let unit = h.inbox[WorkerID(1)]![0]
        h.pushOldest(1)
        let input = SessionCoordinator.PushInput(unitID: unit.unitID, baseVersion: 0, kind: .gradient, loss: 1,
                                                 sampleCount: unit.indices.count, values: [0, 0, 0, 0])
        h.run(h.coordinator.push(from: WorkerID(1), input, now: h.now))
        #expect(h.applied.count == 1)
        #expect(h.coordinator.statistics.duplicates == 1)
        #expect(h.acknowledgements[WorkerID(1)]?.last?.refusal == .duplicate)
        #expect(h.coordinator.statistics.appliedTwice == 0)
    }
}
