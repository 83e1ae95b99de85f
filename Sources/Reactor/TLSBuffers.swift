/// Scratch memory that every TLS connection of one loop shares: callbacks on one loop thread never
/// overlap, so one buffer serves them all, and no frame allocates.
///
/// - Warning: Loop thread only.
final class TLSBuffers {
    /// Where decrypted bytes are gathered before the frame decoder splits them (the ciphertext sits
    /// in the loop's read buffer meanwhile).
    let plaintext: UnsafeMutableRawBufferPointer
    /// Large outgoing frames are filled here by ``FrameConnection/sendFrame(payloadSize:_:)`` and
    /// encrypted at once; kept up to ``retainedLargeCapacity`` bytes between frames.
    private var large: UnsafeMutableRawPointer?
    private var largeCapacity = 0
    private var largeInUse = false
    private static let retainedLargeCapacity = 8 << 20

    init() {
        plaintext = .allocate(byteCount: 64 << 10, alignment: 16)
    }

    deinit {
        plaintext.deallocate()
        large?.deallocate()
    }

    /// Runs `body` with `byteCount` bytes of scratch memory, valid during the call.
    ///
    /// A call nested in another's `body` (a fill that sends a large frame elsewhere) gets memory of
    /// its own.
    func withLargeBuffer<Result>(byteCount: Int, _ body: (UnsafeMutableRawPointer) -> Result) -> Result {
        if largeInUse {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 16)
            defer { buffer.deallocate() }
            return body(buffer)
        }
        if largeCapacity < byteCount {
            large?.deallocate()
            large = .allocate(byteCount: byteCount, alignment: 16)
            largeCapacity = byteCount
        }
        largeInUse = true
        defer {
            largeInUse = false
            if largeCapacity > Self.retainedLargeCapacity {
                large?.deallocate()
                large = nil
                largeCapacity = 0
            }
        }
        return body(large!)
    }
}
