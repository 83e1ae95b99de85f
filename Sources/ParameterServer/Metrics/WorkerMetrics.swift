import Prometheus
import Reactor

/// A worker's Prometheus metrics, in the registry and with the naming the server's use, copied from
/// the worker at scrape time. That a scrape is answered at all says the worker's event loop is alive,
/// whether it trains or waits for a server: what a liveness probe asks.
///
/// - Warning: Loop thread only.
final class WorkerMetrics {
    let registry = PrometheusCollectorRegistry()
    private let up: Gauge
    private let connected: Gauge
    private let inSession: Gauge
    private let sessionsCompleted: Counter
    private let unitsPushed: Counter
    private let unitsApplied: Counter

    init() {
        let registry = registry
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: SessionMetrics.descriptor(name, unit: "", help))
        }
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: SessionMetrics.descriptor(name, unit: "total", help))
        }
        up = gauge("worker_up", "1 while the worker's event loop answers.")
        connected = gauge("worker_connected", "1 while connected to a server.")
        inSession = gauge("worker_in_session", "1 while joined to a session.")
        sessionsCompleted = counter("worker_sessions_completed", "Sessions seen to their end.")
        unitsPushed = counter("worker_units_pushed", "Work units trained and pushed.")
        unitsApplied = counter("worker_units_applied", "Pushes the server applied.")
    }

    /// The exposition of `worker`'s figures now.
    func exposition(of worker: WorkerRuntime) -> [UInt8] {
        up.set(1.0)
        connected.set(worker.isConnected ? 1.0 : 0.0)
        inSession.set(worker.isInSession ? 1.0 : 0.0)
        sessionsCompleted.set(UInt64(worker.sessionsCompleted))
        unitsPushed.set(UInt64(worker.unitsPushed))
        unitsApplied.set(UInt64(worker.unitsApplied))
        return registry.emitToBuffer()
    }

    /// Serves `GET /metrics` for `worker` on `loop` at `host`:`port` (0 picks a free port).
    static func serve(_ worker: WorkerRuntime, loop: EventLoop, host: String, port: Int) throws -> MetricsHTTPServer {
        let metrics = WorkerMetrics()
        return try MetricsHTTPServer(loop: loop, host: host, port: port) { [unowned worker] in metrics.exposition(of: worker) }
    }
}
