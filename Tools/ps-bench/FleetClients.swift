import ArgumentParser
import Messages
import ParameterServer
import Reactor
import TensorEncoding
import WireCodec

#if canImport(Glibc)
import Glibc
#endif

/// The workers of `ps-bench fleet`, in the child process: every connection on one event loop, each
/// saying Hello (offering `--client-encodings`), prebuilding one push in the encoding its Welcome names,
/// and then answering every WorkUnit at once with a Push of it: a gradient when the Welcome's
/// `local_steps` is 1, a delta otherwise. Weights are never decoded (only their version is kept).
///
/// - Warning: Loop thread only (the child's main thread, which runs the loop).
final class FleetClients {
    /// One worker: its connection, the newest model version it has heard of, and its push.
    private final class Worker {
        let connection: FrameConnection
        var version: UInt64 = 0
        /// The version of the newest Weights it was sent (with `--pull-every-unit`, its base version).
        var weightsVersion: UInt64 = 0
        /// Every push it sends, but for the unit, base version and sample count: built after the
        /// Welcome, in its push encoding; its values or encoded bytes are shared by every push.
        var push: Push?

        init(connection: FrameConnection) { self.connection = connection }
    }

    private let loop: EventLoop
    private let options: FleetBenchmarkCommand
    /// The vector every push carries (encoded as the Welcome says): finite, deterministic, never changed.
    private let gradient: [Float]
    /// The prebuilt push payloads by encoding, so that workers with the same encoding share one.
    private var prebuilt: [TensorEncoding: [UInt8]] = [:]
    private var workers: [Worker] = []
    private var stopping = false
    private var failure: String?

    /// Runs the workers until the parent stops them (SIGTERM), goes away, or the lifetime runs out.
    /// - Throws: `ValidationError` when a worker could not connect or the server refused one.
    static func run(options: FleetBenchmarkCommand, port: Int, parent: Int32?) throws {
        // The parent stops this process with SIGTERM. A process inherits its signal mask, and a test
        // runner's (XCTest's) blocks SIGTERM: left blocked, the signal would wait forever, and so would
        // the parent for this process to exit.
        var terminate = sigset_t()
        sigemptyset(&terminate)
        sigaddset(&terminate, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &terminate, nil)
        let loop = try EventLoop()
        let clients = FleetClients(loop: loop, options: options)
        clients.start(port: port, parent: parent)
        try loop.run()
        if let failure = clients.failure { throw ValidationError("fleet workers: \(failure)") }
    }

    private init(loop: EventLoop, options: FleetBenchmarkCommand) {
        self.loop = loop
        self.options = options
        // Both signs and a spread of magnitudes (and a few zeros), so that every encoding has work to do.
        gradient = (0..<options.parameters).map { (Float($0 % 13) - 6) * 1e-3 }
    }

    private func start(port: Int, parent: Int32?) {
        var configuration = FrameConnection.Configuration(maxFrameLength: options.parameters * 4 + options.samplesPerUnit * 5 + 4096)
        configuration.stream.maxQueuedWriteBytes = max(256 << 20, options.unitsAhead * (options.parameters * 4 + 4096) * 2)
        // Over TLS the server's certificate is checked against localhost (or --tls-server-name), as a
        // worker checks its HOST.
        let tls: TLSContext?
        do {
            tls = try options.clientTLS.context()
        } catch {
            fail("the workers' TLS context: \(error)")
            return
        }
        for index in 0..<options.workers {
            FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port, configuration: configuration,
                                    tls: tls, serverName: tls == nil ? nil : options.clientTLS.serverName ?? "localhost",
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
        capabilities.encodings = options.offeredEncodings
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
            guard var push = worker.push else { return fail("worker \(index) got a WorkUnit before its Welcome") }
            // As ps-worker in async mode: ask for the weights after the ones this unit starts from.
            if options.pullEveryUnit {
                send(Envelope(body: .pull(Pull(knownVersion: worker.weightsVersion))), on: worker.connection)
            }
            // The push is encoded size first, straight into the connection's outgoing buffer; its
            // values or encoded bytes share the prebuilt storage.
            push.unitID = unit.unitID
            push.baseVersion = options.pullEveryUnit ? worker.weightsVersion : worker.version
            push.sampleCount = UInt32(unit.indices.count)
            send(Envelope(body: .push(push)), on: worker.connection)
        case .pushAck(let ack)?:
            worker.version = max(worker.version, ack.serverVersion)
        case .weights(let weights)?:
            // Not decoded: a real worker would, but this measures the server.
            worker.version = max(worker.version, weights.version)
            worker.weightsVersion = max(worker.weightsVersion, weights.version)
        case .welcome(let welcome)?:
            do {
                worker.push = try makePush(welcome)
            } catch {
                fail("worker \(index): \(error)")
            }
        case .heartbeat?:
            break
        case .sessionEnd?:
            stop()
        case .error(let report)?:
            fail("the server refused worker \(index): \(report.code) \(report.message)")
        default:
            fail("worker \(index) got an unexpected message")
        }
    }

    /// The push a worker sends for every unit, in the encoding and of the kind its Welcome names.
    private func makePush(_ welcome: Welcome) throws -> Push {
        let count = Int(welcome.model?.parameterCount ?? UInt64(options.parameters))
        guard count == gradient.count else {
            throw ValidationError("the server's model has \(count) parameters, not \(gradient.count)")
        }
        let encoding: TensorEncoding
        do throws(EncodingChoiceError) {
            encoding = try TensorEncoding(wire: welcome.pushEncoding, count: count)
        } catch {
            throw ValidationError("the Welcome's push encoding: \(error)")
        }
        var push = Push(kind: welcome.localSteps > 1 ? .delta : .gradient, loss: 0.5)
        if encoding == .fp32 {
            push.values = gradient
        } else {
            if prebuilt[encoding] == nil { prebuilt[encoding] = encoding.encoded(gradient) }
            push.encodedValues = prebuilt[encoding] ?? []
        }
        return push
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
