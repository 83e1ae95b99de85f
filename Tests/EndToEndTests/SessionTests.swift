import Foundation
import Testing

/// Real `ps-server` and `ps-worker` processes on 127.0.0.1, each test bounded in time, every process
/// ended by PID.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SessionTests {
    @Test(arguments: ["async", "sync", "ssp"])
    func everyModeCompletesASession(mode: String) throws {
        let (server, port) = try startServer(smallSession + ["--mode", mode, "--workers", "2", "--max-staleness", "2"])
        defer { server.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "\(mode)-\($0)", ["--once"]) }
        defer { workers.forEach { $0.end() } }
        let fields = try summary(of: server)
        #expect(fields["mode"] == mode)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("samples") == 2 * 3000)
        #expect(fields.double("test_accuracy") > 0.6)
        #expect(fields.int("applied_twice") == 0)
        #expect(fields.int("rejected") == fields.int("duplicates"), "only backup copies may lose")
        // fp32 at H = 1: every 32-sample unit pushes the whole model (MLP 784-32-10: 25,450 floats) and
        // pulls it at most once more, so between 1 and 2 models' bytes cross per unit.
        let modelBytes = 4.0 * 25_450, perUnit = fields.double("bytes_per_sample") * 32
        #expect(perUnit > modelBytes && perUnit < 2.2 * modelBytes, "bytes_per_sample=\(fields["bytes_per_sample"] ?? "?")")
        #expect(fields.int("bytes_in") + fields.int("bytes_out") > 0)
        for worker in workers {
            #expect(try worker.waitForExit(timeout: .seconds(60)) == 0)
            #expect(worker.output.contains { $0.contains("session over: test accuracy") })
        }
    }

    @Test func workersStartedBeforeTheServerJoinTwoSessionsInARow() throws {
        let port = try freePort()
        let workers = try (1...2).map { try startWorker(port: port, name: "early-\($0)") }
        defer { workers.forEach { $0.end() } }
        for worker in workers {
            try worker.waitForLine(containing: "not available", timeout: .seconds(120))
        }
        for session in 1...2 {
            let server = try RunningProcess("ps-server", ["--port", String(port), "--workers", "2"] + smallSession)
            defer { server.end() }
            let fields = try summary(of: server)
            #expect(fields.int("units") == fields.int("units_expected"), "session \(session)")
            #expect(fields.int("joins") == 2, "session \(session)")
        }
        for worker in workers {
            // Continuous mode: both sessions seen, and the worker is still running, waiting for a third.
            try worker.waitForLines(containing: "session over", count: 2)
            worker.send(SIGINT)
            #expect(try worker.waitForExit(timeout: .seconds(30)) == 0)
        }
    }

    @Test func killedWorkerAndANewcomerStillTrainEverySampleOncePerEpoch() throws {
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("downpour-report-\(getpid()).html")
        defer { try? FileManager.default.removeItem(at: report) }
        let (server, port) = try startServer([
            "--train-samples", "6000", "--test-samples", "1000", "--hidden", "32", "--batch-size", "16",
            "--epochs", "3", "--workers", "2", "--mode", "async", "--report", report.path,
            "--uncompressed",  // many small units, so that the churn lands mid-session
        ])
        defer { server.end() }
        let first = try startWorker(port: port, name: "doomed")
        // The steady worker is slowed down so the session outlasts the newcomer's start-up.
        let second = try startWorker(port: port, name: "steady", ["--inject", "delay=10ms"])
        defer { first.end(); second.end() }
        try server.waitForLine(containing: "training started")
        let newcomer = try startWorker(port: port, name: "newcomer", ["--inject", "delay=10ms"])
        defer { newcomer.end() }
        try first.waitForLine(containing: "joined session")
        first.send(SIGKILL)
        try server.waitForLine(containing: "(doomed) left")

        // Ctrl-C mid-session: the worker says goodbye, the server requeues its units at once.
        try server.waitForLine(containing: "(newcomer) joined")
        try newcomer.waitForLine(containing: "joined session")
        newcomer.send(SIGINT)
        try server.waitForLine(containing: "(newcomer) left: said goodbye (interrupted)")
        #expect(try newcomer.waitForExit(timeout: .seconds(30)) == 0)
        let fields = try summary(of: server)
        // Every unit was applied exactly once, whatever the churn: 3 epochs x 6000 samples.
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("samples") == 3 * 6000)
        #expect(fields.int("requeued") >= 1)
        #expect(fields.int("joins") == 3)
        #expect(fields.int("leaves") == 2)
        #expect(fields.double("test_accuracy") > 0.75)

        // The run report: one SVG per chart, with this run's workers and results in it.
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(html.components(separatedBy: "<svg").count - 1 == 8)
        #expect(html.contains("over protocol bytes in and out") && html.contains("bytes per trained sample"))
        #expect(html.contains("doomed") && html.contains("newcomer") && html.contains("steady"))
        // Two departures: the killed worker (its connection closed or reset) and the one that said goodbye.
        #expect(html.components(separatedBy: "<td>left: ").count - 1 == 2)
        #expect(html.contains("left: said goodbye (interrupted)"))
        #expect(html.contains(fields["test_accuracy"] ?? "missing"))
        #expect(!html.contains("<script") && !html.contains("src="))  // self-contained: no scripts, no assets
    }
}
