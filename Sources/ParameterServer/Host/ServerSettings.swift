import FoundationEssentials
import Glibc
import Learning

/// Everything an operator chooses for one `ps-server` session, before defaults that depend on other
/// choices (the optimiser and rates by mode and local steps, limits by model size) are resolved.
///
/// `ps-server`'s flags fill one; tests, benchmarks and embedders fill one in code. `nil` means "the
/// default for the rest of the settings" (see ``recipe(model:defaults:trainAvailable:testAvailable:)``).
public struct ServerSettings: Sendable {
    // Network and authentication
    /// The address to listen on (`--host`); anything but loopback needs a token or `insecure`.
    public var host = "127.0.0.1"
    /// The port (`--port`); 0 picks a free one.
    public var port = 8888
    /// Accept a non-loopback `host` without a token (`--insecure`).
    public var insecure = false
    /// The token itself (`--token`), or the file that holds it (`--token-file`); else `DOWNPOUR_TOKEN`.
    public var token: String?
    public var tokenFile: String?
    /// TLS 1.3 on every connection: the server's certificate chain and key (`--tls-cert`, `--tls-key`),
    /// and the CA whose certificates workers must present (`--tls-client-ca`, mutual TLS).
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var tlsClientCA: String?
    /// Serve Prometheus metrics on this port (`--metrics-port`); nil: none.
    public var metricsPort: Int?
    // Session
    /// `--mode`: async, sync or ssp.
    public var mode: TrainingMode = .async
    /// Workers to wait for before training (`--workers`).
    public var workers = 2
    /// Passes over the training set (`--epochs`).
    public var epochs = 5
    /// Samples per local step (`--batch-size`); nil: ``defaultBatchSize(localSteps:uncompressed:)``.
    public var batchSize: Int?
    /// H; nil: ``defaultLocalSteps``, or 1 with `uncompressed`.
    public var localSteps: Int?
    /// The exchange before encodings: H = 1, fp32 both ways unless given (`--uncompressed`).
    public var uncompressed = false
    /// Async mode's rule for stale updates (`--staleness-policy`; nil: `effectiveStalenessPolicy`), and K
    /// (`--max-staleness`).
    public var stalenessPolicy: StalenessPolicy?
    public var maxStaleness = 4
    /// Work units a worker may hold at once (`--units-ahead`).
    public var unitsAhead = 2
    // Model and optimiser
    /// `family[:options]`, such as `mlp`, `mlp:256,128` or `spirals`.
    public var model = "mlp"
    /// The server's (outer) optimiser and its settings (`--optimizer`, `--lr`, `--momentum`,
    /// `--weight-decay`, `--schedule`); nil: by mode and local steps.
    public var optimizer: OptimizerKind?
    public var learningRate: Float?
    public var momentum: Float?
    public var weightDecay: Float = 0
    public var schedule: ScheduleKind = .cosine
    /// The workers' local steps (`--local-optimizer`, `--local-lr`, `--local-momentum`,
    /// `--local-weight-decay`, `--local-schedule`); nil: see ``effectiveLocalOptimizer(defaults:)``. The
    /// rate is the local optimiser's.
    public var localOptimizer: LocalOptimizerKind?
    public var localLearningRate: Float?
    public var localWeightDecay: Float?
    public var localMomentum: Float = 0.9
    public var localSchedule: ScheduleKind = .constant
    /// How pushes and weights travel (`--push-encoding`, `--pull-encoding`); nil: sign and q8, or fp32
    /// with `uncompressed`.
    public var pushEncoding: String?
    public var pullEncoding: String?
    /// How workers that offer deltas are sent what changed since their version
    /// (`--pull-delta-encoding`): an encoding, or `none` for whole weights every time; nil: see
    /// ``defaultDeltaEncoding``.
    public var pullDeltaEncoding: String?
    /// Seeds the initial weights and every epoch's order (`--seed`).
    public var seed: UInt64 = 42
    // Data, evaluation and output
    /// The data directory for families that load data (`--data`); nil: the family's default.
    public var data: String?
    /// Train and test on prefixes of the data (`--train-samples`, `--test-samples`); nil: all.
    public var trainSamples: Int?
    public var testSamples: Int?
    /// OpenBLAS threads for evaluation (`--threads`).
    public var threads = 1
    /// Also evaluate every N updates (`--eval-every`) and every S seconds of training
    /// (`--eval-interval`), and the accuracy `seconds_to_target` reports (`--target-accuracy`).
    public var evaluateEvery: Int?
    public var evaluateInterval: Double?
    public var targetAccuracy = 0.975
    /// Write the HTML run report here at the end (`--report`).
    public var report: String?
    // Checkpoints
    /// Checkpoints: where, how often by updates and by seconds (`--checkpoint`, `--checkpoint-every`,
    /// `--checkpoint-interval`), and the checkpoint to carry on from (`--resume`).
    public var checkpoint: String?
    public var checkpointEvery = 500
    public var checkpointInterval: Double = 30
    public var resume: String?
    // Limits
    /// Limits (`--max-frame-bytes`, `--max-connections`, `--max-write-queue-bytes`), raised where the
    /// model needs more.
    public var maxFrameBytes = 64 << 20
    public var maxConnections = 1024
    public var maxWriteQueueBytes = 256 << 20
    /// Seconds: to complete a handshake, of silence before a worker is dropped, between heartbeats.
    public var handshakeTimeout: Double = 10
    public var heartbeatTimeout: Double = 10
    public var heartbeatInterval: Double = 1
    /// The least a lease lasts, in seconds (`--lease-floor`), and whether idle workers get backup
    /// copies at the session's tail (`--no-backups` turns that off).
    public var leaseFloor: Double = 5
    public var backups = true
    // Shards
    /// Parameters held by this many `ps-shard` processes (`--shards`); 0: by the server itself; nil
    /// (not given): 0 for a new session, and for a resumed one as many as its checkpoint names.
    public var shards: Int?
    /// Seconds between snapshots of a sharded session, what it goes back to when a shard is lost
    /// (`--snapshot-every`).
    public var snapshotInterval: Double = 30

    public init() {}

    /// Whether connections are encrypted (`--tls-cert` and `--tls-key` given).
    public var usesTLS: Bool { tlsCertificate != nil }

    /// H when none is given, with ``defaultBatchSize(localSteps:uncompressed:)``: units of 16 local steps of 32
    /// samples.
    ///
    /// Why 32 x 16 rather than 64 x 8, the same 512 samples and bytes per unit: four workers in
    /// parallel take a quarter of one process's sequential steps per worker, and at equal epochs that
    /// is what they lacked, not precision (fp32 both ways trained no better). Halving the batch gives
    /// each worker twice the steps for the same samples. Measured side by side (4 async workers,
    /// BENCHMARKS.md, "Smaller local batches, more local steps"): the CNN in 4 epochs 98.81 to 99.01%
    /// against 98.47 to 98.78%, the MLP in 5 98.03 and 98.18% against 97.88 and 98.04% (with the local
    /// rate scaled: ``defaultLocalNesterovRate(defaults:)``). Pulls cost more (the chain's stride is
    /// counted in local steps), which slows a fleet bound by a 100 Mbit/s link.
    public static let defaultLocalSteps = 16

    /// The batch when none is given: 32 with local steps (see ``defaultLocalSteps``); with gradient
    /// pushes (H = 1) `ps-train`'s 64, and with `uncompressed` 64 whatever H, so that it is the exchange
    /// it always was.
    public static func defaultBatchSize(localSteps: Int, uncompressed: Bool = false) -> Int {
        localSteps > 1 && !uncompressed ? 32 : referenceBatchSize
    }

    /// `ps-train`'s batch: the default of gradient pushes, and the batch a family's local rate is for.
    public static let referenceBatchSize = 64

    /// H, the local steps per push.
    public var steps: Int { localSteps ?? (uncompressed ? 1 : Self.defaultLocalSteps) }

    /// Samples per local step: as given, else ``defaultBatchSize(localSteps:uncompressed:)``.
    public var effectiveBatchSize: Int { batchSize ?? Self.defaultBatchSize(localSteps: steps, uncompressed: uncompressed) }

    /// The rate of local Nesterov steps when `--local-lr` does not give it: the family's, which is for
    /// batches of 64; for smaller batches, times the square root of the batch's ratio to 64, to two
    /// significant figures (0.035 for the MLP's 0.05 at 32). Batches of 64 and more take the family's
    /// rate as it is: a larger rate was never measured, and the CNN's diverges at five times its own.
    ///
    /// Why scaled: at the same rate, halving the batch doubles how far a unit moves the weights. With
    /// units of 32 x 16 at 0.05, 2 MLP workers ended 0.1 to 0.3 point (async) and 0.35 to 0.5 (sync,
    /// 3 epochs) under units of 64 x 8; at 0.035 they end within 0.15 of it either way, and 4 workers
    /// keep their gain (BENCHMARKS.md, "Smaller local batches, more local steps"). Adam's rate is left as
    /// it is: the CNN's local Adam gained at 0.001 with either batch.
    public func defaultLocalNesterovRate(defaults: ModelTrainingDefaults) -> Float {
        let ratio = Double(effectiveBatchSize) / Double(Self.referenceBatchSize)
        let rate = Double(defaults.localLearningRate) * ratio.squareRoot()
        guard ratio < 1, rate > 0, rate.isFinite else { return defaults.localLearningRate }
        let scale = pow(10, 1 - floor(log10(rate)))
        return Float((rate * scale).rounded() / scale)
    }

    /// The delta encoding when none is given: none with `uncompressed`; for `topk:F` pushes, topk at
    /// twice their fraction (a delta covers a few pushes); else sign in blocks of 256.
    ///
    /// Measured: with topk 1 % pushes (4 async workers, H = 16) sign deltas, dense, cost 0.3 points
    /// where topk 2 % deltas cost none. Workers train on the deltas' sum, so a block's one scale must
    /// not span layers of very different magnitudes, as 4096 values do in a small model: the spirals
    /// example in sync mode reached 89.1 % with sign(4096) deltas, 95.4 % with sign(256), 96.2 % with
    /// whole weights, and the CNN 97.76, 97.92 and 98.06 %; the MLP is the same with either, for 12 %
    /// more bytes.
    public var defaultDeltaEncoding: String {
        if uncompressed { return "none" }
        guard let push = pushEncoding, push.hasPrefix("topk:"), let fraction = Double(push.dropFirst(5)), fraction > 0 else {
            return "sign:256"
        }
        return "topk:\(min(1, 2 * fraction))"
    }

    /// The staleness policy: as given, else `scaled` for the deltas of async local SGD and `none` otherwise
    /// (Adam's rate for async gradients was tuned without one).
    public var effectiveStalenessPolicy: StalenessPolicy {
        stalenessPolicy ?? (mode == .async && steps > 1 ? .scaled : .none)
    }

    /// The optimiser: as given, else by mode and by whether workers take local steps.
    public var effectiveOptimizer: OptimizerKind {
        if let optimizer { return optimizer }
        // Momentum 0 (`--momentum 0`, or one worker's default) is plain SGD on the averaged delta, not
        // Nesterov without momentum. (A sync session's `effectiveMomentum` does not ask for the optimiser.)
        if steps > 1 { return mode == .sync ? (effectiveMomentum == 0 ? .sgd : .nesterov) : .delayedNesterov }
        return mode == .sync ? .momentum : .adam
    }

    /// Whether the session is planned for one worker (`--workers 1`). Its delta is then the whole
    /// trajectory rather than one of several to average: applied as it is (outer rate 1, no outer
    /// momentum), it trains as one process does. The larger steps that make up for averaging several
    /// workers overshoot it: the MLP (5 epochs, 5 seeds) ended 0.22 point under `ps-train` async at
    /// rate 1.5 and 0.05 above at 1, 0.78 under in sync rounds with Nesterov 0.5 and 0.12 above without;
    /// the spirals example gained 0.12 point in sync rounds and was level async, the CNN ended 0.04
    /// lower in either mode (2 seeds, still 0.13 above `ps-train`) (BENCHMARKS.md, "The outer step
    /// grows with the workers"). Workers who join later do not change it.
    var plannedForOneWorker: Bool { workers == 1 }

    /// A sync round's outer Nesterov momentum when `--momentum` is not given: DiLoCo's, at 0.5, for
    /// several workers; none for one.
    private var syncOuterMomentum: Float { plannedForOneWorker ? 0 : 0.5 }

    // With local steps the optimiser is the outer one. In async mode averaging (delayed Nesterov
    // without momentum: each delta at lr / the workers present, and beyond four workers times
    // `DelayedNesterov.averagingGain(arrivals:)`) measured best; outer momentum made the early
    // epochs unstable. A sync round's averaged delta takes Nesterov momentum as in DiLoCo, where 0.5 at
    // rate 1 measured best (98.2% with sign pushes at H = 8; DiLoCo's 0.9 at 0.7 stopped at 94.3%).
    // Without local steps, asynchrony itself acts like momentum (Mitliagkas et al., "Asynchrony begets
    // momentum", 2016), so 0.5 suits async and ssp where sync keeps one process's 0.9.
    public var effectiveMomentum: Float {
        if let momentum { return momentum }
        // Only delayed Nesterov runs without momentum; a named `nesterov` or `momentum` gets some.
        // One worker's default of none is for the default optimiser only: a named one keeps its 0.5.
        if steps > 1 {
            if mode == .sync { return optimizer == nil ? syncOuterMomentum : 0.5 }
            return effectiveOptimizer == .delayedNesterov ? 0 : 0.5
        }
        return mode == .sync ? 0.9 : 0.5
    }

    /// The peak learning rate: as given, else by optimiser (the model family's for SGD variants).
    public func effectiveLearningRate(defaults: ModelTrainingDefaults) -> Float {
        if let learningRate { return learningRate }
        let optimizer = effectiveOptimizer
        // Outer rates. Delayed Nesterov runs without momentum, where a sync round's Nesterov 0.5 about doubles
        // its steps. Under the `scaled` policy 1.5 measured best (MLP-512, 4 async workers, H = 8, 4 paired
        // seeds: 97.92 to 98.02% against 97.80 to 97.96 at 1 unscaled; prefetching workers 97.69 to 97.76, as
        // at 1 unscaled, where 1.5 unscaled cost them 0.3 to 0.7 point); without it, 1. More than four workers
        // take it times the gain. With two, 1 suits the MLP (0.1 point more) but cost two workers of the
        // spirals example 2 to 7 points: 1.5 stays. A session planned for one worker takes 1
        // (`plannedForOneWorker`).
        if steps > 1, optimizer == .delayedNesterov {
            return effectiveStalenessPolicy == .scaled && !plannedForOneWorker ? 1.5 : 1
        }
        // Any other outer optimiser but Adam (nesterov, momentum, sgd on the averaged delta): plain averaging's 1.
        if steps > 1, optimizer != .adam { return 1 }
        if optimizer == .adam { return mode == .sync ? 0.001 : 0.0005 }
        return defaults.learningRate
    }

    /// The local optimiser: as given, else the one the model family trains with alone when that is Adam
    /// (the CNN's), else Nesterov. The CNN's local steps with Adam (the inner optimiser of DiLoCo) measured
    /// 98.79 and 98.95% in sync rounds (4 workers, 4 epochs, 2 seeds) against 98.17 and 98.69% with
    /// Nesterov; the MLP, which trains alone with Nesterov, lost 0.2 point with local Adam.
    public func effectiveLocalOptimizer(defaults: ModelTrainingDefaults) -> LocalOptimizerKind {
        localOptimizer ?? (defaults.optimizer == .adam ? .adam : .nesterov)
    }

    /// Local Adam's rate when it is the local optimiser: `--local-lr`, else Adam's usual 0.001, as
    /// `ps-train`'s.
    public static let localAdamLearningRate: Float = 0.001

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
        let samplesPerUnit = effectiveBatchSize * steps
        let unitsPerEpoch = (train + samplesPerUnit - 1) / samplesPerUnit
        let totalSteps = epochs * (mode == .sync ? max(1, unitsPerEpoch / workers) : unitsPerEpoch)
        let adam = steps > 1 && effectiveLocalOptimizer(defaults: defaults) == .adam
        return SessionRecipe(
            sessionID: "\(Int(Date().timeIntervalSince1970))-\(getpid())",
            policy: SessionPolicy(
                mode: mode, stalenessPolicy: effectiveStalenessPolicy, maxStaleness: maxStaleness, workersToStart: workers,
                unitsAhead: unitsAhead, heartbeatTimeout: .milliseconds(Int(heartbeatTimeout * 1000))),
            epochs: epochs, batchSize: effectiveBatchSize, localSteps: steps,
            localLearningRate: adam ? defaultLocalNesterovRate(defaults: defaults)
                : localLearningRate ?? defaultLocalNesterovRate(defaults: defaults),
            trainSamples: train, testSamples: test, seed: seed, model: configuration,
            optimizer: effectiveOptimizer, learningRate: effectiveLearningRate(defaults: defaults), momentum: effectiveMomentum,
            weightDecay: weightDecay, schedule: schedule, scheduleSteps: totalSteps,
            localMomentum: steps > 1 ? localMomentum : 0, localSchedule: localSchedule,
            pushEncoding: pushEncoding ?? (uncompressed ? "fp32" : "sign"),
            pullEncoding: pullEncoding ?? (uncompressed ? "fp32" : "q8"),
            pullDeltaEncoding: pullDeltaEncoding ?? defaultDeltaEncoding,
            // Workers that cannot run Adam take Nesterov steps at the family's (scaled) rate beside it.
            localAdam: adam ? LocalAdamSettings(
                learningRate: localLearningRate ?? Self.localAdamLearningRate,
                weightDecay: localWeightDecay ?? (defaults.optimizer == .adam ? defaults.weightDecay : 0)) : nil)
    }
}

/// A setting that cannot work, said as the flag's message.
public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
