import Messages
import TensorEncoding

extension ParameterServerRuntime {
    /// The local steps (updates times H) by which a routine pull's weights may lag the server's,
    /// at most, for fewer deltas. Measured (4 async workers, MLP-512, sign deltas, 5 epochs): a lag
    /// of up to 3 updates cost nothing at H = 8 (24 steps; 212 bytes per sample against 512 for a
    /// delta at every version) or 1 at H = 16, but 0.2 points at H = 32 (96 steps).
    static let chainLagSteps = 32

    /// Whether `peer` is sent the weights chain's keyframes and deltas: the session has a delta
    /// encoding and the worker offered deltas, that encoding and the session's pull encoding (the
    /// chain's first keyframe is in it). Logs why not when the session has deltas.
    func followsChain(_ peer: Peer, offered: Set<String>) -> Bool {
        guard let delta = configuration.deltaEncoding else { return false }
        let follows = offered.contains(TensorEncoding.deltaCapability) && offered.contains(delta.name)
            && peer.pullEncoding == configuration.pullEncoding
        if !follows { reporter.line("worker \(peer.label) does not offer \(delta.name) deltas; its weights travel whole") }
        return follows
    }

    /// Sends a worker that follows the chain what it lacks: the frames after the point it was last sent,
    /// publishing the current version first when the chain is behind it (for a routine pull, by at least
    /// a stride of updates; see below). Every frame's bytes are shared by all pullers.
    ///
    /// - Parameter knownVersion: the worker's `Pull.known_version`, nil when the server sends unasked
    ///   (training starts, a sync round). The server goes by what it sent, not by this: a worker that
    ///   pulls before reading frames already on their way would otherwise be sent them twice. Only 0,
    ///   "none", asks for the keyframe again; but a worker that was sent version 0 and nothing since
    ///   holds it and says 0 (version 0 cannot be named otherwise), which is not asking again.
    func sendChainFrames(to peer: Peer, knownVersion: UInt64?) {
        guard let delta = configuration.deltaEncoding else { return }
        let version = coordinator.version
        // Taken out while it is used: with one owner, publishing changes R in place instead of copying it.
        var chain = weightsChain ?? WeightsChain(count: model.parameterCount, pullEncoding: configuration.pullEncoding, deltaEncoding: delta)
        weightsChain = nil
        defer { weightsChain = chain }
        // A routine pull (known_version set) publishes a new point only once the version is `stride`
        // updates past the last point: with as many as there are workers, each worker's pull finds about
        // one new delta, not one per other worker's pull. The weights it gets may then be stride − 1
        // updates older, so the stride also keeps that under `chainLagSteps` local steps. Sending unasked
        // (a sync round, a join) and known_version 0 always bring the chain up to date.
        // Under `--staleness-policy bound` the lag would turn into refusals (4 async workers, MLP-512,
        // K = 8: 161 of 590 pushes refused as stale with the stride, 45 without it, 35 with whole
        // weights), so there every pull brings the newest version.
        let strideAllowed = configuration.policy.stalenessPolicy != .bound
        let stride = strideAllowed
            ? UInt64(max(1, min(coordinator.activeWorkers.count, Self.chainLagSteps / max(1, configuration.localSteps)))) : 1
        let routine = knownVersion.map { $0 != 0 } ?? false
        let behind = chain.lastVersion.map { last in version > last && (!routine || version - last >= stride) } ?? true
        if behind { chain.publish(version: version, weights: model.parameters) }
        if knownVersion == 0, peer.chainVersion != 0 { peer.chainVersion = nil }
        let frames = chain.frames(after: peer.chainVersion)
        guard !frames.isEmpty else {
            // The answer to a pull, as for any worker: "you hold the latest weights" (the chain's).
            if knownVersion != nil { send(Envelope(body: .weights(Weights(version: chain.lastVersion ?? version))), to: peer) }
            return
        }
        for frame in frames {
            wireBytesOut &+= UInt64(frame.payload.count + 4)
            metrics?.didSendWeights(encoding: frame.isKeyframe ? frame.encoding.name : "delta-\(frame.encoding.name)",
                                    bytes: frame.payload.count)
            peer.connection.send(frame: frame.payload)
        }
        peer.chainVersion = chain.lastVersion
    }
}
