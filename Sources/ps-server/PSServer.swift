import ArgumentParser
import Foundation
import Learning
import ParameterServer
import Reactor
import TensorEncoding

/// `ps-server`: runs one training session. It waits for workers, trains, evaluates, tells the
/// workers the session is over, prints a summary and exits. Run it again for the next session.
@main
struct PSServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-server",
        abstract: "Run one parameter-server training session on MNIST.",
        discussion: """
            Waits until --workers workers are connected, trains for --epochs epochs, evaluates on the test \
            set after each epoch, tells the workers the session is over and exits 0. Workers that join \
            later get the current weights and work at once; workers that leave cost only their unfinished \
            work units, which go back to the queue. The last line printed is a machine-readable summary of \
            key=value pairs (mode=, workers=, epochs=, updates=, samples=, seconds=, test_accuracy=, \
            staleness_mean=, ...).

            Modes:
              async  every update is applied as it arrives; --staleness-policy decides what a stale one costs
              sync   rounds: one update from every active worker, averaged, applied once
              ssp    stale synchronous parallel: no worker runs more than --max-staleness clocks ahead

            Example: ps-server --mode async --workers 2 --epochs 5
            """)

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

    @Option(help: "Training samples per local step.")
    var batchSize = 64

    // Measured with 4 workers, MLP-512, 5 epochs (BENCHMARKS.md): H = 8 with sign pushes and q8 weights
    // reached 97.8% (async) and 98.2% (sync) at 930 bytes per sample, where fp32 at H = 1 moves 50,980.
    @Option(help: "Local steps per push (H): 1 sends gradients; more sends model deltas (local SGD, the outer step on the server). Default 8; 1 with --uncompressed.")
    var localSteps: Int?

    @Flag(help: "The exchange before encodings, for comparison: every unit pulls and pushes the whole model in fp32 (--local-steps 1 --push-encoding fp32 --pull-encoding fp32 unless given). About 51 KB cross the server's link per sample of the default MLP.")
    var uncompressed = false

    @Option(help: "Staleness policy in async mode: none (plain async SGD), inverse (learning rate / staleness) or bound (drop updates staler than --max-staleness).")
    var stalenessPolicy: StalenessPolicy = .none

    @Option(help: "K: the bound for --staleness-policy bound, and the clock lead allowed in ssp mode.")
    var maxStaleness = 4

    @Option(help: "Work units a worker may hold at once (async and ssp), so it never waits on a round trip.")
    var unitsAhead = 2

    // MARK: Model and optimiser

    @Option(help: "The model: mlp or cnn.")
    var model: ModelKind = .mlp

    @Option(help: "Hidden layer widths of the MLP, comma-separated (default 512; 128 for the 784-128-10 comparisons).")
    var hidden: String?

    // Adam's per-parameter step sizes tolerate stale gradients well: with 2 async workers it reached
    // 98.0% in 5 epochs where momentum SGD stopped near 97.5%. Sync rounds are fresh large batches,
    // where the single-process recipe (momentum 0.9, lr 0.05) does best.
    @Option(help: "Optimiser for pushed updates: sgd, momentum, nesterov, adam or delayed-nesterov. With --local-steps > 1 it is the outer optimiser, applied to each delta as a pseudo-gradient (DiLoCo). Default: momentum in sync mode, adam in async and ssp; with local steps, nesterov in sync mode and delayed-nesterov (each delta at --lr / the workers present, momentum once per that many deltas) in async and ssp.")
    var optimizer: OptimizerKind?

    @Option(help: "Peak learning rate (default: adam 0.0005 in async and ssp, 0.001 in sync; otherwise 0.05 for the MLP, 0.01 for the CNN; with local steps, the outer rate 0.7).")
    var lr: Float?

    // Asynchrony itself acts like momentum (Mitliagkas et al., "Asynchrony begets momentum", 2016), so the
    // explicit momentum that suits one process (0.9) overshoots in async and ssp modes, where 0.5 measured
    // best for 1 to 2 workers. Sync rounds have no staleness and keep 0.9.
    @Option(help: "Momentum for momentum and nesterov (default: 0.9 in sync mode; 0.5 in async and ssp, since stale updates add momentum of their own).")
    var momentum: Float?

    @Option(help: "L2 weight decay.")
    var weightDecay: Float = 0

    @Option(help: "Learning-rate schedule over the session's updates: constant, step or cosine.")
    var schedule: ScheduleKind = .cosine

    @Option(help: "Learning rate of the workers' local steps when --local-steps > 1 (default 0.05 for the MLP, 0.01 for the CNN, which diverges at 0.05 with momentum).")
    var localLr: Float?

    // Measured (async, 4 workers, H = 16 and 32, MLP-512, 5 epochs): without inner momentum local SGD
    // stalled near 95.5% whatever the outer optimiser; with Nesterov 0.9 kept across units it reached 97.7%.
    @Option(help: "Nesterov momentum of the workers' local steps when --local-steps > 1; each worker keeps its velocity from unit to unit.")
    var localMomentum: Float = 0.9

    @Option(help: ArgumentHelp("How workers push their updates: fp32, fp16, bf16, q8[:BLOCK] (8 bits per value, a scale per block), sign[:BLOCK] (1 bit per value, a scale per block) or topk:FRACTION (the largest values, with their indices); lossy ones keep the rest as an error-feedback residual on the worker. Workers that do not offer it push fp32. Default sign; fp32 with --uncompressed.", valueName: "encoding"))
    var pushEncoding: String?

    @Option(help: ArgumentHelp("How weights are sent to workers: fp32, fp16, bf16 or q8[:BLOCK]; encoded once per version for every puller. Workers that do not offer it get fp32. Default q8; fp32 with --uncompressed.", valueName: "encoding"))
    var pullEncoding: String?

    /// H, the local steps per push.
    private var steps: Int { localSteps ?? (uncompressed ? 1 : 8) }

    @Option(help: "Schedule of the local learning rate over the session's work units: constant, step or cosine (sent with each unit).")
    var localSchedule: ScheduleKind = .constant

    @Option(help: "Seed for the initial weights and each epoch's sample order.")
    var seed: UInt64 = 42

    // MARK: Data

    @Option(help: "MNIST directory (default: Data/mnist, found from the executable, the source or the current directory).")
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

    @Option(help: "Also evaluate on the test set every N updates, for a finer time to accuracy (default: at epoch ends only).")
    var evalEvery: Int?

    @Option(help: "The test accuracy whose first reaching the summary reports as seconds_to_target (training seconds).")
    var targetAccuracy = 0.975

    @Option(help: "Least seconds a work unit's lease lasts; it expires after the larger of this and 3 x the 99th percentile of recent unit times, and the unit is requeued.")
    var leaseFloor: Double = 5

    @Flag(help: "Do not hand idle workers backup copies of the slowest outstanding units at the session's tail.")
    var noBackups = false

    func validate() throws {
        // Without a token, anyone who can reach the port can join and push updates.
        let token = try resolvedToken()
        guard Self.isLoopback(host) || insecure || token != nil else {
            throw ValidationError("--host \(host) is not a loopback address: anyone who can reach it could join the "
                + "session and push updates; give the server a token workers must prove they hold (--token-file PATH "
                + "or \(AuthenticationToken.environmentVariable)), or pass --insecure to accept that")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0...65535") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard steps >= 1 else { throw ValidationError("--local-steps must be at least 1") }
        guard maxStaleness >= 0 else { throw ValidationError("--max-staleness must not be negative") }
        guard unitsAhead >= 1 else { throw ValidationError("--units-ahead must be at least 1") }
        guard (lr ?? 1) > 0, (lr ?? 1).isFinite else { throw ValidationError("--lr must be a positive number") }
        guard (localLr ?? 1) > 0, (localLr ?? 1).isFinite else { throw ValidationError("--local-lr must be a positive number") }
        guard (0..<1).contains(localMomentum) else { throw ValidationError("--local-momentum must be in 0..<1") }
        guard (0..<1).contains(momentum ?? 0) else { throw ValidationError("--momentum must be in 0..<1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard maxFrameBytes >= 1024 else { throw ValidationError("--max-frame-bytes must be at least 1024") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard maxWriteQueueBytes >= 1 << 20 else { throw ValidationError("--max-write-queue-bytes must be at least 1 MiB (1048576)") }
        guard handshakeTimeout > 0, heartbeatTimeout > 0 else { throw ValidationError("timeouts must be positive") }
        guard heartbeatInterval >= 0.1, heartbeatInterval < heartbeatTimeout else {
            throw ValidationError("--heartbeat-interval must be at least 0.1 s and below --heartbeat-timeout")
        }
        if let evalEvery, evalEvery < 1 { throw ValidationError("--eval-every must be at least 1") }
        guard (0...1).contains(targetAccuracy) else { throw ValidationError("--target-accuracy must be in 0...1") }
        guard leaseFloor > 0, leaseFloor.isFinite else { throw ValidationError("--lease-floor must be a positive number of seconds") }
        if let trainSamples, trainSamples < 1 { throw ValidationError("--train-samples must be at least 1") }
        if let testSamples, testSamples < 1 { throw ValidationError("--test-samples must be at least 1") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1") }
        guard checkpointInterval > 0, checkpointInterval.isFinite else { throw ValidationError("--checkpoint-interval must be positive") }
        if let checkpoint {
            let directory = URL(fileURLWithPath: checkpoint).deletingLastPathComponent().path
            guard FileManager.default.isWritableFile(atPath: directory) else {
                throw ValidationError("--checkpoint: cannot write to the directory \(directory)")
            }
        }
        if let resume, !FileManager.default.fileExists(atPath: resume) {
            throw ValidationError("--resume: no checkpoint at \(resume)")
        }
        if let report {
            let directory = URL(fileURLWithPath: report).deletingLastPathComponent().path
            guard FileManager.default.isWritableFile(atPath: directory) else {
                throw ValidationError("--report: cannot write to the directory \(directory)")
            }
        }
        if hidden != nil {
            guard model == .mlp else { throw ValidationError("--hidden applies to --model mlp only") }
            _ = try hiddenWidths()
        }
    }

    func run() throws {
        unblockTerminationSignals()
        if let warning = FileDescriptorLimit.raise(forConnections: maxConnections) { print(warning) }
        BLAS.configure(threads: threads)
        let token = try resolvedToken()
        for warning in token?.warnings ?? [] { print("WARNING: \(warning)") }
        if let token {
            print("authentication: workers must prove they hold the token from \(token.source)")
        } else if !Self.isLoopback(host) {
            print("WARNING: listening on \(host) without authentication (--insecure): anyone who can reach this port can join and push updates")
        }
        let resumed = try resume.map(Self.loadCheckpoint)
        if let resumed, resumed.ledger.finishedEpochs == resumed.recipe.epochs {
            let accuracy = resumed.epochs.last.map { SummaryLine.format($0.testAccuracy * 100, digits: 2) + "%" } ?? "unknown"
            print("the session in \(resume!) finished already (test accuracy \(accuracy), version \(resumed.version)); "
                + "start a new session without --resume")
            return
        }
        print("BLAS: OpenBLAS \(BLAS.kernelName) kernels, \(threads) thread(s)")
        let directory = try MNIST.dataDirectory(override: data)
        let loaded = try MNIST.load(directory: directory)
        let recipe = try resumed?.recipe ?? recipeFromFlags(trainAvailable: loaded.train.count, testAvailable: loaded.test.count)
        guard recipe.trainSamples <= loaded.train.count, recipe.testSamples <= loaded.test.count else {
            throw StartupError("the checkpoint's session trains on \(recipe.trainSamples) and tests on \(recipe.testSamples) "
                + "images, but \(directory) has \(loaded.train.count) and \(loaded.test.count)")
        }
        let test = loaded.test.prefix(recipe.testSamples)

        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        recipe.apply(to: &configuration)
        let parameterBytes = recipe.model.parameterCount * 4
        configuration.maxFrameBytes = max(maxFrameBytes, parameterBytes + 4096)
        configuration.maxConnections = maxConnections
        // A queue must hold a few whole weight frames, or ordinary pulls would trip it.
        configuration.maxQueuedWriteBytes = max(maxWriteQueueBytes, 3 * (parameterBytes + 4096))
        configuration.handshakeTimeout = .milliseconds(Int(handshakeTimeout * 1000))
        configuration.heartbeatInterval = .milliseconds(Int(heartbeatInterval * 1000))
        // Operational settings, like the limits: the command line's, also for a resumed session.
        configuration.policy.leaseFloor = .milliseconds(Int(leaseFloor * 1000))
        configuration.policy.backups = !noBackups
        configuration.evaluateEvery = evalEvery.map { UInt64($0) }
        configuration.targetAccuracy = targetAccuracy
        let (push, pull) = (recipe.pushEncoding, recipe.pullEncoding)
        configuration.pushEncoding = try encoding(push, flag: "--push-encoding", parameters: recipe.model.parameterCount)
        configuration.pullEncoding = try encoding(pull, flag: "--pull-encoding", parameters: recipe.model.parameterCount)
        switch configuration.pullEncoding {
        case .topK, .sign: throw StartupError("--pull-encoding \(pull): weights are sent whole, in fp32, fp16, bf16 or q8")
        default: break
        }
        if let path = checkpoint ?? resume {
            configuration.checkpoint = CheckpointSchedule(
                path: path, everyUpdates: checkpointEvery, interval: .milliseconds(Int(checkpointInterval * 1000)), recipe: recipe)
        }
        configuration.token = token?.token

        let (optimizer, schedule) = recipe.makeOptimizer()
        let serverModel = MNISTServerModel(
            description: recipe.model, seed: recipe.seed, optimizer: optimizer, schedule: schedule,
            totalSteps: recipe.scheduleSteps, testSet: test)
        print("data: \(recipe.trainSamples) training and \(test.count) test images from \(directory)")
        let momentumText = recipe.optimizer.usesMomentum ? " momentum \(recipe.momentum)," : ""
        let optimizerText = "\(recipe.optimizer.rawValue)\(momentumText) lr \(recipe.learningRate), \(recipe.schedule.rawValue) schedule"
        print("optimiser: \(optimizerText)")
        let local = recipe.localSteps > 1
            ? "\(recipe.localSteps) local steps per push (lr \(recipe.localLearningRate), Nesterov \(recipe.localMomentum))"
            : "1 step per push (gradients)"
        print("exchange: \(local); pushes \(configuration.pushEncoding), weights \(configuration.pullEncoding)")

        let (seed, train) = (recipe.seed, recipe.trainSamples)
        let permutation: @Sendable (Int) -> [UInt32] = { epoch in
            EpochPermutation(seed: seed, epoch: epoch, count: train).indices.map { UInt32(bitPattern: $0) }
        }
        let loop = try EventLoop()
        let server: ParameterServerRuntime
        if let resumed {
            do {
                server = try ParameterServerRuntime(
                    configuration: configuration, model: serverModel, loop: loop, permutation: permutation, resuming: resumed)
            } catch {
                throw StartupError("cannot resume from \(resume!): \(error)")
            }
            print("resumed session \(recipe.sessionID) from \(resume!) (resume \(resumed.resumes + 1)): version \(resumed.version), "
                + "\(resumed.ledger.completedCount)/\(server.totalUnits) units done, \(SummaryLine.format(resumed.trainingSeconds, digits: 1)) s trained; "
                + "its settings replace the command line's")
        } else {
            server = ParameterServerRuntime(configuration: configuration, model: serverModel, loop: loop, permutation: permutation)
        }
        let status = ExitStatus()
        server.history.configuration += [
            ("model", "\(recipe.model) (\(recipe.model.parameterCount) parameters)"),
            ("optimiser", optimizerText),
        ]
        if let schedule = configuration.checkpoint {
            server.history.configuration.append(("checkpoint", "\(schedule.path) every \(schedule.everyUpdates) updates or \(schedule.interval)"))
        }
        let reportPath = report
        server.onFinished = { [unowned server] result in
            if let reportPath {
                do {
                    try Data(RunReport.html(server.history).utf8).write(to: URL(fileURLWithPath: reportPath), options: .atomic)
                    print("report written to \(reportPath)")
                } catch {
                    print("ps-server: could not write the report to \(reportPath): \(error.localizedDescription)")
                    status.code = 1
                }
            }
            print(result.summary)
            loop.stop()
        }
        // This thread is the loop's: set up, then run until the session is over.
        do {
            try server.start()
        } catch {
            throw StartupError("cannot listen on \(host):\(port): \(error)")
        }
        if let metricsPort {
            do {
                let metrics = try server.startMetrics(host: host, port: metricsPort)
                print("metrics on http://\(metrics.localAddress)/metrics")
                fflush(nil) // stdout is a pipe under tests: show the line now
            } catch {
                throw StartupError("cannot serve metrics on \(host):\(metricsPort): \(error)")
            }
        }
        let interrupted = { [unowned server] in
            print("\nps-server: interrupted; the session ends unfinished")
            // With checkpoints on, keep everything trained so far for --resume.
            do {
                if let path = try server.checkpointNow() { print("checkpoint written to \(path); continue with --resume \(path)") }
            } catch {
                print("ps-server: the last checkpoint could not be written: \(error)")
            }
            status.code = 130
            loop.stop()
        }
        let watchers = [try loop.watchSignal(SIGINT, interrupted), try loop.watchSignal(SIGTERM, interrupted)]
        try loop.run()
        withExtendedLifetime(watchers) {}
        if status.code != 0 { throw ExitCode(status.code) }
    }

    /// The session's settings from the command line, with every default resolved.
    private func recipeFromFlags(trainAvailable: Int, testAvailable: Int) throws -> SessionRecipe {
        let train = trainSamples.map { min($0, trainAvailable) } ?? trainAvailable
        let test = testSamples.map { min($0, testAvailable) } ?? testAvailable
        let optimizer = effectiveOptimizer
        let rate = lr ?? defaultLearningRate(optimizer)
        // The schedule counts applied optimiser steps: updates in async and ssp, rounds in sync.
        let samplesPerUnit = batchSize * steps
        let unitsPerEpoch = (train + samplesPerUnit - 1) / samplesPerUnit
        let totalSteps = epochs * (mode == .sync ? max(1, unitsPerEpoch / workers) : unitsPerEpoch)
        return SessionRecipe(
            sessionID: "\(Int(Date().timeIntervalSince1970))-\(getpid())",
            policy: SessionPolicy(
                mode: mode, stalenessPolicy: stalenessPolicy, maxStaleness: maxStaleness, workersToStart: workers,
                unitsAhead: unitsAhead, heartbeatTimeout: .milliseconds(Int(heartbeatTimeout * 1000))),
            epochs: epochs, batchSize: batchSize, localSteps: steps,
            localLearningRate: localLr ?? (model == .mlp ? 0.05 : 0.01),
            trainSamples: train, testSamples: test, seed: seed, model: try modelDescription(),
            optimizer: optimizer, learningRate: rate, momentum: effectiveMomentum, weightDecay: weightDecay,
            schedule: schedule, scheduleSteps: totalSteps, localMomentum: steps > 1 ? localMomentum : 0,
            localSchedule: localSchedule,
            pushEncoding: pushEncoding ?? (uncompressed ? "fp32" : "sign"), pullEncoding: pullEncoding ?? (uncompressed ? "fp32" : "q8"))
    }

    /// Loads `path` for --resume, or says plainly why not.
    private static func loadCheckpoint(_ path: String) throws -> SessionCheckpoint {
        do {
            return try SessionCheckpoint.load(path: path)
        } catch {
            throw StartupError("cannot resume from \(path): \(error)")
        }
    }

    private func hiddenWidths() throws -> [Int] {
        guard let hidden else { return [] }
        guard let widths = ModelDescription.hiddenWidths(parsing: hidden) else {
            throw ValidationError("--hidden takes positive widths separated by commas, e.g. 256,128")
        }
        return widths
    }

    private func modelDescription() throws -> ModelDescription {
        switch model {
        case .mlp: return hidden == nil ? .defaultMLP : ModelDescription(.mlp(hidden: try hiddenWidths()))
        case .cnn: return .defaultCNN
        }
    }

    /// The token from --token, --token-file or the environment, if any.
    private func resolvedToken() throws -> AuthenticationToken.Resolution? {
        do {
            return try AuthenticationToken.resolve(flag: token, file: tokenFile)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Whether `host` names only this machine: 127.0.0.0/8, ::1 or localhost.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    private var effectiveOptimizer: OptimizerKind {
        if let optimizer { return optimizer }
        if steps > 1 { return mode == .sync ? .nesterov : .delayedNesterov }
        return mode == .sync ? .momentum : .adam
    }

    // With local steps the optimiser is the outer one. In async mode plain averaging (delayed Nesterov
    // without momentum: each delta at lr / the workers present) measured best; outer momentum made the early
    // epochs unstable. A sync round's averaged delta takes Nesterov momentum as in DiLoCo, where 0.5 at
    // rate 1 measured best (98.2% with sign pushes at H = 8; DiLoCo's 0.9 at 0.7 stopped at 94.3%).
    private var effectiveMomentum: Float {
        if let momentum { return momentum }
        if steps > 1 { return mode == .sync ? 0.5 : 0 }
        return mode == .sync ? 0.9 : 0.5
    }

    private func encoding(_ choice: String, flag: String, parameters: Int) throws -> TensorEncoding {
        do {
            return try TensorEncoding(choice: choice, count: parameters)
        } catch {
            throw StartupError("\(flag): \(error)")
        }
    }

    private func defaultLearningRate(_ optimizer: OptimizerKind) -> Float {
        if steps > 1, optimizer == .delayedNesterov || optimizer == .nesterov { return 1 }
        if optimizer == .adam { return mode == .sync ? 0.001 : 0.0005 }
        return model == .mlp ? 0.05 : 0.01
    }

}

enum ModelKind: String, ExpressibleByArgument, CaseIterable { case mlp, cnn }
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension TrainingMode: ExpressibleByArgument {}
extension StalenessPolicy: ExpressibleByArgument {}

/// The process's exit status, set from loop callbacks.
final class ExitStatus: @unchecked Sendable {
    // Only touched on the loop thread, and read after the loop has stopped.
    var code: Int32 = 0
}

/// A failure to start, printed by ArgumentParser as "Error: ..." with exit status 1.
struct StartupError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
