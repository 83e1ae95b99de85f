/// Nesterov momentum for pseudo-gradients that arrive one worker at a time: the outer optimiser of
/// asynchronous local SGD, after Liu et al. 2024 ("Asynchronous Local-SGD Training for Language
/// Modeling", delayed Nesterov) and DiLoCo (Douillard et al. 2023) for the synchronous case.
///
/// A worker's pseudo-gradient is `-(its parameters after H local steps - the parameters it started
/// from)`. Applying each with full Nesterov momentum makes N workers' momentum N times as strong, and
/// applying them plainly adds N workers' steps where one process would take one (local SGD at large H
/// diverges that way). So each arrival is applied at once at `lr k / N`, without momentum, and the
/// momentum moves once per N arrivals, by their mean:
///
/// ```
/// on each g:   w -= (lr k / N) g;   pending += g;   arrivals += 1
/// every N:     v = momentum v + pending / N;   w -= lr k momentum v;   pending = 0
/// ```
///
/// After N arrivals the parameters have moved by `lr k (mean + momentum v)`: exactly Nesterov momentum
/// (PyTorch's form) on the mean pseudo-gradient at `lr k`, which with `delay` 1 is plain Nesterov, as
/// DiLoCo applies to a synchronous round's averaged delta. `k` is ``averagingGain(arrivals:)``, 1 up
/// to four arrivals: the mean of more workers' deltas is less noisy, so it may take a larger step.
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
        let rate = learningRate * Self.averagingGain(arrivals: delay)
        let (share, inverse, momentum) = (rate / Float(delay), 1 / Float(delay), self.momentum)
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

    /// How much larger than at four workers N arrivals move the parameters: `max(1, sqrt(N / 4))`, the
    /// square-root rule for a batch N / 4 times as large (Krizhevsky 2014; Hoffer et al. 2017). The
    /// mean of more workers' deltas is less noisy, so it may take a larger step; the server's default
    /// outer rate (1.5 under the `scaled` policy) was measured with up to four.
    ///
    /// Measured with the MLP (784-512-10), 5 epochs, units of 32 x 16, seeds 42, 1 and 2 (BENCHMARKS.md,
    /// "The outer step grows with the workers"): 8 workers ended at 97.78% at a fixed 1.5, 97.89% at 2
    /// and 97.95% at 2.5 (this gives 2.1); 16 workers at 96.79% at 1.5, 97.10% at 2.8 and 96.76% at 3.5
    /// (this gives 3), and at 95.96% at 4.5, a gain growing linearly ((N + 2) / 4). Side by side on the
    /// final code, 97.91% against 97.81% with 8 workers and 96.91% against 96.85% with 16. With one or
    /// two MLP workers a smaller step (1) did better still, but the spirals example then lost 2 to 7
    /// points (async; 0.8 to 2.5 in sync rounds without momentum).
    public static func averagingGain(arrivals: Int) -> Float {
        max(1, (Float(arrivals) / 4).squareRoot())
    }

    /// ``averagingGain(arrivals:)`` in words, for logs, beside the rule it names.
    public static let averagingGainFormula = "max(1, sqrt(workers / 4))"

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
