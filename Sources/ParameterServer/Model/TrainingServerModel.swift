import Learning
import Locking

/// The server's model over any Learning ``Model``: the parameter buffer, an optimiser with its
/// schedule, and a test set to evaluate on.
public final class TrainingServerModel: ServerModel, @unchecked Sendable {
    // Why @unchecked Sendable is safe: `store` is touched only by `apply`, `restore` and the getters,
    // which run on the server's event loop; `evaluate` runs on another thread but only reads its
    // argument and uses `evaluator`, guarded by its mutex.

    public let configuration: ModelConfiguration
    public let layout: [TensorView]
    /// The parameters with the optimiser and schedule that update them.
    private var store: ParameterStore
    private let evaluator: Locked<EvaluationModel>
    /// Periodic snapshots' evaluator, when a second model was given.
    private let snapshotEvaluator: Locked<EvaluationModel>?
    private let testSet: Dataset

    /// A model with scratch buffers of its own, used only for evaluation.
    private struct EvaluationModel: @unchecked Sendable {
        // Only ever used while holding the mutex around it.
        let model: any Model
    }

    /// Creates the server's model.
    /// - Parameters:
    ///   - configuration: which model, for the handshake and checkpoints.
    ///   - model: that model, built once; this instance evaluates (under a lock) and initialises.
    ///   - seed: the initialisation seed.
    ///   - optimizer: the optimiser applied to gradients.
    ///   - schedule: the learning rate by applied gradient step.
    ///   - totalSteps: the steps the session will take, for schedules that need it (cosine).
    ///   - testSet: the data `evaluate` measures on.
    ///   - initialParameters: parameters to start from instead of a fresh initialisation.
    ///   - snapshotModel: another instance of the model, to evaluate periodic snapshots with
    ///     (`evaluateSnapshot`) while `model` evaluates epochs; nil shares `model`.
    public init(
        configuration: ModelConfiguration, model: any Model, seed: UInt64, optimizer: any Optimizer,
        schedule: LearningRateSchedule, totalSteps: Int, testSet: Dataset, initialParameters: [Float]? = nil,
        snapshotModel: (any Model)? = nil
    ) {
        self.configuration = configuration
        self.layout = model.layout
        self.store = ParameterStore(
            parameters: initialParameters ?? model.initialParameters(seed: seed), optimizer: optimizer, schedule: schedule,
            totalSteps: totalSteps)
        self.testSet = testSet
        self.evaluator = Locked(EvaluationModel(model: model))
        self.snapshotEvaluator = snapshotModel.map { Locked(EvaluationModel(model: $0)) }
    }

    public var parameters: [Float] { store.parameters }

    /// The learning rate the next gradient step will use, before any staleness scaling.
    public var currentLearningRate: Float { store.currentLearningRate }

    public func apply(_ update: ModelUpdate) {
        precondition(update.values.count == store.count, "the coordinator checks dimensions")
        store.apply(update)
    }

    public func trainingState() -> ModelTrainingState {
        store.trainingState()
    }

    public func restore(_ state: ModelTrainingState) throws(ModelStateError) {
        guard state.parameters.count == store.count else {
            throw ModelStateError("the checkpoint holds \(state.parameters.count) parameters; "
                + "\(configuration) has \(store.count)")
        }
        try store.restore(state)
    }

    public func evaluate(parameters: [Float]) -> (loss: Double, accuracy: Double) {
        evaluator.withLock { $0.model.evaluate(parameters: parameters, on: testSet) }
    }

    public func evaluateSnapshot(parameters: [Float]) -> (loss: Double, accuracy: Double) {
        (snapshotEvaluator ?? evaluator).withLock { $0.model.evaluate(parameters: parameters, on: testSet) }
    }
}
