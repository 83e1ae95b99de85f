/// A bound on the memory that partly received frames may hold, shared by any number of connections.
///
/// A frame that arrives whole in one read is delivered in place from the loop's read buffer and costs
/// nothing. A frame split across reads is gathered into a buffer of its full length, allocated as soon
/// as its length prefix arrives, so without a shared bound every connection may hold one maximum-length
/// frame that its peer never finishes. A connection attached to a budget reserves a frame's length
/// from it before allocating that buffer, and refuses the frame (`.frameBudgetExceeded`) when the
/// budget cannot cover it.
///
/// ```swift
/// let budget = FrameBufferBudget(limit: 256 << 20)
/// listener = try FrameListener(loop: loop, host: "0.0.0.0", port: 7000) { connection in
///     connection.maxFrameLength = 64 << 10      // until the peer has proved who it is
///     connection.bufferBudget = budget
/// }
/// ```
///
/// A reservation belongs to the frame that made it: it returns to this budget when that frame has been
/// delivered (or its buffer taken over by ``FrameConnection/send(frame:)-(UnsafeRawBufferPointer)``),
/// or when its connection closes, even if the connection was detached from this budget meanwhile.
///
/// - Warning: Loop thread only: not thread-safe. Attach it only to connections (or decoders) used on
///   one event loop's thread.
public final class FrameBufferBudget {
    /// The most bytes that frames being gathered may hold at once.
    ///
    /// Lowering it below ``reserved`` refuses new gathered frames until enough of the held ones end;
    /// nothing already reserved is taken back.
    public var limit: Int
    /// The bytes reserved now by frames being gathered (and gathered frames being delivered).
    public private(set) var reserved = 0

    /// Creates a budget.
    ///
    /// - Parameter limit: The most bytes that gathered frames may hold at once; not negative.
    public init(limit: Int) {
        precondition(limit >= 0, "a frame buffer budget cannot be negative")
        self.limit = limit
    }

    /// The bytes a new frame could still reserve.
    public var available: Int { max(limit - reserved, 0) }

    /// Reserves `bytes` if the budget covers them.
    ///
    /// - Returns: Whether the bytes were reserved.
    func reserve(_ bytes: Int) -> Bool {
        guard bytes <= limit - reserved else { return false }
        reserved += bytes
        return true
    }

    /// Gives back bytes that ``reserve(_:)`` reserved.
    func release(_ bytes: Int) {
        precondition(bytes >= 0 && bytes <= reserved, "released more than was reserved from a frame buffer budget")
        reserved -= bytes
    }
}
