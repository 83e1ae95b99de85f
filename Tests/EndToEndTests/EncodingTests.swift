import Foundation
import Messages
import Testing

/// ps-server's default exchange (local steps, sign-compressed pushes, q8 weights) against real
/// processes: negotiation with workers that offer everything and with ones that offer only fp32, the
/// bytes it saves, and pushes whose encoded values are wrong.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct EncodingTests {
    /// The MLP 784-32-10 of `compressedSession`.
    private static let parameters = 25_450

    @Test(arguments: ["async", "sync", "ssp"])
    func theDefaultExchangeTrainsOnAFractionOfTheBytes(mode: String) throws {
        let (server, port) = try startServer(compressedSession + [
            "--mode", mode, "--workers", "2", "--epochs", "3", "--eval-every", "5", "--target-accuracy", "0.5",
        ])
        defer { server.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "\(mode)-\($0)", ["--once"]) }
        defer { workers.forEach { $0.end() } }
        try server.waitForLine(containing: "pushes sign(4096), weights q8(256)", timeout: .seconds(10))
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("applied_twice") == 0)
        #expect(fields.double("test_accuracy") > 0.6)
        // fp32 at H = 1 moves two models per 32-sample unit: 8 x 25,450 / 32 = 6,362 bytes per sample.
        let fp32 = 8.0 * Double(Self.parameters) / 32
        #expect(fields.double("bytes_per_sample") < fp32 / 20, "bytes_per_sample=\(fields["bytes_per_sample"] ?? "?")")
        #expect(!server.output.contains { $0.contains("does not offer") })
        // Evaluated every 5 updates besides epoch ends; the first to reach 50% is the time to target.
        #expect(server.output.contains { $0.hasPrefix("evaluation at update 5 ") })
        let toTarget = fields.double("seconds_to_target")
        #expect(toTarget > 0 && toTarget <= fields.double("seconds"), "seconds_to_target=\(fields["seconds_to_target"] ?? "?")")
    }

    /// `--eval-interval S` takes a snapshot each time S more seconds of training have passed: some in a
    /// session of several intervals, never more than the intervals it trained for.
    @Test func evaluationsFallDueBySecondsOfTrainingToo() throws {
        let interval = 0.01
        let (server, port) = try startServer(compressedSession + ["--workers", "1", "--eval-interval", "\(interval)"])
        defer { server.end() }
        // 5 ms more per unit: at least 0.1 s of training on any machine, 10 intervals.
        let worker = try startWorker(port: port, name: "timed", ["--once", "--inject", "delay=5ms"])
        defer { worker.end() }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        let periodic = server.output.filter { $0.hasPrefix("evaluation at update ") }
        let seconds = fields.double("seconds")
        #expect(seconds > 2 * interval, "too fast to tell: seconds=\(seconds)")
        #expect(periodic.count >= 1, "\(server.output.suffix(20).joined(separator: "\n"))")
        #expect(periodic.count <= Int(seconds / interval) + 1, "\(periodic.count) evaluations in \(seconds) s")
    }

    @Test func aWorkerThatOffersOnlyFP32TrainsBesideOneThatCompresses() throws {
        let (server, port) = try startServer(compressedSession + ["--workers", "2", "--epochs", "3"])
        defer { server.end() }
        let plain = try startWorker(port: port, name: "plain", ["--once", "--encodings", "fp32"])
        let compressing = try startWorker(port: port, name: "compressing", ["--once"])
        defer { [plain, compressing].forEach { $0.end() } }
        try server.waitForLine(containing: "(plain at 127.0.0.1:", timeout: .seconds(60))
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("rejected") == fields.int("duplicates"))
        #expect(fields.double("test_accuracy") > 0.6)
        let log = server.output.joined(separator: "\n")
        #expect(log.contains("does not offer sign; its pushes travel as fp32"))
        #expect(log.contains("does not offer q8; its weights travel as fp32"))
        for worker in [plain, compressing] {
            #expect(try worker.waitForExit(timeout: .seconds(60)) == 0)
            #expect(worker.output.contains { $0.contains("applied") && $0.contains("session over") })
        }
    }

    @Test func encodedValuesThatAreWrongAreRefusedAndTheirUnitTrainedByOthers() throws {
        let (server, port) = try startServer(compressedSession + ["--workers", "2", "--epochs", "3"])
        defer { server.end() }
        // The rogue offers sign, so its pushes are sign-encoded; it sends a payload one byte short.
        let rogue = try RawPeer(port: port)
        var capabilities = Capabilities()
        capabilities.encodings = ["sign"]
        try rogue.send(.hello(Hello(protocolVersion: 1, workerName: "rogue", capabilities: capabilities)))
        let welcome = try #require(try rogue.receive(until: { if case .welcome = $0 { true } else { false } }).flatMap {
            if case .welcome(let welcome) = $0 { welcome } else { nil }
        })
        #expect(welcome.pushEncoding?.name == "sign")
        let honest = try startWorker(port: port, name: "honest", ["--once"])
        defer { honest.end() }
        let unit = try #require(try rogue.receive(until: { if case .workUnit = $0 { true } else { false } }).flatMap {
            if case .workUnit(let unit) = $0 { unit } else { nil }
        })
        // sign(4096) of 25,450 values: 7 blocks of a 4-byte scale and their bits.
        let blocks = (Self.parameters + 4095) / 4096
        let size = blocks * 4 + (Self.parameters + 7) / 8
        var push = Push(unitID: unit.unitID, baseVersion: 0, kind: .delta, loss: 0.5, sampleCount: UInt32(unit.indices.count))
        push.encodedValues = [UInt8](repeating: 0, count: size - 1)
        try rogue.send(.push(push))
        let refusal = try #require(try rogue.receive(until: { $0.isError })?.errorReport)
        #expect(refusal.code == .badEncoding && !refusal.fatal)
        #expect(refusal.message.contains("Push.encoded_values"), "\(refusal.message)")
        try rogue.send(.leave(Leave(reason: "done")))

        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields["rejected_by_reason"]?.contains("bad_encoding:1") == true, "\(fields["rejected_by_reason"] ?? "")")
        try server.waitForLine(containing: "(rogue at 127.0.0.1:", timeout: .seconds(5))
    }
}
