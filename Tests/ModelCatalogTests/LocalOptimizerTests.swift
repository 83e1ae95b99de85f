import Learning
import Messages
import ModelCatalog
import Testing
@testable import ParameterServer

/// Local Adam: the worker's steps, the Welcome's field as a worker reads it, and the server's choice by
/// model family and by what each worker offers.
@Suite struct LocalOptimizerTests {
    /// A spirals worker model and its first weights.
    static func spiralsModel() throws -> (TrainingWorkerModel, [Float]) {
        let family = try ModelCatalog.registry.family(named: "spirals")
        let model = try family.makeModel(options: family.defaultOptions)
        let data = try family.loadData(directory: nil)
        return (TrainingWorkerModel(model: model, trainSet: data.train), model.initialParameters(seed: 3))
    }

    /// DiLoCo's workers keep their inner optimiser's state for the session: a unit of 8 steps and the same
    /// 8 steps as two units of 4, the second starting where the first ended, end at the same weights only
    /// if Adam's moments and step count (its bias correction), or Nesterov's velocity, carry over.
    @Test(arguments: [LocalOptimizer.adam(weightDecay: 0.05), .nesterov(momentum: 0.9)])
    func theLocalOptimiserKeepsItsStateFromOneUnitToTheNext(optimizer: LocalOptimizer) throws {
        let (whole, start) = try Self.spiralsModel()
        let (split, _) = try Self.spiralsModel()
        let indices = (0..<64).map { UInt32($0 * 7) }
        let once = whole.train(indices: indices, weights: start, batchSize: 8, localSteps: 8, learningRate: 0.01, optimizer: optimizer)
        let first = split.train(indices: Array(indices[..<32]), weights: start, batchSize: 8, localSteps: 4, learningRate: 0.01, optimizer: optimizer)
        let middle = zip(start, first.values).map { $0 + $1 }
        let second = split.train(indices: Array(indices[32...]), weights: middle, batchSize: 8, localSteps: 4, learningRate: 0.01, optimizer: optimizer)
        #expect(once.kind == .delta)
        let end = zip(middle, second.values).map { $0 + $1 }
        let expected = zip(start, once.values).map { $0 + $1 }
        let largest = zip(end, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(largest < 1e-5, "two units of 4 steps of \(optimizer) differ from one of 8 by \(largest)")
    }

    /// The steps follow the optimiser named: Adam's differ from Nesterov's, and Nesterov's are PyTorch's
    /// (`v = mu v + g; w -= lr (g + mu v)`, the protocol README's rule), checked against that rule by hand.
    @Test func theStepsAreTheNamedOptimisers() throws {
        let (adam, start) = try Self.spiralsModel()
        let (nesterov, _) = try Self.spiralsModel()
        let (gradients, _) = try Self.spiralsModel()
        let indices = (0..<16).map { UInt32($0 * 11) }
        let adamDelta = adam.train(indices: indices, weights: start, batchSize: 8, localSteps: 2, learningRate: 0.01,
                                   optimizer: .adam(weightDecay: 0))
        let nesterovDelta = nesterov.train(indices: indices, weights: start, batchSize: 8, localSteps: 2, learningRate: 0.01,
                                           optimizer: .nesterov(momentum: 0.9))
        #expect(zip(adamDelta.values, nesterovDelta.values).map { abs($0 - $1) }.max() ?? 0 > 1e-4)
        // By hand: two batches, each gradient taken at the weights the step before left.
        var w = start, v = [Float](repeating: 0, count: start.count)
        for batch in [Array(indices[..<8]), Array(indices[8...])] {
            let g = gradients.train(indices: batch, weights: w, batchSize: 8, localSteps: 1, learningRate: 0,
                                    optimizer: .nesterov(momentum: 0.9)).values
            for i in w.indices {
                v[i] = 0.9 * v[i] + g[i]
                w[i] -= 0.01 * (g[i] + 0.9 * v[i])
            }
        }
        let largest = zip(zip(start, nesterovDelta.values).map { $0 + $1 }, w).map { abs($0 - $1) }.max() ?? 0
        #expect(largest < 1e-6, "Nesterov's local steps differ from the protocol's rule by \(largest)")
    }

    @Test func theWelcomesFieldsBecomeAnOptimiserWithWhatCannotWorkMadeSafe() {
        #expect(LocalOptimizer(wireName: "", momentum: 0.9, weightDecay: 0) == .nesterov(momentum: 0.9))
        #expect(LocalOptimizer(wireName: "nesterov", momentum: 1.5, weightDecay: 0) == .nesterov(momentum: 0))
        #expect(LocalOptimizer(wireName: "adam", momentum: 0.9, weightDecay: 0.05) == .adam(weightDecay: 0.05))
        #expect(LocalOptimizer(wireName: "adam", momentum: 0, weightDecay: -.infinity) == .adam(weightDecay: 0))
        #expect(LocalOptimizer(wireName: "adam", momentum: 0, weightDecay: .nan) == .adam(weightDecay: 0))
        #expect(LocalOptimizer(wireName: "lion", momentum: 0.9, weightDecay: 0) == nil)
    }
}

/// `ps-server`'s local-optimiser flags, resolved against each model family.
@Suite struct LocalOptimizerSettingsTests {
    static func recipe(_ settings: ServerSettings, family name: String) throws -> SessionRecipe {
        let family = try ModelCatalog.registry.family(named: name)
        return settings.recipe(model: ModelConfiguration(family: name), defaults: family.defaults, trainAvailable: 1000, testAvailable: 100)
    }

    @Test func theCNNsWorkersTakeAdamStepsAndTheMLPsNesterovOnes() throws {
        let cnn = try Self.recipe(ServerSettings(), family: "cnn")
        #expect(cnn.localAdam == LocalAdamSettings(learningRate: 0.001, weightDecay: 0.05))
        // Workers that cannot run Adam beside them: the family's Nesterov rate (0.01 at batch 64, scaled
        // to the default batch of 32), not Adam's.
        #expect(cnn.localLearningRate == 0.0071)
        #expect(try Self.recipe(ServerSettings(), family: "mlp").localAdam == nil)
        var uncompressed = ServerSettings()
        uncompressed.uncompressed = true
        #expect(try Self.recipe(uncompressed, family: "cnn").localAdam == nil, "one step per push has no local optimiser")
    }

    @Test func namedFlagsOverrideTheFamilysChoice() throws {
        var settings = ServerSettings()
        settings.localOptimizer = .adam
        settings.localLearningRate = 0.002
        let mlp = try Self.recipe(settings, family: "mlp")
        #expect(mlp.localAdam == LocalAdamSettings(learningRate: 0.002, weightDecay: 0))
        #expect(mlp.localLearningRate == 0.035)
        settings.localOptimizer = .nesterov
        let cnn = try Self.recipe(settings, family: "cnn")
        #expect(cnn.localAdam == nil)
        #expect(cnn.localLearningRate == 0.002)
    }

    @Test func aLocalWeightDecayNeedsLocalAdamAndMustBeANonNegativeNumber() throws {
        var settings = ServerSettings()
        settings.localWeightDecay = 0.01
        #expect(throws: SettingsError.self) { try settings.validate(registry: ModelCatalog.registry) } // the MLP: Nesterov
        settings.model = "cnn"
        try settings.validate(registry: ModelCatalog.registry)
        #expect(try Self.recipe(settings, family: "cnn").localAdam?.weightDecay == 0.01)
        settings.localWeightDecay = -1
        #expect(throws: SettingsError.self) { try settings.validate(registry: ModelCatalog.registry) }
        settings.localWeightDecay = .nan
        #expect(throws: SettingsError.self) { try settings.validate(registry: ModelCatalog.registry) }
    }

    /// `--model cnn --local-lr 0.02` meant Nesterov at 0.02 before local Adam; it would now be Adam at 20
    /// times its rate, so it must name the optimiser.
    @Test func aLocalRateForTheCNNMustNameItsOptimiser() throws {
        var settings = ServerSettings()
        (settings.model, settings.localLearningRate) = ("cnn", 0.02)
        let error = #expect(throws: SettingsError.self) { try settings.validate(registry: ModelCatalog.registry) }
        #expect(error?.description.contains("--local-optimizer adam, or --local-optimizer nesterov") == true, "\(String(describing: error))")
        settings.localOptimizer = .nesterov
        try settings.validate(registry: ModelCatalog.registry)
        settings.model = "mlp"
        settings.localOptimizer = nil
        try settings.validate(registry: ModelCatalog.registry)
    }

    @Test func localOptimiserFlagsNeedLocalSteps() throws {
        var settings = ServerSettings()
        (settings.model, settings.localOptimizer, settings.uncompressed) = ("cnn", .adam, true)
        let error = #expect(throws: SettingsError.self) { try settings.validate(registry: ModelCatalog.registry) }
        #expect(error?.description.hasPrefix("--local-optimizer needs local steps") == true, "\(String(describing: error))")
        settings.uncompressed = false
        try settings.validate(registry: ModelCatalog.registry)
    }
}

/// A real `WorkerRuntime` against a scripted server: it offers Adam in its Hello, and refuses a Welcome
/// that asks for an optimiser it did not offer, naming it, rather than train with another rule.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct WorkerLocalOptimizerTests {
    static func welcome(localOptimizer: String) throws -> Welcome {
        let registry = ModelCatalog.registry
        let configuration = try registry.configuration(parsing: "spirals")
        var welcome = Welcome(protocolVersion: ProtocolVersion.current, workerID: 1, sessionID: "scripted", mode: "async",
                              model: ModelSpec(configuration: configuration, layout: try registry.makeModel(configuration).layout),
                              batchSize: 8, localSteps: 2, localLearningRate: 0.05, trainSamples: 100, heartbeatIntervalMs: 1000)
        welcome.localOptimizer = localOptimizer
        return welcome
    }

    /// Runs a worker offering `offered` against a Welcome naming `asked`, and returns the worker's Hello
    /// and the ErrorReport it answered with (nil: it joined).
    static func answer(offering offered: [String], asked: String) throws -> (Hello?, ErrorReport?) {
        let server = try ScriptedServer()
        defer { server.stop() }
        let worker = try ScriptedServer.Worker(port: server.port, registry: ModelCatalog.registry, localOptimizers: offered)
        defer { worker.stop() }
        let hello = server.receive { if case .hello(let hello) = $0 { hello } else { nil } }
        server.send(.welcome(try welcome(localOptimizer: asked)))
        if !asked.isEmpty && offered.contains(asked) {
            #expect(worker.waitForLog { $0.contains("joined session") && $0.contains("local steps with Adam") })
            return (hello, nil)
        }
        return (hello, server.receive { if case .error(let report) = $0 { report } else { nil } })
    }

    @Test func aWorkerOffersAdamAndTakesItWhenAsked() throws {
        let (hello, report) = try Self.answer(offering: ["adam"], asked: "adam")
        #expect(hello?.capabilities?.localOptimizers == ["adam"])
        #expect(report == nil)
    }

    /// A worker that offered nothing besides Nesterov (as one of the older contract) is asked for Adam by
    /// a server that does not follow the protocol: it must not train with Nesterov under Adam's rate.
    @Test func aWorkerRefusesAnOptimiserItDidNotOffer() throws {
        let (hello, report) = try Self.answer(offering: [], asked: "adam")
        #expect(hello?.capabilities?.localOptimizers == [])
        let refusal = try #require(report)
        #expect(refusal.code == .malformed && refusal.fatal)
        #expect(refusal.message.contains("local optimiser \"adam\", which this worker did not offer (it offered none besides nesterov)"),
                "\(refusal.message)")
    }

    @Test func aWorkerRefusesAnOptimiserItDoesNotKnow() throws {
        let (_, report) = try Self.answer(offering: ["adam"], asked: "lion")
        let refusal = try #require(report)
        #expect(refusal.code == .malformed && refusal.fatal)
        #expect(refusal.message.contains("local optimiser \"lion\", which this worker did not offer (it offered adam)"), "\(refusal.message)")
    }
}
