import Foundation
import Testing

/// Checkpoints and `--resume` with real processes on 127.0.0.1: a server killed with SIGKILL mid-session
/// carries on from its last checkpoint, and a damaged checkpoint is refused before anything is loaded.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct ResumeTests {
    /// Sync mode is deterministic for a fixed seed and worker count, so a resumed run can be compared
    /// with an uninterrupted one. Three epochs so the kill lands well inside the session.
    /// (The last --epochs given wins.)
    static let session = smallSession + ["--epochs", "3", "--mode", "sync", "--workers", "2", "--seed", "7"]
    /// The same for the example's model family (Examples/Spirals), which ps-server knows only through
    /// the model catalogue: its configuration travels opaquely in the checkpoint and comes back.
    /// Six epochs with the default exchange, so that both runs end converged (96% uninterrupted): early
    /// in training a resumed sync session's rounds may pair units differently, and on this small model
    /// that alone moves the accuracy of a half-trained network by points.
    static let spiralsSession = [
        "--model", "spirals", "--epochs", "6", "--mode", "sync", "--workers", "2", "--seed", "7", "--heartbeat-timeout", "20",
    ]

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("downpour-resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: [session, spiralsSession])
    func serverKilledMidSessionResumesAndMatchesAnUninterruptedRun(session: [String]) throws {
        // The yardstick: the same session without a crash.
        let (reference, referencePort) = try startServer(session)
        defer { reference.end() }
        let referenceWorkers = try (1...2).map { try startWorker(port: referencePort, name: "ref-\($0)", ["--once"]) }
        defer { referenceWorkers.forEach { $0.end() } }
        let uninterrupted = try summary(of: reference)

        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("session.ckpt").path
        let (first, port) = try startServer(session + ["--checkpoint", path, "--checkpoint-every", "15"])
        defer { first.end() }
        // Continuous workers: they lose the server, retry every 0.2 s, and join the resumed session.
        let workers = try (1...2).map { try startWorker(port: port, name: "w\($0)") }
        defer { workers.forEach { $0.end() } }
        // Kill it once a third of the work is checkpointed: a checkpoint line says "N/282 units".
        let line = try first.waitForLine(timeout: .seconds(120), description: "a checkpoint past a third of the units") { line in
            guard line.hasPrefix("checkpoint written"), let fraction = Self.unitsFraction(line) else { return false }
            return fraction.done * 3 >= fraction.total
        }
        first.send(SIGKILL)
        #expect(try first.waitForExit(timeout: .seconds(30)) != 0)
        #expect(!first.output.contains { $0.hasPrefix("mode=") }, "the first server must die before it finishes")
        let atKill = try #require(Self.unitsFraction(line))

        let resumed = try RunningProcess("ps-server", ["--port", String(port), "--resume", path])
        defer { resumed.end() }
        let fields = try summary(of: resumed)
        let resumedLine = try #require(resumed.output.first { $0.hasPrefix("resumed session") })
        #expect(resumedLine.contains("(resume 1)"))
        // The checkpointed units were not trained again: the resumed line starts at least from there.
        #expect(resumedLine.contains("/\(atKill.total) units done"))
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("epochs") == uninterrupted.int("epochs"))
        #expect(fields["mode"] == "sync")
        #expect(resumed.output.contains { $0.hasPrefix("model \(session.contains("spirals") ? "spirals:64,64" : "mlp:32") with") })
        let difference = abs(fields.double("test_accuracy") - uninterrupted.double("test_accuracy"))
        #expect(difference <= 0.005, "resumed \(fields["test_accuracy"] ?? "?") vs uninterrupted \(uninterrupted["test_accuracy"] ?? "?")")
        for worker in workers {
            try worker.waitForLine(containing: "session over", timeout: .seconds(60))
        }
        // The final checkpoint holds a finished session: resuming it again says so and does nothing.
        let again = try RunningProcess("ps-server", ["--port", "0", "--resume", path])
        defer { again.end() }
        #expect(try again.waitForExit(timeout: .seconds(60)) == 0)
        #expect(again.output.contains { $0.contains("finished already") })
    }

    @Test func interruptedServerWritesACheckpointThatResumes() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("interrupted.ckpt").path
        // Checkpoints by count or time would come too late: only the interrupt writes one.
        let (first, port) = try startServer(Self.session + ["--checkpoint", path, "--checkpoint-every", "100000",
                                                            "--checkpoint-interval", "3600"])
        defer { first.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "i\($0)") }
        defer { workers.forEach { $0.end() } }
        try first.waitForLine(containing: "epoch 1/3", timeout: .seconds(120))
        first.send(SIGINT)
        #expect(try first.waitForExit(timeout: .seconds(30)) == 130)
        #expect(first.output.contains { $0.contains("checkpoint written to \(path); continue with --resume \(path)") })

        let resumed = try RunningProcess("ps-server", ["--port", String(port), "--resume", path])
        defer { resumed.end() }
        let fields = try summary(of: resumed)
        #expect(fields.int("units") == fields.int("units_expected"))
        // At least the first epoch was kept: the resumed session did not start from zero.
        let resumedLine = try #require(resumed.output.first { $0.hasPrefix("resumed session") })
        let done = try #require(Self.unitsFraction(resumedLine))
        #expect(done.done * 3 >= done.total)
    }

    @Test func damagedCheckpointsAreRefusedWithTheReason() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("good.ckpt").path
        let (server, port) = try startServer(Self.session + ["--checkpoint", path, "--epochs", "1"])
        defer { server.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "d\($0)", ["--once"]) }
        defer { workers.forEach { $0.end() } }
        _ = try summary(of: server)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))

        var flipped = good
        flipped[flipped.count / 2] ^= 0x01
        let cases: [(name: String, bytes: Data, message: String)] = [
            ("truncated", good.prefix(good.count - 100), "truncated: the header promises \(good.count) bytes but the file has \(good.count - 100)"),
            ("flipped", flipped, "corrupt: checksum mismatch"),
            ("other", Data("not a checkpoint at all".utf8), "not a Downpour checkpoint"),
        ]
        for (name, bytes, message) in cases {
            let damaged = directory.appendingPathComponent("\(name).ckpt").path
            try bytes.write(to: URL(fileURLWithPath: damaged))
            let refused = try RunningProcess("ps-server", ["--port", "0", "--resume", damaged])
            defer { refused.end() }
            #expect(try refused.waitForExit(timeout: .seconds(60)) != 0, "\(name)")
            let said = refused.output.joined(separator: "\n")
            #expect(said.contains("cannot resume from \(damaged): \(message)"), "\(name): \(said)")
            #expect(!said.contains("listening on"), "\(name): a damaged checkpoint must not start a session")
        }
    }

    /// "12/282" in a line: units done and the session's total.
    static func unitsFraction(_ line: String) -> (done: Int, total: Int)? {
        guard let range = line.range(of: #"(\d+)/(\d+) units"#, options: .regularExpression) else { return nil }
        let parts = line[range].split(separator: " ")[0].split(separator: "/")
        guard parts.count == 2, let done = Int(parts[0]), let total = Int(parts[1]) else { return nil }
        return (done, total)
    }
}
