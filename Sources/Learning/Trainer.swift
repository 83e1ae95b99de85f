/// Single-process mini-batch training: the loop behind `ps-train` and `ps-bench training`.
///
/// ```swift
/// let trainer = Trainer(model: ModelDescription.defaultMLP.makeModel(), optimizer: SGD(momentum: 0.9, nesterov: true),
///                       schedule: .cosine(0.05), batchSize: 64, totalSteps: 5 * 938, seed: 42)
/// let epoch = trainer.trainEpoch(on: train, epoch: 0)
/// let (loss, accuracy) = trainer.evaluate(on: test)
/// ```
///
/// - Warning: Not thread-safe (it owns a model's scratch buffers).
public final class Trainer {
    public let model: any Model
    public private(set) var parameters: [Float]
    public var optimizer: any Optimizer
    public let schedule: LearningRateSchedule
    public let batchSize: Int
    public let seed: UInt64
    /// The run's length in optimiser steps, for the schedule.
    public let totalSteps: Int
    /// Optimiser steps taken so far (what the schedule sees).
    public private(set) var step = 0
    private var gradient: [Float]
    private var batch: MiniBatch

    /// - Parameter model: the model to train, owned by this trainer from now on (it is not thread-safe).
    public init(
        model: any Model, optimizer: any Optimizer, schedule: LearningRateSchedule, batchSize: Int,
        totalSteps: Int, seed: UInt64
    ) {
        self.totalSteps = totalSteps
        self.model = model
        parameters = model.initialParameters(seed: seed)
        self.optimizer = optimizer
        self.schedule = schedule
        self.batchSize = batchSize
        self.seed = seed
        gradient = [Float](repeating: 0, count: model.parameterCount)
        batch = MiniBatch(capacity: batchSize, imageSize: model.inputSize)
    }

    /// Mini-batches per epoch of `count` samples (the last one may be short).
    public static func stepsPerEpoch(count: Int, batchSize: Int) -> Int { (count + batchSize - 1) / batchSize }

    /// Trains one epoch in the order of `EpochPermutation(seed, epoch)`.
    ///
    /// - Parameters:
    ///   - limit: stop after this many batches (benchmarks), or `nil` for the whole epoch.
    ///   - progress: called every `progressEvery` batches with (batches done, batches in epoch, mean loss).
    /// - Returns: the mean training loss and how many samples were seen.
    @discardableResult
    public func trainEpoch(
        on dataset: Dataset, epoch: Int, limit: Int? = nil, progressEvery: Int = 50,
        progress: ((Int, Int, Double) -> Void)? = nil
    ) -> (loss: Double, samples: Int) {
        let permutation = EpochPermutation(seed: seed, epoch: epoch, count: dataset.count)
        let batches = permutation.batches(of: batchSize)
        let count = min(limit ?? batches.count, batches.count)
        var totalLoss = 0.0
        var samples = 0
        for (index, indices) in batches.prefix(count).enumerated() {
            batch.load(from: dataset, indices: indices)
            totalLoss += Double(trainStep()) * Double(batch.count)
            samples += batch.count
            if let progress, (index + 1) % progressEvery == 0 || index + 1 == count {
                progress(index + 1, count, totalLoss / Double(samples))
            }
        }
        return (totalLoss / Double(max(samples, 1)), samples)
    }

    /// One forward, backward and optimiser step on the loaded batch; returns its loss.
    private func trainStep() -> Float {
        let rate = schedule.rate(atStep: step, totalSteps: totalSteps)
        let batchCount = batch.count
        let loss = batch.withBuffers { images, labels in
            parameters.withUnsafeBufferPointer { parameters in
                gradient.withUnsafeMutableBufferPointer { gradient in
                    model.lossAndGradient(
                        parameters: parameters, images: images, labels: labels, batchSize: batchCount,
                        gradient: gradient)
                }
            }
        }
        gradient.withUnsafeBufferPointer { gradient in
            parameters.withUnsafeMutableBufferPointer { parameters in
                optimizer.step(parameters: parameters, gradient: gradient, learningRate: rate)
            }
        }
        step += 1
        return loss
    }

    /// The test loss and accuracy of the current parameters.
    public func evaluate(on dataset: Dataset) -> (loss: Double, accuracy: Double) {
        parameters.withUnsafeBufferPointer { model.evaluate(parameters: $0, on: dataset) }
    }
}
