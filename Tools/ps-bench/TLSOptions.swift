import ArgumentParser
import Reactor

/// `--tls-cert` and `--tls-key`: the benchmark's server (echo or fleet) speaks TLS 1.3 when both are given.
struct ServerTLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: "The server's certificate chain (PEM): serve TLS 1.3.")
    var certificate: String?

    @Option(name: .customLong("tls-key"), help: "The certificate's private key (PEM, unencrypted).")
    var key: String?

    func validate() throws {
        guard (certificate == nil) == (key == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    /// The server context, or nil for plaintext.
    func context() throws -> TLSContext? {
        guard let certificate, let key else { return nil }
        return try TLSContext.server(certificateChainPath: certificate, privateKeyPath: key)
    }
}

/// `--tls-ca` and `--tls-server-name`: the benchmark's clients speak TLS 1.3 when `--tls-ca` is given.
struct ClientTLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-ca"), help: "The CA certificate(s) (PEM) to verify the server with: connect over TLS 1.3.")
    var caPath: String?

    @Option(name: .customLong("tls-server-name"), help: "The name the server's certificate must carry (default: --host).")
    var serverName: String?

    /// The client context, or nil for plaintext.
    func context() throws -> TLSContext? {
        try caPath.map { try TLSContext.client(trustedCAPath: $0) }
    }

    /// For the summary line: `tls` or `plaintext`.
    var transport: String { caPath == nil ? "plaintext" : "tls" }
}
