import Learning
import Testing
@testable import ParameterServer

/// A store over the whole buffer against stores over two ranges fed the slices of the same updates:
/// every optimiser works element by element, so the ranges end to end must be the whole, bit for
/// bit. This is what lets a sharded session train the model an unsharded one would.
@Suite struct ParameterStoreTests {
    static let count = 301
    /// Not in the middle, and not on a multiple of anything, so no optimiser's blocking hides a mix-up.
    static let split = 113

    /// One update of each kind in turn, with scales and arrivals that change, from a seeded stream.
    static func updates(kind: ModelUpdate.Kind?, seed: UInt64) -> [ModelUpdate] {
        var generator = Xoshiro256(seed: seed)
        return (0..<12).map { step in
            let values = (0..<count).map { _ in Float(generator.nextNormal() * 0.1) }
            let thisKind = kind ?? (step % 2 == 0 ? .gradient : .delta)
            return ModelUpdate(values: values, kind: thisKind, scale: step % 3 == 0 ? 0.5 : 1, sampleCount: 64,
                               arrivalsPerStep: 1 + step % 3)
        }
    }

    static func store(_ kind: OptimizerKind, parameters: [Float]) -> ParameterStore {
        ParameterStore(
            parameters: parameters, optimizer: kind.make(momentum: 0.9, weightDecay: 0.001, delay: 2),
            schedule: ScheduleKind.cosine.make(rate: 0.05, totalSteps: 12), totalSteps: 12)
    }

    @Test(arguments: OptimizerKind.allCases, [ModelUpdate.Kind.gradient, .delta, nil])
    func rangesAppliedSliceBySliceEqualTheWhole(optimizer: OptimizerKind, kind: ModelUpdate.Kind?) throws {
        var generator = Xoshiro256(seed: 3)
        let initial = (0..<Self.count).map { _ in Float(generator.nextNormal()) }
        var whole = Self.store(optimizer, parameters: initial)
        var ranges = [0..<Self.split, Self.split..<Self.count].map { Self.store(optimizer, parameters: Array(initial[$0])) }
        let bounds = [0..<Self.split, Self.split..<Self.count]
        for update in Self.updates(kind: kind, seed: 11) {
            whole.apply(update)
            for (index, range) in bounds.enumerated() {
                var slice = update
                slice.values = Array(update.values[range])
                ranges[index].apply(slice)
            }
        }
        #expect(whole.parameters != initial, "the updates must change something, or the test proves nothing")
        #expect(ranges[0].parameters + ranges[1].parameters == whole.parameters)
        let joined = try ModelTrainingState.joined(ranges.map { $0.trainingState() })
        #expect(joined == whole.trainingState())
        #expect(ranges.allSatisfy { $0.steps == whole.steps && $0.currentLearningRate == whole.currentLearningRate })
    }

    /// A range restored from the slice of the whole state (as a shard is assigned from a snapshot)
    /// carries on exactly as the whole does.
    @Test(arguments: OptimizerKind.allCases)
    func aRangeRestoredFromASliceCarriesOnAsTheWhole(optimizer: OptimizerKind) throws {
        var generator = Xoshiro256(seed: 5)
        let initial = (0..<Self.count).map { _ in Float(generator.nextNormal()) }
        var whole = Self.store(optimizer, parameters: initial)
        let updates = Self.updates(kind: nil, seed: 13)
        for update in updates.prefix(5) { whole.apply(update) }
        let bounds = Self.split..<Self.count
        var range = Self.store(optimizer, parameters: [Float](repeating: 0, count: bounds.count))
        try range.restore(whole.trainingState().slice(bounds))
        for update in updates.dropFirst(5) {
            whole.apply(update)
            var slice = update
            slice.values = Array(update.values[bounds])
            range.apply(slice)
        }
        #expect(range.parameters == Array(whole.parameters[bounds]))
    }

    /// What a server or a shard applies for a delta with 16 workers present: delayed Nesterov's share
    /// (1 / 16) at twice the rate (its gain for 16), the staleness scale on top.
    @Test func aDeltaWithSixteenWorkersPresentMovesAtTheGainedShare() {
        var store = ParameterStore(
            parameters: [1, -1], optimizer: OptimizerKind.delayedNesterov.make(momentum: 0, weightDecay: 0, delay: 1),
            schedule: ScheduleKind.constant.make(rate: 1.5, totalSteps: 4), totalSteps: 4)
        store.apply(ModelUpdate(values: [0.32, -0.64], kind: .delta, scale: 0.5, sampleCount: 512, arrivalsPerStep: 16))
        // w + 1.5 x 2 / 16 x 0.5 x delta = w + 0.09375 delta.
        #expect(abs(store.parameters[0] - 1.03) < 1e-6 && abs(store.parameters[1] - (-1.06)) < 1e-6, "\(store.parameters)")
    }

    @Test func aStateThatDoesNotFitIsRefusedAndChangesNothing() {
        var store = Self.store(.adam, parameters: [1, 2, 3])
        #expect(throws: ModelStateError.self) { try store.restore(ModelTrainingState(parameters: [1, 2], optimizer: OptimizerState(kind: "adam"), scheduleStep: 0)) }
        #expect(throws: ModelStateError.self) { try store.restore(ModelTrainingState(parameters: [1, 2, .nan], optimizer: OptimizerState(kind: "adam"), scheduleStep: 0)) }
        #expect(throws: ModelStateError.self) { try store.restore(ModelTrainingState(parameters: [4, 5, 6], optimizer: OptimizerState(kind: "sgd"), scheduleStep: 1)) }
        #expect(store.parameters == [1, 2, 3] && store.steps == 0)
    }
}
