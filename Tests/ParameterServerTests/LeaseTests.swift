import Testing
@testable import ParameterServer
import Learning

/// A push from `worker` for `unitID` that it may or may not hold.
private func pushFor(_ h: inout CoordinatorHarness, from worker: UInt64, unit unitID: UInt64, samples: Int = 8) {
    let input = SessionCoordinator.PushInput(
        unitID: unitID, baseVersion: h.coordinator.version, kind: .gradient, loss: 1, sampleCount: samples,
        values: Array(repeating: 99, count: h.coordinator.parameterCount))
    h.run(h.coordinator.push(from: WorkerID(worker), input, now: h.now))
}

/// Runs the session to its end, the given workers pushing their oldest unit in turn (time standing still).
private func finish(_ h: inout CoordinatorHarness, workers: [UInt64], limit: Int = 10_000) {
    var steps = 0
    while h.sessionFinished == 0 && steps < limit {
        h.pushOldest(workers[steps % workers.count])
        steps += 1
    }
}

@Suite struct LeaseTests {
    @Test func aPushForAnotherWorkersUnitChangesNothingAndTheHolderStillDelivers() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 2))
        h.join(1); h.join(2)
        let theirs = h.inbox[WorkerID(2)]![0].unitID
        pushFor(&h, from: 1, unit: theirs)
        #expect(h.applied.isEmpty)
        #expect(h.acknowledgements[WorkerID(1)]?.last?.refusal == .notLeased)
        #expect(h.coordinator.statistics.rejected["not_leased"] == 1)
        #expect(h.coordinator.unitsHeld(by: WorkerID(2)).contains(theirs))
        h.pushOldest(2)  // the holder's own push is applied, not refused as "already applied"
        #expect(h.acknowledgements[WorkerID(2)]?.last == .init(
            unitID: theirs, applied: true, serverVersion: 1, staleness: 0, reason: "", refusal: nil))
    }

    @Test func pushesForQueuedFutureFinishedAndUnknownUnitsAreRefusedEachWithItsReason() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1), samples: 64, perUnit: 8, epochs: 2)
        h.join(1)
        h.pushOldest(1)                        // unit 0 applied
        let queued = UInt64(5)                  // epoch 0, not handed out yet
        let future = UInt64(12)                 // epoch 1, not opened
        let unknown = UInt64(h.coordinator.ledger.totalUnits)
        for unit in [queued, future, 0, unknown] { pushFor(&h, from: 1, unit: unit) }
        let refusals = h.acknowledgements[WorkerID(1)]!.suffix(4).map(\.refusal)
        #expect(refusals == [.notLeased, .notLeased, .duplicate, .unknownUnit])
        #expect(h.applied.count == 1)
        finish(&h, workers: [1])
        #expect(h.everySampleOncePerEpoch(samples: 64))  // the queued unit was still handed out and trained
        #expect(h.coordinator.statistics.appliedTwice == 0)
    }

    @Test(arguments: [TrainingMode.async, .ssp, .sync])
    func aThousandHostilePushesLeaveTheAccountingOfACleanSession(mode: TrainingMode) {
        var clean = CoordinatorHarness(SessionPolicy(mode: mode, maxStaleness: 2, workersToStart: 2), samples: 256)
        clean.join(1); clean.join(2)
        finish(&clean, workers: [1, 2])

        var h = CoordinatorHarness(SessionPolicy(mode: mode, maxStaleness: 2, workersToStart: 3), samples: 256)
        h.join(1); h.join(2); h.join(3)
        let total = UInt64(h.coordinator.ledger.totalUnits)
        var generator = SplitMix64(seed: 11)
        var hostile = 0
        var steps = 0
        while h.sessionFinished == 0 && steps < 10_000 {
            h.pushOldest(steps % 2 == 0 ? 1 : 2)
            // Worker 3 never pushes its own units, only others': foreign, queued, done or future ones.
            for _ in 0..<16 where hostile < 1_000 {
                var unit = generator.next() % (total + 8)
                if h.coordinator.unitsHeld(by: WorkerID(3)).contains(unit) { unit = total + 1 }
                pushFor(&h, from: 3, unit: unit)
                hostile += 1
            }
            // Worker 3's own units expire and go to the others; time moves only for that.
            if h.inbox[WorkerID(1)]?.isEmpty != false && h.inbox[WorkerID(2)]?.isEmpty != false {
                h.now += h.coordinator.leaseTimeout
                h.run(h.coordinator.tick(now: h.now))
                h.coordinator.heard(from: WorkerID(3), now: h.now)
                h.coordinator.heard(from: WorkerID(1), now: h.now)
                h.coordinator.heard(from: WorkerID(2), now: h.now)
            }
            steps += 1
        }
        #expect(hostile == 1_000)
        #expect(h.sessionFinished == 1)
        #expect(h.everySampleOncePerEpoch(samples: 256))
        #expect(h.coordinator.statistics.appliedTwice == 0)
        #expect(h.coordinator.statistics.samplesTrained == clean.coordinator.statistics.samplesTrained)
        #expect(h.coordinator.ledger.completedCount == h.coordinator.ledger.totalUnits)
        let refused = h.acknowledgements[WorkerID(3), default: []].filter { !$0.applied }.count
        #expect(refused == 1_000)
        #expect(h.coordinator.statistics.rejectedTotal == 1_000)
        #expect(h.applied.allSatisfy { !$0.values.contains(99) })  // none of worker 3's values reached the model
    }

    @Test func aWorkerThatNeverPushesLosesItsUnitsAtTheFloorAndTheOthersTrainThem() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 2))
        h.join(1); h.join(2)
        let stuck = h.coordinator.unitsHeld(by: WorkerID(2))
        #expect(stuck.count == 2)
        #expect(h.coordinator.nextDeadline == h.now + .seconds(5))
        h.now += .seconds(1)
        h.pushOldest(1); h.pushOldest(1)  // worker 1 works; its new leases start now
        h.now += .milliseconds(3_900)
        h.coordinator.heard(from: WorkerID(2), now: h.now)
        h.coordinator.heard(from: WorkerID(1), now: h.now)
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.coordinator.statistics.leasesExpired == 0)
        h.now += .milliseconds(100)
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.coordinator.statistics.leasesExpired == 2)
        #expect(h.coordinator.unitsHeld(by: WorkerID(2)).isEmpty)
        #expect(h.coordinator.ledger.requeuedCount == 2)
        // Worker 1 pushes what it holds and is then given the expired units.
        h.pushOldest(1); h.pushOldest(1)
        #expect(Set(h.coordinator.unitsHeld(by: WorkerID(1))) == Set(stuck))
        // A late push of an expired unit is refused as such and changes nothing.
        let versionBefore = h.coordinator.version
        h.pushOldest(2)
        #expect(h.acknowledgements[WorkerID(2)]?.last?.refusal == .leaseExpired)
        #expect(h.coordinator.version == versionBefore)
    }

    @Test func anExpiredWorkerIsExcludedForABackOffThenLeasedOneUnitAtATime() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1), samples: 512)
        h.join(1, capacity: 2)
        h.now += .seconds(5)
        h.coordinator.heard(from: WorkerID(1), now: h.now)
        h.run(h.coordinator.tick(now: h.now))
        h.inbox[WorkerID(1)] = []
        #expect(h.coordinator.unitsHeld(by: WorkerID(1)).isEmpty)
        #expect(h.coordinator.nextDeadline == h.now + .seconds(5))  // the exclusion's end
        h.now += .seconds(5)
        h.coordinator.heard(from: WorkerID(1), now: h.now)
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.coordinator.unitsHeld(by: WorkerID(1)).count == 1)  // one at a time, not 2
        h.pushOldest(1)  // applied: trusted again
        #expect(h.coordinator.unitsHeld(by: WorkerID(1)).count == 2)
    }

    @Test func theDeadlineFollowsThe99thPercentileOfUnitTimes() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1), samples: 4096)
        h.join(1, capacity: 1)
        for _ in 0..<UnitTimeEstimate.minimumObservations {
            h.now += .seconds(3)
            h.coordinator.heard(from: WorkerID(1), now: h.now)
            h.pushOldest(1)
        }
        #expect(h.coordinator.statistics.leasesExpired == 0)
        #expect(h.coordinator.leaseTimeout == .seconds(9))  // 3 x p99 of 3 s, above the 5 s floor
        h.now += .seconds(8)
        h.coordinator.heard(from: WorkerID(1), now: h.now)
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.coordinator.statistics.leasesExpired == 0)
        h.now += .seconds(1)
        h.coordinator.heard(from: WorkerID(1), now: h.now)
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.coordinator.statistics.leasesExpired == 1)
    }

    @Test func anIdleWorkerAtTheTailGetsABackupAndTheFirstPushWins() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 2), samples: 32, perUnit: 8, epochs: 1)
        h.join(1); h.join(2)
        // 4 units: 2 each. Worker 1 finishes its two; nothing is waiting, so it backs up worker 2's oldest.
        let slow = h.coordinator.unitsHeld(by: WorkerID(2))
        h.pushOldest(1); h.pushOldest(1)
        #expect(h.coordinator.statistics.backupLeases == 2)
        #expect(h.inbox[WorkerID(1)]?.map(\.unitID) == slow)
        h.pushOldest(1)  // the backup of worker 2's first unit is applied first
        h.pushOldest(2)  // worker 2's own copy is refused as a duplicate
        #expect(h.acknowledgements[WorkerID(2)]?.last?.refusal == .duplicate)
        h.pushOldest(2)
        h.pushOldest(1)  // now the backup loses
        #expect(h.sessionFinished == 1)
        #expect(h.everySampleOncePerEpoch(samples: 32))
        #expect(h.coordinator.statistics.appliedTwice == 0)
        #expect(h.coordinator.statistics.duplicates == 2)
        #expect(h.applied.count == 4)
    }

    @Test func syncRoundClosesWithoutAWorkerWhoseLeaseExpired() {
        var h = CoordinatorHarness(SessionPolicy(mode: .sync, workersToStart: 3))
        h.join(1); h.join(2); h.join(3)
        h.pushOldest(1); h.pushOldest(2)
        #expect(h.applied.isEmpty)
        h.now += .seconds(5)
        for id in 1...3 { h.coordinator.heard(from: WorkerID(UInt64(id)), now: h.now) }
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.applied.count == 1)
        #expect(h.coordinator.ledger.requeuedCount == 1)
        // The next round leaves the excluded worker out, so it cannot hold that one up either.
        h.inbox[WorkerID(3)] = []
        #expect(h.inbox[WorkerID(1)]?.count == 1 && h.inbox[WorkerID(2)]?.count == 1)
        h.pushOldest(1); h.pushOldest(2)
        #expect(h.applied.count == 2)
    }

    @Test func anExcludedWorkerDoesNotHoldSSPBack() {
        var h = CoordinatorHarness(SessionPolicy(mode: .ssp, maxStaleness: 1, workersToStart: 2), samples: 256)
        h.join(1); h.join(2)
        while h.pushOldest(1) {}
        #expect(h.inbox[WorkerID(1)]?.isEmpty == true)  // blocked by worker 2's clock
        h.now += .seconds(5)
        for id in 1...2 { h.coordinator.heard(from: WorkerID(UInt64(id)), now: h.now) }
        h.run(h.coordinator.tick(now: h.now))
        #expect(h.inbox[WorkerID(1)]?.isEmpty == false)  // worker 2 excluded: worker 1 goes on
    }
}

@Suite struct FutureVersionTests {
    @Test(arguments: [TrainingMode.async, .sync])
    func aPushComputedOnAVersionTheServerNeverHadIsRefusedAndItsUnitRequeued(mode: TrainingMode) {
        var h = CoordinatorHarness(SessionPolicy(mode: mode, workersToStart: 1))
        h.join(1)
        let unit = h.inbox[WorkerID(1)]![0]
        h.pushOldest(1, base: 7)
        #expect(h.applied.isEmpty)
        #expect(h.acknowledgements[WorkerID(1)]?.last?.refusal == .futureVersion)
        #expect(h.coordinator.statistics.rejected["future_version"] == 1)
        #expect(h.coordinator.ledger.requeuedCount == 1)
        #expect(h.inbox[WorkerID(1)]?.contains(unit) == true)  // handed out again
    }
}

@Suite struct DeltaArrivalTests {
    @Test func asyncDeltasSayHowManyWorkersArePresent() {
        var h = CoordinatorHarness(SessionPolicy(mode: .async, workersToStart: 1))
        h.join(1); h.join(2); h.join(3)
        h.pushOldest(1)
        #expect(h.applied.last?.arrivalsPerStep == 3)
        h.leave(3)
        h.pushOldest(2)
        #expect(h.applied.last?.arrivalsPerStep == 2)
    }
}

@Suite struct UnitTimeEstimateTests {
    @Test func usesTheFloorUntilEnoughUnitsAreSeenThenThreeTimesTheP99() {
        var estimate = UnitTimeEstimate()
        for _ in 0..<(UnitTimeEstimate.minimumObservations - 1) { estimate.record(.seconds(4)) }
        #expect(estimate.leaseTimeout(floor: .seconds(5), multiple: 3) == .seconds(5))
        estimate.record(.seconds(4))
        #expect(estimate.leaseTimeout(floor: .seconds(5), multiple: 3) == .seconds(12))
    }

    @Test func theP99IgnoresTheSlowestOnePercent() {
        var estimate = UnitTimeEstimate()
        for index in 0..<1_000 { estimate.record(.milliseconds(index < 990 ? 100 : 60_000)) }
        #expect(estimate.p99 == 0.1)
        for _ in 0..<1_000 { estimate.record(.milliseconds(200)) }  // the window moves on
        #expect(estimate.p99 == 0.2)
        #expect(estimate.count == UnitTimeEstimate.window)
    }
}

@Suite struct AppliedUnitAuditTests {
    @Test func reportsASecondApplicationAndUnitsOutsideTheSession() {
        var audit = AppliedUnitAudit(unitsPerEpoch: 65, epochs: 2)
        let first = audit.recordApplied(129)
        let second = audit.recordApplied(129)
        let outside = audit.recordApplied(130)
        #expect(first && !second && !outside)
        #expect(audit.isApplied(129) && !audit.isApplied(128))
    }

    @Test func keepsBitsOnlyForOpenEpochsAndStillCatchesARepeatInAFinishedOne() {
        var audit = AppliedUnitAudit(unitsPerEpoch: 3, epochs: 1_000_000)
        for unit in UInt64(0)..<3 { _ = audit.recordApplied(unit) }
        _ = audit.recordApplied(7)  // epoch 2 opens before epoch 1 completes
        #expect(audit.openEpochCount == 1)
        for unit in UInt64(3)..<6 { _ = audit.recordApplied(unit) }
        #expect(audit.openEpochCount == 1)  // epoch 1 complete, epoch 2 still open
        let again = audit.recordApplied(1)
        #expect(!again && audit.isApplied(4) && audit.isApplied(7) && !audit.isApplied(6))
    }

    @Test func aResumedLedgersDoneUnitsCountAsApplied() throws {
        var ledger = WorkUnitLedger(sampleCount: 16, samplesPerUnit: 4, epochs: 3) { _ in (0..<16).map(UInt32.init) }
        try ledger.restore(.init(finishedEpochs: 1, openedEpoch: 1, doneUnits: [5], completedCount: 5,
                                 requeuedCount: 0, duplicateCount: 0))
        let audit = AppliedUnitAudit(ledger)
        #expect((0..<4).allSatisfy { audit.isApplied($0) })
        #expect(audit.isApplied(5) && !audit.isApplied(4) && !audit.isApplied(6))
    }
}
