import Messages
import TensorEncoding

/// The weights a worker holds, as the server's `Weights` frames make them: whole weights replace
/// them, and a delta (`base_version` set) is added to the version it names, in the order the frames
/// came. The addition is `decodeAdding` with scale 1, the server's own operation on its replica (see
/// `WeightsChain`), so both sides hold the same bits.
///
/// ```swift
/// var replica = WeightsReplica(count: parameterCount, pullEncoding: .q8(), deltaEncoding: .sign())
/// switch try replica.apply(weights) {
/// case .baseMismatch: connection.send(Envelope(body: .pull(Pull(knownVersion: 0))))
/// case .updated: train(on: replica.values)
/// case .unchanged: break
/// }
/// ```
public struct WeightsReplica: Sendable {
    /// What one frame did.
    public enum Outcome: Sendable, Equatable {
        /// The values and version changed.
        case updated
        /// Nothing changed: the server's "you hold the current version", a frame older than what is
        /// held, or a delta while whole weights are awaited.
        case unchanged
        /// A delta on `base`, which is not the version held (nil: none held). Nothing changed; deltas
        /// are ignored until whole weights arrive, which the worker should ask for (`Pull{known_version=0}`).
        case baseMismatch(base: UInt64, held: UInt64?)
    }

    /// The number of parameters.
    public let count: Int
    /// The encoding of whole weights in `Weights.encoded_values` (`Welcome.pull_encoding`).
    public let pullEncoding: TensorEncoding
    /// The encoding of deltas (`Welcome.delta_encoding`); nil when none was agreed, and a delta is refused.
    public let deltaEncoding: TensorEncoding?
    /// The weights held: `count` values once ``holdsWeights``.
    public private(set) var values: [Float] = []
    /// The version of ``values``.
    public private(set) var version: UInt64 = 0
    /// Whether any weights arrived.
    public private(set) var holdsWeights = false
    /// After a base mismatch: deltas are ignored until whole weights arrive.
    public private(set) var awaitsWholeWeights = false

    /// Creates a replica that holds nothing yet.
    /// - Parameters:
    ///   - count: The model's parameter count.
    ///   - pullEncoding: The encoding of whole weights sent encoded.
    ///   - deltaEncoding: The encoding of deltas, nil when the server sends none.
    public init(count: Int, pullEncoding: TensorEncoding = .fp32, deltaEncoding: TensorEncoding? = nil) {
        self.count = count
        self.pullEncoding = pullEncoding
        self.deltaEncoding = deltaEncoding
    }

    /// Applies one `Weights` frame from the server.
    ///
    /// - Parameter weights: The frame.
    /// - Returns: What it did.
    /// - Throws: ``WeightsRefusal`` naming the field at fault when the frame cannot be used: whole weights
    ///   of the wrong length or an encoding that was not agreed, a delta without an agreed delta
    ///   encoding, with `values`, or a payload its encoding refuses (a wrong length, a NaN or infinite
    ///   scale, ...). The replica is then unchanged.
    public mutating func apply(_ weights: Weights) throws(WeightsRefusal) -> Outcome {
        guard let base = weights.baseVersion else { return try replace(weights) }
        guard let deltaEncoding else {
            throw WeightsRefusal(.badEncoding, "the server sent a delta (Weights.base_version \(base)), but no delta encoding was agreed")
        }
        if awaitsWholeWeights || (holdsWeights && weights.version <= version) { return .unchanged }
        guard holdsWeights, base == version else {
            awaitsWholeWeights = true
            return .baseMismatch(base: base, held: holdsWeights ? version : nil)
        }
        guard weights.values.isEmpty else {
            throw WeightsRefusal(.malformed, "the server's delta on version \(base) has Weights.values; a delta travels in Weights.encoded_values only")
        }
        let refusal = weights.encodedValues.withUnsafeBytes { payload in
            values.withUnsafeMutableBufferPointer { values in
                Result { () throws(TensorDecodingError) in try deltaEncoding.decodeAdding(payload, scale: 1, into: values) }
            }
        }
        if case .failure(let error) = refusal {
            throw WeightsRefusal(.badEncoding, "the server's Weights.encoded_values (a \(deltaEncoding) delta from version \(base) to \(weights.version)): \(error)")
        }
        version = weights.version
        return .updated
    }

    /// Whole weights: they replace what is held, unless they are older (and no whole weights are awaited).
    private mutating func replace(_ weights: Weights) throws(WeightsRefusal) -> Outcome {
        // Both fields empty: the server's answer to a pull when nothing changed.
        if weights.values.isEmpty && weights.encodedValues.isEmpty { return .unchanged }
        if holdsWeights && weights.version < version && !awaitsWholeWeights { return .unchanged }
        if !weights.encodedValues.isEmpty {
            guard pullEncoding != .fp32 else {
                throw WeightsRefusal(.badEncoding, "the server sent encoded weights, but no pull encoding was agreed")
            }
            // In place once the buffer is there (a refused payload leaves it untouched); the first time,
            // into a new one, kept only if the payload is accepted.
            var failure: TensorDecodingError?
            if values.count == count {
                failure = pullEncoding.decodeRefusal(weights.encodedValues, into: &values)
            } else {
                var decoded = [Float](repeating: 0, count: count)
                failure = pullEncoding.decodeRefusal(weights.encodedValues, into: &decoded)
                if failure == nil { values = decoded }
            }
            if let failure { throw WeightsRefusal(.badEncoding, "the server's Weights.encoded_values: \(failure)") }
        } else {
            guard weights.values.count == count else {
                throw WeightsRefusal(.wrongDimensions, "the server sent \(weights.values.count) weights for a model of \(count) parameters")
            }
            values = weights.values
        }
        version = weights.version
        holdsWeights = true
        awaitsWholeWeights = false
        return .updated
    }
}

/// Why a worker cannot use weights the server sent: the protocol's error code and a message naming
/// the field.
public struct WeightsRefusal: Error, Sendable, CustomStringConvertible {
    /// The code of the worker's fatal `ErrorReport`.
    public let code: ErrorReport.Code
    /// What was wrong, naming the field: the `ErrorReport`'s message.
    public let description: String

    init(_ code: ErrorReport.Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
