import FoundationEssentials
import Messages
import Reactor
import WireCodec

/// The shard's side of its connection to the server: offering itself, authenticating, taking a range,
/// and carrying out the server's messages strictly in the order they arrive.
extension ShardRuntime {
    // MARK: Connecting

    func connect() {
        var frames = FrameConnection.Configuration(maxFrameLength: configuration.maxServerFrameBytes)
        frames.stream.idleTimeout = nil
        FrameConnection.connectUntilUp(
            loop: loop, host: configuration.host, port: configuration.port, configuration: frames, tls: configuration.tls,
            serverName: configuration.tlsServerName, retryInterval: configuration.retryInterval,
            log: { [weak self] in self?.log($0) }, isStopping: { [weak self] in self?.stopping ?? true },
            exit: { [weak self] in self?.exit($0) }, connected: { [weak self] in self?.connected($0) })
    }

    private func connected(_ connection: FrameConnection) {
        let link = ServerLink(connection: connection)
        self.link = link
        connection.onFrame = { [unowned self] payload in
            self.received(payload, on: link)
        }
        connection.onClose = { [unowned self] error in
            self.closed(link, error: error)
        }
        send(Envelope(body: .shardHello(ShardHello(
            protocolVersion: ProtocolVersion.shard, shardName: configuration.name, host: configuration.advertisedHost,
            port: UInt32(port)))), on: connection)
        let interval = configuration.heartbeatInterval
        link.heartbeat = loop.scheduleTimer(after: interval, repeating: interval) { [unowned self, unowned link] in
            link.heartbeatSequence += 1
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            send(Envelope(body: .heartbeat(Heartbeat(seq: link.heartbeatSequence, unixNanos: now))), on: link.connection)
        }
    }

    private func closed(_ link: ServerLink, error: ReactorError?) {
        link.heartbeat?.cancel()
        link.heartbeat = nil
        link.watchdog?.cancel()
        link.watchdog = nil
        if self.link === link { self.link = nil }
        if let assignment {
            let reason = error.map { " (\($0))" } ?? ""
            log("connection to the server closed\(reason); dropping \(assignment.summary) at version \(assignment.version) "
                + "and \(workers.count) worker connection(s)")
            sessionsCompleted += 1
            dropRange()
        }
        if stopping {
            exit(0)
        } else if link.authenticationFailed {
            // The same token would fail the same way: exit, so the operator notices.
            log("the handshake failed; not retrying")
            exit(1)
        } else if let error, case .tls = error.kind, !link.assigned {
            // A TLS handshake that failed would fail the same way again: exit, so the operator notices.
            log("error: \(error.message); not retrying")
            exit(1)
        } else if configuration.once, link.assigned {
            exit(link.refused ? 1 : 0)
        } else if link.ended {
            log("waiting for the next session")
            connect()
        } else {
            // Not at once: a server that refuses shards would otherwise be asked thousands of times a second.
            let reason = error.map { " (\($0))" } ?? ""
            log("connection to the server closed\(reason); reconnecting in \(configuration.retryInterval.logText)")
            retryTimer = loop.scheduleTimer(after: configuration.retryInterval) { [weak self] in
                guard let self, !self.stopping else { return }
                self.connect()
            }
        }
    }

    // MARK: Messages

    private func received(_ payload: UnsafeRawBufferPointer, on link: ServerLink) {
        guard !link.refused, !link.ended else { return }
        bytesIn &+= UInt64(payload.count + 4)
        link.lastHeardAt = .now
        link.bytesReadAtLastHeard = link.connection.bytesRead
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: payload)
        } catch {
            refuseServer(link, .malformed, "frame of \(payload.count) bytes from the server is not a valid Envelope: \(error)")
            return
        }
        switch envelope.body {
        case .challenge(let challenge)?:
            answer(challenge, on: link)
        case .shardAssignment(let message)?:
            assign(message, on: link)
        case .shardApply(let message)?:
            apply(message, on: link)
        case .shardDiscard(let message)?:
            discard(message)
        case .shardStateRequest(let request)?:
            answer(request, on: link)
        case .heartbeat?:
            // The server sends heartbeats: from now on its silence means it is gone.
            if link.watchdog == nil, configuration.serverSilenceLimit != nil { watchServer(link) }
        case .sessionEnd(let end)?:
            link.ended = true
            if let assignment {
                log("session \(assignment.sessionID) over: test accuracy \(SummaryLine.format(end.testAccuracy * 100, digits: 2))%; "
                    + "this shard applied \(assignment.updates) update(s), version \(assignment.version); "
                    + "closing \(workers.count) worker connection(s) and dropping the range")
                sessionsCompleted += 1
            }
            dropRange()
            link.connection.close()
        case .error(let report)?:
            log("server: \(report.message)" + (report.fatal ? " (closing)" : ""))
            if report.code == .unauthenticated, !link.assigned {
                link.authenticationFailed = true
                log(!link.challenge.wasChallenged
                    ? "error: the server refused this shard: \(report.message)"
                    : "error: the server refused this shard's token; give it the server's token "
                        + "(--token-file or \(AuthenticationToken.environmentVariable))")
            }
        case .hello?, .welcome?, .pull?, .weights?, .workUnit?, .push?, .pushAck?, .leave?, .challengeResponse?, .shardHello?,
             .shardState?, .shardJoin?, .sliceReceived?, nil:
            refuseServer(link, .malformed, "the server sent \(envelope.bodyName), which a server does not send a shard")
        }
    }

    /// Refuses something the server sent: logs it, reports it (fatal) and closes; the shard then
    /// drops its range and reconnects after the retry interval.
    func refuseServer(_ link: ServerLink, _ code: ErrorReport.Code, _ message: String) {
        log("error: \(message)")
        link.refused = true
        sendError(code, message, fatal: true, on: link.connection)
    }

    /// Answers the server's challenge with the token's MAC over the shard's name, or gives up when
    /// this shard has no token.
    private func answer(_ challenge: Challenge, on link: ServerLink) {
        guard !link.challenge.wasChallenged, !link.assigned else {
            refuseServer(link, .malformed, "the server sent a Challenge after the handshake's first one")
            return
        }
        do {
            let response = try link.challenge.respond(
                to: challenge, token: configuration.token, name: configuration.name, role: "shard",
                channelBinding: link.connection.channelBinding)
            send(Envelope(body: .challengeResponse(response)), on: link.connection)
        } catch {
            refuseToAuthenticate(link, error.message, report: error.report)
        }
    }

    /// Whether the assignment comes from a server that proved it holds this shard's token (always true
    /// without a token); refuses and closes otherwise: a shard must never hold a range for an impostor.
    private func serverIsAuthentic(_ message: ShardAssignment, on link: ServerLink) -> Bool {
        guard let token = configuration.token else { return true }
        do {
            try link.challenge.checkProof(
                message.serverProof, sessionID: message.sessionID, token: token, channelBinding: link.connection.channelBinding,
                role: "shard", what: "assigned a range", refusing: "hold a range for it",
                requirement: "this shard has a token and holds ranges only for a server that proves it holds it")
            return true
        } catch {
            refuseToAuthenticate(link, error.message, report: error.report)
            return false
        }
    }

    private func refuseToAuthenticate(_ link: ServerLink, _ message: String, report: String) {
        log("error: \(message)")
        link.authenticationFailed = true
        link.refused = true
        sendError(.unauthenticated, report, fatal: true, on: link.connection)
    }

    /// Gives up on a server from which nothing arrived for `serverSilenceLimit`: it is hung, or the
    /// network between is gone. The timer is set for the moment the limit would pass, and set again
    /// if anything arrived meanwhile (bytes of a frame still arriving count as life).
    private func watchServer(_ link: ServerLink) {
        guard let configured = configuration.serverSilenceLimit, self.link === link, !link.ended, !link.refused else { return }
        // A session whose heartbeat timeout is longer (and so may send heartbeats less often) is given that long.
        let limit = max(configured, assignment?.recipe.policy.heartbeatTimeout ?? .zero)
        let now = ContinuousClock.now
        let bytesRead = link.connection.bytesRead
        if bytesRead != link.bytesReadAtLastHeard {
            link.bytesReadAtLastHeard = bytesRead
            link.lastHeardAt = max(link.lastHeardAt, now)
        }
        let deadline = link.lastHeardAt + limit
        if now >= deadline {
            log("the server sent nothing for \((now - link.lastHeardAt).logText); taking it for dead and reconnecting")
            link.connection.closeNow()
            return
        }
        // Rounded up to the timer's millisecond so it does not fire just before the deadline.
        link.watchdog = loop.scheduleTimer(after: deadline - now + .microseconds(999)) { [weak self, unowned link] in
            self?.watchServer(link)
        }
    }

    // MARK: The session

    /// Takes the range (a second assignment replaces everything held), or refuses an assignment that
    /// does not check out.
    private func assign(_ message: ShardAssignment, on link: ServerLink) {
        guard serverIsAuthentic(message, on: link) else { return }
        let state: ShardAssignmentState
        do {
            state = try ShardAssignmentState(message)
        } catch {
            refuseServer(link, .wrongShard, "\(error)")
            return
        }
        if let previous = assignment {
            log("reassigned: dropping \(previous.summary) at version \(previous.version), \(previous.stagedCount) staged slice(s) "
                + "and \(workers.count) worker connection(s)")
            dropRange()
        }
        link.assigned = true
        assignment = state
        bytesIn = 0
        bytesOut = 0
        log("assigned \(state.summary) at version \(state.version); session \(state.sessionID), "
            + "\(state.recipe.optimizerSummary)")
    }

    /// Applies the staged slices a `ShardApply` names as one update, or refuses it (fatal) when its
    /// version is not the next or a slice is not held: the ranges would disagree.
    private func apply(_ message: ShardApply, on link: ServerLink) {
        guard let assignment else {
            refuseServer(link, .wrongShard, "ShardApply before any ShardAssignment")
            return
        }
        guard message.version == assignment.version &+ 1 else {
            refuseServer(link, .wrongShard, "ShardApply.version \(message.version) is not this shard's version \(assignment.version) plus one")
            return
        }
        let kind: ModelUpdate.Kind
        switch message.kind {
        case .gradient: kind = .gradient
        case .delta: kind = .delta
        case .unrecognized(let raw):
            refuseServer(link, .malformed, "ShardApply.kind \(raw) is not an update kind this shard knows")
            return
        }
        guard message.scale.isFinite, message.scale >= 0 else {
            refuseServer(link, .malformed, "ShardApply.scale \(message.scale) is not a finite, non-negative number")
            return
        }
        guard !message.slices.isEmpty else {
            refuseServer(link, .wrongShard, "ShardApply for version \(message.version) names no slices")
            return
        }
        var slices: [ShardAssignmentState.StagedSlice] = []
        var named = Set<[UInt64]>()
        for slice in message.slices {
            guard let staged = assignment.staged[slice.workerID]?[slice.unitID], named.insert([slice.workerID, slice.unitID]).inserted else {
                refuseServer(link, .wrongShard, "ShardApply for version \(message.version) names the slice of unit \(slice.unitID) "
                    + "from worker #\(slice.workerID), which this shard does not hold")
                return
            }
            slices.append(staged)
        }
        let samples = message.slices.reduce(0) { $0 + Int($1.sampleCount) }
        let values = mean(of: slices, weights: message.slices.map(\.sampleCount), in: assignment)
        assignment.store.apply(ModelUpdate(
            values: values, kind: kind, scale: message.scale, sampleCount: samples,
            arrivalsPerStep: max(1, Int(message.arrivalsPerStep))))
        for (slice, staged) in zip(message.slices, slices) {
            // The version the slice is applied to, minus the one it was computed on.
            let staleness = assignment.version > staged.baseVersion ? assignment.version - staged.baseVersion : 0
            assignment.stalenessSum &+= staleness
            assignment.stalenessCount += 1
            assignment.stalenessMax = max(assignment.stalenessMax, staleness)
            assignment.staged[slice.workerID]?[slice.unitID] = nil
            if assignment.staged[slice.workerID]?.isEmpty == true { assignment.staged[slice.workerID] = nil }
        }
        assignment.version = message.version
        assignment.updates += 1
        answerPendingPulls()
    }

    /// The update of `slices`: in async and ssp modes the one slice as it is; otherwise their mean
    /// weighted by sample count, computed as the server computes a sync round's (each slice times its
    /// weight, summed in order, times 1 / the samples), so that the ranges train what one server would.
    private func mean(of slices: [ShardAssignmentState.StagedSlice], weights: [UInt32], in assignment: ShardAssignmentState) -> [Float] {
        if slices.count == 1, assignment.recipe.policy.mode != .sync { return slices[0].values }
        let count = assignment.range.count
        if assignment.mean.count != count { assignment.mean = [Float](repeating: 0, count: count) }
        assignment.mean.withUnsafeMutableBufferPointer { sum in
            for i in 0..<count { sum[i] = 0 }
            for (slice, weight) in zip(slices, weights) {
                let weight = Float(weight)
                slice.values.withUnsafeBufferPointer { values in
                    for i in 0..<count { sum[i] += values[i] * weight }
                }
            }
            let inverse = 1 / Float(max(1, weights.reduce(0) { $0 + Int($1) }))
            for i in 0..<count { sum[i] *= inverse }
        }
        return assignment.mean
    }

    /// Drops slices that will not be applied: those named, or every slice of the worker.
    private func discard(_ message: ShardDiscard) {
        guard let assignment else { return }
        if message.unitIds.isEmpty {
            assignment.staged[message.workerID] = nil
            // It left the session: anything it sends later would only be kept until the session ends.
            assignment.departed.insert(message.workerID)
        } else {
            for unit in message.unitIds { assignment.staged[message.workerID]?[unit] = nil }
            if assignment.staged[message.workerID]?.isEmpty == true { assignment.staged[message.workerID] = nil }
        }
    }

    /// Answers a `ShardStateRequest` with the version, the figures and, when asked, the range's state.
    private func answer(_ request: ShardStateRequest, on link: ServerLink) {
        var state = ShardState(requestID: request.requestID, workers: UInt32(clamping: joinedWorkers))
        if let assignment {
            state.version = assignment.version
            if request.modelState {
                var held = assignment.store.trainingState()
                // An evaluation needs the parameters only: the optimiser's buffers would double or treble the bytes.
                if request.parametersOnly { held.optimizer.buffers = [:] }
                state.modelState = held.wireBytes()
            }
            state.updates = assignment.updates
            state.refused = assignment.refused
            state.stalenessMean = assignment.stalenessCount == 0 ? 0 : Double(assignment.stalenessSum) / Double(assignment.stalenessCount)
            state.stalenessMax = assignment.stalenessMax
        }
        state.bytesIn = bytesIn
        state.bytesOut = bytesOut
        send(Envelope(body: .shardState(state)), on: link.connection)
    }
}
