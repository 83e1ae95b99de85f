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
/// In a sharded session (the Welcome lists `shards`) each worker also connects to every shard and
/// sends it `ShardJoin`, prebuilds each range's slice push (in the push encoding for the range's
/// length; topk's k scaled to the range, as ps-worker does), and answers every WorkUnit by sending each
/// shard its slice and, once every shard has said `SliceReceived`, the server a staged push.
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
        /// A sharded session: one link per shard, in the map's order (empty otherwise).
        var shards: [ShardLink] = []
        /// Shard connections still being made; units that arrive meanwhile wait in `waitingUnits`.
        var shardsConnecting = 0
        var waitingUnits: [Messages.WorkUnit] = []
        /// Units whose slices were sent: the staged push for the server and the shards yet to answer.
        var staged: [UInt64: (push: Push, remaining: Int)] = [:]

        init(connection: FrameConnection) { self.connection = connection }
    }

    /// A worker's connection to one shard, and the slice push it sends it.
    private final class ShardLink {
        let index: Int
        let host: String
        let port: Int
        var connection: FrameConnection?
        /// The slice of every push, but for the unit, base version and sample count.
        var push: Push
        /// The version of the newest Weights this shard sent (with `--pull-every-unit`).
        var weightsVersion: UInt64 = 0

        init(index: Int, host: String, port: Int, push: Push) {
            (self.index, self.host, self.port, self.push) = (index, host, port, push)
        }
    }

    private let loop: EventLoop
    private let options: FleetBenchmarkCommand
    /// The vector every push carries (encoded as the Welcome says): finite, deterministic, never changed.
    private let gradient: [Float]
    /// The prebuilt push payloads by encoding, so that workers with the same encoding share one.
    private var prebuilt: [TensorEncoding: [UInt8]] = [:]
    /// A sharded session: each range's slice of `gradient`, and its prebuilt payloads by encoding.
    private var slices: [Int: [Float]] = [:]
    private var prebuiltSlices: [Int: [TensorEncoding: [UInt8]]] = [:]
    /// How the workers' connections are made (the server's and the shards').
    private var connectionConfiguration = FrameConnection.Configuration()
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
        connectionConfiguration = configuration
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
        if options.shards > 0, !capabilities.encodings.contains(ShardMap.capability) {
            capabilities.encodings.append(ShardMap.capability)
        }
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
        case .workUnit(let unit)? where !worker.shards.isEmpty:
            if worker.shardsConnecting > 0 {
                worker.waitingUnits.append(unit)
            } else {
                pushSlices(of: unit, by: worker)
            }
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
                if !welcome.shards.isEmpty { try joinShards(welcome, worker: worker, index: index) }
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

    // MARK: Shards

    /// Prebuilds each range's slice push and connects to every shard the Welcome lists.
    private func joinShards(_ welcome: Welcome, worker: Worker, index: Int) throws {
        guard options.shards > 0 else {
            throw ValidationError("the server's Welcome lists \(welcome.shards.count) shards, but --shards is 0")
        }
        guard let template = worker.push else { return }
        let map: ShardMap
        do {
            map = try ShardMap(endpoints: welcome.shards, parameterCount: gradient.count)
        } catch {
            throw ValidationError("the Welcome's shard map: \(error)")
        }
        worker.shards = try zip(map.ranges, welcome.shards).map { range, endpoint in
            var push = Push(kind: template.kind, loss: template.loss)
            let encoding = try sliceEncoding(wire: welcome.pushEncoding, range: range)
            if slices[range.index] == nil { slices[range.index] = Array(gradient[range.indices]) }
            let slice = slices[range.index] ?? []
            if encoding == .fp32 {
                push.values = slice
            } else {
                if prebuiltSlices[range.index]?[encoding] == nil { prebuiltSlices[range.index, default: [:]][encoding] = encoding.encoded(slice) }
                push.encodedValues = prebuiltSlices[range.index]?[encoding] ?? []
            }
            return ShardLink(index: range.index, host: endpoint.host, port: Int(endpoint.port), push: push)
        }
        worker.shardsConnecting = worker.shards.count
        let join = ShardJoin(
            protocolVersion: ProtocolVersion.current, sessionID: welcome.sessionID, workerID: welcome.workerID,
            ticket: welcome.shardTicket, workerName: "fleet-\(index)", pushEncoding: welcome.pushEncoding,
            pullEncoding: welcome.pullEncoding, deltaEncoding: welcome.deltaEncoding)
        for link in worker.shards {
            FrameConnection.connect(loop: loop, host: link.host, port: link.port, configuration: connectionConfiguration,
                                    retryInterval: .milliseconds(100), deadline: .now + .seconds(30)) { [self] result in
                switch result {
                case .success(let connection):
                    shardConnected(connection, link: link, join: join, worker: worker, index: index)
                case .failure(let error):
                    fail("worker \(index) could not connect to shard \(link.index) at \(link.host):\(link.port): \(error)")
                }
            }
        }
    }

    /// The encoding of a range's slices, as ps-worker derives it from the Welcome's (for the whole
    /// buffer): topk keeps the range's share of k, at least 1; the others do not depend on the length.
    private func sliceEncoding(wire: Messages.Encoding?, range: ShardMap.Range) throws -> TensorEncoding {
        do throws(EncodingChoiceError) {
            guard case .topK(let k) = try TensorEncoding(wire: wire, count: gradient.count) else {
                return try TensorEncoding(wire: wire, count: range.count)
            }
            let share = (Double(k) * Double(range.count) / Double(gradient.count)).rounded()
            return .topK(count: min(range.count, max(1, Int(share))))
        } catch {
            throw ValidationError("the Welcome's push encoding for shard \(range.index)'s slices: \(error)")
        }
    }

    private func shardConnected(_ connection: FrameConnection, link: ShardLink, join: ShardJoin, worker: Worker, index: Int) {
        guard !stopping else { return connection.closeNow() }
        link.connection = connection
        connection.onFrame = { [unowned(unsafe) self, unowned(unsafe) worker, unowned(unsafe) link] payload in
            receivedFromShard(payload, link: link, by: worker, index: index)
        }
        connection.onClose = { [unowned(unsafe) self] error in
            if !stopping { fail("worker \(index) lost shard \(link.index): \(error.map { "\($0)" } ?? "closed by the shard")") }
        }
        send(Envelope(body: .shardJoin(join)), on: connection)
        if options.pullEveryUnit { send(Envelope(body: .pull(Pull(knownVersion: 0))), on: connection) }
        worker.shardsConnecting -= 1
        guard worker.shardsConnecting == 0 else { return }
        let units = worker.waitingUnits
        worker.waitingUnits = []
        for unit in units { pushSlices(of: unit, by: worker) }
    }

    /// Sends every shard its slice of `unit` (and with `--pull-every-unit` a pull), and stages the
    /// server's push until every shard has said `SliceReceived`.
    private func pushSlices(of unit: Messages.WorkUnit, by worker: Worker) {
        var lowest = UInt64.max
        for link in worker.shards {
            guard let connection = link.connection else { continue }
            if options.pullEveryUnit {
                send(Envelope(body: .pull(Pull(knownVersion: link.weightsVersion))), on: connection)
            }
            let base = options.pullEveryUnit ? link.weightsVersion : worker.version
            lowest = min(lowest, base)
            link.push.unitID = unit.unitID
            link.push.baseVersion = base
            link.push.sampleCount = UInt32(unit.indices.count)
            send(Envelope(body: .push(link.push)), on: connection)
        }
        let server = Push(unitID: unit.unitID, baseVersion: lowest == .max ? worker.version : lowest,
                          kind: worker.shards[0].push.kind, loss: worker.shards[0].push.loss,
                          sampleCount: UInt32(unit.indices.count), staged: true)
        worker.staged[unit.unitID] = (server, worker.shards.count)
    }

    private func receivedFromShard(_ payload: UnsafeRawBufferPointer, link: ShardLink, by worker: Worker, index: Int) {
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: payload)
        } catch {
            return fail("worker \(index) got a frame from shard \(link.index) that is not an Envelope: \(error)")
        }
        switch envelope.body {
        case .sliceReceived(let received)?:
            guard let staged = worker.staged[received.unitID] else {
                return fail("worker \(index): shard \(link.index) acknowledged unit \(received.unitID), which it was not sent")
            }
            if staged.remaining > 1 {
                worker.staged[received.unitID]?.remaining = staged.remaining - 1
            } else {
                worker.staged[received.unitID] = nil
                send(Envelope(body: .push(staged.push)), on: worker.connection)
            }
        case .weights(let weights)?:
            // Not decoded, as the server's.
            link.weightsVersion = max(link.weightsVersion, weights.version)
        case .error(let report)?:
            fail("shard \(link.index) refused worker \(index): \(report.code) \(report.message)")
        default:
            fail("worker \(index) got an unexpected message from shard \(link.index)")
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
