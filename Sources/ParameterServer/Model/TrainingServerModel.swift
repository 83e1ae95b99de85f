import Learning
import Locking

/// The server's model over any Learning ``Model``: the parameter buffer, an optimiser with its
/// schedule, and a test set to evaluate on.
public final class TrainingServerModel: ServerModel, @unchecked Sendable {
    // Why @unchecked Sendable is safe: `parameters`, `optimizer` and `steps` are touched only by
    // `apply` and the `parameters` getter, which run on the server's event loop; `evaluate` runs on
    // another thread but only reads its argument and uses `evaluator`, guarded by its mutex.

    public let configuration: ModelConfiguration
    public let layout: [TensorView]
    public private(set) var parameters: [Float]
    private var optimizer: any Optimizer
    private let schedule: LearningRateSchedule
    private let totalSteps: Int
    private var steps = 0
    /// Scratch for a delta's pseudo-gradient, kept so that applying one allocates nothing.
    private var pseudoGradient: [Float] = []
    private let evaluator: Locked<EvaluationModel>
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
    public init(
        configuration: ModelConfiguration, model: any Model, seed: UInt64, optimizer: any Optimizer,
        schedule: LearningRateSchedule, totalSteps: Int, testSet: Dataset, initialParameters: [Float]? = nil
    ) {
        self.configuration = configuration
        self.layout = model.layout
        self.parameters = initialParameters ?? model.initialParameters(seed: seed)
        self.optimizer = optimizer
        self.schedule = schedule
        self.totalSteps = totalSteps
        self.testSet = testSet
        self.evaluator = Locked(EvaluationModel(model: model))
    }

    /// The learning rate the next gradient step will use, before any staleness scaling.
    public var currentLearningRate: Float {
        schedule.rate(atStep: steps, totalSteps: totalSteps)
    }

    public func apply(_ update: ModelUpdate) {
        precondition(update.values.count == parameters.count, "the coordinator checks dimensions")
        switch update.kind {
        case .gradient:
            let rate = currentLearningRate * update.scale
            steps += 1
            parameters.withUnsafeMutableBufferPointer { p in
                update.values.withUnsafeBufferPointer { g in
                    optimizer.step(parameters: p, gradient: g, learningRate: rate)
                }
            }
        case .delta:
            // A delta is a pseudo-gradient, -(parameters after the local steps - before), for the same
            // optimiser: the outer optimiser of local SGD (DiLoCo). `sgd` at rate 1 adds it as it is.
            let rate = currentLearningRate * update.scale
            steps += 1
            // Each delta counts for 1 / (workers present) of an outer step: workers that join or leave
            // change how many arrive per step a single process would take.
            optimizer.expectArrivals(update.arrivalsPerStep)
            if pseudoGradient.count != parameters.count { pseudoGradient = [Float](repeating: 0, count: parameters.count) }
            pseudoGradient.withUnsafeMutableBufferPointer { g in
                update.values.withUnsafeBufferPointer { d in
                    for i in 0..<g.count { g[i] = -d[i] }
                }
            }
            parameters.withUnsafeMutableBufferPointer { p in
                pseudoGradient.withUnsafeBufferPointer { g in
                    optimizer.step(parameters: p, gradient: g, learningRate: rate)
                }
            }
        }
    }

    public func trainingState() -> ModelTrainingState {
        ModelTrainingState(parameters: parameters, optimizer: optimizer.state, scheduleStep: steps)
    }

    public func restore(_ state: ModelTrainingState) throws(ModelStateError) {
        guard state.parameters.count == parameters.count else {
            throw ModelStateError("the checkpoint holds \(state.parameters.count) parameters; "
                + "\(configuration) has \(parameters.count)")
        }
        guard state.scheduleStep >= 0 else { throw ModelStateError("negative schedule step \(state.scheduleStep)") }
        guard state.parameters.allSatisfy(\.isFinite) else { throw ModelStateError("the checkpoint's parameters are not all finite") }
        var restored = optimizer
        do {
            try restored.restore(state.optimizer, parameterCount: parameters.count)
        } catch {
            throw ModelStateError(error.description)
        }
        optimizer = restored
        parameters = state.parameters
        steps = state.scheduleStep
    }

    public func evaluate(parameters: [Float]) -> (loss: Double, accuracy: Double) {
        evaluator.withLock { $0.model.evaluate(parameters: parameters, on: testSet) }
    }
}
