import Foundation
import Learning
import Messages
import Reactor
import TensorEncoding
import Testing
@testable import ParameterServer

/// A real `ShardRuntime` on a loop of its own, against a scripted server and scripted workers on
/// another loop of this process: the shard offers itself, takes a range, admits workers by ticket,
/// serves the range's weights, stages slices, applies them when told, and refuses what is wrong.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ShardRuntimeTests {
    static let parameterCount = 10
    static let range = ShardMap.Range(index: 1, offset: 4, count: 6)
    static let sessionID = "shard-test"
    static let worker: UInt64 = 3

    static let model = ModelConfiguration(family: "linear", options: "10")
    static var spec: ModelSpec {
        ModelSpec(configuration: model, layout: [TensorView(name: "w", shape: [parameterCount], offset: 0)])
    }

    static func recipe(mode: TrainingMode = .async) -> SessionRecipe {
        SessionRecipe(
            sessionID: sessionID, policy: SessionPolicy(mode: mode), epochs: 1, batchSize: 8, localSteps: 1,
            localLearningRate: 0.05, trainSamples: 100, testSamples: 10, seed: 1, model: model, optimizer: .nesterov,
            learningRate: 0.1, momentum: 0.9, weightDecay: 0, schedule: .cosine, scheduleSteps: 50)
    }

    /// The store the server would hold for the range: the recipe's optimiser and schedule, from `parameters`.
    static func store(_ parameters: [Float], recipe: SessionRecipe = recipe()) -> ParameterStore {
        let (optimizer, schedule) = recipe.makeOptimizer()
        return ParameterStore(parameters: parameters, optimizer: optimizer, schedule: schedule, totalSteps: recipe.scheduleSteps)
    }

    static let initial: [Float] = (0..<6).map { Float($0) * 0.25 - 0.5 }

    static func assignment(key: [UInt8], version: UInt64 = 0, mode: TrainingMode = .async) -> ShardAssignment {
        ShardAssignment(
            sessionID: sessionID, index: UInt32(range.index), shardCount: 2, offset: UInt64(range.offset),
            count: UInt64(range.count), model: spec, sessionSettings: recipe(mode: mode).wireBytes(), version: version,
            modelState: store(initial, recipe: recipe(mode: mode)).trainingState().wireBytes(), ticketKey: key)
    }

    static func join(key: [UInt8], worker: UInt64 = worker, ticket: [UInt8]? = nil) -> ShardJoin {
        ShardJoin(protocolVersion: ProtocolVersion.current, sessionID: sessionID, workerID: worker,
                  ticket: ticket ?? ShardTicket.make(key: key, sessionID: sessionID, worker: worker), workerName: "w1")
    }

    /// A shard assigned the range, with a joined worker that pulled version 0.
    struct Assigned {
        let harness: Harness
        let key = ShardTicket.makeKey()
        let worker: ScriptedPeer

        init(mode: TrainingMode = .async) throws {
            harness = try Harness()
            let hello = try #require(harness.server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
            #expect(hello.shardName == "shard-t" && hello.port == UInt32(harness.shardPort) && hello.protocolVersion == ProtocolVersion.shard)
            harness.server.send(.shardAssignment(ShardRuntimeTests.assignment(key: key, mode: mode)))
            #expect(harness.lines.wait { $0.contains("assigned range 1 of 2: parameters 4..<10 of linear:10 at version 0") })
            worker = try harness.connectWorker()
            worker.send(.shardJoin(ShardRuntimeTests.join(key: key)))
            worker.send(.pull(Pull(knownVersion: 0)))
            let weights = try #require(worker.receive { if case .weights(let weights) = $0 { weights } else { nil } })
            #expect(weights.version == 0 && weights.values == ShardRuntimeTests.initial && weights.baseVersion == nil)
        }
    }

    @Test func aWorkerPullsPushesAndTheServerAppliesItsSlice() throws {
        let shard = try Assigned()
        defer { shard.harness.stop() }
        let gradient: [Float] = [0.5, -1, 0.25, 2, -0.125, 1]
        shard.worker.send(.push(Push(unitID: 7, baseVersion: 0, kind: .gradient, loss: 1.5, sampleCount: 8, values: gradient)))
        let received = try #require(shard.worker.receive { if case .sliceReceived(let slice) = $0 { slice } else { nil } })
        #expect(received.unitID == 7)
        shard.harness.server.send(.shardApply(ShardApply(
            version: 1, kind: .gradient, scale: 1, arrivalsPerStep: 1, slices: [StagedSlice(unitID: 7, workerID: Self.worker, sampleCount: 8)])))
        shard.harness.server.send(.shardStateRequest(ShardStateRequest(requestID: 42, modelState: true)))
        let state = try #require(shard.harness.server.receive { if case .shardState(let state) = $0 { state } else { nil } })
        var expected = Self.store(Self.initial)
        expected.apply(ModelUpdate(values: gradient, kind: .gradient, sampleCount: 8))
        #expect(state.requestID == 42 && state.version == 1 && state.updates == 1 && state.workers == 1 && state.refused == 0)
        #expect(try ModelTrainingState(wireBytes: state.modelState) == expected.trainingState())
        #expect(state.bytesIn > 0 && state.bytesOut > 0)

        // A routine pull now brings version 1, the applied parameters.
        shard.worker.send(.pull(Pull(knownVersion: 0)))
        let weights = try #require(shard.worker.receive { if case .weights(let weights) = $0 { weights } else { nil } })
        #expect(weights.version == 1 && weights.values == expected.parameters)

        // The slice was dropped when applied: naming it again is refused, fatally, as the ranges would disagree.
        shard.harness.server.send(.shardApply(ShardApply(
            version: 2, kind: .gradient, scale: 1, arrivalsPerStep: 1, slices: [StagedSlice(unitID: 7, workerID: Self.worker, sampleCount: 8)])))
        let report = try #require(shard.harness.server.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(report.code == .wrongShard && report.fatal, "\(report)")
        #expect(report.message.contains("unit 7") && report.message.contains("#3"), "\(report.message)")
        // The shard drops the range (closing its workers) and offers itself again.
        #expect(shard.worker.waitForClose())
        #expect(shard.harness.server.receive { body -> ShardHello? in if case .shardHello(let hello) = body { hello } else { nil } } != nil)
    }

    /// A sync round's slices are averaged by sample count exactly as the server averages a round.
    @Test func aSyncRoundsSlicesAreAveragedBySampleCount() throws {
        let shard = try Assigned(mode: .sync)
        defer { shard.harness.stop() }
        let second = try shard.harness.connectWorker()
        second.send(.shardJoin(Self.join(key: shard.key, worker: 6)))
        let a: [Float] = [0.5, -1, 0.25, 2, -0.125, 1]
        let b: [Float] = [-0.3, 0.7, 0.1, -2, 0.9, 0.2]
        shard.worker.send(.push(Push(unitID: 10, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 8, values: a)))
        second.send(.push(Push(unitID: 11, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 4, values: b)))
        #expect(shard.worker.receive { body -> UInt64? in if case .sliceReceived(let slice) = body { slice.unitID } else { nil } } == 10)
        #expect(second.receive { body -> UInt64? in if case .sliceReceived(let slice) = body { slice.unitID } else { nil } } == 11)
        shard.harness.server.send(.shardApply(ShardApply(version: 1, kind: .gradient, scale: 1, arrivalsPerStep: 1, slices: [
            StagedSlice(unitID: 10, workerID: Self.worker, sampleCount: 8), StagedSlice(unitID: 11, workerID: 6, sampleCount: 4),
        ])))
        shard.harness.server.send(.shardStateRequest(ShardStateRequest(requestID: 2, modelState: true)))
        let state = try #require(shard.harness.server.receive { if case .shardState(let state) = $0 { state } else { nil } })
        // SessionCoordinator.closeRound's arithmetic: each push times its samples, summed in order, times 1 / the samples.
        let mean = zip(a, b).map { ($0 * 8 + $1 * 4) * (1 / Float(12)) }
        var expected = Self.store(Self.initial, recipe: Self.recipe(mode: .sync))
        expected.apply(ModelUpdate(values: mean, kind: .gradient, sampleCount: 12))
        #expect(state.version == 1 && state.workers == 2)
        #expect(try ModelTrainingState(wireBytes: state.modelState).parameters == expected.parameters)
    }

    @Test func aPullWithAMinimumVersionIsAnsweredOnlyOnceAnApplyReachesIt() throws {
        let shard = try Assigned()
        defer { shard.harness.stop() }
        shard.worker.send(.pull(Pull(knownVersion: 0, minVersion: 1)))
        let delta: [Float] = [0.1, 0.1, 0.1, -0.1, -0.1, -0.1]
        shard.worker.send(.push(Push(unitID: 2, baseVersion: 0, kind: .delta, loss: 1, sampleCount: 8, values: delta)))
        var before: [Envelope.Body] = []
        let received = try #require(shard.worker.receive { body -> SliceReceived? in
            if case .sliceReceived(let slice) = body { return slice }
            before.append(body)
            return nil
        })
        #expect(received.unitID == 2)
        #expect(!before.contains { if case .weights = $0 { true } else { false } }, "the pull was answered before version 1: \(before)")
        shard.harness.server.send(.shardApply(ShardApply(
            version: 1, kind: .delta, scale: 1, arrivalsPerStep: 2, slices: [StagedSlice(unitID: 2, workerID: Self.worker, sampleCount: 8)])))
        let weights = try #require(shard.worker.receive { if case .weights(let weights) = $0 { weights } else { nil } })
        var expected = Self.store(Self.initial)
        expected.apply(ModelUpdate(values: delta, kind: .delta, sampleCount: 8, arrivalsPerStep: 2))
        #expect(weights.version == 1 && weights.values == expected.parameters)
    }

    @Test func badSlicesAreRefusedWithoutClosingAndABadTicketIsRefusedFatally() throws {
        let shard = try Assigned()
        defer { shard.harness.stop() }
        shard.worker.send(.push(Push(unitID: 1, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 8, values: [1, 2, 3])))
        let short = try #require(shard.worker.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(short.code == .wrongDimensions && !short.fatal && short.message.contains("holds 3 values"), "\(short)")
        var nan = [Float](repeating: 0, count: 6)
        nan[4] = .nan
        shard.worker.send(.push(Push(unitID: 1, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 8, values: nan)))
        let notFinite = try #require(shard.worker.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(notFinite.code == .notFinite && !notFinite.fatal, "\(notFinite)")
        shard.worker.send(.push(Push(unitID: 1, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 8, encodedValues: [1, 2, 3])))
        let encoded = try #require(shard.worker.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(encoded.code == .badEncoding && !encoded.fatal, "\(encoded)")
        // The connection stays: a good slice is still taken.
        shard.worker.send(.push(Push(unitID: 1, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 8, values: [Float](repeating: 1, count: 6))))
        #expect(shard.worker.receive { body -> UInt64? in if case .sliceReceived(let slice) = body { slice.unitID } else { nil } } == 1)
        #expect(shard.harness.lines.wait { $0.contains("refused the slice of unit 1 from worker #3 (w1 at 127.0.0.1:") })

        // Another worker with the ticket of worker 3 is not worker 4.
        let impostor = try shard.harness.connectWorker()
        impostor.send(.shardJoin(Self.join(key: shard.key, worker: 4, ticket: ShardTicket.make(key: shard.key, sessionID: Self.sessionID, worker: 3))))
        let refused = try #require(impostor.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(refused.code == .unauthenticated && refused.fatal && refused.message.contains("ShardJoin.ticket"), "\(refused)")
        #expect(impostor.waitForClose())
        // An encoding the session does not have is refused too.
        let other = try shard.harness.connectWorker()
        var join = Self.join(key: shard.key, worker: 5)
        join.pushEncoding = TensorEncoding.sign(blockSize: 64).wire
        other.send(.shardJoin(join))
        let badEncoding = try #require(other.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(badEncoding.code == .badEncoding && badEncoding.fatal && badEncoding.message.contains("push_encoding"), "\(badEncoding)")

        shard.harness.server.send(.shardStateRequest(ShardStateRequest(requestID: 1)))
        let state = try #require(shard.harness.server.receive { if case .shardState(let state) = $0 { state } else { nil } })
        #expect(state.refused == 3 && state.modelState.isEmpty && state.workers == 1)
    }

    /// SessionEnd closes the workers and drops the range, and the shard offers itself for the next
    /// session; a second assignment replaces the range and closes the workers of the first.
    @Test func sessionEndAndReassignmentDropTheRangeAndItsWorkers() throws {
        let shard = try Assigned()
        defer { shard.harness.stop() }
        let server = shard.harness.server
        #expect(server.receive { body -> UInt64? in if case .heartbeat(let beat) = body { beat.seq } else { nil } } != nil)
        shard.worker.send(.push(Push(unitID: 4, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 8, values: [Float](repeating: 1, count: 6))))
        #expect(shard.worker.receive { body -> UInt64? in if case .sliceReceived(let slice) = body { slice.unitID } else { nil } } == 4)
        var second = Self.assignment(key: ShardTicket.makeKey(), version: 7)
        second.sessionID = "another"
        server.send(.shardAssignment(second))
        #expect(shard.worker.waitForClose())
        #expect(shard.harness.lines.wait { $0.contains("reassigned: dropping range 1 of 2") && $0.contains("1 staged slice(s)") })
        // The staged slice went with the first range, and the version is the new assignment's.
        server.send(.shardApply(ShardApply(version: 8, kind: .gradient, scale: 1, arrivalsPerStep: 1,
                                           slices: [StagedSlice(unitID: 4, workerID: Self.worker, sampleCount: 8)])))
        let report = try #require(server.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(report.code == .wrongShard && report.message.contains("does not hold"), "\(report)")
        _ = try #require(server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
        server.send(.shardAssignment(Self.assignment(key: shard.key)))
        #expect(shard.harness.lines.wait(count: 2) { $0.contains("assigned range 1 of 2") && $0.contains("session shard-test") })
        let worker = try shard.harness.connectWorker()
        worker.send(.shardJoin(Self.join(key: shard.key)))
        #expect(shard.harness.lines.wait(count: 2) { $0.contains("worker #3 (w1 at 127.0.0.1:") && $0.hasSuffix("joined: pushes fp32, weights fp32") })
        server.send(.sessionEnd(SessionEnd()))
        #expect(worker.waitForClose())
        #expect(shard.harness.lines.wait { $0.hasPrefix("session shard-test over") })
        _ = try #require(server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
    }

    /// With a token the shard answers the server's challenge with a MAC over its name; without one it
    /// refuses, and exits 1 rather than retry.
    @Test func theShardAnswersAChallengeWithItsTokenAndGivesUpWithoutOne() throws {
        let token = AuthenticationToken("correct horse battery staple")
        let harness = try Harness(token: token)
        defer { harness.stop() }
        _ = try #require(harness.server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
        let nonce = HandshakeAuthentication.makeNonce()
        harness.server.send(.challenge(Challenge(serverNonce: nonce)))
        let response = try #require(harness.server.receive { if case .challengeResponse(let response) = $0 { response } else { nil } })
        #expect(HandshakeAuthentication.isValidWorkerResponse(
            response.mac, token: token, serverNonce: nonce, clientNonce: response.clientNonce, workerName: "shard-t"))
        // An assignment whose proof is not the token's is refused: a shard holds no range for an impostor.
        var forged = Self.assignment(key: ShardTicket.makeKey())
        forged.serverProof = HandshakeAuthentication.serverProof(
            token: AuthenticationToken("another token"), clientNonce: response.clientNonce, serverNonce: nonce, sessionID: forged.sessionID)
        harness.server.send(.shardAssignment(forged))
        let forgedRefusal = try #require(harness.server.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(forgedRefusal.code == .unauthenticated && forgedRefusal.fatal, "\(forgedRefusal)")
        #expect(harness.lines.wait { $0.contains("the server's proof is wrong") })

        // With the right proof the range is taken.
        let honest = try Harness(token: token)
        defer { honest.stop() }
        _ = try #require(honest.server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
        honest.server.send(.challenge(Challenge(serverNonce: nonce)))
        let answer = try #require(honest.server.receive { if case .challengeResponse(let response) = $0 { response } else { nil } })
        var proven = Self.assignment(key: ShardTicket.makeKey())
        proven.serverProof = HandshakeAuthentication.serverProof(
            token: token, clientNonce: answer.clientNonce, serverNonce: nonce, sessionID: proven.sessionID)
        honest.server.send(.shardAssignment(proven))
        #expect(honest.lines.wait { $0.hasPrefix("assigned range") })

        let tokenless = try Harness()
        defer { tokenless.stop() }
        _ = try #require(tokenless.server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
        tokenless.server.send(.challenge(Challenge(serverNonce: nonce)))
        let refusal = try #require(tokenless.server.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(refusal.code == .unauthenticated && refusal.fatal && refusal.message == "this shard has no token")
        #expect(tokenless.exits.wait { $0 == "1" })
    }

    @Test func workersBeforeTheAssignmentAndABadAssignmentAreRefused() throws {
        let harness = try Harness()
        defer { harness.stop() }
        _ = try #require(harness.server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
        let early = try harness.connectWorker()
        let unavailable = try #require(early.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(unavailable.code == .unavailable && unavailable.fatal && unavailable.message.contains("no range yet"))

        var assignment = Self.assignment(key: [UInt8](repeating: 1, count: 16))
        harness.server.send(.shardAssignment(assignment))
        let report = try #require(harness.server.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(report.code == .wrongShard && report.fatal && report.message.hasPrefix("ShardAssignment.ticket_key:"), "\(report)")
        // It offers itself again after the retry interval, and takes a range whose state fits.
        _ = try #require(harness.server.receive { if case .shardHello(let hello) = $0 { hello } else { nil } })
        assignment.ticketKey = ShardTicket.makeKey()
        assignment.modelState = Self.store([1, 2, 3]).trainingState().wireBytes()
        harness.server.send(.shardAssignment(assignment))
        let tooShort = try #require(harness.server.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(tooShort.code == .wrongShard && tooShort.message.hasPrefix("ShardAssignment.model_state:"), "\(tooShort)")
    }
}

// MARK: - Scripted peers

struct HarnessError: Error {
    let message: String
}

/// The shard under test on a loop of its own, and the scripted server and workers on another.
final class Harness: @unchecked Sendable {
    // Why @unchecked Sendable is safe: the runtime is touched only on its loop; the rest is immutable.
    let shardLoop: EventLoop
    let peersLoop: EventLoop
    let server: ScriptedPeer
    let shard: ShardRuntime
    let lines = AwaitedLines()
    let shardPort: Int

    /// The exit status the shard chose, once it did.
    let exits = AwaitedLines()

    init(token: AuthenticationToken? = nil, once: Bool = false) throws {
        peersLoop = try EventLoop.startOnNewThread(name: "shard-test-peers")
        server = try ScriptedPeer.listening(on: peersLoop)
        shardLoop = try EventLoop.startOnNewThread(name: "shard-test-shard")
        var configuration = ShardConfiguration(host: "127.0.0.1", port: server.port, retryInterval: .milliseconds(100), name: "shard-t")
        configuration.listenHost = "127.0.0.1"
        configuration.heartbeatInterval = .milliseconds(50)
        configuration.token = token
        configuration.once = once
        let shard = ShardRuntime(configuration: configuration, loop: shardLoop, log: { [lines] in lines.append($0) })
        shard.onExit = { [exits] status in exits.append("\(status)") }
        self.shard = shard
        let started = AwaitedLines()
        shardLoop.execute {
            do {
                try shard.start()
                started.append("\(shard.port)")
            } catch {
                started.append("failed: \(error)")
            }
        }
        guard started.wait(for: { _ in true }), let port = Int(started.first ?? "") else {
            throw HarnessError(message: "the shard did not start: \(started.first ?? "timed out")")
        }
        shardPort = port
    }

    func connectWorker() throws -> ScriptedPeer {
        try ScriptedPeer.connecting(to: shardPort, on: peersLoop)
    }

    func stop() {
        shardLoop.stop()
        try? shardLoop.join()
        peersLoop.stop()
        try? peersLoop.join()
        withExtendedLifetime((shard, server)) {}
    }
}

/// One end of the protocol as a script: it records what arrives and sends what the test says. As a
/// listener (the server) it talks to the connection accepted last.
final class ScriptedPeer: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `received` and `isClosed` are touched only holding `condition`;
    // the listener and the connection only on the loop's thread.
    private let loop: EventLoop
    private var listener: FrameListener?
    private var connection: FrameConnection?
    private let condition = NSCondition()
    private var received: [Envelope.Body] = []
    private var isClosed = false
    private(set) var port = 0

    private init(loop: EventLoop) {
        self.loop = loop
    }

    /// A server listening on an ephemeral port of 127.0.0.1.
    static func listening(on loop: EventLoop) throws -> ScriptedPeer {
        let peer = ScriptedPeer(loop: loop)
        let port = AwaitedLines()
        loop.execute {
            peer.listener = try? FrameListener(loop: loop, host: "127.0.0.1", port: 0) { connection in peer.attach(connection) }
            port.append("\(peer.listener?.localPort ?? -1)")
        }
        guard port.wait(for: { _ in true }), let number = Int(port.first ?? ""), number > 0 else {
            throw HarnessError(message: "the scripted server could not listen")
        }
        peer.port = number
        return peer
    }

    /// A worker connected to `port` of 127.0.0.1.
    static func connecting(to port: Int, on loop: EventLoop) throws -> ScriptedPeer {
        let peer = ScriptedPeer(loop: loop)
        let outcome = AwaitedLines()
        loop.execute {
            FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port) { result in
                switch result {
                case .success(let connection):
                    peer.attach(connection)
                    outcome.append("connected")
                case .failure(let error):
                    outcome.append("\(error)")
                }
            }
        }
        guard outcome.wait(for: { _ in true }), outcome.first == "connected" else {
            throw HarnessError(message: "could not connect to the shard: \(outcome.first ?? "timed out")")
        }
        return peer
    }

    private func attach(_ connection: FrameConnection) {
        self.connection = connection
        condition.lock()
        isClosed = false
        condition.unlock()
        connection.onFrame = { [self] payload in
            guard let body = (try? Envelope(serializedBytes: payload))?.body else { return }
            condition.lock()
            received.append(body)
            condition.broadcast()
            condition.unlock()
        }
        connection.onClose = { [self, weak connection] _ in
            guard self.connection === connection else { return }
            condition.lock()
            isClosed = true
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Queues `body` to the peer, after everything queued before.
    func send(_ body: Envelope.Body) {
        loop.execute { [self] in connection?.send(Envelope(body: body)) }
    }

    /// The first message not yet taken that `match` turns into a value (earlier ones are dropped),
    /// waiting up to 30 s for it.
    func receive<T>(_ match: (Envelope.Body) -> T?) -> T? {
        let deadline = Date(timeIntervalSinceNow: 30)
        condition.lock()
        defer { condition.unlock() }
        while true {
            while !received.isEmpty {
                if let value = match(received.removeFirst()) { return value }
            }
            if !condition.wait(until: deadline) { return nil }
        }
    }

    /// Waits (at most 30 s) for the connection to close.
    func waitForClose() -> Bool {
        let deadline = Date(timeIntervalSinceNow: 30)
        condition.lock()
        defer { condition.unlock() }
        while !isClosed {
            if !condition.wait(until: deadline) { return isClosed }
        }
        return true
    }

}
