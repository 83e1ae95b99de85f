import Learning
import ModelCatalog
import SpiralsModel
import Testing

/// The registry the executables share, and the example family it carries.
@Suite struct ModelCatalogTests {
    let registry = ModelCatalog.registry

    @Test func listsTheBuiltInFamiliesAndTheExample() {
        #expect(registry.names == ["mlp", "cnn", "spirals"])
    }

    @Test func fillsInDefaultOptionsAndKeepsGivenOnes() throws {
        #expect(try registry.configuration(parsing: "mlp").description == "mlp:512")
        #expect(try registry.configuration(parsing: "mlp:256,128").description == "mlp:256,128")
        #expect(try registry.configuration(parsing: "cnn").description == "cnn:32,64:128")
        #expect(try registry.configuration(parsing: "spirals").description == "spirals:64,64")
        #expect(try registry.makeModel(ModelConfiguration("spirals:8,4")!).parameterCount == (2 * 8 + 8) + (8 * 4 + 4) + (4 * 3 + 3))
    }

    @Test func refusesUnknownFamiliesAndBadOptionsSayingWhy() {
        #expect(throws: ModelConfigurationError("unknown model \"transformer\" (this build knows mlp, cnn, spirals)")) {
            _ = try registry.configuration(parsing: "transformer:12")
        }
        #expect(throws: ModelConfigurationError("model spirals:64: \"64\" is not two hidden widths of 1 to 4096, such as 64,64")) {
            _ = try registry.configuration(parsing: "spirals:64")
        }
        #expect(throws: ModelConfigurationError("model mlp:0: \"0\" is not mlp options (positive widths, e.g. 512 or 256,128)")) {
            _ = try registry.configuration(parsing: "mlp:0")
        }
        // A hostile server cannot make a worker allocate a model of any size.
        #expect(throws: ModelConfigurationError.self) { _ = try registry.configuration(parsing: "mlp:100000000") }
        #expect(throws: ModelConfigurationError.self) { _ = try registry.configuration(parsing: ":512") }
    }

    @Test func theOlderHiddenFlagFoldsIntoTheMLPsOptions() throws {
        #expect(try MLPFamily.model("mlp", hidden: "256,128") == "mlp:256,128")
        #expect(try MLPFamily.model("spirals", hidden: nil) == "spirals")
        #expect(throws: ModelConfigurationError("--hidden applies to --model mlp only")) { _ = try MLPFamily.model("cnn", hidden: "64") }
        #expect(throws: ModelConfigurationError("--hidden takes positive widths separated by commas, e.g. 256,128")) {
            _ = try MLPFamily.model("mlp", hidden: "12,x")
        }
    }

    @Test func configurationTextRoundTrips() {
        for text in ["mlp:512", "cnn:32,64:128", "spirals:64,64", "custom"] {
            #expect(ModelConfiguration(text)?.description == text)
        }
        #expect(ModelConfiguration("cnn:32,64:128") == ModelConfiguration(family: "cnn", options: "32,64:128"))
    }

    @Test func theExamplesOwnLayerHasTheRightGradient() {
        let mismatches = LayerGradientCheck.run(SineLayer(size: 6), batch: 3)
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test func spiralDataIsTheSameOnEveryMachineAndBalanced() throws {
        let data = try SpiralsFamily().loadData(directory: nil)
        let again = try SpiralsFamily().loadData(directory: "/nonexistent")
        #expect(data.train.images == again.train.images && data.train.labels == again.train.labels)
        #expect(Array(data.test.images.prefix(100)) != Array(data.train.images.prefix(100)))
        #expect((data.train.count, data.test.count, data.train.imageSize) == (12_000, 3_000, 2))
        for arm in 0..<3 { #expect(data.train.labels.filter { $0 == arm }.count == 4_000) }
    }

    @Test func theExampleLearnsInOneProcess() throws {
        let family = SpiralsFamily()
        let data = try family.loadData(directory: nil)
        let model = try family.makeModel(options: family.defaultOptions)
        let trainer = Trainer(
            model: model, optimizer: SGD(momentum: 0.9, nesterov: true), schedule: .cosine(family.defaults.learningRate),
            batchSize: 64, totalSteps: 5 * Trainer.stepsPerEpoch(count: data.train.count, batchSize: 64), seed: 3)
        let before = trainer.evaluate(on: data.test).accuracy
        for epoch in 0..<5 { trainer.trainEpoch(on: data.train, epoch: epoch) }
        let after = trainer.evaluate(on: data.test).accuracy
        #expect(before < 0.5 && after > 0.9, "accuracy \(before) before, \(after) after 5 epochs")
    }
}
