import Foundation
import Testing

@testable import Learning

/// Finite-difference checks of every layer and both models: central differences in Float, objectives
/// summed in Double, small sizes so rounding (about 1e-4 here) stays far below the tolerance.
@Suite struct GradientCheckTests {
    /// Expects `layer`'s backward to agree with finite differences everywhere.
    static func check(_ layer: any Layer, batch: Int) {
        let mismatches = LayerGradientCheck.run(layer, batch: batch)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
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

    @Test func activations() {
        Self.check(ReLULayer(size: 7), batch: 3)
        Self.check(TanhLayer(size: 7), batch: 3)
    }

    /// The check itself must catch a wrong backward, or every test above would pass for nothing.
    @Test func catchesAWrongBackward() {
        let mismatches = LayerGradientCheck.run(HalvedTanh(size: 4), batch: 2)
        #expect(mismatches.count == 8, "\(mismatches)")
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
        var parameters = zip(model.initialParameters(seed: 3), LayerGradientCheck.random(model.parameterCount, &generator, scale: 0.2))
            .map { $0 + $1 }
        let images = LayerGradientCheck.random(batch * description.inputHeight * description.inputWidth, &generator)
        let labels: [UInt8] = (0..<batch).map { UInt8($0 % description.classes) }
        var gradient = [Float](repeating: .nan, count: model.parameterCount)
        var scratch = gradient
        _ = model.lossAndGradient(parameters: parameters, images: images, labels: labels, gradient: &gradient)
        for index in 0..<model.parameterCount {
            let numeric = LayerGradientCheck.centralDifference(&parameters, index) {
                Double(model.lossAndGradient(parameters: $0, images: images, labels: labels, gradient: &scratch))
            }
            #expect(LayerGradientCheck.agrees(gradient[index], numeric), "parameter \(index): \(gradient[index]) vs \(numeric)")
        }
    }
}

/// Tanh with a derivative off by a factor of two: what the gradient check must refuse.
private final class HalvedTanh: ElementwiseActivation {
    let size: Int

    init(size: Int) {
        self.size = size
    }

    func activate(_ x: Float) -> Float { tanhf(x) }
    func derivative(input x: Float, output y: Float) -> Float { 0.5 * (1 - y * y) }
}
