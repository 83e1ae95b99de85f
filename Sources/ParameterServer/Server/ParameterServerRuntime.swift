import FoundationEssentials
import Glibc
import Learning
import Messages
import Reactor
import TensorEncoding
import WireCodec

/// One training session of the parameter server, on an event loop: it listens, admits workers,
/// decodes their messages, feeds the `SessionCoordinator`, and carries out what it decides.
///
/// ```swift
/// let loop = try EventLoop()
/// let server = ParameterServerRuntime(configuration: configuration, model: model, loop: loop,
///                                     permutation: { epoch in ... })
/// loop.execute {
///     do { try server.start() } catch { ... }
/// }
/// server.onFinished = { result in print(result.summary); loop.stop() }
/// try loop.run()
/// ```
///
/// - Warning: Every method runs on the loop's thread. Evaluation runs on a thread of its own, with a
///   snapshot of the parameters, and reports back through `EventLoop.execute`.
public final class ParameterServerRuntime: @unchecked Sendable {
    // Why @unchecked Sendable is safe: every stored property is touched on the loop thread only. The
    // one other thread (evaluation) captures this object solely to hand it back to the loop through
    // `EventLoop.execute`, and touches nothing of it.
    /// A connection and what the session knows of it.
    final class Peer {
        enum State {
            case handshaking
            /// Sent a Challenge (the server has a token); only a ChallengeResponse is accepted now.
            case authenticating
            case joined
            /// A `ps-shard` that said ShardHello (and, with a token, proved it): a spare, or holding a range.
            case shard
            /// Removed from the session (left, refused or dropped); the socket may still be flushing.
            case gone
        }

        let connection: FrameConnection
        let worker: WorkerID
        let connectedAt: ContinuousClock.Instant
        var state = State.handshaking
        var name = "?"
        /// The peer's Hello, kept while it authenticates: its name is part of the MAC, and admitting
        /// it afterwards needs its capabilities.
        var hello: Hello?
        /// This connection's nonces, while and after it authenticates (see `HandshakeAuthentication`).
        var serverNonce: [UInt8] = []
        var clientNonce: [UInt8] = []
        /// Closes the connection if it has not joined by the handshake timeout; cancelled once it joins.
        var handshakeTimer: TimerHandle?
        /// Whether the worker asked for the server's heartbeats (`Capabilities.server_heartbeats`).
        var wantsHeartbeats = false
        /// Refused pushes logged so far; see `logRefusal`.
        var refusalsLogged = 0
        /// What this worker pushes in and is sent weights in: the session's choices where the worker
        /// offered them, fp32 otherwise (a worker written before encodings existed).
        var pushEncoding: TensorEncoding = .fp32
        var pullEncoding: TensorEncoding = .fp32
        /// Whether the worker is sent the weights chain's frames (it offered deltas); and the chain
        /// point the server last sent it, which the worker holds once it has read what was queued.
        var followsChain = false
        /// Whether this worker takes its local steps with the session's Adam (it offered "adam" and the
        /// session has `localAdam`); else Nesterov.
        var usesLocalAdam = false
        /// What the server's publisher sent this worker (the chain point it holds), once admitted.
        var publication = PublisherPeerState(pullEncoding: .fp32, followsChain: false)
        /// A shard's ShardHello, kept while it authenticates; the range it holds once assigned; when
        /// anything last arrived from it (shards are dropped after the heartbeat timeout).
        var shardHello: ShardHello?
        var shardIndex: Int?
        /// Whether this connection was enrolled as a shard, and where workers reach it.
        var isShard = false
        var shardAddress: (host: String, port: Int)?
        var lastHeard: ContinuousClock.Instant
        /// A shard connection's bytes read at the last liveness check: bytes of a large frame still
        /// arriving count as life.
        var bytesReadAtCheck: UInt64 = 0

        init(connection: FrameConnection, worker: WorkerID, connectedAt: ContinuousClock.Instant) {
            self.connection = connection
            self.worker = worker
            self.connectedAt = connectedAt
            self.lastHeard = connectedAt
        }

        /// Connected and not yet admitted: saying Hello or authenticating.
        var isHandshaking: Bool { state == .handshaking || state == .authenticating }

        /// How the peer is named in logs: its name once known, and its address.
        var label: String { "\(worker) (\(name) at \(connection.remoteAddress))" }
    }

    public let configuration: ServerConfiguration
    public let loop: EventLoop
    let model: ServerModel
    let reporter: ProgressReporter
    /// Each epoch's order of the training samples, for a ledger made afresh (a sharded session's rollback).
    let permutation: @Sendable (_ epoch: Int) -> [UInt32]
    var coordinator: SessionCoordinator
    var listener: FrameListener?
    var peers: [WorkerID: Peer] = [:]
    var nextWorker: UInt64 = 1
    var timers: [TimerHandle] = []
    /// Fires at the coordinator's next deadline (a lease, a heartbeat timeout, an exclusion's end).
    var deadlineTimer: TimerHandle?
    var armedDeadline: ContinuousClock.Instant?
    var heartbeatSequence: UInt64 = 0
    /// The weights as workers are sent them: whole in each pull encoding, once per version for every
    /// puller (also when a fleet mixes encodings), and the chain of keyframes and deltas for workers
    /// that take deltas (see `WeightsPublisher`).
    lazy var publisher = WeightsPublisher(
        count: model.parameterCount, pullEncoding: configuration.pullEncoding, deltaEncoding: configuration.deltaEncoding,
        strideAllowed: configuration.policy.pullsMayLag, localSteps: configuration.localSteps)
    /// Where encoded pushes are decoded: one buffer for the session, not a fresh array per push.
    var decodedPush: [Float] = []
    /// Bytes of the protocol's frames received and queued, length prefixes included: the session's
    /// traffic, for the summary's bytes per sample.
    var wireBytesIn: UInt64 = 0
    var wireBytesOut: UInt64 = 0
    /// What the partly received frames of peers that have not joined may hold together.
    lazy var strangerBudget = FrameBufferBudget(limit: configuration.strangerBufferBudget)
    /// Evaluates the model at epoch ends (whose lines operators and scripts wait for).
    let evaluation = ComputeThread()
    /// Evaluates the snapshots of `--eval-every` and `--eval-interval`, only on cores nobody else wants (SCHED_IDLE): on a
    /// machine shared with workers, measuring accuracy finely must not slow the training it measures.
    /// Each result is labelled with the moment its snapshot was taken.
    let periodicEvaluation = ComputeThread()
    var clock = ContinuousClock()
    var startedAt: ContinuousClock.Instant?
    var lastEpochAt: ContinuousClock.Instant?
    var lastEpochUpdates: UInt64 = 0
    var lastEpochSamples: UInt64 = 0
    /// Evaluations handed to the evaluation thread and not yet reported.
    var evaluationsInFlight = 0
    var lastEvaluation: (loss: Double, accuracy: Double)?
    /// Training seconds at the first evaluation that reached `configuration.targetAccuracy`.
    var secondsToTarget: Double?
    /// When periodic evaluations fall due: `evaluateEvery` updates, `evaluateInterval` training seconds.
    lazy var evaluationCadence = EvaluationCadence(
        everySteps: configuration.evaluateEvery, intervalSeconds: configuration.evaluateInterval)
    /// Periodic (`evaluateEvery`, `evaluateInterval`) evaluations asked for and not yet reported: gathering, queued,
    /// running (see ParameterServerRuntime+PeriodicEvaluations.swift).
    var periodicEvaluationsPending = 0
    /// Snapshots waiting for the idle-priority thread, and the one it is evaluating.
    var periodicQueue: [PeriodicSnapshot] = []
    var periodicRunning: PeriodicSnapshot?
    /// Moves on when the idle thread's job is abandoned (the session finished, or went back to a
    /// snapshot): a result of an older generation is not recorded.
    var periodicGeneration = 0
    /// How many periodic evaluations may be pending at once: their snapshots together take at most 256 MiB
    /// (64 of the default MLP), and a sharded session gathers one at a time (each crosses the network).
    lazy var periodicEvaluationLimit = configuration.shards > 0
        ? 1 : max(1, min(64, (256 << 20) / max(1, model.parameters.count * MemoryLayout<Float>.size)))
    var finishing = false
    var finished = false
    /// Times the session went back to a snapshot in this process: evaluations begun before are not
    /// recorded after.
    var sessionEra = 0
    /// The shards of a sharded session (`configuration.shards` > 0): see ParameterServerRuntime+Shards.swift.
    lazy var shards = ShardRoster(configuration: configuration, parameterCount: model.parameterCount)
    /// Metrics hooks and the `/metrics` server, when `startMetrics` was called (see Metrics/).
    var metrics: SessionMetrics?
    var metricsServer: MetricsHTTPServer?

    // Checkpoints (see ParameterServerRuntime+Checkpoints.swift).
    /// Session and training seconds before this process, for a resumed session.
    var resumedSessionSeconds = 0.0
    var resumedTrainingSeconds = 0.0
    /// Times the session had been resumed before this process.
    var resumes = 0
    /// Samples trained before this process, for a resumed session.
    var resumedSamples: UInt64 = 0
    /// Encodes and writes checkpoints off the loop thread, one at a time.
    var checkpointWriter: ComputeThread?
    var checkpointsInFlight = 0
    var updatesAtLastCheckpoint: UInt64 = 0
    var lastCheckpointAt: ContinuousClock.Instant?
    var checkpointsWritten = 0

    /// When the server started, the zero of the report's time axes.
    let createdAt = ContinuousClock().now
    /// What the session did over time, for its run report (complete once `onFinished` is called).
    /// Callers may add rows to its configuration.
    public var history: SessionHistory

    /// Called once, on the loop thread, when the session is over and every connection is closed.
    public var onFinished: ((SessionResult) -> Void)?

    /// Creates the session.
    /// - Parameters:
    ///   - configuration: ports, limits and the session's rules.
    ///   - model: the model to train; its parameter count fixes every update's length.
    ///   - loop: the event loop to run on.
    ///   - reporter: where progress goes.
    ///   - permutation: each epoch's order of the first `configuration.trainSamples` sample indices.
    public init(
        configuration: ServerConfiguration, model: ServerModel, loop: EventLoop,
        reporter: ProgressReporter = ProgressReporter(),
        permutation: @escaping @Sendable (_ epoch: Int) -> [UInt32]
    ) {
        self.configuration = configuration
        self.model = model
        self.loop = loop
        self.reporter = reporter
        self.permutation = permutation
        let ledger = WorkUnitLedger(
            sampleCount: configuration.trainSamples, samplesPerUnit: configuration.samplesPerUnit,
            epochs: configuration.epochs, permutation: permutation)
        self.coordinator = SessionCoordinator(
            policy: configuration.policy, ledger: ledger, parameterCount: model.parameterCount)
        self.history = SessionHistory(title: "Downpour session \(configuration.sessionID)", configuration: configuration.reportRows)
    }

    /// Seconds since the session started: the report's time axis. A resumed session carries on
    /// from its checkpoint's time.
    var sinceStart: Double { resumedSessionSeconds + (clock.now - createdAt).seconds }

    /// Seconds spent training, in this process and, for a resumed session, before it.
    var trainingSeconds: Double {
        resumedTrainingSeconds + (startedAt.map { ((trainingEndedAt ?? clock.now) - $0).seconds } ?? 0)
    }
    /// When the last update was applied: evaluations still waiting then do not count as training time.
    var trainingEndedAt: ContinuousClock.Instant?

    /// The port the server listens on (after `start()`).
    public var port: Int { listener?.localPort ?? 0 }

    /// The coordinator's figures so far.
    public var statistics: SessionStatistics { coordinator.statistics }

    /// Work units in the whole session (every epoch).
    public var totalUnits: Int { coordinator.ledger.totalUnits }

    /// The learning rate of local steps now: the session's schedule over its work units, so that late
    /// deltas are small as a single process's late steps are.
    func localLearningRate(for peer: Peer) -> Float {
        let ledger = coordinator.ledger
        let peak = (peer.usesLocalAdam ? configuration.localAdam?.learningRate : nil) ?? configuration.localLearningRate
        return configuration.localSchedule.make(rate: peak, totalSteps: ledger.totalUnits)
            .rate(atStep: ledger.completedCount, totalSteps: ledger.totalUnits)
    }

    /// Binds, listens and starts the session's timers.
    /// - Throws: `ReactorError` when the address cannot be bound.
    /// - Warning: Call on the loop thread, or before the loop first runs.
    public func start() throws {
        periodicEvaluation.runOnlyWhenIdle()
        // Every connection starts as a stranger: small frames, from a shared budget, until it joins.
        var connectionConfiguration = FrameConnection.Configuration(
            maxFrameLength: min(configuration.strangerFrameBytes, configuration.maxFrameBytes))
        connectionConfiguration.stream.maxQueuedWriteBytes = configuration.maxQueuedWriteBytes
        // Workers send a heartbeat every second from their Welcome on, so a connection silent for
        // twice the longest timeout is dead or hostile, even one that was refused and never closed.
        let longest = max(configuration.policy.heartbeatTimeout, configuration.handshakeTimeout)
        connectionConfiguration.stream.idleTimeout = longest * 2
        listener = try FrameListener(
            loop: loop, host: configuration.host, port: configuration.port, configuration: connectionConfiguration,
            tls: configuration.tls
        ) { [unowned self] connection in
            self.accept(connection)
        }
        timers.append(loop.scheduleTimer(after: .seconds(1), repeating: .seconds(1)) { [unowned self] in
            self.tick()
        })
        let heartbeat = configuration.heartbeatInterval
        timers.append(loop.scheduleTimer(after: heartbeat, repeating: heartbeat) { [unowned self] in
            self.sendHeartbeats()
        })
        timers.append(loop.scheduleTimer(after: .milliseconds(250), repeating: .milliseconds(250)) { [unowned self] in
            self.drawBar()
        })
        let policy = configuration.policy
        var rules = "mode \(policy.mode.rawValue)"
        if policy.mode == .async { rules += ", staleness policy \(policy.stalenessPolicy.rawValue)" }
        if policy.mode == .ssp || policy.stalenessPolicy == .bound { rules += ", max staleness \(policy.maxStaleness)" }
        if configuration.shards > 0 { rules += "; parameters on \(configuration.shards) shard(s)" }
        reporter.line("ps-server listening on \(listener!.localAddress); session \(configuration.sessionID); \(rules)")
        reporter.line("model \(model.configuration) with \(model.parameterCount) parameters; "
            + "\(configuration.epochs) epoch(s) of \(configuration.trainSamples) samples in units of "
            + "\(configuration.batchSize) x \(configuration.localSteps)")
        if configuration.shards > 0 {
            coordinator.parametersAtShards = true
            reporter.line("waiting for \(configuration.shards) shard(s) (ps-shard HOST [PORT]) and \(policy.workersToStart) worker(s)")
        } else {
            reporter.line("waiting for \(policy.workersToStart) worker(s)")
        }
    }

    // MARK: Connections

    private func accept(_ connection: FrameConnection) {
        let worker = WorkerID(nextWorker)
        nextWorker += 1
        if finishing || finished {
            connection.sendError(.unavailable, "the session is over; connect to the next one", fatal: true)
            return
        }
        if peers.count >= configuration.maxConnections {
            reporter.line("refused \(connection.remoteAddress): at the connection limit (\(configuration.maxConnections))")
            connection.sendError(.unavailable, "the server is at its connection limit (\(configuration.maxConnections))", fatal: true)
            return
        }
        let peer = Peer(connection: connection, worker: worker, connectedAt: clock.now)
        peers[worker] = peer
        connection.bufferBudget = strangerBudget
        connection.onFrameRefused = { [weak peer] error in
            // The Reactor closes the connection after this, and onClose logs the error with the peer.
            if case .tls = error.kind {
                // Plaintext at a TLS listener: the one answer such a peer can read, in plaintext.
                peer?.connection.send(Envelope(body: .error(ErrorReport(
                    code: .unauthenticated, message: "this server speaks TLS 1.3 only: connect with TLS (ps-worker --tls-ca CA, or --tls)",
                    fatal: true))))
            } else {
                peer?.connection.send(Envelope(body: .error(ErrorReport(
                    code: .frameTooLarge, message: "frame refused: \(error.message)", fatal: true))))
            }
        }
        // The timeout covers the whole handshake, authentication included, and fires on time.
        peer.handshakeTimer = loop.scheduleTimer(after: configuration.handshakeTimeout) { [unowned self, weak peer] in
            guard let peer, peer.isHandshaking else { return }
            reporter.line("closing \(peer.connection.remoteAddress): no handshake within \(configuration.handshakeTimeout)")
            peer.state = .gone
            peer.connection.closeNow()
        }
        connection.onFrame = { [unowned self] payload in
            self.received(payload, from: peer)
        }
        connection.onClose = { [unowned self] error in
            self.closed(peer, error: error)
        }
    }

    private func closed(_ peer: Peer, error: ReactorError?) {
        peers[peer.worker] = nil
        peer.handshakeTimer?.cancel()
        peer.handshakeTimer = nil
        if peer.isShard {
            peer.state = .gone
            shardClosed(peer, reason: error.map { "connection lost (\($0))" } ?? "disconnected")
        } else if peer.state == .joined {
            peer.state = .gone
            let reason = error.map { "connection lost (\($0))" } ?? "disconnected"
            run(coordinator.leave(peer.worker, reason: reason, now: clock.now))
        } else if let error, peer.isHandshaking {
            reporter.line("connection from \(peer.connection.remoteAddress) closed before its handshake: \(error)")
        }
        if finishing { stopWhenDrained() }
    }

    private func received(_ payload: UnsafeRawBufferPointer, from peer: Peer) {
        guard peer.state != .gone else { return }
        wireBytesIn &+= UInt64(payload.count + 4)
        metrics?.didReceive(bytes: payload.count) // metrics hook: frame bytes in
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: payload)
        } catch {
            refuse(peer, .malformed, "frame of \(payload.count) bytes is not a valid Envelope: \(error)")
            return
        }
        peer.lastHeard = clock.now
        if peer.state == .joined {
            coordinator.heard(from: peer.worker, now: clock.now)
        }
        switch (peer.state, envelope.body) {
        case (.handshaking, .hello(let hello)?):
            handshake(peer, hello)
        case (.handshaking, .shardHello(let hello)?):
            shardHandshake(peer, hello)
        case (.shard, _):
            receivedFromShard(envelope, from: peer)
        case (.handshaking, _):
            refuse(peer, .malformed, "expected Hello as the first message, got \(envelope.bodyName)")
        case (.authenticating, .challengeResponse(let response)?):
            authenticate(peer, response)
        case (.authenticating, .error(let report)?):
            refuseAuthentication(peer, reason: "the worker gave up: \(report.message.prefix(200))", answer: nil)
        case (.authenticating, _):
            refuseAuthentication(peer, reason: "expected ChallengeResponse, got \(envelope.bodyName)",
                                 answer: "authentication failed: expected ChallengeResponse, got \(envelope.bodyName)")
        case (.joined, .pull?) where configuration.shards > 0:
            refuse(peer, .wrongShard, "this session's parameters are at its shards (Welcome.shards): pull them there")
        case (.joined, .pull(let pull)?):
            sendWeights(to: peer, knownVersion: pull.knownVersion)
        case (.joined, .push(let push)?):
            handlePush(push, from: peer)
        case (.joined, .heartbeat?):
            break
        case (.joined, .leave(let leave)?):
            peer.state = .gone
            run(coordinator.leave(peer.worker, reason: leave.reason.isEmpty ? "said goodbye" : "said goodbye (\(leave.reason))",
                                  now: clock.now))
            peer.connection.close()
        case (.joined, .error(let report)?):
            reporter.line("worker \(peer.label) reported \(report.code): \(report.message)")
        case (.joined, _):
            refuse(peer, .malformed, "\(envelope.bodyName) is not a message a worker may send now")
        case (.gone, _):
            break
        }
    }

    private func handshake(_ peer: Peer, _ hello: Hello) {
        peer.name = hello.workerName.isEmpty ? "unnamed" : String(hello.workerName.prefix(100))
        guard hello.protocolVersion == ProtocolVersion.current else {
            refuse(peer, .protocolVersion, "this server speaks protocol version \(ProtocolVersion.current) "
                + "but the worker speaks version \(hello.protocolVersion); run matching versions of ps-server and ps-worker")
            return
        }
        // With a token, nothing about the session is revealed before the worker proves it holds it.
        if configuration.token != nil {
            challenge(peer, hello)
        } else {
            admit(peer, hello)
        }
    }

    /// Welcomes a worker whose Hello (and proof, when the server has a token) was accepted.
    func admit(_ peer: Peer, _ hello: Hello) {
        let family = model.configuration.family
        let architectures = hello.capabilities?.architectures ?? []
        guard architectures.isEmpty || architectures.contains(family) else {
            refuse(peer, .modelMismatch, "this session trains a \(family) model; "
                + "the worker can build only \(architectures.joined(separator: ", "))")
            return
        }
        if configuration.shards > 0 {
            guard hello.capabilities?.encodings.contains(ShardMap.capability) == true else {
                refuse(peer, .unavailable, "this session's parameters are sharded over \(configuration.shards) ps-shard processes; "
                    + "the worker must offer \"\(ShardMap.capability)\"")
                return
            }
            // Welcomed once every shard holds its range: the Welcome names them.
            guard shards.isReady else {
                waitForShards(peer, hello)
                return
            }
        }
        guard coordinator.phase != .finished else {
            refuse(peer, .unavailable, "the session is over; connect to the next one")
            return
        }
        peer.state = .joined
        peer.handshakeTimer?.cancel()
        peer.handshakeTimer = nil
        // A member now: whole weight-sized frames, outside the strangers' budget.
        peer.connection.maxFrameLength = configuration.maxFrameBytes
        peer.connection.bufferBudget = nil
        let policy = configuration.policy
        let requested = Int(hello.capabilities?.maxUnitsAhead ?? 0)
        let capacity = coordinator.unitsAhead(requested: requested == 0 ? Int.max : requested)
        peer.wantsHeartbeats = hello.capabilities?.serverHeartbeats ?? false
        let offered = Set(hello.capabilities?.encodings ?? [])
        for (encoding, use) in [(configuration.pushEncoding, "pushes"), (configuration.pullEncoding, "weights")]
        where encoding != .fp32 && !offered.contains(encoding.name) {
            reporter.line("worker \(peer.label) does not offer \(encoding.name); its \(use) travel as fp32")
        }
        if offered.contains(configuration.pushEncoding.name) { peer.pushEncoding = configuration.pushEncoding }
        if offered.contains(configuration.pullEncoding.name) { peer.pullEncoding = configuration.pullEncoding }
        peer.followsChain = followsChain(peer, offered: offered)
        if configuration.localSteps > 1, let adam = configuration.localAdam {
            peer.usesLocalAdam = hello.capabilities?.localOptimizers.contains(LocalOptimizerKind.adam.rawValue) ?? false
            if !peer.usesLocalAdam {
                reporter.line("worker \(peer.label) does not offer adam; its local steps are Nesterov SGD at lr "
                    + "\(configuration.localLearningRate) (the session's Adam: lr \(adam.learningRate))")
            }
        }
        peer.publication = PublisherPeerState(pullEncoding: peer.pullEncoding, followsChain: peer.followsChain)
        var welcome = Welcome()
        welcome.protocolVersion = ProtocolVersion.current
        welcome.workerID = peer.worker.rawValue
        welcome.sessionID = configuration.sessionID
        welcome.mode = configuration.policy.mode.rawValue
        welcome.model = ModelSpec(configuration: model.configuration, layout: model.layout)
        welcome.batchSize = UInt32(configuration.batchSize)
        welcome.localSteps = UInt32(configuration.localSteps)
        welcome.localLearningRate = configuration.localLearningRate
        welcome.localMomentum = configuration.localMomentum
        if peer.usesLocalAdam, let adam = configuration.localAdam {
            welcome.localOptimizer = LocalOptimizerKind.adam.rawValue
            welcome.localLearningRate = adam.learningRate
            welcome.localWeightDecay = adam.weightDecay
        }
        welcome.trainSamples = UInt32(configuration.trainSamples)
        welcome.heartbeatIntervalMs = UInt32(configuration.heartbeatInterval.seconds * 1000)
        welcome.serverProof = serverProof(for: peer)
        if peer.wantsHeartbeats {
            welcome.serverHeartbeatIntervalMs = UInt32(configuration.heartbeatInterval.seconds * 1000)
        }
        // The rule applies to every update applied on arrival: async and ssp, never sync rounds.
        if policy.mode != .sync { welcome.stalenessPolicy = policy.stalenessPolicy.rawValue }
        welcome.maxStaleness = UInt32(clamping: policy.maxStaleness)
        welcome.unitsAhead = UInt32(clamping: capacity)
        welcome.pushEncoding = peer.pushEncoding.wire
        welcome.pullEncoding = peer.pullEncoding.wire
        if peer.followsChain { welcome.deltaEncoding = configuration.deltaEncoding?.wire }
        if configuration.shards > 0 {
            welcome.shards = shards.endpoints
            welcome.shardTicket = ShardTicket.make(key: shards.ticketKey, sessionID: configuration.sessionID, worker: peer.worker.rawValue)
        }
        send(Envelope(body: .welcome(welcome)), to: peer) // counts bytes out for metrics
        run(coordinator.join(peer.worker, name: peer.name, capacity: capacity, now: clock.now))
    }

    func handlePush(_ push: Push, from peer: Peer) {
        // A staged push waits until every shard has said it holds the slice (see +Shards).
        if push.staged, configuration.shards > 0, !stagedPushIsConfirmed(push, from: peer) { return }
        let kind: ModelUpdate.Kind
        switch push.kind {
        case .gradient: kind = .gradient
        case .delta: kind = .delta
        case .unrecognized(let raw):
            refuse(peer, .malformed, "Push.kind \(raw) is not an update kind this server knows")
            return
        }
        var input = SessionCoordinator.PushInput(
            unitID: push.unitID, baseVersion: push.baseVersion, kind: kind, loss: push.loss,
            sampleCount: Int(push.sampleCount), values: push.values)
        input.staged = push.staged
        if !push.encodedValues.isEmpty {
            input.values = []
            input.decodingError = decode(push, from: peer)
            if input.decodingError == nil { input.values = decodedPush }
        }
        metrics?.didReceivePush(encoding: push.encodedValues.isEmpty ? "fp32" : peer.pushEncoding.name,
                                bytes: push.encodedValues.isEmpty ? 4 * push.values.count : push.encodedValues.count)
        let actions = coordinator.push(from: peer.worker, input, now: clock.now)
        if push.staged, configuration.shards > 0, Self.refuses(actions, unit: push.unitID, of: peer.worker),
           !coordinator.roundHoldsPush(of: peer.worker, unit: push.unitID) {
            // Its slices wait at the shards: drop them there, before anything after this push is applied
            // (unless the open round holds this worker's earlier push of the unit: the shards keep the
            // slice for it).
            discardAtShards(worker: peer.worker, units: [push.unitID])
        }
        run(actions)
        checkpointIfDue()
    }

    /// Decodes an encoded push into `decodedPush`, or says why it cannot be.
    private func decode(_ push: Push, from peer: Peer) -> String? {
        guard peer.pushEncoding != .fp32 else {
            return "Push.encoded_values is set, but no encoding was negotiated (send fp32 in Push.values)"
        }
        guard push.values.isEmpty else { return "Push has both values and encoded_values" }
        let count = model.parameterCount
        if decodedPush.count != count { decodedPush = [Float](repeating: 0, count: count) }
        return peer.pushEncoding.decodeRefusal(push.encodedValues, into: &decodedPush).map { "Push.encoded_values: \($0)" }
    }

    /// Refuses a peer's message with a fatal error: logged, reported to the peer, connection closed.
    /// The coordinator requeues anything the peer held.
    func refuse(_ peer: Peer, _ code: ErrorReport.Code, _ message: String) {
        reporter.line("refused \(peer.label): \(message)")
        let wasJoined = peer.state == .joined
        peer.state = .gone
        peer.connection.sendError(code, message, fatal: true)
        if wasJoined {
            run(coordinator.leave(peer.worker, reason: "refused: \(message)", now: clock.now))
        }
    }

    // MARK: Time

    /// Once a second: checkpoints that are due by time, and the report's throughput and traffic samples. The
    /// session's own deadlines have a timer of their own (`armDeadline`).
    private func tick() {
        checkpointIfDue()
        if configuration.shards > 0 { tickShards() }
        if startedAt != nil, !finished {
            let statistics = coordinator.statistics
            history.throughput.append(.init(
                seconds: sinceStart, updates: statistics.updatesApplied,
                wireBytes: history.sessionWireBytes(wireBytesIn &+ wireBytesOut), samples: statistics.samplesTrained))
        }
    }
}

extension ParameterServerRuntime {
    /// Sets the deadline timer for the coordinator's next deadline, unless it is already set for that
    /// moment or earlier. A timer that fires early (libuv's clock is cached per loop iteration) ticks,
    /// finds nothing due, and is set again.
    func armDeadline() {
        guard !finished, let next = coordinator.nextDeadline else { return }
        if let armed = armedDeadline, armed <= next { return }
        deadlineTimer?.cancel()
        armedDeadline = next
        // Rounded up to the timer's millisecond, so that it does not fire just before the deadline.
        let delay = max(.milliseconds(1), next - clock.now + .microseconds(999))
        deadlineTimer = loop.scheduleTimer(after: delay) { [unowned self] in
            armedDeadline = nil
            deadlineTimer = nil
            run(coordinator.tick(now: clock.now))
            armDeadline()
        }
    }

    /// Queues `envelope` to `peer`, counting its bytes (and for metrics, when they are on).
    func send(_ envelope: Envelope, to peer: Peer) {
        let size = envelope.serializedSize()
        wireBytesOut &+= UInt64(size + 4)
        metrics?.didSend(bytes: size)
        peer.connection.sendFrame(payloadSize: size) { envelope.serialize(into: $0) }
    }

    /// Sends a heartbeat to every worker that asked for them, so it can tell a hung server from a quiet one.
    func sendHeartbeats() {
        guard !finished else { return }
        heartbeatSequence += 1
        let heartbeat = Heartbeat(seq: heartbeatSequence, unixNanos: Int64(Date().timeIntervalSince1970 * 1e9))
        for peer in peers.values where (peer.state == .joined && peer.wantsHeartbeats) || peer.state == .shard {
            send(Envelope(body: .heartbeat(heartbeat)), to: peer) // counts bytes out for metrics
        }
    }
}

/// What a finished session reports.
public struct SessionResult: Sendable {
    /// The machine-readable last line.
    public var summary: SummaryLine
    public var testAccuracy: Double
    public var testLoss: Double
    public var statistics: SessionStatistics
}
