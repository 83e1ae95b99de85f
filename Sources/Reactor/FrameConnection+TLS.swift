/// A TLS connection's state beside its ``FrameConnection``: the session, the plaintext frames waiting
/// to be encrypted, and what the application asked for while the handshake was still running.
///
/// - Warning: Loop thread only.
final class FrameTLS {
    /// A close or half-close asked for before the handshake completed, carried out once it does.
    enum Closing {
        case none
        case close(linger: Duration?)
        case shutdownWrite
    }

    /// Plaintext is staged up to one record's worth, then encrypted: one record (one AEAD operation,
    /// 22 bytes of overhead) carries many small frames.
    static let stagingSize = TLSSession.maxRecordPlaintext

    let session: TLSSession
    var onEstablished: (() -> Void)?
    var handshakeTimer: TimerHandle?
    // `@exclusivity(unchecked)` on the per-frame state below, as in FrameConnection: only the loop
    // thread touches it and no access overlaps another, and the checks showed in profiles.
    @exclusivity(unchecked) var closing = Closing.none
    /// Frames not yet encrypted. Before the handshake completes it grows to hold whatever is sent;
    /// afterwards it is encrypted whenever a frame would not fit, and before every flush.
    @exclusivity(unchecked) private(set) var staging: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var stagingCapacity = FrameTLS.stagingSize
    @exclusivity(unchecked) var stagedCount = 0

    init(session: TLSSession) {
        self.session = session
        staging = .allocate(byteCount: Self.stagingSize, alignment: 16)
    }

    deinit {
        staging.deallocate()
    }

    /// Appends `byteCount` bytes to the staged plaintext and returns where they go.
    @inline(__always)
    func stage(_ byteCount: Int) -> UnsafeMutableRawPointer {
        if stagedCount + byteCount > stagingCapacity { resize(to: max(stagedCount + byteCount, stagingCapacity * 2)) }
        defer { stagedCount += byteCount }
        return staging + stagedCount
    }

    /// Gives back what a handshake's backlog made the staging buffer grow to, once it is empty.
    func shrinkIfEmpty() {
        if stagedCount == 0 && stagingCapacity > Self.stagingSize { resize(to: Self.stagingSize) }
    }

    private func resize(to capacity: Int) {
        let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        grown.copyMemory(from: staging, byteCount: stagedCount)
        staging.deallocate()
        staging = grown
        stagingCapacity = capacity
    }

    /// Drops the callbacks and the timer: the connection closed.
    func release() {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        onEstablished = nil
    }
}

/// Hands a ``TLSSession``'s plaintext to its connection's frame decoder.
private struct FrameSink: TLSPlaintextSink {
    // Unowned: the connection drives the session that calls this, so it outlives every call.
    unowned(unsafe) let connection: FrameConnection

    func tlsDidEstablish() -> Bool { connection.tlsDidEstablish() }

    func directTarget() -> UnsafeMutableRawBufferPointer? {
        connection.decoder.directReadTarget(minimum: FrameConnection.directReadMinimum)
    }

    func didDecryptDirectly(_ count: Int) -> Bool { connection.didDecryptDirectly(count) }

    func didDecrypt(_ plaintext: UnsafeRawBufferPointer) -> Bool { connection.didDecrypt(plaintext) }
}

extension FrameConnection: StreamWriteStage {
    // MARK: What TLS established

    /// Whether this connection speaks TLS (from the start, handshake included).
    ///
    /// `false` for a plaintext connection, for a TLS one whose peer turned out to speak plaintext, and
    /// once the connection has closed.
    ///
    /// - Warning: Loop thread only.
    public var isEncrypted: Bool { tls != nil }

    /// Whether the TLS handshake completed (and the connection is still open).
    ///
    /// - Warning: Loop thread only.
    public var isTLSEstablished: Bool { tls?.session.isEstablished ?? false }

    /// Runs once when the TLS handshake has completed, before the first frame is delivered: the
    /// peer's certificate was verified, and ``exportKeyingMaterial(label:length:)`` and
    /// ``peerCertificateSubject`` have their values.
    ///
    /// Set it where the connection is handed over (``FrameListener``'s `onConnection`, `connect`'s
    /// `completion`). Frames sent earlier go out before any it sends. Never runs on a plaintext
    /// connection, nor after ``close()`` was called. Under mutual TLS a client's handshake completes
    /// before the server has checked the client's certificate, so a refused client sees this run,
    /// then ``onClose`` with the server's alert.
    ///
    /// Dropped when the connection closes, so it may capture the connection strongly.
    ///
    /// - Warning: Loop thread only.
    public var onTLSEstablished: (() -> Void)? {
        get { tls?.onEstablished }
        set {
            loop.assertInEventLoop()
            tls?.onEstablished = newValue
        }
    }

    /// Keying material exported from the TLS session (RFC 8446, section 7.5) under `label`, with no
    /// context: equal on both ends of this connection, unrelated on any other. A MAC over it binds an
    /// application's own authentication (a token) to this TLS channel, so that a recorded exchange
    /// cannot be replayed on another connection.
    ///
    /// - Parameters:
    ///   - label: The exporter label, such as `"EXPORTER-downpour-token"`.
    ///   - length: How many bytes to export.
    /// - Returns: The bytes, or `nil` on a plaintext connection, before the handshake completed, or
    ///   after the connection closed.
    /// - Warning: Loop thread only.
    public func exportKeyingMaterial(label: String, length: Int) -> [UInt8]? {
        tls?.session.exportKeyingMaterial(label: label, length: length)
    }

    /// The `tls-unique` channel binding of this connection: see ``TLSSession/tlsUniqueChannelBinding``.
    /// For peers without exporters (Python's `ssl` module); prefer ``exportKeyingMaterial(label:length:)``.
    /// `nil` on a plaintext connection, before the handshake completed, or after the connection closed.
    ///
    /// - Warning: Loop thread only.
    public var tlsUniqueChannelBinding: [UInt8]? { tls?.session.tlsUniqueChannelBinding }

    /// The subject of the certificate the peer presented, in RFC 2253 form
    /// (`"CN=worker-7,O=Downpour"`): the server's, on a client; the client's under mutual TLS, on a
    /// server. `nil` before the handshake completed, without a peer certificate, or for plaintext.
    ///
    /// - Warning: Loop thread only.
    public var peerCertificateSubject: String? { tls?.session.peerCertificateSubject }

    /// The TLS 1.3 cipher suite in use (`"TLS_AES_128_GCM_SHA256"`), once the handshake completed.
    ///
    /// - Warning: Loop thread only.
    public var tlsCipherSuite: String? { tls?.session.cipherSuite }

    // MARK: Starting

    /// Puts a TLS session between the frames and the stream; a client sends its ClientHello at once.
    func startTLS(_ context: TLSContext, serverName: String?) {
        let session: TLSSession
        do {
            session = try TLSSession(context: context, serverName: serverName)
        } catch {
            stream.fail(withPeer(error))
            return
        }
        let tls = FrameTLS(session: session)
        self.tls = tls
        stream.writeStage = self
        let timeout = context.handshakeTimeout
        // Unowned: connectionDidClose() cancels the timer, and the connection lives until then.
        tls.handshakeTimer = loop.scheduleTimer(after: timeout) { [unowned self] in
            handshakeTimedOut(timeout)
        }
        guard !isAccepted else { return }
        do {
            try session.startHandshake()
        } catch {
            failTLS(error)
            return
        }
        drainCiphertext(tls)
    }

    private func handshakeTimedOut(_ timeout: Duration) {
        guard let tls, !tls.session.isEstablished else { return }
        tls.handshakeTimer = nil
        delivering = false
        stream.fail(ReactorError(.tls("handshake timeout"), operation: "TLS handshake with \(remoteAddress)",
                                 message: "the TLS handshake did not complete within \(timeout)"))
    }

    /// `error` with the peer's address in its operation.
    private func withPeer(_ error: ReactorError) -> ReactorError {
        ReactorError(error.kind, operation: "\(error.operation) with \(remoteAddress)", message: error.message)
    }

    // MARK: Reading

    /// Decrypts what arrived and delivers the frames it completes; sends what the handshake answers.
    func didReadTLS(_ tls: FrameTLS, _ ciphertext: UnsafeRawBufferPointer) {
        let outcome: TLSSession.Outcome
        do {
            outcome = try tls.session.process(ciphertext, scratch: loop.tlsBuffers.plaintext, into: FrameSink(connection: self))
        } catch {
            failTLS(error)
            return
        }
        // Handshake messages, and rarely an answer to the peer's post-handshake message (a KeyUpdate).
        if tls.session.pendingCiphertext > 0 { drainCiphertext(tls) }
        if outcome == .closedByPeer { peerClosedTLS(tls) }
    }

    func tlsDidEstablish() -> Bool {
        guard let tls else { return false }
        tls.handshakeTimer?.cancel()
        tls.handshakeTimer = nil
        // Frames sent during the handshake go first.
        guard encryptStaged(tls) else { return false }
        switch tls.closing {
        case .close:
            finishTLS(tls, tls.closing)
            return false
        case .shutdownWrite:
            finishTLS(tls, tls.closing)
        case .none:
            break
        }
        if let onEstablished = tls.onEstablished { onEstablished() }
        return delivering && stream.isOpen
    }

    func didDecrypt(_ plaintext: UnsafeRawBufferPointer) -> Bool {
        guard delivering, stream.isOpen else { return false }
        // As on a plaintext connection, bytes that arrive while there is no onFrame are dropped.
        guard let onFrame else { return true }
        return deliverFrames(in: plaintext, to: onFrame)
    }

    func didDecryptDirectly(_ count: Int) -> Bool {
        if let frame = decoder.didReadDirectly(count) {
            if let onFrame, delivering {
                deliver(frame, to: onFrame)
            } else {
                decoder.recycle()
            }
        }
        return delivering && stream.isOpen
    }

    /// The peer sent `close_notify`: like the end of a plaintext stream, a truncation mid-frame, else
    /// the cue to finish writing, answer with `close_notify` and close.
    private func peerClosedTLS(_ tls: FrameTLS) {
        guard !decoder.isMidFrame else {
            stream.fail(ReactorError(.truncatedFrame, operation: "read from \(remoteAddress)",
                                     message: "the peer closed TLS mid-frame (\(decoder.bufferedDescription) received)"))
            return
        }
        delivering = false
        finishTLS(tls, .close(linger: nil))
    }

    /// The peer ended the TCP stream (without `close_notify`): an error if the handshake had not
    /// completed. Once it had, as in plaintext, only a frame cut short is one, and the frames sent
    /// meanwhile still go out, with `close_notify`, before the stream closes.
    func tlsStreamEnded(_ tls: FrameTLS) -> ReactorError? {
        guard !tls.session.isEstablished else {
            if stream.isOpen && !decoder.isMidFrame && encryptStaged(tls) {
                tls.session.close()
                drainCiphertext(tls)
            }
            return nil
        }
        let operation = "TLS handshake with \(remoteAddress)"
        if isAccepted {
            return ReactorError(.tls("handshake interrupted"), operation: operation,
                                message: "the client closed the connection during the TLS handshake")
        }
        if bytesRead == 0 {
            return ReactorError(.tls("not TLS"), operation: operation,
                                message: "the server is not speaking TLS: it closed the connection without answering the TLS handshake")
        }
        return ReactorError(.tls("handshake interrupted"), operation: operation,
                            message: "the server closed the connection during the TLS handshake")
    }

    /// Closes after a TLS failure: with the alert OpenSSL queued for the peer (it then knows why),
    /// or, for a peer that spoke plaintext to this TLS connection, with a plaintext refusal.
    private func failTLS(_ failure: ReactorError) {
        delivering = false
        let error = withPeer(failure)
        guard let tls else {
            stream.fail(error)
            return
        }
        if error.kind == .tls("plaintext peer") {
            // The peer speaks plaintext: so does the rest of this connection, to refuse it.
            tls.release()
            self.tls = nil
            stream.writeStage = nil
            refuse(error, defaultAnswer: TLSRecordSniffer.unexpectedMessageAlert)
            return
        }
        tls.release()
        stream.recordCloseError(error)
        drainCiphertext(tls)
        stream.close(lingeringAtMost: refusalLinger)
    }

    // MARK: Writing

    /// Queues one frame whose payload is already in memory.
    func sendTLS(_ tls: FrameTLS, frame payload: UnsafeRawBufferPointer) {
        let count = payload.count
        guard count + 4 > FrameTLS.stagingSize, tls.session.isEstablished else {
            sendFrameTLS(tls, payloadSize: count) { target in
                if count > 0 { target.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: count) }
            }
            return
        }
        // A large payload is encrypted where it lies, after its length prefix and what was staged.
        guard admitTLS(tls, count + 4) else { return }
        if tls.stagedCount + 4 > FrameTLS.stagingSize && !encryptStaged(tls) { return }
        tls.stage(4).storeBytes(of: UInt32(truncatingIfNeeded: count).littleEndian, as: UInt32.self)
        if encryptStaged(tls) { encrypt(tls, payload) }
    }

    /// Queues one frame that `fill` writes: small ones into the staged plaintext, large ones into the
    /// loop's scratch memory, to be encrypted at once.
    func sendFrameTLS(_ tls: FrameTLS, payloadSize: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        let total = payloadSize + 4
        guard admitTLS(tls, total) else { return }
        let established = tls.session.isEstablished
        if total > FrameTLS.stagingSize && established {
            loop.tlsBuffers.withLargeBuffer(byteCount: total) { buffer in
                buffer.storeBytes(of: UInt32(truncatingIfNeeded: payloadSize).littleEndian, as: UInt32.self)
                fill(UnsafeMutableRawBufferPointer(start: buffer + 4, count: payloadSize))
                if encryptStaged(tls) { encrypt(tls, UnsafeRawBufferPointer(start: buffer, count: total)) }
            }
            return
        }
        if established && tls.stagedCount + total > FrameTLS.stagingSize && !encryptStaged(tls) { return }
        let target = tls.stage(total)
        target.storeBytes(of: UInt32(truncatingIfNeeded: payloadSize).littleEndian, as: UInt32.self)
        fill(UnsafeMutableRawBufferPointer(start: target + 4, count: payloadSize))
        stream.requestFlush()
    }

    /// Whether `byteCount` more bytes may be sent: the connection takes writes, and what is staged
    /// and queued stays within the write queue's bound (else the connection closes, as in plaintext).
    private func admitTLS(_ tls: FrameTLS, _ byteCount: Int) -> Bool {
        // A failed session has begun closing the stream, so it takes no writes.
        guard stream.acceptsWrites, case .none = tls.closing else { return false }
        let queued = tls.stagedCount + stream.queuedWriteBytes
        if queued + byteCount > stream.configuration.maxQueuedWriteBytes {
            stream.fail(ReactorError(.writeQueueOverflow, operation: "write to \(remoteAddress)",
                                     message: "\(queued + byteCount) bytes would be queued, more than the limit of \(stream.configuration.maxQueuedWriteBytes)"))
            return false
        }
        return true
    }

    /// The stream is about to write: encrypt what is staged, so that it goes out in this write.
    func stageWillFlush(_ connection: TCPConnection) {
        if let tls { encryptStaged(tls) }
    }

    /// Encrypts the staged frames, once the handshake completed.
    ///
    /// - Returns: False if the connection failed.
    @discardableResult
    private func encryptStaged(_ tls: FrameTLS) -> Bool {
        guard tls.stagedCount > 0, tls.session.isEstablished else { return true }
        let staged = UnsafeRawBufferPointer(start: tls.staging, count: tls.stagedCount)
        tls.stagedCount = 0
        let encrypted = encrypt(tls, staged)
        tls.shrinkIfEmpty()
        return encrypted
    }

    /// Encrypts `plaintext` one record at a time, each straight into the write queue.
    ///
    /// - Returns: False if the connection failed.
    @discardableResult
    private func encrypt(_ tls: FrameTLS, _ plaintext: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        // Bounded: every round encrypts up to one record.
        while offset < plaintext.count {
            let count = min(plaintext.count - offset, TLSSession.maxRecordPlaintext)
            do {
                try tls.session.write(UnsafeRawBufferPointer(rebasing: plaintext[offset..<(offset + count)]))
            } catch {
                failTLS(error)
                return false
            }
            offset += count
            guard drainCiphertext(tls) else { return false }
        }
        return true
    }

    /// Moves the session's outgoing ciphertext into the write queue's pooled chunks.
    ///
    /// - Returns: False if the stream no longer takes writes (the rest is dropped with the session).
    @discardableResult
    private func drainCiphertext(_ tls: FrameTLS) -> Bool {
        var pending = tls.session.pendingCiphertext
        // Bounded: every round moves at least one byte.
        while pending > 0 {
            guard let target = stream.reserveContiguous(upTo: pending) else { return false }
            let taken = tls.session.takeCiphertext(into: target)
            precondition(taken == target.count, "the write BIO held less ciphertext than it reported")
            pending -= taken
        }
        return true
    }

    // MARK: Closing

    /// Closes or half-closes with `close_notify`; during the handshake, once it completed.
    func closeTLS(_ tls: FrameTLS, _ request: FrameTLS.Closing) {
        guard stream.isOpen, tls.session.failure == nil else {
            forwardToStream(request)
            return
        }
        guard tls.session.isEstablished else {
            // A half-close does not undo a close asked for earlier.
            if case .close = tls.closing { return }
            tls.closing = request
            return
        }
        finishTLS(tls, request)
    }

    /// Sends what is staged and `close_notify`, then closes or half-closes the stream.
    private func finishTLS(_ tls: FrameTLS, _ request: FrameTLS.Closing) {
        guard encryptStaged(tls) else { return }
        tls.session.close()
        drainCiphertext(tls)
        forwardToStream(request)
    }

    private func forwardToStream(_ request: FrameTLS.Closing) {
        switch request {
        case .none:
            break
        case .close(nil):
            stream.close()
        case .close(let linger?):
            stream.close(lingeringAtMost: linger)
        case .shutdownWrite:
            stream.shutdownWrite()
        }
    }
}
