import Foundation
import Learning
import Testing
@testable import ParameterServer

/// A small but complete checkpoint: every field set to something that is not its default.
func sampleCheckpoint() -> SessionCheckpoint {
    let description = ModelDescription(.mlp(hidden: [3]))
    let count = description.parameterCount
    var statistics = SessionStatistics()
    statistics.recordApplied(samples: 32, loss: 0.5, staleness: 2)
    statistics.recordApplied(samples: 16, loss: 0.25, staleness: 0)
    statistics.rejected["stale"] = 4
    statistics.joins = 3
    statistics.leaves = 1
    statistics.rounds = 7
    statistics.leasesExpired = 5
    statistics.backupLeases = 6
    statistics.appliedTwice = 1  // impossible in a real session; here it shows the field survives
    return SessionCheckpoint(
        recipe: SessionRecipe(
            sessionID: "s-1", policy: SessionPolicy(mode: .ssp, stalenessPolicy: .inverse, maxStaleness: 3, workersToStart: 2,
                                                     unitsAhead: 4, heartbeatTimeout: .milliseconds(2500)),
            epochs: 3, batchSize: 8, localSteps: 2, localLearningRate: 0.04, trainSamples: 100, testSamples: 50, seed: 99,
            model: description.configuration, optimizer: .adam, learningRate: 0.001, momentum: 0.5, weightDecay: 0.01, schedule: .cosine,
            scheduleSteps: 21, localMomentum: 0.9, localSchedule: .step,
            pushEncoding: "topk:0.01", pullEncoding: "q8:64", pullDeltaEncoding: "sign:1024",
            localAdam: LocalAdamSettings(learningRate: 0.002, weightDecay: 0.03)),
        version: 12,
        model: ModelTrainingState(
            parameters: (0..<count).map { Float($0) / 7 },
            optimizer: OptimizerState(kind: "adam", buffers: ["m": .init(repeating: 0.5, count: count),
                                                             "v": .init(repeating: 0.25, count: count)], stepCount: 12),
            scheduleStep: 12),
        ledger: WorkUnitLedger.Progress(finishedEpochs: 1, openedEpoch: 2, doneUnits: [7, 9, 15], completedCount: 10,
                                        requeuedCount: 2, duplicateCount: 1),
        statistics: statistics,
        epochs: [.init(epoch: 1, seconds: 3.5, updates: 7, testAccuracy: 0.8, testLoss: 0.6, trainLoss: nil, wireBytes: 9_000_123)],
        throughput: [.init(seconds: 1, updates: 3, wireBytes: 4_000_000, samples: 96), .init(seconds: 2, updates: 6, wireBytes: 8_000_001, samples: 192)],
        membership: [.init(seconds: 0.5, worker: "a", joined: true, reason: ""),
                     .init(seconds: 2.5, worker: "a", joined: false, reason: "connection lost")],
        evaluations: [.init(seconds: 1.5, updates: 4, wireBytes: 5_000_000, testAccuracy: 0.7, testLoss: 0.9),
                      .init(seconds: 3, updates: 6, wireBytes: 8_500_000, testAccuracy: 0.75, testLoss: 0.8)],
        trainingSeconds: 4.25, sessionSeconds: 5.5, resumes: 1, writtenAt: Date(timeIntervalSince1970: 1_800_000_000),
        pulledWeights: WeightsChain.Point(version: 11, values: (0..<count).map { Float($0) / 9 }))
}

@Suite struct CheckpointFileTests {
    @Test func roundTripsEveryField() throws {
        let original = sampleCheckpoint()
        let loaded = try SessionCheckpoint(fileBytes: original.fileBytes())
        #expect(loaded.recipe == original.recipe)
        #expect(loaded.version == original.version)
        #expect(loaded.model == original.model)
        #expect(loaded.pulledWeights == original.pulledWeights)
        #expect(loaded.ledger == original.ledger)
        #expect(loaded.statistics.updatesApplied == 2)
        #expect(loaded.statistics.samplesTrained == 48)
        #expect(loaded.statistics.staleness == original.statistics.staleness)
        #expect(loaded.statistics.rejected == ["stale": 4])
        #expect((loaded.statistics.joins, loaded.statistics.leaves, loaded.statistics.rounds) == (3, 1, 7))
        #expect((loaded.statistics.leasesExpired, loaded.statistics.backupLeases, loaded.statistics.appliedTwice) == (5, 6, 1))
        #expect(loaded.epochs == original.epochs)
        #expect(loaded.throughput == original.throughput)
        #expect(loaded.membership == original.membership)
        #expect(loaded.evaluations == original.evaluations)
        #expect(loaded.epochs[0].wireBytes == 9_000_123)
        #expect(loaded.throughput.map(\.wireBytes) == [4_000_000, 8_000_001] && loaded.throughput.map(\.samples) == [96, 192])
        #expect((loaded.trainingSeconds, loaded.sessionSeconds, loaded.resumes) == (4.25, 5.5, 1))
        #expect(loaded.writtenAt == original.writtenAt)
    }

    @Test func historyFromBeforeTrafficWasCountedLoadsWithZeros() throws {
        // A checkpoint of an older ps-server has none of the traffic fields: proto3 writes no field
        // that holds its default, so zeroing them gives that older file's bytes.
        var message = sampleCheckpoint().wire
        var history = message.history!
        for index in history.epochs.indices { history.epochs[index].wireBytes = 0 }
        for index in history.throughput.indices { (history.throughput[index].wireBytes, history.throughput[index].samples) = (0, 0) }
        history.evaluations = []
        message.history = history
        let old = CheckpointFile.frame(message.serializedBytes())
        #expect(old.count < sampleCheckpoint().fileBytes().count)
        let loaded = try SessionCheckpoint(fileBytes: old)
        #expect(loaded.epochs.map(\.wireBytes) == [0] && loaded.epochs[0].testAccuracy == 0.8)
        #expect(loaded.throughput.map(\.wireBytes) == [0, 0] && loaded.throughput.map(\.samples) == [0, 0])
        #expect(loaded.throughput.map(\.updates) == [3, 6])
        #expect(loaded.evaluations.isEmpty)
    }

    @Test func aResumedProcessCountsItsBytesOnFromTheRestoredHistory() {
        var history = SessionHistory(title: "s", configuration: [])
        #expect(history.sessionWireBytes(100) == 100)
        var resumed = SessionHistory(title: "s", configuration: [])
        resumed.epochs = sampleCheckpoint().epochs
        resumed.throughput = sampleCheckpoint().throughput
        #expect(resumed.sessionWireBytes(0) == 9_000_123)
        resumed.throughput.append(.init(seconds: 9, updates: 9, wireBytes: resumed.sessionWireBytes(1000), samples: 300))
        #expect(resumed.sessionWireBytes(5000) == 9_005_123)  // fixed once, not raised by its own points
        history.epochs = sampleCheckpoint().epochs
        #expect(history.sessionWireBytes(200) == 200)  // a fresh session's offset stays zero
    }

    @Test func refusesEveryTruncation() throws {
        let bytes = sampleCheckpoint().fileBytes()
        // Every length short of the whole file, header included, is refused; none is half-loaded.
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) + [bytes.count - 1] {
            #expect(throws: CheckpointError.self, "length \(length)") {
                _ = try SessionCheckpoint(fileBytes: Array(bytes.prefix(length)))
            }
        }
        #expect(throws: CheckpointError.truncated(expectedBytes: bytes.count, actualBytes: bytes.count - 1)) {
            _ = try SessionCheckpoint(fileBytes: Array(bytes.dropLast()))
        }
        #expect(throws: CheckpointError.trailingBytes(expectedBytes: bytes.count, actualBytes: bytes.count + 1)) {
            _ = try SessionCheckpoint(fileBytes: bytes + [0])
        }
    }

    @Test func refusesAFlippedBitAnywhereInTheBody() throws {
        let bytes = sampleCheckpoint().fileBytes()
        for offset in stride(from: CheckpointFile.headerSize, to: bytes.count, by: 13) {
            var corrupt = bytes
            corrupt[offset] ^= 0x10
            #expect(throws: CheckpointError.self, "offset \(offset)") {
                _ = try SessionCheckpoint(fileBytes: corrupt)
            }
            do {
                _ = try SessionCheckpoint(fileBytes: corrupt)
            } catch {
                guard case .checksumMismatch = error else {
                    Issue.record("offset \(offset): \(error), expected a checksum mismatch")
                    continue
                }
            }
        }
    }

    @Test func refusesOtherFilesAndOtherVersions() throws {
        #expect(throws: CheckpointError.notACheckpoint) {
            _ = try SessionCheckpoint(fileBytes: Array("mode=sync workers=2\n".utf8))
        }
        var bytes = sampleCheckpoint().fileBytes()
        bytes[8] = 2
        #expect(throws: CheckpointError.unsupportedVersion(2, supported: 1)) {
            _ = try SessionCheckpoint(fileBytes: bytes)
        }
    }

    @Test func refusesContentsThatContradictThemselves() throws {
        // A body with a sound checksum whose optimiser buffer disagrees with its parameters. (Whether the
        // parameters fit the model is the model's to say when it restores them: only its family can build it.)
        var wrong = sampleCheckpoint()
        wrong.model.optimizer.buffers["m"] = [Float](repeating: 0, count: 5)
        #expect(throws: CheckpointError.invalidContents("optimiser buffer m has 5 values, expected \(wrong.model.parameters.count)")) {
            _ = try SessionCheckpoint(fileBytes: wrong.fileBytes())
        }
        var nan = sampleCheckpoint()
        nan.model.parameters[3] = .nan
        #expect(throws: CheckpointError.invalidContents("parameters that are not finite")) {
            _ = try SessionCheckpoint(fileBytes: nan.fileBytes())
        }
        var noModel = sampleCheckpoint().wire
        noModel.settings?.model = ":12"
        #expect(throws: CheckpointError.invalidContents(#"settings: no model named in ":12""#)) {
            _ = try SessionCheckpoint(fileBytes: CheckpointFile.frame(noModel.serializedBytes()))
        }
    }

    @Test func writesAtomicallyAndLeavesNoTemporaryFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("session.ckpt").path
        var checkpoint = sampleCheckpoint()
        try checkpoint.write(to: path)
        checkpoint.version = 13
        try checkpoint.write(to: path)
        #expect(try SessionCheckpoint.load(path: path).version == 13)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["session.ckpt"])
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func namesTheStepThatFailed() {
        #expect(throws: CheckpointError.io(step: "create /nonexistent-dir/.x.ckpt.tmp-\(getpid())", errno: ENOENT)) {
            try sampleCheckpoint().write(to: "/nonexistent-dir/x.ckpt")
        }
        #expect(throws: CheckpointError.io(step: "open /nonexistent-dir/x.ckpt", errno: ENOENT)) {
            _ = try SessionCheckpoint.load(path: "/nonexistent-dir/x.ckpt")
        }
    }
}

@Suite struct LedgerProgressTests {
    static func ledger(epochs: Int = 3) -> WorkUnitLedger {
        WorkUnitLedger(sampleCount: 40, samplesPerUnit: 4, epochs: epochs, permutation: reversedOnOddEpochs(40))
    }

    /// Drains `ledger`, returning the units handed out in order.
    static func drain(_ ledger: inout WorkUnitLedger) -> [UInt64] {
        var order: [UInt64] = []
        while let unit = ledger.assignNext(to: WorkerID(9)) {
            order.append(unit.unitID)
            _ = ledger.complete(unit.unitID)
        }
        return order
    }

    @Test func restoredLedgerTrainsEveryUnitNotDoneExactlyOnce() throws {
        var original = Self.ledger()
        // Epoch 0 done; in epoch 1, some done, some held by workers that the crash takes away, one
        // completed out of order, one requeued.
        for _ in 0..<10 { _ = original.complete(original.assignNext(to: WorkerID(1))!.unitID) }
        let held = (0..<6).map { _ in original.assignNext(to: WorkerID(2))!.unitID }
        _ = original.complete(held[0])
        _ = original.complete(held[3])
        original.requeue(held[1])
        _ = original.complete(held[0]) // a duplicate
        let progress = original.progress
        #expect(progress.finishedEpochs == 1)
        #expect(progress.doneUnits == [held[0], held[3]])
        #expect(progress.completedCount == 12)
        #expect(progress.duplicateCount == 1)
        #expect(progress.requeuedCount == 1)

        var restored = Self.ledger()
        try restored.restore(progress)
        #expect(restored.progress == progress)
        let trained = Self.drain(&restored)
        let notDone = (10..<30).map(UInt64.init).filter { $0 != held[0] && $0 != held[3] }
        #expect(trained == notDone)
        #expect(restored.isFinished)
        #expect(restored.completedCount == restored.totalUnits)
        // A restored unit is built from its own epoch's permutation.
        var again = Self.ledger()
        try again.restore(progress)
        #expect(again.assignNext(to: WorkerID(1))?.indices == Array((0..<40).reversed().map(UInt32.init)[4..<8]))
    }

    @Test func restoresAFreshAndAFinishedLedger() throws {
        var fresh = Self.ledger()
        try fresh.restore(Self.ledger().progress)
        #expect(Self.drain(&fresh).count == 30)
        var finished = Self.ledger()
        _ = Self.drain(&finished)
        var restored = Self.ledger()
        try restored.restore(finished.progress)
        #expect(restored.isFinished)
        #expect(restored.assignNext(to: WorkerID(1)) == nil)
    }

    @Test(arguments: [
        WorkUnitLedger.Progress(finishedEpochs: 4, openedEpoch: 2, doneUnits: [], completedCount: 40, requeuedCount: 0, duplicateCount: 0),
        WorkUnitLedger.Progress(finishedEpochs: 1, openedEpoch: 1, doneUnits: [3], completedCount: 11, requeuedCount: 0, duplicateCount: 0),
        WorkUnitLedger.Progress(finishedEpochs: 1, openedEpoch: 1, doneUnits: [12, 11], completedCount: 12, requeuedCount: 0, duplicateCount: 0),
        WorkUnitLedger.Progress(finishedEpochs: 1, openedEpoch: 1, doneUnits: [11], completedCount: 13, requeuedCount: 0, duplicateCount: 0),
        WorkUnitLedger.Progress(finishedEpochs: 0, openedEpoch: 1, doneUnits: Array(0..<10), completedCount: 10, requeuedCount: 0, duplicateCount: 0),
        WorkUnitLedger.Progress(finishedEpochs: 2, openedEpoch: 0, doneUnits: [], completedCount: 20, requeuedCount: 0, duplicateCount: 0),
    ])
    func refusesProgressThatDoesNotFit(_ progress: WorkUnitLedger.Progress) {
        var ledger = Self.ledger()
        let before = ledger.progress
        #expect(throws: WorkUnitLedger.ProgressError.self) { try ledger.restore(progress) }
        #expect(ledger.progress == before)
    }
}
