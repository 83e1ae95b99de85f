import FoundationEssentials

/// The optimisers a command line can name.
public enum OptimizerKind: String, Sendable, CaseIterable {
    case sgd, momentum, nesterov, adam
    /// Nesterov momentum moved once per `delay` arrivals (see `DelayedNesterov`): for the deltas of
    /// asynchronous local SGD.
    case delayedNesterov = "delayed-nesterov"

    /// Builds the optimiser.
    /// - Parameters:
    ///   - momentum: for `momentum`, `nesterov` and `delayed-nesterov`.
    ///   - weightDecay: L2 for the SGD variants, decoupled for Adam; `delayed-nesterov` has none.
    ///   - delay: arrivals per momentum step, for `delayed-nesterov`.
    public func make(momentum: Float, weightDecay: Float, delay: Int = 1) -> any Optimizer {
        switch self {
        case .sgd: SGD(weightDecay: weightDecay)
        case .momentum: SGD(momentum: momentum, weightDecay: weightDecay)
        case .nesterov: SGD(momentum: momentum, nesterov: true, weightDecay: weightDecay)
        case .adam: Adam(weightDecay: weightDecay)
        case .delayedNesterov: DelayedNesterov(momentum: momentum, delay: max(1, delay))
        }
    }

    /// Whether `momentum` matters to this optimiser.
    public var usesMomentum: Bool { self == .momentum || self == .nesterov || self == .delayedNesterov }

    /// Why this optimiser cannot run with `momentum`, or nil if it can: a momentum must be in 0..<1, and
    /// Nesterov's look-ahead needs some (without, it is `sgd`). Checked before `make`, which traps on both.
    public func momentumProblem(_ momentum: Float) -> String? {
        guard usesMomentum else { return nil }
        guard (0..<1).contains(momentum) else { return "momentum must be in 0..<1, not \(momentum)" }
        if self == .nesterov && momentum == 0 { return "nesterov needs a momentum above 0 (without, it is sgd)" }
        return nil
    }
}

/// The learning-rate schedules a command line can name.
public enum ScheduleKind: String, Sendable, CaseIterable {
    /// The peak rate throughout.
    case constant
    /// The peak rate, times 0.1 after each third of the run.
    case step
    /// Cosine decay from the peak rate to zero.
    case cosine

    /// Builds the schedule over `totalSteps` optimiser steps, with an optional linear warm-up.
    public func make(rate: Float, totalSteps: Int, warmupSteps: Int = 0) -> LearningRateSchedule {
        let schedule: LearningRateSchedule = switch self {
        case .constant: .constant(rate)
        case .step: .step(rate, factor: 0.1, every: max(totalSteps / 3, 1))
        case .cosine: .cosine(rate)
        }
        return warmupSteps > 0 ? .warmup(steps: warmupSteps, then: schedule) : schedule
    }
}

extension ModelDescription {
    /// Parses hidden-layer widths such as `"256,128"`.
    /// - Returns: the widths, or nil when the text is not positive whole numbers separated by commas.
    public static func hiddenWidths(parsing text: String) -> [Int]? {
        let widths = text.split(separator: ",", omittingEmptySubsequences: false).map {
            Int($0.trimmingWhitespace())
        }
        guard !widths.isEmpty, widths.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return widths.map { $0! }
    }
}
