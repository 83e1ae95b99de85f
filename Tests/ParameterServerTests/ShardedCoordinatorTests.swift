import Testing
@testable import ParameterServer

/// The coordinator with its parameters at shards: pushes are staged (no values here), every update
/// names the pushes it is made of, and pushes with values are refused.
@Suite struct ShardedCoordinatorTests {
    /// A harness whose pushes are `Push.staged` (no values).
    private func sharded(_ mode: TrainingMode) -> CoordinatorHarness {
        var h = CoordinatorHarness(SessionPolicy(mode: mode, maxStaleness: 2, workersToStart: 2))
        h.coordinator.parametersAtShards = true
        h.join(1); h.join(2)
        return h
    }

    /// Pushes worker `id`'s oldest unit as staged; returns its unit id.
    @discardableResult
    private func pushStaged(_ h: inout CoordinatorHarness, _ id: UInt64, loss: Float = 1) -> UInt64? {
        let worker = WorkerID(id)
        guard var held = h.inbox[worker], !held.isEmpty else { return nil }
        let unit = held.removeFirst()
        h.inbox[worker] = held
        h.inFlight[worker, default: [:]][unit.unitID] = unit
        var input = SessionCoordinator.PushInput(
            unitID: unit.unitID, baseVersion: h.coordinator.version, kind: .delta, loss: loss,
            sampleCount: unit.indices.count, values: [])
        input.staged = true
        h.run(h.coordinator.push(from: worker, input, now: h.now))
        return unit.unitID
    }

    @Test(arguments: [TrainingMode.async, .ssp, .sync])
    func everyUnitIsAppliedOnceAndNamedByExactlyOneUpdate(mode: TrainingMode) {
        var h = sharded(mode)
        var turn: UInt64 = 0
        for _ in 0..<1000 where h.sessionFinished == 0 {
            turn = turn % 2 + 1
            pushStaged(&h, turn)
        }
        #expect(h.sessionFinished == 1)
        #expect(h.everySampleOncePerEpoch(samples: 64))
        let named = h.applied.flatMap(\.sources)
        #expect(named.count == h.coordinator.ledger.totalUnits)
        #expect(Set(named.map(\.unitID)).count == named.count, "a unit named by two updates would be applied twice at the shards")
        #expect(h.applied.allSatisfy { $0.values.isEmpty })
        #expect(h.applied.allSatisfy { update in update.sampleCount == update.sources.reduce(0) { $0 + $1.sampleCount } })
        if mode == .sync { #expect(h.applied.allSatisfy { $0.sources.count == 2 }) }
        #expect(h.coordinator.statistics.appliedTwice == 0)
    }

    /// A sync worker that leaves after pushing: its push stays in the round and is named when the round
    /// closes, so its slices must stay at the shards until then (the runtime defers their discard).
    @Test func aLeaversPushStaysInTheSyncRoundUntilItCloses() {
        var h = sharded(.sync)
        let unit = pushStaged(&h, 1)!
        #expect(h.coordinator.roundHoldsPush(of: WorkerID(1), unit: unit))
        #expect(h.coordinator.roundHoldsPush(of: WorkerID(1)))
        #expect(!h.coordinator.roundHoldsPush(of: WorkerID(2)))
        h.leave(1)
        #expect(h.coordinator.roundHoldsPush(of: WorkerID(1)), "the leaver's push is still to be applied")
        pushStaged(&h, 2)
        #expect(h.applied.last?.sources.map(\.worker) == [WorkerID(1), WorkerID(2)])
        #expect(!h.coordinator.roundHoldsPush(of: WorkerID(1)))
    }

    @Test func aPushWithValuesIsRefusedAndItsUnitRequeued() {
        var h = sharded(.async)
        let requeuedBefore = h.coordinator.ledger.requeuedCount
        let pushed = h.pushOldest(1)
        #expect(pushed)
        #expect(h.applied.isEmpty)
        #expect(h.refusals[WorkerID(1)]?.map(\.reason) == [.wrongShard])
        #expect(h.coordinator.ledger.requeuedCount == requeuedBefore + 1)
    }

    @Test func aNonFinitePushWithValuesIsRefusedAsNotFinite() {
        var h = sharded(.async)
        let pushed = h.pushOldest(1, values: [1, .nan, 0, 0])
        #expect(pushed)
        #expect(h.refusals[WorkerID(1)]?.map(\.reason) == [.notFinite])
    }

    @Test func aStagedPushToAnUnshardedSessionIsRefused() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1))
        h.join(1)
        pushStaged(&h, 1)
        #expect(h.applied.isEmpty)
        #expect(h.refusals[WorkerID(1)]?.map(\.reason) == [.wrongShard])
    }

    @Test func aStagedPushWithANonFiniteLossIsRefused() {
        var h = sharded(.async)
        pushStaged(&h, 1, loss: .infinity)
        #expect(h.applied.isEmpty)
        #expect(h.refusals[WorkerID(1)]?.map(\.reason) == [.notFinite])
    }

    @Test func refusalsOfAStagedPushAreRecognisedForDiscarding() {
        var h = sharded(.async)
        let unit = pushStaged(&h, 1)!
        // The same unit again: a duplicate, whose slices must be dropped at the shards.
        var input = SessionCoordinator.PushInput(unitID: unit, baseVersion: 0, kind: .delta, loss: 1, sampleCount: 8, values: [])
        input.staged = true
        let actions = h.coordinator.push(from: WorkerID(1), input, now: h.now)
        #expect(ParameterServerRuntime.refuses(actions, unit: unit, of: WorkerID(1)))
        let next = h.inbox[WorkerID(1)]!.first!.unitID
        input.unitID = next
        let applied = h.coordinator.push(from: WorkerID(1), input, now: h.now)
        #expect(!ParameterServerRuntime.refuses(applied, unit: next, of: WorkerID(1)))
    }
}
