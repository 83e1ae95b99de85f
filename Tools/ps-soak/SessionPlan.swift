import ParameterServer

/// The soak session's shape, sized from a measured training rate so that it lasts about as long as asked.
///
/// Epochs cannot change once a session has started (a resumed server takes them from its checkpoint),
/// so the soak measures first, in a short calibration session with the same fleet, and then sizes the
/// real one: many epochs over a subset of MNIST, so that a long soak evaluates often and a short one
/// still trains enough to pass the accuracy check.
struct SessionPlan {
    /// The batch the soak gives its servers (`--batch-size`): `ps-server`'s default with `localSteps`,
    /// passed explicitly so that a `--server-binary` of another build trains units of the planned size.
    static func batchSize(localSteps: Int) -> Int { ServerSettings.defaultBatchSize(localSteps: localSteps) }

    /// The smallest training subset: on 6400 samples the soak's MLP plateaued near 92% on the test set,
    /// too close to the default threshold of 90%; on 19200, about 95%.
    static let minimumTrainSamples = 19200
    /// MNIST's training set.
    static let maximumTrainSamples = 60000

    /// Samples per work unit: the batch size times the session's local steps.
    let samplesPerUnit: Int
    /// `ps-server --train-samples`.
    let trainSamples: Int
    /// `ps-server --epochs`.
    let epochs: Int
    /// `ps-server --checkpoint-every`: updates between checkpoints.
    let checkpointEvery: Int
    /// The model versions at which the server is killed, one per kill, in order.
    let killVersions: [Int]
    /// The model versions at which a shard is killed (a sharded session), one per kill, in order; never
    /// the same as a server kill's.
    let shardKillVersions: [Int]
    /// Seconds the session should take, kills included.
    let expectedSeconds: Double

    /// Work units in one epoch.
    var unitsPerEpoch: Int { (trainSamples + samplesPerUnit - 1) / samplesPerUnit }
    /// Work units in the session: `units_expected` in the server's summary.
    var unitsExpected: Int { epochs * unitsPerEpoch }

    /// - Parameters:
    ///   - seconds: The time left for the session.
    ///   - samplesPerSecond: The fleet's training rate, measured.
    ///   - startupSeconds: How long the calibration server took to start (MNIST loaded, listening).
    ///   - kills: Server kills to place.
    ///   - lifeSeconds: Training each server life needs for its memory and descriptors to be judged.
    ///   - localSteps: `ps-server --local-steps`: batches per unit.
    ///   - shardKills: Shard kills to place (a sharded session).
    ///   - snapshotSeconds: A sharded session's snapshot interval: a shard kill costs half of it on average,
    ///     trained again, and the workers' reconnection.
    init(seconds: Double, samplesPerSecond: Double, startupSeconds: Double, kills: Int, lifeSeconds: Double, localSteps: Int,
         shardKills: Int = 0, snapshotSeconds: Double = 0) {
        samplesPerUnit = Self.batchSize(localSteps: localSteps) * localSteps
        // The calibration trains in the same regime (the same fleet and churn, an evaluation every 12800
        // samples), so its rate stands as measured; a machine whose load changes makes the soak longer
        // or shorter than asked, never less thorough (kills follow the session's progress).
        let rate = max(samplesPerSecond, 1)
        // Each kill costs a start-up, the workers' reconnection (a fraction of a second) and, on
        // average, half the updates between checkpoints, which are trained again. The calibration server
        // started while every worker was loading MNIST too; a resumed one starts with the machine to
        // itself, in about half the time (measured in debug builds on 2 cores).
        let checkpointEvery = 50
        let perKill = startupSeconds / 2 + 1 + Double(checkpointEvery * samplesPerUnit) / 2 / rate
        let perShardKill = snapshotSeconds / 2 + 1
        let killing = Double(kills) * perKill + Double(shardKills) * perShardKill
        // A few seconds at the end: the fleet's graceful stop and the final checks.
        let training = max(seconds - killing - 5, 5)
        // Never so few units that a server life trains too briefly to be judged, even if the session
        // runs at twice the calibrated rate (seen when the calibration ended before most of the fleet
        // had loaded MNIST and joined).
        let samples = max(rate * training, Double(kills + 1) * lifeSeconds * 2 * samplesPerSecond)
        let subset = Int(samples / 8) / samplesPerUnit * samplesPerUnit
        trainSamples = min(max(subset, Self.minimumTrainSamples), Self.maximumTrainSamples)
        epochs = max(3, Int((samples / Double(trainSamples)).rounded()))
        let units = epochs * ((trainSamples + samplesPerUnit - 1) / samplesPerUnit)
        // Evenly spaced through the session's units; checkpoints often enough that each kill has one
        // well before it to resume from.
        // Every kill, the server's and the shards', evenly spaced through the session's units; the
        // server's take places spread among them, the shards' the rest, so no two coincide.
        let total = kills + shardKills
        let places = (0..<total).map { units * ($0 + 1) / (total + 1) }
        let serverPlaces = Set((0..<kills).map { (2 * $0 + 1) * total / (2 * kills) })
        killVersions = places.indices.filter { serverPlaces.contains($0) }.map { places[$0] }
        shardKillVersions = places.indices.filter { !serverPlaces.contains($0) }.map { places[$0] }
        self.checkpointEvery = max(10, min(checkpointEvery, units / (4 * (kills + 1))))
        expectedSeconds = Double(units * samplesPerUnit) / rate + killing
    }
}
