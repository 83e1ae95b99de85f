/// Splits a byte stream into frames: a 4-byte little-endian unsigned length N, then N payload bytes.
///
/// Frames that arrive whole in one read are delivered in place, straight from the read buffer. A frame
/// split across reads is gathered into a buffer of exactly its size, so each payload byte is copied at
/// most once (and not at all when ``directReadTarget(minimum:)`` lets the socket read into that buffer).
/// The gathering buffer starts with 4 bytes holding the frame's own length prefix, so a receiver that
/// echoes or forwards a gathered frame can take the buffer over and write it as is.
/// A length is checked against ``maxFrameLength``, and a frame to be gathered against ``budget``,
/// before anything is allocated for it.
///
/// ```swift
/// var decoder = FrameDecoder(maxFrameLength: 1 << 20)
/// try decoder.decode(bytes) { payload in print(payload.count) }
/// ```
///
/// The decoder is a value with a buffer of its own, so it cannot be copied.
///
/// - Warning: With a ``budget`` attached, use the decoder on the budget's loop thread only.
public struct FrameDecoder: ~Copyable {
    /// Gathered frames up to this size (and ``maxFrameLength``) keep their buffer for the next frame
    /// when no budget is attached; bigger ones free it.
    private static let retainedCapacity = 8 << 20

    /// The largest payload accepted, at most 2³² − 1.
    private var limit: Int
    /// Bytes of a length prefix split across reads.
    private var header: UInt32 = 0
    private var headerCount = 0
    /// The buffer of the frame being gathered: 4 bytes of room for its length prefix, then the payload.
    private var buffer: UnsafeMutableRawPointer?
    private var capacity = 0
    /// The payload length of the frame being gathered, and how much of it arrived.
    private var frameLength = 0
    private var filled = 0
    private var gathering = false
    /// A gathered frame was returned and the caller may still be reading its buffer: the buffer and
    /// the frame's reservation are dealt with by ``recycle()``.
    private var returnedGathered = false
    /// The budget the current gathered frame reserved from, and how much; `nil` when it reserved
    /// nothing. Kept apart from ``budget`` so that a reservation goes back exactly once, to the budget
    /// it came from, however ``budget`` changes meanwhile.
    private var reservedFrom: FrameBufferBudget?
    private var reservation = 0

    /// The budget that frames which must be gathered reserve their length from, or `nil` for none.
    ///
    /// Changing it applies from the next gathered frame; a frame already being gathered keeps its
    /// reservation (if any) in the budget it began under until it ends. While a budget is attached
    /// the decoder keeps no buffer between frames, so it never holds more than it reserved (apart
    /// from a frame that began before the budget was attached).
    public var budget: FrameBufferBudget? {
        didSet {
            // A buffer kept from an earlier frame was never reserved, so it must not outlive the attach.
            if budget != nil && !gathering && !returnedGathered { freeBuffer() }
        }
    }

    /// Creates a decoder.
    ///
    /// - Parameters:
    ///   - maxFrameLength: The largest payload to accept (at most 2³² − 1).
    ///   - budget: The budget gathered frames reserve from, or `nil` for none.
    public init(maxFrameLength: Int, budget: FrameBufferBudget? = nil) {
        limit = Self.clamp(maxFrameLength)
        self.budget = budget
    }

    deinit {
        reservedFrom?.release(reservation)
        buffer?.deallocate()
    }

    /// The largest payload accepted; a longer length prefix is an error.
    ///
    /// Changing it applies from the next length prefix completed; a frame already being gathered is
    /// finished. Lowering it also frees a buffer kept from an earlier frame that is now larger than
    /// a frame may be.
    public var maxFrameLength: Int {
        get { limit }
        set {
            limit = Self.clamp(newValue)
            if !gathering && !returnedGathered && capacity > limit { freeBuffer() }
        }
    }

    private static func clamp(_ length: Int) -> Int { min(max(length, 0), Int(UInt32.max)) }

    /// The bytes of buffer the decoder holds for gathering (for tests of what it retains).
    var heldBufferBytes: Int { buffer == nil ? 0 : capacity }

    /// Whether the decoder holds part of a frame (the stream ending now would cut a frame short).
    public var isMidFrame: Bool { gathering || headerCount > 0 }

    /// How many bytes of a partly received frame are held (for error messages).
    public var bufferedDescription: String {
        gathering ? "\(filled) of \(frameLength) payload bytes" : "\(headerCount) of 4 length-prefix bytes"
    }

    /// One decoded frame.
    public struct Frame {
        /// The payload, valid until the decoder is next used (for a gathered frame: until
        /// ``FrameDecoder/recycle()`` or the next frame to be gathered begins).
        public var payload: UnsafeRawBufferPointer
        /// Whether the payload was gathered in the decoder's own buffer (rather than lying in the input).
        public var gathered: Bool
    }

    /// Takes the next frame from `input`, advancing `input` past the bytes used.
    ///
    /// Call it until it returns `nil`: then all of `input` is consumed (and any partial frame is held).
    /// A frame lying whole in `input` is returned in place; one that was gathered lives in the
    /// decoder's buffer, and holds its reservation in ``budget``, until ``recycle()`` or until the next
    /// frame to be gathered begins.
    ///
    /// - Parameter input: The unread part of the latest bytes of the stream.
    /// - Returns: The next complete frame, or `nil` when `input` holds no more.
    /// - Throws: ``ReactorError`` of kind `.frameTooLong` for a length prefix above ``maxFrameLength``,
    ///   or `.frameBudgetExceeded` for a frame to be gathered that ``budget`` cannot cover (both
    ///   checked before anything is allocated); the decoder must not be used after that.
    @inline(__always)
    public mutating func next(_ input: inout UnsafeRawBufferPointer) throws(ReactorError) -> Frame? {
        guard var cursor = input.baseAddress else { return nil }
        let end = cursor + input.count
        defer { input = UnsafeRawBufferPointer(start: cursor, count: end - cursor) }
        // Bounded: each round consumes at least one byte or returns.
        while cursor < end {
            if gathering {
                let take = min(end - cursor, frameLength - filled)
                (buffer! + 4 + filled).copyMemory(from: cursor, byteCount: take)
                filled += take
                cursor += take
                if filled == frameLength { return finishGathered() }
            } else if headerCount > 0 || end - cursor < 4 {
                // A length prefix split across reads: take it a byte at a time.
                header |= UInt32(cursor.load(as: UInt8.self)) << (8 * UInt32(headerCount))
                headerCount += 1
                cursor += 1
                if headerCount == 4 {
                    let length = Int(header)
                    header = 0
                    headerCount = 0
                    if let empty = try begin(length) { return empty }
                }
            } else {
                // The fast path: a whole length prefix in this read.
                let length = Int(UInt32(littleEndian: cursor.loadUnaligned(as: UInt32.self)))
                cursor += 4
                if length <= end - cursor && length <= limit {
                    defer { cursor += length }
                    return Frame(payload: UnsafeRawBufferPointer(start: cursor, count: length), gathered: false)
                }
                if let empty = try begin(length) { return empty }
            }
        }
        return nil
    }

    /// Decodes `bytes`, calling `onFrame` with each complete payload in order.
    ///
    /// - Parameters:
    ///   - bytes: The next bytes of the stream.
    ///   - onFrame: Runs with each payload; it is valid only during the call.
    /// - Throws: ``ReactorError`` of kind `.frameTooLong` for a length prefix above ``maxFrameLength``,
    ///   or `.frameBudgetExceeded` for a frame ``budget`` cannot cover; the decoder must not be used
    ///   after that.
    public mutating func decode(_ bytes: UnsafeRawBufferPointer,
                                _ onFrame: (UnsafeRawBufferPointer) -> Void) throws(ReactorError) {
        var input = bytes
        while let frame = try next(&input) {
            onFrame(frame.payload)
            if frame.gathered { recycle() }
        }
    }

    /// Starts gathering a frame of `length` payload bytes, after checking the limit and the budget.
    /// Returns the frame at once if it is empty.
    private mutating func begin(_ length: Int) throws(ReactorError) -> Frame? {
        // Here rather than in next(): once per gathered frame, not once per frame.
        if returnedGathered { recycle() }
        guard length <= limit else {
            throw ReactorError(.frameTooLong, operation: "frame decoder",
                               message: "length prefix \(length) exceeds the maximum frame length \(limit)")
        }
        if length == 0 { return Frame(payload: UnsafeRawBufferPointer(start: nil, count: 0), gathered: false) }
        // The only cost without a budget: one predictable branch per gathered frame.
        if let budget {
            guard budget.reserve(length) else {
                throw ReactorError(.frameBudgetExceeded, operation: "frame decoder",
                                   message: "length prefix \(length) needs more than the \(budget.available) bytes "
                                       + "left in the frame buffer budget (\(budget.reserved) of \(budget.limit) reserved)")
            }
            reservedFrom = budget
            reservation = length
        }
        // recycle() already freed a buffer too big to keep, so only a small one needs replacing.
        if capacity < length {
            buffer?.deallocate()
            buffer = .allocate(byteCount: length + 4, alignment: 16)
            capacity = length
        }
        buffer!.storeBytes(of: UInt32(length).littleEndian, as: UInt32.self)
        frameLength = length
        filled = 0
        gathering = true
        return nil
    }

    private mutating func finishGathered() -> Frame {
        gathering = false
        returnedGathered = true
        return Frame(payload: UnsafeRawBufferPointer(start: buffer! + 4, count: frameLength), gathered: true)
    }

    /// Says the caller is done with the gathered frame returned last: gives its reservation back to
    /// its budget, and frees its buffer unless it is worth keeping for the next frame (no budget
    /// attached, and no larger than ``maxFrameLength``).
    ///
    /// Call it once the payload of a gathered frame has been used, so that the memory does not wait
    /// for the next frame to be gathered, which does it otherwise. ``decode(_:_:)`` calls it for you.
    /// Nothing happens when there is no such frame.
    public mutating func recycle() {
        guard returnedGathered else { return }
        returnedGathered = false
        releaseReservation()
        if !keepsBuffer(forPayload: capacity) { freeBuffer() }
    }

    /// Forgets any partial frame and frees everything held, giving back its reservation: for a
    /// connection that closed. The decoder may be used again afterwards, from a frame boundary.
    mutating func reset() {
        releaseReservation()
        freeBuffer()
        gathering = false
        returnedGathered = false
        header = 0
        headerCount = 0
    }

    private mutating func releaseReservation() {
        guard let reservedFrom else { return }
        reservedFrom.release(reservation)
        self.reservedFrom = nil
        reservation = 0
    }

    private mutating func freeBuffer() {
        buffer?.deallocate()
        buffer = nil
        capacity = 0
    }

    /// Where the socket may read directly: the rest of a frame being gathered, if at least `minimum`
    /// bytes of it are missing. Reading there saves the one copy.
    ///
    /// - Parameter minimum: The least number of missing bytes worth a direct read.
    /// - Returns: The missing part of the payload, or `nil` to read into a shared buffer.
    public func directReadTarget(minimum: Int) -> UnsafeMutableRawBufferPointer? {
        guard gathering, frameLength - filled >= minimum else { return nil }
        return UnsafeMutableRawBufferPointer(start: buffer! + 4 + filled, count: frameLength - filled)
    }

    /// Records that `count` bytes were read into ``directReadTarget(minimum:)``'s buffer.
    ///
    /// - Parameter count: How many bytes arrived there.
    /// - Returns: The frame, if it is now complete.
    public mutating func didReadDirectly(_ count: Int) -> Frame? {
        precondition(gathering && count <= frameLength - filled, "direct read past the frame being gathered")
        filled += count
        return filled == frameLength ? finishGathered() : nil
    }

    /// Forgets the buffer of the gathered frame just returned, which the caller now owns: it begins
    /// with the frame's 4-byte length prefix (so it can be written back as is), and the caller frees it
    /// with `deallocate()`. The frame's reservation goes back to its budget: the frame has been
    /// delivered, and the write queue has bounds of its own.
    ///
    /// - Returns: The buffer's start.
    @discardableResult
    mutating func releaseGatheredBuffer() -> UnsafeMutableRawPointer {
        precondition(returnedGathered && buffer != nil, "no gathered frame to release")
        returnedGathered = false
        releaseReservation()
        defer {
            buffer = nil
            capacity = 0
        }
        return buffer!
    }

    /// Whether the decoder keeps a buffer between frames after gathering one of `count` payload bytes:
    /// not while a budget is attached, nor above the size it retains.
    func keepsBuffer(forPayload count: Int) -> Bool {
        budget == nil && count <= min(Self.retainedCapacity, limit)
    }

    /// The size of the buffer holding the gathered frame just returned, length prefix included (at
    /// least the frame's): what a caller taking it over with ``releaseGatheredBuffer()`` owns.
    var gatheredBufferByteCount: Int { capacity + 4 }

    /// Gives the decoder a buffer of `byteCount` bytes (from `UnsafeMutableRawPointer.allocate`) to
    /// gather the next large frame in, when it holds none: after ``releaseGatheredBuffer()``, so that
    /// a connection forwarding its large frames reuses buffers instead of allocating one per frame.
    /// A buffer too small for that frame is freed then, as the decoder's own would be. Only where
    /// ``keepsBuffer(forPayload:)`` says the decoder would have kept its own.
    mutating func adoptBuffer(_ base: UnsafeMutableRawPointer, byteCount: Int) {
        precondition(buffer == nil && !gathering && byteCount >= 4, "the decoder holds a buffer already")
        buffer = base
        capacity = byteCount - 4
    }
}
