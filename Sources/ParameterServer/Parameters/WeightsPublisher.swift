import Messages
import TensorEncoding

/// What a ``WeightsPublisher`` knows of one puller: how it takes weights, and for a worker that
/// follows the weights chain, the chain point it was last sent.
public struct PublisherPeerState: Sendable, Equatable {
    /// The encoding of whole weights for this peer: the session's pull encoding, or fp32 for a
    /// worker that did not offer it.
    public var pullEncoding: TensorEncoding
    /// Whether the peer is sent the chain's keyframes and deltas rather than whole weights.
    public var followsChain: Bool
    /// The chain point last sent to the peer, which it holds once it has read what was queued; nil
    /// before the first.
    public internal(set) var chainVersion: UInt64?

    /// A peer that has been sent nothing yet.
    public init(pullEncoding: TensorEncoding, followsChain: Bool) {
        self.pullEncoding = pullEncoding
        self.followsChain = followsChain
    }
}

/// Serves weights to pullers exactly as a parameter server does (Schemas/Messages/README.md,
/// "Deltas of weights"): whole weights encoded once per version and encoding and shared by every
/// puller, or, for peers that follow it, a ``WeightsChain`` of keyframes and deltas, advanced by a
/// stride of versions on routine pulls. One type for whatever publishes a buffer: a `ps-shard` its
/// range, the server the whole model.
///
/// ```swift
/// var publisher = WeightsPublisher(count: parameters.count, pullEncoding: .q8(), deltaEncoding: .sign(),
///                                  strideAllowed: true, localSteps: 8)
/// var peer = PublisherPeerState(pullEncoding: .q8(), followsChain: true)
/// for frame in publisher.frames(for: &peer, knownVersion: pull.knownVersion, version: version,
///                               parameters: parameters, activeWorkers: 4) {
///     connection.send(frame: frame.payload)
/// }
/// ```
public struct WeightsPublisher: Sendable {
    /// One frame to send: a serialized `Envelope` holding `Weights`.
    public struct Frame: Sendable, Equatable {
        /// The frame's payload, the same bytes for every puller of that version.
        public let payload: [UInt8]
        /// What the values travel as, for accounting: the encoding's name, `delta-NAME` for a delta,
        /// nil for an empty `Weights` ("you hold the latest").
        public let valuesEncoding: String?
    }

    /// The local steps (updates times H) by which a routine pull's weights may lag the publisher's,
    /// at most, for fewer deltas. Measured (4 async workers, MLP-512, sign deltas, 5 epochs): a lag
    /// of up to 3 updates cost nothing at H = 8 (24 steps; 212 bytes per sample against 512 for a
    /// delta at every version) or 1 at H = 16, but 0.2 points at H = 32 (96 steps).
    public static let chainLagSteps = 32

    /// The number of values published.
    public let count: Int
    /// The session's pull encoding: the chain's first keyframe is in it.
    public let pullEncoding: TensorEncoding
    /// The encoding of the chain's deltas; nil when every peer gets whole weights.
    public let deltaEncoding: TensorEncoding?
    /// Whether a routine pull may find the chain a stride of versions behind (false under the
    /// `bound` staleness policy, where the lag would turn into refused pushes).
    public let strideAllowed: Bool
    /// The session's local steps per unit (H), which bounds the stride.
    public let localSteps: Int
    /// Whole weights as each encoding's payload, of the version they were last made for.
    private var wholeWeights: [TensorEncoding: (version: UInt64, payload: [UInt8])] = [:]
    /// The chain, made at the first pull of a peer that follows it.
    private var chain: WeightsChain?

    /// Creates a publisher that has published nothing.
    /// - Parameters:
    ///   - count: the number of values every publication has.
    ///   - pullEncoding: the session's encoding of whole weights (fp32, fp16, bf16 or q8).
    ///   - deltaEncoding: the session's encoding of deltas, nil for none.
    ///   - strideAllowed: false under the `bound` staleness policy: every pull brings the newest version.
    ///   - localSteps: the session's local steps per unit.
    public init(count: Int, pullEncoding: TensorEncoding, deltaEncoding: TensorEncoding?, strideAllowed: Bool, localSteps: Int) {
        self.count = count
        self.pullEncoding = pullEncoding
        self.deltaEncoding = deltaEncoding
        self.strideAllowed = strideAllowed
        self.localSteps = max(1, localSteps)
    }

    /// Creates a publisher whose chain carries on from `point`: what the pullers held when a server
    /// was stopped (a checkpoint's pulled weights), so its workers train on the same weights as before.
    public init(count: Int, pullEncoding: TensorEncoding, deltaEncoding: TensorEncoding, strideAllowed: Bool, localSteps: Int,
                resuming point: WeightsChain.Point) {
        self.init(count: count, pullEncoding: pullEncoding, deltaEncoding: deltaEncoding, strideAllowed: strideAllowed,
                  localSteps: localSteps)
        chain = WeightsChain(count: count, pullEncoding: pullEncoding, deltaEncoding: deltaEncoding, resuming: point)
    }

    /// The chain's last point: what a peer that followed it holds; nil before any chain frame.
    public var lastPoint: WeightsChain.Point? { chain?.lastPoint }

    /// The frames that answer `peer`'s pull (or bring it up to date unasked), in order.
    ///
    /// A peer that takes whole weights gets the weights of `version` in its encoding, or an empty
    /// `Weights` when `knownVersion` already is `version`. A peer that follows the chain gets the
    /// frames after the point it was last sent, the chain first brought up to `version` when it is
    /// behind (for a routine pull, by at least a stride of versions: as many as there are active
    /// workers, at most ``chainLagSteps`` local steps); an empty `Weights` of the chain's version
    /// when it lacks nothing and asked.
    ///
    /// - Parameters:
    ///   - peer: the peer's state; its chain point is updated.
    ///   - knownVersion: the peer's `Pull.known_version`, nil when sending unasked. 0 means "none"
    ///     (for the chain: the keyframe again, unless the peer was sent version 0 and nothing since).
    ///   - version: the version of `parameters`.
    ///   - parameters: the values at `version`, `count` of them.
    ///   - activeWorkers: the workers taking part now, which sets the stride.
    public mutating func frames(
        for peer: inout PublisherPeerState, knownVersion: UInt64?, version: UInt64, parameters: [Float], activeWorkers: Int
    ) -> [Frame] {
        precondition(parameters.count == count, "\(parameters.count) values for a publisher of \(count)")
        if peer.followsChain, let deltaEncoding {
            return chainFrames(for: &peer, knownVersion: knownVersion, version: version, parameters: parameters,
                               activeWorkers: activeWorkers, deltaEncoding: deltaEncoding)
        }
        // known_version 0 also means "none": the first weights are version 0, and a peer that holds
        // nothing cannot say so otherwise.
        if let knownVersion, knownVersion != 0, knownVersion == version { return [Self.current(version)] }
        return [Frame(payload: wholeWeightsPayload(version: version, encoding: peer.pullEncoding, parameters: parameters),
                      valuesEncoding: peer.pullEncoding.name)]
    }

    /// The empty answer: "you hold the latest weights, `version`".
    private static func current(_ version: UInt64) -> Frame {
        Frame(payload: Envelope(body: .weights(Weights(version: version))).serializedBytes(), valuesEncoding: nil)
    }

    /// The serialized Weights envelope of `version` in `encoding`, made once per version and encoding.
    private mutating func wholeWeightsPayload(version: UInt64, encoding: TensorEncoding, parameters: [Float]) -> [UInt8] {
        if let cached = wholeWeights[encoding], cached.version == version { return cached.payload }
        var weights = Weights(version: version)
        if encoding == .fp32 {
            weights.values = parameters
        } else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(encoding.maxEncodedSize(count: count))
            parameters.withUnsafeBufferPointer { encoding.encode($0, into: &bytes) }
            weights.encodedValues = bytes
        }
        let payload = Envelope(body: .weights(weights)).serializedBytes()
        wholeWeights[encoding] = (version, payload)
        return payload
    }

    private mutating func chainFrames(
        for peer: inout PublisherPeerState, knownVersion: UInt64?, version: UInt64, parameters: [Float], activeWorkers: Int,
        deltaEncoding: TensorEncoding
    ) -> [Frame] {
        // Taken out while it is used: with one owner, publishing changes R in place instead of copying it.
        var chain = self.chain ?? WeightsChain(count: count, pullEncoding: pullEncoding, deltaEncoding: deltaEncoding)
        self.chain = nil
        defer { self.chain = chain }
        // A routine pull (known_version set) publishes a new point only once the version is `stride`
        // updates past the last point: with as many as there are workers, each worker's pull finds about
        // one new delta, not one per other worker's pull. The weights it gets may then be stride − 1
        // updates older, so the stride also keeps that under `chainLagSteps` local steps. Sending unasked
        // and known_version 0 always bring the chain up to date.
        let stride = strideAllowed ? UInt64(max(1, min(activeWorkers, Self.chainLagSteps / localSteps))) : 1
        let routine = knownVersion.map { $0 != 0 } ?? false
        let behind = chain.lastVersion.map { last in version > last && (!routine || version - last >= stride) } ?? true
        if behind { chain.publish(version: version, weights: parameters) }
        if knownVersion == 0, peer.chainVersion != 0 { peer.chainVersion = nil }
        let frames = chain.frames(after: peer.chainVersion)
        guard !frames.isEmpty else {
            // The answer to a pull, as for any peer: "you hold the latest weights" (the chain's).
            return knownVersion == nil ? [] : [Self.current(chain.lastVersion ?? version)]
        }
        peer.chainVersion = chain.lastVersion
        return frames.map { frame in
            Frame(payload: frame.payload, valuesEncoding: frame.isKeyframe ? frame.encoding.name : "delta-\(frame.encoding.name)")
        }
    }
}
