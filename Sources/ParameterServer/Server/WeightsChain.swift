import Messages
import TensorEncoding

/// The weights a server publishes to workers that take deltas: a chain of frames, each encoded once
/// for every puller, and the replica R those frames build.
///
/// R is exactly the floats a worker that applied the chain's frames in order holds. The chain starts
/// with a keyframe in the pull encoding, R = decode(encode(W)). Each later point V is a delta from the
/// chain's last point p, encode(W_V − R_p), and R becomes R_p + decode(that), computed with the
/// worker's own decoder (`decodeAdding`), so both sides hold the same bits. Because every delta
/// encodes the difference to R, not to the previous weights, what one delta's encoding dropped is
/// sent by the next (error feedback on the server-to-worker direction, as in DoubleSqueeze, Tang et
/// al. 2019): R never drifts from W by more than the error of one delta's encoding.
///
/// A worker at a point v receives the deltas after v; a worker that holds nothing, or no point of
/// the chain, or for which those deltas weigh more than the keyframe path, receives the latest
/// keyframe and the deltas after it. Keyframes after the first are R itself in fp32 (`Weights.values`),
/// not a fresh encoding of W: they leave R as it is, so that a worker following the deltas never has
/// to download them. Once the deltas since the keyframe outweigh it, the next point also becomes a
/// keyframe, and deltas no worker would take rather than it are dropped: the cache holds one keyframe
/// and at most about two keyframes' worth of deltas.
///
/// ```swift
/// var chain = WeightsChain(count: model.parameterCount, pullEncoding: .q8(), deltaEncoding: .sign())
/// chain.publish(version: version, weights: model.parameters)
/// for frame in chain.frames(after: peerHolds) { connection.send(frame: frame.payload) }
/// ```
public struct WeightsChain: Sendable {
    /// One published frame: a serialized `Envelope` holding a `Weights`, the same bytes for every
    /// puller.
    public struct Frame: Sendable, Equatable {
        /// The version the frame brings a worker to.
        public let version: UInt64
        /// The version a delta applies to; nil for a keyframe (whole weights).
        public let baseVersion: UInt64?
        /// The encoding of the values it carries, for accounting: the pull encoding or fp32 for a
        /// keyframe, the delta encoding for a delta.
        public let encoding: TensorEncoding
        /// The whole frame payload: a serialized `Envelope` with a `Weights` body.
        public let payload: [UInt8]

        /// Whether this is whole weights rather than a delta.
        public var isKeyframe: Bool { baseVersion == nil }
    }

    /// A point of the chain: a version and R there, what a worker that reached it holds.
    public struct Point: Sendable, Equatable {
        /// The version of the point.
        public var version: UInt64
        /// R at that version: `count` values.
        public var values: [Float]

        /// Creates a point.
        public init(version: UInt64, values: [Float]) {
            self.version = version
            self.values = values
        }
    }

    /// The number of parameters.
    public let count: Int
    /// The encoding of the chain's first keyframe: the session's pull encoding.
    public let pullEncoding: TensorEncoding
    /// The encoding of every delta.
    public let deltaEncoding: TensorEncoding
    /// R: what a worker holds after the chain's last frame.
    public private(set) var replica: [Float] = []
    /// The latest keyframe; nil before the first publication.
    public private(set) var keyframe: Frame?
    /// The deltas kept, in chain order: each one's base is the version of the one before.
    public private(set) var deltas: [Frame] = []
    /// Where the difference W − R is formed and encoded: kept, not allocated per publication.
    private var difference: [Float] = []
    private var encoded: [UInt8] = []

    /// Creates an empty chain.
    /// - Parameters:
    ///   - count: The number of parameters every publication has.
    ///   - pullEncoding: The encoding of the first keyframe (fp32, fp16, bf16 or q8).
    ///   - deltaEncoding: The encoding of deltas.
    public init(count: Int, pullEncoding: TensorEncoding, deltaEncoding: TensorEncoding) {
        precondition(count >= 0, "negative parameter count \(count)")
        self.count = count
        self.pullEncoding = pullEncoding
        self.deltaEncoding = deltaEncoding
    }

    /// Creates a chain that carries on from `point` (a checkpoint's): its keyframe is R there, exactly,
    /// so that workers of a resumed session hold the same weights as those of the session before.
    /// - Precondition: `point.values.count == count`.
    public init(count: Int, pullEncoding: TensorEncoding, deltaEncoding: TensorEncoding, resuming point: Point) {
        precondition(point.values.count == count, "\(point.values.count) values for a chain of \(count)")
        self.init(count: count, pullEncoding: pullEncoding, deltaEncoding: deltaEncoding)
        replica = point.values
        takeKeyframe(version: point.version)
    }

    /// The chain's last point, for a checkpoint; nil before the first publication.
    public var lastPoint: Point? { lastVersion.map { Point(version: $0, values: replica) } }

    /// The version of the chain's last point, or nil before the first publication.
    public var lastVersion: UInt64? { deltas.last?.version ?? keyframe?.version }

    /// Payload bytes held by the cached frames.
    public var cachedBytes: Int { (keyframe?.payload.count ?? 0) + deltas.reduce(0) { $0 + $1.payload.count } }

    /// Adds the point `version` with the server's weights `weights`: the first keyframe, or a delta
    /// from the last point (which may become a keyframe too, see the type's description).
    ///
    /// Weights that are not finite cannot be sent as a delta (the worker refuses such a payload);
    /// the chain then starts again with a keyframe of them, which workers refuse as they refused such
    /// weights before deltas existed.
    ///
    /// - Parameters:
    ///   - version: The server's version, after the chain's last point.
    ///   - weights: The server's parameters at that version, `count` of them.
    /// - Precondition: `version` is past ``lastVersion``; `weights.count == count`.
    public mutating func publish(version: UInt64, weights: [Float]) {
        precondition(weights.count == count, "\(weights.count) weights for a chain of \(count)")
        guard let base = lastVersion, let keyframe else {
            start(version: version, weights: weights)
            return
        }
        precondition(version > base, "version \(version) is not past the chain's last point \(base)")
        if difference.count != count { difference = [Float](repeating: 0, count: count) }
        replica.withUnsafeBufferPointer { r in
            weights.withUnsafeBufferPointer { w in
                difference.withUnsafeMutableBufferPointer { d in
                    for i in 0..<d.count { d[i] = w[i] - r[i] }
                }
            }
        }
        encoded.removeAll(keepingCapacity: true)
        let encoding = deltaEncoding
        difference.withUnsafeBufferPointer { encoding.encode($0, into: &encoded) }
        // The worker's own operation, R += 1 · decode(payload), also checks the payload as the worker
        // will: a non-finite difference is refused here before R changes.
        let refusal = encoded.withUnsafeBytes { payload in
            replica.withUnsafeMutableBufferPointer { r in
                Result { () throws(TensorDecodingError) in try encoding.decodeAdding(payload, scale: 1, into: r) }
            }
        }
        guard case .success = refusal else {
            start(version: version, weights: weights)
            return
        }
        let delta = Weights(version: version, encodedValues: encoded, baseVersion: base)
        deltas.append(Frame(version: version, baseVersion: base, encoding: encoding,
                            payload: Envelope(body: .weights(delta)).serializedBytes()))
        if bytes(deltas[afterKeyframe...]) > keyframe.payload.count { takeKeyframe(version: version) }
        dropUnwantedDeltas()
    }

    /// The frames that bring a worker holding the chain point `held` to the last point, in order.
    ///
    /// Empty when `held` is the last point. The deltas after `held` when it is a point the chain
    /// keeps; otherwise (nil, or a version that is no point of the chain, or one dropped) the keyframe
    /// and the deltas after it. The chain keeps only points whose deltas weigh no more than that
    /// keyframe path (see `dropUnwantedDeltas`), so the deltas are never the dearer choice.
    ///
    /// - Parameter held: The chain point the worker holds, nil when it holds none.
    /// - Returns: The frames to send, whose first is a keyframe or a delta on `held`.
    public func frames(after held: UInt64?) -> [Frame] {
        guard let keyframe else { return [] }
        if held == lastVersion { return [] }
        if let held, let start = deltas.firstIndex(where: { $0.baseVersion == held }) { return Array(deltas[start...]) }
        return [keyframe] + deltas[afterKeyframe...]
    }

    // MARK: Keyframes

    /// Starts the chain (again) at `version`: R = decode(encode(W)) in the pull encoding, and no deltas.
    private mutating func start(version: UInt64, weights: [Float]) {
        var message = Weights(version: version)
        if pullEncoding == .fp32 {
            message.values = weights
            replica = weights
        } else {
            message.encodedValues = pullEncoding.encoded(weights)
            // Weights that are not finite: their keyframe is refused by workers (as before deltas
            // existed), and R keeps them, so that the next publication starts again too.
            replica = (try? pullEncoding.decoded(message.encodedValues, count: count)) ?? weights
        }
        keyframe = Frame(version: version, baseVersion: nil, encoding: pullEncoding,
                         payload: Envelope(body: .weights(message)).serializedBytes())
        deltas.removeAll()
    }

    /// Makes the last point a keyframe: R itself in fp32, exact, so R does not change.
    private mutating func takeKeyframe(version: UInt64) {
        keyframe = Frame(version: version, baseVersion: nil, encoding: .fp32,
                         payload: Envelope(body: .weights(Weights(version: version, values: replica))).serializedBytes())
    }

    /// Drops the oldest deltas while the deltas from the oldest point to the keyframe alone outweigh
    /// the keyframe: for a worker there, the keyframe and the deltas after it cost less.
    private mutating func dropUnwantedDeltas() {
        guard let keyframe else { return }
        var beforeKeyframe = bytes(deltas[..<afterKeyframe])
        var dropped = 0
        while dropped < deltas.count, deltas[dropped].version <= keyframe.version, beforeKeyframe > keyframe.payload.count {
            beforeKeyframe -= deltas[dropped].payload.count
            dropped += 1
        }
        deltas.removeFirst(dropped)
    }

    /// The index of the first delta after the keyframe.
    private var afterKeyframe: Int {
        guard let keyframe else { return deltas.endIndex }
        return deltas.firstIndex { $0.version > keyframe.version } ?? deltas.endIndex
    }

    private func bytes(_ frames: ArraySlice<Frame>) -> Int {
        frames.reduce(0) { $0 + $1.payload.count }
    }
}
