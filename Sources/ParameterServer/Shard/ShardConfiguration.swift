import Reactor

/// How a `ShardRuntime` finds its server, where it listens for workers, and its limits.
///
/// ```swift
/// var configuration = ShardConfiguration(host: "10.0.0.1", port: 8888, name: "shard-1")
/// configuration.listenPort = 9001
/// configuration.advertisedHost = "10.0.0.7"
/// ```
public struct ShardConfiguration: Sendable {
    /// The server's host and port.
    public var host: String
    public var port: Int
    /// Wait between connection attempts while the server is not up, and before reconnecting after a
    /// connection that ended without a session.
    public var retryInterval: Duration
    /// The name the shard gives the server (`ShardHello.shard_name`), also the name its token's MAC covers.
    public var name: String
    /// Where the shard listens for workers: 0.0.0.0 and an ephemeral port by default.
    public var listenHost = "0.0.0.0"
    public var listenPort = 0
    /// The host workers dial (`ShardHello.host`); empty: the address the server sees the shard's
    /// connection come from.
    public var advertisedHost = ""
    /// Exit after one session instead of waiting for the next (continuous mode is the default).
    public var once = false
    /// When set, the shard answers the server's challenge with it; nil: it can join only a server
    /// that asks for no token.
    public var token: AuthenticationToken?
    /// When set, the connection to the server is TLS 1.3 with this client context, the server's
    /// certificate checked against `tlsServerName` (the host when nil); nil: plaintext.
    public var tls: TLSContext?
    public var tlsServerName: String?
    /// When set, workers' connections are TLS 1.3 with this server context; nil: plaintext.
    public var listenerTLS: TLSContext?
    /// How often the shard sends the server a heartbeat.
    public var heartbeatInterval: Duration = .seconds(1)
    /// A server from which nothing arrived for this long is taken for dead (the connection is closed
    /// and the shard reconnects); watched only once the server has sent a heartbeat. Nil: never.
    public var serverSilenceLimit: Duration? = .seconds(10)
    /// A worker must send its `ShardJoin` within this time.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Frames longer than this from the server close the connection: a `ShardAssignment` carries the
    /// range's parameters and optimiser buffers.
    public var maxServerFrameBytes = 1 << 30
    /// Frames longer than this from a joined worker are refused; raised to hold the range's slice in fp32.
    public var maxFrameBytes = 64 << 20
    /// Until a worker has joined, its frames may be at most this long (a ShardJoin is far smaller)...
    public var strangerFrameBytes = 64 << 10
    /// ...and the partly received frames of all such connections at most this much together.
    public var strangerBufferBudget = 16 << 20
    /// Worker connections beyond this are refused with a message.
    public var maxConnections = 1024
    /// A connection whose unsent data passes this is closed; raised to hold three of the range's slices.
    public var maxQueuedWriteBytes = 256 << 20
    /// Slices one worker may have staged at once; more are refused (not fatal) until the server
    /// applies or discards some.
    public var maxStagedSlicesPerWorker = 64

    public init(host: String, port: Int = 8888, retryInterval: Duration = .seconds(5), name: String) {
        self.host = host
        self.port = port
        self.retryInterval = retryInterval
        self.name = name
    }

    /// Speaks TLS 1.3 to the server.
    /// - Parameters:
    ///   - trustedCAPath: the CA (PEM) the server's certificate must come from; nil: the system's CAs.
    ///   - certificatePath, privateKeyPath: this shard's certificate and key, for mutual TLS.
    ///   - serverName: the name the server's certificate must carry; nil: the host connected to.
    /// - Throws: ``SettingsError`` saying which file is wrong and why.
    public mutating func enableTLS(
        trustedCAPath: String?, certificatePath: String? = nil, privateKeyPath: String? = nil, serverName: String? = nil
    ) throws(SettingsError) {
        do {
            tls = try TLSContext.client(trustedCAPath: trustedCAPath, certificatePath: certificatePath, privateKeyPath: privateKeyPath)
        } catch {
            throw SettingsError("TLS to the server: \(error.message)")
        }
        tlsServerName = serverName
    }

    /// Speaks TLS 1.3 to workers.
    /// - Parameters:
    ///   - certificatePath, privateKeyPath: the shard's certificate chain and key (PEM).
    ///   - clientCAPath: when set, workers must present a certificate signed by this CA.
    /// - Throws: ``SettingsError`` saying which file is wrong and why.
    public mutating func enableListenerTLS(certificatePath: String, privateKeyPath: String, clientCAPath: String? = nil) throws(SettingsError) {
        do {
            listenerTLS = try TLSContext.server(certificateChainPath: certificatePath, privateKeyPath: privateKeyPath, clientCAPath: clientCAPath)
        } catch {
            throw SettingsError("TLS for workers: \(error.message)")
        }
    }
}
