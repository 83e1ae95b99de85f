import Messages
import Testing
import WireCodec

@Suite("Envelope round trips")
struct EnvelopeRoundTripTests {
    static let bodies: [Envelope.Body] = [
        .hello(Hello(protocolVersion: 1, workerName: "worker-1@host", capabilities: Capabilities(threads: 2, architectures: ["mlp", "cnn"], maxUnitsAhead: 3))),
        .welcome(Welcome(protocolVersion: 1, workerID: 9, sessionID: "s", mode: "ssp", model: ModelSpec(architecture: "mlp", hiddenSizes: [128], parameterCount: 101_770, tensors: [TensorSpec(name: "w0", shape: [784, 128], offset: 0)]), batchSize: 32, localSteps: 4, localLearningRate: 0.05, trainSamples: 60_000, heartbeatIntervalMs: 500)),
        .pull(Pull(knownVersion: 12)),
        .weights(Weights(version: 3, values: [0.5, 1, 1.5])),
        .workUnit(WorkUnit(unitID: 5, epoch: 1, indices: [0, 1, 2, 59_999], minVersion: 2)),
        .push(Push(unitID: 7, baseVersion: 3, kind: .delta, loss: 2.3, sampleCount: 32, values: [1, -2, .infinity, -0.0])),
        .pushAck(PushAck(unitID: 7, applied: false, serverVersion: 4, staleness: 1, reason: "stale")),
        .heartbeat(Heartbeat(seq: 1, unixNanos: -5)),
        .leave(Leave(reason: "bye")),
        .sessionEnd(SessionEnd(testAccuracy: 0.97, testLoss: 0.1, epochs: 3, updates: 1000, finalVersion: 1000)),
        .error(ErrorReport(code: .notFinite, message: "NaN in update", fatal: true)),
        .error(ErrorReport(code: .unrecognized(99), message: "", fatal: false)),
        .challenge(Challenge(serverNonce: Array(0..<32))),
        .challengeResponse(ChallengeResponse(clientNonce: Array(32..<64), mac: [UInt8](repeating: 0xFF, count: 32))),
        .welcome(Welcome(protocolVersion: 1, sessionID: "s", serverProof: [0, 1, 2, 255])),
    ]

    @Test("every body survives encoding and decoding", arguments: bodies.indices)
    func roundTrip(index: Int) throws {
        let body = Self.bodies[index]
        let envelope = Envelope(body: body)
        let bytes = envelope.serializedBytes()
        #expect(bytes.count == envelope.serializedSize())
        let decoded = try Envelope(serializedBytes: bytes)
        #expect(decoded == envelope)
    }

    @Test("an empty envelope encodes to no bytes")
    func emptyEnvelope() throws {
        #expect(Envelope().serializedBytes().isEmpty)
        #expect(try Envelope(serializedBytes: [UInt8]()) == Envelope())
    }

    @Test("encoding into caller memory and appending to a reused buffer give the same bytes")
    func encodingEntryPoints() {
        let envelope = Envelope(body: .push(Push(unitID: 1, values: [1, 2, 3])))
        let expected = envelope.serializedBytes()
        var buffer: [UInt8] = [0xAA]
        envelope.serialize(into: &buffer)
        #expect(Array(buffer.dropFirst()) == expected)
        let direct = [UInt8](unsafeUninitializedCapacity: envelope.serializedSize()) { memory, count in
            envelope.serialize(into: UnsafeMutableRawBufferPointer(memory))
            count = memory.count
        }
        #expect(direct == expected)
    }
}
