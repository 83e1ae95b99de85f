import Reactor
import TensorEncoding

/// How a `WorkerRuntime` finds its server and behaves between sessions.
public struct WorkerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Wait between connection attempts while the server is not up.
    public var retryInterval: Duration
    /// The name the worker gives in its handshake.
    public var name: String
    /// Compute threads (BLAS threads) the worker uses; reported in the handshake.
    public var threads = 1
    /// Exit after one session instead of waiting for the next (continuous mode is the default).
    public var once = false
    /// Units the worker is willing to hold at once.
    public var unitsAhead = 2
    /// Downpour's n_fetch (Dean et al. 2012): in async and ssp sessions the worker takes the server's
    /// weights for every `fetchEvery`-th unit only, and trains the units between on its own weights,
    /// carried on from the unit before (the weights it trained from plus its own update), so it pulls
    /// `fetchEvery` times less. 1, the default, starts every unit from the newest weights. (Downpour's
    /// n_push is the session's `--local-steps`: a unit's steps are pushed as one accumulated update.)
    public var fetchEvery = 1
    /// When, in async and ssp sessions, the worker asks for the weights a fetch unit starts from: after
    /// its push, waiting for them, or while the unit before trains (see ``PullTiming``).
    public var pullTiming = PullTiming.auto
    /// Frames longer than this from the server close the connection.
    public var maxFrameBytes = 64 << 20
    /// Encodings offered to the server besides fp32 (`Capabilities.encodings`): all this worker knows,
    /// deltas of weights and sharded sessions (`ShardMap.capability`), by default; empty makes it an
    /// fp32-only worker without shards, as one written before encodings.
    public var encodings = WorkerConfiguration.defaultEncodings

    /// Every word a worker of this library can offer in `Capabilities.encodings`.
    public static let defaultEncodings = TensorEncoding.wireNames + [TensorEncoding.deltaCapability, ShardMap.capability]
    /// Optimisers offered for local steps besides Nesterov SGD (`Capabilities.local_optimizers`): all this
    /// worker knows by default; empty makes it take Nesterov steps whatever the session's choice.
    public var localOptimizers = WorkerConfiguration.defaultLocalOptimizers

    /// Every word a worker of this library can offer in `Capabilities.local_optimizers`.
    public static let defaultLocalOptimizers = LocalOptimizerKind.allCases.filter { $0 != .nesterov }.map(\.rawValue)
    /// How long a sharded session's shards may take to accept this worker's connections (retried
    /// meanwhile); past it the worker leaves the session and joins again.
    public var shardConnectTimeout: Duration = .seconds(10)
    /// Model families this worker can build (`Capabilities.architectures`); the server refuses a
    /// worker that cannot build the session's.
    public var models = ["mlp", "cnn"]
    /// When set, the worker speaks TLS 1.3 with this client context (the CAs it trusts and, for mutual
    /// TLS, its own certificate), and checks the server's certificate against `tlsServerName` (the host
    /// when nil); nil: plaintext.
    public var tls: TLSContext?
    public var tlsServerName: String?
    /// Faults to inject (none by default).
    public var faults = FaultInjection()
    /// When set, the worker answers the server's challenge with it and accepts only a server that
    /// proves it holds the same token; nil joins only servers that ask for no token.
    public var token: AuthenticationToken?

    public init(host: String, port: Int = 8888, retryInterval: Duration = .seconds(5), name: String) {
        self.host = host
        self.port = port
        self.retryInterval = retryInterval
        self.name = name
    }
}
