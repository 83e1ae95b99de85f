import Reactor

/// The frames a TLS session's plaintext splits into, as `FrameConnection` delivers them: through a
/// `FrameDecoder`, with the rest of large frames decrypted straight into the decoder's buffer.
///
/// After a decoder error it keeps taking plaintext (and drops it), so that the session stays in step
/// with its peer.
final class FrameCollector: TLSPlaintextSink {
    private var decoder: FrameDecoder
    private let directReadMinimum: Int?
    private(set) var frames: [[UInt8]] = []
    private(set) var thrown: ReactorError?
    private(set) var plaintextBytes = 0

    init(maxFrameLength: Int, directReadMinimum: Int?) {
        decoder = FrameDecoder(maxFrameLength: maxFrameLength)
        self.directReadMinimum = directReadMinimum
    }

    func tlsDidEstablish() -> Bool { true }

    func directTarget() -> UnsafeMutableRawBufferPointer? {
        guard thrown == nil, let directReadMinimum else { return nil }
        return decoder.directReadTarget(minimum: directReadMinimum)
    }

    func didDecryptDirectly(_ count: Int) -> Bool {
        plaintextBytes += count
        if let frame = decoder.didReadDirectly(count) {
            check(frame.gathered, "a frame completed by a direct read must be gathered")
            frames.append(Array(frame.payload))
            decoder.recycle()
        }
        return true
    }

    func didDecrypt(_ plaintext: UnsafeRawBufferPointer) -> Bool {
        plaintextBytes += plaintext.count
        guard thrown == nil else { return true }
        do throws(ReactorError) {
            try decoder.decode(plaintext) { frames.append(Array($0)) }
        } catch {
            thrown = error
        }
        return true
    }
}
