import FoundationEssentials
import Glibc
import Learning
import Messages
import Reactor
import TensorEncoding
import WireCodec

/// A long-lived worker: connects to the server (retrying until it is up), joins the session, trains
/// the units it is given on a compute thread, and after the session goes back to waiting for the next
/// one ("continuous mode"), unless it was told to stop after one.
///
/// ```swift
/// let loop = try EventLoop()
/// let worker = WorkerRuntime(configuration: configuration, loop: loop, log: { print($0) }) { configuration in
///     TrainingWorkerModel(model: try registry.makeModel(configuration), trainSet: train)
/// }
/// worker.onExit = { _ in loop.stop() }
/// loop.execute { worker.start() }
/// try loop.run()
/// ```
///
/// - Warning: Every method runs on the loop's thread. Training runs on the compute thread, which hands
///   results back through `EventLoop.execute`.
public final class WorkerRuntime: @unchecked Sendable {
    // Why @unchecked Sendable is safe: every stored property is touched on the loop thread only; the
    // compute thread captures this object solely to hand results back through `EventLoop.execute`.

    /// Builds the model a session asks for, over this worker's training data for it; throws when it cannot.
    /// Called once per session: return a new model each time, since a model keeps its local optimiser's
    /// state (velocity, Adam's moments) from unit to unit, which must not carry over into another session.
    public typealias ModelFactory = (ModelConfiguration) throws -> WorkerModel

    /// One connection to a server, from handshake to close.
    final class Session: @unchecked Sendable {
        // Why @unchecked Sendable is safe: touched on the loop thread only; the compute thread carries
        // it back to the loop through `EventLoop.execute` without reading it.
        let connection: FrameConnection
        var welcome: Welcome?
        var model: ModelBox?
        /// How this session's local steps are taken (`Welcome.local_optimizer`).
        var localOptimizer = LocalOptimizer.nesterov(momentum: 0)
        /// The weights as the server's frames made them; units train on a copy. Unused when sharded.
        var replica = WeightsReplica(count: 0)
        /// A sharded session (`Welcome.shards`): the map, one link per shard, and the units whose
        /// slices some shard has yet to acknowledge. Nil and empty otherwise.
        var map: ShardMap?
        var shards: [ShardLink] = []
        var staged = StagedPushes(shardCount: 0)
        var slicesPushed = 0
        /// After a shard closed: the moment the session is given up, unless the server ends it first.
        var shardLossTimer: TimerHandle?
        var units: [Messages.WorkUnit] = []
        var computing = false
        /// Units started in this session, which say when to fetch (`WorkerConfiguration.fetchEvery`).
        var unitsStarted = 0
        /// Chooses when fetches ask (``PullTiming``), from the round trips and unit times measured here.
        var pullScheduler: PullScheduler
        /// When the pull now outstanding was sent (one at a time is timed).
        var pullSentAt: ContinuousClock.Instant?
        /// The unit training now fetches after its push; the next unit waits for the answer.
        var fetchesAfterPush = false
        /// A pull was sent behind the last push; no unit starts until its answer is applied.
        var awaitingPull = false
        /// The answer to the awaited pull is arriving; the next unit starts after the frames read with it.
        var pullWaitEnding = false
        /// Units that started from weights fetched after the push before them, waiting for them.
        var unitsOnFreshWeights = 0
        /// With `fetchEvery` > 1: the weights the last unit ended with (its weights plus its own update),
        /// with the versions they were first fetched at, from which the next unit goes on.
        var carriedOn: UnitWeights?
        var heartbeat: TimerHandle?
        var heartbeatSequence: UInt64 = 0
        /// When the last complete frame from the server arrived, and the timer that gives up on a
        /// server silent for twice its heartbeat interval (only when the server sends heartbeats).
        var lastHeardAt = ContinuousClock.now
        /// The connection's byte count when `lastHeardAt` was last moved by bytes alone.
        var bytesReadAtLastHeard: UInt64 = 0
        var serverSilenceLimit: Duration?
        var watchdog: TimerHandle?
        var ended = false
        var unitsPushed = 0
        var pushesApplied = 0
        /// Weights frames applied: whole ones and deltas.
        var wholeWeights = 0
        var deltas = 0
        /// The nonces of this connection's challenge, once the server sent one (see `HandshakeAuthentication`).
        var challenge = ClientChallenge()
        /// Authentication failed either way: retrying with the same token cannot succeed.
        var authenticationFailed = false

        init(connection: FrameConnection, pullTiming: PullTiming) {
            self.connection = connection
            pullScheduler = PullScheduler(timing: pullTiming)
        }
    }

    /// Hands a worker model to the compute thread.
    final class ModelBox: @unchecked Sendable {
        // Safe: after creation on the loop thread, the model is used only by jobs on the one compute
        // thread, which run one at a time.
        let model: WorkerModel
        /// Encodes whole pushes, keeping what each did not carry for the next (error feedback).
        var encoder: PushEncoder
        /// A sharded session: one encoder per shard, for its slices, each with its own error feedback.
        var sliceEncoders: [PushEncoder] = []

        init(_ model: WorkerModel, pushEncoding: TensorEncoding) {
            self.model = model
            encoder = PushEncoder(count: model.parameterCount, encoding: pushEncoding)
        }

        /// The push for `values`, encoded as ``PushEncoder/fill(_:with:)`` says.
        func push(unitID: UInt64, base: UInt64, kind: ModelUpdate.Kind, loss: Float, sampleCount: Int, values: [Float]) -> Push {
            var push = Push(unitID: unitID, baseVersion: base, kind: kind == .gradient ? .gradient : .delta,
                            loss: loss, sampleCount: UInt32(sampleCount))
            encoder.fill(&push, with: values)
            return push
        }
    }

    /// The injected faults' random stream for the compute thread (delays).
    final class ComputeFaults: @unchecked Sendable {
        // Safe: used only by jobs on the one compute thread, which run one at a time.
        let faults: FaultInjection
        var generator: Xoshiro256

        init(_ faults: FaultInjection) {
            self.faults = faults
            self.generator = Xoshiro256(seed: SplitMix64.derive(faults.seed, 1))
        }
    }

    public let configuration: WorkerConfiguration
    public let loop: EventLoop
    private let makeModel: ModelFactory
    let log: (String) -> Void
    private let compute = ComputeThread()
    private let computeFaults: ComputeFaults
    /// The injected faults' random stream for the loop thread (dropped connections).
    private var connectionFaults: Xoshiro256
    private var crashTimer: TimerHandle?
    /// The wait before reconnecting after a connection closed during its handshake.
    private var retryTimer: TimerHandle?
    /// When the injected `hang-after` fault takes hold; from then on no result is delivered.
    private var hangsAt: ContinuousClock.Instant?
    private var hung = false
    private(set) var session: Session?
    private var stopping = false

    /// Sessions this worker saw to their end.
    public private(set) var sessionsCompleted = 0
    /// Units pushed and pushes the server applied, over every session.
    public private(set) var unitsPushed = 0
    public private(set) var unitsApplied = 0
    /// Weights frames applied, over every session: whole weights, and deltas (`Weights.base_version`).
    public private(set) var wholeWeightsApplied = 0
    public private(set) var deltasApplied = 0
    /// Pulls sent, over every session (in a sharded session, to each shard).
    public internal(set) var pullsSent = 0
    /// Units, over every session, that waited for weights fetched after the push before them (``PullTiming``).
    public internal(set) var unitsOnFreshWeights = 0

    /// Whether the worker holds a connection to a server, and whether it has joined its session.
    public var isConnected: Bool { session != nil }
    public var isInSession: Bool { session?.welcome != nil && session?.ended == false }

    /// Called once, on the loop thread, when the worker is done: after `leave(reason:)`, or after its
    /// session with `once`. The argument is the exit status to use.
    public var onExit: ((Int32) -> Void)?

    /// Creates a worker.
    /// - Parameters:
    ///   - configuration: where the server is and how to behave.
    ///   - loop: the event loop for network I/O.
    ///   - log: where status lines go.
    ///   - makeModel: builds the model a session asks for.
    public init(
        configuration: WorkerConfiguration, loop: EventLoop,
        log: @escaping (String) -> Void, makeModel: @escaping ModelFactory
    ) {
        self.configuration = configuration
        self.loop = loop
        self.log = log
        self.makeModel = makeModel
        self.computeFaults = ComputeFaults(configuration.faults)
        self.connectionFaults = Xoshiro256(seed: SplitMix64.derive(configuration.faults.seed, 2))
    }

    /// Starts connecting; retries every `retryInterval` until the server is up.
    ///
    /// - Warning: Call on the loop thread, or before the loop first runs.
    public func start() {
        if let crashAfter = configuration.faults.crashAfter {
            crashTimer = loop.scheduleTimer(after: crashAfter) { [weak self] in
                self?.log("injected fault: crashing now (crash-after=\(crashAfter))")
                // Like the OOM killer or a power cut: no goodbye, no flush.
                kill(getpid(), SIGKILL)
            }
        }
        if !configuration.faults.isEmpty {
            log("injecting faults: \(configuration.faults)")
        }
        hangsAt = configuration.faults.hangAfter.map { .now + $0 }
        connect()
    }

    /// Leaves gracefully: tells the server (which requeues this worker's units at once), closes, and
    /// calls `onExit(0)` once the goodbye is written.
    public func leave(reason: String) {
        loop.preconditionInEventLoop()
        guard !stopping else { return }
        stopping = true
        retryTimer?.cancel()
        if let session, session.welcome != nil {
            log("leaving: \(reason)")
            closeShards(of: session)
            session.connection.send(Envelope(body: .leave(Leave(reason: reason))))
            session.connection.close()
        } else if let session {
            session.connection.closeNow()
        } else {
            exit(0)
        }
    }

    // MARK: Connecting

    private func connect() {
        FrameConnection.connectUntilUp(
            loop: loop, host: configuration.host, port: configuration.port, configuration: frameConfiguration,
            tls: configuration.tls, serverName: configuration.tlsServerName, retryInterval: configuration.retryInterval,
            log: { [weak self] in self?.log($0) }, isStopping: { [weak self] in self?.stopping ?? true },
            exit: { [weak self] in self?.exit($0) }, connected: { [weak self] in self?.connected($0) })
    }

    /// Frames up to `maxFrameBytes`, and no idle timeout: the server's liveness is the heartbeat
    /// watchdog's business, and shards send nothing while nothing is asked of them.
    var frameConfiguration: FrameConnection.Configuration {
        var frameConfiguration = FrameConnection.Configuration(maxFrameLength: configuration.maxFrameBytes)
        frameConfiguration.stream.idleTimeout = nil
        return frameConfiguration
    }

    private func connected(_ connection: FrameConnection) {
        let session = Session(connection: connection, pullTiming: configuration.pullTiming)
        self.session = session
        connection.onFrame = { [unowned self] payload in
            self.received(payload, in: session)
        }
        connection.onClose = { [unowned self] error in
            self.closed(session, error: error)
        }
        var capabilities = Capabilities()
        capabilities.threads = UInt32(configuration.threads)
        capabilities.architectures = configuration.models
        capabilities.maxUnitsAhead = UInt32(configuration.unitsAhead)
        capabilities.serverHeartbeats = true
        capabilities.encodings = configuration.encodings
        capabilities.localOptimizers = configuration.localOptimizers
        connection.send(Envelope(body: .hello(Hello(
            protocolVersion: ProtocolVersion.current, workerName: configuration.name, capabilities: capabilities))))
    }

    private func closed(_ session: Session, error: ReactorError?) {
        closeShards(of: session)
        session.heartbeat?.cancel()
        session.heartbeat = nil
        session.watchdog?.cancel()
        session.watchdog = nil
        if self.session === session { self.session = nil }
        if stopping {
            exit(0)
        } else if session.authenticationFailed {
            // The same token (or the same plaintext, at a TLS server) would fail the same way: exit, so
            // the operator notices.
            log("the handshake failed; not retrying")
            exit(1)
        } else if let error, case .tls = error.kind, session.welcome == nil {
            // A TLS handshake that failed (an unknown CA, a wrong name, an expired certificate, a server
            // that does not speak TLS) would fail the same way again: exit, so the operator notices.
            log("error: \(error.message); not retrying")
            exit(1)
        } else if session.ended {
            if configuration.once {
                exit(0)
            } else {
                log("waiting for the next session")
                connect()
            }
        } else if session.welcome == nil {
            // Closed during the handshake (a server at its connection limit, say): try again after the
            // retry interval, not at once, or a refusing server would be asked thousands of times a second.
            let reason = error.map { " (\($0))" } ?? ""
            log("connection to the server closed during the handshake\(reason); retrying in \(configuration.retryInterval.logText)")
            retryTimer = loop.scheduleTimer(after: configuration.retryInterval) { [weak self] in
                guard let self, !self.stopping else { return }
                self.connect()
            }
        } else {
            let reason = error.map { " (\($0))" } ?? ""
            log("connection to the server closed\(reason); \(session.units.count + (session.computing ? 1 : 0)) unit(s) dropped")
            connect()
        }
    }

    private func exit(_ status: Int32) {
        guard let onExit else { return }
        self.onExit = nil
        compute.stop()
        onExit(status)
    }

    // MARK: Messages

    private func received(_ payload: UnsafeRawBufferPointer, in session: Session) {
        session.lastHeardAt = .now
        session.bytesReadAtLastHeard = session.connection.bytesRead
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: payload)
        } catch {
            fail(session, .malformed, "frame of \(payload.count) bytes from the server is not a valid Envelope: \(error)")
            return
        }
        switch envelope.body {
        case .welcome(let welcome)?:
            handleWelcome(welcome, in: session)
        case .weights(let weights)?:
            handleWeights(weights, in: session)
        case .workUnit(let unit)?:
            handleUnit(unit, in: session)
        case .pushAck(let ack)?:
            if ack.applied {
                session.pushesApplied += 1
                unitsApplied += 1
            } else {
                log("unit \(ack.unitID) not applied: \(ack.reason.isEmpty ? "no reason given" : ack.reason)")
            }
        case .sessionEnd(let end)?:
            session.ended = true
            sessionsCompleted += 1
            log("session over: test accuracy \(SummaryLine.format(end.testAccuracy * 100, digits: 2))% after "
                + "\(end.updates) updates; this worker pushed \(session.unitsPushed) unit(s), \(session.pushesApplied) applied; "
                + "weights: \(session.wholeWeights) whole, \(session.deltas) deltas"
                + (session.welcome?.mode == TrainingMode.sync.rawValue ? ""
                    : "; \(session.unitsOnFreshWeights) unit(s) waited for weights fetched after the push before")
                + (session.shards.isEmpty ? "" : "; \(session.slicesPushed) slice(s) pushed to \(session.shards.count) shards"))
            closeShards(of: session)
            session.connection.close()
        case .error(let report)?:
            log("server: \(report.message)" + (report.fatal ? " (closing)" : ""))
            if report.code == .unauthenticated, session.welcome == nil {
                session.authenticationFailed = true
                // Only a worker that answered a challenge was judged on its token; a refusal before any
                // challenge (plaintext at a TLS server) is about something else, which the server's
                // message says.
                if !session.challenge.wasChallenged {
                    log("error: the server refused this worker: \(report.message)")
                } else {
                    log("error: the server refused this worker's token; give it the server's token "
                        + "(--token-file or \(AuthenticationToken.environmentVariable))")
                }
            }
        case .challenge(let challenge)?:
            answer(challenge, in: session)
        case .heartbeat?:
            break
        case .hello?, .pull?, .push?, .leave?, .challengeResponse?, .shardJoin?, nil:
            fail(session, .malformed, "the server sent \(envelope.bodyName), which only a worker sends")
        case .shardHello?, .shardState?, .sliceReceived?:
            fail(session, .malformed, "the server sent \(envelope.bodyName), which only a shard sends")
        case .shardAssignment?, .shardApply?, .shardDiscard?, .shardStateRequest?:
            fail(session, .malformed, "the server sent \(envelope.bodyName), which a server sends only to its shards")
        }
    }

    private func handleWelcome(_ welcome: Welcome, in session: Session) {
        guard session.welcome == nil else {
            fail(session, .malformed, "the server sent a second Welcome")
            return
        }
        guard serverIsAuthentic(welcome, in: session) else { return }
        guard welcome.protocolVersion == ProtocolVersion.current else {
            fail(session, .protocolVersion, "this worker speaks protocol version \(ProtocolVersion.current) "
                + "but the server speaks \(welcome.protocolVersion); run matching versions of ps-server and ps-worker")
            return
        }
        guard let spec = welcome.model else {
            fail(session, .malformed, "the server's Welcome has no model")
            return
        }
        guard welcome.batchSize > 0, welcome.localSteps > 0 else {
            fail(session, .malformed, "the server's Welcome has a zero batch size or zero local steps")
            return
        }
        // A server asks only for what this worker offered; anything else is a server that does not follow
        // the protocol, and guessing would train with the wrong rule.
        guard let localOptimizer = LocalOptimizer(
            wireName: welcome.localOptimizer, momentum: welcome.localMomentum, weightDecay: welcome.localWeightDecay),
            welcome.localOptimizer.isEmpty || welcome.localOptimizer == LocalOptimizerKind.nesterov.rawValue
                || self.configuration.localOptimizers.contains(welcome.localOptimizer)
        else {
            fail(session, .malformed, "the server's Welcome asks for local optimiser \"\(welcome.localOptimizer)\", "
                + "which this worker did not offer (it offered \(self.configuration.localOptimizers.isEmpty ? "none besides nesterov" : self.configuration.localOptimizers.joined(separator: ", ")))")
            return
        }
        session.localOptimizer = localOptimizer
        let configuration = spec.modelConfiguration
        let parameterCount = Int(clamping: spec.parameterCount)
        let pushEncoding: TensorEncoding
        do {
            pushEncoding = try TensorEncoding(wire: welcome.pushEncoding, count: parameterCount)
            session.replica = WeightsReplica(
                count: parameterCount, pullEncoding: try TensorEncoding(wire: welcome.pullEncoding, count: parameterCount),
                deltaEncoding: try welcome.deltaEncoding.map { encoding throws(EncodingChoiceError) in
                    try TensorEncoding(wire: encoding, count: parameterCount)
                })
        } catch {
            fail(session, .badEncoding, "cannot use the session's encodings: \(error)")
            return
        }
        let model: WorkerModel
        do {
            model = try makeModel(configuration)
        } catch {
            fail(session, .modelMismatch, "cannot build the session's model \(configuration): \(error)")
            return
        }
        guard model.layout == spec.layout, model.parameterCount == parameterCount else {
            fail(session, .modelMismatch, "the server's \(configuration) has \(parameterCount) parameters in its layout; "
                + "the same model built here has \(model.parameterCount)\(model.parameterCount == parameterCount ? " in another layout" : "")")
            return
        }
        guard Int(welcome.trainSamples) <= model.trainSampleCount, welcome.trainSamples > 0 else {
            fail(session, .modelMismatch, "the session trains on \(welcome.trainSamples) samples; this worker holds \(model.trainSampleCount)")
            return
        }
        if !welcome.shards.isEmpty {
            guard prepareShards(welcome, parameterCount: parameterCount, in: session) else { return }
        }
        // A sharded session's whole pushes are only ever the fp32 one of an update that is not finite.
        let box = ModelBox(model, pushEncoding: session.map == nil ? pushEncoding : .fp32)
        box.sliceEncoders = session.shards.map { PushEncoder(count: $0.range.count, encoding: $0.pushEncoding) }
        session.model = box
        session.welcome = welcome
        log("joined session \(welcome.sessionID) as worker \(welcome.workerID): mode \(welcome.mode), "
            + "\(configuration) with \(parameterCount) parameters, "
            + "units of \(welcome.batchSize) x \(welcome.localSteps)"
            + (welcome.localSteps > 1 ? ", local steps with \(session.localOptimizer) at lr \(welcome.localLearningRate)" : "")
            + (session.shards.isEmpty ? "" : "; parameters on \(session.shards.count) shards (\(session.shards.map(\.address).joined(separator: ", ")))"))
        let interval = Duration.milliseconds(max(100, Int(welcome.heartbeatIntervalMs == 0 ? 1000 : welcome.heartbeatIntervalMs)))
        session.heartbeat = loop.scheduleTimer(after: interval, repeating: interval) { [unowned session] in
            session.heartbeatSequence += 1
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            session.connection.send(Envelope(body: .heartbeat(Heartbeat(seq: session.heartbeatSequence, unixNanos: now))))
        }
        if welcome.serverHeartbeatIntervalMs > 0 {
            session.serverSilenceLimit = .milliseconds(2 * Int(welcome.serverHeartbeatIntervalMs))
            watchServer(session)
        }
        connectShards(of: session)
    }

    /// Gives up on a server from which no complete frame arrived for twice its heartbeat interval: it
    /// is hung, or the network between is gone. The connection is dropped and the worker reconnects,
    /// as after a server restart. The timer is set for the moment the limit would pass, and set again
    /// if a frame arrived meanwhile.
    private func watchServer(_ session: Session) {
        guard let limit = session.serverSilenceLimit, self.session === session, !session.ended else { return }
        let now = ContinuousClock.now
        // Bytes of a frame still arriving count as life: on a slow link a heartbeat can wait behind a
        // weights frame for longer than the limit.
        let bytesRead = session.connection.bytesRead
        if bytesRead != session.bytesReadAtLastHeard {
            session.bytesReadAtLastHeard = bytesRead
            session.lastHeardAt = max(session.lastHeardAt, now)
        }
        let deadline = session.lastHeardAt + limit
        if now >= deadline {
            log("the server sent nothing for \((now - session.lastHeardAt).logText) (twice its heartbeat interval); "
                + "taking it for dead and reconnecting")
            session.connection.closeNow()
            return
        }
        // Rounded up to the timer's millisecond so it does not fire just before the deadline.
        session.watchdog = loop.scheduleTimer(after: deadline - now + .microseconds(999)) { [weak self, unowned session] in
            self?.watchServer(session)
        }
    }

    private func handleWeights(_ weights: Weights, in session: Session) {
        guard session.welcome != nil else {
            fail(session, .malformed, "the server sent Weights before Welcome")
            return
        }
        guard session.map == nil else {
            fail(session, .malformed, "the server sent Weights in a sharded session; the shards serve the weights")
            return
        }
        if let sent = session.pullSentAt {
            session.pullScheduler.pullAnswered(after: .now - sent)
            session.pullSentAt = nil
        }
        do {
            switch try session.replica.apply(weights) {
            case .updated:
                applied(weights, in: session)
            case .unchanged:
                break
            case .baseMismatch(let base, let held):
                // Never train on weights the delta was not made for: ask for whole weights, and train
                // on the ones held meanwhile (they are the server's, only older). A wait goes on for them.
                log("the server's delta (Weights.base_version \(base)) is not on the version this worker holds "
                    + "(\(held.map(String.init) ?? "none")); asking for whole weights")
                session.connection.send(Envelope(body: .pull(Pull(knownVersion: 0))))
                return
            }
        } catch {
            fail(session, error.code, error.description)
            return
        }
        // Any weights from the server end a wait for fresh ones: they are the newest it has.
        if session.awaitingPull { endPullWait(in: session) }
    }

    /// The answer the next unit waits for has begun to arrive. It may be several frames (deltas, or a
    /// keyframe and deltas; the last holds this worker's push), so the unit starts once the frames
    /// read with this one are applied, not at the first.
    private func endPullWait(in session: Session) {
        guard !session.pullWaitEnding else { return }
        session.pullWaitEnding = true
        loop.execute { [self] in
            session.pullWaitEnding = false
            session.awaitingPull = false
            guard self.session === session, !session.ended else { return }
            let started = session.unitsStarted
            startNextUnit(in: session)
            if session.unitsStarted > started {
                session.unitsOnFreshWeights += 1
                unitsOnFreshWeights += 1
            }
        }
    }

    /// Counts a Weights frame (the server's, or a shard's slice) that changed the weights held, which
    /// may let the next unit start.
    func applied(_ weights: Weights, in session: Session) {
        if weights.baseVersion == nil {
            session.wholeWeights += 1
            wholeWeightsApplied += 1
        } else {
            session.deltas += 1
            deltasApplied += 1
        }
        startNextUnit(in: session)
    }

    private func handleUnit(_ unit: Messages.WorkUnit, in session: Session) {
        guard let welcome = session.welcome else {
            fail(session, .malformed, "the server sent a WorkUnit before Welcome")
            return
        }
        let limit = welcome.trainSamples
        guard !unit.indices.isEmpty, unit.indices.count <= Int(welcome.batchSize) * Int(welcome.localSteps),
              unit.indices.allSatisfy({ $0 < limit }) else {
            fail(session, .malformed, "work unit \(unit.unitID) has \(unit.indices.count) indices, or one outside the session's \(limit) samples")
            return
        }
        session.units.append(unit)
        askShardsForRounds(in: session)
        startNextUnit(in: session)
    }

    /// Refuses something the server sent: reports it, logs it and closes (then reconnects).
    func fail(_ session: Session, _ code: ErrorReport.Code, _ message: String) {
        log("error: \(message)")
        session.connection.sendError(code, message, fatal: true)
    }

    // MARK: Compute

    /// Starts the next unit on the compute thread if it is idle and the unit's weights are here.
    ///
    /// In async and ssp modes it also decides when the next fetch unit's weights are asked for: after
    /// this unit's push, the next unit then waiting for them, or now, to arrive while this one trains.
    func startNextUnit(in session: Session) {
        guard !session.computing, !session.awaitingPull, let unit = session.units.first, session.holdsWeights(atLeast: unit.minVersion),
              let box = session.model, let welcome = session.welcome else { return }
        session.units.removeFirst()
        session.computing = true
        let asynchronous = welcome.mode != TrainingMode.sync.rawValue
        let fetchEvery = asynchronous ? max(1, configuration.fetchEvery) : 1
        // A fetch unit starts from the replica (a copy: a delta arriving while the unit trains changes
        // the replica, never these weights); the units between go on from the worker's own weights,
        // unless those are older than the unit allows.
        let fetches = session.unitsStarted % fetchEvery == 0
        let weights: UnitWeights
        if !fetches, let carried = session.carriedOn, carried.base >= unit.minVersion {
            weights = carried
        } else {
            weights = session.heldWeights()
        }
        session.unitsStarted += 1
        // The next fetch unit's weights are asked for after this unit's push when that wait is cheap,
        // else now, to arrive while this unit trains. (A sharded session's slices are always asked for now.)
        let nextFetches = asynchronous && session.unitsStarted % fetchEvery == 0
        session.fetchesAfterPush = nextFetches && session.shards.isEmpty && session.pullScheduler.waitsAfterPush
        if nextFetches && !session.fetchesAfterPush {
            if session.shards.isEmpty {
                pullFromServer(in: session)
            } else {
                for link in session.shards { pull(from: link) }
            }
        }
        let batchSize = Int(welcome.batchSize)
        let localSteps = Int(welcome.localSteps)
        // The unit's rate follows the session's schedule; a server that sends none means the Welcome's.
        let rate = unit.localLearningRate > 0 && unit.localLearningRate.isFinite ? unit.localLearningRate : welcome.localLearningRate
        let optimizer = session.localOptimizer
        let loop = self.loop
        let faults = computeFaults
        let map = session.map
        compute.submit { [self] in
            let clock = ContinuousClock()
            let started = clock.now
            let result = box.model.train(
                indices: unit.indices, weights: weights.values, batchSize: batchSize, localSteps: localSteps, learningRate: rate,
                optimizer: optimizer)
            if !faults.faults.isEmpty {
                let extra = faults.faults.extraTime(afterComputing: clock.now - started, using: &faults.generator)
                if extra > .zero { usleep(UInt32(min(extra.seconds * 1e6, Double(UInt32.max)))) }
            }
            let trainingTime = clock.now - started
            let pushes = box.pushes(unitID: unit.unitID, weights: weights, result: result, sampleCount: unit.indices.count, map: map)
            let carriedOn = fetchEvery > 1
                ? Self.carryOn(weights.values, update: result.values, kind: result.kind, learningRate: rate) : nil
            loop.execute { [self] in
                session.pullScheduler.unitTrained(in: trainingTime)
                // Replaced after every unit, and cleared when it diverged: never an older unit's weights.
                if fetchEvery > 1 {
                    session.carriedOn = carriedOn.map { UnitWeights(values: $0, base: weights.base, sliceBases: weights.sliceBases) }
                }
                self.finished(pushes, in: session)
            }
        }
    }

    /// The weights a unit ended with: those it trained from plus its own update (a delta as it is; a
    /// gradient as one SGD step at the local rate, as Downpour's replicas step between fetches).
    /// Nil when they are not finite: the next unit then starts from the server's weights.
    private static func carryOn(_ weights: [Float], update: [Float], kind: ModelUpdate.Kind, learningRate: Float) -> [Float]? {
        guard update.count == weights.count else { return nil }
        let scale: Float = kind == .delta ? 1 : -learningRate
        var next = weights
        next.withUnsafeMutableBufferPointer { w in
            update.withUnsafeBufferPointer { u in
                for i in 0..<w.count { w[i] += scale * u[i] }
            }
        }
        return next.allFinite ? next : nil
    }

    private func finished(_ pushes: UnitPushes, in session: Session) {
        if let hangsAt, ContinuousClock.now >= hangsAt {
            // Stuck: the unit never comes back and no other starts (computing stays set), while the
            // loop thread goes on answering with heartbeats.
            if !hung { log("injected fault: hanging with unit \(pushes.unitID) (hang-after); heartbeats go on") }
            hung = true
            return
        }
        session.computing = false
        // A result for a connection that has gone is dropped: the server requeued the unit.
        guard self.session === session, !session.ended else { return }
        if configuration.faults.dropsConnection(using: &connectionFaults) {
            log("injected fault: dropping the connection instead of pushing unit \(pushes.unitID)")
            session.connection.closeNow()
            return
        }
        switch pushes {
        case .whole(let push):
            pushToServer(push, in: session)
            if session.fetchesAfterPush {
                // Asked for behind the push on the same connection, so the answer includes it when the
                // server publishes a new version; the next unit waits for it.
                pullFromServer(in: session)
                session.awaitingPull = true
            }
        case .sliced(let server, let slices):
            // The server hears of the unit once every shard holds its slice; training goes on meanwhile.
            pushSlices(slices, staging: server, in: session)
        }
        startNextUnit(in: session)
    }

    /// Asks the server for what changed since the weights held, timing the first outstanding pull.
    private func pullFromServer(in session: Session) {
        session.connection.send(Envelope(body: .pull(Pull(knownVersion: session.replica.version))))
        pullsSent += 1
        if session.pullSentAt == nil { session.pullSentAt = .now }
    }

    /// Sends the server a unit's push: the whole update, or a sharded unit's staged push.
    func pushToServer(_ push: Push, in session: Session) {
        session.connection.send(Envelope(body: .push(push)))
        session.unitsPushed += 1
        unitsPushed += 1
    }
}
