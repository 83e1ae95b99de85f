import Testing
@testable import Learning

/// An optimiser restored from another's state must carry on exactly as the original would.
@Suite struct OptimizerStateTests {
    static let count = 37

    /// Gradients that differ per step and per parameter, so a lost moment or step count shows.
    static func gradient(_ step: Int) -> [Float] {
        (0..<count).map { Float(($0 * 7 + step * 13) % 11) / 10 - 0.5 }
    }

    static func carriesOnExactly(_ make: () -> any Optimizer) throws {
        var original = make()
        var parameters = (0..<count).map { Float($0) / 10 }
        for step in 0..<5 { original.step(parameters: &parameters, gradient: gradient(step), learningRate: 0.01) }
        var restored = make()
        try restored.restore(original.state, parameterCount: count)
        var copy = parameters
        for step in 5..<9 {
            original.step(parameters: &parameters, gradient: gradient(step), learningRate: 0.01)
            restored.step(parameters: &copy, gradient: gradient(step), learningRate: 0.01)
        }
        #expect(copy == parameters)
        // A fresh optimiser (moments at zero) diverges: the state is what made them agree.
        var fresh = make()
        var other = (0..<count).map { Float($0) / 10 }
        for step in 0..<5 { fresh.step(parameters: &other, gradient: gradient(step), learningRate: 0.01) }
        var unrestored = other
        var zeroed = make()
        for step in 5..<9 {
            fresh.step(parameters: &other, gradient: gradient(step), learningRate: 0.01)
            zeroed.step(parameters: &unrestored, gradient: gradient(step), learningRate: 0.01)
        }
        #expect(other != unrestored)
    }

    @Test func adamCarriesOnExactly() throws {
        try Self.carriesOnExactly { Adam(weightDecay: 0.01) }
    }

    @Test func momentumCarriesOnExactly() throws {
        try Self.carriesOnExactly { SGD(momentum: 0.9, nesterov: true, weightDecay: 0.001) }
    }

    @Test func adamStateHoldsItsMomentsAndSteps() {
        var adam = Adam()
        #expect(adam.state == OptimizerState(kind: "adam"))
        var parameters = [Float](repeating: 1, count: 4)
        adam.step(parameters: &parameters, gradient: [1, 2, 3, 4], learningRate: 0.1)
        adam.step(parameters: &parameters, gradient: [1, 2, 3, 4], learningRate: 0.1)
        #expect(adam.state.stepCount == 2)
        #expect(adam.state.buffers.keys.sorted() == ["m", "v"])
        #expect(adam.state.buffers["m"]?.count == 4)
    }

    @Test func refusesAnotherOptimisersStateOrTheWrongSize() {
        var adam = Adam()
        #expect(throws: OptimizerStateError.wrongKind(expected: "adam", found: "sgd")) {
            try adam.restore(OptimizerState(kind: "sgd"), parameterCount: 3)
        }
        #expect(throws: OptimizerStateError.badBuffer(name: "v", expectedCount: 3, foundCount: nil)) {
            try adam.restore(OptimizerState(kind: "adam", buffers: ["m": [0, 0, 0]], stepCount: 1), parameterCount: 3)
        }
        var sgd = SGD(momentum: 0.5)
        #expect(throws: OptimizerStateError.badBuffer(name: "velocity", expectedCount: 3, foundCount: 2)) {
            try sgd.restore(OptimizerState(kind: "sgd", buffers: ["velocity": [1, 2]]), parameterCount: 3)
        }
        #expect(throws: OptimizerStateError.badStepCount(-1)) {
            try adam.restore(OptimizerState(kind: "adam", stepCount: -1), parameterCount: 3)
        }
    }
}
