/// Nesterov momentum for pseudo-gradients that arrive one worker at a time: the outer optimiser of
/// asynchronous local SGD, after Liu et al. 2024 ("Asynchronous Local-SGD Training for Language
/// Modeling", delayed Nesterov) and DiLoCo (Douillard et al. 2023) for the synchronous case.
///
/// A worker's pseudo-gradient is `-(its parameters after H local steps - the parameters it started
/// from)`. Applying each with full Nesterov momentum makes N workers' momentum N times as strong, and
/// applying them plainly adds N workers' steps where one process would take one (local SGD at large H
/// diverges that way). So each arrival is applied at once at `lr / N`, without momentum, and the
/// momentum moves once per N arrivals, by their mean:
///
/// ```
/// on each g:   w -= (lr / N) g;   pending += g;   arrivals += 1
/// every N:     v = momentum v + pending / N;   w -= lr momentum v;   pending = 0
/// ```
///
/// After N arrivals the parameters have moved by `lr (mean + momentum v)`: exactly Nesterov momentum
/// (PyTorch's form) on the mean pseudo-gradient, which with `delay` 1 is plain Nesterov, as DiLoCo
/// applies to a synchronous round's averaged delta.
public struct DelayedNesterov: Optimizer {
    public let momentum: Float
    /// N: arrivals per momentum step; the number of workers in an asynchronous session, which follows
    /// the workers present (`expectArrivals`).
    public private(set) var delay: Int
    private var velocity: [Float] = []
    private var pending: [Float] = []
    private var arrivals = 0

    public init(momentum: Float, delay: Int) {
        precondition(momentum >= 0 && momentum < 1, "momentum must be in 0..<1")
        precondition(delay >= 1, "the delay is at least one arrival")
        self.momentum = momentum
        self.delay = delay
    }

    public mutating func step(
        parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, learningRate: Float
    ) {
        precondition(parameters.count == gradient.count, "parameters and gradient differ in size")
        let count = parameters.count
        if velocity.count != count {
            velocity = [Float](repeating: 0, count: count)
            pending = [Float](repeating: 0, count: count)
        }
        let (share, inverse, momentum, rate) = (learningRate / Float(delay), 1 / Float(delay), self.momentum, learningRate)
        let w = parameters.baseAddress!, g = gradient.baseAddress!
        arrivals += 1
        let movesMomentum = arrivals % delay == 0
        velocity.withUnsafeMutableBufferPointer { velocity in
            pending.withUnsafeMutableBufferPointer { pending in
                let v = velocity.baseAddress!, p = pending.baseAddress!
                if movesMomentum {
                    for index in 0..<count {
                        w[index] -= share * g[index]
                        let updated = momentum * v[index] + (p[index] + g[index]) * inverse
                        v[index] = updated
                        w[index] -= rate * momentum * updated
                        p[index] = 0
                    }
                } else {
                    for index in 0..<count {
                        w[index] -= share * g[index]
                        p[index] += g[index]
                    }
                }
            }
        }
    }

    public mutating func expectArrivals(_ count: Int) {
        delay = max(1, count)
    }

    public var state: OptimizerState {
        OptimizerState(kind: "delayed-nesterov",
                       buffers: velocity.isEmpty ? [:] : ["velocity": velocity, "pending": pending],
                       stepCount: arrivals)
    }

    public mutating func restore(_ state: OptimizerState, parameterCount: Int) throws(OptimizerStateError) {
        try state.validate(kind: "delayed-nesterov", buffers: ["velocity", "pending"], count: parameterCount)
        velocity = state.buffers["velocity"] ?? []
        pending = state.buffers["pending"] ?? []
        arrivals = state.stepCount
    }
}
