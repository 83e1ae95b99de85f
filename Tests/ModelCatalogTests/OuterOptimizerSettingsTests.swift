import Learning
import ModelCatalog
import Testing
@testable import ParameterServer

/// The server's optimiser flags: what each mode defaults to, and combinations that cannot run.
@Suite struct OuterOptimizerSettingsTests {
    static func settings(mode: TrainingMode, steps: Int, optimizer: OptimizerKind? = nil, momentum: Float? = nil) -> ServerSettings {
        var settings = ServerSettings()
        settings.mode = mode
        settings.localSteps = steps
        settings.optimizer = optimizer
        settings.momentum = momentum
        return settings
    }

    @Test func asyncLocalStepsDefaultToDelayedNesterovWithoutMomentum() throws {
        let settings = Self.settings(mode: .async, steps: 8)
        #expect(settings.effectiveOptimizer == .delayedNesterov)
        #expect(settings.effectiveMomentum == 0)
        try settings.validate(registry: ModelCatalog.registry)
    }

    /// `--optimizer nesterov` in an async session with local steps once got delayed Nesterov's momentum
    /// of 0, and the server trapped building the optimiser.
    @Test(arguments: [TrainingMode.async, .ssp, .sync])
    func aNamedNesterovGetsMomentumInEveryMode(mode: TrainingMode) throws {
        let settings = Self.settings(mode: mode, steps: 8, optimizer: .nesterov)
        #expect(settings.effectiveMomentum > 0)
        try settings.validate(registry: ModelCatalog.registry)
        _ = settings.recipe(model: ModelConfiguration(family: "mlp"), defaults: ModelTrainingDefaults(),
                            trainAvailable: 1000, testAvailable: 100).makeOptimizer()
    }

    @Test func asyncLocalStepsDefaultToScaledStalenessAtOuterRate1Point5() {
        let defaults = ModelTrainingDefaults()
        let async = Self.settings(mode: .async, steps: 8)
        #expect(async.effectiveStalenessPolicy == .scaled)
        #expect(async.effectiveLearningRate(defaults: defaults) == 1.5)
        // Another policy named: the unscaled rate.
        var unscaled = async
        unscaled.stalenessPolicy = StalenessPolicy.none
        #expect(unscaled.effectiveLearningRate(defaults: defaults) == 1)
        // Gradients (Adam) and the other modes keep no policy, and sync rounds' Nesterov rate 1.
        #expect(Self.settings(mode: .async, steps: 1).effectiveStalenessPolicy == StalenessPolicy.none)
        #expect(Self.settings(mode: .async, steps: 1).effectiveLearningRate(defaults: defaults) == 0.0005)
        #expect(Self.settings(mode: .ssp, steps: 8).effectiveStalenessPolicy == StalenessPolicy.none)
        #expect(Self.settings(mode: .ssp, steps: 8).effectiveLearningRate(defaults: defaults) == 1)
        #expect(Self.settings(mode: .sync, steps: 8).effectiveLearningRate(defaults: defaults) == 1)
    }

    /// A session planned for one worker applies its delta as it is: rate 1 async, plain SGD (no outer
    /// momentum) in sync rounds; from two workers on, the steps that make up for averaging.
    @Test func oneWorkersDeltaIsAppliedAsItIs() throws {
        let defaults = ModelTrainingDefaults()
        func settings(_ mode: TrainingMode, workers: Int, momentum: Float? = nil) -> ServerSettings {
            var settings = Self.settings(mode: mode, steps: 16, momentum: momentum)
            settings.workers = workers
            return settings
        }
        #expect(settings(.async, workers: 1).effectiveOptimizer == .delayedNesterov)
        #expect(settings(.async, workers: 1).effectiveLearningRate(defaults: defaults) == 1)
        #expect(settings(.async, workers: 2).effectiveLearningRate(defaults: defaults) == 1.5)
        let sync = settings(.sync, workers: 1)
        #expect(sync.effectiveOptimizer == .sgd && sync.effectiveMomentum == 0)
        #expect(sync.effectiveLearningRate(defaults: defaults) == 1)
        try sync.validate(registry: ModelCatalog.registry)
        let recipe = sync.recipe(model: ModelConfiguration(family: "mlp"), defaults: defaults, trainAvailable: 1000, testAvailable: 100)
        #expect(recipe.optimizerSummary.hasPrefix("sgd"), "\(recipe.optimizerSummary)")
        _ = recipe.makeOptimizer()
        #expect(settings(.sync, workers: 2).effectiveOptimizer == .nesterov && settings(.sync, workers: 2).effectiveMomentum == 0.5)
        // A named Nesterov or momentum keeps its momentum with one worker (it would be refused without).
        for named in [OptimizerKind.nesterov, .momentum] {
            var settings = settings(.sync, workers: 1)
            settings.optimizer = named
            #expect(settings.effectiveMomentum == 0.5)
            try settings.validate(registry: ModelCatalog.registry)
        }
        // Momentum asked for is momentum given, with one worker too.
        #expect(settings(.sync, workers: 1, momentum: 0.5).effectiveOptimizer == .nesterov)
        #expect(settings(.sync, workers: 1, momentum: 0.5).effectiveMomentum == 0.5)
    }

    @Test func momentumZeroMakesASyncSessionsDefaultOuterOptimiserPlainSGD() throws {
        let settings = Self.settings(mode: .sync, steps: 8, momentum: 0)
        #expect(settings.effectiveOptimizer == .sgd)
        // The outer rate of averaging, not the family's rate for gradients (0.05 for the MLP).
        #expect(settings.effectiveLearningRate(defaults: ModelTrainingDefaults()) == 1)
        try settings.validate(registry: ModelCatalog.registry)
    }

    /// The log line names delayed Nesterov's gain where it applies: async and ssp deltas, not sync rounds
    /// (one averaged delta per step) nor gradients.
    @Test func theOptimiserLineNamesTheGainOnlyWhereItApplies() {
        func line(_ mode: TrainingMode, steps: Int) -> String {
            var settings = Self.settings(mode: mode, steps: steps, optimizer: .delayedNesterov)
            settings.momentum = 0
            return settings.recipe(model: ModelConfiguration(family: "mlp"), defaults: ModelTrainingDefaults(),
                                   trainAvailable: 1000, testAvailable: 100).optimizerSummary
        }
        #expect(line(.async, steps: 16) == "delayed-nesterov momentum 0.0, lr 1.5 x max(1, sqrt(workers / 4)), cosine schedule")
        #expect(line(.ssp, steps: 16).contains("x max(1, sqrt(workers / 4))"))
        #expect(!line(.sync, steps: 16).contains("sqrt"))
        #expect(!line(.async, steps: 1).contains("sqrt"))
    }

    @Test func nesterovWithoutMomentumIsRefusedNamingTheFlags() {
        #expect {
            try Self.settings(mode: .async, steps: 1, optimizer: .nesterov, momentum: 0).validate(registry: ModelCatalog.registry)
        } throws: { error in
            "\(error)".contains("--optimizer nesterov with --momentum 0") && "\(error)".contains("needs a momentum above 0")
        }
    }
}
