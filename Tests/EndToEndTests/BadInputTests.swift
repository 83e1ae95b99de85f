import Foundation
import Messages
import Testing

/// Peers that misbehave get a specific error and are logged; the session goes on for everyone else and
/// loses no work.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct BadInputTests {
    private func hello(version: UInt32 = 1) -> Envelope.Body {
        .hello(Hello(protocolVersion: version, workerName: "raw", capabilities: Capabilities(threads: 1, architectures: ["mlp"], maxUnitsAhead: 1)))
    }

    @Test func handshakeErrorsAreRefusedWhileTrainingGoesOn() throws {
        let (server, port) = try startServer(smallSession + ["--workers", "1", "--epochs", "3"])
        defer { server.end() }

        // A protocol-version mismatch, in plain words, and the connection is closed.
        let wrongVersion = try RawPeer(port: port)
        try wrongVersion.send(hello(version: 99))
        let versionError = try #require(try wrongVersion.receive(until: { $0.isError })?.errorReport)
        #expect(versionError.code == .protocolVersion)
        #expect(versionError.fatal)
        #expect(versionError.message.contains("99"))
        #expect(try wrongVersion.receive() == nil)

        // Garbage where the Hello should be.
        let garbage = try RawPeer(port: port)
        try garbage.sendFrame([0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        let garbageError = try #require(try garbage.receive(until: { $0.isError })?.errorReport)
        #expect(garbageError.code == .malformed)
        #expect(try garbage.receive() == nil)

        // A message out of order.
        let early = try RawPeer(port: port)
        try early.send(.pull(Pull(knownVersion: 0)))
        #expect(try early.receive(until: { $0.isError })?.errorReport?.code == .malformed)

        // An oversized frame: refused before anything is read or allocated, with the reason, then closed.
        let huge = try RawPeer(port: port)
        try huge.sendRaw([0xFF, 0xFF, 0xFF, 0xFF])
        let tooLarge = try #require(try huge.receive()?.body?.errorReport)
        #expect(tooLarge.code == .frameTooLarge && tooLarge.fatal)
        #expect(tooLarge.message.contains("4294967295"), "\(tooLarge.message)")
        #expect(try huge.receive() == nil)

        // The server is still serving: a real worker trains the whole session.
        let worker = try startWorker(port: port, name: "honest", ["--once"])
        defer { worker.end() }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("joins") == 1)
        let log = server.output.joined(separator: "\n")
        #expect(log.contains("protocol version 1 but the worker speaks version 99"))
        #expect(log.contains("not a valid Envelope"))
        #expect(log.contains("expected Hello as the first message"))
    }

    @Test func badUpdatesAreRefusedAndTheirUnitsTrainedByOthers() throws {
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--epochs", "3"])
        defer { server.end() }
        let worker = try startWorker(port: port, name: "honest", ["--once"])
        defer { worker.end() }
        try server.waitForLine(containing: "(honest) joined")

        // A raw peer joins as the second worker, so training starts; it then pushes bad updates.
        let rogue = try RawPeer(port: port)
        try rogue.send(hello())
        guard case .welcome(let welcome)? = try rogue.receive(until: { if case .welcome = $0 { true } else { false } }) else {
            Issue.record("no Welcome")
            return
        }
        let parameters = Int(try #require(welcome.model).parameterCount)
        guard case .workUnit(let unit)? = try rogue.receive(until: { if case .workUnit = $0 { true } else { false } }) else {
            Issue.record("no WorkUnit")
            return
        }

        try rogue.send(.push(Push(unitID: unit.unitID, baseVersion: 0, kind: .gradient, loss: 1,
                                  sampleCount: UInt32(unit.indices.count), values: [Float](repeating: 0, count: parameters - 1))))
        let dimensions = try #require(try rogue.receive(until: { $0.isError })?.errorReport)
        #expect(dimensions.code == .wrongDimensions)
        #expect(!dimensions.fatal)

        guard case .workUnit(let next)? = try rogue.receive(until: { if case .workUnit = $0 { true } else { false } }) else {
            Issue.record("no second WorkUnit after a refused push")
            return
        }
        var poisoned = [Float](repeating: 0, count: parameters)
        poisoned[parameters / 2] = .nan
        try rogue.send(.push(Push(unitID: next.unitID, baseVersion: 0, kind: .gradient, loss: 1,
                                  sampleCount: UInt32(next.indices.count), values: poisoned)))
        let finite = try #require(try rogue.receive(until: { $0.isError })?.errorReport)
        #expect(finite.code == .notFinite)

        // Then a frame that is not an Envelope at all: fatal for the rogue only.
        try rogue.sendFrame([0x0A, 0xFF])
        let malformed = try #require(try rogue.receive(until: { $0.isError })?.errorReport)
        #expect(malformed.code == .malformed && malformed.fatal)
        #expect(try rogue.receive(until: { _ in false }) == nil)

        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("samples") == 3 * 3000)
        #expect(fields.int("rejected") - fields.int("duplicates") == 2)  // backup copies may lose besides
        #expect(fields.int("requeued") >= 2)
        let log = server.output.joined(separator: "\n")
        #expect(log.contains("update has \(parameters - 1) values but the model has \(parameters) parameters"))
        #expect(log.contains("update holds NaN or infinity"))
    }
}
