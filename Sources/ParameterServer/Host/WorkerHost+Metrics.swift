import Reactor

extension WorkerHost {
    /// The worker's figures in Prometheus's text format, rendered on its event loop: that a scrape is
    /// answered at all says the loop is alive, whether the worker trains or waits for a server.
    static func exposition(of worker: WorkerRuntime) -> [UInt8] {
        let figures: [(name: String, help: String, type: String, value: Int)] = [
            ("downpour_worker_up", "1 while the worker's event loop answers.", "gauge", 1),
            ("downpour_worker_connected", "1 while connected to a server.", "gauge", worker.isConnected ? 1 : 0),
            ("downpour_worker_in_session", "1 while joined to a session.", "gauge", worker.isInSession ? 1 : 0),
            ("downpour_worker_sessions_completed_total", "Sessions seen to their end.", "counter", worker.sessionsCompleted),
            ("downpour_worker_units_pushed_total", "Work units trained and pushed.", "counter", worker.unitsPushed),
            ("downpour_worker_units_applied_total", "Pushes the server applied.", "counter", worker.unitsApplied),
        ]
        let text = figures.map { "# HELP \($0.name) \($0.help)\n# TYPE \($0.name) \($0.type)\n\($0.name) \($0.value)\n" }.joined()
        return Array(text.utf8)
    }

    /// Serves `GET /metrics` for `worker` on its loop at `host`:`port` (0 picks a free port).
    func startMetrics(for worker: WorkerRuntime, loop: EventLoop, host: String, port: Int) throws -> MetricsHTTPServer {
        try MetricsHTTPServer(loop: loop, host: host, port: port) { [unowned worker] in Self.exposition(of: worker) }
    }
}
