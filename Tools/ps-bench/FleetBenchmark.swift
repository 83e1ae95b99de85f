import ArgumentParser
import Foundation
import Learning
import Locking
import ParameterServer
import Reactor
import TensorEncoding

#if canImport(Glibc)
import Glibc
#endif

/// One `ps-bench fleet` run: starts the server on an event loop thread of its own, starts the workers'
/// process, waits for every worker to join and for the warm-up, then measures `--runs` windows.
///
/// - Warning: Call `run()` from the main thread; the server lives on its own loop thread and is read
///   only through `EventLoop.execute`.
final class FleetBenchmark {
    /// Work units per epoch: 65,536 at one sample per unit (batch size 1, one local step), else at
    /// least 4,096. The session's ledger opens an epoch's units all at once and keeps a record of every
    /// unit for the whole session, so the session is a long run of small epochs: one huge epoch would
    /// allocate tens of bytes per unit up front.
    static func samplesPerEpoch(samplesPerUnit: Int) -> Int {
        samplesPerUnit * max(4096, (1 << 16) / samplesPerUnit)
    }
    /// Enough epochs that no run gets near the end of the session, even at 400,000 updates/s (over
    /// twice the fastest measured) for the workers' whole lifetime; no more, because the session's
    /// `AppliedUnitAudit` keeps a bit for every unit of the session from the start (1,000,000 epochs of
    /// 65,536 units would be 8 GB).
    static func epochs(unitsPerEpoch: Int, lifetime: Duration) -> Int {
        let units = Double(lifetime.components.seconds + 1) * 400_000
        return max(2, Int((units / Double(unitsPerEpoch)).rounded(.up)))
    }

    private let options: FleetBenchmarkCommand

    init(options: FleetBenchmarkCommand) {
        self.options = options
    }

    func run() throws -> FleetResult {
        var result = FleetResult()
        result.memoryBefore = FleetProcessStatus.memory()
        let output = try FleetOutput(serverLog: options.serverLog)
        defer { output.restore() }
        let encodings = try options.encodings()
        output.line("fleet: workers=\(options.workers) parameters=\(options.parameters) units_ahead=\(options.unitsAhead) "
            + "seconds=\(format(options.seconds, 1)) warmup=\(format(options.warmup, 1)) runs=\(options.runs) "
            + "server_log=\(options.serverLog)")
        output.line("exchange: batch \(options.batch) x \(options.steps) local step(s) per push "
            + "(\(options.steps == 1 ? "gradients" : "deltas"), \(options.samplesPerUnit) samples); server pushes \(encodings.push), "
            + "weights \(encodings.pull); workers offer \(options.offeredEncodings.isEmpty ? "none" : options.offeredEncodings.joined(separator: ","))"
            + "\(options.pullEveryUnit ? "; a pull per unit" : "")")

        let loop = try EventLoop.startOnNewThread(name: "fleet-server")
        let server = try makeServer(loop: loop)
        defer {
            loop.stop()
            try? loop.join()
            // The server's callbacks hold it unowned: it must outlive its loop, not just its last use here.
            withExtendedLifetime(server) {}
        }
        let port = try onLoop(loop) { () throws -> Int in
            try server.start()
            return server.port
        }
        // With --shards the shards connect to the server before any worker does; the server welcomes
        // workers once every shard holds its range.
        let shards = options.shards > 0
            ? try FleetShards(count: options.shards, serverPort: port, log: { line in print(line) }) : nil
        defer { shards?.stop() }
        let clients = try startClients(port: port)
        result.clientsPID = clients.processIdentifier
        defer {
            // By PID, and waited for: no worker outlives the benchmark.
            if clients.isRunning { kill(clients.processIdentifier, SIGTERM) }
            clients.waitUntilExit()
        }

        let connectStart = monotonicNanoseconds()
        var snapshot = try take(server, loop, shards, clients.processIdentifier)
        while snapshot.joins < UInt64(options.workers) || snapshot.shardWorkers.contains(where: { $0 < options.workers }) {
            try check(clients, snapshot)
            guard monotonicNanoseconds() - connectStart < 60_000_000_000 else {
                throw ValidationError("fleet: only \(snapshot.joins) of \(options.workers) workers joined within 60 s")
            }
            Thread.sleep(forTimeInterval: 0.02)
            snapshot = try take(server, loop, shards, clients.processIdentifier)
        }
        result.connectSeconds = Double(snapshot.nanoseconds - connectStart) / 1e9
        result.memoryConnected = FleetProcessStatus.memory()
        output.line("joined: \(options.workers) workers in \(format(result.connectSeconds, 2)) s, "
            + "server RSS \(megabytes(result.memoryConnected.resident)) MB")

        Thread.sleep(forTimeInterval: options.warmup)
        var start = try take(server, loop, shards, clients.processIdentifier)
        try check(clients, start)
        let firstMeasured = start
        for index in 1...options.runs {
            Thread.sleep(forTimeInterval: options.seconds)
            let end = try take(server, loop, shards, clients.processIdentifier)
            try check(clients, end)
            let window = FleetWindow(from: start, to: end, parameters: options.parameters)
            result.windows.append(window)
            output.line("run \(index): \(format(window.updatesPerSecond, 0)) updates/s, "
                + "\(format(window.samplesPerSecond, 0)) samples/s, "
                + "\(format(window.updatesPerSecond * Double(options.parameters) / 1e6, 1)) M floats/s, "
                + "staleness \(format(window.stalenessMean, 2)), server \(format(window.serverCores, 2)) cores, "
                + "workers \(format(window.clientCores, 2)) cores"
                + (options.shards > 0 ? "; " + window.shardText : ""))
            start = end
        }
        result.memoryEnd = FleetProcessStatus.memory()
        result.updatesMeasured = start.updates - firstMeasured.updates
        result.updatesSinceJoin = start.updates - snapshot.updates
        result.rejected = start.rejected
        result.shardUpdatesMeasured = zip(start.shardUpdates, firstMeasured.shardUpdates).map { $0 > $1 ? $0 - $1 : 0 }
        return result
    }

    // MARK: Parts

    /// The server, assembled as ps-server assembles one (`ServerConfiguration(recipe:settings:parameterCount:)`),
    /// for the synthetic model.
    private func makeServer(loop: EventLoop) throws -> ParameterServerRuntime {
        var settings = ServerSettings()
        settings.port = 0
        settings.mode = options.mode
        (settings.workers, settings.unitsAhead, settings.batchSize) = (options.workers, options.unitsAhead, options.batch)
        (settings.localSteps, settings.uncompressed) = (options.steps, options.uncompressed)
        (settings.pushEncoding, settings.pullEncoding) = (options.pushEncoding, options.pullEncoding)
        // A worker that pushes is heard; the long timeout only keeps a starved worker on a busy
        // machine from being dropped mid-measurement.
        settings.heartbeatTimeout = 3600
        settings.heartbeatInterval = 1
        settings.handshakeTimeout = 60
        settings.maxConnections = options.workers + options.shards + 16
        settings.maxFrameBytes = options.parameters * 4 + options.samplesPerUnit * 5 + 4096
        (settings.tlsCertificate, settings.tlsKey) = (options.serverTLS.certificate, options.serverTLS.key)
        let samplesPerEpoch = Self.samplesPerEpoch(samplesPerUnit: options.samplesPerUnit)
        settings.epochs = Self.epochs(unitsPerEpoch: samplesPerEpoch / options.samplesPerUnit, lifetime: options.clientLifetime)
        if options.shards > 0 {
            settings.shards = options.shards
            // The shards apply with the recipe's optimiser: the synthetic model's, so that a shard does
            // per float what the server does without shards (SGD with momentum 0.5 at a constant 1e-4;
            // the model's state then also fits the optimiser the ranges are assigned with).
            (settings.optimizer, settings.momentum, settings.learningRate) = (.momentum, 0.5, 1e-4)
            settings.schedule = .constant
        }
        var recipe = settings.recipe(
            model: ModelConfiguration(family: "fleet"), defaults: ModelTrainingDefaults(),
            trainAvailable: samplesPerEpoch, testAvailable: 1)
        recipe.sessionID = "fleet"
        let configuration: ServerConfiguration
        do throws(SettingsError) {
            configuration = try ServerConfiguration(recipe: recipe, settings: settings, parameterCount: options.parameters)
        } catch {
            throw ValidationError("fleet: \(error.description)")
        }
        return ParameterServerRuntime(
            configuration: configuration, model: FleetServerModel(parameterCount: options.parameters), loop: loop,
            reporter: ProgressReporter(isTerminal: false), permutation: recipe.permutation)
    }

    /// Starts this executable again as the workers' process.
    private func startClients(port: Int) throws -> Process {
        let process = Process()
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "fleet", "--workers", "\(options.workers)", "--parameters", "\(options.parameters)",
            "--seconds", "\(options.seconds)", "--warmup", "\(options.warmup)", "--runs", "\(options.runs)",
            "--units-ahead", "\(options.unitsAhead)", "--clients-port", "\(port)", "--clients-parent", "\(getpid())",
            "--batch-size", "\(options.batch)", "--local-steps", "\(options.steps)",
            "--client-encodings", options.offeredEncodings.isEmpty ? "none" : options.offeredEncodings.joined(separator: ","),
        ]
        if options.pullEveryUnit { process.arguments?.append("--pull-every-unit") }
        if options.shards > 0 { process.arguments? += ["--shards", "\(options.shards)"] }
        if let cert = options.serverTLS.certificate, let key = options.serverTLS.key, let ca = options.clientTLS.caPath {
            process.arguments? += ["--tls-cert", cert, "--tls-key", key, "--tls-ca", ca]
            if let name = options.clientTLS.serverName { process.arguments? += ["--tls-server-name", name] }
        }
        do {
            try process.run()
        } catch {
            throw ValidationError("fleet: cannot start the workers' process (\(executable)): \(error)")
        }
        return process
    }

    /// The server's figures now, read on its loop thread; with shards, each shard's first (on its own
    /// loop thread), so that no shard has applied more than the server had decided when it was read.
    private func take(_ server: ParameterServerRuntime, _ loop: EventLoop, _ shards: FleetShards?, _ clients: Int32) throws -> FleetSnapshot {
        let shardFigures = try shards?.figures() ?? []
        var snapshot = try onLoop(loop) { () throws -> FleetSnapshot in
            let statistics = server.statistics
            return FleetSnapshot(
                nanoseconds: monotonicNanoseconds(), updates: statistics.updatesApplied, samples: statistics.samplesTrained,
                stalenessSum: statistics.staleness.sum, stalenessCount: statistics.staleness.count,
                joins: statistics.joins, leaves: statistics.leaves, rejected: statistics.rejectedTotal,
                rounds: statistics.rounds, serverLoopCPU: threadCPUSeconds())
        }
        if !shardFigures.isEmpty {
            // What counts is what every shard has applied, not what the server decided: shards that fell
            // behind would make the server's count overstate. A shard's version counts the ShardApply it
            // carried out: one per update in async mode, one per round in sync mode, where the server
            // counts every push of the round as an update; so each shard's version is converted at the
            // server's updates per version, and the samples behind what every shard applied are the
            // server's samples per decided update times that (every unit of the session is full, so
            // every update carries the same samples).
            let serverVersion = options.mode == .sync ? snapshot.rounds : snapshot.updates
            let perVersion = serverVersion == 0 ? 0 : Double(snapshot.updates) / Double(serverVersion)
            let shardUpdates = shardFigures.map { UInt64((Double($0.version) * perVersion).rounded()) }
            let applied = shardUpdates.min() ?? 0
            snapshot.decided = snapshot.updates
            snapshot.samples = snapshot.updates == 0 ? 0
                : UInt64((Double(snapshot.samples) * Double(applied) / Double(snapshot.updates)).rounded())
            snapshot.updates = applied
            snapshot.shardUpdates = shardUpdates
            snapshot.shardCPU = shardFigures.map(\.cpuSeconds)
            snapshot.shardWorkers = shardFigures.map(\.workers)
        }
        snapshot.serverCPU = FleetProcessStatus.cpuSeconds()
        snapshot.clientCPU = FleetProcessStatus.cpuSeconds(of: clients)
        return snapshot
    }

    /// Stops the benchmark when the workers' process died or a worker left.
    private func check(_ clients: Process, _ snapshot: FleetSnapshot) throws {
        guard clients.isRunning else {
            throw ValidationError("fleet: the workers' process exited (status \(clients.terminationStatus)); see its message above")
        }
        guard snapshot.leaves == 0 else {
            throw ValidationError("fleet: \(snapshot.leaves) worker(s) left the session; see --server-log")
        }
    }

    /// Runs `body` on the loop thread and waits for its result.
    private func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = FleetMailbox<T>()
        loop.execute { box.put(Result { try body() }) }
        guard let result = box.take(timeout: 30) else {
            throw ValidationError("fleet: the server's event loop did not answer within 30 s")
        }
        return try result.get()
    }
}

/// Hands one result from the loop thread to the waiting main thread.
private final class FleetMailbox<T: Sendable>: Sendable {
    private let value = Locked<Result<T, any Error>?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func put(_ result: Result<T, any Error>) {
        value.withLock { $0 = result }
        ready.signal()
    }

    func take(timeout seconds: Double) -> Result<T, any Error>? {
        guard ready.wait(timeout: .now() + seconds) == .success else { return nil }
        return value.withLock { $0 }
    }
}

/// The server's counters at one moment.
struct FleetSnapshot: Sendable {
    var nanoseconds: UInt64
    var updates: UInt64
    var samples: UInt64
    var stalenessSum: UInt64
    var stalenessCount: UInt64
    var joins: UInt64
    var leaves: UInt64
    var rejected: UInt64
    /// Sync rounds closed (the server's version in sync mode).
    var rounds: UInt64 = 0
    /// CPU time of the server's loop thread (the rest of the process's, with shards, is theirs).
    var serverLoopCPU = 0.0
    var serverCPU = 0.0
    var clientCPU = 0.0
    /// With shards: `updates` and `samples` are what every shard applied; this, what the server decided.
    var decided: UInt64 = 0
    /// With shards: each shard's updates applied (its version, in sync mode times the updates per
    /// round), its loop thread's CPU time, and its workers joined.
    var shardUpdates: [UInt64] = []
    var shardCPU: [Double] = []
    var shardWorkers: [Int] = []
}

/// The figures of one measured window.
struct FleetWindow {
    var updatesPerSecond: Double
    /// Samples behind the applied updates (each push's `sample_count`), per second.
    var samplesPerSecond: Double
    var stalenessMean: Double
    var serverCores: Double
    var clientCores: Double
    /// With shards: the server's decided updates per second, its loop thread's cores, and each shard's
    /// applied updates per second and loop thread's cores.
    var decidedPerSecond = 0.0
    var serverLoopCores = 0.0
    var shardUpdatesPerSecond: [Double] = []
    var shardCores: [Double] = []

    init(from start: FleetSnapshot, to end: FleetSnapshot, parameters: Int) {
        let seconds = Double(end.nanoseconds - start.nanoseconds) / 1e9
        updatesPerSecond = Double(end.updates - start.updates) / seconds
        samplesPerSecond = Double(end.samples - start.samples) / seconds
        let count = end.stalenessCount - start.stalenessCount
        stalenessMean = count == 0 ? 0 : Double(end.stalenessSum - start.stalenessSum) / Double(count)
        serverCores = (end.serverCPU - start.serverCPU) / seconds
        clientCores = (end.clientCPU - start.clientCPU) / seconds
        decidedPerSecond = Double(end.decided - start.decided) / seconds
        serverLoopCores = (end.serverLoopCPU - start.serverLoopCPU) / seconds
        shardUpdatesPerSecond = zip(end.shardUpdates, start.shardUpdates).map { (Double($0) - Double($1)) / seconds }
        shardCores = zip(end.shardCPU, start.shardCPU).map { ($0 - $1) / seconds }
    }

    /// Updates shard `index` applied per CPU-second of its loop thread: what it could apply with a core
    /// to itself, steadier than its wall rate on a shared machine.
    func shardUpdatesPerCPU(_ index: Int) -> Double {
        shardUpdatesPerSecond[index] / max(shardCores[index], 1e-9)
    }

    /// The shards' figures of the window, for its line.
    var shardText: String {
        "server decided \(format(decidedPerSecond, 0)) updates/s on \(format(serverLoopCores, 2)) cores (loop thread); shards applied "
            + shardUpdatesPerSecond.map { format($0, 0) }.joined(separator: ", ") + " updates/s on "
            + shardCores.map { format($0, 2) }.joined(separator: ", ") + " cores"
    }
}

/// Everything `ps-bench fleet` reports.
struct FleetResult {
    var windows: [FleetWindow] = []
    var memoryBefore = (resident: 0, peak: 0)
    var memoryConnected = (resident: 0, peak: 0)
    var memoryEnd = (resident: 0, peak: 0)
    var connectSeconds = 0.0
    var updatesMeasured: UInt64 = 0
    var updatesSinceJoin: UInt64 = 0
    var rejected: UInt64 = 0
    var clientsPID: Int32 = 0
    /// With shards: the updates each shard applied in the measured windows.
    var shardUpdatesMeasured: [UInt64] = []

    /// The issue's goal for full-model pushes: floats decoded and applied per second.
    static let goalFloatsPerSecond = 400e6

    /// Prints one line per figure, then the summary line.
    func report(options: FleetBenchmarkCommand) {
        let updates = median(windows.map(\.updatesPerSecond))
        let samples = median(windows.map(\.samplesPerSecond))
        let samplesPerCPU = median(windows.map { $0.samplesPerSecond / max($0.serverCores, 1e-9) })
        let encodings = try? options.encodings()
        let floats = updates * Double(options.parameters)
        let gigabytes = floats * 4 / 1e9
        let staleness = median(windows.map(\.stalenessMean))
        let serverCores = median(windows.map(\.serverCores))
        let clientCores = median(windows.map(\.clientCores))
        // What the server could do with a core to itself: robust to other load on a shared machine.
        let floatsPerCPU = median(windows.map { $0.updatesPerSecond / max($0.serverCores, 1e-9) }) * Double(options.parameters)
        let growth = updatesSinceJoin == 0 ? 0
            : Double(memoryEnd.resident - memoryConnected.resident) / Double(updatesSinceJoin)
        let of = "(median of \(windows.count))"
        print("updates: \(format(updates, 0)) updates/s \(of)")
        print("samples: \(format(samples, 0)) samples/s (\(options.samplesPerUnit) per full unit)")
        print("floats: \(format(floats / 1e6, 1)) M floats/s")
        print("throughput: \(format(gigabytes, 3)) GB/s")
        print("goal_ratio: \(format(floats / Self.goalFloatsPerSecond, 3)) of 400 M floats/s")
        print("staleness_mean: \(format(staleness, 2))")
        print("server_cpu: \(format(serverCores, 2)) cores")
        print("server_floats_per_cpu_s: \(format(floatsPerCPU / 1e6, 1)) M floats per CPU-second of the server process")
        print("server_samples_per_cpu_s: \(format(samplesPerCPU, 0)) samples per CPU-second of the server process")
        print("workers_cpu: \(format(clientCores, 2)) cores")
        print("rss_before: \(megabytes(memoryBefore.resident)) MB")
        print("rss_connected: \(megabytes(memoryConnected.resident)) MB")
        print("rss_end: \(megabytes(memoryEnd.resident)) MB")
        print("rss_peak: \(megabytes(memoryEnd.peak)) MB")
        print("rss_growth: \(format(growth, 1)) bytes per applied update")
        if options.shards > 0 {
            let decided = median(windows.map(\.decidedPerSecond))
            let loopCores = median(windows.map(\.serverLoopCores))
            print("shards: \(options.shards); updates are those every shard applied; the server decided \(format(decided, 0)) updates/s")
            print("server_loop_cpu: \(format(loopCores, 2)) cores (the server's loop thread; server_cpu is the process: server and shards)")
            for (index, applied) in shardUpdatesMeasured.enumerated() {
                print("shard_\(index): \(applied) updates applied in the measured windows, "
                    + "\(format(median(windows.map { $0.shardUpdatesPerSecond[index] }), 0)) updates/s, "
                    + "\(format(median(windows.map { $0.shardCores[index] }), 2)) cores (its loop thread), "
                    + "\(format(median(windows.map { $0.shardUpdatesPerCPU(index) }), 0)) updates per CPU-second of its loop thread")
            }
        }
        if rejected > 0 { print("warning: the server rejected \(rejected) updates") }
        var summary = SummaryLine()
        summary.add("workers", options.workers)
        summary.add("parameters", options.parameters)
        summary.add("tls", options.clientTLS.transport)
        summary.add("units_ahead", options.unitsAhead)
        summary.add("batch_size", options.batch)
        summary.add("local_steps", options.steps)
        summary.add("push_encoding", encodings.map { "\($0.push)" } ?? "?")
        summary.add("pull_encoding", encodings.map { "\($0.pull)" } ?? "?")
        summary.add("pull_every_unit", options.pullEveryUnit ? 1 : 0)
        summary.add("seconds", options.seconds, digits: 1)
        summary.add("runs", windows.count)
        summary.add("updates_per_s", updates, digits: 0)
        summary.add("samples_per_s", samples, digits: 0)
        summary.add("floats_per_s", floats, digits: 0)
        summary.add("gb_per_s", gigabytes, digits: 3)
        summary.add("goal_ratio", floats / Self.goalFloatsPerSecond, digits: 3)
        summary.add("staleness_mean", staleness, digits: 2)
        summary.add("server_cores", serverCores, digits: 2)
        summary.add("workers_cores", clientCores, digits: 2)
        summary.add("server_floats_per_cpu_s", floatsPerCPU, digits: 0)
        summary.add("server_samples_per_cpu_s", samplesPerCPU, digits: 0)
        summary.add("rss_before_mb", megabytes(memoryBefore.resident))
        summary.add("rss_connected_mb", megabytes(memoryConnected.resident))
        summary.add("rss_end_mb", megabytes(memoryEnd.resident))
        summary.add("rss_peak_mb", megabytes(memoryEnd.peak))
        summary.add("rss_growth_bytes_per_update", growth, digits: 1)
        summary.add("updates_measured", updatesMeasured)
        summary.add("rejected", rejected)
        if options.shards > 0 {
            summary.add("shards", options.shards)
            summary.add("decided_per_s", median(windows.map(\.decidedPerSecond)), digits: 0)
            summary.add("server_loop_cores", median(windows.map(\.serverLoopCores)), digits: 2)
            for (index, applied) in shardUpdatesMeasured.enumerated() {
                summary.add("shard\(index)_updates", applied)
                summary.add("shard\(index)_cores", median(windows.map { $0.shardCores[index] }), digits: 2)
                summary.add("shard\(index)_updates_per_cpu_s", median(windows.map { $0.shardUpdatesPerCPU(index) }), digits: 0)
            }
        }
        print("summary \(summary)")
    }
}

/// Where lines go while the server runs: the server's `ProgressReporter` prints to standard output
/// and cannot be told otherwise, so standard output is pointed at `--server-log` for the session and
/// the benchmark's own lines are written to the original standard output.
private final class FleetOutput {
    private let original: Int32
    private var restored = false

    init(serverLog: String) throws {
        let log = open(serverLog, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard log >= 0 else {
            throw ValidationError("cannot open --server-log \(serverLog): \(String(cString: strerror(errno)))")
        }
        fflush(nil)
        original = dup(STDOUT_FILENO)
        dup2(log, STDOUT_FILENO)
        close(log)
    }

    /// Writes a line to the original standard output at once.
    func line(_ text: String) {
        var text = text + "\n"
        text.withUTF8 { bytes in _ = write(original, bytes.baseAddress, bytes.count) }
    }

    /// Points standard output back where it was.
    func restore() {
        guard !restored else { return }
        restored = true
        fflush(nil)
        dup2(original, STDOUT_FILENO)
        close(original)
    }
}

private func megabytes(_ bytes: Int) -> String {
    format(Double(bytes) / 1e6, 1)
}

private func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
