import Foundation
import Testing

/// `ps-server --metrics-port`: a real session scraped over HTTP/1.1 with a plain blocking socket.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct MetricsEndpointTests {
    /// Starts `ps-server` with metrics on a free port; returns it with its protocol and metrics ports.
    static func startServerWithMetrics(_ arguments: [String]) throws -> (server: RunningProcess, port: Int, metricsPort: Int) {
        let (server, port) = try startServer(["--metrics-port", "0"] + arguments)
        let line = try server.waitForLine(containing: "metrics on http://127.0.0.1:", timeout: .seconds(30))
        let afterColon = line.split(separator: "127.0.0.1:", maxSplits: 1).last ?? ""
        let metricsPort = Int(afterColon.prefix { $0.isNumber }) ?? 0
        try #require(metricsPort > 0 && metricsPort != port, "no metrics port in \"\(line)\"")
        return (server, port, metricsPort)
    }

    /// `ps-worker --metrics-port`: answered by the worker's loop while it waits for a server, through a
    /// session and after it: what a Kubernetes liveness probe asks.
    @Test func aWorkerAnswersWhileWaitingTrainingAndAfter() throws {
        let port = try freePort()
        let worker = try RunningProcess("ps-worker", ["127.0.0.1", String(port), "0.2", "--name", "probed", "--metrics-port", "0",
                                                      "--models", "mlp"])
        defer { worker.end() }
        let line = try worker.waitForLine(containing: "metrics on http://127.0.0.1:", timeout: .seconds(60))
        let metricsPort = Int((line.split(separator: "127.0.0.1:", maxSplits: 1).last ?? "").prefix { $0.isNumber }) ?? 0
        try #require(metricsPort > 0, "no metrics port in \"\(line)\"")
        try worker.waitForLine(containing: "not available", timeout: .seconds(30))
        let waiting = try HTTPTestClient.get(port: metricsPort, "/metrics")
        #expect(waiting.status == 200)
        #expect(waiting.metric("downpour_worker_up") == 1)
        #expect(waiting.metric("downpour_worker_in_session") == 0)

        let server = try RunningProcess("ps-server", ["--port", String(port)] + smallSession + ["--workers", "1"])
        defer { server.end() }
        _ = try summary(of: server)
        try worker.waitForLine(containing: "waiting for the next session", timeout: .seconds(60))
        let after = try HTTPTestClient.get(port: metricsPort, "/metrics")
        #expect(after.metric("downpour_worker_sessions_completed_total") == 1)
        let pushed = after.metric("downpour_worker_units_pushed_total")
        let applied = after.metric("downpour_worker_units_applied_total")
        #expect(pushed > 0 && applied > 0 && applied <= pushed, "pushed \(pushed), applied \(applied)")
        #expect(after.metric("downpour_worker_in_session") == 0)
    }

    @Test func aScrapeTwiceDuringASessionShowsTrainingMove() throws {
        let (server, port, metricsPort) = try Self.startServerWithMetrics([
            "--train-samples", "6000", "--test-samples", "1000", "--hidden", "32", "--batch-size", "16",
            "--epochs", "2", "--workers", "1", "--mode", "async",
        ])
        defer { server.end() }

        let idle = try RawPeer(port: metricsPort)
        let before = try HTTPTestClient.get(port: metricsPort, "/metrics")
        #expect(before.status == 200)
        #expect(before.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(before.metric("downpour_updates_applied_total") == 0)
        #expect(before.metric("downpour_active_workers") == 0)

        // Slowed down, so the session lasts several seconds in a debug build.
        let worker = try startWorker(port: port, name: "scraped", ["--once", "--inject", "delay=5ms"])
        defer { worker.end() }
        try server.waitForLine(containing: "training started")
        let first = try HTTPTestClient.get(port: metricsPort, "/metrics")
        #expect(first.metric("downpour_active_workers") == 1)
        #expect(first.metric("downpour_worker_joins_total") == 1)
        try server.waitForLine(containing: "epoch 1/2")
        let second = try HTTPTestClient.get(port: metricsPort, "/metrics")
        #expect(second.status == 200)
        for name in ["downpour_updates_applied_total", "downpour_samples_trained_total", "downpour_frame_bytes_received_total",
                     "downpour_frame_bytes_sent_total", "downpour_update_staleness_count", "downpour_model_version"] {
            #expect(second.metric(name) > first.metric(name), "\(name) did not move: \(first.metric(name)) then \(second.metric(name))")
        }
        #expect(second.metric("downpour_epochs_completed") >= 1)
        #expect(second.metric("downpour_samples_per_second") > 0)
        #expect(second.metric("downpour_update_staleness_count") == second.metric(#"downpour_update_staleness_bucket{le="+Inf"}"#))
        // Async mode: every applied update is one observation of its staleness.
        #expect(second.metric("downpour_update_staleness_count") == second.metric("downpour_updates_applied_total"))
        #expect(second.metric(#"downpour_updates_rejected_total{reason="stale"}"#) == 0)
        // Bytes by encoding (the default exchange): sign pushes, then q8 weights once and sign deltas.
        let pushed = second.metric(#"downpour_push_values_bytes_total{encoding="sign"}"#)
        let (whole, deltas) = (second.metric(#"downpour_weights_sent_bytes_total{encoding="q8"}"#),
                               second.metric(#"downpour_weights_sent_bytes_total{encoding="delta-sign"}"#))
        #expect(pushed > first.metric(#"downpour_push_values_bytes_total{encoding="sign"}"#), "sign push bytes did not move")
        #expect(whole > 0 && deltas > 0, "q8 weights \(whole), sign deltas \(deltas)")
        #expect(pushed + whole + deltas <= second.metric("downpour_frame_bytes_received_total")
            + second.metric("downpour_frame_bytes_sent_total"), "more bytes by encoding than in frames")
        // The test accuracy of epoch 1 arrives after its evaluation; the epoch line prints it.
        #expect((0.3...1).contains(second.metric("downpour_test_accuracy")))
        #expect(second.metric("downpour_test_loss") > 0)

        // Bad requests get their status and do not disturb the session.
        #expect(try HTTPTestClient.get(port: metricsPort, "/").status == 404)
        #expect(try HTTPTestClient.request(port: metricsPort, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status == 405)
        #expect(try HTTPTestClient.request(port: metricsPort, "GARBAGE\r\n\r\n").status == 400)
        let oversized = "GET /metrics HTTP/1.1\r\nX-Padding: \(String(repeating: "a", count: 9000))\r\n\r\n"
        #expect(try HTTPTestClient.request(port: metricsPort, oversized).status == 431)
        withExtendedLifetime(idle) {}

        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("samples") == 2 * 6000)
        #expect(try worker.waitForExit(timeout: .seconds(60)) == 0)
    }

    @Test func theFlagIsDocumentedAndChecked() throws {
        let help = try RunningProcess("ps-server", ["--help"])
        #expect(try help.waitForExit(timeout: .seconds(30)) == 0)
        #expect(help.output.joined(separator: "\n").contains("--metrics-port"))
        let bad = try RunningProcess("ps-server", ["--metrics-port", "70000"])
        #expect(try bad.waitForExit(timeout: .seconds(30)) != 0)
        #expect(bad.output.contains { $0.contains("--metrics-port must be 0...65535") }, "\(bad.output)")
    }

    @Test func aMetricsPortInUseStopsTheServerWithAClearMessage() throws {
        let (first, _, metricsPort) = try Self.startServerWithMetrics(smallSession + ["--workers", "1"])
        defer { first.end() }
        let second = try RunningProcess("ps-server", ["--port", "0", "--metrics-port", String(metricsPort)] + smallSession)
        defer { second.end() }
        #expect(try second.waitForExit(timeout: .seconds(120)) != 0)
        #expect(second.output.contains { $0.contains("cannot serve metrics on 127.0.0.1:\(metricsPort)") }, "\(second.output)")
    }

    @Test func anIdleMetricsConnectionIsClosedByTheServer() throws {
        let (server, _, metricsPort) = try Self.startServerWithMetrics(smallSession + ["--workers", "1"])
        defer { server.end() }
        // Nothing sent: the server's idle timeout (5 s) closes the connection; the read sees end of file.
        let idle = try RawPeer(port: metricsPort, timeout: .seconds(30))
        let started = Date()
        #expect(try idle.readToEnd().isEmpty)
        #expect(Date().timeIntervalSince(started) < 25)
        // The endpoint still answers.
        #expect(try HTTPTestClient.get(port: metricsPort, "/metrics").status == 200)
    }
}

/// A blocking HTTP/1.1 client over a raw socket, enough for one request per connection.
enum HTTPTestClient {
    /// A parsed response.
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: String

        /// The value of the sample line `name value`, or -1 when there is none.
        func metric(_ name: String) -> Double {
            for line in body.split(separator: "\n") where line.hasPrefix(name + " ") {
                return Double(line.dropFirst(name.count + 1)) ?? -1
            }
            return -1
        }
    }

    /// Sends `request` as is on a new connection and parses the response.
    static func request(port: Int, _ request: String) throws -> Response {
        let client = try RawPeer(port: port)
        try client.sendRaw(Array(request.utf8))
        let bytes = try client.readToEnd()
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? -1
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = parts.dropFirst().joined(separator: "\r\n\r\n")
        if let length = headers["content-length"].flatMap(Int.init) {
            #expect(body.utf8.count == length, "Content-Length \(length) but \(body.utf8.count) body bytes")
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// `GET path` with the headers Prometheus sends.
    static func get(port: Int, _ path: String) throws -> Response {
        try request(port: port, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: Prometheus/2.51.0\r\n"
            + "Accept: text/plain;version=0.0.4;q=0.9,*/*;q=0.1\r\n\r\n")
    }
}
