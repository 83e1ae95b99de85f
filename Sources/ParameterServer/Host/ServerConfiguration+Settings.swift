import Learning
import Reactor
import TensorEncoding

extension ServerConfiguration {
    /// The configuration for a session of `recipe` under the operator's `settings`: the recipe's rules,
    /// and the operational settings (address, limits, timeouts, leases, evaluation) from `settings`, with
    /// the limits a model of `parameterCount` parameters needs.
    ///
    /// One assembly for `ps-server`, benchmarks and tests, so that each runs the same server.
    /// - Throws: ``SettingsError`` when an encoding the recipe names does not apply.
    public init(recipe: SessionRecipe, settings: ServerSettings, parameterCount: Int) throws(SettingsError) {
        self.init()
        host = settings.host
        port = settings.port
        recipe.apply(to: &self)
        self.recipe = recipe
        shards = settings.shards ?? 0
        snapshotInterval = .milliseconds(Int(settings.snapshotInterval * 1000))
        guard shards <= parameterCount else {
            throw SettingsError("--shards \(shards): the model has only \(parameterCount) parameters")
        }
        let parameterBytes = parameterCount * 4
        // A frame must hold the whole model, and a queue a few of them, or ordinary pulls would trip it.
        maxFrameBytes = max(settings.maxFrameBytes, parameterBytes + 4096)
        maxConnections = settings.maxConnections
        maxQueuedWriteBytes = max(settings.maxWriteQueueBytes, 3 * (parameterBytes + 4096))
        handshakeTimeout = .milliseconds(Int(settings.handshakeTimeout * 1000))
        heartbeatInterval = .milliseconds(Int(settings.heartbeatInterval * 1000))
        // Operational, like the limits: the command line's, also for a resumed session.
        policy.leaseFloor = .milliseconds(Int(settings.leaseFloor * 1000))
        policy.backups = settings.backups
        evaluateEvery = settings.evaluateEvery.map { UInt64($0) }
        evaluateInterval = settings.evaluateInterval
        targetAccuracy = settings.targetAccuracy
        pushEncoding = try Self.encoding(recipe.pushEncoding, flag: "--push-encoding", count: parameterCount)
        pullEncoding = try Self.encoding(recipe.pullEncoding, flag: "--pull-encoding", count: parameterCount)
        switch pullEncoding {
        case .topK, .sign: throw SettingsError("--pull-encoding \(recipe.pullEncoding): weights are sent whole, in fp32, fp16, bf16 or q8")
        default: break
        }
        if recipe.pullDeltaEncoding != "none" {
            deltaEncoding = try Self.encoding(recipe.pullDeltaEncoding, flag: "--pull-delta-encoding", count: parameterCount)
            if deltaEncoding == .fp32 {
                throw SettingsError("--pull-delta-encoding fp32: deltas in fp32 are as large as whole weights; say none for whole weights")
            }
        }
        if let certificate = settings.tlsCertificate, let key = settings.tlsKey {
            do {
                tls = try TLSContext.server(certificateChainPath: certificate, privateKeyPath: key, clientCAPath: settings.tlsClientCA)
            } catch {
                throw SettingsError("TLS: \(error.message)")
            }
        }
        if let path = settings.checkpoint ?? settings.resume {
            checkpoint = CheckpointSchedule(
                path: path, everyUpdates: settings.checkpointEvery,
                interval: .milliseconds(Int(settings.checkpointInterval * 1000)), recipe: recipe)
        }
    }

    private static func encoding(_ choice: String, flag: String, count: Int) throws(SettingsError) -> TensorEncoding {
        do {
            return try TensorEncoding(choice: choice, count: count)
        } catch {
            throw SettingsError("\(flag): \(error)")
        }
    }
}

extension SessionRecipe {
    /// Each epoch's order of the session's training samples: a pure function of the seed and the epoch.
    public var permutation: @Sendable (Int) -> [UInt32] {
        let (seed, count) = (self.seed, trainSamples)
        return { epoch in EpochPermutation(seed: seed, epoch: epoch, count: count).indices.map { UInt32(bitPattern: $0) } }
    }

    /// The optimiser as a log line: `adam lr 0.0005, cosine schedule`, `nesterov momentum 0.5, lr 1.0, ...`,
    /// `momentum 0.9, lr 0.05, ...` (not "momentum momentum 0.9"), and for delayed Nesterov on async or
    /// ssp deltas the gain its rate takes from the workers present (`lr 1.5 x max(1, sqrt(workers / 4))`).
    public var optimizerSummary: String {
        guard optimizer.usesMomentum else { return "\(optimizer.rawValue) lr \(learningRate), \(schedule.rawValue) schedule" }
        let name = optimizer == .momentum ? "momentum" : "\(optimizer.rawValue) momentum"
        // Sync rounds apply one averaged delta per step, and gradients do not count arrivals: no gain.
        let gainApplies = optimizer == .delayedNesterov && policy.mode != .sync && localSteps > 1
        let gain = gainApplies ? " x \(DelayedNesterov.averagingGainFormula)" : ""
        return "\(name) \(momentum), lr \(learningRate)\(gain), \(schedule.rawValue) schedule"
    }
}
