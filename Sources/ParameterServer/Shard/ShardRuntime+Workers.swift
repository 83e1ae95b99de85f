import Messages
import Reactor
import TensorEncoding
import WireCodec

/// The shard's side of its workers' connections: admitting them by ticket, serving the range's
/// weights, and staging the slices they push.
extension ShardRuntime {
    // MARK: Connections

    func accept(_ connection: FrameConnection) {
        if stopping {
            connection.closeNow()
            return
        }
        guard assignment != nil else {
            sendError(.unavailable, "this shard holds no range yet; connect once the server has welcomed you", fatal: true, on: connection)
            return
        }
        guard workers.count < configuration.maxConnections else {
            log("refused \(connection.remoteAddress): at the connection limit (\(configuration.maxConnections))")
            sendError(.unavailable, "this shard is at its connection limit (\(configuration.maxConnections))", fatal: true, on: connection)
            return
        }
        let peer = WorkerPeer(connection: connection)
        workers[ObjectIdentifier(peer)] = peer
        connection.bufferBudget = strangerBudget
        connection.onFrameRefused = { [weak peer] error in
            // The Reactor closes the connection after this, and onClose logs the error with the peer.
            if case .tls = error.kind {
                // Plaintext at a TLS listener: the one answer such a peer can read, in plaintext.
                peer?.connection.send(Envelope(body: .error(ErrorReport(
                    code: .unauthenticated, message: "this shard speaks TLS 1.3 only: connect with TLS", fatal: true))))
            } else {
                peer?.connection.send(Envelope(body: .error(ErrorReport(
                    code: .frameTooLarge, message: "frame refused: \(error.message)", fatal: true))))
            }
        }
        peer.handshakeTimer = loop.scheduleTimer(after: configuration.handshakeTimeout) { [unowned self, weak peer] in
            guard let peer, peer.state == .joining else { return }
            log("closing \(peer.label): no ShardJoin within \(configuration.handshakeTimeout)")
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

    private func closed(_ peer: WorkerPeer, error: ReactorError?) {
        peer.handshakeTimer?.cancel()
        peer.handshakeTimer = nil
        // A peer of a range dropped since is no longer listed; nothing of the new range is touched.
        guard workers.removeValue(forKey: ObjectIdentifier(peer)) != nil else { return }
        let reason = error.map { " (\($0))" } ?? ""
        switch peer.state {
        case .joined: log("\(peer.label) left\(reason)")
        case .joining where error != nil: log("\(peer.label) closed before its ShardJoin\(reason)")
        case .joining, .gone: break
        }
        peer.state = .gone
    }

    /// Refuses a worker with a fatal error: logged, reported to it, connection closed.
    private func refuse(_ peer: WorkerPeer, _ code: ErrorReport.Code, _ message: String) {
        log("refused \(peer.label): \(message)")
        peer.state = .gone
        sendError(code, message, fatal: true, on: peer.connection)
    }

    // MARK: Messages

    private func received(_ payload: UnsafeRawBufferPointer, from peer: WorkerPeer) {
        guard peer.state != .gone, let assignment else { return }
        bytesIn &+= UInt64(payload.count + 4)
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: payload)
        } catch {
            refuse(peer, .malformed, "frame of \(payload.count) bytes is not a valid Envelope: \(error)")
            return
        }
        switch (peer.state, envelope.body) {
        case (.joining, .shardJoin(let join)?):
            admit(peer, join, to: assignment)
        case (.joining, _):
            refuse(peer, .malformed, "expected ShardJoin as the first message, got \(envelope.bodyName)")
        case (.joined, .pull(let pull)?):
            if pull.minVersion > assignment.version {
                // Held until an apply brings the version there. One answer serves every pull held: the
                // newest one's known version, the highest minimum.
                let held = peer.pendingPull?.minVersion ?? 0
                peer.pendingPull = Pull(knownVersion: pull.knownVersion, minVersion: max(held, pull.minVersion))
            } else {
                sendWeights(to: peer, knownVersion: Self.asked(pull), from: assignment)
            }
        case (.joined, .push(let push)?):
            stage(push, from: peer, in: assignment)
        case (.joined, .heartbeat?):
            break
        case (.joined, .leave(let leave)?):
            log("\(peer.label) said goodbye" + (leave.reason.isEmpty ? "" : " (\(leave.reason))"))
            peer.state = .gone
            peer.connection.close()
        case (.joined, .error(let report)?):
            log("\(peer.label) reported \(report.code): \(report.message)")
        case (.joined, _):
            refuse(peer, .malformed, "\(envelope.bodyName) is not a message a worker may send a shard")
        case (.gone, _):
            break
        }
    }

    /// Admits a worker whose `ShardJoin` names this session, carries the ticket the server gave it,
    /// and asks for encodings the session has (or fp32).
    private func admit(_ peer: WorkerPeer, _ join: ShardJoin, to assignment: ShardAssignmentState) {
        peer.name = join.workerName.isEmpty ? "unnamed" : String(join.workerName.prefix(100))
        peer.workerID = join.workerID
        let who = "worker #\(join.workerID) (\(peer.name) at \(peer.connection.remoteAddress))"
        guard join.protocolVersion == ProtocolVersion.current else {
            refuse(peer, .protocolVersion, "this shard speaks protocol version \(ProtocolVersion.current) but \(who) speaks "
                + "version \(join.protocolVersion); run matching versions of ps-shard and ps-worker")
            return
        }
        guard join.sessionID == assignment.sessionID else {
            refuse(peer, .unauthenticated, "\(who): ShardJoin.session_id \"\(join.sessionID.prefix(100))\" is not this shard's "
                + "session \"\(assignment.sessionID)\"")
            return
        }
        guard ShardTicket.isValid(join.ticket, key: assignment.ticketKey, sessionID: assignment.sessionID, worker: join.workerID) else {
            refuse(peer, .unauthenticated, "\(who): ShardJoin.ticket is not the server's ticket for worker #\(join.workerID) "
                + "of session \(assignment.sessionID)")
            return
        }
        guard !assignment.departed.contains(join.workerID) else {
            refuse(peer, .unavailable, "\(who): worker #\(join.workerID) has left the session; join the server again")
            return
        }
        let push, pull, delta: TensorEncoding
        do {
            push = try encoding(join.pushEncoding, field: "push_encoding", session: assignment.pushEncoding, in: assignment)
            pull = try encoding(join.pullEncoding, field: "pull_encoding", session: assignment.pullEncoding, in: assignment)
            delta = try encoding(join.deltaEncoding, field: "delta_encoding", session: assignment.deltaEncoding, in: assignment)
        } catch {
            refuse(peer, .badEncoding, "\(who): \(error)")
            return
        }
        // Deltas build on the chain's first keyframe, which is in the session's pull encoding.
        let followsChain = delta != .fp32
        guard !followsChain || pull == assignment.pullEncoding else {
            refuse(peer, .badEncoding, "\(who): ShardJoin.delta_encoding is set, but pull_encoding is \(pull.name), "
                + "not the session's \(assignment.pullEncoding.name) that deltas build on")
            return
        }
        peer.state = .joined
        peer.handshakeTimer?.cancel()
        peer.handshakeTimer = nil
        // A member now: slice-sized frames, outside the strangers' budget.
        peer.connection.maxFrameLength = max(configuration.maxFrameBytes, 4 * assignment.range.count + 4096)
        peer.connection.bufferBudget = nil
        peer.pushEncoding = push
        peer.publishing = PublisherPeerState(pullEncoding: pull, followsChain: followsChain)
        log("\(peer.label) joined: pushes \(push.name), weights \(pull.name)" + (followsChain ? " with \(delta.name) deltas" : ""))
    }

    /// The encoding a `ShardJoin` field names, when it is fp32 (or unset) or the session's.
    private func encoding(
        _ wire: Messages.Encoding?, field: String, session: TensorEncoding?, in assignment: ShardAssignmentState
    ) throws(EncodingChoiceError) -> TensorEncoding {
        // Parsed for the whole model's length, as the server parsed what its Welcome names.
        let encoding = try TensorEncoding(wire: wire, count: assignment.modelParameterCount)
        guard encoding == .fp32 || encoding == session else {
            throw EncodingChoiceError("ShardJoin.\(field) \(encoding.name) is neither the session's (\(session?.name ?? "none")) nor fp32")
        }
        return encoding
    }

    // MARK: Weights

    /// Sends `peer` the range's weights as the server sends whole weights: whole, or the chain's frames.
    private func sendWeights(to peer: WorkerPeer, knownVersion: UInt64?, from assignment: ShardAssignmentState) {
        let frames = assignment.publisher.frames(
            for: &peer.publishing, knownVersion: knownVersion, version: assignment.version, parameters: assignment.store.parameters,
            activeWorkers: joinedWorkers)
        for frame in frames { send(payload: frame.payload, on: peer.connection) }
    }

    /// Answers the pulls held for a version the range has now reached.
    func answerPendingPulls() {
        guard let assignment else { return }
        for peer in workers.values where peer.state == .joined {
            guard let pull = peer.pendingPull, pull.minVersion <= assignment.version else { continue }
            peer.pendingPull = nil
            sendWeights(to: peer, knownVersion: Self.asked(pull), from: assignment)
        }
    }

    /// The known version to answer a pull with. A pull that waits for a version (a sync round's) must
    /// bring the worker up to date, as the server's unasked sends do: answered as a routine pull, the
    /// weights chain might publish only a stride of versions later, and the worker would wait forever
    /// for the version it needs. Known version 0 (whole weights again) stays as it is.
    static func asked(_ pull: Pull) -> UInt64? {
        pull.minVersion > 0 && pull.knownVersion != 0 ? nil : pull.knownVersion
    }

    // MARK: Slices

    /// Checks a pushed slice as the server checks a push, and stages it until the server decides.
    private func stage(_ push: Push, from peer: WorkerPeer, in assignment: ShardAssignmentState) {
        guard !push.staged else {
            refuse(peer, .malformed, "Push.staged is for the server; a shard takes the slice's values")
            return
        }
        switch push.kind {
        case .gradient, .delta: break
        case .unrecognized(let raw):
            refuse(peer, .malformed, "Push.kind \(raw) is not an update kind this shard knows")
            return
        }
        let count = assignment.range.count
        var values = push.values
        if !push.encodedValues.isEmpty {
            guard peer.pushEncoding != .fp32 else {
                refuseSlice(push, from: peer, .badEncoding, "Push.encoded_values is set, but no encoding was negotiated (send fp32 in Push.values)")
                return
            }
            guard push.values.isEmpty else {
                refuseSlice(push, from: peer, .badEncoding, "Push has both values and encoded_values")
                return
            }
            values = [Float](repeating: 0, count: count)
            if let refusal = peer.pushEncoding.decodeRefusal(push.encodedValues, into: &values) {
                refuseSlice(push, from: peer, .badEncoding, "Push.encoded_values: \(refusal)")
                return
            }
        }
        guard values.count == count else {
            refuseSlice(push, from: peer, .wrongDimensions, "Push.values holds \(values.count) values; this shard's range holds \(count)")
            return
        }
        guard push.loss.isFinite else {
            refuseSlice(push, from: peer, .notFinite, "Push.loss is \(push.loss)")
            return
        }
        guard values.allFinite else {
            refuseSlice(push, from: peer, .notFinite, "Push.\(push.encodedValues.isEmpty ? "values" : "encoded_values") holds NaN or an infinity")
            return
        }
        guard !assignment.departed.contains(peer.workerID) else {
            refuse(peer, .unavailable, "worker #\(peer.workerID) has left the session (the server discarded its slices); join it again")
            return
        }
        let held = assignment.staged[peer.workerID] ?? [:]
        guard held[push.unitID] != nil || held.count < configuration.maxStagedSlicesPerWorker else {
            refuseSlice(push, from: peer, .unavailable, "this worker has \(held.count) slices staged, the most a shard keeps per worker; "
                + "the server applies or discards them")
            return
        }
        // A second slice of one unit replaces the first.
        assignment.staged[peer.workerID, default: [:]][push.unitID] = .init(values: values, baseVersion: push.baseVersion)
        send(Envelope(body: .sliceReceived(SliceReceived(unitID: push.unitID))), on: peer.connection)
        // The server too: it accepts the worker's staged push only once every shard holds its slice, so
        // a worker that claims slices it never sent cannot make a ShardApply name one no shard holds.
        if let link, link.assigned {
            send(Envelope(body: .sliceReceived(SliceReceived(unitID: push.unitID, workerID: peer.workerID))), on: link.connection)
        }
    }

    /// Refuses a slice without closing: counted, reported to the worker, and logged (past 20 from
    /// one worker, one in 100, with the count, so a broken worker cannot flood the log).
    private func refuseSlice(_ push: Push, from peer: WorkerPeer, _ code: ErrorReport.Code, _ message: String) {
        assignment?.refused += 1
        peer.refusalsLogged += 1
        if peer.refusalsLogged <= 20 || peer.refusalsLogged % 100 == 0 {
            let count = peer.refusalsLogged > 20 ? " (\(peer.refusalsLogged) refused so far)" : ""
            log("refused the slice of unit \(push.unitID) from \(peer.label): \(message)\(count)")
        }
        sendError(code, "unit \(push.unitID): \(message)", fatal: false, on: peer.connection)
    }
}
