import Learning
import Reactor
import TensorEncoding

/// Everything a `ParameterServerRuntime` needs to run one session, apart from the model.
public struct ServerConfiguration: Sendable {
    /// The address to listen on; 127.0.0.1 unless the operator chooses otherwise.
    public var host = "127.0.0.1"
    /// The port to listen on; 0 picks a free one (printed at start-up).
    public var port = 8888
    /// The session's rules.
    public var policy = SessionPolicy(mode: .async)
    public var epochs = 5
    /// Samples per local step.
    public var batchSize = 64
    /// Local steps per push (H).
    public var localSteps = 1
    /// The learning rate workers use for local steps when `localSteps` > 1.
    public var localLearningRate: Float = 0.05
    /// Nesterov momentum of the workers' local steps (its velocity kept across units); 0 is plain SGD.
    public var localMomentum: Float = 0
    /// Workers that offer "adam" take their local steps with this AdamW (the local schedule applies to its
    /// rate); nil, or a worker that does not offer it: Nesterov at `localLearningRate` and `localMomentum`.
    public var localAdam: LocalAdamSettings?
    /// The schedule the local learning rate follows over the session's work units.
    public var localSchedule: ScheduleKind = .constant
    /// Training samples the session draws from (the first N of the training set).
    public var trainSamples = 60_000
    /// Seeds the epochs' permutations and the model's initialisation.
    public var seed: UInt64 = 1
    /// Evaluate on the test set every this many updates as well as at epoch ends (nil: epoch ends only),
    /// for a finer time to accuracy.
    public var evaluateEvery: UInt64?
    /// And once every this many seconds of training (nil: not by time): for comparing runs whose
    /// updates differ in size on one time axis.
    public var evaluateInterval: Double?
    /// The test accuracy whose first reaching the summary reports (`seconds_to_target`).
    public var targetAccuracy = 0.975
    /// The encoding workers push in, when they offer it (else fp32), and the one weights are sent in.
    public var pushEncoding: TensorEncoding = .fp32
    public var pullEncoding: TensorEncoding = .fp32
    /// The encoding of the deltas sent to workers that offer them (see `WeightsChain`); nil sends
    /// every worker whole weights.
    public var deltaEncoding: TensorEncoding?
    /// Frames longer than this from a joined worker are refused (`CODE_FRAME_TOO_LARGE`) before
    /// anything is allocated for them, and the connection closed.
    public var maxFrameBytes = 64 << 20
    /// Until a peer has joined (and authenticated, with a token), its frames may be at most this long:
    /// a Hello or a ChallengeResponse is far smaller.
    public var strangerFrameBytes = 64 << 10
    /// The partly received frames of all peers that have not joined may hold this much together, so
    /// that strangers cannot make the server hold memory (1,024 of them would otherwise hold 64 MiB).
    public var strangerBufferBudget = 16 << 20
    /// Connections beyond this are refused with a message.
    public var maxConnections = 1024
    /// A connection must send its Hello within this time.
    public var handshakeTimeout: Duration = .seconds(10)
    /// How often workers are asked to send a heartbeat.
    public var heartbeatInterval: Duration = .seconds(1)
    /// A connection whose unsent data passes this is closed: a peer that does not read cannot make
    /// the server grow without bound.
    public var maxQueuedWriteBytes = 256 << 20
    /// At the session's end, connections still flushing after this long are closed at once.
    public var drainTimeout: Duration = .seconds(5)
    /// Identifies this run in logs and in the handshake.
    public var sessionID = ""
    /// Where and how often to write checkpoints; nil writes none.
    public var checkpoint: CheckpointSchedule?
    /// When set, every connection is TLS 1.3 with this server context (certificate, key and, for mutual
    /// TLS, the CA workers' certificates must come from); nil: plaintext.
    public var tls: TLSContext?
    /// When set, every worker must prove it holds this token before it is welcomed, and the server
    /// proves it holds it too (see `HandshakeAuthentication`); nil keeps the unauthenticated handshake.
    public var token: AuthenticationToken?
    /// The number of `ps-shard` processes that hold the parameters; 0: the server holds them.
    public var shards = 0
    /// How often a sharded session takes a snapshot of every shard's range, to go back to if one is lost.
    public var snapshotInterval: Duration = .seconds(30)
    /// The session's recipe, which shards are assigned with (`ShardAssignment.session_settings`).
    public var recipe: SessionRecipe?

    public init() {}

    /// The settings as rows for a run report.
    public var reportRows: [(String, String)] {
        var rows: [(String, String)] = [
            ("session", sessionID), ("listen", "\(host):\(port)"), ("mode", policy.mode.rawValue),
            ("workers to start", "\(policy.workersToStart)"), ("epochs", "\(epochs)"),
            ("training samples", "\(trainSamples)"), ("batch size", "\(batchSize)"), ("local steps", "\(localSteps)"),
        ]
        if localSteps > 1 {
            let nesterov = "Nesterov momentum \(localMomentum) at lr \(localLearningRate)"
            rows.append(("local optimiser", localAdam.map {
                "Adam at lr \($0.learningRate), weight decay \($0.weightDecay) (workers without Adam: \(nesterov))" } ?? nesterov))
        }
        if policy.mode == .async { rows.append(("staleness policy", policy.stalenessPolicy.rawValue)) }
        if policy.mode == .ssp || policy.stalenessPolicy == .bound { rows.append(("max staleness", "\(policy.maxStaleness)")) }
        rows += [
            ("units ahead", "\(policy.unitsAhead)"), ("heartbeat timeout", "\(policy.heartbeatTimeout)"),
            ("seed", "\(seed)"), ("max frame bytes", "\(maxFrameBytes)"), ("max connections", "\(maxConnections)"),
        ]
        if shards > 0 { rows.append(("shards", "\(shards), a snapshot every \(snapshotInterval)")) }
        return rows
    }

    /// Samples behind one push.
    public var samplesPerUnit: Int { batchSize * localSteps }
}
