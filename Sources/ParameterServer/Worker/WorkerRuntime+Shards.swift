import Learning
import Messages
import Reactor
import TensorEncoding

/// The weights a unit trains from, with the versions its `Push.base_version`s name.
struct UnitWeights: Sendable {
    /// The whole parameter buffer.
    var values: [Float]
    /// Its version: the server's, or in a sharded session the lowest of the slices'.
    var base: UInt64
    /// A sharded session: each slice's version, in the map's order; empty otherwise.
    var sliceBases: [UInt64]
}

/// What a trained unit sends.
enum UnitPushes: Sendable {
    /// One push to the server: every unsharded unit, and a sharded unit whose update is not finite (in
    /// fp32, for the server to refuse and requeue at once).
    case whole(Push)
    /// A sharded unit: one slice per shard, in the map's order, then `server` (staged, no values) once
    /// every shard has said `SliceReceived`.
    case sliced(server: Push, slices: [Push])

    var unitID: UInt64 {
        switch self {
        case .whole(let push), .sliced(let push, _): push.unitID
        }
    }
}

extension WorkerRuntime.Session {
    /// Whether a unit that needs weights of at least `minVersion` can start: the server's weights are
    /// here at that version, or in a sharded session every shard's slice is.
    func holdsWeights(atLeast minVersion: UInt64) -> Bool {
        if shards.isEmpty { return replica.holdsWeights && replica.version >= minVersion }
        return shards.allSatisfy { $0.replica.holdsWeights && $0.replica.version >= minVersion }
    }

    /// The weights held now: the server's, or the slices put end to end.
    func heldWeights() -> UnitWeights {
        guard let map else { return UnitWeights(values: replica.values, base: replica.version, sliceBases: []) }
        let bases = shards.map(\.replica.version)
        return UnitWeights(values: map.join(shards.map(\.replica.values)), base: bases.min() ?? 0, sliceBases: bases)
    }
}

extension WorkerRuntime.ModelBox {
    /// What a trained unit sends. Unsharded (`map` nil): the whole push, encoded. Sharded: each
    /// shard's slice in its encoding, with its own error feedback, and the server's staged push; or,
    /// when the update or loss is not finite, the whole fp32 push (a shard would refuse every slice,
    /// and the unit would wait for its lease to expire instead of being requeued at once).
    ///
    /// - Warning: Compute thread only.
    func pushes(unitID: UInt64, weights: UnitWeights, result: (kind: ModelUpdate.Kind, values: [Float], loss: Float),
                sampleCount: Int, map: ShardMap?) -> UnitPushes {
        let kind: UpdateKind = result.kind == .gradient ? .gradient : .delta
        guard let map, result.loss.isFinite, result.values.allFinite, result.values.count == map.parameterCount else {
            return .whole(push(unitID: unitID, base: weights.base, kind: result.kind, loss: result.loss, sampleCount: sampleCount,
                               values: result.values))
        }
        let slices = map.ranges.map { range in
            var slice = Push(unitID: unitID, baseVersion: weights.sliceBases[range.index], kind: kind, loss: result.loss,
                             sampleCount: UInt32(sampleCount))
            sliceEncoders[range.index].fill(&slice, with: Array(result.values[range.indices]))
            return slice
        }
        let server = Push(unitID: unitID, baseVersion: weights.base, kind: kind, loss: result.loss,
                          sampleCount: UInt32(sampleCount), staged: true)
        return .sliced(server: server, slices: slices)
    }
}

/// The worker's side of a sharded session (Schemas/Messages/README.md, "Shards"): it pulls and pushes
/// slices at every shard, and tells the server of a unit only once every shard holds its slice.
extension WorkerRuntime {
    /// After a shard's connection closed, how long the server has to end the session (a shard closes
    /// its workers when the session ends, which may reach a worker before the server's `SessionEnd`)
    /// before the worker takes the shard for lost and joins again.
    static let shardLossGrace: Duration = .milliseconds(500)

    /// Checks a sharded Welcome's map and makes one link per shard. On a map that does not cover the
    /// model, refuses the session (`CODE_WRONG_SHARD`) and returns false.
    func prepareShards(_ welcome: Welcome, parameterCount: Int, in session: Session) -> Bool {
        guard configuration.encodings.contains(ShardMap.capability) else {
            fail(session, .wrongShard, "the server's Welcome puts the parameters on \(welcome.shards.count) shards, "
                + "but this worker did not offer \"\(ShardMap.capability)\"")
            return false
        }
        let map: ShardMap
        do {
            map = try ShardMap(endpoints: welcome.shards, parameterCount: parameterCount)
        } catch {
            fail(session, .wrongShard, "the server's shard map is unusable: \(error)")
            return false
        }
        do {
            session.shards = try zip(map.ranges, welcome.shards).map { range, endpoint throws(EncodingChoiceError) in
                ShardLink(
                    range: range, host: endpoint.host, port: Int(endpoint.port),
                    replica: WeightsReplica(
                        count: range.count,
                        pullEncoding: try range.encoding(wire: welcome.pullEncoding, parameterCount: parameterCount),
                        deltaEncoding: try welcome.deltaEncoding.map { encoding throws(EncodingChoiceError) in
                            try range.encoding(wire: encoding, parameterCount: parameterCount)
                        }),
                    pushEncoding: try range.encoding(wire: welcome.pushEncoding, parameterCount: parameterCount))
            }
        } catch {
            fail(session, .badEncoding, "cannot use the session's encodings for the shards' slices: \(error)")
            return false
        }
        session.map = map
        session.staged = StagedPushes(shardCount: map.ranges.count)
        return true
    }

    /// Dials every shard of a welcomed sharded session, retrying for `shardConnectTimeout` (the
    /// shards are up before the server welcomes anyone, so only a moment's trouble is worth waiting for).
    func connectShards(of session: Session) {
        guard let welcome = session.welcome, !session.shards.isEmpty else { return }
        let deadline = ContinuousClock.now + configuration.shardConnectTimeout
        let timeout = configuration.shardConnectTimeout
        for link in session.shards {
            FrameConnection.connect(
                loop: loop, host: link.host, port: link.port, configuration: frameConfiguration,
                tls: configuration.tls, serverName: configuration.tlsServerName,
                retryInterval: min(configuration.retryInterval, .milliseconds(500)), deadline: deadline,
                onAttemptFailed: { [weak self] error, attempt in
                    self?.log("\(link.name) not available (\(error.message)) [attempt \(attempt)]")
                },
                completion: { [weak self] result in
                    guard let self else { return }
                    guard self.session === session, !session.ended, !link.closing else {
                        if case .success(let connection) = result { connection.closeNow() }
                        return
                    }
                    switch result {
                    case .success(let connection):
                        self.joinShard(link, over: connection, welcome: welcome, in: session)
                    case .failure(let error):
                        link.closing = true
                        self.log("could not reach \(link.name) within \(timeout.logText): \(error.message); "
                            + "leaving the session to join again")
                        self.dropSession(session)
                    }
                })
        }
    }

    private func joinShard(_ link: ShardLink, over connection: FrameConnection, welcome: Welcome, in session: Session) {
        link.connection = connection
        connection.onFrame = { [unowned self] payload in
            self.received(payload, from: link, in: session)
        }
        connection.onClose = { [unowned self] error in
            self.shardClosed(link, in: session, error: error)
        }
        link.send(.shardJoin(ShardJoin(
            protocolVersion: ProtocolVersion.current, sessionID: welcome.sessionID, workerID: welcome.workerID,
            ticket: welcome.shardTicket, workerName: configuration.name, pushEncoding: welcome.pushEncoding,
            pullEncoding: welcome.pullEncoding, deltaEncoding: welcome.deltaEncoding)))
        // The shard does not answer a join that succeeds: the weights are asked for at once.
        pull(from: link)
        askShardsForRounds(in: session)
    }

    /// Sends `link` a pull, counted in `pullsSent`.
    func pull(from link: ShardLink, minVersion: UInt64 = 0, whole: Bool = false) {
        guard link.connection != nil, !link.closing else { return }
        link.pull(minVersion: minVersion, whole: whole)
        pullsSent += 1
    }

    /// In sync mode the server sends no weights: a unit of a round the slices held have not reached is
    /// asked of each such shard with `Pull.min_version`, once per round.
    func askShardsForRounds(in session: Session) {
        guard let welcome = session.welcome, welcome.mode == TrainingMode.sync.rawValue,
              let needed = session.units.map(\.minVersion).max() else { return }
        for link in session.shards where link.replica.version < needed && link.requestedMinVersion < needed {
            pull(from: link, minVersion: needed)
        }
    }

    /// Sends each shard its slice of a unit, and stages the server's push until every shard has it.
    func pushSlices(_ slices: [Push], staging server: Push, in session: Session) {
        for (link, slice) in zip(session.shards, slices) {
            link.send(.push(slice))
        }
        session.slicesPushed += slices.count
        session.staged.stage(server)
    }

    // MARK: Frames from shards

    private func received(_ payload: UnsafeRawBufferPointer, from link: ShardLink, in session: Session) {
        guard self.session === session, !link.closing else { return }
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: payload)
        } catch {
            failShard(link, in: session, .malformed, "frame of \(payload.count) bytes from \(link.name) is not a valid Envelope: \(error)")
            return
        }
        switch envelope.body {
        case .weights(let weights)?:
            handleWeights(weights, from: link, in: session)
        case .sliceReceived(let received)?:
            switch session.staged.received(unitID: received.unitID, from: link.index) {
            case .ready(let push):
                pushToServer(push, in: session)
            case .waiting, .dropped:
                break
            case .unexpected:
                failShard(link, in: session, .malformed, "\(link.name) acknowledged unit \(received.unitID), "
                    + "whose slice this worker did not send it or it acknowledged already")
            }
        case .error(let report)?:
            log("\(link.name): \(report.message)" + (report.fatal ? " (closing)" : ""))
            // A fatal report is followed by the shard's close, which drops the session.
            guard !report.fatal else { return }
            // A shard answers every slice in order, so a non-fatal report refuses the oldest one
            // unanswered. Without its slice the unit cannot be applied: its lease expires on the server.
            if let unitID = session.staged.refused(by: link.index) {
                log("unit \(unitID) not pushed: \(link.name) refused its slice; its lease will expire")
            }
        default:
            failShard(link, in: session, .malformed,
                      "\(link.name) sent \(envelope.bodyName); a shard sends a worker only Weights, SliceReceived and ErrorReport")
        }
    }

    /// A shard's slice of the weights, applied as the server's whole weights are (see `WeightsReplica`).
    private func handleWeights(_ weights: Weights, from link: ShardLink, in session: Session) {
        do {
            switch try link.replica.apply(weights) {
            case .updated:
                applied(weights, in: session)
            case .unchanged:
                break
            case .baseMismatch(let base, let held):
                log("\(link.name)'s delta (Weights.base_version \(base)) is not on the version this worker holds "
                    + "(\(held.map(String.init) ?? "none")); asking for its whole slice")
                pull(from: link, minVersion: link.requestedMinVersion, whole: true)
            }
        } catch {
            failShard(link, in: session, error.code, "\(link.name): \(error.description)")
        }
    }

    // MARK: Losing shards

    /// Refuses what a shard sent (a fatal `ErrorReport` to it) and gives up the session: without that
    /// shard no unit can be pushed.
    private func failShard(_ link: ShardLink, in session: Session, _ code: ErrorReport.Code, _ message: String) {
        log("error: \(message); leaving the session to join again")
        link.closing = true
        link.connection?.sendError(code, message, fatal: true)
        dropSession(session)
    }

    private func shardClosed(_ link: ShardLink, in session: Session, error: ReactorError?) {
        guard self.session === session, !link.closing, !session.ended, session.shardLossTimer == nil else { return }
        link.closing = true
        let reason = error.map { " (\($0))" } ?? ""
        session.shardLossTimer = loop.scheduleTimer(after: Self.shardLossGrace) { [weak self] in
            guard let self, self.session === session, !session.ended else { return }
            self.log("lost \(link.name)\(reason); leaving the session to join again")
            self.dropSession(session)
        }
    }

    /// Gives up a sharded session as after a lost server: closing the server's connection closes every
    /// shard's and drops the units (see `closed`), and the worker joins again.
    func dropSession(_ session: Session) {
        guard self.session === session else { return }
        session.connection.closeNow()
    }

    /// Closes every shard's connection of a session that is over or given up.
    func closeShards(of session: Session) {
        session.shardLossTimer?.cancel()
        session.shardLossTimer = nil
        for link in session.shards { link.close() }
    }
}
