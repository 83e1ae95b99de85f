import CLibUV
import COpenSSL

/// Where a ``TLSSession`` puts the plaintext it decrypts: a frame decoder, for ``FrameConnection``.
///
/// The session asks ``directTarget()`` before each decryption, so that the rest of a large frame can
/// be decrypted straight into the buffer gathering it; otherwise it decrypts into a scratch buffer
/// and hands over what it gathered there with ``didDecrypt(_:)``. Any method may return `false` to
/// stop the session processing (the connection is closing).
public protocol TLSPlaintextSink {
    /// The handshake completed; plaintext follows. Returns whether to go on.
    func tlsDidEstablish() -> Bool
    /// Memory of the sink's own to decrypt into next, or `nil` for the scratch buffer.
    func directTarget() -> UnsafeMutableRawBufferPointer?
    /// `count` bytes were decrypted into the last ``directTarget()``. Returns whether to go on.
    func didDecryptDirectly(_ count: Int) -> Bool
    /// Plaintext decrypted into the scratch buffer, valid during the call. Returns whether to go on.
    func didDecrypt(_ plaintext: UnsafeRawBufferPointer) -> Bool
}

/// One TLS 1.3 connection without a socket: ciphertext goes in and comes out through memory BIOs, so
/// nothing ever blocks and the event loop decides when bytes move.
///
/// ``FrameConnection`` drives one for each TLS connection; it is public so that a transport of one's
/// own, or a fuzz target, can drive it without a socket:
///
/// ```swift
/// let session = try TLSSession(context: serverContext)
/// let outcome = try session.process(ciphertextFromPeer, scratch: buffer, into: sink)  // plaintext to sink
/// try session.write(plaintextFrames)                                                 // once established
/// let count = session.takeCiphertext(into: outgoing)                                 // for the peer
/// ```
///
/// A session that failed stays failed: every later call throws the same error.
///
/// - Warning: One thread at a time (a connection's loop thread).
public final class TLSSession {
    /// How processing a batch of ciphertext ended.
    public enum Outcome: Sendable, Hashable {
        /// Everything received was used; the session needs more ciphertext to go on.
        case needsCiphertext
        /// The peer sent `close_notify`: it will send nothing more.
        case closedByPeer
        /// The sink asked to stop.
        case stopped
    }

    /// Ciphertext goes into the read BIO in slices of at most this size, about one record's worth, so
    /// the BIO's buffer never grows past it however much a read brought.
    private static let feedSlice = 17 * 1024
    /// Plaintext goes to OpenSSL in slices of at most one record's worth, so the write BIO's buffer
    /// stays about one record long; the caller drains it after each.
    public static let maxRecordPlaintext = 16 * 1024

    /// Whether this end is the server.
    public let isServer: Bool
    /// The name a client checks the server's certificate against, if any.
    public let serverName: String?
    let ssl: OpaquePointer
    /// Ciphertext from the peer, on its way into OpenSSL (owned by `ssl`).
    private let networkIn: OpaquePointer
    /// Ciphertext from OpenSSL, on its way to the peer (owned by `ssl`).
    private let networkOut: OpaquePointer
    /// Whether the handshake completed.
    // Unchecked: read for every frame sent, on the one thread that uses the session.
    @exclusivity(unchecked) public private(set) var isEstablished = false
    /// The error this session failed with; it is thrown again by every later call.
    public private(set) var failure: ReactorError?
    /// Whether any ciphertext has been received (the first bytes are checked for plaintext).
    private var receivedAny = false
    private var sentCloseNotify = false
    /// The peer certificate's subject, read once when the handshake completes.
    public private(set) var peerCertificateSubject: String?

    /// Creates a session for one connection.
    ///
    /// - Parameters:
    ///   - context: A server context for an accepted connection, a client context for an outgoing one.
    ///   - serverName: For a client, the name the server's certificate must carry: a DNS name (also
    ///     sent as the server name indication, SNI) or an IP address. `nil` checks the certificate's
    ///     chain but not its name, which only a test should want.
    /// - Throws: ``ReactorError`` of kind `.tls` if OpenSSL cannot create the connection.
    public init(context: TLSContext, serverName: String? = nil) throws(ReactorError) {
        isServer = context.isServer
        self.serverName = isServer ? nil : serverName
        OpenSSLErrors.clear()
        guard let ssl = SSL_new(context.context) else {
            throw OpenSSLErrors.error(operation: "TLS session", "cannot create a TLS connection")
        }
        guard let networkIn = BIO_new(BIO_s_mem()), let networkOut = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw OpenSSLErrors.error(operation: "TLS session", "cannot create memory BIOs")
        }
        self.ssl = ssl
        self.networkIn = networkIn
        self.networkOut = networkOut
        downpour_bio_set_retry_when_empty(networkIn)
        downpour_bio_set_retry_when_empty(networkOut)
        SSL_set_bio(ssl, networkIn, networkOut)
        if isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName { try expectServerName(serverName) }
        }
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs
    }

    /// Makes the handshake check the server's certificate against `name`, and sends `name` as SNI
    /// unless it is an IP address (which SNI must not carry).
    private func expectServerName(_ name: String) throws(ReactorError) {
        let bare = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
        var address = [UInt8](repeating: 0, count: 16)
        let isAddress = uv_inet_pton(AF_INET, bare, &address) == 0 || uv_inet_pton(AF_INET6, bare, &address) == 0
        let ok = isAddress
            ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), bare) == 1
            : SSL_set1_host(ssl, bare) == 1 && downpour_ssl_set_server_name(ssl, bare) == 1
        guard ok else {
            throw OpenSSLErrors.error(operation: "TLS session", "cannot expect the server name \"\(bare)\"")
        }
    }

    // MARK: Handshake and reading

    /// Starts a client's handshake: puts the ClientHello in the outgoing ciphertext. A server's
    /// handshake starts with the first ciphertext it processes; calling this on a server does nothing.
    ///
    /// - Throws: ``ReactorError`` of kind `.tls` if the handshake cannot start.
    public func startHandshake() throws(ReactorError) {
        if let failure { throw failure }
        guard !isServer, !isEstablished else { return }
        OpenSSLErrors.clear()
        _ = try stepHandshake()
    }

    /// Takes `ciphertext` received from the peer, advances the handshake with it and decrypts every
    /// record it completes, handing the plaintext to `sink` in order.
    ///
    /// Ciphertext that arrives before the handshake completes (the client's first frames, right
    /// behind its Finished) is kept and decrypted as soon as it does. Afterwards, take the outgoing
    /// ciphertext (``pendingCiphertext``): handshake messages, or an alert after a failure.
    ///
    /// - Parameters:
    ///   - ciphertext: The next bytes from the peer (may be empty, to go on with what is held).
    ///   - scratch: Where to gather plaintext for ``TLSPlaintextSink/didDecrypt(_:)``; any size.
    ///   - sink: Where plaintext goes.
    /// - Returns: Whether the session needs more ciphertext, the peer closed, or the sink stopped.
    /// - Throws: ``ReactorError`` of kind `.tls`: the first bytes were not TLS (`"plaintext peer"`
    ///   on a server, `"not TLS"` on a client), the handshake failed (an untrusted or expired
    ///   certificate, a wrong name, a missing client certificate, an alert from the peer), or a
    ///   record did not decrypt.
    public func process<Sink: TLSPlaintextSink>(_ ciphertext: UnsafeRawBufferPointer,
                                                scratch: UnsafeMutableRawBufferPointer,
                                                into sink: Sink) throws(ReactorError) -> Outcome {
        if let failure { throw failure }
        precondition(!scratch.isEmpty, "TLSSession.process needs scratch memory")
        if !receivedAny && !ciphertext.isEmpty {
            receivedAny = true
            try checkFirstBytes(ciphertext)
        }
        OpenSSLErrors.clear()
        var input = ciphertext
        /// Plaintext in `scratch` not yet handed to the sink.
        var gathered = 0
        // Bounded: every round feeds input, produces plaintext, hands plaintext over, or returns.
        while true {
            if !isEstablished {
                if try stepHandshake() {
                    guard sink.tlsDidEstablish() else { return .stopped }
                } else if input.isEmpty {
                    return .needsCiphertext
                } else {
                    feed(&input)
                }
                continue
            }
            // Straight into the sink's memory only when nothing is left in the scratch buffer: the
            // sink's state (which frame it is gathering) is up to date only then.
            let direct = gathered == 0 ? sink.directTarget().flatMap { $0.isEmpty ? nil : $0 } : nil
            let target = direct ?? UnsafeMutableRawBufferPointer(rebasing: scratch[gathered...])
            if target.isEmpty {
                guard sink.didDecrypt(UnsafeRawBufferPointer(rebasing: scratch[..<gathered])) else { return .stopped }
                gathered = 0
                continue
            }
            var count = 0
            if SSL_read_ex(ssl, target.baseAddress, target.count, &count) == 1 {
                if direct != nil {
                    guard sink.didDecryptDirectly(count) else { return .stopped }
                } else {
                    gathered += count
                }
                continue
            }
            let error = SSL_get_error(ssl, 0)
            guard error == SSL_ERROR_WANT_READ || error == SSL_ERROR_ZERO_RETURN else { throw fail(error) }
            if error == SSL_ERROR_WANT_READ && !input.isEmpty {
                feed(&input)
                continue
            }
            if gathered > 0 && !sink.didDecrypt(UnsafeRawBufferPointer(rebasing: scratch[..<gathered])) {
                return .stopped
            }
            return error == SSL_ERROR_ZERO_RETURN ? .closedByPeer : .needsCiphertext
        }
    }

    /// Refuses a stream whose first bytes cannot begin a TLS record: a plaintext peer.
    private func checkFirstBytes(_ bytes: UnsafeRawBufferPointer) throws(ReactorError) {
        guard !TLSRecordSniffer.canBeginTLS(bytes, fromServer: !isServer) else { return }
        let error = isServer
            ? ReactorError(.tls("plaintext peer"), operation: "TLS handshake",
                           message: "the peer spoke plaintext to a TLS listener (its first bytes, "
                               + "\(TLSRecordSniffer.describe(bytes)), are not a TLS record)")
            : ReactorError(.tls("not TLS"), operation: "TLS handshake",
                           message: "the server is not speaking TLS: it answered the handshake with bytes "
                               + "that are not a TLS record (\(TLSRecordSniffer.describe(bytes)))")
        failure = error
        throw error
    }

    /// Moves up to one slice of `input` into the read BIO.
    @inline(__always)
    private func feed(_ input: inout UnsafeRawBufferPointer) {
        let count = min(input.count, Self.feedSlice)
        // A memory BIO takes everything it is given (or fails only when out of memory, which the
        // next SSL call then reports).
        BIO_write(networkIn, input.baseAddress, Int32(count))
        input = UnsafeRawBufferPointer(rebasing: input[count...])
    }

    /// Advances the handshake; true once it completed.
    private func stepHandshake() throws(ReactorError) -> Bool {
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            isEstablished = true
            peerCertificateSubject = readPeerSubject()
            return true
        }
        let error = SSL_get_error(ssl, result)
        guard error == SSL_ERROR_WANT_READ else { throw fail(error) }
        return false
    }

    /// Records and returns the error for what `SSL_get_error` reported.
    private func fail(_ sslError: Int32) -> ReactorError {
        let error = TLSFailure.describe(ssl, isServer: isServer, serverName: serverName, sslError: sslError,
                                        operation: isEstablished ? "TLS connection" : "TLS handshake")
        failure = error
        return error
    }

    // MARK: Writing

    /// Encrypts `plaintext` into records in the outgoing ciphertext.
    ///
    /// Pass at most ``maxRecordPlaintext`` bytes at a time and take the ciphertext after each, to keep
    /// the outgoing buffer one record long.
    ///
    /// - Throws: ``ReactorError`` of kind `.tls` if the session failed or OpenSSL cannot encrypt.
    /// - Precondition: The handshake completed.
    public func write(_ plaintext: UnsafeRawBufferPointer) throws(ReactorError) {
        if let failure { throw failure }
        precondition(isEstablished, "TLSSession.write before the handshake completed")
        guard !plaintext.isEmpty else { return }
        OpenSSLErrors.clear()
        var written = 0
        if SSL_write_ex(ssl, plaintext.baseAddress, plaintext.count, &written) != 1 {
            throw fail(SSL_get_error(ssl, 0))
        }
    }

    /// How many bytes of ciphertext wait to be sent to the peer.
    public var pendingCiphertext: Int { Int(BIO_ctrl_pending(networkOut)) }

    /// Moves up to `buffer.count` bytes of outgoing ciphertext into `buffer`.
    ///
    /// - Returns: How many bytes were moved.
    @inline(__always)
    public func takeCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        return max(Int(BIO_read(networkOut, base, Int32(min(buffer.count, Int(Int32.max))))), 0)
    }

    /// Puts `close_notify` in the outgoing ciphertext: this end sends nothing more. Reading goes on.
    /// Does nothing before the handshake completed, after a failure, or the second time.
    public func close() {
        guard isEstablished, failure == nil, !sentCloseNotify else { return }
        sentCloseNotify = true
        SSL_shutdown(ssl)
        // SSL_shutdown reports "not yet answered" as an error on the queue: it is expected here.
        OpenSSLErrors.clear()
    }

    // MARK: What the handshake established

    /// The cipher suite in use (`"TLS_AES_128_GCM_SHA256"`), once the handshake completed.
    public var cipherSuite: String? {
        guard isEstablished, let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else {
            return nil
        }
        return String(cString: name)
    }

    /// Keying material exported from the session (RFC 8446, section 7.5) under `label`, with no
    /// context: equal on both ends of one connection, unrelated across connections. Binding an
    /// application's own authentication to it ties that authentication to this TLS channel.
    ///
    /// - Parameters:
    ///   - label: The exporter label, such as `"EXPORTER-downpour-token"`.
    ///   - length: How many bytes to export.
    /// - Returns: The bytes, or `nil` before the handshake completed or after a failure.
    public func exportKeyingMaterial(label: String, length: Int) -> [UInt8]? {
        guard isEstablished, failure == nil, length > 0 else { return nil }
        let labelBytes = Array(label.utf8)
        var output = [UInt8](repeating: 0, count: length)
        let status = labelBytes.withUnsafeBufferPointer { labelBuffer in
            labelBuffer.withMemoryRebound(to: CChar.self) { labelChars in
                SSL_export_keying_material(ssl, &output, length, labelChars.baseAddress, labelChars.count, nil, 0, 0)
            }
        }
        guard status == 1 else {
            OpenSSLErrors.clear()
            return nil
        }
        return output
    }

    /// The `tls-unique` channel binding (RFC 5929): the handshake's first Finished message, the
    /// client's (sessions are never resumed). Equal on both ends of one connection, unique to it.
    ///
    /// Prefer ``exportKeyingMaterial(label:length:)`` (RFC 9266 recommends the exporter for TLS 1.3);
    /// this is for peers that have no exporter, such as Python's `ssl` module, whose
    /// `get_channel_binding("tls-unique")` returns these bytes.
    ///
    /// - Returns: The bytes, or `nil` before the handshake completed or after a failure.
    public var tlsUniqueChannelBinding: [UInt8]? {
        guard isEstablished, failure == nil else { return nil }
        var finished = [UInt8](repeating: 0, count: 64)
        let count = finished.withUnsafeMutableBytes { buffer in
            isServer ? SSL_get_peer_finished(ssl, buffer.baseAddress, buffer.count)
                : SSL_get_finished(ssl, buffer.baseAddress, buffer.count)
        }
        return Array(finished.prefix(min(count, finished.count)))
    }

    /// The peer certificate's subject in RFC 2253 form (`"CN=worker-1,O=Downpour"`), if it sent one.
    private func readPeerSubject() -> String? {
        guard let certificate = SSL_get0_peer_certificate(ssl), let name = X509_get_subject_name(certificate),
              let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard downpour_x509_name_print_rfc2253(bio, name) >= 0 else { return nil }
        var data: UnsafeMutablePointer<CChar>?
        let count = downpour_bio_mem_data(bio, &data)
        guard let data, count > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: count), as: UTF8.self)
    }
}
