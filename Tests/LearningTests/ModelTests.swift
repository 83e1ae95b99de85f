import Testing

@testable import Learning

@Suite struct ModelTests {
    @Test func defaultLayouts() {
        let small = ModelDescription.smallMLP
        #expect(small.parameterCount == 784 * 128 + 128 + 128 * 10 + 10)
        #expect(small.layout.map(\.name) == ["dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias"])
        #expect(small.layout[2].offset == 784 * 128 + 128)
        let cnn = ModelDescription.defaultCNN
        #expect(cnn.layout.map(\.shape) == [[32, 1, 3, 3], [32], [64, 32, 3, 3], [64], [1600, 128], [128], [128, 10], [10]])
        #expect(cnn.makeModel().parameterCount == cnn.parameterCount)
        #expect(cnn.makeModel().layout == cnn.layout)
    }

    @Test(arguments: [ModelDescription.smallMLP, .defaultMLP, .defaultCNN, ModelDescription(.mlp(hidden: [256, 256]))])
    func namesRoundTrip(description: ModelDescription) {
        #expect(ModelDescription(name: description.name) == description)
    }

    @Test(arguments: ["", "mlp", "mlp:x", "cnn:32", "rnn:1", "mlp:0"])
    func badNamesAreRejected(name: String) {
        #expect(ModelDescription(name: name) == nil)
    }

    @Test(arguments: [ModelDescription.smallMLP, .defaultCNN])
    func shapesAndLossAtInitialisation(description: ModelDescription) {
        let model = description.makeModel()
        let batch = 4
        let parameters = model.initialParameters(seed: 1)
        #expect(parameters.count == model.parameterCount)
        var generator = Xoshiro256(seed: 2)
        let images = (0..<(batch * 784)).map { _ in Float(generator.nextNormal()) }
        let labels: [UInt8] = [0, 1, 2, 3]
        var gradient = [Float](repeating: .nan, count: model.parameterCount)
        let loss = model.lossAndGradient(parameters: parameters, images: images, labels: labels, gradient: &gradient)
        #expect(loss.isFinite && loss > 0.5 && loss < 10)
        #expect(gradient.allSatisfy { $0.isFinite })
        let logits = parameters.withUnsafeBufferPointer { p in
            images.withUnsafeBufferPointer { model.logits(parameters: p, images: $0, batchSize: batch).count }
        }
        #expect(logits == batch * 10)
    }

    @Test func sameSeedSameWeightsBitForBit() {
        let model = ModelDescription.defaultCNN.makeModel()
        let a = model.initialParameters(seed: 99)
        let b = ModelDescription.defaultCNN.makeModel().initialParameters(seed: 99)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(a != model.initialParameters(seed: 100))
        // He initialisation: the first dense layer's weights have variance near 2 / fan-in.
        let mlp = ModelDescription.smallMLP.makeModel().initialParameters(seed: 1)
        let weights = mlp[0..<(784 * 128)]
        let variance = weights.reduce(0.0) { $0 + Double($1 * $1) } / Double(weights.count)
        #expect(abs(variance - 2.0 / 784) < 0.1 * 2.0 / 784)
    }

    static func train(
        _ description: ModelDescription, data: Dataset, steps: Int, optimizer: some Optimizer, rate: Float
    ) -> (parameters: [Float], first: Float, last: Float) {
        var optimizer = optimizer
        let model = description.makeModel()
        var parameters = model.initialParameters(seed: 11)
        var gradient = [Float](repeating: 0, count: model.parameterCount)
        let batch = 32
        var images = [Float](repeating: 0, count: batch * 784)
        var labels = [UInt8](repeating: 0, count: batch)
        var losses: [Float] = []
        var epoch = 0
        while losses.count < steps {
            let permutation = EpochPermutation(seed: 5, epoch: epoch, count: data.count)
            for indices in permutation.batches(of: batch) where indices.count == batch && losses.count < steps {
                images.withUnsafeMutableBufferPointer { i in
                    labels.withUnsafeMutableBufferPointer { l in data.gather(indices: indices, into: i, labels: l) }
                }
                losses.append(model.lossAndGradient(parameters: parameters, images: images, labels: labels, gradient: &gradient))
                optimizer.step(parameters: &parameters, gradient: gradient, learningRate: rate)
            }
            epoch += 1
        }
        let average = { (slice: ArraySlice<Float>) in slice.reduce(0, +) / Float(slice.count) }
        return (parameters, average(losses.prefix(10)), average(losses.suffix(10)))
    }

    static let subset: Dataset? = {
        guard let directory = try? MNIST.dataDirectory() else { return nil }
        return try? MNIST.load(directory: directory, images: MNIST.testImages, labels: MNIST.testLabels).prefix(512)
    }()

    @Test func trainingDrivesTheLossDownAndIsReproducible() throws {
        let data = try #require(Self.subset)
        let description = ModelDescription(.mlp(hidden: [32]))
        let run = Self.train(description, data: data, steps: 200, optimizer: SGD(momentum: 0.9), rate: 0.05)
        #expect(run.last < run.first / 4, "loss \(run.first) -> \(run.last)")
        let again = Self.train(description, data: data, steps: 200, optimizer: SGD(momentum: 0.9), rate: 0.05)
        #expect(run.parameters.map(\.bitPattern) == again.parameters.map(\.bitPattern))
        let model = description.makeModel()
        #expect(model.evaluate(parameters: run.parameters, on: data).accuracy > 0.9)
    }

    @Test(arguments: ["sgd", "nesterov", "adam"])
    func optimisersLearnTheCNN(name: String) throws {
        let data = try #require(Self.subset).prefix(256)
        let optimizer: any Optimizer =
            switch name {
            case "sgd": SGD()
            case "nesterov": SGD(momentum: 0.9, nesterov: true, weightDecay: 1e-4)
            default: Adam()
            }
        let rate: Float = name == "adam" ? 1e-3 : (name == "sgd" ? 0.05 : 0.02)
        let run = Self.train(
            ModelDescription(.cnn(filters: [4, 8], dense: [16])), data: data, steps: 60, optimizer: optimizer, rate: rate)
        #expect(run.last < run.first * 0.6, "loss \(run.first) -> \(run.last)")
    }
}

@Suite struct OptimizerTests {
    @Test func sgdMomentumMatchesTheFormula() {
        var optimizer = SGD(momentum: 0.5, weightDecay: 0.1)
        var w: [Float] = [1, -2]
        optimizer.step(parameters: &w, gradient: [0.5, 1], learningRate: 0.1)
        // g = [0.6, 0.8]; v = g; w -= 0.1 v
        #expect(w == [1 - 0.06, -2 - 0.08])
        optimizer.step(parameters: &w, gradient: [0, 0], learningRate: 0.1)
        // g = 0.1 w = [0.094, -0.208]; v = 0.5 [0.6, 0.8] + g = [0.394, 0.192]
        #expect(abs(w[0] - (0.94 - 0.0394)) < 1e-6 && abs(w[1] - (-2.08 - 0.0192)) < 1e-6)
    }

    @Test func nesterovLooksAhead() {
        var optimizer = SGD(momentum: 0.9, nesterov: true)
        var w: [Float] = [0]
        optimizer.step(parameters: &w, gradient: [1], learningRate: 1)
        #expect(abs(w[0] - -1.9) < 1e-6)  // g + 0.9 * v with v = g
    }

    @Test func adamFirstStepIsTheLearningRate() {
        var optimizer = Adam()
        var w: [Float] = [1, 1]
        optimizer.step(parameters: &w, gradient: [3, -0.01], learningRate: 0.01)
        #expect(abs(w[0] - 0.99) < 1e-5 && abs(w[1] - 1.01) < 1e-4)
        #expect(optimizer.stepCount == 1)
    }

    @Test func schedules() {
        #expect(LearningRateSchedule.constant(0.1).rate(atStep: 50, totalSteps: 100) == 0.1)
        let step = LearningRateSchedule.step(1, factor: 0.1, every: 10)
        #expect(step.rate(atStep: 9, totalSteps: 100) == 1)
        #expect(abs(step.rate(atStep: 25, totalSteps: 100) - 0.01) < 1e-7)
        let cosine = LearningRateSchedule.cosine(1, minimum: 0)
        #expect(cosine.rate(atStep: 0, totalSteps: 100) == 1)
        #expect(abs(cosine.rate(atStep: 50, totalSteps: 100) - 0.5) < 1e-6)
        #expect(abs(cosine.rate(atStep: 100, totalSteps: 100)) < 1e-6)
        let warm = LearningRateSchedule.warmup(steps: 10, then: .cosine(1))
        #expect(abs(warm.rate(atStep: 0, totalSteps: 110) - 0.1) < 1e-6)
        #expect(warm.rate(atStep: 9, totalSteps: 110) == 1)
        #expect(warm.rate(atStep: 10, totalSteps: 110) == 1)
        #expect(abs(warm.rate(atStep: 60, totalSteps: 110) - 0.5) < 1e-6)
    }
}
