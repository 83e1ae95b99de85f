/// What the server needs of a model: the parameter buffer, a way to apply updates, and evaluation.
///
/// The parameter server sees models only through this protocol (and `WorkerModel`), so the session
/// logic and the runtime can be tested with a tiny model and no dataset.
///
/// - Warning: `apply` and `parameters` are called on the server's event-loop thread only. `evaluate` is
///   called on a background thread with a snapshot of the parameters, concurrently with `apply`;
///   implementations must not share scratch memory between the two.
public protocol ServerModel: AnyObject, Sendable {
    /// The architecture and sizes, as sent to workers in the handshake.
    var specification: ModelSpecification { get }

    /// The current parameters: one contiguous buffer in the specification's layout.
    var parameters: [Float] { get }

    /// Applies one update through the optimiser, at its learning rate times `update.scale`: a gradient
    /// as it is, a delta as the pseudo-gradient `-delta` (the outer step of local SGD).
    func apply(_ update: SessionCoordinator.Update)

    /// Test-set loss and accuracy (0...1) of the given parameters.
    func evaluate(parameters: [Float]) -> (loss: Double, accuracy: Double)

    /// The parameters, optimiser state and schedule position, for a checkpoint.
    func trainingState() -> ModelTrainingState

    /// Carries on from a checkpoint's state. Nothing changes when it throws.
    /// - Throws: `ModelStateError` when the state does not fit this model (parameter count, optimiser).
    func restore(_ state: ModelTrainingState) throws(ModelStateError)
}

/// What a worker needs of a model: gradients, and local steps for local SGD.
///
/// - Warning: Used from the worker's compute thread only.
public protocol WorkerModel: AnyObject {
    /// The architecture and sizes this worker built.
    var specification: ModelSpecification { get }

    /// Trains on `indices` starting from `weights`.
    ///
    /// With one local step the result is the mean gradient over the batch. With `localSteps` > 1 it
    /// takes that many SGD steps of `batchSize` samples at `learningRate`, with Nesterov `momentum`
    /// whose velocity the model keeps from one call to the next, and returns the change in parameters
    /// (new minus `weights`).
    /// - Returns: the update's kind, its values, and the mean training loss.
    func train(
        indices: [UInt32], weights: [Float], batchSize: Int, localSteps: Int, learningRate: Float, momentum: Float
    ) -> (kind: UpdateKind, values: [Float], loss: Float)
}

/// A model's architecture and its parameter layout, as the handshake carries it.
public struct ModelSpecification: Sendable, Equatable {
    /// A named view into the parameter buffer.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var offset: Int

        public init(name: String, shape: [Int], offset: Int) {
            self.name = name
            self.shape = shape
            self.offset = offset
        }
    }

    /// `mlp` or `cnn` (or another name a worker knows).
    public var architecture: String
    /// Widths of the hidden dense layers.
    public var hiddenSizes: [Int]
    /// Filters of each convolution round (CNN only).
    public var convolutionFilters: [Int]
    public var inputHeight: Int
    public var inputWidth: Int
    public var classes: Int
    public var parameterCount: Int
    public var tensors: [Tensor]

    public init(
        architecture: String, hiddenSizes: [Int], convolutionFilters: [Int] = [],
        inputHeight: Int = 28, inputWidth: Int = 28, classes: Int = 10,
        parameterCount: Int, tensors: [Tensor]
    ) {
        self.architecture = architecture
        self.hiddenSizes = hiddenSizes
        self.convolutionFilters = convolutionFilters
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.classes = classes
        self.parameterCount = parameterCount
        self.tensors = tensors
    }
}
