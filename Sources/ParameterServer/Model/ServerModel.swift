import Learning

/// What the server needs of a model: the parameter buffer, a way to apply updates, and evaluation.
///
/// The parameter server sees models only through this protocol (and `WorkerModel`), so the session
/// logic and the runtime can be tested with a tiny model and no dataset.
///
/// - Warning: `apply` and `parameters` are called on the server's event-loop thread only. `evaluate` is
///   called on a background thread with a snapshot of the parameters, concurrently with `apply`;
///   implementations must not share scratch memory between the two.
public protocol ServerModel: AnyObject, Sendable {
    /// Which model this is, as sent to workers in the handshake and kept in checkpoints.
    var configuration: ModelConfiguration { get }

    /// The named tensors in the parameter buffer.
    var layout: [TensorView] { get }

    /// The current parameters: one contiguous buffer in `layout`.
    var parameters: [Float] { get }

    /// Applies one update through the optimiser, at its learning rate times `update.scale`: a gradient
    /// as it is, a delta as the pseudo-gradient `-delta` (the outer step of local SGD).
    func apply(_ update: ModelUpdate)

    /// Test-set loss and accuracy (0...1) of the given parameters.
    func evaluate(parameters: [Float]) -> (loss: Double, accuracy: Double)

    /// The same for a periodic snapshot, evaluated on another thread than `evaluate`'s: a model that
    /// can evaluate on two threads at once gives this one scratch buffers of its own, so that an
    /// idle-priority evaluation holding them never delays an epoch's.
    func evaluateSnapshot(parameters: [Float]) -> (loss: Double, accuracy: Double)

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
    /// The named tensors in the parameter buffer, checked against the server's.
    var layout: [TensorView] { get }

    /// Training samples this worker holds for the model; a session needing more is refused.
    var trainSampleCount: Int { get }

    /// Trains on `indices` starting from `weights`.
    ///
    /// With one local step the result is the mean gradient over the batch. With `localSteps` > 1 it
    /// takes that many steps of `batchSize` samples at `learningRate` with `optimizer`, whose state
    /// (velocity, or Adam's moments) the model keeps from one call to the next, and returns the change
    /// in parameters (new minus `weights`).
    /// - Returns: the update's kind, its values, and the mean training loss.
    func train(
        indices: [UInt32], weights: [Float], batchSize: Int, localSteps: Int, learningRate: Float, optimizer: LocalOptimizer
    ) -> (kind: ModelUpdate.Kind, values: [Float], loss: Float)
}

extension ServerModel {
    /// How many `Float`s the parameter buffer holds.
    public var parameterCount: Int { layout.parameterCount }
}

extension WorkerModel {
    /// How many `Float`s the parameter buffer holds.
    public var parameterCount: Int { layout.parameterCount }
}

extension ServerModel {
    /// By default snapshots share `evaluate`.
    public func evaluateSnapshot(parameters: [Float]) -> (loss: Double, accuracy: Double) {
        evaluate(parameters: parameters)
    }
}
