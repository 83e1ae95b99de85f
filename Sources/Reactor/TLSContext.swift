import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a TLS endpoint proves and trusts: the certificates and keys that ``FrameListener`` and
/// ``FrameConnection/connect(loop:host:port:configuration:tls:serverName:retryInterval:deadline:onAttemptFailed:completion:)``
/// use for their connections.
///
/// ```swift
/// let serverTLS = try TLSContext.server(certificateChainPath: "server.pem", privateKeyPath: "server.key")
/// let clientTLS = try TLSContext.client(trustedCAPath: "ca.pem")
/// ```
///
/// Every connection speaks TLS 1.3 and nothing older, and a client always verifies the server's
/// certificate chain and name. Cipher suites are TLS 1.3's three, AES-128-GCM first (the fastest
/// with AES-NI, and the server's preference decides). Sessions are never resumed: a server issues no
/// session tickets and keeps no cache, so each connection makes a full handshake.
///
/// Files are PEM. A private key must not be encrypted (loading one fails rather than prompting for a
/// passphrase): protect it with file permissions instead.
public final class TLSContext: @unchecked Sendable {
    // Why @unchecked Sendable is safe: the SSL_CTX is configured completely before a factory returns
    // and never changed afterwards; OpenSSL makes creating connections from one context (SSL_new)
    // safe from any thread, and the other stored properties are immutable.

    /// The OpenSSL context, owned.
    let context: OpaquePointer
    /// Whether this context serves connections (accepted by a listener) rather than makes them.
    public let isServer: Bool
    /// Whether a server asks every client for a certificate and refuses those without a valid one.
    public let requiresClientCertificate: Bool
    /// How long a connection's handshake may take before the connection closes with
    /// `.tls("handshake timeout")`.
    public let handshakeTimeout: Duration

    private init(isServer: Bool, requiresClientCertificate: Bool, handshakeTimeout: Duration) throws(ReactorError) {
        let operation = isServer ? "TLS server context" : "TLS client context"
        guard let context = SSL_CTX_new(isServer ? TLS_server_method() : TLS_client_method()) else {
            throw OpenSSLErrors.error(operation: operation, "cannot create an OpenSSL context")
        }
        self.context = context
        self.isServer = isServer
        self.requiresClientCertificate = requiresClientCertificate
        self.handshakeTimeout = handshakeTimeout
        guard downpour_ssl_ctx_set_tls13_only(context) == 1,
              SSL_CTX_set_ciphersuites(context, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") == 1 else {
            throw OpenSSLErrors.error(operation: operation, "cannot restrict the context to TLS 1.3")
        }
        downpour_ssl_ctx_refuse_passphrases(context)
        downpour_ssl_ctx_disable_session_cache(context)
        if isServer {
            downpour_ssl_ctx_prefer_server_ciphers(context)
            // Tickets serve resumption, which Downpour's clients never attempt: sending two per
            // handshake (OpenSSL's default) would cost the server an encryption each, for nothing.
            SSL_CTX_set_num_tickets(context, 0)
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// A context for a listener: the server proves itself with `certificateChainPath`, and with
    /// `clientCAPath` demands that every client prove itself too (mutual TLS).
    ///
    /// - Parameters:
    ///   - certificateChainPath: The server's certificate, then any intermediate CA certificates, PEM.
    ///   - privateKeyPath: The certificate's private key, PEM, unencrypted.
    ///   - clientCAPath: The CA certificates that client certificates must chain to, PEM; when set,
    ///     a client without a certificate they verify is refused in the handshake.
    ///   - handshakeTimeout: How long each handshake may take (10 seconds).
    /// - Returns: A context to pass to ``FrameListener``.
    /// - Throws: ``ReactorError`` of kind `.tls` naming the file and what is wrong with it: it cannot
    ///   be read, holds no PEM certificate or key, or the key does not match the certificate.
    public static func server(certificateChainPath: String, privateKeyPath: String, clientCAPath: String? = nil,
                              handshakeTimeout: Duration = .seconds(10)) throws(ReactorError) -> TLSContext {
        let tls = try TLSContext(isServer: true, requiresClientCertificate: clientCAPath != nil,
                                 handshakeTimeout: handshakeTimeout)
        try tls.loadIdentity(certificateChainPath: certificateChainPath, privateKeyPath: privateKeyPath)
        if let clientCAPath {
            try tls.trust(caPath: clientCAPath, what: "client CA certificates")
            // Tells clients which CAs are acceptable, so one holding several identities can pick.
            if let names = SSL_load_client_CA_file(clientCAPath) { SSL_CTX_set_client_CA_list(tls.context, names) }
            SSL_CTX_set_verify(tls.context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        }
        return tls
    }

    /// A context for connecting: the client verifies the server's certificate against `trustedCAPath`
    /// (or the system's CAs), and proves itself with `certificatePath` when the server asks.
    ///
    /// - Parameters:
    ///   - trustedCAPath: The CA certificates the server's certificate must chain to, PEM; `nil`
    ///     trusts the system's default CAs (`/etc/ssl/certs` on Debian).
    ///   - certificatePath: The client's certificate chain for mutual TLS, PEM, or `nil` for none.
    ///   - privateKeyPath: Its private key, PEM, unencrypted; given exactly when `certificatePath` is.
    ///   - handshakeTimeout: How long each handshake may take (10 seconds).
    /// - Returns: A context to pass to ``FrameConnection/connect(loop:host:port:configuration:tls:serverName:retryInterval:deadline:onAttemptFailed:completion:)``.
    /// - Throws: ``ReactorError`` of kind `.tls` naming the file and what is wrong with it, or
    ///   `.invalidArgument` when only one of `certificatePath` and `privateKeyPath` is given.
    public static func client(trustedCAPath: String?, certificatePath: String? = nil, privateKeyPath: String? = nil,
                              handshakeTimeout: Duration = .seconds(10)) throws(ReactorError) -> TLSContext {
        if (certificatePath == nil) != (privateKeyPath == nil) {
            throw ReactorError(.invalidArgument, operation: "TLS client context",
                               message: certificatePath == nil ? "a private key was given without its certificate"
                                   : "a client certificate was given without its private key")
        }
        let tls = try TLSContext(isServer: false, requiresClientCertificate: false, handshakeTimeout: handshakeTimeout)
        if let trustedCAPath {
            try tls.trust(caPath: trustedCAPath, what: "trusted CA certificates")
        } else if SSL_CTX_set_default_verify_paths(tls.context) != 1 {
            throw OpenSSLErrors.error(operation: "TLS client context", "cannot load the system's CA certificates")
        }
        if let certificatePath, let privateKeyPath {
            try tls.loadIdentity(certificateChainPath: certificatePath, privateKeyPath: privateKeyPath)
        }
        SSL_CTX_set_verify(tls.context, SSL_VERIFY_PEER, nil)
        return tls
    }

    private var operation: String { isServer ? "TLS server context" : "TLS client context" }

    /// Loads this endpoint's certificate chain and private key, and checks that they belong together.
    private func loadIdentity(certificateChainPath: String, privateKeyPath: String) throws(ReactorError) {
        try requireReadable(certificateChainPath, what: "certificate chain")
        try requireReadable(privateKeyPath, what: "private key")
        OpenSSLErrors.clear()
        guard SSL_CTX_use_certificate_chain_file(context, certificateChainPath) == 1 else {
            throw OpenSSLErrors.error(operation: operation, "cannot load the certificate chain at \(certificateChainPath)")
        }
        guard SSL_CTX_use_PrivateKey_file(context, privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            if let (library, reason) = OpenSSLErrors.firstReason(), library == ERR_LIB_X509, reason == X509_R_KEY_VALUES_MISMATCH {
                OpenSSLErrors.clear()
                throw mismatch(certificateChainPath, privateKeyPath)
            }
            throw OpenSSLErrors.error(operation: operation, "cannot load the private key at \(privateKeyPath) "
                + "(it must be PEM and unencrypted)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            OpenSSLErrors.clear()
            throw mismatch(certificateChainPath, privateKeyPath)
        }
    }

    private func mismatch(_ certificate: String, _ key: String) -> ReactorError {
        ReactorError(.tls("key values mismatch"), operation: operation,
                     message: "the private key at \(key) does not match the certificate at \(certificate)")
    }

    /// Makes the certificates in `caPath` the ones a peer's certificate must chain to.
    private func trust(caPath: String, what: String) throws(ReactorError) {
        try requireReadable(caPath, what: what)
        OpenSSLErrors.clear()
        guard SSL_CTX_load_verify_file(context, caPath) == 1 else {
            throw OpenSSLErrors.error(operation: operation, "cannot load the \(what) at \(caPath)")
        }
    }

    /// Fails with the system's reason when `path` cannot be opened: OpenSSL would only say "system lib".
    private func requireReadable(_ path: String, what: String) throws(ReactorError) {
        guard let file = fopen(path, "r") else {
            let reason = String(cString: strerror(errno))
            throw ReactorError(.tls(reason), operation: operation, message: "cannot read the \(what) at \(path): \(reason)")
        }
        fclose(file)
    }
}
