import FoundationEssentials
import Glibc

/// Updates a flat parameter buffer from a gradient of the same layout.
///
/// The learning rate is an argument of every step, so the caller decides it per update (a schedule, or
/// the parameter server's `lr / staleness`). State (momentum, Adam moments) is sized at the first step.
public protocol Optimizer: Sendable {
    /// Applies one update.
    ///
    /// - Parameters:
    ///   - parameters: the buffer to update in place.
    ///   - gradient: the mean gradient, same count and layout.
    ///   - learningRate: the step size for this update.
    mutating func step(
        parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, learningRate: Float)

    /// The state a checkpoint needs to carry on exactly where this optimiser is.
    var state: OptimizerState { get }

    /// Replaces the state with one taken from an optimiser of the same kind, for `parameterCount`
    /// parameters. Nothing changes when it throws.
    mutating func restore(_ state: OptimizerState, parameterCount: Int) throws(OptimizerStateError)

    /// How many updates now arrive one by one for each step a single process would take (the active
    /// workers of an asynchronous session); only optimisers that average over arrivals use it.
    mutating func expectArrivals(_ count: Int)
}

extension Optimizer {
    public mutating func expectArrivals(_ count: Int) {}
}

extension Optimizer {
    /// `step` over arrays.
    public mutating func step(parameters: inout [Float], gradient: [Float], learningRate: Float) {
        parameters.withUnsafeMutableBufferPointer { p in
            gradient.withUnsafeBufferPointer { g in step(parameters: p, gradient: g, learningRate: learningRate) }
        }
    }
}

/// Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.
///
/// With `g = gradient + weightDecay * w`: `v = momentum * v + g`, then `w -= lr * v` (or, for Nesterov,
/// `w -= lr * (g + momentum * v)`), as in PyTorch.
public struct SGD: Optimizer {
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    private var velocity: [Float] = []

    public init(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(!nesterov || momentum > 0, "Nesterov needs momentum")
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public mutating func step(
        parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, learningRate: Float
    ) {
        precondition(parameters.count == gradient.count, "parameters and gradient differ in size")
        let (momentum, decay, rate, nesterov) = (self.momentum, weightDecay, learningRate, self.nesterov)
        let w = parameters.baseAddress!, g = gradient.baseAddress!
        if momentum == 0 {
            for index in 0..<parameters.count { w[index] -= rate * (g[index] + decay * w[index]) }
            return
        }
        if velocity.count != parameters.count { velocity = [Float](repeating: 0, count: parameters.count) }
        velocity.withUnsafeMutableBufferPointer { velocity in
            let v = velocity.baseAddress!
            for index in 0..<parameters.count {
                let step = g[index] + decay * w[index]
                let updated = momentum * v[index] + step
                v[index] = updated
                w[index] -= rate * (nesterov ? step + momentum * updated : updated)
            }
        }
    }

    public var state: OptimizerState {
        OptimizerState(kind: "sgd", buffers: velocity.isEmpty ? [:] : ["velocity": velocity])
    }

    public mutating func restore(_ state: OptimizerState, parameterCount: Int) throws(OptimizerStateError) {
        try state.validate(kind: "sgd", buffers: ["velocity"], count: parameterCount)
        velocity = state.buffers["velocity"] ?? []
    }
}

/// Adam (Kingma & Ba), with optional decoupled weight decay (AdamW).
public struct Adam: Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    /// Decoupled weight decay: `w -= lr * weightDecay * w` each step.
    public var weightDecay: Float
    private var m: [Float] = []
    private var v: [Float] = []
    /// Steps taken, for bias correction.
    public private(set) var stepCount = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public mutating func step(
        parameters: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, learningRate: Float
    ) {
        precondition(parameters.count == gradient.count, "parameters and gradient differ in size")
        if m.count != parameters.count {
            m = [Float](repeating: 0, count: parameters.count)
            v = [Float](repeating: 0, count: parameters.count)
            stepCount = 0
        }
        stepCount += 1
        let (beta1, beta2, epsilon) = (self.beta1, self.beta2, self.epsilon)
        let correction1 = 1 - Float(pow(Double(beta1), Double(stepCount)))
        let correction2 = 1 - Float(pow(Double(beta2), Double(stepCount)))
        let rate = learningRate / correction1
        let decay = learningRate * weightDecay
        let w = parameters.baseAddress!, g = gradient.baseAddress!
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                let m = m.baseAddress!, v = v.baseAddress!
                for index in 0..<parameters.count {
                    let gradient = g[index]
                    m[index] = beta1 * m[index] + (1 - beta1) * gradient
                    v[index] = beta2 * v[index] + (1 - beta2) * gradient * gradient
                    w[index] -= rate * m[index] / ((v[index] / correction2).squareRoot() + epsilon) + decay * w[index]
                }
            }
        }
    }

    public var state: OptimizerState {
        OptimizerState(kind: "adam", buffers: m.isEmpty ? [:] : ["m": m, "v": v], stepCount: stepCount)
    }

    public mutating func restore(_ state: OptimizerState, parameterCount: Int) throws(OptimizerStateError) {
        try state.validate(kind: "adam", buffers: ["m", "v"], count: parameterCount)
        m = state.buffers["m"] ?? []
        v = state.buffers["v"] ?? []
        stepCount = m.isEmpty ? 0 : state.stepCount
    }
}

/// How the learning rate changes over training.
public indirect enum LearningRateSchedule: Sendable, Hashable {
    /// Always `rate`.
    case constant(Float)
    /// `rate * factor^(step / every)`.
    case step(Float, factor: Float, every: Int)
    /// Cosine decay from `rate` to `minimum` over `totalSteps`.
    case cosine(Float, minimum: Float = 0)
    /// Linear warm-up from `rate/steps` over `steps`, then `after` (which sees the steps after warm-up).
    case warmup(steps: Int, then: LearningRateSchedule)

    /// The learning rate for 0-based `step` of `totalSteps`.
    public func rate(atStep step: Int, totalSteps: Int) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case .step(let rate, let factor, let every):
            return rate * Float(pow(Double(factor), Double(step / max(every, 1))))
        case .cosine(let rate, let minimum):
            let progress = min(Double(step) / Double(max(totalSteps, 1)), 1)
            return minimum + (rate - minimum) * Float(0.5 * (1 + cos(.pi * progress)))
        case .warmup(let steps, let after):
            if step < steps { return after.rate(atStep: 0, totalSteps: totalSteps - steps) * Float(step + 1) / Float(steps) }
            return after.rate(atStep: step - steps, totalSteps: totalSteps - steps)
        }
    }
}
