import Messages
import TensorEncoding

extension ParameterServerRuntime {
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

    /// Sends a worker the weights: what its pull asks for (`knownVersion`), or, unasked (nil), what it
    /// lacks of the current version (training starts, a worker joins, a sync round). The publisher
    /// encodes each frame once for every puller. A sharded session's workers pull from the shards.
    func sendWeights(to peer: Peer, knownVersion: UInt64? = nil) {
        guard configuration.shards == 0 else { return }
        let frames = publisher.frames(
            for: &peer.publication, knownVersion: knownVersion, version: coordinator.version, parameters: model.parameters,
            activeWorkers: coordinator.activeWorkers.count)
        for frame in frames {
            wireBytesOut &+= UInt64(frame.payload.count + 4)
            if let encoding = frame.valuesEncoding {
                metrics?.didSendWeights(encoding: encoding, bytes: frame.payload.count)
            } else {
                metrics?.didSend(bytes: frame.payload.count)
            }
            peer.connection.send(frame: frame.payload)
        }
    }
}
