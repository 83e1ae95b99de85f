import Prometheus

/// The session's figures at one instant, read from the coordinator and the runtime at scrape time.
public struct MetricsSnapshot: Sendable, Equatable {
    /// The coordinator's running figures (updates, rejections, samples, joins, leaves).
    public var statistics = SessionStatistics()
    /// Workers currently in the session.
    public var activeWorkers = 0
    /// The model's version (applied optimiser steps).
    public var modelVersion: UInt64 = 0
    /// Epochs finished (all their units applied).
    public var epochsCompleted = 0
    /// Test loss and accuracy of the last evaluated epoch, if any.
    public var lastEvaluation: (loss: Double, accuracy: Double)?
    /// Seconds since training started, or nil while waiting for workers.
    public var trainingSeconds: Double?
    /// Seconds since the server started.
    public var uptimeSeconds: Double = 0
    /// Seconds since the last checkpoint was written, or nil before the first (or without checkpoints).
    public var checkpointAgeSeconds: Double?
    /// Checkpoints written by this process.
    public var checkpointsWritten = 0
    /// A sharded session: each held range's latest figures (index, holder, figures, counted since the
    /// range was assigned to its holder).
    public var shards: [SessionHistory.ShardPoint] = []
    /// A sharded session: the times the session went back to a snapshot because a shard was lost.
    public var rollbacks = 0
    /// Whether the session's parameters are at shards (`ps-server --shards`): its shard metrics are
    /// shown from the first scrape, before any shard has reported.
    public var sharded = false

    public init() {}

    public static func == (lhs: MetricsSnapshot, rhs: MetricsSnapshot) -> Bool {
        lhs.statistics == rhs.statistics && lhs.activeWorkers == rhs.activeWorkers && lhs.modelVersion == rhs.modelVersion
            && lhs.epochsCompleted == rhs.epochsCompleted && lhs.lastEvaluation?.loss == rhs.lastEvaluation?.loss
            && lhs.lastEvaluation?.accuracy == rhs.lastEvaluation?.accuracy && lhs.trainingSeconds == rhs.trainingSeconds
            && lhs.uptimeSeconds == rhs.uptimeSeconds && lhs.checkpointAgeSeconds == rhs.checkpointAgeSeconds
            && lhs.checkpointsWritten == rhs.checkpointsWritten && lhs.shards == rhs.shards && lhs.rollbacks == rhs.rollbacks
            && lhs.sharded == rhs.sharded
    }
}

/// The session's Prometheus metrics: a `PrometheusCollectorRegistry` owned by the server.
///
/// Most metrics are copied from a ``MetricsSnapshot`` when scraped, so training pays nothing for them.
/// Three are counted as they happen, through hooks in the runtime that cost nothing while metrics are
/// off: frame bytes in and out, and the staleness histogram (which needs each observation). A sharded
/// session adds each shard's figures, labelled `shard="<index>"` and `holder="<name>"`, and
/// `downpour_rollbacks_total`; a session without shards never shows them.
///
/// - Warning: Loop thread only. The registry's metrics are thread-safe, but the scrape-time copy and
///   the rate it computes assume one caller at a time.
public final class SessionMetrics {
    /// Reasons an update may be rejected for; each is exported from the start, at 0.
    public static let rejectionReasons = SessionCoordinator.PushRefusal.allCases.map(\.rawValue)
        + [SessionCoordinator.Refusal.Reason.wrongDimensions.rawValue, SessionCoordinator.Refusal.Reason.notFinite.rawValue,
           SessionCoordinator.Refusal.Reason.badEncoding.rawValue, SessionCoordinator.Refusal.Reason.wrongShard.rawValue]

    /// The registry every metric is in; ``exposition(_:)`` emits it.
    public let registry = PrometheusCollectorRegistry()

    private let updatesApplied: Counter
    private var updatesRejected: [String: Counter] = [:]
    private let staleness: ValueHistogram
    private let activeWorkers: Gauge
    private let joins: Counter
    private let leaves: Counter
    private let bytesIn: Counter
    private let bytesOut: Counter
    private let framesIn: Counter
    private let framesOut: Counter
    private let samples: Counter
    private let leasesExpired: Counter
    private let backupLeases: Counter
    private let appliedTwice: Counter
    private let samplesRate: Gauge
    private let syncRounds: Counter
    private let modelVersion: Gauge
    private let epochs: Gauge
    private let testLoss: Gauge
    private let testAccuracy: Gauge
    private let uptime: Gauge
    private let checkpointAge: Gauge
    private let checkpoints: Counter

    /// Frame payload bytes received and sent, counted by the runtime's hooks.
    private var receivedBytes: UInt64 = 0
    private var sentBytes: UInt64 = 0
    /// Bytes of pushed values and of weights sent, by encoding.
    private var pushBytes: [String: UInt64] = [:]
    private var weightBytes: [String: UInt64] = [:]
    private var encodingCounters: [String: Counter] = [:]
    private var receivedFrames: UInt64 = 0
    private var sentFrames: UInt64 = 0
    /// The previous scrape's sample count and time, for the recent rate.
    private var previousScrape: (samples: UInt64, seconds: Double)?
    /// Each held range's metrics, by index; made when a holder is first seen.
    private var shardSeries: [Int: ShardSeries] = [:]
    /// Made at the first scrape that shows a shard or a rollback: from then on the session is sharded.
    private var rollbacks: Counter?

    /// Creates the registry and every metric in it.
    public init() {
        let registry = registry
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: Self.descriptor(name, unit: "total", help))
        }
        func gauge(_ name: String, unit: String = "", _ help: String) -> Gauge {
            registry.makeGauge(descriptor: Self.descriptor(name, unit: unit, help))
        }
        updatesApplied = counter("updates_applied", "Updates applied to the model (in sync mode, pushes taken into applied rounds).")
        staleness = registry.makeValueHistogram(
            descriptor: Self.descriptor("update_staleness", unit: "",
                                        "Staleness of applied updates: model versions between the weights a worker used and the model it updated."),
            buckets: StalenessStatistics.bucketBounds.map { Double($0) })
        activeWorkers = gauge("active_workers", "Workers currently in the session.")
        joins = counter("worker_joins", "Workers that joined the session.")
        leaves = counter("worker_leaves", "Workers that left the session (said goodbye, were dropped or refused).")
        bytesIn = counter("frame_bytes_received", "Payload bytes of protocol frames received from workers (4-byte length prefixes not counted).")
        bytesOut = counter("frame_bytes_sent",
                           "Payload bytes of protocol frames queued to workers (4-byte length prefixes and error reports not counted).")
        framesIn = counter("frames_received", "Protocol frames received from workers.")
        framesOut = counter("frames_sent", "Protocol frames queued to workers (error reports not counted).")
        samples = counter("samples_trained", "Training samples behind applied updates.")
        samplesRate = gauge("samples_per_second",
                            "Samples trained per second since the previous scrape (the first scrape: since training started).")
        syncRounds = counter("sync_rounds", "Sync rounds closed (sync mode only).")
        leasesExpired = counter("leases_expired", "Work-unit leases that ran out before their push; each unit went back to the queue.")
        backupLeases = counter("backup_leases", "Backup copies of outstanding units handed to idle workers at the session's tail.")
        appliedTwice = counter("units_applied_twice", "Units whose update was applied more than once, by an audit apart from the ledger; always 0.")
        modelVersion = gauge("model_version", "The model's version: optimiser steps applied.")
        epochs = gauge("epochs_completed", "Epochs whose work units have all been applied.")
        testLoss = gauge("test_loss", "Test loss after the last evaluated epoch (NaN before the first).")
        testAccuracy = gauge("test_accuracy", "Test accuracy (0 to 1) after the last evaluated epoch (NaN before the first).")
        uptime = gauge("uptime", unit: "seconds", "Seconds since the server started.")
        checkpointAge = gauge("checkpoint_age", unit: "seconds",
                              "Seconds since the last checkpoint was written (NaN before the first, or without --checkpoint).")
        checkpoints = counter("checkpoints_written", "Checkpoints written by this server process.")
        checkpointAge.set(Double.nan)
        testLoss.set(Double.nan)
        testAccuracy.set(Double.nan)
        for reason in Self.rejectionReasons { _ = rejectedCounter(reason) }
    }

    /// `downpour_<name>_<unit>`, with its help text.
    /// `downpour_<name>_<unit>`, the naming every Downpour metric follows (the worker's too).
    static func descriptor(_ name: String, unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "downpour", metricName: name, unitName: unit, helpText: help)
    }

    /// `downpour_<name>_bytes_total{encoding="..."}`, made on first use.
    private func encodingCounter(_ name: String, _ help: String, encoding: String) -> Counter {
        let key = "\(name) \(encoding)"
        if let counter = encodingCounters[key] { return counter }
        let counter = registry.makeCounter(
            descriptor: Self.descriptor(name, unit: "bytes_total", help), labels: [("encoding", encoding)])
        encodingCounters[key] = counter
        return counter
    }

    private func rejectedCounter(_ reason: String) -> Counter {
        if let counter = updatesRejected[reason] { return counter }
        let counter = registry.makeCounter(
            descriptor: Self.descriptor("updates_rejected", unit: "total", "Updates not applied, by reason."), labels: [("reason", reason)])
        updatesRejected[reason] = counter
        return counter
    }

    // MARK: Hooks (called by the runtime as things happen)

    /// A frame of `bytes` payload bytes arrived.
    func didReceive(bytes: Int) {
        receivedBytes &+= UInt64(bytes)
        receivedFrames &+= 1
    }

    /// A push arrived whose values took `bytes` bytes in `encoding`.
    func didReceivePush(encoding: String, bytes: Int) {
        pushBytes[encoding, default: 0] &+= UInt64(bytes)
    }

    /// Weights of `bytes` payload bytes were queued in `encoding` (their frame counts in `didSend` too).
    func didSendWeights(encoding: String, bytes: Int) {
        weightBytes[encoding, default: 0] &+= UInt64(bytes)
        sentBytes &+= UInt64(bytes)
        sentFrames &+= 1
    }

    /// A frame of `bytes` payload bytes was queued.
    func didSend(bytes: Int) {
        sentBytes &+= UInt64(bytes)
        sentFrames &+= 1
    }

    /// An update with this staleness was applied.
    func didApply(staleness value: UInt64) {
        staleness.record(Double(value))
    }

    // MARK: Scraping

    /// Copies `snapshot` into the registry and returns the Prometheus text exposition.
    ///
    /// - Parameter snapshot: the session's figures now.
    /// - Returns: UTF-8 text in the Prometheus exposition format 0.0.4.
    public func exposition(_ snapshot: MetricsSnapshot) -> [UInt8] {
        let statistics = snapshot.statistics
        set(updatesApplied, statistics.updatesApplied)
        for (reason, count) in statistics.rejected { set(rejectedCounter(reason), count) }
        activeWorkers.set(Double(snapshot.activeWorkers))
        set(joins, statistics.joins)
        set(leaves, statistics.leaves)
        set(bytesIn, receivedBytes)
        set(bytesOut, sentBytes)
        set(framesIn, receivedFrames)
        set(framesOut, sentFrames)
        set(samples, statistics.samplesTrained)
        set(syncRounds, statistics.rounds)
        for (encoding, bytes) in pushBytes {
            set(encodingCounter("push_values", "Bytes of pushed values, by the encoding they travelled in.", encoding: encoding), bytes)
        }
        for (encoding, bytes) in weightBytes {
            set(encodingCounter("weights_sent", "Bytes of weights frames sent, by the encoding they travelled in.", encoding: encoding), bytes)
        }
        set(leasesExpired, statistics.leasesExpired)
        set(backupLeases, statistics.backupLeases)
        set(appliedTwice, statistics.appliedTwice)
        modelVersion.set(Double(snapshot.modelVersion))
        epochs.set(Double(snapshot.epochsCompleted))
        testLoss.set(snapshot.lastEvaluation?.loss ?? .nan)
        testAccuracy.set(snapshot.lastEvaluation?.accuracy ?? .nan)
        uptime.set(snapshot.uptimeSeconds)
        checkpointAge.set(snapshot.checkpointAgeSeconds ?? .nan)
        set(checkpoints, UInt64(snapshot.checkpointsWritten))
        samplesRate.set(recentRate(samples: statistics.samplesTrained, trainingSeconds: snapshot.trainingSeconds))
        exportShards(snapshot)
        return registry.emitToBuffer()
    }

    // MARK: Shards

    /// One held range's metrics, labelled with its index and holder.
    private struct ShardSeries {
        let holder: String
        let updates: Counter
        let bytesIn: Counter
        let bytesOut: Counter
        let stalenessMean: Gauge
        let stalenessMax: Gauge
        let workers: Gauge
    }

    /// Copies each shard's latest figures, and the rollbacks, into the registry.
    ///
    /// A range's series carry its holder's name, and a shard counts from zero when a range is assigned
    /// to it (again, after a rollback too): when a range changes hands, its old holder's series go, so
    /// that no series keeps a count that no longer grows; a range no shard holds now has none. A
    /// rollback that keeps the holder restarts its counters, which Prometheus reads as a counter reset.
    private func exportShards(_ snapshot: MetricsSnapshot) {
        guard rollbacks != nil || snapshot.sharded || !snapshot.shards.isEmpty || snapshot.rollbacks > 0 else { return }
        let rollbacks = rollbacks ?? registry.makeCounter(descriptor: Self.descriptor(
            "rollbacks", unit: "total", "Times the session went back to its last snapshot because a shard was lost."))
        self.rollbacks = rollbacks
        set(rollbacks, UInt64(snapshot.rollbacks))
        let held = Dictionary(snapshot.shards.map { ($0.index, $0) }, uniquingKeysWith: { _, latest in latest })
        for (index, series) in shardSeries where held[index]?.shard != series.holder {
            unregister(series)
            shardSeries[index] = nil
        }
        for (index, point) in held {
            let series = shardSeries[index] ?? makeShardSeries(index: index, holder: point.shard)
            shardSeries[index] = series
            set(series.updates, point.updates)
            set(series.bytesIn, point.bytesIn)
            set(series.bytesOut, point.bytesOut)
            series.stalenessMean.set(point.stalenessMean)
            series.stalenessMax.set(Double(point.stalenessMax))
            series.workers.set(Double(point.workers))
        }
    }

    private func makeShardSeries(index: Int, holder: String) -> ShardSeries {
        let labels = [("shard", String(index)), ("holder", holder)]
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: Self.descriptor(name, unit: "total", help), labels: labels)
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: Self.descriptor(name, unit: "", help), labels: labels)
        }
        return ShardSeries(
            holder: holder,
            updates: counter("shard_updates_applied", "Updates the shard applied to its range since the range was assigned to it."),
            bytesIn: counter("shard_frame_bytes_received",
                             "Payload bytes of protocol frames the shard received since its range was assigned to it."),
            bytesOut: counter("shard_frame_bytes_sent",
                              "Payload bytes of protocol frames the shard sent since its range was assigned to it."),
            stalenessMean: gauge("shard_staleness_mean", "Mean staleness of the slices the shard applied since its range was assigned to it."),
            stalenessMax: gauge("shard_staleness_max", "Largest staleness of a slice the shard applied since its range was assigned to it."),
            workers: gauge("shard_workers", "Workers connected to the shard."))
    }

    private func unregister(_ series: ShardSeries) {
        for counter in [series.updates, series.bytesIn, series.bytesOut] { registry.unregisterCounter(counter) }
        for gauge in [series.stalenessMean, series.stalenessMax, series.workers] { registry.unregisterGauge(gauge) }
    }

    /// Samples per second since the previous scrape; since training started for the first.
    private func recentRate(samples: UInt64, trainingSeconds: Double?) -> Double {
        guard let seconds = trainingSeconds else { return 0 }
        defer { previousScrape = (samples, seconds) }
        guard let previous = previousScrape, seconds > previous.seconds, samples >= previous.samples else {
            return seconds > 0 ? Double(samples) / seconds : 0
        }
        return Double(samples - previous.samples) / (seconds - previous.seconds)
    }

    /// Sets a counter to `value`. Counters only count up; the coordinator's figures only grow.
    private func set(_ counter: Counter, _ value: UInt64) {
        counter.set(value)
    }
}

extension Counter {
    /// Makes the counter read `value`: figures are counted elsewhere and copied in at scrape time.
    func set(_ value: UInt64) {
        reset()
        increment(by: Int64(clamping: value))
    }
}
