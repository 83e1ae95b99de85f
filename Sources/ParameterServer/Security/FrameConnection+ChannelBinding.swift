import Reactor

extension FrameConnection {
    /// The TLS exporter value that binds the token's MACs to this connection (see
    /// `HandshakeAuthentication`), or nil on a plaintext connection.
    var channelBinding: [UInt8]? {
        guard isEncrypted else { return nil }
        // An encrypted connection past its handshake always has one; an empty value would fail every MAC.
        return exportKeyingMaterial(label: HandshakeAuthentication.exporterLabel, length: HandshakeAuthentication.channelBindingLength) ?? []
    }
}
