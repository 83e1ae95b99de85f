import Messages
import Testing

/// A session with local Adam, seen from the wire: a worker that offers Adam is told Adam and sent
/// units at Adam's rate on the session's schedule; one that does not (the older contract) is told
/// nothing new and sent Nesterov's rate on the same schedule.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LocalAdamSessionTests {
    /// Joins as a raw worker, offering `localOptimizers`, and returns its Welcome and its first WorkUnit
    /// (nil when either does not come).
    private func join(port: Int, localOptimizers: [String]) throws -> (Welcome, Messages.WorkUnit)? {
        let peer = try RawPeer(port: port)
        var capabilities = Capabilities(threads: 1, architectures: ["mlp"], maxUnitsAhead: 1)
        capabilities.localOptimizers = localOptimizers
        try peer.send(.hello(Hello(protocolVersion: 1, workerName: "raw-\(localOptimizers.first ?? "nesterov")", capabilities: capabilities)))
        guard case .welcome(let welcome)? = try peer.receive(until: { if case .welcome = $0 { true } else { false } }),
              case .workUnit(let unit)? = try peer.receive(until: { if case .workUnit = $0 { true } else { false } }) else {
            return nil
        }
        return (welcome, unit)
    }

    @Test func eachWorkerIsToldItsOwnLocalOptimiserAndRate() throws {
        let (server, port) = try startServer(compressedSession + [
            "--workers", "1", "--epochs", "4", "--local-optimizer", "adam", "--local-lr", "0.002", "--local-schedule", "cosine",
        ])
        defer { server.end() }
        let worker = try startWorker(port: port, name: "honest", ["--once"])
        defer { worker.end() }
        try worker.waitForLine(containing: "local steps with Adam, weight decay 0.0 at lr 0.002")
        // Past the first epoch the cosine schedule has lowered both rates.
        try server.waitForLine(containing: "epoch 1/4")

        let (adamWelcome, adamUnit) = try #require(try join(port: port, localOptimizers: ["adam"]))
        #expect(adamWelcome.localOptimizer == "adam" && adamWelcome.localLearningRate == 0.002)
        #expect(adamUnit.localLearningRate > 0 && adamUnit.localLearningRate < 0.002, "\(adamUnit.localLearningRate)")

        let (plainWelcome, plainUnit) = try #require(try join(port: port, localOptimizers: []))
        #expect(plainWelcome.localOptimizer.isEmpty && plainWelcome.localWeightDecay == 0)
        // The MLP's Nesterov rate: 0.05 for batches of 64, scaled to this session's 32.
        #expect(plainWelcome.localLearningRate == 0.035, "the MLP's Nesterov rate")
        #expect(plainUnit.localLearningRate > 0.002 && plainUnit.localLearningRate < 0.035, "\(plainUnit.localLearningRate)")
        try server.waitForLine(containing: "(raw-nesterov) joined")
        #expect(server.output.contains { $0.contains("does not offer adam; its local steps are Nesterov SGD at lr 0.035") })
    }
}
