import Learning

/// What a checkpoint keeps of a server's model: the parameters and everything that decides the next
/// update's effect (the optimiser's state and where the learning-rate schedule is).
public struct ModelTrainingState: Sendable, Equatable {
    /// The parameter buffer, in the specification's layout.
    public var parameters: [Float]
    /// The optimiser's state.
    public var optimizer: OptimizerState
    /// Gradient steps applied so far: the schedule's position.
    public var scheduleStep: Int

    public init(parameters: [Float], optimizer: OptimizerState, scheduleStep: Int) {
        self.parameters = parameters
        self.optimizer = optimizer
        self.scheduleStep = scheduleStep
    }
}

/// Why a model refused a training state.
public struct ModelStateError: Error, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
