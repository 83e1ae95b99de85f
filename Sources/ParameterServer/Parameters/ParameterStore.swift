import Learning

/// A parameter buffer and what updates it: the session's optimiser, its learning-rate schedule and
/// the steps taken. The server's model holds one over the whole buffer; a `ps-shard` holds one over
/// its range.
///
/// Every optimiser here works element by element, so stores over consecutive ranges that apply the
/// ranges' slices of the same updates hold, end to end, exactly what one store over the whole buffer
/// holds: that is what lets a sharded session train the model an unsharded one would.
///
/// ```swift
/// let (optimizer, schedule) = recipe.makeOptimizer()
/// var store = ParameterStore(parameters: initial, optimizer: optimizer, schedule: schedule,
///                            totalSteps: recipe.scheduleSteps)
/// store.apply(ModelUpdate(values: gradient, kind: .gradient, sampleCount: 64))
/// ```
public struct ParameterStore: Sendable {
    /// The parameters, updated in place by ``apply(_:)``.
    public private(set) var parameters: [Float]
    private var optimizer: any Optimizer
    private let schedule: LearningRateSchedule
    /// The steps the schedule spans (cosine needs it).
    public let totalSteps: Int
    /// Updates applied: the schedule's position.
    public private(set) var steps = 0
    /// Scratch for a delta's pseudo-gradient, kept so that applying one allocates nothing.
    private var pseudoGradient: [Float] = []

    /// Creates a store at step 0.
    /// - Parameters:
    ///   - parameters: the starting values.
    ///   - optimizer: the optimiser applied to gradients and to deltas' pseudo-gradients.
    ///   - schedule: the learning rate by applied step.
    ///   - totalSteps: the steps the session will take, for schedules that need it.
    public init(parameters: [Float], optimizer: any Optimizer, schedule: LearningRateSchedule, totalSteps: Int) {
        self.parameters = parameters
        self.optimizer = optimizer
        self.schedule = schedule
        self.totalSteps = totalSteps
    }

    /// The number of parameters.
    public var count: Int { parameters.count }

    /// The learning rate the next step will use, before any staleness scaling.
    public var currentLearningRate: Float {
        schedule.rate(atStep: steps, totalSteps: totalSteps)
    }

    /// Applies one update: a gradient through the optimiser at the schedule's rate times `scale`; a
    /// delta as the pseudo-gradient −delta, the outer optimiser taking `arrivalsPerStep` arrivals
    /// per step.
    /// - Precondition: `update.values.count == count` (callers check dimensions first).
    public mutating func apply(_ update: ModelUpdate) {
        precondition(update.values.count == parameters.count, "an update of \(update.values.count) values for \(parameters.count) parameters")
        let rate = currentLearningRate * update.scale
        steps += 1
        switch update.kind {
        case .gradient:
            parameters.withUnsafeMutableBufferPointer { p in
                update.values.withUnsafeBufferPointer { g in
                    optimizer.step(parameters: p, gradient: g, learningRate: rate)
                }
            }
        case .delta:
            // A delta is a pseudo-gradient, -(parameters after the local steps - before), for the same
            // optimiser: the outer optimiser of local SGD (DiLoCo). `sgd` at rate 1 adds it as it is.
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

    /// The parameters, the optimiser's state and the schedule's step: what carries the store on exactly.
    public func trainingState() -> ModelTrainingState {
        ModelTrainingState(parameters: parameters, optimizer: optimizer.state, scheduleStep: steps)
    }

    /// Carries on from `state`. Nothing changes when it throws.
    /// - Throws: `ModelStateError` when the state does not fit: another parameter count, a negative
    ///   step, parameters that are not finite, or another optimiser's state.
    public mutating func restore(_ state: ModelTrainingState) throws(ModelStateError) {
        guard state.parameters.count == parameters.count else {
            throw ModelStateError("the state holds \(state.parameters.count) parameters; expected \(parameters.count)")
        }
        guard state.scheduleStep >= 0 else { throw ModelStateError("negative schedule step \(state.scheduleStep)") }
        guard state.parameters.allSatisfy(\.isFinite) else { throw ModelStateError("the parameters are not all finite") }
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
}
