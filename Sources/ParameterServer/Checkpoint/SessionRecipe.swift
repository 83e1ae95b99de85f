import CheckpointFormat
import Learning

/// The settings that shape a session: what it trains, on what, with which rules and optimiser.
///
/// A checkpoint keeps them so that `--resume` carries on the same session whatever the command line
/// says; operational settings (address, limits, report, metrics) stay the command line's.
public struct SessionRecipe: Sendable, Equatable {
    public var sessionID: String
    public var policy: SessionPolicy
    public var epochs: Int
    public var batchSize: Int
    public var localSteps: Int
    public var localLearningRate: Float
    /// Nesterov momentum of the workers' local steps; 0 is plain SGD.
    public var localMomentum: Float
    /// The schedule the local learning rate follows over the session's work units.
    public var localSchedule: ScheduleKind
    /// The AdamW of the local steps of workers that offer it; nil: every worker takes Nesterov steps.
    public var localAdam: LocalAdamSettings?
    /// How pushes and weights travel, as an operator writes them (`sign`, `q8`, `topk:0.01`).
    public var pushEncoding: String
    public var pullEncoding: String
    /// The encoding of deltas of weights (`sign`, `q8`), or `none`.
    public var pullDeltaEncoding: String
    public var trainSamples: Int
    public var testSamples: Int
    /// Seeds the initial weights and every epoch's permutation (a pure function of seed and epoch),
    /// so it is the session's whole random state.
    public var seed: UInt64
    /// The model's family and options; any family the build registers resumes from it.
    public var model: ModelConfiguration
    public var optimizer: OptimizerKind
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public var schedule: ScheduleKind
    /// Optimiser steps the schedule spans.
    public var scheduleSteps: Int

    public init(
        sessionID: String, policy: SessionPolicy, epochs: Int, batchSize: Int, localSteps: Int,
        localLearningRate: Float, trainSamples: Int, testSamples: Int, seed: UInt64, model: ModelConfiguration,
        optimizer: OptimizerKind, learningRate: Float, momentum: Float, weightDecay: Float,
        schedule: ScheduleKind, scheduleSteps: Int, localMomentum: Float = 0, localSchedule: ScheduleKind = .constant,
        pushEncoding: String = "fp32", pullEncoding: String = "fp32", pullDeltaEncoding: String = "none",
        localAdam: LocalAdamSettings? = nil
    ) {
        self.sessionID = sessionID
        self.policy = policy
        self.epochs = epochs
        self.batchSize = batchSize
        self.localSteps = localSteps
        self.localLearningRate = localLearningRate
        self.localMomentum = localMomentum
        self.localSchedule = localSchedule
        self.localAdam = localAdam
        self.pushEncoding = pushEncoding
        self.pullEncoding = pullEncoding
        self.pullDeltaEncoding = pullDeltaEncoding
        self.trainSamples = trainSamples
        self.testSamples = testSamples
        self.seed = seed
        self.model = model
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.scheduleSteps = scheduleSteps
    }

    /// Copies the session-shaping fields into `configuration`, leaving its operational ones.
    public func apply(to configuration: inout ServerConfiguration) {
        configuration.sessionID = sessionID
        configuration.policy = policy
        configuration.epochs = epochs
        configuration.batchSize = batchSize
        configuration.localSteps = localSteps
        configuration.localLearningRate = localLearningRate
        configuration.localMomentum = localMomentum
        configuration.localSchedule = localSchedule
        configuration.localAdam = localAdam
        configuration.trainSamples = trainSamples
        configuration.seed = seed
    }

    /// The optimiser and schedule the recipe names.
    public func makeOptimizer() -> (optimizer: any Optimizer, schedule: LearningRateSchedule) {
        // Async and ssp deltas arrive one worker at a time; a sync round's come averaged, as one.
        (optimizer.make(momentum: momentum, weightDecay: weightDecay,
                        delay: policy.mode == .sync ? 1 : policy.workersToStart),
         schedule.make(rate: learningRate, totalSteps: scheduleSteps))
    }

    // MARK: Wire form

    var wire: CheckpointFormat.SessionSettings {
        var settings = CheckpointFormat.SessionSettings()
        settings.sessionID = sessionID
        settings.mode = policy.mode.rawValue
        settings.stalenessPolicy = policy.stalenessPolicy.rawValue
        settings.maxStaleness = UInt32(policy.maxStaleness)
        settings.workersToStart = UInt32(policy.workersToStart)
        settings.unitsAhead = UInt32(policy.unitsAhead)
        settings.heartbeatTimeoutSeconds = policy.heartbeatTimeout.seconds
        settings.epochs = UInt32(epochs)
        settings.batchSize = UInt32(batchSize)
        settings.localSteps = UInt32(localSteps)
        settings.localLearningRate = localLearningRate
        settings.localMomentum = localMomentum
        settings.localSchedule = localSchedule.rawValue
        settings.localAdamLearningRate = localAdam?.learningRate ?? 0
        settings.localAdamWeightDecay = localAdam?.weightDecay ?? 0
        settings.pushEncoding = pushEncoding
        settings.pullEncoding = pullEncoding
        settings.pullDeltaEncoding = pullDeltaEncoding
        settings.trainSamples = UInt32(trainSamples)
        settings.testSamples = UInt32(testSamples)
        settings.seed = seed
        settings.model = model.description
        settings.optimizer = optimizer.rawValue
        settings.learningRate = learningRate
        settings.momentum = momentum
        settings.weightDecay = weightDecay
        settings.schedule = schedule.rawValue
        settings.scheduleSteps = UInt64(scheduleSteps)
        return settings
    }

    init(wire settings: CheckpointFormat.SessionSettings) throws(CheckpointError) {
        func invalid(_ text: String) -> CheckpointError { .invalidContents("settings: \(text)") }
        guard let mode = TrainingMode(rawValue: settings.mode) else { throw invalid("unknown mode \"\(settings.mode)\"") }
        guard let staleness = StalenessPolicy(rawValue: settings.stalenessPolicy) else {
            throw invalid("unknown staleness policy \"\(settings.stalenessPolicy)\"")
        }
        guard let model = ModelConfiguration(settings.model) else { throw invalid("no model named in \"\(settings.model)\"") }
        guard let optimizer = OptimizerKind(rawValue: settings.optimizer) else {
            throw invalid("unknown optimiser \"\(settings.optimizer)\"")
        }
        guard let schedule = ScheduleKind(rawValue: settings.schedule) else {
            throw invalid("unknown schedule \"\(settings.schedule)\"")
        }
        guard let localSchedule = settings.localSchedule.isEmpty ? .constant : ScheduleKind(rawValue: settings.localSchedule) else {
            throw invalid("unknown local schedule \"\(settings.localSchedule)\"")
        }
        guard settings.workersToStart >= 1, settings.unitsAhead >= 1, settings.epochs >= 1, settings.batchSize >= 1,
              settings.localSteps >= 1, settings.trainSamples >= 1, settings.testSamples >= 1 else {
            throw invalid("a count that must be positive is 0")
        }
        guard settings.heartbeatTimeoutSeconds > 0, settings.heartbeatTimeoutSeconds.isFinite,
              settings.learningRate > 0, settings.learningRate.isFinite,
              settings.localLearningRate > 0, settings.localLearningRate.isFinite,
              (0..<1).contains(settings.momentum), (0..<1).contains(settings.localMomentum),
              settings.weightDecay >= 0, settings.weightDecay.isFinite,
              settings.localAdamLearningRate >= 0, settings.localAdamLearningRate.isFinite,
              settings.localAdamWeightDecay >= 0, settings.localAdamWeightDecay.isFinite else {
            throw invalid("a rate or timeout is out of range")
        }
        self.init(
            sessionID: settings.sessionID,
            policy: SessionPolicy(
                mode: mode, stalenessPolicy: staleness, maxStaleness: Int(settings.maxStaleness),
                workersToStart: Int(settings.workersToStart), unitsAhead: Int(settings.unitsAhead),
                heartbeatTimeout: .milliseconds(Int64(settings.heartbeatTimeoutSeconds * 1000))),
            epochs: Int(settings.epochs), batchSize: Int(settings.batchSize), localSteps: Int(settings.localSteps),
            localLearningRate: settings.localLearningRate, trainSamples: Int(settings.trainSamples),
            testSamples: Int(settings.testSamples), seed: settings.seed, model: model, optimizer: optimizer,
            learningRate: settings.learningRate, momentum: settings.momentum, weightDecay: settings.weightDecay,
            schedule: schedule, scheduleSteps: Int(clamping: settings.scheduleSteps), localMomentum: settings.localMomentum,
            localSchedule: localSchedule,
            pushEncoding: settings.pushEncoding.isEmpty ? "fp32" : settings.pushEncoding,
            pullEncoding: settings.pullEncoding.isEmpty ? "fp32" : settings.pullEncoding,
            pullDeltaEncoding: settings.pullDeltaEncoding.isEmpty ? "none" : settings.pullDeltaEncoding,
            localAdam: settings.localAdamLearningRate > 0
                ? LocalAdamSettings(learningRate: settings.localAdamLearningRate, weightDecay: settings.localAdamWeightDecay) : nil)
    }
}
