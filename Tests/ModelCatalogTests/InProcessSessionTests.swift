import Foundation
import Learning
import ModelCatalog
import ParameterServer
import Reactor
import Testing

/// Whole sessions inside the test process: the server assembled as `ps-server` assembles it
/// (`SessionAssembly`), workers as `ps-worker` builds them (`WorkerHost.makeModel`), each on an event
/// loop of its own over loopback. The runtimes' handshake, refusals and accounting are tested here
/// without starting a process or scraping output.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct InProcessSessionTests {
    /// A short spirals session: 4 epochs of 12,000 samples in units of 512 (under a second).
    static func settings(workers: Int) -> ServerSettings {
        var settings = ServerSettings()
        (settings.port, settings.model, settings.workers, settings.epochs) = (0, "spirals", workers, 4)
        (settings.testSamples, settings.heartbeatTimeout) = (1_000, 20)
        return settings
    }

    /// What every finished session must show: each unit applied exactly once, and the model trained.
    static func expectEveryUnitAppliedOnceAndTrained(_ result: SessionResult, sourceLocation: SourceLocation = #_sourceLocation) {
        let summary = SummaryLine.parse(result.summary.description[...])
        #expect(summary["units"] == summary["units_expected"], sourceLocation: sourceLocation)
        #expect(result.statistics.appliedTwice == 0, sourceLocation: sourceLocation)
        // From a third (chance) to about 80% in 4 epochs; 96% takes about 20.
        #expect(result.testAccuracy > 0.6, "spirals after 4 epochs: \(result.testAccuracy)", sourceLocation: sourceLocation)
    }

    @Test func aCustomModelTrainsThroughTheRuntimesWithEveryUnitAppliedOnce() async throws {
        let session = try SessionAssembly(settings: Self.settings(workers: 2), registry: ModelCatalog.registry)
        let run = try InProcessRun(session: session)
        defer { run.stop() }
        let workers = ["a", "b"].map { run.addWorker(name: $0, registry: ModelCatalog.registry) }
        let result = try #require(await run.waitForResult(), "the session did not finish in time")
        Self.expectEveryUnitAppliedOnceAndTrained(result)
        #expect(SummaryLine.parse(result.summary.description[...])["units_expected"] == String(run.server.totalUnits))
        for worker in workers { #expect(run.log(of: worker).contains { $0.hasPrefix("joined session") && $0.contains("spirals:64,64") }) }
    }

    @Test func aWorkerThatCannotBuildTheModelIsRefusedAndTheOthersTrainOn() async throws {
        let session = try SessionAssembly(settings: Self.settings(workers: 1), registry: ModelCatalog.registry)
        let run = try InProcessRun(session: session)
        defer { run.stop() }
        // An older build: it knows MNIST's families only.
        let older = run.addWorker(name: "older", registry: ModelRegistry([MLPFamily(), CNNFamily()]))
        let refusal = "this session trains a spirals model; the worker can build only mlp, cnn"
        #expect(await run.waitForLog(of: older) { $0.contains(refusal) }, "\(run.log(of: older))")
        _ = run.addWorker(name: "current", registry: ModelCatalog.registry)
        let result = try #require(await run.waitForResult(), "the session did not finish in time")
        let summary = SummaryLine.parse(result.summary.description[...])
        #expect(summary["units"] == summary["units_expected"])
        #expect(summary["joins"] == "1")
    }

    @Test func aWorkerThatTakesDeltasAndOneThatDoesNotTrainSideBySide() async throws {
        let session = try SessionAssembly(settings: Self.settings(workers: 2), registry: ModelCatalog.registry)
        #expect(session.configuration.deltaEncoding == .sign(blockSize: 256))
        let run = try InProcessRun(session: session)
        defer { run.stop() }
        let deltas = run.addWorker(name: "deltas", registry: ModelCatalog.registry)
        // A worker of the contract before deltas: it reads q8 weights and pushes sign, nothing more.
        let whole = run.addWorker(name: "whole", registry: ModelCatalog.registry, encodings: ["q8", "sign"])
        let result = try #require(await run.waitForResult(), "the session did not finish in time")
        Self.expectEveryUnitAppliedOnceAndTrained(result)
        // Every connection is closed once the session finished, so the workers have taken every frame.
        run.stop()
        let (plain, following) = (run.runtime(of: whole), run.runtime(of: deltas))
        #expect(plain.deltasApplied == 0 && plain.wholeWeightsApplied > 10)
        // The first keyframe (and at most one more, for a pull that said version 0), then deltas only.
        #expect(following.wholeWeightsApplied <= 2 && following.deltasApplied > 10,
                "\(following.wholeWeightsApplied) whole, \(following.deltasApplied) deltas")
    }

    /// A session with local Adam, one worker that runs it and one written before it: each is told its
    /// own optimiser and rate, and both train.
    @Test func aWorkerThatRunsLocalAdamAndOneThatCannotTrainSideBySide() async throws {
        var settings = Self.settings(workers: 2)
        (settings.localOptimizer, settings.localLearningRate) = (.adam, 0.01)
        let session = try SessionAssembly(settings: settings, registry: ModelCatalog.registry)
        #expect(session.configuration.localAdam == LocalAdamSettings(learningRate: 0.01, weightDecay: 0))
        let run = try InProcessRun(session: session)
        defer { run.stop() }
        let adam = run.addWorker(name: "adam", registry: ModelCatalog.registry)
        let older = run.addWorker(name: "older", registry: ModelCatalog.registry, localOptimizers: [])
        let result = try #require(await run.waitForResult(), "the session did not finish in time")
        Self.expectEveryUnitAppliedOnceAndTrained(result)
        let joined = { (name: String) in run.log(of: name).first { $0.hasPrefix("joined session") } ?? "" }
        #expect(joined(adam).contains("local steps with Adam, weight decay 0.0 at lr 0.01"), "\(joined(adam))")
        let nesterovRate = session.configuration.localLearningRate
        #expect(joined(older).contains("local steps with Nesterov momentum 0.9 at lr \(nesterovRate)"), "\(joined(older))")
        run.stop()
        #expect(run.runtime(of: adam).unitsApplied > 0 && run.runtime(of: older).unitsApplied > 0)
    }

    @Test func aWorkerThatFetchesEveryFourthUnitPullsAQuarterAsOftenAndTheSessionTrains() async throws {
        let session = try SessionAssembly(settings: Self.settings(workers: 2), registry: ModelCatalog.registry)
        let run = try InProcessRun(session: session)
        defer { run.stop() }
        let every = run.addWorker(name: "every", registry: ModelCatalog.registry)
        let fourth = run.addWorker(name: "fourth", registry: ModelCatalog.registry, fetchEvery: 4)
        let result = try #require(await run.waitForResult(), "the session did not finish in time")
        Self.expectEveryUnitAppliedOnceAndTrained(result)
        run.stop()
        let (always, sometimes) = (run.runtime(of: every), run.runtime(of: fourth))
        // One pull per unit started against one per four (rounded up), give or take the last unit.
        #expect(always.pullsSent >= always.unitsPushed)
        #expect(sometimes.unitsPushed >= 8, "the worker fetching every fourth unit trained \(sometimes.unitsPushed) units")
        #expect(sometimes.pullsSent <= (sometimes.unitsPushed + 3) / 4 + 1,
                "\(sometimes.pullsSent) pulls for \(sometimes.unitsPushed) units")
    }

    @Test func aWorkerThatWaitsForWeightsAfterItsPushAndOneThatPrefetchesTrainSideBySide() async throws {
        let session = try SessionAssembly(settings: Self.settings(workers: 2), registry: ModelCatalog.registry)
        let run = try InProcessRun(session: session)
        defer { run.stop() }
        let waits = run.addWorker(name: "waits", registry: ModelCatalog.registry, pullTiming: .afterPush)
        let prefetches = run.addWorker(name: "prefetches", registry: ModelCatalog.registry, pullTiming: .prefetch)
        let result = try #require(await run.waitForResult(), "the session did not finish in time")
        Self.expectEveryUnitAppliedOnceAndTrained(result)
        run.stop()
        let (waiting, prefetching) = (run.runtime(of: waits), run.runtime(of: prefetches))
        #expect(waiting.unitsPushed >= 8 && prefetching.unitsPushed >= 8,
                "\(waiting.unitsPushed) and \(prefetching.unitsPushed) units")
        // Units started when the answer to the pull behind the push before them came (nearly all: the
        // next unit is usually held already), each pull once; the prefetching worker never waited.
        #expect(waiting.unitsOnFreshWeights * 4 >= waiting.unitsPushed * 3, "\(waiting.unitsOnFreshWeights) of \(waiting.unitsPushed)")
        #expect(waiting.pullsSent <= waiting.unitsPushed + 1, "\(waiting.pullsSent) pulls for \(waiting.unitsPushed) units")
        #expect(prefetching.unitsOnFreshWeights == 0)
        #expect(prefetching.pullsSent >= prefetching.unitsPushed)
    }
}

/// A server and its workers on event loops in this process, and what they said.
final class InProcessRun: @unchecked Sendable {
    // Why @unchecked Sendable is safe: the mutable state (logs, result) is only touched holding
    // `condition`; the runtimes are touched only on their loops.
    let server: ParameterServerRuntime
    private let serverLoop: EventLoop
    private var workerLoops: [EventLoop] = []
    private var workers: [WorkerRuntime] = []
    private var names: [String] = []
    private let condition = NSCondition()
    private var logs: [String: [String]] = [:]
    private var result: SessionResult?

    init(session: SessionAssembly) throws {
        serverLoop = try EventLoop.startOnNewThread(name: "test-server")
        server = try session.makeRuntime(loop: serverLoop)
        // The server starts on its loop's thread; this thread waits for the port it listens on.
        let started = StartedPort()
        serverLoop.execute { [server] in started.set((try? server.start()).map { server.port } ?? -1) }
        let port = started.wait()
        try #require(port > 0, "the server did not start")
        self.port = port
        server.onFinished = { [condition] result in
            condition.lock()
            self.result = result
            condition.broadcast()
            condition.unlock()
        }
    }

    let port: Int

    /// Starts a worker, named `name`, that can build the families of `registry` and offers `encodings`
    /// (nil: ps-worker's default) and fetches weights for every `fetchEvery`-th unit, asking for them
    /// as `pullTiming` says; returns its name.
    func addWorker(name: String, registry: ModelRegistry, encodings: [String]? = nil, fetchEvery: Int = 1,
                   pullTiming: PullTiming = .auto, localOptimizers: [String]? = nil) -> String {
        var configuration = WorkerConfiguration(host: "127.0.0.1", port: port, retryInterval: .milliseconds(200), name: name)
        configuration.once = true
        configuration.fetchEvery = fetchEvery
        configuration.pullTiming = pullTiming
        if let encodings { configuration.encodings = encodings }
        if let localOptimizers { configuration.localOptimizers = localOptimizers }
        let host = WorkerHost(configuration: configuration, registry: registry) { [weak self] line in self?.record(line, from: name) }
        let loop = try! EventLoop.startOnNewThread(name: "test-\(name)")
        let worker = WorkerRuntime(configuration: host.configuration, loop: loop, log: host.log) { try host.makeModel($0) }
        worker.onExit = { _ in loop.stop() }
        loop.execute { worker.start() }
        workerLoops.append(loop)
        workers.append(worker)
        names.append(name)
        return name
    }

    private func record(_ line: String, from name: String) {
        condition.lock()
        logs[name, default: []].append(line)
        condition.broadcast()
        condition.unlock()
    }

    /// The runtime of the worker named `name`; read its figures after ``stop()``.
    func runtime(of name: String) -> WorkerRuntime {
        workers[names.firstIndex(of: name)!]
    }

    func log(of name: String) -> [String] {
        condition.lock()
        defer { condition.unlock() }
        return logs[name] ?? []
    }

    /// Waits (at most 60 s) for a line from `name` that satisfies `matches`.
    func waitForLog(of name: String, _ matches: @escaping @Sendable (String) -> Bool) async -> Bool {
        await Self.offThePool { self.wait { (self.logs[name] ?? []).contains(where: matches) } }
    }

    /// The session's result once it finished (at most 120 s), or nil.
    func waitForResult() async -> SessionResult? {
        await Self.offThePool { self.wait(seconds: 120) { self.result != nil } ? self.result : nil }
    }

    /// Runs a blocking wait on a thread of its own: blocked, it would hold one of the few threads of
    /// Swift Testing's cooperative pool, and the asynchronous suites beside this one would stall.
    private static func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }

    private func wait(seconds: Double = 60, _ done: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while !done() {
            if !condition.wait(until: deadline) { return done() }
        }
        return true
    }

    func stop() {
        for loop in workerLoops + [serverLoop] {
            loop.stop()
            try? loop.join()
        }
        withExtendedLifetime((server, workers)) {}
    }
}

/// The port a server started on, handed from its loop's thread to the test's.
private final class StartedPort: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `port` is only touched holding `condition`.
    private let condition = NSCondition()
    private var port = 0

    func set(_ value: Int) {
        condition.lock()
        port = value
        condition.broadcast()
        condition.unlock()
    }

    func wait() -> Int {
        condition.lock()
        defer { condition.unlock() }
        while port == 0 { condition.wait() }
        return port
    }
}
