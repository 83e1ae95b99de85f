import Testing
@testable import ParameterServer

/// A permutation that differs per epoch, so tests notice units built from the wrong epoch.
func reversedOnOddEpochs(_ count: Int) -> @Sendable (Int) -> [UInt32] {
    { epoch in
        let order = (0..<UInt32(count)).map { $0 }
        return epoch % 2 == 0 ? order : order.reversed()
    }
}

@Suite struct WorkUnitLedgerTests {
    @Test func unitsCoverEveryEpochExactlyOnce() {
        var ledger = WorkUnitLedger(sampleCount: 10, samplesPerUnit: 4, epochs: 2, permutation: reversedOnOddEpochs(10))
        #expect(ledger.unitsPerEpoch == 3)
        var seen: [Int: [UInt32]] = [:]
        var finished: [Int] = []
        while let unit = ledger.assignNext(to: WorkerID(1)) {
            seen[unit.epoch, default: []] += unit.indices
            if case .accepted(let epoch?) = ledger.complete(unit.unitID) { finished.append(epoch) }
        }
        #expect(seen[0] == Array(0..<10))
        #expect(seen[1] == Array((0..<10).reversed()))
        #expect(finished == [0, 1])
        #expect(ledger.isFinished)
        #expect(ledger.completedCount == 6)
    }

    @Test func lastUnitOfAnEpochIsShort() {
        var ledger = WorkUnitLedger(sampleCount: 10, samplesPerUnit: 4, epochs: 1, permutation: reversedOnOddEpochs(10))
        let sizes = (0..<3).compactMap { _ in ledger.assignNext(to: WorkerID(1))?.indices.count }
        #expect(sizes == [4, 4, 2])
        #expect(ledger.sampleCount(of: 2) == 2)
        #expect(ledger.assignNext(to: WorkerID(1)) == nil)
    }

    @Test func requeuedUnitsComeBackFirstAndInOrder() {
        var ledger = WorkUnitLedger(sampleCount: 40, samplesPerUnit: 4, epochs: 1, permutation: reversedOnOddEpochs(40))
        let a = ledger.assignNext(to: WorkerID(1))!
        let b = ledger.assignNext(to: WorkerID(1))!
        _ = ledger.assignNext(to: WorkerID(2))!
        #expect(ledger.requeueAll(heldBy: WorkerID(1)) == [a.unitID, b.unitID])
        #expect(ledger.requeuedCount == 2)
        #expect(ledger.assignNext(to: WorkerID(3)) == a)
        #expect(ledger.assignNext(to: WorkerID(3)) == b)
    }

    @Test func secondCompletionIsADuplicate() {
        var ledger = WorkUnitLedger(sampleCount: 8, samplesPerUnit: 4, epochs: 1, permutation: reversedOnOddEpochs(8))
        let unit = ledger.assignNext(to: WorkerID(1))!
        #expect(ledger.complete(unit.unitID) == .accepted(finishedEpoch: nil))
        #expect(ledger.complete(unit.unitID) == .duplicate)
        #expect(ledger.duplicateCount == 1)
        #expect(ledger.complete(999) == .unknown)
    }

    @Test func completingARequeuedUnitRemovesItFromTheQueue() {
        var ledger = WorkUnitLedger(sampleCount: 8, samplesPerUnit: 4, epochs: 1, permutation: reversedOnOddEpochs(8))
        let first = ledger.assignNext(to: WorkerID(1))!
        ledger.requeue(first.unitID)
        #expect(ledger.pendingCount == 2)
        #expect(ledger.complete(first.unitID) == .accepted(finishedEpoch: nil))
        #expect(ledger.pendingCount == 1)
        #expect(ledger.assignNext(to: WorkerID(2))?.unitID != first.unitID)
    }

    @Test func nextEpochOpensOnlyWhenTheCurrentIsHandedOut() {
        var ledger = WorkUnitLedger(sampleCount: 8, samplesPerUnit: 4, epochs: 2, permutation: reversedOnOddEpochs(8))
        let units = (0..<3).compactMap { _ in ledger.assignNext(to: WorkerID(1)) }
        #expect(units.map(\.epoch) == [0, 0, 1])
    }

    @Test func unitsOfAFinishedEpochStayDoneAfterTheirStateIsDropped() {
        var ledger = WorkUnitLedger(sampleCount: 8, samplesPerUnit: 4, epochs: 2, permutation: reversedOnOddEpochs(8))
        let first = ledger.assignNext(to: WorkerID(1))!
        let second = ledger.assignNext(to: WorkerID(1))!
        _ = ledger.complete(first.unitID)
        #expect(ledger.complete(second.unitID) == .accepted(finishedEpoch: 0))
        #expect(ledger.isDone(first.unitID))
        #expect(!ledger.isOutstanding(first.unitID))
        #expect(ledger.complete(first.unitID) == .duplicate)
        #expect(ledger.complete(UInt64(ledger.totalUnits)) == .unknown)
    }
}
