import Learning
import ModelCatalog
import Testing
@testable import ParameterServer

/// The shape of a work unit when `--batch-size` and `--local-steps` are left out: 16 local steps of 32
/// samples, and `ps-train`'s batch of 64 when units are single gradients.
@Suite struct UnitShapeSettingsTests {
    static func recipe(_ settings: ServerSettings) -> SessionRecipe {
        settings.recipe(model: ModelConfiguration(family: "mlp"), defaults: ModelTrainingDefaults(),
                        trainAvailable: 60000, testAvailable: 100)
    }

    @Test func theDefaultUnitIs16StepsOf32Samples() throws {
        let settings = ServerSettings()
        try settings.validate(registry: ModelCatalog.registry)
        let recipe = Self.recipe(settings)
        #expect(recipe.batchSize == 32 && recipe.localSteps == 16)
        var configuration = ServerConfiguration()
        recipe.apply(to: &configuration)
        #expect(configuration.samplesPerUnit == 512)
    }

    /// Gradient pushes keep the batch every earlier version used, so `--uncompressed` is the old exchange.
    @Test func gradientPushesKeepABatchOf64() {
        var uncompressed = ServerSettings()
        uncompressed.uncompressed = true
        #expect(Self.recipe(uncompressed).batchSize == 64 && Self.recipe(uncompressed).localSteps == 1)
        var oneStep = ServerSettings()
        oneStep.localSteps = 1
        #expect(Self.recipe(oneStep).batchSize == 64)
    }

    @Test func givenValuesWinOverTheDefaults() throws {
        var steps = ServerSettings()
        steps.localSteps = 8
        #expect(Self.recipe(steps).batchSize == 32 && Self.recipe(steps).localSteps == 8)
        var batch = ServerSettings()
        batch.batchSize = 64
        #expect(Self.recipe(batch).batchSize == 64 && Self.recipe(batch).localSteps == 16)
        var gradients = ServerSettings()
        (gradients.uncompressed, gradients.batchSize) = (true, 16)
        #expect(Self.recipe(gradients).batchSize == 16)
        // `--uncompressed` is the exchange before encodings also when it takes local steps: batch 64.
        var uncompressedSteps = ServerSettings()
        (uncompressedSteps.uncompressed, uncompressedSteps.localSteps) = (true, 8)
        #expect(Self.recipe(uncompressedSteps).batchSize == 64 && Self.recipe(uncompressedSteps).localSteps == 8)
        var zero = ServerSettings()
        zero.batchSize = 0
        #expect(throws: SettingsError.self) { try zero.validate(registry: ModelCatalog.registry) }
    }

    /// A family's local Nesterov rate is for batches of 64; smaller batches take it scaled by the square
    /// root, so `--batch-size 64 --local-steps 8` is the earlier exchange exactly.
    @Test func theLocalNesterovRateFollowsTheSquareRootOfTheBatch() {
        let mlp = ModelTrainingDefaults(localLearningRate: 0.05)
        #expect(Self.recipe(ServerSettings()).localLearningRate == 0.035)
        var before = ServerSettings()
        (before.batchSize, before.localSteps) = (64, 8)
        #expect(before.defaultLocalNesterovRate(defaults: mlp) == 0.05)
        var sixteen = ServerSettings()
        sixteen.batchSize = 16
        #expect(sixteen.defaultLocalNesterovRate(defaults: mlp) == 0.025)
        // The CNN's Nesterov rate, for workers without Adam beside Adam ones.
        #expect(ServerSettings().defaultLocalNesterovRate(defaults: ModelTrainingDefaults(localLearningRate: 0.01)) == 0.0071)
        var given = ServerSettings()
        given.localLearningRate = 0.05
        #expect(Self.recipe(given).localLearningRate == 0.05)
    }

    /// At 64 and above the family's rate is taken as it is, unrounded and never raised; below, rounded
    /// to two significant figures.
    @Test func theLocalRateIsNeverRaisedNorRoundedAt64() {
        var settings = ServerSettings()
        (settings.batchSize, settings.localSteps) = (64, 8)
        #expect(settings.defaultLocalNesterovRate(defaults: ModelTrainingDefaults(localLearningRate: 0.0125)) == 0.0125)
        settings.batchSize = 1000
        #expect(settings.defaultLocalNesterovRate(defaults: ModelTrainingDefaults(localLearningRate: 0.01)) == 0.01)
        settings.batchSize = 7
        #expect(settings.defaultLocalNesterovRate(defaults: ModelTrainingDefaults(localLearningRate: 0.05)) == 0.017)
        settings.batchSize = 1
        #expect(settings.defaultLocalNesterovRate(defaults: ModelTrainingDefaults(localLearningRate: 0.05)) == 0.0063)
    }
}
