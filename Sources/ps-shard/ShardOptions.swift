import ArgumentParser
import FoundationEssentials
import Glibc
import ParameterServer

/// `ps-shard`'s arguments and flags, turned into the library's `ShardConfiguration`.
struct ShardOptions: ParsableArguments {
    @Argument(help: "The server's host name or address.")
    var host: String

    @Argument(help: "The server's port.")
    var port: Int = 8888

    @Argument(help: "Seconds between connection attempts while the server is not up.")
    var retryInterval: Double = 5

    @Option(help: "The name this shard gives the server, in its logs and report (default: shard-PID@HOSTNAME).")
    var name: String?

    @Option(help: ArgumentHelp("Where to listen for workers, as HOST:PORT ([ADDRESS]:PORT for IPv6); port 0 picks a free one, printed at start-up (default: 0.0.0.0:0).", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("The address to listen for workers on (default: 0.0.0.0).", valueName: "host"))
    var listenHost: String?

    @Option(help: ArgumentHelp("The port to listen for workers on; 0 picks a free one (default: 0).", valueName: "port"))
    var listenPort: Int?

    @Option(help: ArgumentHelp("The host workers dial to reach this shard (default: the address the server sees this shard connect from).", valueName: "host"))
    var advertise = ""

    @Flag(help: "Exit after one session instead of waiting for the next.")
    var once = false

    @Option(help: ArgumentHelp(
        "Read the server's token from this file (a trailing newline is ignored; keep it chmod 600). Without --token-file or --token, the environment variable DOWNPOUR_TOKEN is used if set.",
        valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp(AuthenticationToken.flagHelp, valueName: "secret"))
    var token: String?

    @Flag(help: "Speak TLS 1.3 to the server, trusting the system's CAs (implied by --tls-ca).")
    var tls = false

    @Option(help: ArgumentHelp("Speak TLS 1.3 to the server and trust only this CA (PEM) for its certificate, whose name must match HOST (or --tls-server-name).", valueName: "path"))
    var tlsCa: String?

    @Option(help: ArgumentHelp("The name the server's certificate must carry, when it is not HOST (an address, say).", valueName: "name"))
    var tlsServerName: String?

    @Option(help: ArgumentHelp("Mutual TLS to the server: this shard's client certificate chain (PEM), with --tls-client-key.", valueName: "path"))
    var tlsClientCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-client-cert.", valueName: "path"))
    var tlsClientKey: String?

    @Option(help: ArgumentHelp("Speak TLS 1.3 to workers with this certificate chain (PEM); with --tls-key.", valueName: "path"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-cert.", valueName: "path"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("Mutual TLS with workers: they must present a certificate signed by this CA (PEM); needs --tls-cert.", valueName: "path"))
    var tlsWorkerCa: String?

    func validate() throws {
        guard !host.isEmpty else { throw ValidationError("HOST must not be empty") }
        guard (1...65535).contains(port) else { throw ValidationError("PORT must be 1...65535, got \(port)") }
        guard retryInterval > 0, retryInterval.isFinite else { throw ValidationError("RETRY_INTERVAL must be a positive number of seconds") }
        _ = try listenAddress()
        _ = try resolvedToken()
        guard (tlsClientCert == nil) == (tlsClientKey == nil) else { throw ValidationError("--tls-client-cert and --tls-client-key go together") }
        guard usesTLS || (tlsClientCert == nil && tlsServerName == nil) else {
            throw ValidationError("--tls-client-cert and --tls-server-name need TLS to the server: add --tls or --tls-ca")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard tlsWorkerCa == nil || tlsCert != nil else { throw ValidationError("--tls-worker-ca needs --tls-cert and --tls-key") }
    }

    /// Whether the connection to the server speaks TLS.
    var usesTLS: Bool { tls || tlsCa != nil }

    /// The address to listen on, from --listen or --listen-host and --listen-port.
    func listenAddress() throws -> (host: String, port: Int) {
        var address = (host: "0.0.0.0", port: 0)
        if let listen {
            guard listenHost == nil, listenPort == nil else {
                throw ValidationError("--listen is --listen-host and --listen-port in one: give one or the other")
            }
            guard let parsed = Self.parse(listen) else {
                throw ValidationError("--listen \(listen): expected HOST:PORT, such as 0.0.0.0:9001 or [::]:9001")
            }
            address = parsed
        }
        if let listenHost { address.host = listenHost }
        if let listenPort { address.port = listenPort }
        guard !address.host.isEmpty else { throw ValidationError("the listening host must not be empty") }
        guard (0...65535).contains(address.port) else { throw ValidationError("the listening port must be 0...65535, got \(address.port)") }
        return address
    }

    /// `HOST:PORT`, or `[ADDRESS]:PORT` for an IPv6 address.
    static func parse(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { return nil }
            host = host.dropFirst().dropLast()
        }
        return (String(host), port)
    }

    /// The token from --token, --token-file or the environment, if any.
    func resolvedToken() throws -> AuthenticationToken.Resolution? {
        do {
            return try AuthenticationToken.resolve(flag: token, file: tokenFile)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The shard's configuration from these flags, and the token's source for the log.
    func configuration() throws -> (ShardConfiguration, AuthenticationToken.Resolution?) {
        let shardName = name ?? "shard-\(getpid())@\(ProcessInfo.processInfo.hostName)"
        var configuration = ShardConfiguration(
            host: host, port: port, retryInterval: .milliseconds(Int(retryInterval * 1000)), name: shardName)
        (configuration.listenHost, configuration.listenPort) = try listenAddress()
        configuration.advertisedHost = advertise
        configuration.once = once
        let token = try resolvedToken()
        configuration.token = token?.token
        do {
            if usesTLS {
                try configuration.enableTLS(trustedCAPath: tlsCa, certificatePath: tlsClientCert, privateKeyPath: tlsClientKey,
                                            serverName: tlsServerName)
            }
            if let tlsCert, let tlsKey {
                try configuration.enableListenerTLS(certificatePath: tlsCert, privateKeyPath: tlsKey, clientCAPath: tlsWorkerCa)
            }
        } catch {
            throw ValidationError(error.description)
        }
        return (configuration, token)
    }
}
