import ArgumentParser
import Learning
import ModelCatalog

/// `ps-train`'s flags.
struct TrainOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The model: a registered family, with its options after a colon: \(ModelCatalog.listing).", valueName: "name[:options]"))
    var model = "mlp"

    @Option(help: "Hidden layer widths of the MLP, comma-separated (default 512; 128 for 784-128-10); the same as --model mlp:WIDTHS.")
    var hidden: String?

    @Option(help: "Passes over the training set.")
    var epochs = 5

    @Option(help: "Images per mini-batch.")
    var batchSize = 64

    @Option(help: "sgd, momentum, nesterov or adam (default: the model family's: nesterov for the MLP, adam for the CNN).")
    var optimizer: OptimizerKind?

    @Option(help: "Peak learning rate (default: Adam 0.001; SGD variants the model family's: 0.05 for the MLP, 0.01 for the CNN).")
    var lr: Float?

    @Option(help: "Momentum for momentum and nesterov.")
    var momentum: Float = 0.9

    @Option(help: "L2 weight decay, decoupled for Adam (default: the model family's with its own optimiser: 0.05 for the CNN with Adam; else 0).")
    var weightDecay: Float?

    @Option(help: "Learning-rate schedule: constant, step (x0.1 after each third of the run) or cosine.")
    var schedule: ScheduleKind = .cosine

    @Option(help: "Linear warm-up steps before the schedule.")
    var warmupSteps = 0

    @Option(help: "OpenBLAS threads.")
    var threads = 1

    @Option(help: "Seed for initialisation and batch order.")
    var seed: UInt64 = 42

    @Option(help: "The data directory, for model families that load data (MNIST's default: Data/mnist found from the executable, the source or the current directory).")
    var data: String?

    @Option(help: "Train on only the first N training images.")
    var trainLimit: Int?

    @Option(help: "Evaluate on only the first N test images.")
    var testLimit: Int?

    @Option(help: "Also evaluate every N batches, for a finer time to accuracy (evaluation time is not counted as training time).")
    var evalEvery: Int?

    @Option(help: ArgumentHelp("Also evaluate each time this many more seconds of training have passed (with or without --eval-every; evaluation time is not counted), for a time to accuracy on the same axis as ps-server's --eval-interval.", valueName: "seconds"))
    var evalInterval: Double?

    @Option(help: "The test accuracy whose first reaching the summary reports as seconds_to_target (training seconds).")
    var targetAccuracy = 0.975

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard (lr ?? 1) > 0 else { throw ValidationError("--lr must be positive") }
        guard warmupSteps >= 0 else { throw ValidationError("--warmup-steps must not be negative") }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1") }
        if let evalEvery, evalEvery < 1 { throw ValidationError("--eval-every must be at least 1") }
        if let evalInterval, !(evalInterval > 0 && evalInterval.isFinite) {
            throw ValidationError("--eval-interval must be a positive number of seconds")
        }
        guard (0...1).contains(targetAccuracy) else { throw ValidationError("--target-accuracy must be in 0...1") }
        let configuration = try modelConfiguration()
        let optimizer = try resolvedOptimizer(family: ModelCatalog.registry.family(named: configuration.family))
        if let problem = optimizer.momentumProblem(momentum) {
            throw ValidationError("--optimizer \(optimizer.rawValue) with --momentum \(momentum): \(problem)")
        }
    }

    /// --optimizer, else the family's own; `--momentum 0` turns the family's Nesterov into plain SGD
    /// (Nesterov without momentum is no optimiser).
    func resolvedOptimizer(family: any ModelFamily) -> OptimizerKind {
        if let optimizer { return optimizer }
        let own = family.defaults.optimizer
        return own == .nesterov && momentum == 0 ? .sgd : own
    }

    /// The model --model (and --hidden) name, with the family's default options filled in.
    func modelConfiguration() throws -> ModelConfiguration {
        let text: String
        do {
            text = try MLPFamily.model(model, hidden: hidden)
        } catch {
            throw ValidationError(error.description)
        }
        do {
            return try ModelCatalog.registry.configuration(parsing: text)
        } catch {
            throw ValidationError("--model: \(error.description)")
        }
    }

}

extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
