import ArgumentParser
import FoundationEssentials
import Glibc
import Learning
import ModelCatalog

/// `ps-train`: trains one model in this process, evaluating on the test set after each epoch: the
/// yardstick a fleet is measured against.
@main
struct PSTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-train",
        abstract: "Train a model (MNIST's MLP or CNN, or a registered one) in a single process.",
        discussion: """
            Trains on the 60,000 training images and evaluates on the 10,000 test images after each epoch, \
            printing samples/s, loss, test accuracy and elapsed time. The last line is a machine-readable \
            summary of key=value pairs (model=, epochs=, seconds=, samples_per_second=, test_accuracy=, ...).

            The defaults reach 98% (MLP, 5 epochs) and 99% (CNN, 4 epochs) test accuracy:
              ps-train --model mlp --epochs 5   # 784-512-10, Nesterov 0.9, lr 0.05, cosine
              ps-train --model cnn --epochs 4   # Adam, lr 0.001, cosine, weight decay 0.05
              ps-train --hidden 128             # the classic 784-128-10
            """)

    @OptionGroup var options: TrainOptions

    func run() throws {
        let threads = options.threads
        BLAS.configure(threads: threads)
        print("BLAS: OpenBLAS \(BLAS.kernelName) kernels, \(threads) thread\(threads == 1 ? "" : "s") (\(BLAS.libraryPath))")
        let configuration = try options.modelConfiguration()
        let family = try ModelCatalog.registry.family(named: configuration.family)
        let model = try ModelCatalog.registry.makeModel(configuration)
        let data = try family.loadData(directory: options.data)
        let train = options.trainLimit.map { data.train.prefix($0) } ?? data.train
        let test = options.testLimit.map { data.test.prefix($0) } ?? data.test
        guard train.imageSize == model.inputSize else {
            throw ValidationError("\(configuration) takes \(model.inputSize) values per sample; its data has \(train.imageSize)")
        }

        let optimizer = options.resolvedOptimizer(family: family)
        let rate = options.lr ?? (optimizer == .adam ? 0.001 : family.defaults.learningRate)
        let weightDecay = options.weightDecay ?? (optimizer == family.defaults.optimizer ? family.defaults.weightDecay : 0)
        let totalSteps = options.epochs * Trainer.stepsPerEpoch(count: train.count, batchSize: options.batchSize)
        let rateSchedule = options.schedule.make(rate: rate, totalSteps: totalSteps, warmupSteps: options.warmupSteps)
        print("data: \(train.count) training and \(test.count) test samples from \(data.source)")
        print("model: \(configuration) (\(model.parameterCount) parameters); \(optimizer.rawValue) lr \(rate), "
            + "weight decay \(weightDecay), \(options.schedule.rawValue) schedule, batch \(options.batchSize), seed \(options.seed)")

        let trainer = Trainer(
            model: model, optimizer: optimizer.make(momentum: options.momentum, weightDecay: weightDecay),
            schedule: rateSchedule, batchSize: options.batchSize, totalSteps: totalSteps, seed: options.seed)
        TrainingRun(
            options: options, configuration: configuration, trainer: trainer, train: train, test: test,
            optimizer: optimizer, rate: rate, weightDecay: weightDecay
        ).run()
    }
}
