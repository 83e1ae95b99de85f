import Foundation
import Learning
import Messages
import ModelCatalog
import Reactor
import TensorEncoding
import Testing
@testable import ParameterServer

/// A real `WorkerRuntime` against a scripted server in this process: the worker offers deltas, asks
/// for whole weights when a delta is not on the version it holds, and refuses a delta it cannot
/// decode with an error naming the field.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct WorkerDeltaTests {
    @Test func aDeltaOnAnotherVersionMakesTheWorkerAskForWholeWeightsAndABadOneIsRefused() throws {
        let server = try ScriptedServer()
        defer { server.stop() }
        let registry = ModelCatalog.registry
        let configuration = try registry.configuration(parsing: "spirals")
        let layout = try registry.makeModel(configuration).layout
        let count = layout.parameterCount
        let worker = try ScriptedServer.Worker(port: server.port, registry: registry)
        defer { worker.stop() }

        let hello = try #require(server.receive { if case .hello(let hello) = $0 { hello } else { nil } })
        #expect(hello.capabilities?.encodings.contains(TensorEncoding.deltaCapability) == true)
        var welcome = Welcome(protocolVersion: ProtocolVersion.current, workerID: 1, sessionID: "scripted", mode: "async",
                              model: ModelSpec(configuration: configuration, layout: layout), batchSize: 8, localSteps: 2,
                              localLearningRate: 0.05, trainSamples: 100, heartbeatIntervalMs: 1000)
        welcome.deltaEncoding = TensorEncoding.sign(blockSize: 64).wire
        server.send(.welcome(welcome))
        server.send(.weights(Weights(version: 3, values: [Float](repeating: 0.25, count: count))))
        // A delta from version 4, which this worker never had.
        let delta = TensorEncoding.sign(blockSize: 64).encoded([Float](repeating: 0.5, count: count))
        server.send(.weights(Weights(version: 6, encodedValues: delta, baseVersion: 4)))
        let pull = try #require(server.receive { if case .pull(let pull) = $0 { pull } else { nil } })
        #expect(pull.knownVersion == 0, "a worker whose delta does not apply asks for whole weights")
        #expect(worker.waitForLog { $0.contains("Weights.base_version 4") && $0.contains("asking for whole weights") })

        // Whole weights again, then a delta on them that is one byte short.
        server.send(.weights(Weights(version: 6, values: [Float](repeating: 0.25, count: count))))
        server.send(.weights(Weights(version: 7, encodedValues: Array(delta.dropLast()), baseVersion: 6)))
        let report = try #require(server.receive { if case .error(let report) = $0 { report } else { nil } })
        #expect(report.code == .badEncoding && report.fatal)
        #expect(report.message.hasPrefix("the server's Weights.encoded_values (a sign(64) delta from version 6 to 7): sign: "),
                "\(report.message)")
    }
}

/// A server that is a script: it records what the one worker sends and sends what the test says.
final class ScriptedServer: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `received` is only touched holding `condition`; the listener and
    // the connection only on the loop's thread.
    private let loop: EventLoop
    private var listener: FrameListener?
    private var connection: FrameConnection?
    private let condition = NSCondition()
    private var received: [Envelope.Body] = []
    private var listening = 0

    init() throws {
        loop = try EventLoop.startOnNewThread(name: "scripted-server")
        loop.execute { [self] in
            listener = try? FrameListener(loop: loop, host: "127.0.0.1", port: 0) { [self] connection in
                self.connection = connection
                connection.onFrame = { [self] payload in
                    guard let body = (try? Envelope(serializedBytes: payload))?.body else { return }
                    condition.lock()
                    received.append(body)
                    condition.broadcast()
                    condition.unlock()
                }
            }
            condition.lock()
            listening = listener?.localPort ?? -1
            condition.broadcast()
            condition.unlock()
        }
        condition.lock()
        while listening == 0 { condition.wait() }
        condition.unlock()
    }

    var port: Int { listening }

    /// Queues `body` to the worker, after everything queued before.
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

    func stop() {
        loop.stop()
        try? loop.join()
        withExtendedLifetime((listener, connection)) {}
    }

    /// A `WorkerRuntime` as ps-worker builds it, on a loop of its own, and what it logged.
    final class Worker: @unchecked Sendable {
        // Why @unchecked Sendable is safe: the runtime is only touched on its loop; the log is a `Lines`.
        private let loop: EventLoop
        private let runtime: WorkerRuntime
        private let lines = Lines()

        init(port: Int, registry: ModelRegistry, localOptimizers: [String] = WorkerConfiguration.defaultLocalOptimizers) throws {
            var configuration = WorkerConfiguration(host: "127.0.0.1", port: port, retryInterval: .milliseconds(200), name: "scripted")
            configuration.once = true
            configuration.localOptimizers = localOptimizers
            loop = try EventLoop.startOnNewThread(name: "scripted-worker")
            let host = WorkerHost(configuration: configuration, registry: registry) { [lines] line in lines.append(line) }
            runtime = WorkerRuntime(configuration: host.configuration, loop: loop, log: host.log) { try host.makeModel($0) }
            loop.execute { [runtime] in runtime.start() }
        }

        /// Waits (at most 30 s) for a logged line that satisfies `matches`.
        func waitForLog(_ matches: (String) -> Bool) -> Bool {
            lines.wait(for: matches)
        }

        func stop() {
            loop.stop()
            try? loop.join()
            withExtendedLifetime(runtime) {}
        }
    }

    /// Lines logged on one thread and awaited on another.
    final class Lines: @unchecked Sendable {
        // Why @unchecked Sendable is safe: `lines` is only touched holding `condition`.
        private let condition = NSCondition()
        private var lines: [String] = []

        func append(_ line: String) {
            condition.lock()
            lines.append(line)
            condition.broadcast()
            condition.unlock()
        }

        func wait(for matches: (String) -> Bool) -> Bool {
            let deadline = Date(timeIntervalSinceNow: 30)
            condition.lock()
            defer { condition.unlock() }
            while !lines.contains(where: matches) {
                if !condition.wait(until: deadline) { return lines.contains(where: matches) }
            }
            return true
        }
    }
}
