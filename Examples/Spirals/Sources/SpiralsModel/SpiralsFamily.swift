import Learning

/// Three interleaved spiral arms in the plane: the example of a model family of one's own.
///
/// `spirals:64,64` is a 2-64-64-3 network whose first hidden layer is ``SineLayer`` (this example's
/// own layer, with its own forward and backward) and whose second is Learning's tanh. The data is
/// generated, the same on every machine, so workers need no files.
public struct SpiralsFamily: ModelFamily {
    public let name = "spirals"
    public let summary = "three spiral arms in the plane (generated data); options: hidden widths, e.g. spirals:64,64 (default)"
    public let defaultOptions = "64,64"
    public let defaults = ModelTrainingDefaults(learningRate: 0.1, localLearningRate: 0.1)

    public init() {}

    public func makeModel(options: String) throws(ModelConfigurationError) -> any Model {
        let widths = options.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard widths.count == 2, let first = widths[0], let second = widths[1],
              (1...4096).contains(first), (1...4096).contains(second) else {
            throw ModelConfigurationError("\"\(options)\" is not two hidden widths of 1 to 4096, such as 64,64")
        }
        return SequentialModel(layers: [
            ("dense0.", DenseLayer(inputs: 2, outputs: first, relu: false)),
            ("sine0.", SineLayer(size: first)),
            ("dense1.", DenseLayer(inputs: first, outputs: second, relu: false)),
            ("tanh1.", TanhLayer(size: second)),
            ("dense2.", DenseLayer(inputs: second, outputs: SpiralData.arms, relu: false)),
        ])
    }

    public func loadData(directory: String?) throws -> TrainingData {
        // Fixed seeds: every worker must hold the very same training set as the server indexes.
        TrainingData(
            train: SpiralData.generate(pointsPerArm: 4000, seed: 1),
            test: SpiralData.generate(pointsPerArm: 1000, seed: 2),
            source: "generated spirals (3 arms, seeds 1 and 2)")
    }
}
