import Foundation
import Learning

/// Everything an operator chooses for one `ps-server` session, before defaults that depend on other
/// choices (the optimiser and rates by mode and local steps, limits by model size) are resolved.
///
/// `ps-server`'s flags fill one; tests, benchmarks and embedders fill one in code. `nil` means "the
/// default for the rest of the settings" (see ``recipe(model:defaults:trainAvailable:testAvailable:)``).
public struct ServerSettings: Sendable {
    // Network and authentication
    public var host = "127.0.0.1"
    public var port = 8888
    public var insecure = false
    public var token: String?
    public var tokenFile: String?
    public var metricsPort: Int?
    // Session
    public var mode: TrainingMode = .async
    public var workers = 2
    public var epochs = 5
    public var batchSize = 64
    /// H; nil: 8, or 1 with `uncompressed`.
    public var localSteps: Int?
    public var uncompressed = false
    public var stalenessPolicy: StalenessPolicy = .none
    public var maxStaleness = 4
    public var unitsAhead = 2
    // Model and optimiser
    /// `family[:options]`, such as `mlp`, `mlp:256,128` or `spirals`.
    public var model = "mlp"
    public var optimizer: OptimizerKind?
    public var learningRate: Float?
    public var momentum: Float?
    public var weightDecay: Float = 0
    public var schedule: ScheduleKind = .cosine
    public var localLearningRate: Float?
    public var localMomentum: Float = 0.9
    public var localSchedule: ScheduleKind = .constant
    public var pushEncoding: String?
    public var pullEncoding: String?
    public var seed: UInt64 = 42
    // Data, evaluation and output
    public var data: String?
    public var trainSamples: Int?
    public var testSamples: Int?
    public var threads = 1
    public var evaluateEvery: Int?
    public var targetAccuracy = 0.975
    public var report: String?
    // Checkpoints
    public var checkpoint: String?
    public var checkpointEvery = 500
    public var checkpointInterval: Double = 30
    public var resume: String?
    // Limits
    public var maxFrameBytes = 64 << 20
    public var maxConnections = 1024
    public var maxWriteQueueBytes = 256 << 20
    public var handshakeTimeout: Double = 10
    public var heartbeatTimeout: Double = 10
    public var heartbeatInterval: Double = 1
    public var leaseFloor: Double = 5
    public var backups = true

    public init() {}

    /// H, the local steps per push.
    public var steps: Int { localSteps ?? (uncompressed ? 1 : 8) }

    /// The optimiser: as given, else by mode and by whether workers take local steps.
    public var effectiveOptimizer: OptimizerKind {
        if let optimizer { return optimizer }
        if steps > 1 { return mode == .sync ? .nesterov : .delayedNesterov }
        return mode == .sync ? .momentum : .adam
    }

    // With local steps the optimiser is the outer one. In async mode plain averaging (delayed Nesterov
    // without momentum: each delta at lr / the workers present) measured best; outer momentum made the early
    // epochs unstable. A sync round's averaged delta takes Nesterov momentum as in DiLoCo, where 0.5 at
    // rate 1 measured best (98.2% with sign pushes at H = 8; DiLoCo's 0.9 at 0.7 stopped at 94.3%).
    // Without local steps, asynchrony itself acts like momentum (Mitliagkas et al., "Asynchrony begets
    // momentum", 2016), so 0.5 suits async and ssp where sync keeps one process's 0.9.
    public var effectiveMomentum: Float {
        if let momentum { return momentum }
        if steps > 1 { return mode == .sync ? 0.5 : 0 }
        return mode == .sync ? 0.9 : 0.5
    }

    /// The peak learning rate: as given, else by optimiser (the model family's for SGD variants).
    public func effectiveLearningRate(defaults: ModelTrainingDefaults) -> Float {
        if let learningRate { return learningRate }
        let optimizer = effectiveOptimizer
        if steps > 1, optimizer == .delayedNesterov || optimizer == .nesterov { return 1 }
        if optimizer == .adam { return mode == .sync ? 0.001 : 0.0005 }
        return defaults.learningRate
    }

    /// Whether `host` names only this machine: 127.0.0.0/8, ::1 or localhost.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// The token from `token`, `tokenFile` or the environment, if any.
    public func resolvedToken() throws(SettingsError) -> AuthenticationToken.Resolution? {
        do {
            return try AuthenticationToken.resolve(flag: token, file: tokenFile)
        } catch {
            throw SettingsError(error.description)
        }
    }

    /// The session's settings with every default resolved, for a new session (a resumed one takes its
    /// checkpoint's).
    /// - Parameter defaults: the model family's suggestions (``ModelFamily/defaults``).
    public func recipe(
        model configuration: ModelConfiguration, defaults: ModelTrainingDefaults, trainAvailable: Int, testAvailable: Int
    ) -> SessionRecipe {
        let train = trainSamples.map { min($0, trainAvailable) } ?? trainAvailable
        let test = testSamples.map { min($0, testAvailable) } ?? testAvailable
        // The schedule counts applied optimiser steps: updates in async and ssp, rounds in sync.
        let samplesPerUnit = batchSize * steps
        let unitsPerEpoch = (train + samplesPerUnit - 1) / samplesPerUnit
        let totalSteps = epochs * (mode == .sync ? max(1, unitsPerEpoch / workers) : unitsPerEpoch)
        return SessionRecipe(
            sessionID: "\(Int(Date().timeIntervalSince1970))-\(getpid())",
            policy: SessionPolicy(
                mode: mode, stalenessPolicy: stalenessPolicy, maxStaleness: maxStaleness, workersToStart: workers,
                unitsAhead: unitsAhead, heartbeatTimeout: .milliseconds(Int(heartbeatTimeout * 1000))),
            epochs: epochs, batchSize: batchSize, localSteps: steps,
            localLearningRate: localLearningRate ?? defaults.localLearningRate,
            trainSamples: train, testSamples: test, seed: seed, model: configuration,
            optimizer: effectiveOptimizer, learningRate: effectiveLearningRate(defaults: defaults), momentum: effectiveMomentum,
            weightDecay: weightDecay, schedule: schedule, scheduleSteps: totalSteps,
            localMomentum: steps > 1 ? localMomentum : 0, localSchedule: localSchedule,
            pushEncoding: pushEncoding ?? (uncompressed ? "fp32" : "sign"),
            pullEncoding: pullEncoding ?? (uncompressed ? "fp32" : "q8"))
    }
}

/// A setting that cannot work, said as the flag's message.
public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
