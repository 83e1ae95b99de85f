import CLibUV

/// An error from the reactor: a failed libuv call, or a rule of ours that a peer or a caller broke.
///
/// Every error names the operation that failed (`"uv_tcp_bind"`, `"connect 10.0.0.7:7000"`,
/// `"frame decoder"`) and carries a human-readable message; for libuv errors the message is
/// `uv_strerror`'s text and ``code`` is the negative libuv error number.
public struct ReactorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is, for callers that react differently to each.
    public enum Kind: Sendable, Hashable {
        /// A libuv call returned this negative error number (`UV_ECONNREFUSED`, ...).
        case libuv(Int32)
        /// A frame's length prefix exceeded the connection's (or decoder's) maximum frame length.
        case frameTooLong
        /// A frame that had to be gathered needed more memory than its ``FrameBufferBudget`` had left.
        case frameBudgetExceeded
        /// The peer closed the stream in the middle of a frame.
        case truncatedFrame
        /// A connection's queued writes exceeded the hard bound (`maxQueuedWriteBytes`).
        case writeQueueOverflow
        /// Nothing was read or written on a connection for its idle timeout.
        case idleTimeout
        /// A graceful close could not write its queued bytes within its linger; they were dropped.
        case lingerTimeout
        /// Connect-with-retry reached its deadline without a connection.
        case deadlineExceeded
        /// The event loop is stopping or stopped; the operation was abandoned.
        case loopStopped
        /// A caller passed an argument the reactor cannot use (a bad host or port, say).
        case invalidArgument
        /// TLS failed: a context could not be set up (a file missing, a key that does not match its
        /// certificate), a handshake was refused, or a record did not decrypt. The associated text is
        /// OpenSSL's reason (`"certificate verify failed"`, `"tlsv1 alert unknown ca"`, ...) or, for
        /// what the Reactor itself recognises, one of `"plaintext peer"` (plaintext reached a TLS
        /// connection), `"peer speaks TLS"` (TLS reached a plaintext connection), `"not TLS"` (a
        /// server answered the handshake with something else) and `"handshake timeout"`. The error's
        /// message says what happened in a sentence.
        case tls(String)
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// The operation that failed, such as `"uv_tcp_bind"` or `"frame decoder"`.
    public var operation: String
    /// A human-readable explanation (for libuv errors, `uv_strerror`'s text).
    public var message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - kind: What kind of failure this is.
    ///   - operation: The operation that failed.
    ///   - message: A human-readable explanation.
    public init(_ kind: Kind, operation: String, message: String) {
        self.kind = kind
        self.operation = operation
        self.message = message
    }

    /// Creates an error from a negative libuv status, with `uv_strerror`'s text.
    ///
    /// - Parameters:
    ///   - code: The negative status a libuv function returned.
    ///   - operation: The operation that failed.
    public init(uvCode code: Int32, operation: String) {
        self.init(.libuv(code), operation: operation, message: String(cString: uv_strerror(code)))
    }

    /// The libuv error number, if this error came from libuv.
    public var code: Int32? {
        if case .libuv(let code) = kind { return code }
        return nil
    }

    public var description: String { "\(operation): \(message)" }
}

/// The one door to C: checks a libuv status and turns a negative one into a ``ReactorError``.
///
/// - Parameters:
///   - status: What the libuv function returned.
///   - operation: The libuv function (or a fuller description of the operation) for the message.
/// - Returns: `status`, when it is not negative (some calls return a count).
/// - Throws: ``ReactorError`` with kind `.libuv(status)` when `status` is negative.
@discardableResult
@inline(__always)
func uvCheck(_ status: Int32, _ operation: @autoclosure () -> String) throws(ReactorError) -> Int32 {
    if status < 0 { throw ReactorError(uvCode: status, operation: operation()) }
    return status
}
