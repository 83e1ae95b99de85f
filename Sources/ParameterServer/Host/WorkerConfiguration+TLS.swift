import Reactor

extension WorkerConfiguration {
    /// Makes the worker speak TLS 1.3.
    /// - Parameters:
    ///   - trustedCAPath: the CA (PEM) the server's certificate must come from; nil: the system's CAs.
    ///   - certificatePath, privateKeyPath: this worker's certificate and key, for mutual TLS.
    ///   - serverName: the name the server's certificate must carry; nil: the host connected to.
    /// - Throws: ``SettingsError`` saying which file is wrong and why.
    public mutating func enableTLS(
        trustedCAPath: String?, certificatePath: String? = nil, privateKeyPath: String? = nil, serverName: String? = nil
    ) throws(SettingsError) {
        do {
            tls = try TLSContext.client(trustedCAPath: trustedCAPath, certificatePath: certificatePath, privateKeyPath: privateKeyPath)
        } catch {
            throw SettingsError("TLS: \(error.message)")
        }
        tlsServerName = serverName
    }
}
