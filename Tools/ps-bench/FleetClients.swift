import ArgumentParser
import Messages
import ParameterServer
import Reactor
import WireCodec

#if canImport(Glibc)
import Glibc
#endif

/// The workers of `ps-bench fleet`, in the child process: every connection on one event loop, each
/// saying Hello and then answering every WorkUnit at once with a Push of a prebuilt gradient.
///
/// - Warning: Loop thread only (the child's main thread, which runs the loop).
final class FleetClients {
    /// One worker: its connection and the newest model version it has heard of.
    private final class Worker {
        let connection: FrameConnection
        var version: UInt64 = 0

        init(connection: FrameConnection) { self.connection = connection }
    }

    private let loop: EventLoop
    private let options: FleetBenchmarkCommand
    /// The gradient every push carries: finite, never changed, shared by every push without a copy.
    private let gradient: [Float]
    private var workers: [Worker] = []
    private var stopping = false
    private var failure: String?

    /// Runs the workers until the parent stops them (SIGTERM), goes away, or the lifetime runs out.
    /// - Throws: `ValidationError` when a worker could not connect or the server refused one.
    static func run(options: FleetBenchmarkCommand, port: Int, parent: Int32?) throws {
        let loop = try EventLoop()
        let clients = FleetClients(loop: loop, options: options)
        clients.start(port: port, parent: parent)
        try loop.run()
        if let failure = clients.failure { throw ValidationError("fleet workers: \(failure)") }
    }

    private init(loop: EventLoop, options: FleetBenchmarkCommand) {
        self.loop = loop
        self.options = options
        gradient = (0..<options.parameters).map { Float($0 % 7 + 1) * 1e-3 }
    }

    private func start(port: Int, parent: Int32?) {
        var configuration = FrameConnection.Configuration(maxFrameLength: options.parameters * 4 + 4096)
        configuration.maxQueuedWriteBytes = max(256 << 20, options.unitsAhead * (options.parameters * 4 + 4096) * 2)
        for index in 0..<options.workers {
            FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port, configuration: configuration,
                                    retryInterval: .milliseconds(100), deadline: .now + .seconds(30)) { [self] result in
                switch result {
                case .success(let connection): connected(connection, index: index)
                case .failure(let error): fail("worker \(index) could not connect: \(error)")
                }
            }
        }
        // Stop when the parent is gone (killed before it could stop us) or the lifetime is over.
        let started = ContinuousClock.now
        let lifetime = options.clientLifetime
        loop.scheduleTimer(after: .milliseconds(200), repeating: .milliseconds(200)) { [self] in
            if let parent, getppid() != parent { stop() }
            if ContinuousClock.now - started > lifetime { stop() }
        }
    }

    private func connected(_ connection: FrameConnection, index: Int) {
        guard !stopping else { return connection.closeNow() }
        let worker = Worker(connection: connection)
        workers.append(worker)
        // `workers` keeps the worker alive and the loop keeps the connection: borrowing both keeps
        // reference counting off the per-frame path and makes no cycle.
        connection.onFrame = { [unowned(unsafe) self, unowned(unsafe) worker] payload in
            received(payload, by: worker, index: index)
        }
        connection.onClose = { [unowned(unsafe) self] error in
            if !stopping { fail("worker \(index) was disconnected: \(error.map { "\($0)" } ?? "by the server")") }
        }
        var hello = Hello()
        hello.protocolVersion = ProtocolVersion.current
        hello.workerName = "fleet-\(index)"
        var capabilities = Capabilities()
        capabilities.threads = 1
        capabilities.maxUnitsAhead = UInt32(options.unitsAhead)
        hello.capabilities = capabilities
        send(Envelope(body: .hello(hello)), on: connection)
    }

    private func received(_ payload: UnsafeRawBufferPointer, by worker: Worker, index: Int) {
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: payload)
        } catch {
            return fail("worker \(index) got a frame that is not an Envelope: \(error)")
        }
        switch envelope.body {
        case .workUnit(let unit)?:
            // The push is encoded size first, straight into the connection's outgoing buffer; its
            // values share `gradient`'s storage.
            let push = Push(unitID: unit.unitID, baseVersion: worker.version, kind: .gradient, loss: 0.5,
                            sampleCount: UInt32(unit.indices.count), values: gradient)
            send(Envelope(body: .push(push)), on: worker.connection)
        case .pushAck(let ack)?:
            worker.version = max(worker.version, ack.serverVersion)
        case .weights(let weights)?:
            worker.version = max(worker.version, weights.version)
        case .welcome?, .heartbeat?:
            break
        case .sessionEnd?:
            stop()
        case .error(let report)?:
            fail("the server refused worker \(index): \(report.code) \(report.message)")
        default:
            fail("worker \(index) got an unexpected message")
        }
    }

    private func send(_ envelope: Envelope, on connection: FrameConnection) {
        connection.sendFrame(payloadSize: envelope.serializedSize()) { envelope.serialize(into: $0) }
    }

    private func fail(_ message: String) {
        if failure == nil { failure = message }
        stop()
    }

    private func stop() {
        guard !stopping else { return }
        stopping = true
        loop.stop()
    }
}
