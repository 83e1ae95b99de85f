import COpenSSL

/// OpenSSL's error queue (one per thread), read and emptied.
///
/// OpenSSL's I/O calls report through `SSL_get_error`, which reads this queue; the queue must be
/// empty before each call, so every failure that leaves errors on it takes them off here.
enum OpenSSLErrors {
    /// Empties the calling thread's queue.
    @inline(__always)
    static func clear() { ERR_clear_error() }

    /// The library and reason of the earliest queued error, without taking it off.
    static func firstReason() -> (library: Int32, reason: Int32)? {
        let code = ERR_peek_error()
        guard code != 0 else { return nil }
        return (downpour_err_lib(code), downpour_err_reason(code))
    }

    /// Takes every queued error code off, earliest first.
    static func drain() -> [UInt] {
        var codes: [UInt] = []
        // Bounded: OpenSSL keeps at most 16 errors per thread.
        while codes.count < 64 {
            let code = ERR_get_error()
            if code == 0 { break }
            codes.append(code)
        }
        return codes
    }

    /// OpenSSL's text for an error's reason ("certificate verify failed").
    static func reasonText(_ code: UInt) -> String {
        if let text = ERR_reason_error_string(code) { return String(cString: text) }
        return "OpenSSL error \(downpour_err_lib(code)):\(downpour_err_reason(code))"
    }

    /// An error for a set-up step that failed: `message`, then OpenSSL's reason. Empties the queue.
    static func error(operation: String, _ message: String) -> ReactorError {
        let reason = drain().first.map(reasonText) ?? "unknown reason"
        return ReactorError(.tls(reason), operation: operation, message: "\(message): \(reason)")
    }
}

/// Says in one sentence why a TLS connection failed, from OpenSSL's error queue and verify result.
///
/// The sentences name the side that is at fault: a client whose verification of the server's
/// certificate failed says why ("certificate has expired"), and the server, which then receives the
/// client's alert, says that the client rejected its certificate and with which alert.
enum TLSFailure {
    /// Describes the failure that `SSL_get_error` reported as `sslError`, emptying the error queue.
    ///
    /// - Parameters:
    ///   - ssl: The connection that failed.
    ///   - isServer: Whether this end is the server.
    ///   - serverName: The name a client checked the server's certificate against.
    ///   - sslError: What `SSL_get_error` returned.
    ///   - operation: The operation for the error (`"TLS handshake"`).
    static func describe(_ ssl: OpaquePointer, isServer: Bool, serverName: String?, sslError: Int32,
                         operation: String) -> ReactorError {
        let codes = OpenSSLErrors.drain()
        guard let code = codes.first(where: { downpour_err_lib($0) == ERR_LIB_SSL }) ?? codes.first else {
            return ReactorError(.tls("SSL_get_error \(sslError)"), operation: operation,
                                message: "TLS failed without a reason from OpenSSL (SSL_get_error \(sslError))")
        }
        let reasonText = OpenSSLErrors.reasonText(code)
        let peer = isServer ? "client" : "server"
        let message: String
        if downpour_err_lib(code) != ERR_LIB_SSL {
            message = "TLS failed: \(reasonText)"
        } else {
            message = sentence(for: downpour_err_reason(code), reasonText: reasonText, ssl: ssl, peer: peer,
                               isServer: isServer, serverName: serverName)
        }
        return ReactorError(.tls(reasonText), operation: operation, message: message)
    }

    private static func sentence(for reason: Int32, reasonText: String, ssl: OpaquePointer, peer: String,
                                 isServer: Bool, serverName: String?) -> String {
        switch reason {
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return verificationSentence(ssl, peer: peer, serverName: serverName)
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return "the client sent no certificate, and this server requires one (mutual TLS)"
        case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_WRONG_VERSION_NUMBER:
            return "the \(peer) does not speak TLS 1.3 (\(reasonText))"
        case SSL_R_NO_SHARED_CIPHER, SSL_R_NO_SUITABLE_KEY_SHARE:
            return "the \(peer) shares no TLS 1.3 cipher suite or key exchange with this end (\(reasonText))"
        case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
            return "a TLS record from the \(peer) failed authentication: it was corrupted or tampered with in transit"
        case SSL_AD_REASON_OFFSET...(SSL_AD_REASON_OFFSET + 255):
            return alertSentence(reason - SSL_AD_REASON_OFFSET, peer: peer, isServer: isServer)
        default:
            return "TLS failed: \(reasonText)"
        }
    }

    /// Why this end refused the peer's certificate.
    private static func verificationSentence(_ ssl: OpaquePointer, peer: String, serverName: String?) -> String {
        let result = SSL_get_verify_result(ssl)
        let why = String(cString: X509_verify_cert_error_string(result))
        var sentence = "the \(peer)'s certificate failed verification: \(why)"
        switch Int32(truncatingIfNeeded: result) {
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            if let serverName { sentence += " (it is not valid for \"\(serverName)\")" }
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
             X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
            sentence += " (it is not signed by a CA this end trusts)"
        default:
            break
        }
        return sentence
    }

    /// What the peer's alert means for this end.
    private static func alertSentence(_ alert: Int32, peer: String, isServer: Bool) -> String {
        let description = String(cString: SSL_alert_desc_string_long(alert))
        let ours = isServer ? "this server's" : "this client's"
        switch alert {
        case SSL_AD_CERTIFICATE_REQUIRED:
            return "the server requires a client certificate (mutual TLS), and this client sent none "
                + "(TLS alert: certificate required)"
        case SSL_AD_UNKNOWN_CA, SSL_AD_BAD_CERTIFICATE, SSL_AD_CERTIFICATE_EXPIRED, SSL_AD_UNSUPPORTED_CERTIFICATE,
             SSL_AD_CERTIFICATE_REVOKED, SSL_AD_CERTIFICATE_UNKNOWN:
            return "the \(peer) rejected \(ours) certificate (TLS alert: \(description))"
        case SSL_AD_PROTOCOL_VERSION:
            return "the \(peer) does not accept TLS 1.3 (TLS alert: \(description))"
        default:
            return "the \(peer) sent the TLS alert \"\(description)\""
        }
    }
}
