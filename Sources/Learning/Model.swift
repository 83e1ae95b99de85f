import FoundationEssentials
import Glibc

/// A classifier whose parameters live outside it, in one flat `Float` buffer laid out by `layout`.
///
/// The model itself only holds scratch space, so one instance serves any parameter buffer (the server's,
/// a worker's copy) and the hot path allocates nothing once the largest batch has been seen.
///
/// ```swift
/// let model = ModelDescription.defaultMLP.makeModel()
/// var parameters = model.initialParameters(seed: 42)
/// var gradient = [Float](repeating: 0, count: model.parameterCount)
/// let loss = parameters.withUnsafeBufferPointer { p in
///     gradient.withUnsafeMutableBufferPointer { g in
///         model.lossAndGradient(parameters: p, images: images, labels: labels, batchSize: 64, gradient: g)
///     }
/// }
/// ```
///
/// - Warning: Not thread-safe: use one model instance per thread.
public protocol Model: AnyObject {
    /// Values per sample going in (784 for MNIST's images).
    var inputSize: Int { get }
    /// Classes the model scores (the logits per sample).
    var classes: Int { get }
    /// How many `Float`s the parameter (and gradient) buffer holds.
    var parameterCount: Int { get }
    /// The named tensors in the parameter buffer.
    var layout: [TensorView] { get }

    /// Fresh parameters: He-normal weights drawn from `seed`, zero biases; the same seed gives the same
    /// buffer bit for bit.
    func initialParameters(seed: UInt64) -> [Float]

    /// Runs one mini-batch forward and backward.
    ///
    /// - Parameters:
    ///   - parameters: `parameterCount` values.
    ///   - images: `batchSize * inputSize` inputs, one sample per row.
    ///   - labels: `batchSize` labels.
    ///   - gradient: `parameterCount` values, overwritten with the mean gradient over the batch.
    /// - Returns: the mean softmax cross-entropy loss over the batch.
    func lossAndGradient(
        parameters: UnsafeBufferPointer<Float>, images: UnsafeBufferPointer<Float>,
        labels: UnsafeBufferPointer<UInt8>, batchSize: Int, gradient: UnsafeMutableBufferPointer<Float>
    ) -> Float

    /// Computes logits (`batchSize * classes`) for a batch; the result is valid until the next call.
    func logits(
        parameters: UnsafeBufferPointer<Float>, images: UnsafeBufferPointer<Float>, batchSize: Int
    ) -> UnsafeBufferPointer<Float>

    /// The mean loss and the accuracy (0-1) over a whole dataset.
    func evaluate(parameters: UnsafeBufferPointer<Float>, on dataset: Dataset) -> (loss: Double, accuracy: Double)
}

extension Model {
    /// `lossAndGradient` over arrays, for tests and examples.
    public func lossAndGradient(
        parameters: [Float], images: [Float], labels: [UInt8], gradient: inout [Float]
    ) -> Float {
        parameters.withUnsafeBufferPointer { p in
            images.withUnsafeBufferPointer { i in
                labels.withUnsafeBufferPointer { l in
                    gradient.withUnsafeMutableBufferPointer { g in
                        lossAndGradient(parameters: p, images: i, labels: l, batchSize: labels.count, gradient: g)
                    }
                }
            }
        }
    }

    /// `evaluate` over an array.
    public func evaluate(parameters: [Float], on dataset: Dataset) -> (loss: Double, accuracy: Double) {
        parameters.withUnsafeBufferPointer { evaluate(parameters: $0, on: dataset) }
    }
}

/// A stack of layers ending in softmax cross-entropy: compose Learning's layers (dense, convolution,
/// pooling, activations) or layers of your own that implement ``Layer``.
///
/// ```swift
/// let model = SequentialModel(layers: [
///     ("dense0.", DenseLayer(inputs: 2, outputs: 64, relu: false)),
///     ("tanh0.", TanhLayer(size: 64)),
///     ("dense1.", DenseLayer(inputs: 64, outputs: 3, relu: false)),
/// ])
/// ```
///
/// - Warning: Not thread-safe: it owns scratch buffers used without locking; build one per thread.
public final class SequentialModel: Model {
    public let layout: [TensorView]
    public let parameterCount: Int
    public let classes: Int
    public var inputSize: Int { layers[0].inputSize }
    private let layers: [any Layer]
    /// Each layer's first parameter in the flat buffer.
    private let offsets: [Int]
    /// Each layer's He fan-in per tensor, in layout order (nil: zero-initialised).
    private let fanIns: [Int?]
    /// activations[i] is layer i's output; gradients[i] is dLoss/d(layer i's output).
    private let activations: [ScratchBuffer<Float>]
    private let gradients: [ScratchBuffer<Float>]
    private var capacity = 0
    /// Samples per forward pass in `evaluate`.
    private let evaluationBatch: Int

    /// Builds a model from layers in order; the last one's outputs are the class scores (logits).
    ///
    /// - Parameters:
    ///   - layers: each layer with the prefix of its tensors' names (`"dense0."` gives `dense0.weight`);
    ///     each layer's `inputSize` must be the previous one's `outputSize`.
    ///   - evaluationBatch: samples per forward pass when evaluating a whole dataset (smaller for
    ///     models whose activations are large).
    public init(layers: [(prefix: String, layer: any Layer)], evaluationBatch: Int = 1000) {
        precondition(!layers.isEmpty, "a model needs at least one layer")
        for (previous, next) in zip(layers, layers.dropFirst()) {
            precondition(previous.layer.outputSize == next.layer.inputSize,
                         "\(next.prefix) takes \(next.layer.inputSize) values; \(previous.prefix) gives \(previous.layer.outputSize)")
        }
        self.layers = layers.map(\.layer)
        layout = .packed(layers: layers)
        parameterCount = layout.parameterCount
        var offset = 0
        offsets = self.layers.map { layer in
            defer { offset += layer.parameterCount }
            return offset
        }
        fanIns = self.layers.flatMap { $0.parameterShapes.map(\.fanIn) }
        activations = self.layers.map { _ in ScratchBuffer(zero: 0) }
        gradients = self.layers.map { _ in ScratchBuffer(zero: 0) }
        classes = self.layers[self.layers.count - 1].outputSize
        self.evaluationBatch = max(1, evaluationBatch)
    }

    public func initialParameters(seed: UInt64) -> [Float] {
        var generator = Xoshiro256(seed: seed)
        var parameters = [Float](repeating: 0, count: parameterCount)
        for (tensor, fanIn) in zip(layout, fanIns) {
            guard let fanIn else { continue }
            let scale = (2 / Double(fanIn)).squareRoot()
            for index in tensor.range { parameters[index] = Float(generator.nextNormal() * scale) }
        }
        return parameters
    }

    private func reserve(batch: Int) {
        guard batch > capacity else { return }
        for (index, layer) in layers.enumerated() {
            activations[index].reserve(batch * layer.outputSize)
            gradients[index].reserve(batch * layer.outputSize)
            layer.reserve(batchCapacity: batch)
        }
        capacity = batch
    }

    private func forward(parameters: UnsafePointer<Float>, images: UnsafePointer<Float>, batch: Int) {
        reserve(batch: batch)
        var input = images
        for (index, layer) in layers.enumerated() {
            layer.forward(
                parameters: parameters + offsets[index], input: input, output: activations[index].pointer, batch: batch)
            input = UnsafePointer(activations[index].pointer)
        }
    }

    public func logits(
        parameters: UnsafeBufferPointer<Float>, images: UnsafeBufferPointer<Float>, batchSize: Int
    ) -> UnsafeBufferPointer<Float> {
        precondition(parameters.count == parameterCount, "parameter buffer has the wrong size")
        precondition(images.count >= batchSize * layers[0].inputSize, "image buffer too small")
        forward(parameters: parameters.baseAddress!, images: images.baseAddress!, batch: batchSize)
        return UnsafeBufferPointer(start: activations[layers.count - 1].pointer, count: batchSize * classes)
    }

    public func lossAndGradient(
        parameters: UnsafeBufferPointer<Float>, images: UnsafeBufferPointer<Float>,
        labels: UnsafeBufferPointer<UInt8>, batchSize: Int, gradient: UnsafeMutableBufferPointer<Float>
    ) -> Float {
        precondition(gradient.count == parameterCount, "gradient buffer has the wrong size")
        precondition(labels.count >= batchSize, "label buffer too small")
        let logits = self.logits(parameters: parameters, images: images, batchSize: batchSize)
        let last = layers.count - 1
        let loss = SoftmaxCrossEntropy.lossAndGradient(
            logits: logits.baseAddress!, labels: labels.baseAddress!, batch: batchSize, classes: classes,
            gradient: gradients[last].pointer)
        let parameterBase = parameters.baseAddress!
        let gradientBase = gradient.baseAddress!
        for index in stride(from: last, through: 0, by: -1) {
            layers[index].backward(
                parameters: parameterBase + offsets[index],
                input: index == 0 ? images.baseAddress! : UnsafePointer(activations[index - 1].pointer),
                output: activations[index].pointer,
                outputGradient: gradients[index].pointer,
                inputGradient: index == 0 ? nil : gradients[index - 1].pointer,
                parameterGradient: gradientBase + offsets[index], batch: batchSize)
        }
        return Float(loss)
    }

    public func evaluate(parameters: UnsafeBufferPointer<Float>, on dataset: Dataset) -> (loss: Double, accuracy: Double) {
        guard dataset.count > 0 else { return (0, 0) }
        var totalLoss = 0.0
        var correct = 0
        dataset.images.withUnsafeBufferPointer { images in
            dataset.labels.withUnsafeBufferPointer { labels in
                var start = 0
                while start < dataset.count {
                    let batch = min(evaluationBatch, dataset.count - start)
                    let chunk = UnsafeBufferPointer(rebasing: images[(start * dataset.imageSize)...])
                    let logits = self.logits(parameters: parameters, images: chunk, batchSize: batch)
                    let result = SoftmaxCrossEntropy.lossAndCorrect(
                        logits: logits.baseAddress!, labels: labels.baseAddress! + start, batch: batch,
                        classes: classes)
                    totalLoss += result.loss
                    correct += result.correct
                    start += batch
                }
            }
        }
        return (totalLoss / Double(dataset.count), Double(correct) / Double(dataset.count))
    }
}

/// Softmax followed by cross-entropy against integer labels, in Double for a stable sum.
enum SoftmaxCrossEntropy {
    /// The mean loss, with `gradient` = (softmax - one-hot) / batch.
    static func lossAndGradient(
        logits: UnsafePointer<Float>, labels: UnsafePointer<UInt8>, batch: Int, classes: Int,
        gradient: UnsafeMutablePointer<Float>
    ) -> Double {
        var total = 0.0
        let scale = 1 / Float(batch)
        for sample in 0..<batch {
            let row = logits + sample * classes
            let out = gradient + sample * classes
            var largest = row[0]
            for index in 1..<classes { largest = max(largest, row[index]) }
            var sum: Float = 0
            for index in 0..<classes {
                out[index] = expf(row[index] - largest)
                sum += out[index]
            }
            let label = Int(labels[sample])
            total += Double(logf(sum) - (row[label] - largest))
            let normaliser = scale / sum
            for index in 0..<classes { out[index] *= normaliser }
            out[label] -= scale
        }
        return total / Double(batch)
    }

    /// The summed loss and the number of correct arg-max predictions.
    static func lossAndCorrect(
        logits: UnsafePointer<Float>, labels: UnsafePointer<UInt8>, batch: Int, classes: Int
    ) -> (loss: Double, correct: Int) {
        var total = 0.0
        var correct = 0
        for sample in 0..<batch {
            let row = logits + sample * classes
            var best = 0
            for index in 1..<classes where row[index] > row[best] { best = index }
            let largest = Double(row[best])
            var sum = 0.0
            for index in 0..<classes { sum += exp(Double(row[index]) - largest) }
            let label = Int(labels[sample])
            total += log(sum) - (Double(row[label]) - largest)
            if best == label { correct += 1 }
        }
        return (total, correct)
    }
}
