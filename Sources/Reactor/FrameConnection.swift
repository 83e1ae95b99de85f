import CLibUV

/// A TCP connection that carries length-prefixed frames: a 4-byte little-endian length N, then N bytes.
///
/// ```swift
/// connection.onFrame = { payload in connection.send(frame: payload) }   // echo
/// connection.onClose = { error in if let error { print(error) } }
/// ```
///
/// Frames that arrive whole are handed over straight from the read buffer; others are gathered with
/// at most one copy, into a buffer allocated when their length prefix arrives. A length prefix above
/// ``maxFrameLength``, or a frame to be gathered that ``bufferBudget`` cannot cover, is refused: the
/// connection closes with `.frameTooLong` or `.frameBudgetExceeded` (other connections carry on),
/// after ``onFrameRefused`` had its say if it is set. Sends queue up and are coalesced into one
/// `uv_write` before the loop next waits; see ``TCPConnection`` for the write queue's bounds.
///
/// A server that does not yet know its peer keeps both small until it does:
///
/// ```swift
/// connection.maxFrameLength = 64 << 10                 // enough for a handshake
/// connection.bufferBudget = strangersBudget             // shared by every connection not yet joined
/// connection.onFrameRefused = { error in connection.send(frame: refusal(error)) }
/// // ... once the peer has joined:
/// connection.maxFrameLength = 64 << 20
/// connection.bufferBudget = membersBudget               // or nil
/// ```
///
/// With a ``TLSContext`` (``FrameListener``'s `tls:`, ``connect(loop:host:port:configuration:tls:serverName:retryInterval:deadline:onAttemptFailed:completion:)``'s
/// `tls:`) the frames travel inside TLS 1.3; see ``isEncrypted`` and ``onTLSEstablished``. Frames
/// sent before the handshake completes wait for it, and frames are delivered only after it.
///
/// Either way, a peer speaking the other protocol (TLS to a plaintext connection, plaintext to a TLS
/// one) is recognised by its first bytes, and the connection closes with a `.tls` error that says so.
///
/// - Warning: Loop thread only, every property and method, and every callback runs there. The
///   connection stays alive while its socket is open, even with no reference kept to it.
public final class FrameConnection: StreamReadSink {
    /// Limits and options for one framed connection: the frames' own, and the byte stream's underneath.
    ///
    /// ```swift
    /// var configuration = FrameConnection.Configuration(maxFrameLength: 1 << 20)
    /// configuration.stream.idleTimeout = .seconds(30)
    /// ```
    public struct Configuration: Sendable {
        /// The largest frame payload accepted from the peer: the initial value of
        /// ``FrameConnection/maxFrameLength``.
        public var maxFrameLength: Int
        /// How long a connection closing after a refused frame may spend writing what is queued
        /// (``FrameConnection/onFrameRefused``'s answer) before it closes regardless.
        public var refusalLinger: Duration
        /// The byte stream's write-queue bounds, idle timeout and `TCP_NODELAY`. Above its high-water
        /// mark ``FrameConnection/onWritabilityChanged`` says `false`; a send past its bound closes the
        /// connection with `.writeQueueOverflow`.
        public var stream: TCPConnection.Configuration

        /// The stream's defaults for framed connections: a write queue deeper than a raw
        /// ``TCPConnection``'s (4 MiB high-water mark, 256 MiB bound), because one frame may be tens of
        /// MiB; no idle timeout, `TCP_NODELAY` set.
        public static var defaultStream: TCPConnection.Configuration {
            TCPConnection.Configuration(writeHighWaterMark: 4 << 20, maxQueuedWriteBytes: 256 << 20)
        }

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - maxFrameLength: The largest payload accepted (64 MiB).
        ///   - refusalLinger: The bound on the graceful close after a refused frame (5 seconds).
        ///   - stream: The byte stream's configuration (``defaultStream``). Change single fields of
        ///     it with `configuration.stream.idleTimeout = ...` to keep the others' framed defaults.
        public init(maxFrameLength: Int = 64 << 20, refusalLinger: Duration = .seconds(5),
                    stream: TCPConnection.Configuration = defaultStream) {
            self.maxFrameLength = maxFrameLength
            self.refusalLinger = refusalLinger
            self.stream = stream
        }
    }

    /// A direct read into a gathered frame is worth it when at least this much of it is missing.
    static let directReadMinimum = 16 * 1024

    /// The byte stream underneath. Not public: bytes written to it outside ``send(frame:)-(UnsafeRawBufferPointer)``
    /// or ``sendFrame(payloadSize:_:)`` would break the framing the peer reads.
    let stream: TCPConnection
    let refusalLinger: Duration
    /// Whether a listener accepted this connection (rather than it connecting out).
    let isAccepted: Bool
    // `@exclusivity(unchecked)` on the per-frame state below: only the loop thread touches it and no
    // access to it overlaps another, and dynamic exclusivity checks on it cost ~8% of the echo
    // server's CPU (Benchmarks/reactor.md). An attribute, not a compiler flag, so packages that depend
    // on the Reactor by version can still build it.
    @exclusivity(unchecked) var decoder: FrameDecoder
    @exclusivity(unchecked) var delivering = true
    /// The TLS layer, or nil for a plaintext connection (and for a TLS one whose peer turned out to
    /// speak plaintext). See FrameConnection+TLS.swift.
    @exclusivity(unchecked) var tls: FrameTLS? {
        didSet { unretainedTLS = tls.map { Unmanaged.passUnretained($0) } }
    }
    /// ``tls`` without its reference count, for the per-frame send paths: retaining and releasing it
    /// there cost ~8% of a TLS echo server's CPU. Valid while ``tls`` holds the object.
    @exclusivity(unchecked) private var unretainedTLS: Unmanaged<FrameTLS>?
    /// Whether nothing was read yet: a plaintext connection checks its first read for a TLS peer.
    @exclusivity(unchecked) private var firstRead = true
    /// The payload of the gathered frame ``onFrame`` is being given now, which ``send(frame:)`` may take over.
    @exclusivity(unchecked) private var gatheredPayload: UnsafeRawPointer?
    @exclusivity(unchecked) private var gatheredTaken = false

    /// Runs with each frame's payload, valid only during the call (copy it to keep it).
    ///
    /// Dropped when the connection closes, so it may capture the connection strongly.
    public var onFrame: ((UnsafeRawBufferPointer) -> Void)?

    /// Runs exactly once when the connection has closed: `nil` for a clean close (by the peer between
    /// frames, or by us), else the reason (`.frameTooLong`, `.frameBudgetExceeded`, `.truncatedFrame`,
    /// `.idleTimeout`, ...).
    public var onClose: ((ReactorError?) -> Void)? {
        get { stream.onClose }
        set { stream.onClose = newValue }
    }

    /// Runs with `false` when queued writes pass the high-water mark, `true` when they drain below the
    /// low-water mark.
    public var onWritabilityChanged: ((Bool) -> Void)? {
        get { stream.onWritabilityChanged }
        set { stream.onWritabilityChanged = newValue }
    }

    /// Runs when the peer announces a frame this connection refuses, or speaks the wrong protocol,
    /// before the connection closes.
    ///
    /// A frame is refused when its length prefix is above ``maxFrameLength`` (`.frameTooLong`) or it
    /// would have to be gathered and ``bufferBudget`` cannot cover it (`.frameBudgetExceeded`); the
    /// error names the length, the limit and the peer's address. A peer is refused when its first
    /// bytes are TLS at a plaintext connection (`.tls("peer speaks TLS")`) or plaintext at a TLS
    /// listener (`.tls("plaintext peer")`); the answer then goes out in plaintext, the protocol the
    /// peer speaks. (Without this hook a TLS listener answers such a peer with a TLS alert, which a
    /// plaintext ``FrameConnection`` reports as `.tls("peer speaks TLS")`.)
    ///
    /// When this is set, the connection stops reading and delivering, calls it (it may queue a last
    /// frame with ``send(frame:)-(UnsafeRawBufferPointer)`` or ``sendFrame(payloadSize:_:)``, or close
    /// at once), then closes gracefully: queued frames are written for at most
    /// ``Configuration/refusalLinger``, so a peer that never reads cannot keep it open. ``onClose``
    /// receives the same error afterwards, so log it there, once. When this is `nil` the connection
    /// closes at once with the error, dropping queued frames.
    ///
    /// Bytes the peer sent after the refused length prefix are not read. If any are still unread
    /// when the socket closes, the kernel resets the connection, and a peer that is still writing may
    /// see the reset before it reads the answer.
    ///
    /// Runs at most once, on the loop thread; dropped when the connection closes, so it may capture
    /// the connection strongly.
    public var onFrameRefused: ((ReactorError) -> Void)?

    /// Wraps a connected stream in frames, and in TLS when `tls` is given.
    ///
    /// - Parameters:
    ///   - accepted: Whether a listener accepted the stream.
    ///   - tls: The context of the TLS layer, or nil for plaintext.
    ///   - serverName: For a client, the name the server's certificate must carry.
    init(stream: TCPConnection, configuration: Configuration, accepted: Bool,
         tls: TLSContext? = nil, serverName: String? = nil) {
        self.stream = stream
        self.decoder = FrameDecoder(maxFrameLength: configuration.maxFrameLength)
        refusalLinger = configuration.refusalLinger
        isAccepted = accepted
        stream.readSink = self
        if let tls { startTLS(tls, serverName: serverName) }
    }

    /// The largest frame payload accepted from the peer (at most 2³² − 1); a longer length prefix is
    /// refused.
    ///
    /// Starts at ``Configuration/maxFrameLength``. Changing it applies from the next length prefix
    /// read, including those of frames already read but not yet delivered (set in ``onFrame``, it
    /// governs the frames that follow in the same read); a frame already being gathered is finished.
    ///
    /// - Warning: Loop thread only.
    public var maxFrameLength: Int {
        get { decoder.maxFrameLength }
        set {
            loop.assertInEventLoop()
            decoder.maxFrameLength = newValue
        }
    }

    /// The budget this connection's gathered frames reserve their length from, or `nil` (the
    /// default) for no bound beyond ``maxFrameLength``.
    ///
    /// A frame that arrives whole in one read needs no reservation; a frame split across reads
    /// reserves its length when its length prefix arrives, and is refused (see ``onFrameRefused``)
    /// when the budget cannot cover it. The reservation goes back to the budget it came from when the
    /// frame has been delivered or the connection closes, even if the connection was attached to
    /// another budget, or none, meanwhile. Changing the budget applies from the next gathered frame.
    ///
    /// - Warning: Loop thread only, and the budget must belong to this connection's loop.
    public var bufferBudget: FrameBufferBudget? {
        get { decoder.budget }
        set {
            loop.assertInEventLoop()
            decoder.budget = newValue
        }
    }

    /// The loop this connection lives on.
    public var loop: EventLoop { stream.loop }
    /// The peer's address, as `"127.0.0.1:5000"` or `"[::1]:5000"`.
    public var remoteAddress: String { stream.remoteAddress }
    /// The bytes queued for writing and not yet taken by the kernel (for TLS: ciphertext queued,
    /// and plaintext not yet encrypted).
    public var queuedWriteBytes: Int { stream.queuedWriteBytes + (tls?.stagedCount ?? 0) }
    /// Bytes read from the peer so far, partial frames included.
    public var bytesRead: UInt64 { stream.bytesRead }
    /// Whether queued writes are below the high-water mark.
    public var isWritable: Bool { stream.isWritable }

    // MARK: Reading (StreamReadSink)

    func readTarget(_ connection: TCPConnection) -> UnsafeMutableRawBufferPointer {
        // Ciphertext cannot go straight into a frame's buffer: TLS reads into the shared one.
        if tls != nil { return connection.loop.readBuffer }
        return decoder.directReadTarget(minimum: Self.directReadMinimum) ?? connection.loop.readBuffer
    }

    func didRead(_ connection: TCPConnection, base: UnsafeMutableRawPointer, count: Int) {
        if let tls {
            didReadTLS(tls, UnsafeRawBufferPointer(start: base, count: count))
            return
        }
        // Loaded once per read, not per frame; a new onFrame set meanwhile applies from the next read.
        guard let onFrame, delivering else { return }
        if base == connection.loop.readBuffer.baseAddress {
            if firstRead {
                firstRead = false
                if refuseTLSPeer(UnsafeRawBufferPointer(start: base, count: count)) { return }
            }
            deliverFrames(in: UnsafeRawBufferPointer(start: base, count: count), to: onFrame)
        } else if let frame = decoder.didReadDirectly(count) {
            deliver(frame, to: onFrame)
        }
    }

    /// Decodes `input` and delivers its frames until it is used up or the connection begins closing.
    ///
    /// - Returns: Whether delivering can go on.
    @inline(__always) @discardableResult
    func deliverFrames(in input: UnsafeRawBufferPointer, to onFrame: (UnsafeRawBufferPointer) -> Void) -> Bool {
        var input = input
        do {
            // Bounded by the input: every frame consumes some. Frames already read are not
            // delivered once the connection began closing (by us, or failing a send).
            while delivering, stream.isOpen, let frame = try decoder.next(&input) {
                deliver(frame, to: onFrame)
            }
        } catch {
            delivering = false
            refuse(ReactorError(error.kind, operation: "read from \(stream.remoteAddress)", message: error.message))
        }
        return delivering && stream.isOpen
    }

    /// Refuses a peer whose first bytes are TLS, at this plaintext connection.
    ///
    /// - Returns: Whether the peer was refused.
    private func refuseTLSPeer(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard TLSRecordSniffer.looksLikeTLS(bytes) else { return false }
        delivering = false
        refuse(ReactorError(.tls("peer speaks TLS"), operation: "read from \(stream.remoteAddress)",
                            message: isAccepted ? "the peer spoke TLS to a plaintext listener"
                                : "the server is speaking TLS, and this connection is plaintext"))
        return true
    }

    /// Gives one frame to `onFrame`, letting ``send(frame:)`` take a gathered frame's buffer over.
    @inline(__always)
    func deliver(_ frame: FrameDecoder.Frame, to onFrame: (UnsafeRawBufferPointer) -> Void) {
        guard frame.gathered else {
            onFrame(frame.payload)
            return
        }
        gatheredPayload = frame.payload.baseAddress
        onFrame(frame.payload)
        gatheredPayload = nil
        if gatheredTaken {
            gatheredTaken = false
            decoder.releaseGatheredBuffer()  // the write queue owns it now
            // The next large frame is gathered in a buffer the loop kept from earlier writes (this
            // one's, once written, goes back there): forwarding frames allocates nothing per frame.
            // Not where the decoder keeps no buffer between frames (a budget, or a huge frame).
            if decoder.keepsBuffer(forPayload: frame.payload.count) {
                let spare = stream.loop.takeLargeBuffer(minimumCapacity: frame.payload.count + 4)
                decoder.adoptBuffer(spare.base, byteCount: spare.capacity)
            }
        } else {
            // Give the reservation back now, not when the next gathered frame begins (maybe never).
            decoder.recycle()
        }
    }

    /// Refuses the frame whose length prefix the decoder rejected, or the peer that speaks the wrong
    /// protocol: lets ``onFrameRefused`` answer, then closes gracefully within the refusal linger.
    /// Without the hook, writes `defaultAnswer` and closes the same way, or closes at once.
    func refuse(_ error: ReactorError, defaultAnswer: [UInt8]? = nil) {
        if let onFrameRefused {
            self.onFrameRefused = nil
            // Recorded first, so onClose reports the refusal even if the hook closes the connection itself.
            stream.recordCloseError(error)
            onFrameRefused(error)
        } else if let defaultAnswer {
            stream.recordCloseError(error)
            stream.write(defaultAnswer)
        } else {
            stream.fail(error)
            return
        }
        stream.close(lingeringAtMost: refusalLinger)
    }

    func didReadEnd(_ connection: TCPConnection) -> ReactorError? {
        if let tls, let error = tlsStreamEnded(tls) { return error }
        guard decoder.isMidFrame else { return nil }
        return ReactorError(.truncatedFrame, operation: "read from \(connection.remoteAddress)",
                            message: "the peer closed the connection mid-frame (\(decoder.bufferedDescription) received)")
    }

    func connectionDidClose() {
        onFrame = nil
        onFrameRefused = nil
        delivering = false
        tls?.release()
        tls = nil
        // The close callback never runs inside a delivery, so no payload is being read: free the
        // partial frame and give its reservation back.
        decoder.reset()
    }

    /// Stops reading until ``resumeReading()``. Frames already read are still delivered.
    ///
    /// - Warning: Loop thread only.
    public func pauseReading() { stream.pauseReading() }

    /// Resumes reading after ``pauseReading()``.
    ///
    /// - Warning: Loop thread only.
    public func resumeReading() { stream.resumeReading() }

    // MARK: Writing

    /// Queues one frame with `payload`.
    ///
    /// When `payload` is the frame ``onFrame`` is delivering right now and it was gathered in a buffer
    /// of its own (a large frame), the buffer is handed over instead of copied.
    ///
    /// - Parameter payload: The payload; copied (at most once) before this returns.
    /// - Warning: Loop thread only. Dropped if the connection is closing; closes it with
    ///   `.writeQueueOverflow` if the queue would pass ``Configuration/maxQueuedWriteBytes``.
    @inline(__always)
    public func send(frame payload: UnsafeRawBufferPointer) {
        if let unretainedTLS {
            unretainedTLS._withUnsafeGuaranteedRef { sendTLS($0, frame: payload) }
            return
        }
        if let gatheredPayload, gatheredPayload == payload.baseAddress, !gatheredTaken,
           payload.count >= Self.directReadMinimum, stream.acceptsWrites {
            // Echoing (or forwarding) the large frame being delivered: its buffer already holds the
            // length prefix and payload, so hand it to the write queue instead of copying it.
            gatheredTaken = true
            let buffer = UnsafeMutableRawPointer(mutating: gatheredPayload - 4)
            stream.writeOwned(buffer, capacity: decoder.gatheredBufferByteCount, byteCount: payload.count + 4)
            return
        }
        let count = payload.count
        sendFrame(payloadSize: count) { target in
            if count > 0 { target.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: count) }
        }
    }

    /// Queues one frame with `payload`. See ``send(frame:)-(UnsafeRawBufferPointer)``.
    ///
    /// - Warning: Loop thread only.
    public func send(frame payload: [UInt8]) {
        payload.withUnsafeBytes { send(frame: $0) }
    }

    /// Queues one frame of `payloadSize` bytes that `fill` writes straight into the outgoing buffer.
    ///
    /// The length prefix is written for you; `fill` gets exactly `payloadSize` bytes to fill. Nothing is
    /// copied afterwards: this is the way to send large encoded messages.
    ///
    /// - Parameters:
    ///   - payloadSize: The payload's exact size.
    ///   - fill: Writes the payload.
    /// - Warning: Loop thread only. `fill` is not called if the frame is dropped (connection closing).
    @inline(__always)
    public func sendFrame(payloadSize: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        precondition(payloadSize >= 0 && payloadSize <= Int(UInt32.max), "frame payload size out of range")
        if let unretainedTLS {
            unretainedTLS._withUnsafeGuaranteedRef { sendFrameTLS($0, payloadSize: payloadSize, fill) }
            return
        }
        guard let target = stream.reserve(payloadSize + 4) else { return }
        target.storeBytes(of: UInt32(truncatingIfNeeded: payloadSize).littleEndian, as: UInt32.self)
        fill(UnsafeMutableRawBufferPointer(start: target + 4, count: payloadSize))
    }

    /// Writes `bytes` as they are, with no length prefix: for the Reactor's tests, which must send
    /// malformed, partial or oversized frames that ``send(frame:)-(UnsafeRawBufferPointer)`` would not.
    ///
    /// - Warning: Loop thread only.
    func writeUnframedForTesting(_ bytes: [UInt8]) {
        stream.write(bytes)
    }

    // MARK: Closing

    /// Half-closes after queued frames are written; frames keep arriving until the peer closes too.
    ///
    /// Over TLS, `close_notify` goes before the FIN; during the handshake, the half-close waits for it
    /// to complete (so that frames sent meanwhile go out).
    ///
    /// - Warning: Loop thread only.
    public func shutdownWrite() {
        if let tls {
            closeTLS(tls, .shutdownWrite)
            return
        }
        stream.shutdownWrite()
    }

    /// Closes gracefully: stops reading and delivering, writes queued frames, then closes.
    ///
    /// Over TLS, `close_notify` goes last; during the handshake, the close waits for it to complete
    /// (bounded by ``TLSContext/handshakeTimeout``) so that frames sent meanwhile (a refusal) go out.
    ///
    /// - Warning: Loop thread only.
    public func close() {
        delivering = false
        if let tls {
            closeTLS(tls, .close(linger: nil))
            return
        }
        stream.close()
    }

    /// Closes gracefully, but for at most `linger`: stops reading and delivering, writes queued
    /// frames, and closes at once if they are not all written by then.
    ///
    /// Over TLS during the handshake, the linger begins once the handshake completed.
    ///
    /// - Parameter linger: How long queued frames may take to be written.
    /// - Warning: Loop thread only. See ``TCPConnection/close(lingeringAtMost:)``.
    public func close(lingeringAtMost linger: Duration) {
        delivering = false
        if let tls {
            closeTLS(tls, .close(linger: linger))
            return
        }
        stream.close(lingeringAtMost: linger)
    }

    /// Closes at once, dropping queued frames.
    ///
    /// - Warning: Loop thread only.
    public func closeNow() {
        delivering = false
        stream.closeNow()
    }

    /// Connects with retry and wraps the connection in frames (and in TLS, with `tls`). See
    /// ``TCPConnection/connect(loop:host:port:configuration:retryInterval:deadline:onAttemptFailed:completion:)``.
    ///
    /// ```swift
    /// FrameConnection.connect(loop: loop, host: "server", port: 7000, configuration: .init(),
    ///                         retryInterval: .seconds(1), deadline: .now + .seconds(60),
    ///                         onAttemptFailed: { error, attempt in print("attempt \(attempt) failed: \(error)") }) { result in
    ///     guard case .success(let connection) = result else { return }
    ///     connection.onFrame = { payload in ... }
    ///     connection.send(frame: [1, 2, 3])
    /// }
    /// ```
    ///
    /// With `tls`, the connection completes when TCP connects, and the TLS handshake follows: frames
    /// sent from `completion` on wait for it, ``onTLSEstablished`` says when it is done, and a failed
    /// handshake (an untrusted, expired or misnamed certificate, a server that is not speaking TLS)
    /// closes the connection with a `.tls` error in ``onClose``, not in `completion`: retrying would
    /// not help.
    ///
    /// - Parameters:
    ///   - loop: The loop to connect on.
    ///   - host: A host name or numeric address.
    ///   - port: The port.
    ///   - configuration: The connection's configuration.
    ///   - tls: A client ``TLSContext`` to speak TLS 1.3, or `nil` for plaintext.
    ///   - serverName: The name the server's certificate must carry, also sent as SNI (a DNS name)
    ///     or checked as an address (an IP address); `nil` means `host`.
    ///   - retryInterval: The wait after a failed attempt before the next one starts.
    ///   - deadline: When to give up, or `nil` to retry forever.
    ///   - onAttemptFailed: Runs after each failed attempt with the error and the attempt number.
    ///   - completion: Runs exactly once, with the connection (install its callbacks here) or the
    ///     final error; `.invalidArgument` for a server ``TLSContext``.
    /// - Warning: Loop thread only; every callback runs on the loop thread.
    public static func connect(loop: EventLoop, host: String, port: Int,
                               configuration: Configuration = .init(),
                               tls: TLSContext? = nil,
                               serverName: String? = nil,
                               retryInterval: Duration = .seconds(1),
                               deadline: ContinuousClock.Instant? = nil,
                               onAttemptFailed: @escaping (ReactorError, Int) -> Void = { _, _ in },
                               completion: @escaping (Result<FrameConnection, ReactorError>) -> Void) {
        if let tls, tls.isServer {
            completion(.failure(ReactorError(.invalidArgument, operation: "connect \(host):\(port)",
                                             message: "a server TLS context cannot make connections")))
            return
        }
        TCPConnection.connect(loop: loop, host: host, port: port, configuration: configuration.stream,
                              retryInterval: retryInterval, deadline: deadline,
                              onAttemptFailed: onAttemptFailed) { result in
            completion(result.map {
                FrameConnection(stream: $0, configuration: configuration, accepted: false, tls: tls,
                                serverName: serverName ?? host)
            })
        }
    }
}

/// A listening socket whose accepted connections carry frames.
///
/// ```swift
/// let listener = try FrameListener(loop: loop, host: "0.0.0.0", port: 7000, configuration: .init()) { connection in
///     connection.onFrame = { payload in connection.send(frame: payload) }
/// }
/// ```
///
/// - Warning: Loop thread only.
public final class FrameListener {
    /// The raw listener underneath.
    public let listener: TCPListener

    /// Binds and listens on `host`:`port`.
    ///
    /// - Parameters:
    ///   - loop: The loop to accept on.
    ///   - host: A numeric IPv4 or IPv6 address, or a resolvable name.
    ///   - port: The port, or 0 for an ephemeral one (read it back from ``localPort``).
    ///   - configuration: The configuration of each accepted connection.
    ///   - tls: A server ``TLSContext`` to speak TLS 1.3 on every accepted connection, or `nil` for
    ///     plaintext. `onConnection` gets each connection before its handshake; frames flow after it
    ///     (see ``FrameConnection/onTLSEstablished``), and a failed handshake closes the connection
    ///     with a `.tls` error in its ``FrameConnection/onClose``, leaving the listener serving others.
    ///   - onConnection: Runs on the loop thread with each accepted connection; install its callbacks
    ///     here, as reading starts when this returns.
    /// - Throws: ``ReactorError`` if the address cannot be resolved, bound or listened on, or
    ///   `.invalidArgument` for a client ``TLSContext``.
    /// - Warning: Loop thread only.
    public init(loop: EventLoop, host: String, port: Int, configuration: FrameConnection.Configuration = .init(),
                tls: TLSContext? = nil, onConnection: @escaping (FrameConnection) -> Void) throws {
        if let tls, !tls.isServer {
            throw ReactorError(.invalidArgument, operation: "listen on \(host):\(port)",
                               message: "a client TLS context cannot serve a listener")
        }
        listener = try TCPListener(loop: loop, host: host, port: port, configuration: configuration.stream) { stream in
            onConnection(FrameConnection(stream: stream, configuration: configuration, accepted: true, tls: tls))
        }
    }

    /// The bound port (the kernel's choice when created with port 0).
    public var localPort: Int { listener.localPort }
    /// The bound address, as `"127.0.0.1:5000"` or `"[::1]:5000"`.
    public var localAddress: String { listener.localAddress }

    /// Stops listening. Accepted connections stay open.
    ///
    /// - Warning: Loop thread only.
    public func close() { listener.close() }
}
