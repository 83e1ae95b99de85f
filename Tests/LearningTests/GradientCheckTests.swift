import Testing

@testable import Learning

/// Finite-difference checks of every layer and both models: central differences in Float, objectives
/// summed in Double, small sizes so rounding (about 1e-4 here) stays far below the tolerance.
@Suite struct GradientCheckTests {
    static let step: Float = 1e-3

    static func random(_ count: Int, _ generator: inout Xoshiro256, scale: Double = 1) -> [Float] {
        (0..<count).map { _ in Float(generator.nextNormal() * scale) }
    }

    static func expectClose(_ analytic: Float, _ numeric: Double, _ what: String) {
        let difference = abs(Double(analytic) - numeric)
        #expect(difference <= 2e-3 + 2e-2 * max(abs(numeric), Double(abs(analytic))), "\(what): \(analytic) vs \(numeric)")
    }

    /// Checks a layer against the objective `sum(output * weights)`.
    static func check(_ layer: any Layer, batch: Int, needsInputGradient: Bool = true, seed: UInt64 = 1) {
        var generator = Xoshiro256(seed: seed)
        var parameters = random(layer.parameterCount, &generator, scale: 0.5)
        var input = random(batch * layer.inputSize, &generator)
        let weights = random(batch * layer.outputSize, &generator)
        layer.reserve(batchCapacity: batch)

        func objective(_ parameters: [Float], _ input: [Float]) -> Double {
            var output = [Float](repeating: 0, count: batch * layer.outputSize)
            layer.forward(parameters: parameters, input: input, output: &output, batch: batch)
            return zip(output, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }

        var output = [Float](repeating: 0, count: batch * layer.outputSize)
        layer.forward(parameters: parameters, input: input, output: &output, batch: batch)
        var outputGradient = weights
        var inputGradient = [Float](repeating: .nan, count: batch * layer.inputSize)
        var parameterGradient = [Float](repeating: .nan, count: max(layer.parameterCount, 1))
        inputGradient.withUnsafeMutableBufferPointer { inputGradientBuffer in
            layer.backward(
                parameters: parameters, input: input, output: output, outputGradient: &outputGradient,
                inputGradient: inputGradientBuffer.baseAddress!, parameterGradient: &parameterGradient, batch: batch)
        }

        for index in 0..<layer.parameterCount {
            let numeric = centralDifference(&parameters, index) { objective($0, input) }
            expectClose(parameterGradient[index], numeric, "parameter \(index)")
        }
        guard needsInputGradient else { return }
        for index in 0..<input.count {
            let numeric = centralDifference(&input, index) { objective(parameters, $0) }
            expectClose(inputGradient[index], numeric, "input \(index)")
        }
    }

    /// (f(x + h e_i) - f(x - h e_i)) / 2h, leaving `values` as it was.
    static func centralDifference(_ values: inout [Float], _ index: Int, _ f: ([Float]) -> Double) -> Double {
        let saved = values[index]
        values[index] = saved + step
        let plus = f(values)
        values[index] = saved - step
        let minus = f(values)
        values[index] = saved
        return (plus - minus) / Double(2 * step)
    }

    @Test(arguments: [false, true])
    func dense(relu: Bool) {
        Self.check(DenseLayer(inputs: 5, outputs: 4, relu: relu), batch: 3)
    }

    /// `chunk` 2 over a batch of 3 covers a full and a partial chunk of samples per sgemm.
    @Test(arguments: [(false, nil), (true, nil), (true, 2), (false, 1)] as [(Bool, Int?)])
    func convolution(relu: Bool, chunk: Int?) {
        Self.check(
            ConvolutionLayer(channels: 2, filters: 3, kernel: 3, height: 5, width: 6, relu: relu, chunk: chunk), batch: 3)
    }

    @Test(arguments: [(5, 4), (4, 5), (6, 6)])
    func maxPool(height: Int, width: Int) {
        Self.check(MaxPoolLayer(channels: 2, height: height, width: width), batch: 2)
    }

    @Test func flatten() {
        Self.check(FlattenLayer(channels: 3, spatial: 4), batch: 2)
    }

    static let models: [ModelDescription] = [
        ModelDescription(.mlp(hidden: [6]), inputHeight: 3, inputWidth: 3, classes: 4),
        ModelDescription(.mlp(hidden: [5, 4]), inputHeight: 3, inputWidth: 2, classes: 3),
        ModelDescription(.cnn(filters: [2, 3], dense: [5]), inputHeight: 10, inputWidth: 10, classes: 4),
    ]

    @Test(arguments: models)
    func model(description: ModelDescription) {
        let model = description.makeModel()
        let batch = 3
        var generator = Xoshiro256(seed: 5)
        // Random biases too: zero biases on dead inputs would sit exactly on a ReLU kink.
        var parameters = zip(model.initialParameters(seed: 3), Self.random(model.parameterCount, &generator, scale: 0.2))
            .map { $0 + $1 }
        let images = Self.random(batch * description.inputHeight * description.inputWidth, &generator)
        let labels: [UInt8] = (0..<batch).map { UInt8($0 % description.classes) }
        var gradient = [Float](repeating: .nan, count: model.parameterCount)
        var scratch = gradient
        _ = model.lossAndGradient(parameters: parameters, images: images, labels: labels, gradient: &gradient)
        for index in 0..<model.parameterCount {
            let numeric = Self.centralDifference(&parameters, index) {
                Double(model.lossAndGradient(parameters: $0, images: images, labels: labels, gradient: &scratch))
            }
            Self.expectClose(gradient[index], numeric, "parameter \(index)")
        }
    }
}
