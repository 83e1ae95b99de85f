import Testing
@testable import Learning

@Suite struct DelayedNesterovTests {
    @Test func withADelayOfOneItIsNesterovMomentum() {
        var delayed = DelayedNesterov(momentum: 0.9, delay: 1)
        var nesterov = SGD(momentum: 0.9, nesterov: true)
        var a: [Float] = [1, -2, 3], b: [Float] = [1, -2, 3]
        for step in 0..<5 {
            let gradient: [Float] = [0.1 * Float(step), -0.3, 0.05]
            delayed.step(parameters: &a, gradient: gradient, learningRate: 0.5)
            nesterov.step(parameters: &b, gradient: gradient, learningRate: 0.5)
        }
        for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-5) }
    }

    @Test(arguments: [3, 8])
    func nArrivalsMoveLikeOneNesterovStepOnTheirMean(workers: Int) {
        // N workers' pseudo-gradients, twice round: the delayed optimiser after each N arrivals must
        // stand where Nesterov on the mean stands after each step, at the rate times the gain of N
        // (1 for 3 workers, sqrt(2) for 8).
        let rounds: [[[Float]]] = (0..<2).map { round in
            (0..<workers).map { worker in [Float(worker % 3) - 0.5 * Float(round), Float(worker) * 0.25 - 1] }
        }
        var delayed = DelayedNesterov(momentum: 0.8, delay: workers)
        var nesterov = SGD(momentum: 0.8, nesterov: true)
        var a: [Float] = [0, 0], b: [Float] = [0, 0]
        for round in rounds {
            for gradient in round { delayed.step(parameters: &a, gradient: gradient, learningRate: 0.3) }
            let mean = (0..<2).map { i in round.map { $0[i] }.reduce(0, +) / Float(workers) }
            nesterov.step(parameters: &b, gradient: mean, learningRate: 0.3 * DelayedNesterov.averagingGain(arrivals: workers))
            for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-5) }
        }
    }

    @Test func betweenMomentumStepsEachArrivalIsAppliedAtItsShare() {
        var delayed = DelayedNesterov(momentum: 0.9, delay: 4)
        var w: [Float] = [1]
        delayed.step(parameters: &w, gradient: [2], learningRate: 1)
        #expect(w == [0.5])  // 1 - (1 / 4) * 2, no momentum yet, no gain up to 4 arrivals
    }

    @Test func theGainIsOneUpToFourArrivalsThenGrowsAsTheSquareRoot() {
        for arrivals in 1...4 { #expect(DelayedNesterov.averagingGain(arrivals: arrivals) == 1) }
        #expect(abs(DelayedNesterov.averagingGain(arrivals: 8) - Float(2).squareRoot()) < 1e-6)
        #expect(DelayedNesterov.averagingGain(arrivals: 16) == 2)
        #expect(DelayedNesterov.averagingGain(arrivals: 64) == 4)
    }

    @Test func itsStateCarriesOnExactly() throws {
        var original = DelayedNesterov(momentum: 0.9, delay: 2)
        var w: [Float] = [1, 1]
        for g: Float in [1, 2, 3] { original.step(parameters: &w, gradient: [g, -g], learningRate: 0.1) }
        var restored = DelayedNesterov(momentum: 0.9, delay: 2)
        try restored.restore(original.state, parameterCount: 2)
        var u = w
        original.step(parameters: &w, gradient: [4, -4], learningRate: 0.1)
        restored.step(parameters: &u, gradient: [4, -4], learningRate: 0.1)
        #expect(w == u)
        #expect(throws: OptimizerStateError.self) { try restored.restore(SGD(momentum: 0.5).state, parameterCount: 2) }
    }
}

@Suite struct DelayedNesterovArrivalsTests {
    @Test func theShareFollowsTheWorkersPresent() {
        var delayed = DelayedNesterov(momentum: 0, delay: 1)
        var w: [Float] = [0]
        delayed.expectArrivals(4)
        delayed.step(parameters: &w, gradient: [-2], learningRate: 1)
        #expect(w == [0.5])  // 4 workers: each delta counts a quarter
        delayed.expectArrivals(16)
        delayed.step(parameters: &w, gradient: [-2], learningRate: 1)
        #expect(w == [0.75])  // 16 workers: a sixteenth, at twice the rate
        delayed.expectArrivals(2)
        delayed.step(parameters: &w, gradient: [-2], learningRate: 1)
        #expect(w == [1.75])  // 2 workers: a half
    }
}
