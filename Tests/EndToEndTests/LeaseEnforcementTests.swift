import Foundation
import Messages
import ParameterServer
import Testing

/// Workers that break the rules of leases (issue #11), against a live session beside two honest
/// `ps-worker`s: one pushes for units it was never given, one heartbeats but never pushes. Neither may
/// change what is trained, and neither may hold the session up.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LeaseEnforcementTests {
    /// The honest workers wait 20 ms per unit, so the session lasts long enough for the rogue peer to act
    /// while it trains.
    private static let honestWorker = ["--once", "--inject", "delay=20ms"]

    @Test func aThousandPushesForUnitsNotLeasedChangeNothing() throws {
        let (server, port) = try startServer(smallSession + ["--workers", "3", "--epochs", "3"])
        defer { server.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "honest-\($0)", Self.honestWorker) }
        defer { workers.forEach { $0.end() } }

        let rogue = try RawPeer(port: port)
        let welcome = try #require(try rogue.join(as: "rogue"))
        let parameters = Int(try #require(welcome.model).parameterCount)
        try server.waitForLine(containing: "training started", timeout: .seconds(120))
        // The units leased to the rogue (2, --units-ahead) come with training's start; it will get no
        // more before they expire, 5 s on, and the attack is over long before.
        var leasedToRogue: Set<UInt64> = []
        while leasedToRogue.count < 2, rogue.isReadable(within: .seconds(10)) {
            if case .workUnit(let leased)? = try rogue.receive()?.body { leasedToRogue.insert(leased.unitID) }
        }
        try #require(leasedToRogue.count == 2)
        let units = 3 * ((3000 + 31) / 32)
        var generator = SystemRandomNumberGenerator()
        var answers: [PushAck] = []
        for attempt in 0..<1_000 {
            // Foreign, queued, finished and future units, and ids past the session's end; never its own.
            var unit = UInt64.random(in: 0..<UInt64(units + 50), using: &generator)
            while leasedToRogue.contains(unit) { unit += 1 }
            // Values that would wreck the model if a single one were applied.
            try rogue.send(.push(Push(unitID: unit, baseVersion: 0, kind: .gradient, loss: 0.1, sampleCount: 32,
                                      values: [Float](repeating: 1e4, count: parameters))))
            // Read what came back so far: acks, and the units the server leases the rogue (never pushed).
            while rogue.isReadable(within: attempt == 999 ? .seconds(10) : .zero), answers.count < 1_000 {
                guard let envelope = try rogue.receive() else { break }
                switch envelope.body {
                case .pushAck(let ack)?: answers.append(ack)
                case .workUnit(let leased)?: leasedToRogue.insert(leased.unitID)
                default: break
                }
            }
        }
        #expect(answers.count == 1_000, "the server answered \(answers.count) of 1,000 pushes")
        #expect(answers.allSatisfy { !$0.applied }, "a push for a unit the rogue did not hold was applied")
        let reasons = Set(answers.map { String($0.reason.prefix { $0 != ":" }) })
        #expect(reasons.isSubset(of: ["not_leased", "duplicate", "unknown_unit", "lease_expired"]), "\(reasons)")
        #expect(reasons.contains("not_leased") && reasons.contains("unknown_unit"))
        try rogue.send(.leave(Leave(reason: "done attacking")))

        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("applied_twice") == 0)
        #expect(fields.int("rejected") >= 1_000)
        // Exactly the session's samples were trained, once each, and training went as in a clean session.
        #expect(fields.int("samples") == 3 * 3000)
        #expect(fields.int("updates") == fields.int("units_expected"))
        #expect(fields.double("test_accuracy") > 0.6)
        try server.waitForLine(containing: "(rogue at 127.0.0.1:", timeout: .seconds(5))
        for worker in workers { #expect(try worker.waitForExit(timeout: .seconds(60)) == 0) }
    }

    @Test func aWorkerThatHeartbeatsButNeverPushesLosesItsUnitsAndHoldsNothingUp() throws {
        // Four epochs of 94 units at 20 ms or more each: well past the 2 s lease floor.
        let (server, port) = try startServer(smallSession + ["--workers", "3", "--epochs", "4", "--lease-floor", "2"])
        defer { server.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "honest-\($0)", Self.honestWorker) }
        defer { workers.forEach { $0.end() } }

        // The stuck peer keeps its connection alive with heartbeats until the session ends, and never pushes.
        let stuck = try RawPeer(port: port)
        _ = try #require(try stuck.join(as: "stuck"))
        var leased = 0
        var lastHeartbeat = ContinuousClock.now
        var sequence: UInt64 = 0
        sessionLoop: while true {
            if stuck.isReadable(within: .milliseconds(500)) {
                guard let envelope = try stuck.receive() else { break sessionLoop }
                switch envelope.body {
                case .workUnit?: leased += 1
                case .sessionEnd?: break sessionLoop
                default: break
                }
            }
            if ContinuousClock.now - lastHeartbeat >= .seconds(1) {
                sequence += 1
                try stuck.send(.heartbeat(Heartbeat(seq: sequence, unixNanos: 0)))
                lastHeartbeat = .now
            }
        }
        let fields = try summary(of: server)
        #expect(leased >= 2, "the stuck worker was leased \(leased) unit(s)")
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("expired") >= 2)
        #expect(fields.int("applied_twice") == 0)
        let expiry = try server.waitForLine(containing: "(stuck) expired after", timeout: .seconds(5))
        #expect(expiry.contains("unit requeued") || expiry.contains("backup copy is still out"), "\(expiry)")
        for worker in workers { #expect(try worker.waitForExit(timeout: .seconds(60)) == 0) }
    }

    @Test func aWorkerGivesUpOnAServerThatFallsSilentWithinTwoHeartbeatIntervals() throws {
        // One worker of two: the server waits for the second, sending nothing but heartbeats.
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--heartbeat-interval", "0.5"])
        defer { server.end() }
        let worker = try startWorker(port: port, name: "watcher")
        defer { worker.end() }
        try worker.waitForLine(containing: "joined session", timeout: .seconds(60))
        // Long enough that only heartbeats can have kept the worker from giving up by now.
        try server.waitForLine(containing: "waiting for 1 more worker", timeout: .seconds(10))
        Thread.sleep(forTimeInterval: 1.5)  // three heartbeat intervals of a live, quiet server
        #expect(!worker.output.contains { $0.contains("taking it for dead") }, "the worker gave up on a live server")

        server.send(SIGSTOP)  // hung: the socket stays open, nothing more is sent
        defer { server.send(SIGCONT) }
        let stopped = ContinuousClock.now
        let line = try worker.waitForLine(containing: "taking it for dead", timeout: .seconds(20))
        let waited = ContinuousClock.now - stopped
        // The worker measures the silence itself: at most two intervals after the last heartbeat, which
        // came at most one interval before the stop.
        let silence = Double(line.split(separator: "nothing for ").last?.prefix { $0 != " " } ?? "") ?? -1
        #expect(silence >= 1.0 && silence < 1.3, "reported silence \(silence) s: \(line)")
        #expect(waited < .seconds(5), "took \(waited) to notice")
        try worker.waitForLine(containing: "connecting to 127.0.0.1:\(port)", timeout: .seconds(10))
    }
}
