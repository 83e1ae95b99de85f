import Messages
import Reactor

extension ParameterServerRuntime {
    /// Serves the session's Prometheus metrics at `GET /metrics` on `host`:`port`, on the session's loop.
    ///
    /// Call once, after ``start()``. The server closes when the loop stops.
    ///
    /// ```swift
    /// try server.start()
    /// let metrics = try server.startMetrics(host: "127.0.0.1", port: 9100)
    /// print("metrics on http://\(metrics.localAddress)/metrics")
    /// ```
    ///
    /// - Parameters:
    ///   - host: The address to bind (the server's own host).
    ///   - port: The port, or 0 for a free one.
    ///   - configuration: Bounds on metrics requests and connections.
    /// - Returns: The metrics HTTP server, for its address.
    /// - Throws: `ReactorError` if the address cannot be bound.
    /// - Warning: Loop thread only (or before the loop first runs).
    @discardableResult
    public func startMetrics(host: String, port: Int,
                             configuration: MetricsHTTPServer.Configuration = .init()) throws -> MetricsHTTPServer {
        precondition(metricsServer == nil, "startMetrics called twice")
        let metrics = SessionMetrics()
        let server = try MetricsHTTPServer(loop: loop, host: host, port: port, configuration: configuration) { [unowned self] in
            metrics.exposition(metricsSnapshot)
        }
        self.metrics = metrics
        metricsServer = server
        return server
    }

    /// The session's figures now, for a scrape.
    var metricsSnapshot: MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        snapshot.statistics = coordinator.statistics
        snapshot.activeWorkers = coordinator.activeWorkers.count
        snapshot.modelVersion = coordinator.version
        snapshot.epochsCompleted = coordinator.ledger.finishedEpochs
        snapshot.lastEvaluation = lastEvaluation
        snapshot.trainingSeconds = startedAt.map { _ in trainingSeconds }
        snapshot.uptimeSeconds = (clock.now - createdAt).seconds
        snapshot.checkpointAgeSeconds = lastCheckpointAt.map { (clock.now - $0).seconds }
        snapshot.checkpointsWritten = checkpointsWritten
        if configuration.shards > 0 {
            snapshot.sharded = true
            snapshot.shards = shardPoints()
            snapshot.rollbacks = shards.rollbacks
        }
        return snapshot
    }
}
