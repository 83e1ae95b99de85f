import Foundation
import Learning
import ParameterServer
import ProcessTooling

/// Runs one soak from start to verdict: a fleet with churn, a calibration session, the soak session
/// with its server killed and resumed, the fleet's stop, the search for leftovers, the checks.
///
/// It is a sequence, so it runs in one thread and polls (see ``SignalTicker``); every wait has a
/// deadline, and every way out, a failure or Ctrl-C included, goes through the same teardown, so the
/// soak never leaves its processes behind.
final class SoakRunner {
    /// What to run, from the command line.
    struct Settings {
        var minutes: Double
        var workers: Int
        var churnEvery: Double
        var killFraction: Double
        var serverKills: Int
        /// `ps-server --shards`; 0 for a session without shards.
        var shards: Int
        /// Shards the fleet runs beyond `shards`, as spares.
        var spareShards: Int
        /// Shards holding a range to SIGKILL through the session.
        var shardKills: Int
        var minAccuracy: Double
        var warmup: Double
        var seed: UInt64
        var hidden: String
        /// `ps-server --local-steps`, for the calibration and the session alike.
        var localSteps: Int
        var logDirectory: String
        var serverBinary: String
        var fleetBinary: String
    }

    /// Why the soak stopped before its session finished.
    struct Abort: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The calibration session's epoch: small, so that it evaluates (on 1000 test images) as often as
    /// the soak's session will.
    private static let calibrationSamples = 12800
    /// Fewest units the calibration window must see trained.
    private static let calibrationUnits = 20
    /// How long the fleet has to stop its workers before ps-soak kills it.
    private static let fleetStopTimeout: Duration = .seconds(30)
    /// How often the server's resources and progress are sampled.
    private static let sampleInterval: Duration = .seconds(1)
    /// `ps-server --snapshot-every` in a sharded session: a lost shard costs at most this much training.
    private static let snapshotSeconds = 2.0
    /// Seconds of training (after it started or resumed) a server gets before it may be killed: the
    /// warm-up and then enough samples (one a second) for its memory and descriptors to be judged.
    private var minimumLife: Double { settings.warmup + Double(ResourceFlatness.minimumSamples) + 1 }

    private let settings: Settings
    private let ticker = SignalTicker()
    private let startTime = ContinuousClock.now
    /// The value of `PS_SOAK_ID` in every child's environment.
    private let marker = "\(getpid())-\(Int(Date().timeIntervalSince1970))"
    private let port: Int
    private let metricsPort: Int
    private var checkpointPath: String { settings.logDirectory + "/session.checkpoint" }

    private var fleet: ChildProcess?
    private var server: ServerIncarnation?
    private var incarnations: [ServerIncarnation] = []
    private var plan: SessionPlan?
    private var calibrationRate: Double?
    /// The fleet's shards, found and sampled once a second during the session.
    private let shardLives = ShardLives()
    /// Picks which range's holder each shard kill hits.
    private var shardVictims: Xoshiro256

    /// - Throws: ``StartupError`` when no free port can be found.
    init(settings: Settings) throws {
        self.settings = settings
        guard let port = freePort(), let metricsPort = freePort(), port != metricsPort else {
            throw StartupError("cannot find two free ports on 127.0.0.1")
        }
        self.port = port
        self.metricsPort = metricsPort
        shardVictims = Xoshiro256(seed: SplitMix64.derive(settings.seed, 0x5A_4D5))
    }

    /// Seconds since the soak started, as printed: `+12.3s`.
    private var stamp: String { String(format: "+%.1fs", elapsed) }
    private var elapsed: Double { (ContinuousClock.now - startTime).seconds }
    private var budget: Double { settings.minutes * 60 }

    /// Runs the soak and prints its verdict.
    /// - Returns: Whether every check passed.
    func run() -> Bool {
        let kills = settings.serverKills
        let shardText = settings.shards == 0 ? ""
            : "\(settings.shards) shard(s) and \(settings.spareShards) spare(s), \(settings.shardKills) shard kill(s); "
        say("ps-soak: \(String(format: "%g", settings.minutes)) minute(s); \(settings.workers) workers churning every "
            + "\(String(format: "%g", settings.churnEvery))s (\(Int((settings.killFraction * 100).rounded()))% SIGKILL); "
            + "\(kills) server kill(s); \(shardText)seed \(settings.seed); server on 127.0.0.1:\(port), metrics on port \(metricsPort)")
        say("ps-soak: logs in \(settings.logDirectory) (server-N.log, calibration.log, fleet.log, workers/\(settings.shards > 0 ? " with the shards' shard-K.log" : ""))")
        var abort: Abort?
        var summary: [String: String] = [:]
        do {
            try startFleet()
            try calibrate()
            summary = try runSession()
        } catch {
            abort = error as? Abort ?? Abort("\(error)")
            say("\(stamp) stopping early: \(error)")
        }
        stopServer()
        let fleetEnd = stopFleet()
        let stragglers = ProcessTree.stragglers(root: getpid(), marker: marker)
        for straggler in stragglers {
            say("\(stamp) left behind: \(straggler); killing it")
            kill(straggler.pid, SIGKILL)
        }
        // Reap any that were ps-soak's own children, so none stays a zombie while the report prints.
        while waitpid(-1, nil, WNOHANG) > 0 {}

        let report = SoakReport(
            settings: settings, plan: plan, calibrationRate: calibrationRate, incarnations: incarnations, shards: shardLives.lives,
            summary: summary, abort: abort?.description, fleet: fleetEnd, stragglers: stragglers, seconds: elapsed)
        report.print()
        return report.passed
    }

    // MARK: The fleet

    private func startFleet() throws {
        let workerLogs = settings.logDirectory + "/workers"
        // Past the soak's own deadline, in case ps-soak itself is killed: the fleet then still ends.
        let safety = Int(budget * 3) + 600
        // The fleet's shards log beside its workers; a killed one is replaced by the fleet.
        let shards = settings.shards > 0 ? ["--shards", String(settings.shards + settings.spareShards)] : []
        let fleet = try ChildProcess.spawn(
            executable: settings.fleetBinary,
            arguments: [
                "127.0.0.1", String(port), "--workers", String(settings.workers),
                "--churn-every", String(settings.churnEvery), "--kill-fraction", String(settings.killFraction),
                "--seed", String(settings.seed), "--retry", "0.2", "--log-dir", workerLogs, "--duration", String(safety),
            ] + shards,
            name: "ps-fleet", logPath: settings.logDirectory + "/fleet.log", environment: childEnvironment)
        self.fleet = fleet
        say("\(stamp) started \(fleet.label): \(settings.workers) workers against 127.0.0.1:\(port)")
    }

    /// Stops the fleet gracefully (SIGINT: it stops its workers) and reads its summary.
    private func stopFleet() -> FleetEnd? {
        guard let fleet else { return nil }
        if fleet.reap() == nil {
            say("\(stamp) stopping the fleet (SIGINT to \(fleet.label))")
            fleet.send(SIGINT)
            if fleet.wait(timeout: Self.fleetStopTimeout, ticker: ticker) == nil {
                say("\(stamp) \(fleet.label) did not stop within \(Int(Self.fleetStopTimeout.seconds))s; killing it")
                fleet.send(SIGKILL)
                _ = fleet.wait(timeout: .seconds(5), ticker: ticker)
            }
        }
        let log = LogFollower(path: fleet.logPath)
        log.poll()
        let totals = log.lastLine(startingWith: "workers=").map { SummaryLine.parse($0[...]) } ?? [:]
        let end = FleetEnd(termination: fleet.termination, totals: totals)
        say("\(stamp) \(fleet.label) ended (\(fleet.termination?.description ?? "not reaped")): "
            + "started \(totals["started"] ?? "?") workers, killed \(totals["killed"] ?? "?"), interrupted \(totals["interrupted"] ?? "?")"
            + (settings.shards > 0 ? "; started \(totals["shards_started"] ?? "?") shards" : ""))
        return end
    }

    /// Fails the soak if the fleet has ended: without it nothing trains.
    private func checkFleet() throws {
        if let fleet, let termination = fleet.reap() {
            throw Abort("\(fleet.label) exited by itself (\(termination)); see \(fleet.logPath)")
        }
    }

    // MARK: Calibration

    /// Trains with the fleet for a few seconds and measures how fast it goes (model versions a second on
    /// the metrics endpoint) and how long a server takes to start.
    ///
    /// A steady rate over a fixed window, not a small session's average: a small session on a fast
    /// build is over in a fraction of a second, and on a busy machine it can end before most of the
    /// fleet has loaded MNIST and joined. The calibration server then goes, by SIGINT, and the workers
    /// reconnect to the session's server as they would after any server restart.
    private func calibrate() throws {
        // 5% of the soak, from 5 s (a 2-minute soak) to 30 s (a 10-minute one and longer).
        let window = min(max(budget * 0.05, 5), 30)
        say("\(stamp) calibrating: \(Int(window))s of training in a throw-away session")
        let process = try ChildProcess.spawn(
            executable: settings.serverBinary,
            arguments: [
                "--port", String(port), "--metrics-port", String(metricsPort), "--workers", "1", "--hidden", settings.hidden,
                "--local-steps", String(settings.localSteps),
                "--batch-size", String(SessionPlan.batchSize(localSteps: settings.localSteps)),
                "--train-samples", String(Self.calibrationSamples), "--test-samples", "1000", "--epochs", "1000",
                "--seed", String(settings.seed),
            ] + shardedServerArguments,
            name: "calibration server", logPath: settings.logDirectory + "/calibration.log", environment: childEnvironment)
        let calibration = ServerIncarnation(number: 0, process: process)
        server = calibration
        var startup: Double?
        var first: (time: ContinuousClock.Instant, version: Int)?
        var rate: Double?
        // Generous: in a debug build on a busy machine, the server and workers take a while to load MNIST.
        let deadline = max(budget, 180)
        while rate == nil {
            try checkInterrupt()
            try checkFleet()
            _ = calibration.pollLog()
            if startup == nil, calibration.log.lines.contains(where: { $0.contains("listening on") }) {
                startup = process.uptime
            }
            if let termination = process.reap() {
                throw Abort("the calibration server exited by itself (\(termination)): "
                    + calibration.logTail(3).joined(separator: " | "))
            }
            if process.uptime > deadline {
                throw Abort("calibration did not train within \(Int(deadline))s; see \(process.logPath)")
            }
            calibration.sample(metricsPort: metricsPort)
            if let version = calibration.version, version > 0 {
                // The window stretches until some units have been trained in it: under fast churn on a busy
                // machine, every worker can be away loading MNIST for a while.
                if let first, (ContinuousClock.now - first.time).seconds >= window, version - first.version >= Self.calibrationUnits {
                    rate = Double((version - first.version) * SessionPlan.batchSize(localSteps: settings.localSteps) * settings.localSteps) / (ContinuousClock.now - first.time).seconds
                } else if first == nil {
                    first = (.now, version)
                }
            }
            ticker.wait(upTo: .milliseconds(250))
        }
        let workers = MetricsProbe.value(of: "downpour_active_workers", port: metricsPort).map { Int($0) }
        process.send(SIGINT)
        if process.wait(timeout: .seconds(10), ticker: ticker) == nil {
            process.send(SIGKILL)
            _ = process.wait(timeout: .seconds(5), ticker: ticker)
        }
        server = nil
        guard let rate, rate > 0 else { throw Abort("the calibration session did not train; see \(process.logPath)") }
        calibrationRate = rate
        let startupSeconds = startup ?? 1
        let plan = SessionPlan(seconds: budget - elapsed, samplesPerSecond: rate, startupSeconds: startupSeconds,
                               kills: settings.serverKills, lifeSeconds: minimumLife, localSteps: settings.localSteps,
                               shardKills: settings.shardKills, snapshotSeconds: Self.snapshotSeconds)
        self.plan = plan
        say("\(stamp) calibration: \(Int(rate)) samples/s with \(workers.map(String.init) ?? "?") workers training; a server starts in "
            + String(format: "%.1fs", startupSeconds))
        var killText = plan.killVersions.isEmpty ? "no server kills"
            : "server kills at updates " + plan.killVersions.map(String.init).joined(separator: ", ")
        if !plan.shardKillVersions.isEmpty {
            killText += "; shard kills at updates " + plan.shardKillVersions.map(String.init).joined(separator: ", ")
        }
        say("\(stamp) plan: \(plan.epochs) epochs of \(plan.trainSamples) samples (\(plan.unitsExpected) units), about "
            + "\(Int(plan.expectedSeconds))s; \(killText)")
    }

    // MARK: The session

    /// Runs the session to its summary line, killing and resuming the server on the way.
    /// - Returns: The summary's fields.
    private func runSession() throws -> [String: String] {
        guard let plan else { throw Abort("no plan") }
        var server = try startServer(number: 1, resume: false)
        // A hung session fails rather than running forever: three times the plan, and then some.
        let deadline = elapsed + plan.expectedSeconds * 3 + 120
        var nextSample = ContinuousClock.now
        var nextProgress = elapsed + progressInterval(plan)
        while true {
            try checkInterrupt()
            try checkFleet()
            for line in server.pollLog() { say("\(stamp) \(server.process.name): \(line)") }
            if let termination = server.process.reap() {
                server.log.poll()
                guard termination == .exited(0), let line = server.summary else {
                    throw Abort("\(server.process.label) exited by itself (\(termination)): "
                        + server.logTail(3).joined(separator: " | "))
                }
                say("\(stamp) session over: \(line)")
                return SummaryLine.parse(line[...])
            }
            if ContinuousClock.now >= nextSample {
                nextSample = .now + Self.sampleInterval
                server.sample(metricsPort: metricsPort)
                if let fleet, settings.shards > 0 { shardLives.refresh(fleet: fleet) }
                if shouldKill(server, plan: plan) {
                    server = try killAndResume(server, plan: plan)
                } else if shouldKillShard(server, plan: plan) {
                    killShard(plan: plan)
                }
            }
            if elapsed >= nextProgress {
                nextProgress = elapsed + progressInterval(plan)
                sayProgress(server, plan: plan)
            }
            if elapsed > deadline {
                throw Abort("the session did not finish within \(Int(deadline))s of the soak's start")
            }
            ticker.wait(upTo: .milliseconds(250))
        }
    }

    /// Whether the next kill is due: the server has trained long enough to be judged, there is a
    /// checkpoint to resume from, and either the session has reached the kill's version or, at the
    /// rate this server trains, waiting longer would leave the later lives too little of the session.
    private func shouldKill(_ server: ServerIncarnation, plan: SessionPlan) -> Bool {
        let done = incarnations.filter(\.killed).count
        guard done < plan.killVersions.count, let version = server.version,
              (server.trainingSeconds ?? 0) >= minimumLife, FileManager.default.fileExists(atPath: checkpointPath)
        else { return false }
        if version >= plan.killVersions[done] { return true }
        // Each life after this kill needs `minimumLife` of training; with half as much again to spare.
        let lives = Double(plan.killVersions.count - done)
        guard let rate = server.unitsPerSecond, rate > 0 else { return false }
        return Double(plan.unitsExpected - version) / rate < lives * minimumLife * 1.5
    }

    private func killAndResume(_ server: ServerIncarnation, plan: SessionPlan) throws -> ServerIncarnation {
        server.process.send(SIGKILL)
        server.killed = true
        guard server.process.wait(timeout: .seconds(10), ticker: ticker) != nil else {
            throw Abort("\(server.process.label) did not die within 10s of SIGKILL")
        }
        let kills = incarnations.filter(\.killed).count
        say("\(stamp) killed \(server.process.label) at update \(server.version ?? 0) of \(plan.unitsExpected) "
            + "(kill \(kills) of \(plan.killVersions.count)); resuming from its checkpoint")
        return try startServer(number: server.number + 1, resume: true)
    }

    // MARK: Shards

    /// Whether the next shard kill is due: the server has trained past its warm-up and either the
    /// session has reached the kill's version or, at this server's rate, waiting longer would leave
    /// too little of the session for the kills still to come.
    private func shouldKillShard(_ server: ServerIncarnation, plan: SessionPlan) -> Bool {
        let done = shardLives.lives.filter(\.killed).count
        guard done < plan.shardKillVersions.count, let version = server.version, (server.trainingSeconds ?? 0) >= settings.warmup
        else { return false }
        if version >= plan.shardKillVersions[done] { return true }
        // Each kill still to come needs a few seconds: the rollback, the workers' reconnection, training.
        guard let rate = server.unitsPerSecond, rate > 0 else { return false }
        return Double(plan.unitsExpected - version) / rate < Double(plan.shardKillVersions.count - done) * 6
    }

    /// SIGKILLs the shard holding a range picked at random (from the server's `/metrics`), once every
    /// range is held: a spare's death would send nothing back to a snapshot.
    private func killShard(plan: SessionPlan) {
        guard let fleet, let page = MetricsProbe.get(port: metricsPort, timeout: .seconds(1)) else { return }
        let holders = ShardLives.holders(metrics: page)
        guard holders.count == settings.shards else { return }
        let name = holders[shardVictims.next(below: holders.count)]
        // The fleet's child by that name, checked again just before the signal: a PID is only ever
        // signalled while its parent, the fleet, has not reaped it.
        guard let life = shardLives.live(named: name),
              ProcessTree.children(of: fleet.pid).contains(where: { $0.pid == life.pid }) else { return }
        kill(life.pid, SIGKILL)
        life.killed = true
        let done = shardLives.lives.filter(\.killed).count
        say("\(stamp) killed \(name) (pid \(life.pid)), holder of range \(holders.firstIndex(of: name) ?? 0), at update "
            + "\(server?.version ?? 0) of \(plan.unitsExpected) (shard kill \(done) of \(plan.shardKillVersions.count))")
    }

    /// `--shards N --snapshot-every S` for every server of a sharded soak (the calibration's too: the
    /// fleet's shards would be refused by a server without shards); nothing otherwise.
    private var shardedServerArguments: [String] {
        settings.shards > 0 ? ["--shards", String(settings.shards), "--snapshot-every", String(Self.snapshotSeconds)] : []
    }

    /// Starts the session's server: fresh (the session's flags) or resumed (only the operational flags;
    /// the rest comes from the checkpoint).
    private func startServer(number: Int, resume: Bool) throws -> ServerIncarnation {
        guard let plan else { throw Abort("no plan") }
        // Operational flags, given to every incarnation; a resumed server takes the session's own
        // (mode, epochs, model, seed, data) from its checkpoint.
        var arguments = ["--port", String(port), "--metrics-port", String(metricsPort)] + shardedServerArguments
        if settings.serverKills > 0 {
            arguments += ["--checkpoint", checkpointPath, "--checkpoint-every", String(plan.checkpointEvery)]
        }
        if resume {
            arguments += ["--resume", checkpointPath]
        } else {
            arguments += [
                "--workers", "1", "--hidden", settings.hidden, "--local-steps", String(settings.localSteps),
                "--batch-size", String(SessionPlan.batchSize(localSteps: settings.localSteps)),
                "--train-samples", String(plan.trainSamples),
                "--epochs", String(plan.epochs), "--seed", String(settings.seed),
            ]
        }
        let process = try ChildProcess.spawn(
            executable: settings.serverBinary, arguments: arguments, name: "ps-server \(number)",
            logPath: settings.logDirectory + "/server-\(number).log", environment: childEnvironment)
        let incarnation = ServerIncarnation(number: number, process: process)
        incarnations.append(incarnation)
        self.server = incarnation
        say("\(stamp) started \(process.label)\(resume ? " with --resume" : "")")
        return incarnation
    }

    /// Ends the server if it still runs (the soak stopped early): SIGINT, then SIGKILL.
    private func stopServer() {
        guard let server, server.process.reap() == nil else { return }
        say("\(stamp) stopping \(server.process.label)")
        server.process.send(SIGINT)
        if server.process.wait(timeout: .seconds(10), ticker: ticker) == nil {
            server.process.send(SIGKILL)
            _ = server.process.wait(timeout: .seconds(5), ticker: ticker)
        }
    }

    // MARK: Helpers

    /// A progress line about every tenth of the session, at least every 10 s apart.
    private func progressInterval(_ plan: SessionPlan) -> Double {
        max(10, plan.expectedSeconds / 10)
    }

    private func sayProgress(_ server: ServerIncarnation, plan: SessionPlan) {
        guard let sample = server.samples.last, let version = server.version else {
            return say("\(stamp) \(server.process.name) is starting up")
        }
        say("\(stamp) update \(version) of \(plan.unitsExpected); \(server.process.name): "
            + "rss \(sample.rssBytes.mebibytes), \(sample.descriptors) fds")
    }

    private func checkInterrupt() throws {
        if let signal = ticker.stopSignal {
            throw Abort("interrupted by \(signal == SIGINT ? "SIGINT" : "SIGTERM")")
        }
    }

    /// What every child gets in its environment besides ps-soak's own.
    private var childEnvironment: [String] { ["\(ProcessTree.markerName)=\(marker)"] }
}

/// How the fleet ended.
struct FleetEnd {
    let termination: Termination?
    /// Its summary line's fields (empty if it printed none).
    let totals: [String: String]
}
