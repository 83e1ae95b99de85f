import CheckpointFormat
import FoundationEssentials
import Glibc
import Learning
import WireCodec

/// Everything a killed server needs to carry on its session: the recipe, the model and optimiser,
/// the work units done, the running figures and the report's history so far.
///
/// What it leaves out, on purpose: which worker held which unit (after a crash no worker holds
/// anything, so those units simply wait again) and a sync round's pushes not yet applied (their units
/// are not done, so they are trained again).
public struct SessionCheckpoint: Sendable {
    public var recipe: SessionRecipe
    /// The model version (applied optimiser steps, or sync rounds).
    public var version: UInt64
    public var model: ModelTrainingState
    public var ledger: WorkUnitLedger.Progress
    public var statistics: SessionStatistics
    public var epochs: [SessionHistory.EpochPoint]
    public var throughput: [SessionHistory.ThroughputPoint]
    public var membership: [SessionHistory.MembershipEvent]
    /// Evaluations between epoch ends (`--eval-every`, `--eval-interval`).
    public var evaluations: [SessionHistory.EvaluationPoint]
    /// Seconds of training before the checkpoint.
    public var trainingSeconds: Double
    /// Seconds since the session started, waiting included: the report's time axis.
    public var sessionSeconds: Double
    /// Times the session had been resumed when this was written.
    public var resumes: Int
    public var writtenAt: Date
    /// The weights workers that take deltas hold (`WeightsChain`'s last point), nil when none were sent.
    public var pulledWeights: WeightsChain.Point?
    /// A sharded session: the ranges the model was joined from and the shards that held them; empty
    /// when the server held the model.
    public var shards: [ShardRecord] = []

    /// One range of a sharded session's model and the shard that held it.
    public struct ShardRecord: Sendable, Equatable {
        public var index: Int
        public var offset: Int
        public var count: Int
        /// The shard's name and the address workers reached it at.
        public var shard: String
        public var address: String

        public init(index: Int, offset: Int, count: Int, shard: String, address: String) {
            self.index = index
            self.offset = offset
            self.count = count
            self.shard = shard
            self.address = address
        }
    }

    public init(
        recipe: SessionRecipe, version: UInt64, model: ModelTrainingState, ledger: WorkUnitLedger.Progress,
        statistics: SessionStatistics, epochs: [SessionHistory.EpochPoint] = [],
        throughput: [SessionHistory.ThroughputPoint] = [], membership: [SessionHistory.MembershipEvent] = [],
        evaluations: [SessionHistory.EvaluationPoint] = [], trainingSeconds: Double, sessionSeconds: Double, resumes: Int, writtenAt: Date = Date(),
        pulledWeights: WeightsChain.Point? = nil
    ) {
        self.recipe = recipe
        self.version = version
        self.model = model
        self.ledger = ledger
        self.statistics = statistics
        self.epochs = epochs
        self.throughput = throughput
        self.membership = membership
        self.evaluations = evaluations
        self.trainingSeconds = trainingSeconds
        self.sessionSeconds = sessionSeconds
        self.resumes = resumes
        self.writtenAt = writtenAt
        self.pulledWeights = pulledWeights
    }

    /// The checkpoint file's bytes: header and body.
    public func fileBytes() -> [UInt8] {
        CheckpointFile.frame(wire.serializedBytes())
    }

    /// Reads and checks a checkpoint file; nothing is used unless all of it is sound.
    /// - Throws: `CheckpointError` saying what is wrong with the file.
    public static func load(path: String) throws(CheckpointError) -> SessionCheckpoint {
        try SessionCheckpoint(fileBytes: CheckpointFile.read(path: path))
    }

    /// Decodes and checks a checkpoint file's bytes.
    /// - Throws: `CheckpointError` saying what is wrong.
    public init(fileBytes: [UInt8]) throws(CheckpointError) {
        let body = try CheckpointFile.body(of: fileBytes)
        let message: Checkpoint
        do {
            message = try Checkpoint(serializedBytes: body)
        } catch {
            throw .invalidContents("the body does not decode: \(error)")
        }
        try self.init(wire: message)
    }

    /// Writes the checkpoint to `path` atomically (see `CheckpointFile.writeAtomically`).
    public func write(to path: String) throws(CheckpointError) {
        try CheckpointFile.writeAtomically(fileBytes(), to: path)
    }

    // MARK: Wire form

    var wire: Checkpoint {
        var message = Checkpoint()
        message.settings = recipe.wire
        message.version = version
        message.model = model.wire
        var ledgerState = LedgerState()
        ledgerState.finishedEpochs = UInt32(ledger.finishedEpochs)
        ledgerState.openedEpoch = Int32(ledger.openedEpoch)
        ledgerState.doneUnits = ledger.doneUnits
        ledgerState.completed = UInt64(ledger.completedCount)
        ledgerState.requeued = UInt64(ledger.requeuedCount)
        ledgerState.duplicates = UInt64(ledger.duplicateCount)
        message.ledger = ledgerState
        var figures = Statistics()
        figures.updatesApplied = statistics.updatesApplied
        figures.rejected = statistics.rejected
        figures.samplesTrained = statistics.samplesTrained
        figures.stalenessCount = statistics.staleness.count
        figures.stalenessSum = statistics.staleness.sum
        figures.stalenessMaximum = statistics.staleness.maximum
        figures.stalenessBuckets = statistics.staleness.buckets
        figures.rounds = statistics.rounds
        figures.joins = statistics.joins
        figures.leaves = statistics.leaves
        figures.appliedTwice = statistics.appliedTwice
        figures.leasesExpired = statistics.leasesExpired
        figures.backupLeases = statistics.backupLeases
        message.statistics = figures
        var history = History()
        history.epochs = epochs.map { point in
            var wire = CheckpointFormat.EpochPoint()
            wire.epoch = UInt32(point.epoch)
            wire.seconds = point.seconds
            wire.updates = point.updates
            wire.testAccuracy = point.testAccuracy
            wire.testLoss = point.testLoss
            wire.trainLoss = point.trainLoss
            wire.wireBytes = point.wireBytes
            return wire
        }
        history.throughput = throughput.map { point in
            var wire = CheckpointFormat.ThroughputPoint()
            wire.seconds = point.seconds
            wire.updates = point.updates
            wire.wireBytes = point.wireBytes
            wire.samples = point.samples
            return wire
        }
        history.membership = membership.map { event in
            var wire = CheckpointFormat.MembershipEvent()
            wire.seconds = event.seconds
            wire.worker = event.worker
            wire.joined = event.joined
            wire.reason = event.reason
            return wire
        }
        history.evaluations = evaluations.map { point in
            CheckpointFormat.EvaluationPoint(
                seconds: point.seconds, updates: point.updates, wireBytes: point.wireBytes,
                testAccuracy: point.testAccuracy, testLoss: point.testLoss)
        }
        message.history = history
        message.trainingSeconds = trainingSeconds
        message.sessionSeconds = sessionSeconds
        message.resumes = UInt32(resumes)
        message.writtenUnixMs = UInt64(max(0, writtenAt.timeIntervalSince1970 * 1000))
        message.pulledWeights = pulledWeights.map { PulledWeights(version: $0.version, values: $0.values) }
        message.shards = shards.map {
            ShardPart(index: UInt32($0.index), offset: UInt64($0.offset), count: UInt64($0.count), shard: $0.shard, address: $0.address)
        }
        return message
    }

    init(wire message: Checkpoint) throws(CheckpointError) {
        guard let settings = message.settings, let state = message.model, let ledgerState = message.ledger,
              let figures = message.statistics else {
            throw .invalidContents("settings, model, ledger and statistics must all be present")
        }
        recipe = try SessionRecipe(wire: settings)
        // Whether the count fits the model is for the model to say when it restores the state (only the
        // model's family can build it); here every buffer must at least agree with the parameters.
        let expected = state.parameters.count
        version = message.version
        do {
            model = try ModelTrainingState(wire: state)
        } catch {
            throw .invalidContents(error.description)
        }
        ledger = WorkUnitLedger.Progress(
            finishedEpochs: Int(ledgerState.finishedEpochs), openedEpoch: Int(ledgerState.openedEpoch),
            doneUnits: ledgerState.doneUnits, completedCount: Int(clamping: ledgerState.completed),
            requeuedCount: Int(clamping: ledgerState.requeued), duplicateCount: Int(clamping: ledgerState.duplicates))
        guard let staleness = StalenessStatistics(
            count: figures.stalenessCount, sum: figures.stalenessSum, maximum: figures.stalenessMaximum,
            buckets: figures.stalenessBuckets) else {
            throw .invalidContents("the staleness histogram does not add up")
        }
        var statistics = SessionStatistics()
        statistics.updatesApplied = figures.updatesApplied
        statistics.rejected = figures.rejected
        statistics.samplesTrained = figures.samplesTrained
        statistics.staleness = staleness
        statistics.rounds = figures.rounds
        statistics.joins = figures.joins
        statistics.leaves = figures.leaves
        statistics.appliedTwice = figures.appliedTwice
        statistics.leasesExpired = figures.leasesExpired
        statistics.backupLeases = figures.backupLeases
        self.statistics = statistics
        let history = message.history ?? History()
        epochs = history.epochs.map {
            SessionHistory.EpochPoint(epoch: Int($0.epoch), seconds: $0.seconds, updates: $0.updates,
                                      testAccuracy: $0.testAccuracy, testLoss: $0.testLoss, trainLoss: $0.trainLoss,
                                      wireBytes: $0.wireBytes)
        }
        throughput = history.throughput.map {
            SessionHistory.ThroughputPoint(seconds: $0.seconds, updates: $0.updates, wireBytes: $0.wireBytes, samples: $0.samples)
        }
        membership = history.membership.map {
            SessionHistory.MembershipEvent(seconds: $0.seconds, worker: $0.worker, joined: $0.joined, reason: $0.reason)
        }
        evaluations = history.evaluations.map {
            SessionHistory.EvaluationPoint(seconds: $0.seconds, updates: $0.updates, wireBytes: $0.wireBytes,
                                           testAccuracy: $0.testAccuracy, testLoss: $0.testLoss)
        }
        guard message.trainingSeconds >= 0, message.trainingSeconds.isFinite,
              message.sessionSeconds >= 0, message.sessionSeconds.isFinite else {
            throw .invalidContents("training time \(message.trainingSeconds) s, session time \(message.sessionSeconds) s")
        }
        trainingSeconds = message.trainingSeconds
        sessionSeconds = message.sessionSeconds
        resumes = Int(message.resumes)
        writtenAt = Date(timeIntervalSince1970: Double(message.writtenUnixMs) / 1000)
        if let pulled = message.pulledWeights {
            guard pulled.values.count == expected, pulled.values.allSatisfy(\.isFinite), pulled.version <= message.version else {
                throw .invalidContents("pulled weights: \(pulled.values.count) values of version \(pulled.version), "
                    + "expected \(expected) finite ones of version \(message.version) at most")
            }
            pulledWeights = WeightsChain.Point(version: pulled.version, values: pulled.values)
        }
        var next: UInt64 = 0
        for part in message.shards {
            guard part.offset == next, part.count > 0, part.offset + part.count <= UInt64(expected) else {
                throw .invalidContents("shard part \(part.index) holds parameters \(part.offset)..<\(part.offset + part.count); "
                    + "the parts must follow one another within the model's \(expected)")
            }
            next += part.count
            shards.append(ShardRecord(index: Int(part.index), offset: Int(part.offset), count: Int(part.count),
                                      shard: part.shard, address: part.address))
        }
        guard message.shards.isEmpty || next == UInt64(expected) else {
            throw .invalidContents("the shard parts cover \(next) of the model's \(expected) parameters")
        }
    }
}
