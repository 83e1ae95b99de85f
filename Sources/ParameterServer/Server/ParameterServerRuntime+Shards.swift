import Learning
import Messages
import Reactor

/// The server's side of a sharded session (`configuration.shards` > 0; Schemas/Messages/README.md,
/// "Shards"): shards enrol and are assigned ranges, workers wait for them, every decision about a push
/// goes to every shard in one order, evaluations and checkpoints gather the ranges, and a lost shard
/// sends the session back to its last snapshot.
extension ParameterServerRuntime {
    // MARK: Enrolment and assignment

    /// A connection's first message was ShardHello.
    func shardHandshake(_ peer: Peer, _ hello: ShardHello) {
        peer.name = hello.shardName.isEmpty ? "unnamed shard" : String(hello.shardName.prefix(100))
        guard hello.protocolVersion == ProtocolVersion.shard else {
            refuse(peer, .protocolVersion, "this server speaks shard protocol version \(ProtocolVersion.shard) "
                + "but the shard speaks version \(hello.protocolVersion); run matching versions of ps-server and ps-shard")
            return
        }
        guard configuration.shards > 0 else {
            refuse(peer, .unavailable, "this server holds its parameters itself (it was not started with --shards)")
            return
        }
        guard (1...65_535).contains(hello.port) else {
            refuse(peer, .malformed, "ShardHello.port \(hello.port) is not a port workers can reach")
            return
        }
        if configuration.token != nil {
            challenge(peer, hello)
        } else {
            enrollShard(peer, hello)
        }
    }

    /// Takes a shard whose ShardHello (and proof, with a token) was accepted: it gets a range no one
    /// holds, or waits as a spare.
    func enrollShard(_ peer: Peer, _ hello: ShardHello) {
        guard !finishing, !finished else {
            refuse(peer, .unavailable, "the session is over; connect to the next one")
            return
        }
        peer.state = .shard
        peer.isShard = true
        peer.handshakeTimer?.cancel()
        peer.handshakeTimer = nil
        let host = hello.host.isEmpty ? Self.host(of: peer.connection.remoteAddress) : hello.host
        peer.shardAddress = (host, Int(hello.port))
        reporter.line("shard \(peer.name) at \(peer.connection.remoteAddress) joined; workers reach it at \(host):\(hello.port)")
        history.membership.append(.init(seconds: sinceStart, worker: peer.name, joined: true, reason: "shard"))
        if let index = shards.holders.firstIndex(where: { $0 == nil }) {
            assign(index, to: peer)
        } else {
            shards.spares.append(peer)
            reporter.line("shard \(peer.name) waits as a spare: every range is held")
        }
    }

    /// Sends `peer` range `index`, from the session's snapshot, then a state request whose answer says
    /// it holds the range.
    func assign(_ index: Int, to peer: Peer) {
        let snapshot = shardSnapshot()
        let range = shards.map.ranges[index]
        shards.holders[index] = peer
        shards.ready[index] = false
        peer.shardIndex = index
        // A holder's ShardState carries its range with the optimiser's buffers: up to four range-sized
        // vectors. A spare keeps a stranger's small frames until then.
        peer.connection.maxFrameLength = 4 * configuration.maxFrameBytes
        peer.connection.bufferBudget = nil
        var assignment = ShardAssignment()
        assignment.sessionID = configuration.sessionID
        assignment.index = UInt32(index)
        assignment.shardCount = UInt32(shards.map.ranges.count)
        assignment.offset = UInt64(range.offset)
        assignment.count = UInt64(range.count)
        assignment.model = ModelSpec(configuration: model.configuration, layout: model.layout)
        assignment.sessionSettings = snapshot.recipe.wireBytes()
        assignment.version = snapshot.version
        assignment.modelState = snapshot.model.slice(range.indices).wireBytes()
        assignment.ticketKey = shards.ticketKey
        assignment.serverProof = serverProof(for: peer)
        send(Envelope(body: .shardAssignment(assignment)), to: peer)
        // Its answer must give back exactly the range sent: a shard that holds another range, another
        // count or other values is refused before any worker is sent to it.
        let request = shards.makeRequestID()
        shards.readinessRequests[request] = index
        send(Envelope(body: .shardStateRequest(ShardStateRequest(requestID: request, modelState: true))), to: peer)
        reporter.line("shard \(peer.name) holds range \(index) of \(shards.map.ranges.count): \(range.text) at version \(snapshot.version)")
    }

    /// The state ranges are assigned from: the last snapshot, or, before the first, the session as it
    /// starts (or resumes), which becomes the first snapshot.
    private func shardSnapshot() -> SessionCheckpoint {
        if let snapshot = shards.lastSnapshot { return snapshot }
        let snapshot = makeCheckpoint(recipe: sessionRecipe, model: model.trainingState())
        shards.lastSnapshot = snapshot
        shards.lastSnapshotAt = clock.now
        return snapshot
    }

    /// The session's recipe, which sharded sessions always have (`SessionAssembly` sets it).
    var sessionRecipe: SessionRecipe {
        guard let recipe = configuration.recipe ?? configuration.checkpoint?.recipe else {
            preconditionFailure("a sharded session needs ServerConfiguration.recipe")
        }
        return recipe
    }

    /// A worker that said Hello while the shards were not ready waits for its Welcome.
    func waitForShards(_ peer: Peer, _ hello: Hello) {
        peer.handshakeTimer?.cancel()
        peer.handshakeTimer = nil
        shards.waitingWorkers.removeAll { peers[$0.peer.worker] !== $0.peer }
        shards.waitingWorkers.append((peer, hello))
        let held = shards.ready.filter { $0 }.count
        reporter.line("worker \(peer.label) waits for the shards (\(held) of \(shards.map.ranges.count) ready)")
    }

    // MARK: Messages from shards

    /// Anything a shard sent after it was enrolled.
    func receivedFromShard(_ envelope: Envelope, from peer: Peer) {
        switch envelope.body {
        case .heartbeat?:
            break
        case .shardState(let state)?:
            handleShardState(state, from: peer)
        case .sliceReceived(let received)?:
            confirm(received, from: peer)
        case .error(let report)?:
            reporter.line("shard \(peer.name) at \(peer.connection.remoteAddress) reported \(report.code): \(report.message)"
                + (report.fatal ? " (closing)" : ""))
        default:
            refuse(peer, .malformed, "\(envelope.bodyName) is not a message a shard may send")
        }
    }

    private func handleShardState(_ state: ShardState, from peer: Peer) {
        guard let index = peer.shardIndex, shards.holders[index] === peer else { return }
        shards.figures[index] = state
        // The report's series, placed when the figures were counted (the figures request is 0).
        if state.requestID == 0, startedAt != nil, !finished, let point = shardPoints().first(where: { $0.index == index }) {
            history.shards.append(point)
        }
        if shards.readinessRequests[state.requestID] == index {
            shards.readinessRequests[state.requestID] = nil
            if let problem = assignmentMismatch(state, index: index) {
                shardFailed(peer, problem)
                return
            }
            shards.ready[index] = true
            if shards.isReady { shardsBecameReady() }
            return
        }
        guard var gather = shards.gathers[state.requestID] else { return }
        guard state.version == gather.checkpoint.version else {
            shardFailed(peer, "its ShardState for request \(state.requestID) is of version \(state.version), "
                + "expected \(gather.checkpoint.version)")
            return
        }
        let part: ModelTrainingState
        do {
            part = try ModelTrainingState(wireBytes: state.modelState)
        } catch {
            shardFailed(peer, "its ShardState.model_state: \(error)")
            return
        }
        guard part.parameters.count == shards.map.ranges[index].count else {
            shardFailed(peer, "its ShardState.model_state holds \(part.parameters.count) parameters; its range has \(shards.map.ranges[index].count)")
            return
        }
        gather.parts[index] = part
        guard gather.parts.count == shards.map.ranges.count else {
            shards.gathers[state.requestID] = gather
            return
        }
        shards.gathers[state.requestID] = nil
        do {
            gather.checkpoint.model = try ModelTrainingState.joined((0..<shards.map.ranges.count).map { gather.parts[$0]! })
        } catch {
            gather.abandoned()
            // Ranges whose states disagree cannot train on: one of them goes, and the session goes back
            // to its last snapshot.
            shardFailed(peer, "the shards' states of version \(gather.checkpoint.version) do not fit together: \(error)")
            return
        }
        gather.checkpoint.shards = shards.map.ranges.map { range in
            let holder = shards.holders[range.index]
            return SessionCheckpoint.ShardRecord(
                index: range.index, offset: range.offset, count: range.count, shard: holder?.name ?? "",
                address: holder?.shardAddress.map { "\($0.host):\($0.port)" } ?? "")
        }
        // Every full gathered state is a consistent snapshot of the session.
        if gather.isSnapshot {
            shards.lastSnapshot = gather.checkpoint
            shards.lastSnapshotAt = clock.now
        }
        gather.completion(gather.checkpoint)
    }

    /// What is wrong with a shard's answer to its readiness request, if anything: it must hold the range
    /// it was assigned, at the assigned version, exactly.
    private func assignmentMismatch(_ state: ShardState, index: Int) -> String? {
        guard let snapshot = shards.lastSnapshot else { return "no range was assigned" }
        let range = shards.map.ranges[index]
        guard state.version == snapshot.version else {
            return "it holds range \(index) at version \(state.version); it was assigned version \(snapshot.version)"
        }
        let held: ModelTrainingState
        do {
            held = try ModelTrainingState(wireBytes: state.modelState)
        } catch {
            return "its ShardState.model_state: \(error)"
        }
        guard held.parameters.count == range.count else {
            return "it holds \(held.parameters.count) parameters; range \(index) (\(range.text)) has \(range.count)"
        }
        guard held.parameters == Array(snapshot.model.parameters[range.indices]) else {
            return "the parameters it holds are not those of range \(index) (\(range.text)) that it was sent"
        }
        return nil
    }

    /// Every range is held: workers that waited are welcomed, with the map.
    private func shardsBecameReady() {
        reporter.line("all \(shards.map.ranges.count) shard(s) hold their ranges")
        let waiting = shards.waitingWorkers
        shards.waitingWorkers = []
        for (peer, hello) in waiting where peers[peer.worker] === peer && peer.isHandshaking {
            admit(peer, hello)
        }
    }

    /// A shard that answered something impossible: it is closed, and lost.
    private func shardFailed(_ peer: Peer, _ message: String) {
        refuse(peer, .wrongShard, "shard \(peer.name): \(message)")
    }

    // MARK: Decisions

    /// Sends every shard the update: the staged slices it is made of, as one `ShardApply`, the same
    /// bytes to each.
    func applyAtShards(_ update: ModelUpdate, version: UInt64) {
        var apply = ShardApply()
        apply.version = version
        apply.kind = update.kind == .gradient ? .gradient : .delta
        apply.scale = update.scale
        apply.arrivalsPerStep = UInt32(clamping: update.arrivalsPerStep)
        apply.slices = update.sources.map {
            StagedSlice(unitID: $0.unitID, workerID: $0.worker.rawValue, sampleCount: UInt32(clamping: $0.sampleCount))
        }
        sendToShards(Envelope(body: .shardApply(apply)))
    }

    /// Tells every shard to drop slices of `worker` (all of them when `units` is empty).
    func discardAtShards(worker: WorkerID, units: [UInt64]) {
        sendToShards(Envelope(body: .shardDiscard(ShardDiscard(workerID: worker.rawValue, unitIds: units))))
    }

    private func sendToShards(_ envelope: Envelope) {
        let payload = envelope.serializedBytes()
        for (_, peer) in shards.presentHolders {
            wireBytesOut &+= UInt64(payload.count + 4)
            metrics?.didSend(bytes: payload.count)
            peer.connection.send(frame: payload)
        }
    }

    /// Whether `actions` refuse the push of `unit` from `worker` (then its slices will never be applied).
    static func refuses(_ actions: [SessionCoordinator.Action], unit: UInt64, of worker: WorkerID) -> Bool {
        actions.contains { action in
            switch action {
            case .acknowledge(let to, let ack): to == worker && ack.unitID == unit && !ack.applied
            case .refuse(let to, _): to == worker
            default: false
            }
        }
    }

    // MARK: Staged pushes

    /// The shards' word that they hold a worker's slice. Once every range's shard has said so, a
    /// staged push held for it is taken.
    private func confirm(_ received: SliceReceived, from peer: Peer) {
        guard let index = peer.shardIndex, shards.holders[index] === peer else { return }
        let key = ShardRoster.StagedKey(worker: WorkerID(received.workerID), unit: received.unitID)
        // Only for workers in the session: a stale confirmation of a worker that left holds nothing.
        guard peers[key.worker]?.state == .joined else { return }
        shards.confirmations[key, default: []].insert(index)
        if let held = shards.heldPushes[key], let worker = peers[key.worker], shards.confirmations[key]?.count == shards.map.ranges.count {
            shards.heldPushes[key] = nil
            handlePush(held.push, from: worker)
        }
    }

    /// Whether every shard said it holds the slice of `push`; if not, the push is held until they
    /// have (at most `heldPushesPerWorker` per worker, the oldest dropped: its lease expires and its
    /// unit is requeued). A push that claims slices no shard holds so never reaches the shards, so it
    /// cannot make a `ShardApply` name a slice a shard lacks.
    func stagedPushIsConfirmed(_ push: Push, from peer: Peer) -> Bool {
        let key = ShardRoster.StagedKey(worker: peer.worker, unit: push.unitID)
        if shards.confirmations[key]?.count == shards.map.ranges.count {
            shards.confirmations[key] = nil
            return true
        }
        let held = shards.heldPushes.filter { $0.key.worker == peer.worker }
        if held.count >= Self.heldPushesPerWorker, let oldest = held.min(by: { $0.value.heldAt < $1.value.heldAt }) {
            shards.heldPushes[oldest.key] = nil
            logRefusal(from: peer, "dropped its staged push of unit \(oldest.key.unit): the shards never said they hold its slices")
        }
        shards.heldPushes[key] = (push, clock.now)
        return false
    }

    /// Staged pushes one worker may have waiting for the shards' word at once.
    static let heldPushesPerWorker = 64

    /// A worker left: its slices at the shards are discarded, once the open sync round (if it holds a
    /// push of this worker) has been applied; its confirmations and held pushes are forgotten.
    func workerLeftShards(_ worker: WorkerID) {
        shards.confirmations = shards.confirmations.filter { $0.key.worker != worker }
        shards.heldPushes = shards.heldPushes.filter { $0.key.worker != worker }
        if coordinator.roundHoldsPush(of: worker) {
            shards.deferredDiscards.insert(worker)
        } else {
            discardAtShards(worker: worker, units: [])
        }
    }

    /// After an update went to the shards: the discards that waited for it.
    func flushDeferredDiscards() {
        guard !shards.deferredDiscards.isEmpty else { return }
        for worker in shards.deferredDiscards.sorted() where !coordinator.roundHoldsPush(of: worker) {
            shards.deferredDiscards.remove(worker)
            discardAtShards(worker: worker, units: [])
        }
    }

    // MARK: Gathering the ranges

    /// Calls `body` with the model's parameters now: at once when the server holds them; in a sharded
    /// session once every shard has sent its range (of this very version), or `abandoned` when a shard
    /// is lost first.
    func withCurrentParameters(abandoned: @escaping () -> Void, _ body: @escaping ([Float]) -> Void) {
        guard configuration.shards > 0 else {
            body(model.parameters)
            return
        }
        // The last evaluation's gather is a full snapshot: the session's final checkpoint is made of it.
        gatherShards(parametersOnly: coordinator.phase != .finished, abandoned: abandoned) { body($0.model.parameters) }
    }

    /// Asks every shard for its range's state; calls `completion` with the session at this version,
    /// the ranges joined, or `abandoned` if a range is not held now or its shard is lost first. With
    /// `parametersOnly` the state has no optimiser buffers (for an evaluation) and is no snapshot.
    func gatherShards(parametersOnly: Bool = false, abandoned: @escaping () -> Void,
                      completion: @escaping (SessionCheckpoint) -> Void) {
        guard shards.isReady else {
            abandoned()
            return
        }
        let request = shards.makeRequestID()
        // The model is filled in from the answers.
        let checkpoint = makeCheckpoint(recipe: sessionRecipe, model: ModelTrainingState(
            parameters: [], optimizer: OptimizerState(kind: ""), scheduleStep: 0))
        shards.gathers[request] = ShardRoster.Gather(
            checkpoint: checkpoint, isSnapshot: !parametersOnly, completion: completion, abandoned: abandoned)
        sendToShards(Envelope(body: .shardStateRequest(ShardStateRequest(requestID: request, modelState: true, parametersOnly: parametersOnly))))
    }

    /// Once a second: shards silent past the heartbeat timeout are dropped; a snapshot when one is due;
    /// the shards' figures for the report and `/metrics`.
    func tickShards() {
        let now = clock.now
        for peer in shards.presentHolders.map(\.peer) + shards.spares {
            // Bytes of a large ShardState still arriving count as life: heartbeats wait behind it.
            let read = peer.connection.bytesRead
            if read != peer.bytesReadAtCheck {
                peer.bytesReadAtCheck = read
                peer.lastHeard = max(peer.lastHeard, now)
            }
        }
        for peer in shards.presentHolders.map(\.peer) + shards.spares where now - peer.lastHeard >= configuration.policy.heartbeatTimeout {
            reporter.line("shard \(peer.name) at \(peer.connection.remoteAddress) was silent for more than \(configuration.policy.heartbeatTimeout)")
            peer.connection.closeNow()
        }
        guard shards.isReady, !finishing, !finished else { return }
        sendToShards(Envelope(body: .shardStateRequest(ShardStateRequest(requestID: 0, modelState: false))))
        if startedAt != nil, !shards.snapshotInFlight, coordinator.version > (shards.lastSnapshot?.version ?? 0),
           now - (shards.lastSnapshotAt ?? now) >= configuration.snapshotInterval {
            shards.snapshotInFlight = true
            gatherShards(abandoned: { [self] in shards.snapshotInFlight = false }) { [self] _ in shards.snapshotInFlight = false }
        }
    }

    /// Each held range's latest figures, for the report and `/metrics`.
    func shardPoints() -> [SessionHistory.ShardPoint] {
        shards.presentHolders.compactMap { index, peer in
            shards.figures[index].map { state in
                SessionHistory.ShardPoint(
                    seconds: sinceStart, index: index, shard: peer.name, updates: state.updates, bytesIn: state.bytesIn,
                    bytesOut: state.bytesOut, stalenessMean: state.stalenessMean, stalenessMax: state.stalenessMax,
                    workers: Int(state.workers))
            }
        }
    }

    // MARK: Losing a shard

    /// A shard's connection closed (or it was dropped): a spare is simply gone; a holder's range is
    /// lost, and the session goes back to the last snapshot.
    func shardClosed(_ peer: Peer, reason: String) {
        if let spare = shards.spares.firstIndex(where: { $0 === peer }) {
            shards.spares.remove(at: spare)
            reporter.line("spare shard \(peer.name) left: \(reason)")
            return
        }
        guard let index = peer.shardIndex, shards.holders[index] === peer else { return }
        shards.holders[index] = nil
        shards.ready[index] = false
        // After the session's end shards close by design.
        guard !finished else { return }
        history.membership.append(.init(seconds: sinceStart, worker: peer.name, joined: false, reason: "shard lost: \(reason)"))
        // Every unit applied and the final state gathered: the session ends with it; going back would
        // restore a finished ledger with nothing left to train.
        if finishing, let snapshot = shards.lastSnapshot, snapshot.version == coordinator.version {
            reporter.line("shard \(peer.name) lost after the session's final state was gathered (\(reason)); the session ends")
            return
        }
        // Before any update, and with no worker sent to the shards yet, nothing is to be undone: the range
        // only needs another holder.
        if startedAt == nil, !peers.values.contains(where: { $0.state == .joined }),
           coordinator.version == (shards.lastSnapshot?.version ?? coordinator.version) {
            // Its readiness request will never be answered.
            shards.readinessRequests = shards.readinessRequests.filter { $0.value != index }
            reporter.line("shard \(peer.name) no longer holds range \(index): \(reason)")
            replaceHolder(of: index)
            return
        }
        rollBack(lost: index, shard: peer, reason: reason)
    }

    /// Sends the session back to the last snapshot, where every range agrees: workers reconnect,
    /// every range is assigned again from the snapshot, and the units applied since wait again.
    private func rollBack(lost index: Int, shard: Peer, reason: String) {
        let snapshot = shardSnapshot()
        let age = shards.lastSnapshotAt.map { "\(SummaryLine.format((clock.now - $0).seconds, digits: 1)) s old" } ?? "the session's start"
        let message = "shard \(index) (\(shard.name) at \(shard.connection.remoteAddress)) was lost (\(reason)); "
            + "the session goes back to version \(snapshot.version); reconnect"
        var workers = 0
        for peer in peers.values where peer.state == .joined {
            workers += 1
            peer.state = .gone
            peer.connection.sendError(.unavailable, message, fatal: true)
        }
        // Requests no shard will answer now, and what waited for them.
        let gathers = shards.gathers.values
        shards.gathers = [:]
        shards.readinessRequests = [:]
        shards.confirmations = [:]
        shards.heldPushes = [:]
        shards.deferredDiscards = []
        sessionEra += 1
        for gather in gathers { gather.abandoned() }
        shards.rollbacks += 1
        reporter.line("shard \(index) (\(shard.name)) lost: \(reason); going back to the snapshot at version \(snapshot.version) "
            + "(\(age)), \(coordinator.version - min(coordinator.version, snapshot.version)) update(s) to redo; "
            + "\(workers) worker(s) reconnect")
        restoreSession(from: snapshot)
        history.membership.append(.init(seconds: sinceStart, worker: "ps-server", joined: true,
                                        reason: "back to version \(snapshot.version): shard \(index) was lost"))
        for (held, peer) in shards.presentHolders { assign(held, to: peer) }
        replaceHolder(of: index)
    }

    /// Gives range `index` to the first spare, or says that it waits for one.
    private func replaceHolder(of index: Int) {
        if !shards.spares.isEmpty {
            assign(index, to: shards.spares.removeFirst())
        } else {
            reporter.line("range \(index) (\(shards.map.ranges[index].text)) waits for a ps-shard")
        }
    }

    /// The host part of `"10.0.0.2:5000"` or `"[::1]:5000"`.
    static func host(of address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        let host = address[..<colon]
        return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : String(host)
    }
}
