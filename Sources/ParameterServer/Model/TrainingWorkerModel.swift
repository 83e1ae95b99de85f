import Learning

/// A worker's model over any Learning ``Model``: gradients and local SGD steps on its copy of the
/// training set.
///
/// - Warning: Not thread-safe: owned by the worker's compute thread.
public final class TrainingWorkerModel: WorkerModel {
    public var layout: [TensorView] { model.layout }
    public var trainSampleCount: Int { trainSet.count }
    private let model: any Model
    private let trainSet: Dataset
    private var gradient: [Float]
    private var batchImages: [Float] = []
    private var batchLabels: [UInt8] = []
    /// The local steps' optimiser (its velocity, or Adam's moments), carried from one unit to the next:
    /// a worker's inner optimiser keeps its state for the session, as DiLoCo's workers do.
    private var localOptimizer: (any Optimizer)?

    /// Trains `model` (this instance only: it is not thread-safe) on `trainSet`.
    public init(model: any Model, trainSet: Dataset) {
        precondition(model.inputSize == trainSet.imageSize, "the model takes \(model.inputSize) values per sample; the data has \(trainSet.imageSize)")
        self.model = model
        self.trainSet = trainSet
        self.gradient = [Float](repeating: 0, count: model.parameterCount)
    }

    public func train(
        indices: [UInt32], weights: [Float], batchSize: Int, localSteps: Int, learningRate: Float, optimizer: LocalOptimizer
    ) -> (kind: ModelUpdate.Kind, values: [Float], loss: Float) {
        let positions = indices.map { Int32(bitPattern: $0) }
        precondition(weights.count == model.parameterCount, "weights are checked against the model on arrival")
        // With local steps every push is a delta, even a short unit's single step: a sync round
        // averages its pushes as one kind.
        if localSteps <= 1 {
            let loss = lossAndGradient(positions[...], parameters: weights)
            return (.gradient, gradient, loss)
        }
        var local = weights
        var lossSum: Float = 0
        var batches = 0
        for start in stride(from: 0, to: positions.count, by: batchSize) {
            let batch = positions[start..<min(start + batchSize, positions.count)]
            lossSum += lossAndGradient(batch, parameters: local)
            batches += 1
            // A model serves one session (the worker builds a new one per Welcome), whose optimiser is fixed.
            if localOptimizer == nil { localOptimizer = optimizer.make() }
            localOptimizer!.step(parameters: &local, gradient: gradient, learningRate: learningRate)
        }
        local.withUnsafeMutableBufferPointer { p in
            weights.withUnsafeBufferPointer { w in
                for i in 0..<p.count { p[i] -= w[i] }
            }
        }
        // Diverged (the server refuses the delta): start the next unit with a fresh optimiser state, or
        // every later unit would carry the NaN on.
        if !local.allFinite { localOptimizer = nil }
        return (.delta, local, lossSum / Float(max(1, batches)))
    }

    /// Runs one batch forward and backward into `gradient`, and returns its mean loss.
    private func lossAndGradient(_ batch: ArraySlice<Int32>, parameters: [Float]) -> Float {
        let size = trainSet.imageSize
        if batchImages.count < batch.count * size {
            batchImages = [Float](repeating: 0, count: batch.count * size)
            batchLabels = [UInt8](repeating: 0, count: batch.count)
        }
        batchImages.withUnsafeMutableBufferPointer { images in
            batchLabels.withUnsafeMutableBufferPointer { labels in
                trainSet.gather(indices: batch, into: images, labels: labels)
            }
        }
        return parameters.withUnsafeBufferPointer { p in
            batchImages.withUnsafeBufferPointer { images in
                batchLabels.withUnsafeBufferPointer { labels in
                    gradient.withUnsafeMutableBufferPointer { g in
                        model.lossAndGradient(
                            parameters: p, images: UnsafeBufferPointer(rebasing: images[0..<(batch.count * size)]),
                            labels: UnsafeBufferPointer(rebasing: labels[0..<batch.count]),
                            batchSize: batch.count, gradient: g)
                    }
                }
            }
        }
    }
}
