import ArgumentParser
import Learning
import ModelCatalog
import ParameterServer

/// `ps-server`'s flags, turned into the library's `ServerSettings`.
struct ServerOptions: ParsableArguments {
    // MARK: Network

    @Option(help: "Address to listen on. Anything but loopback exposes training to the network and needs a token (--token-file or DOWNPOUR_TOKEN) or --insecure.")
    var host = "127.0.0.1"

    @Flag(help: "Allow --host to be an address other than loopback without a token, so that workers are not authenticated.")
    var insecure = false

    // MARK: Authentication

    @Option(help: ArgumentHelp(
        "Read the token every worker must prove it holds from this file (a trailing newline is ignored; keep it chmod 600). Without --token-file or --token, the environment variable DOWNPOUR_TOKEN is used if set.",
        valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp(AuthenticationToken.flagHelp, valueName: "secret"))
    var token: String?

    // MARK: TLS

    @Option(help: ArgumentHelp("Speak TLS 1.3 on every connection with this certificate chain (PEM); with --tls-key.", valueName: "path"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-cert.", valueName: "path"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("Mutual TLS: workers must present a certificate signed by this CA (PEM).", valueName: "path"))
    var tlsClientCa: String?

    @Option(help: "Port to listen on (0 picks a free port, printed at start-up).")
    var port = 8888

    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics on the server's own event loop (0 picks a free port, printed at start-up; off by default).")
    var metricsPort: Int?

    // MARK: Session

    @Option(help: "Training mode: async, sync or ssp.")
    var mode: TrainingMode = .async

    @Option(help: "Workers to wait for before training starts.")
    var workers = 2

    @Option(help: "Passes over the training set.")
    var epochs = 5

    // Why 32 x 16 by default: ServerSettings.defaultLocalSteps.
    @Option(help: "Training samples per local step. Default 32 with local steps; 64 (ps-train's) with --local-steps 1, and with --uncompressed whatever --local-steps.")
    var batchSize: Int?

    @Option(help: "Local steps per push (H): 1 sends gradients; more sends model deltas (local SGD, the outer step on the server). Default 16; 1 with --uncompressed.")
    var localSteps: Int?

    @Flag(help: "The exchange before encodings, for comparison: every unit pulls and pushes the whole model in fp32 (--local-steps 1 --push-encoding fp32 --pull-encoding fp32 unless given). About 51 KB cross the server's link per sample of the default MLP.")
    var uncompressed = false

    @Option(help: "Staleness policy in async mode: none (plain async SGD), inverse (learning rate / staleness), bound (drop updates staler than --max-staleness) or scaled (updates staler than the workers present + 1 applied at (workers + 2) / (staleness + 1) of their size). Default: scaled with local steps, none without.")
    var stalenessPolicy: StalenessPolicy?

    @Option(help: "K: the bound for --staleness-policy bound, and the clock lead allowed in ssp mode.")
    var maxStaleness = 4

    @Option(help: "Work units a worker may hold at once (async and ssp), so it never waits on a round trip.")
    var unitsAhead = 2

    // MARK: Model and optimiser

    @Option(help: ArgumentHelp("The model: a registered family, with its options after a colon: \(ModelCatalog.listing).", valueName: "name[:options]"))
    var model = "mlp"

    @Option(help: "Hidden layer widths of the MLP, comma-separated (default 512; 128 for the 784-128-10 comparisons); the same as --model mlp:WIDTHS.")
    var hidden: String?

    // Adam's per-parameter step sizes tolerate stale gradients well: with 2 async workers it reached
    // 98.0% in 5 epochs where momentum SGD stopped near 97.5%. Sync rounds are fresh large batches,
    // where the single-process recipe (momentum 0.9, lr 0.05) does best.
    @Option(help: "Optimiser for pushed updates: sgd, momentum, nesterov, adam or delayed-nesterov. With --local-steps > 1 it is the outer optimiser, applied to each delta as a pseudo-gradient (DiLoCo). Default: momentum in sync mode, adam in async and ssp; with local steps, nesterov in sync mode (sgd with --momentum 0 or --workers 1) and delayed-nesterov (each delta at --lr x max(1, sqrt(N / 4)) / N with N workers present, momentum once per N deltas) in async and ssp.")
    var optimizer: OptimizerKind?

    @Option(help: "Peak learning rate (default: adam 0.0005 in async and ssp, 0.001 in sync; otherwise the model family's: 0.05 for the MLP, 0.01 for the CNN; with local steps, the outer rate: 1.5 for delayed-nesterov under the scaled staleness policy, else 1, and 1 with --workers 1; in async and ssp, delayed-nesterov takes it times max(1, sqrt(workers / 4))).")
    var lr: Float?

    // Asynchrony itself acts like momentum (Mitliagkas et al., "Asynchrony begets momentum", 2016), so the
    // explicit momentum that suits one process (0.9) overshoots in async and ssp modes, where 0.5 measured
    // best for 1 to 2 workers. Sync rounds have no staleness and keep 0.9.
    @Option(help: "Momentum for momentum and nesterov (default: with local steps, 0.5 for sync rounds' Nesterov, none with --workers 1 (plain SGD on the delta), and none for delayed-nesterov; with gradients, 0.9 in sync mode and 0.5 in async and ssp, since stale updates add momentum of their own).")
    var momentum: Float?

    @Option(help: "L2 weight decay.")
    var weightDecay: Float = 0

    @Option(help: "Learning-rate schedule over the session's updates: constant, step or cosine.")
    var schedule: ScheduleKind = .cosine

    @Option(help: ArgumentHelp("The optimiser of the workers' local steps when --local-steps > 1: nesterov, or adam (AdamW, for workers that offer it; others take Nesterov steps at the family's rate). Default: the one the model family trains with alone, adam for the CNN and nesterov for the MLP.", valueName: "optimizer"))
    var localOptimizer: LocalOptimizerKind?

    @Option(help: "Learning rate of the workers' local optimiser when --local-steps > 1: with --local-optimizer adam, Adam's (default 0.001); with nesterov, Nesterov's (default: the model family's for batches of 64, below 64 times the square root of --batch-size / 64: 0.035 for the MLP at the default batch of 32 (0.05 at 64), 0.0071 for the CNN (0.01 at 64; it diverges at 0.05 with momentum); also the rate of workers without Adam beside Adam ones).")
    var localLr: Float?

    @Option(help: "Decoupled weight decay of local Adam (default: the model family's with Adam alone: 0.05 for the CNN, 0 otherwise).")
    var localWeightDecay: Float?

    // Measured (async, 4 workers, H = 16 and 32, MLP-512, 5 epochs): without inner momentum local SGD
    // stalled near 95.5% whatever the outer optimiser; with Nesterov 0.9 kept across units it reached 97.7%.
    @Option(help: "Nesterov momentum of the workers' local Nesterov steps when --local-steps > 1 (not Adam's); each worker keeps its velocity from unit to unit.")
    var localMomentum: Float = 0.9

    @Option(help: ArgumentHelp("How workers push their updates: fp32, fp16, bf16, q8[:BLOCK] (8 bits per value, a scale per block), sign[:BLOCK] (1 bit per value, a scale per block) or topk:FRACTION (the largest values, with their indices); lossy ones keep the rest as an error-feedback residual on the worker. Workers that do not offer it push fp32. Default sign; fp32 with --uncompressed.", valueName: "encoding"))
    var pushEncoding: String?

    @Option(help: ArgumentHelp("How weights are sent to workers: fp32, fp16, bf16 or q8[:BLOCK]; encoded once per version for every puller. Workers that do not offer it get fp32. Default q8; fp32 with --uncompressed.", valueName: "encoding"))
    var pullEncoding: String?

    @Option(help: ArgumentHelp("How workers that offer deltas are sent what changed since the weights they hold: sign[:BLOCK], q8[:BLOCK], topk:FRACTION, fp16 or bf16, encoded once per version for every puller, with whole weights only to a worker that holds none or is far behind; or none, whole weights every time. Workers that do not offer deltas get whole weights. Default sign:256 (with --push-encoding topk:F, topk at twice F); none with --uncompressed.", valueName: "encoding"))
    var pullDeltaEncoding: String?

    @Option(help: "Schedule of the local learning rate over the session's work units: constant, step or cosine (sent with each unit).")
    var localSchedule: ScheduleKind = .constant

    @Option(help: "Seed for the initial weights and each epoch's sample order.")
    var seed: UInt64 = 42

    // MARK: Data

    @Option(help: "The data directory, for model families that load data (MNIST's default: Data/mnist, found from the executable, the source or the current directory).")
    var data: String?

    @Option(help: "Train on the first N training images only (workers need at least N).")
    var trainSamples: Int?

    @Option(help: "Evaluate on the first N test images only.")
    var testSamples: Int?

    @Option(help: "OpenBLAS threads for evaluation.")
    var threads = 1

    @Option(help: "Write a self-contained HTML run report (charts of accuracy, loss, updates/s, staleness, workers) to this file at the end.")
    var report: String?

    // MARK: Checkpoints

    @Option(help: ArgumentHelp("Write a checkpoint to this file (replaced atomically) every --checkpoint-every updates or --checkpoint-interval seconds, at the session's end and on Ctrl-C.", valueName: "path"))
    var checkpoint: String?

    @Option(help: "Updates between checkpoints.")
    var checkpointEvery = 500

    @Option(help: "Seconds between checkpoints while training (at most; sooner when --checkpoint-every comes first).")
    var checkpointInterval: Double = 30

    @Option(help: ArgumentHelp("Carry on the session saved in this checkpoint, after a crash or Ctrl-C. Its settings (mode, workers, epochs, model, optimiser, seed, data) replace the command line's; checkpoints go on to --checkpoint, or to this file.", valueName: "path"))
    var resume: String?

    // MARK: Limits

    @Option(help: "Largest frame accepted, in bytes; a longer one closes that connection.")
    var maxFrameBytes = 64 << 20

    @Option(help: "Connections accepted at once; more are refused with a message.")
    var maxConnections = 1024

    @Option(help: "Unsent bytes allowed per connection (at least three weight frames); a peer that stops reading past this is disconnected.")
    var maxWriteQueueBytes = 256 << 20

    @Option(help: "Seconds a connection has to complete its handshake: send its Hello and, when the server has a token, answer the challenge.")
    var handshakeTimeout: Double = 10

    @Option(help: "Seconds of silence after which a worker is dropped and its units requeued.")
    var heartbeatTimeout: Double = 10

    @Option(help: "Seconds between heartbeats, both ways: workers are asked to send one this often, and the server sends one to each worker that asks (a worker takes a server silent for twice this long for dead).")
    var heartbeatInterval: Double = 1

    @Option(help: "Also evaluate on the test set every N updates, for a finer time to accuracy (default: at epoch ends only). These run at idle priority while training goes on, so on a machine shared with workers their lines may come late; each reports the moment its snapshot was taken.")
    var evalEvery: Int?

    @Option(help: ArgumentHelp("Also evaluate each time this many more seconds of training have passed (with or without --eval-every), for a time to accuracy on the same axis as ps-train's --eval-interval whatever the size of an update.", valueName: "seconds"))
    var evalInterval: Double?

    @Option(help: "The test accuracy whose first reaching the summary reports as seconds_to_target (training seconds).")
    var targetAccuracy = 0.975

    @Option(help: "Least seconds a work unit's lease lasts; it expires after the larger of this and 3 x the 99th percentile of recent unit times, and the unit is requeued.")
    var leaseFloor: Double = 5

    @Flag(help: "Do not hand idle workers backup copies of the slowest outstanding units at the session's tail.")
    var noBackups = false

    @Option(help: "Hold the parameters in this many ps-shard processes (ps-shard HOST [PORT]), each a contiguous range, instead of in the server: the server waits for them, keeps the session (units, leases, evaluation, checkpoints) and workers exchange slices with every shard. 0: the server holds every parameter. Default 0, and with --resume as many as the checkpoint's session had.")
    var shards: Int?

    @Option(help: "Seconds between snapshots of a sharded session's ranges; when a shard is lost the session goes back to the last one (work lost is at most this).")
    var snapshotEvery: Double = 30

    /// The settings these flags give.
    func settings() throws -> ServerSettings {
        var settings = ServerSettings()
        (settings.host, settings.port, settings.insecure, settings.metricsPort) = (host, port, insecure, metricsPort)
        (settings.token, settings.tokenFile) = (token, tokenFile)
        (settings.tlsCertificate, settings.tlsKey, settings.tlsClientCA) = (tlsCert, tlsKey, tlsClientCa)
        (settings.mode, settings.workers, settings.epochs, settings.batchSize) = (mode, workers, epochs, batchSize)
        (settings.localSteps, settings.uncompressed, settings.unitsAhead) = (localSteps, uncompressed, unitsAhead)
        (settings.stalenessPolicy, settings.maxStaleness) = (stalenessPolicy, maxStaleness)
        do {
            settings.model = try MLPFamily.model(model, hidden: hidden)
        } catch {
            throw ValidationError(error.description)
        }
        (settings.optimizer, settings.learningRate, settings.momentum) = (optimizer, lr, momentum)
        (settings.weightDecay, settings.schedule) = (weightDecay, schedule)
        (settings.localLearningRate, settings.localMomentum, settings.localSchedule) = (localLr, localMomentum, localSchedule)
        (settings.localOptimizer, settings.localWeightDecay) = (localOptimizer, localWeightDecay)
        (settings.pushEncoding, settings.pullEncoding, settings.seed) = (pushEncoding, pullEncoding, seed)
        settings.pullDeltaEncoding = pullDeltaEncoding
        (settings.data, settings.trainSamples, settings.testSamples, settings.threads) = (data, trainSamples, testSamples, threads)
        (settings.evaluateEvery, settings.evaluateInterval) = (evalEvery, evalInterval)
        (settings.targetAccuracy, settings.report) = (targetAccuracy, report)
        (settings.checkpoint, settings.checkpointEvery, settings.checkpointInterval, settings.resume) =
            (checkpoint, checkpointEvery, checkpointInterval, resume)
        (settings.maxFrameBytes, settings.maxConnections, settings.maxWriteQueueBytes) = (maxFrameBytes, maxConnections, maxWriteQueueBytes)
        (settings.handshakeTimeout, settings.heartbeatTimeout, settings.heartbeatInterval) =
            (handshakeTimeout, heartbeatTimeout, heartbeatInterval)
        (settings.leaseFloor, settings.backups) = (leaseFloor, !noBackups)
        (settings.shards, settings.snapshotInterval) = (shards, snapshotEvery)
        return settings
    }
}

extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension LocalOptimizerKind: ExpressibleByArgument {}
extension TrainingMode: ExpressibleByArgument {}
extension StalenessPolicy: ExpressibleByArgument {}
