/// A worker's compressor with memory: what an encoding drops is kept and sent in later steps.
///
/// Each step encodes the accumulator a = g + r (the new values plus the residual) and keeps as the
/// new residual exactly what the receiver will not see, r ← a − decode(encode(a)), computed with the
/// receiver's own decoder (1-bit SGD, Seide et al. 2014; EF-SignSGD, Karimireddy et al. 2019). No
/// mass is lost: after any number of steps, the sum of everything decoded plus the residual equals
/// the sum of everything encoded, up to the rounding of the float additions.
///
/// With `momentum` m > 0 and ``TensorEncoding/topK(count:)``, the encoder follows Deep Gradient
/// Compression (Lin et al. 2018): momentum correction accumulates the velocity rather than the
/// gradient, u ← m·u + g, a ← r + u, and momentum factor masking clears u wherever an entry was
/// sent, so that stale momentum does not push those weights again. The receiver then applies the
/// update with plain SGD.
///
/// ```swift
/// var compressor = ErrorFeedbackEncoder(count: parameterCount, encoding: .topK(count: parameterCount / 100))
/// var payload: [UInt8] = []
/// for step in steps {
///     payload.removeAll(keepingCapacity: true)
///     try gradient.withUnsafeBufferPointer { try compressor.encode($0, into: &payload) }
///     send(payload)
/// }
/// ```
public struct ErrorFeedbackEncoder: Sendable {
    /// The encoding of the next step. It may change between steps (DGC's warm-up raises the
    /// sparsity gradually); the residual carries over.
    ///
    /// - Precondition: With a momentum, it stays a ``TensorEncoding/topK(count:)``.
    public var encoding: TensorEncoding {
        didSet { Self.checkMomentum(momentum, for: encoding) }
    }

    /// The momentum m of DGC's momentum correction, or 0 for plain error feedback.
    public let momentum: Float

    /// What has not been sent yet: the accumulator minus what its payload decodes to.
    public private(set) var residual: [Float]

    /// DGC's velocity u, cleared where entries were sent; empty when ``momentum`` is 0.
    public private(set) var velocity: [Float]

    /// Creates an encoder for vectors of `count` values, with a zero residual.
    ///
    /// - Parameters:
    ///   - count: The number of values in every vector.
    ///   - encoding: The encoding of each step's payload.
    ///   - momentum: DGC's momentum m, in [0, 1). Only for ``TensorEncoding/topK(count:)``: a dense
    ///     encoding sends every entry at every step, so masking would clear the whole velocity each
    ///     time and silently leave plain SGD; use the receiver's optimiser for momentum instead.
    /// - Precondition: `count` is not negative; `momentum` is in [0, 1), and 0 unless `encoding` is
    ///   ``TensorEncoding/topK(count:)``.
    public init(count: Int, encoding: TensorEncoding, momentum: Float = 0) {
        precondition(count >= 0, "negative count \(count)")
        precondition(momentum >= 0 && momentum < 1, "momentum \(momentum) is outside [0, 1)")
        Self.checkMomentum(momentum, for: encoding)
        self.encoding = encoding
        self.momentum = momentum
        self.residual = [Float](repeating: 0, count: count)
        self.velocity = momentum > 0 ? [Float](repeating: 0, count: count) : []
    }

    /// The number of values in every vector.
    public var count: Int { residual.count }

    /// Adds `values` (with DGC, the updated velocity) to the residual, appends the encoding of the
    /// sum to `output`, and keeps as the new residual what the payload does not carry.
    ///
    /// - Parameters:
    ///   - values: This step's gradient or update, ``count`` values.
    ///   - output: The array the payload is appended to.
    /// - Throws: ``TensorDecodingError`` when the receiver would refuse the payload, which happens
    ///   only when the accumulator holds an infinity or a NaN. Nothing is then appended; the residual
    ///   keeps the whole accumulator (nothing was sent) and, with DGC, the velocity is not masked.
    ///   Every later payload would be refused as well, until ``reset()``.
    /// - Precondition: `values.count == count`.
    public mutating func encode(_ values: UnsafeBufferPointer<Float>, into output: inout [UInt8]) throws(TensorDecodingError) {
        precondition(values.count == count, "\(values.count) values for an encoder of \(count)")
        accumulate(values)
        let start = output.count
        let encoding = self.encoding
        residual.withUnsafeBufferPointer { encoding.encode($0, into: &output) }
        // decodeAdding with scale −1 computes a − x′ exactly as the receiver's decoder sees x′, and
        // checks the payload as the receiver will before changing anything. (Array's closure-taking
        // methods rethrow untyped errors, so the typed one is carried out in a Result.)
        let outcome = output.withUnsafeBytes { bytes in
            let payload = UnsafeRawBufferPointer(rebasing: bytes[start...])
            let applied = residual.withUnsafeMutableBufferPointer { residual in
                Result { () throws(TensorDecodingError) in try encoding.decodeAdding(payload, scale: -1, into: residual) }
            }
            if case .success = applied, momentum > 0 { maskVelocity(payload) }
            return applied
        }
        if case .failure(let error) = outcome {
            output.removeSubrange(start...)
            throw error
        }
    }

    /// Sets the residual, and the velocity, to zero.
    public mutating func reset() {
        residual.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        velocity.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// r ← r + g, or with DGC u ← m·u + g and r ← r + u.
    private mutating func accumulate(_ values: UnsafeBufferPointer<Float>) {
        let momentum = self.momentum
        if momentum == 0 {
            residual.withUnsafeMutableBufferPointer { r in
                for i in 0..<r.count { r[i] += values[i] }
            }
        } else {
            residual.withUnsafeMutableBufferPointer { r in
                velocity.withUnsafeMutableBufferPointer { u in
                    for i in 0..<r.count {
                        u[i] = momentum * u[i] + values[i]
                        r[i] += u[i]
                    }
                }
            }
        }
    }

    /// DGC's momentum factor masking: u ← 0 at every index the (validated, topk) payload sends.
    private mutating func maskVelocity(_ payload: UnsafeRawBufferPointer) {
        let entries = Int(payload.loadUnaligned(as: UInt32.self))
        let layout = TopKEncoding.Layout(entries: entries, valueStart: payload.count - 2 * entries)
        velocity.withUnsafeMutableBufferPointer { u in
            TopKEncoding.forEachEntry(payload.baseAddress!, layout: layout) { index, _ in u[index] = 0 }
        }
    }

    private static func checkMomentum(_ momentum: Float, for encoding: TensorEncoding) {
        if momentum == 0 { return }
        guard case .topK = encoding else {
            preconditionFailure("momentum \(momentum) with \(encoding): DGC's momentum correction is for topk only")
        }
    }
}
