/// The built-in MNIST MLP: `mlp:512` is 784-512-10, `mlp:256,128` two hidden layers.
public struct MLPFamily: ModelFamily {
    public let name = "mlp"
    public let summary = "MNIST MLP with ReLU; options: hidden widths, e.g. mlp:512 (default) or mlp:256,128"
    public let defaultOptions = "512"
    public let defaults = ModelTrainingDefaults(learningRate: 0.05, localLearningRate: 0.05)

    public init() {}

    public func makeModel(options: String) throws(ModelConfigurationError) -> any Model {
        try ModelDescription.parsing(family: name, options: options, example: "512 or 256,128").makeModel()
    }

    public func loadData(directory: String?) throws -> TrainingData { try MNIST.trainingData(directory: directory) }
    public func dataIdentity(directory: String?) -> String { MNIST.dataIdentity(directory: directory) }

    /// `--model` with the older `--hidden WIDTHS` folded in (`mlp:WIDTHS`), for the commands that keep
    /// that flag.
    /// - Throws: ``ModelConfigurationError`` naming the flag when `hidden` is given for another model or
    ///   is not positive widths.
    public static func model(_ model: String, hidden: String?) throws(ModelConfigurationError) -> String {
        guard let hidden else { return model }
        guard model == "mlp" else { throw ModelConfigurationError("--hidden applies to --model mlp only") }
        guard ModelDescription.hiddenWidths(parsing: hidden) != nil else {
            throw ModelConfigurationError("--hidden takes positive widths separated by commas, e.g. 256,128")
        }
        return "mlp:\(hidden)"
    }
}

/// The built-in MNIST CNN: `cnn:32,64:128` is two rounds of 3x3 convolution, ReLU and 2x2 max-pool
/// with 32 and 64 filters, then dense 128 and 10.
public struct CNNFamily: ModelFamily {
    public let name = "cnn"
    public let summary = "MNIST CNN; options: FILTERS:DENSE, e.g. cnn:32,64:128 (default)"
    public let defaultOptions = "32,64:128"
    // The CNN diverges at 0.05 with momentum; alone, Adam with decoupled weight decay 0.05 reaches 99%
    // in 4 epochs.
    public let defaults = ModelTrainingDefaults(learningRate: 0.01, localLearningRate: 0.01, optimizer: .adam, weightDecay: 0.05)

    public init() {}

    public func makeModel(options: String) throws(ModelConfigurationError) -> any Model {
        try ModelDescription.parsing(family: name, options: options, example: "32,64:128").makeModel()
    }

    public func loadData(directory: String?) throws -> TrainingData { try MNIST.trainingData(directory: directory) }
    public func dataIdentity(directory: String?) -> String { MNIST.dataIdentity(directory: directory) }
}

extension ModelDescription {
    /// The description `family:options` names, or an error quoting an example of good options.
    static func parsing(family: String, options: String, example: String) throws(ModelConfigurationError) -> ModelDescription {
        guard let description = ModelDescription(name: "\(family):\(options)") else {
            throw ModelConfigurationError("\"\(options)\" is not \(family) options (positive widths, e.g. \(example))")
        }
        return description
    }

    /// The configuration naming this description in the built-in families.
    public var configuration: ModelConfiguration { ModelConfiguration(name)! }
}

extension MNIST {
    /// The same for every family that trains on MNIST from `directory`.
    static func dataIdentity(directory: String?) -> String { "mnist \(directory ?? "")" }

    /// MNIST's training and test sets from `directory` (or the default place).
    public static func trainingData(directory: String?) throws -> TrainingData {
        let found = try dataDirectory(override: directory)
        let (train, test) = try load(directory: found)
        return TrainingData(train: train, test: test, source: found)
    }
}
