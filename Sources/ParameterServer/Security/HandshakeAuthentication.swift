import COpenSSL

/// The handshake's challenge-response MACs, in one place for the server and the worker, exactly as
/// Schemas/Messages/README.md specifies them for third-party implementations.
///
/// ```
/// worker response = HMAC-SHA256(token, "downpour/v1 worker-response" || server_nonce || client_nonce || worker_name)
/// server proof    = HMAC-SHA256(token, "downpour/v1 server-proof"    || client_nonce || server_nonce || session_id)
/// ```
///
/// Over TLS both are bound to the channel: the labels become `"downpour/v1 tls-worker-response"` and
/// `"downpour/v1 tls-server-proof"`, and the 32-byte TLS exporter value (RFC 8446 section 7.5, label
/// `EXPORTER-downpour-token-binding`, no context) follows the nonces. A party that relays a handshake
/// between two TLS connections (a server with a certificate of its own, say) then holds MACs for its
/// own channel, which the real peer's channel does not accept.
///
/// The labels keep one kind of MAC from ever standing in for the other (they differ within their first
/// 13 bytes, so neither message is a prefix of the other); the nonces are fixed-length, so the names
/// at the end need no length prefix. Each side's fresh nonce makes a recorded answer useless on another
/// connection. Verification compares in constant time.
public enum HandshakeAuthentication {
    /// Bytes in each nonce.
    public static let nonceLength = 32
    /// Bytes in each MAC (SHA-256's output).
    public static let macLength = 32

    static let workerLabel = Array("downpour/v1 worker-response".utf8)
    static let serverLabel = Array("downpour/v1 server-proof".utf8)
    // They differ from the plaintext labels at byte 12, and from each other at byte 16.
    static let boundWorkerLabel = Array("downpour/v1 tls-worker-response".utf8)
    static let boundServerLabel = Array("downpour/v1 tls-server-proof".utf8)

    /// The TLS exporter label of the channel binding, and its length in bytes.
    public static let exporterLabel = "EXPORTER-downpour-token-binding"
    public static let channelBindingLength = 32

    /// A fresh nonce from the system's secure generator (getrandom on Linux).
    public static func makeNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The worker's answer to a challenge.
    /// - Parameter channelBinding: the connection's TLS exporter value, or nil on a plaintext connection.
    public static func workerResponse(
        token: AuthenticationToken, serverNonce: [UInt8], clientNonce: [UInt8], workerName: String, channelBinding: [UInt8]? = nil
    ) -> [UInt8] {
        mac(token: token, workerMessage(serverNonce: serverNonce, clientNonce: clientNonce, workerName: workerName, channelBinding: channelBinding))
    }

    /// Whether `mac` is the right answer to the challenge, compared in constant time. False when a
    /// nonce is not `nonceLength` bytes, since the message's layout relies on that length.
    public static func isValidWorkerResponse(
        _ mac: [UInt8], token: AuthenticationToken, serverNonce: [UInt8], clientNonce: [UInt8], workerName: String,
        channelBinding: [UInt8]? = nil
    ) -> Bool {
        guard serverNonce.count == nonceLength, clientNonce.count == nonceLength,
              channelBinding.map({ $0.count == channelBindingLength }) ?? true else { return false }
        return isValid(mac, token: token, workerMessage(
            serverNonce: serverNonce, clientNonce: clientNonce, workerName: workerName, channelBinding: channelBinding))
    }

    /// The server's proof, sent in Welcome, that it holds the token too.
    public static func serverProof(
        token: AuthenticationToken, clientNonce: [UInt8], serverNonce: [UInt8], sessionID: String, channelBinding: [UInt8]? = nil
    ) -> [UInt8] {
        mac(token: token, serverMessage(clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID, channelBinding: channelBinding))
    }

    /// Whether `proof` shows that the server holds the token, compared in constant time. False when a
    /// nonce is not `nonceLength` bytes.
    public static func isValidServerProof(
        _ proof: [UInt8], token: AuthenticationToken, clientNonce: [UInt8], serverNonce: [UInt8], sessionID: String,
        channelBinding: [UInt8]? = nil
    ) -> Bool {
        guard serverNonce.count == nonceLength, clientNonce.count == nonceLength,
              channelBinding.map({ $0.count == channelBindingLength }) ?? true else { return false }
        return isValid(proof, token: token, serverMessage(
            clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID, channelBinding: channelBinding))
    }

    /// HMAC-SHA256 of `message` keyed with the token, computed by OpenSSL's libcrypto (which the
    /// Reactor's TLS links anyway, so the handshake needs no second cryptography library).
    static func mac(token: AuthenticationToken, _ message: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: macLength)
        var length: UInt32 = 0
        let result = token.secret.withUnsafeBufferPointer { key in
            message.withUnsafeBufferPointer { data in
                mac.withUnsafeMutableBufferPointer { output in
                    HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data.baseAddress, data.count, output.baseAddress, &length)
                }
            }
        }
        // HMAC fails only when the digest is unavailable, which would make every handshake unverifiable.
        precondition(result != nil && length == UInt32(macLength), "OpenSSL's HMAC-SHA256 failed")
        return mac
    }

    private static func isValid(_ mac: [UInt8], token: AuthenticationToken, _ message: [UInt8]) -> Bool {
        // A MAC of another length is wrong; CRYPTO_memcmp compares in time independent of where the
        // bytes differ, so a forger learns nothing from how long a refusal takes.
        guard mac.count == macLength else { return false }
        let expected = self.mac(token: token, message)
        return CRYPTO_memcmp(mac, expected, macLength) == 0
    }

    private static func workerMessage(serverNonce: [UInt8], clientNonce: [UInt8], workerName: String, channelBinding: [UInt8]?) -> [UInt8] {
        guard let channelBinding else { return workerLabel + serverNonce + clientNonce + Array(workerName.utf8) }
        return boundWorkerLabel + serverNonce + clientNonce + channelBinding + Array(workerName.utf8)
    }

    private static func serverMessage(clientNonce: [UInt8], serverNonce: [UInt8], sessionID: String, channelBinding: [UInt8]?) -> [UInt8] {
        guard let channelBinding else { return serverLabel + clientNonce + serverNonce + Array(sessionID.utf8) }
        return boundServerLabel + clientNonce + serverNonce + channelBinding + Array(sessionID.utf8)
    }
}
