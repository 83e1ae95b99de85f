/// An optimiser's internal state, so that training can stop and carry on exactly where it was.
///
/// A checkpoint that held only the parameters would restart momentum and Adam's moments from zero,
/// and the first steps after a resume would be much larger than the ones before the crash.
public struct OptimizerState: Sendable, Equatable {
    /// Which optimiser wrote the state: `sgd` or `adam`.
    public var kind: String
    /// Named per-parameter buffers (`velocity`; Adam's `m` and `v`). Empty before the first step.
    public var buffers: [String: [Float]]
    /// Steps taken (Adam's bias correction depends on it).
    public var stepCount: Int

    public init(kind: String, buffers: [String: [Float]] = [:], stepCount: Int = 0) {
        self.kind = kind
        self.buffers = buffers
        self.stepCount = stepCount
    }
}

/// Why an optimiser refused a state.
public enum OptimizerStateError: Error, Equatable, CustomStringConvertible {
    /// The state was written by another kind of optimiser.
    case wrongKind(expected: String, found: String)
    /// A buffer is missing, or its length is not the parameter count.
    case badBuffer(name: String, expectedCount: Int, foundCount: Int?)
    /// The step count is negative.
    case badStepCount(Int)

    public var description: String {
        switch self {
        case .wrongKind(let expected, let found):
            "the optimiser state is for \(found), but this session uses \(expected)"
        case .badBuffer(let name, let expected, let found):
            "the optimiser's \(name) buffer has \(found.map(String.init) ?? "no") values, expected \(expected)"
        case .badStepCount(let count):
            "the optimiser's step count \(count) is negative"
        }
    }
}

extension OptimizerState {
    /// Checks that every buffer in `names` is present with `count` values, or that there are no
    /// buffers at all (an optimiser that has not stepped yet).
    func validate(kind expected: String, buffers names: [String], count: Int) throws(OptimizerStateError) {
        guard kind == expected else { throw .wrongKind(expected: expected, found: kind) }
        guard stepCount >= 0 else { throw .badStepCount(stepCount) }
        guard !buffers.isEmpty else { return }
        for name in names where buffers[name]?.count != count {
            throw .badBuffer(name: name, expectedCount: count, foundCount: buffers[name]?.count)
        }
    }
}
