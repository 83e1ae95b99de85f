import Learning

/// How a worker takes its local steps (local SGD, `localSteps` > 1). The optimiser's state is kept from
/// one unit to the next for the whole session, as DiLoCo's workers keep theirs.
public enum LocalOptimizer: Sendable, Equatable, CustomStringConvertible {
    /// Nesterov SGD as PyTorch's (`v = mu v + g; w -= lr (g + mu v)`); momentum 0 is plain SGD.
    case nesterov(momentum: Float)
    /// AdamW (beta1 0.9, beta2 0.999, epsilon 1e-8) with decoupled `weightDecay`.
    case adam(weightDecay: Float)

    /// The optimiser a Welcome names, with what a third-party server may send made safe: a momentum
    /// outside 0..<1 or a weight decay that is negative or not finite would diverge, so it becomes 0.
    /// - Returns: nil when `name` is an optimiser this worker does not know.
    public init?(wireName name: String, momentum: Float, weightDecay: Float) {
        switch name {
        case "", LocalOptimizerKind.nesterov.rawValue:
            self = .nesterov(momentum: (0..<1).contains(momentum) ? momentum : 0)
        case LocalOptimizerKind.adam.rawValue:
            self = .adam(weightDecay: weightDecay.isFinite && weightDecay >= 0 ? weightDecay : 0)
        default:
            return nil
        }
    }

    /// Learning's optimiser that takes these steps: its SGD is PyTorch's Nesterov, its Adam decoupled AdamW.
    public func make() -> any Optimizer {
        switch self {
        case .nesterov(let momentum): momentum == 0 ? SGD() : SGD(momentum: momentum, nesterov: true)
        case .adam(let weightDecay): Adam(weightDecay: weightDecay)
        }
    }

    /// Such as "Nesterov momentum 0.9" or "Adam, weight decay 0.05", for logs.
    public var description: String {
        switch self {
        case .nesterov(let momentum): momentum == 0 ? "SGD" : "Nesterov momentum \(momentum)"
        case .adam(let weightDecay): "Adam, weight decay \(weightDecay)"
        }
    }
}

/// The local optimisers an operator can name (`ps-server --local-optimizer`), by their wire names.
public enum LocalOptimizerKind: String, Sendable, CaseIterable {
    case nesterov, adam
}

/// A session's local Adam: the rate and weight decay of workers that can run it.
public struct LocalAdamSettings: Sendable, Equatable {
    /// The peak rate; the local schedule applies to it as to Nesterov's.
    public var learningRate: Float
    /// Decoupled weight decay.
    public var weightDecay: Float

    public init(learningRate: Float, weightDecay: Float) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }
}
