import FoundationEssentials
import Glibc
import Learning
import Messages
import Reactor
import TensorEncoding
import WireCodec

/// A long-lived `ps-shard`: it listens for workers, connects to the server (retrying until it is up)
/// and offers to hold a range of a sharded session's parameters (Schemas/Messages/README.md, "Shards").
/// Once assigned a range it serves the range's weights to workers, stages the slices they push, and
/// applies them when the server says so. After a session it waits for the next one ("continuous
/// mode"), unless told to stop after one.
///
/// ```swift
/// let loop = try EventLoop()
/// let shard = ShardRuntime(configuration: configuration, loop: loop, log: { print($0) })
/// shard.onExit = { _ in loop.stop() }
/// loop.execute { try? shard.start() }
/// try loop.run()
/// ```
///
/// - Warning: Every method runs on the loop's thread.
public final class ShardRuntime: @unchecked Sendable {
    // Why @unchecked Sendable is safe: every stored property is touched on the loop thread only, and
    // no other thread ever holds this object (the shard has no compute thread).

    /// The connection to the server, from `ShardHello` to close.
    final class ServerLink {
        let connection: FrameConnection
        /// The nonces of this connection's challenge, once the server sent one.
        var challenge = ClientChallenge()
        /// Authentication failed: retrying with the same token cannot succeed.
        var authenticationFailed = false
        /// The shard refused something the server sent and closes; frames still arriving are ignored.
        var refused = false
        /// A range was assigned on this connection, and the session ended with `SessionEnd`.
        var assigned = false
        var ended = false
        var heartbeat: TimerHandle?
        var heartbeatSequence: UInt64 = 0
        /// When a complete frame from the server last arrived, and the timer that gives up on a silent
        /// server (armed at its first heartbeat).
        var lastHeardAt = ContinuousClock.now
        var bytesReadAtLastHeard: UInt64 = 0
        var watchdog: TimerHandle?

        init(connection: FrameConnection) {
            self.connection = connection
        }
    }

    /// A worker's connection, from accept to close.
    final class WorkerPeer {
        enum State {
            /// Connected; only a ShardJoin is accepted.
            case joining
            case joined
            /// Refused, left or dropped; the socket may still be flushing.
            case gone
        }

        let connection: FrameConnection
        var state = State.joining
        var workerID: UInt64 = 0
        var name = "?"
        /// What the worker pushes in, and how it is sent weights (its Welcome's choices).
        var pushEncoding: TensorEncoding = .fp32
        var publishing = PublisherPeerState(pullEncoding: .fp32, followsChain: false)
        /// Closes the connection if it has not joined by the handshake timeout.
        var handshakeTimer: TimerHandle?
        /// A pull waiting for the shard's version to reach its `min_version`.
        var pendingPull: Pull?
        /// Refused slices logged so far (see `refuseSlice`).
        var refusalsLogged = 0

        init(connection: FrameConnection) {
            self.connection = connection
        }

        /// How the peer is named in logs: its worker id and name once it joined, and its address.
        var label: String {
            state == .joining ? "connection from \(connection.remoteAddress)" : "worker #\(workerID) (\(name) at \(connection.remoteAddress))"
        }
    }

    public let configuration: ShardConfiguration
    public let loop: EventLoop
    let log: (String) -> Void
    var listener: FrameListener?
    var link: ServerLink?
    /// The range held for the current session; nil between sessions and while a spare.
    var assignment: ShardAssignmentState?
    var workers: [ObjectIdentifier: WorkerPeer] = [:]
    /// What the partly received frames of workers that have not joined may hold together.
    lazy var strangerBudget = FrameBufferBudget(limit: configuration.strangerBufferBudget)
    /// Bytes of frames received and queued on every connection since the assignment, length
    /// prefixes included (`ShardState.bytes_in`, `bytes_out`).
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    var retryTimer: TimerHandle?
    var stopping = false

    /// Sessions this shard held a range in, to their end.
    public internal(set) var sessionsCompleted = 0

    /// Called once, on the loop thread, when the shard is done: after `stop()`, after its session
    /// with `once`, or after an authentication failure. The argument is the exit status to use.
    public var onExit: ((Int32) -> Void)?

    /// Creates a shard.
    /// - Parameters:
    ///   - configuration: where the server is, where to listen, and the limits.
    ///   - loop: the event loop to run on.
    ///   - log: where status lines go.
    public init(configuration: ShardConfiguration, loop: EventLoop, log: @escaping (String) -> Void) {
        self.configuration = configuration
        self.loop = loop
        self.log = log
    }

    /// The port workers reach this shard on (after `start()`).
    public var port: Int { listener?.localPort ?? 0 }

    /// The version of the range held, nil while none is.
    public var version: UInt64? { assignment?.version }

    /// Workers joined now.
    public var joinedWorkers: Int { workers.values.count(where: { $0.state == .joined }) }

    /// Listens for workers, then connects to the server (retrying every `retryInterval` until it is up).
    /// - Throws: `ReactorError` when the listening address cannot be bound.
    /// - Warning: Call on the loop thread, or before the loop first runs.
    public func start() throws {
        // Every worker connection starts as a stranger: small frames, from a shared budget, until it joins.
        var connections = FrameConnection.Configuration(maxFrameLength: min(configuration.strangerFrameBytes, configuration.maxFrameBytes))
        connections.stream.maxQueuedWriteBytes = configuration.maxQueuedWriteBytes
        // Workers send a shard nothing while they train, so a quiet connection is no sign of a dead one.
        connections.stream.idleTimeout = nil
        let listener = try FrameListener(
            loop: loop, host: configuration.listenHost, port: configuration.listenPort, configuration: connections,
            tls: configuration.listenerTLS
        ) { [unowned self] connection in
            self.accept(connection)
        }
        self.listener = listener
        log("ps-shard \(configuration.name) listening on \(listener.localAddress)"
            + (configuration.listenerTLS != nil ? " (TLS 1.3)" : ""))
        connect()
    }

    /// Stops: closes every connection and calls `onExit(0)` once the server's connection is closed.
    public func stop(reason: String) {
        loop.preconditionInEventLoop()
        guard !stopping else { return }
        stopping = true
        log("stopping: \(reason)")
        retryTimer?.cancel()
        listener?.close()
        dropRange()
        if let link {
            link.connection.close()
        } else {
            exit(0)
        }
    }

    func exit(_ status: Int32) {
        guard let onExit else { return }
        self.onExit = nil
        listener?.close()
        onExit(status)
    }

    // MARK: Sending

    /// Queues `envelope` on `connection`, counting its bytes.
    func send(_ envelope: Envelope, on connection: FrameConnection) {
        let size = envelope.serializedSize()
        bytesOut &+= UInt64(size + 4)
        connection.sendFrame(payloadSize: size) { envelope.serialize(into: $0) }
    }

    /// Queues a frame made once and shared (weights), counting its bytes.
    func send(payload: [UInt8], on connection: FrameConnection) {
        bytesOut &+= UInt64(payload.count + 4)
        connection.send(frame: payload)
    }

    /// Sends an error report; when `fatal`, closes the connection once it is written (or after the
    /// linger bound, for a peer that does not read).
    func sendError(_ code: ErrorReport.Code, _ message: String, fatal: Bool, on connection: FrameConnection) {
        send(Envelope(body: .error(ErrorReport(code: code, message: message, fatal: fatal))), on: connection)
        if fatal { connection.close(lingeringAtMost: FrameConnection.fatalLinger) }
    }

    /// Closes every worker connection and drops the range, its staged slices and its figures.
    func dropRange() {
        for peer in workers.values {
            peer.handshakeTimer?.cancel()
            peer.handshakeTimer = nil
            peer.state = .gone
            peer.connection.close(lingeringAtMost: FrameConnection.fatalLinger)
        }
        workers = [:]
        assignment = nil
    }
}
