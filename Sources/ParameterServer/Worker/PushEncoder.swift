import Messages
import TensorEncoding

/// Puts an update's values into a `Push` in the session's push encoding, keeping what each push did
/// not carry and adding it to the next (error feedback; see `ErrorFeedbackEncoder`). A sharded worker
/// has one per shard, for that shard's slices.
///
/// - Warning: Used by the compute thread's jobs only, which run one at a time.
struct PushEncoder: Sendable {
    /// Nil for fp32, which drops nothing.
    private var feedback: ErrorFeedbackEncoder?

    /// - Parameters:
    ///   - count: The values of every push: the model's parameter count, or a shard's range.
    ///   - encoding: The push encoding (`Welcome.push_encoding`).
    init(count: Int, encoding: TensorEncoding) {
        if encoding != .fp32 {
            feedback = ErrorFeedbackEncoder(count: count, encoding: encoding)
        }
    }

    /// Sets `push.encoded_values` when an encoding was negotiated, or `push.values` (fp32) when none
    /// was, or when the accumulated values are not finite (the receiver then refuses the fp32 push
    /// and requeues the unit, and the residual starts again from zero).
    mutating func fill(_ push: inout Push, with values: [Float]) {
        guard var encoder = feedback else {
            push.values = values
            return
        }
        // Leave the encoder's arrays one owner, so encoding mutates them in place instead of
        // copying a model-sized residual every push.
        feedback = nil
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoder.encoding.maxEncodedSize(count: values.count))
        let encoded: Bool = values.withUnsafeBufferPointer { values in
            do throws(TensorDecodingError) {
                try encoder.encode(values, into: &bytes)
                return true
            } catch {
                return false
            }
        }
        if encoded {
            push.encodedValues = bytes
        } else {
            encoder.reset()
            push.values = values
        }
        feedback = encoder
    }
}
