/// A kind of model that sessions can train, registered by name in a ``ModelRegistry``: it builds the
/// model from its options and provides the data to train and test it on.
///
/// Implement one to train your own model through `ps-server`, `ps-worker` and `ps-train`: compose
/// ``SequentialModel`` from Learning's layers (or your own ``Layer``s), or implement ``Model`` with
/// your own forward and backward, and generate, ship or load the data. Every worker calls
/// ``loadData(directory:)`` itself and must get the same training set, in the same order, as the server.
///
/// ```swift
/// struct LinearFamily: ModelFamily {
///     let name = "linear"
///     let summary = "softmax regression on my data"
///     let defaultOptions = ""
///     func makeModel(options: String) throws(ModelConfigurationError) -> any Model {
///         SequentialModel(layers: [("dense0.", DenseLayer(inputs: 16, outputs: 4, relu: false))])
///     }
///     func loadData(directory: String?) throws -> TrainingData { ... }
/// }
/// ```
public protocol ModelFamily: Sendable {
    /// The name command lines, a worker's Hello and checkpoints use, such as `mlp`. No colon.
    var name: String { get }
    /// One line for `--help` and listings.
    var summary: String { get }
    /// The options used when a command line names the family alone.
    var defaultOptions: String { get }
    /// Learning rates that suit this family where the command line gives none.
    var defaults: ModelTrainingDefaults { get }

    /// Checks `options` and builds a model with scratch of its own (one per thread).
    /// - Throws: ``ModelConfigurationError`` saying what is wrong with the options.
    func makeModel(options: String) throws(ModelConfigurationError) -> any Model

    /// The data to train and test on. `directory` is the `--data` flag, or `nil` for the family's own
    /// default (generated data may ignore it).
    func loadData(directory: String?) throws -> TrainingData

    /// Names the data ``loadData(directory:)`` would load, so that families sharing a dataset (MNIST's
    /// MLP and CNN) are loaded once by a process that may train either. By default each family's own.
    func dataIdentity(directory: String?) -> String
}

extension ModelFamily {
    public var defaults: ModelTrainingDefaults { ModelTrainingDefaults() }

    public func dataIdentity(directory: String?) -> String { "\(name) \(directory ?? "")" }
}

/// What a model family suggests where a command line says nothing: rates that depend on the model,
/// and the single-process recipe `ps-train` uses.
public struct ModelTrainingDefaults: Sendable, Equatable {
    /// The peak rate of plain, momentum and Nesterov SGD on gradients.
    public var learningRate: Float
    /// The rate of a worker's local Nesterov steps (local SGD) on batches of 64; a parameter server
    /// scales it by the square root of its batch's ratio to 64 (0.035 for 0.05 at its default 32).
    public var localLearningRate: Float
    /// `ps-train`'s optimiser (Adam's rate is 0.001 whatever the family). With `.adam`, a parameter
    /// server's workers take their local steps with Adam too by default (at 0.001, with `weightDecay`),
    /// and those that cannot, Nesterov steps at `localLearningRate`.
    public var optimizer: OptimizerKind
    /// `ps-train`'s weight decay with that optimiser (and local Adam's).
    public var weightDecay: Float

    public init(learningRate: Float = 0.05, localLearningRate: Float = 0.05, optimizer: OptimizerKind = .nesterov,
                weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.localLearningRate = localLearningRate
        self.optimizer = optimizer
        self.weightDecay = weightDecay
    }
}

/// A family's training and test sets, and where they came from (for logs).
public struct TrainingData: Sendable {
    public var train: Dataset
    public var test: Dataset
    /// Such as a directory, or "generated (seed 7)".
    public var source: String

    public init(train: Dataset, test: Dataset, source: String) {
        self.train = train
        self.test = test
        self.source = source
    }
}
