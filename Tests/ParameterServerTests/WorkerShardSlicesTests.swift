import Messages
import TensorEncoding
import Testing
@testable import ParameterServer

/// A sharded worker's bookkeeping: which units wait for which shards, and how an update is cut into
/// the shards' slices and their weights put back together.
struct WorkerShardSlicesTests {
    @Test func aUnitIsReadyOnlyOnceEveryShardHasItsSlice() {
        var staged = StagedPushes(shardCount: 3)
        let push = Push(unitID: 7, baseVersion: 4, kind: .delta, loss: 0.5, sampleCount: 16, staged: true)
        staged.stage(push)
        #expect(staged.awaitedShards(of: 7) == [0, 1, 2])
        #expect(staged.received(unitID: 7, from: 2) == .waiting)
        #expect(staged.received(unitID: 7, from: 0) == .waiting)
        #expect(staged.awaitedShards(of: 7) == [1])
        #expect(staged.received(unitID: 7, from: 1) == .ready(push))
        #expect(staged.waitingCount == 0)
        #expect(staged.received(unitID: 7, from: 1) == .unexpected, "a second acknowledgement of one slice")
    }

    @Test func unitsWaitIndependentlyAndTheNextTrainsMeanwhile() {
        var staged = StagedPushes(shardCount: 2)
        staged.stage(Push(unitID: 1, staged: true))
        staged.stage(Push(unitID: 2, staged: true))
        #expect(staged.received(unitID: 1, from: 0) == .waiting)
        #expect(staged.received(unitID: 2, from: 0) == .waiting)
        #expect(staged.received(unitID: 2, from: 1) == .ready(Push(unitID: 2, staged: true)),
                "a later unit need not wait for an earlier one")
        #expect(staged.received(unitID: 1, from: 1) == .ready(Push(unitID: 1, staged: true)))
        #expect(staged.received(unitID: 3, from: 0) == .unexpected, "a unit never pushed")
    }

    @Test func aRefusedSliceDropsItsUnitAndTheOtherShardsAnswersAreIgnored() {
        var staged = StagedPushes(shardCount: 2)
        staged.stage(Push(unitID: 1, staged: true))
        staged.stage(Push(unitID: 2, staged: true))
        // Shard 1 refuses its oldest unanswered slice: unit 1's.
        #expect(staged.refused(by: 1) == 1)
        #expect(staged.awaitedShards(of: 1).isEmpty)
        #expect(staged.received(unitID: 1, from: 0) == .dropped)
        #expect(staged.received(unitID: 2, from: 1) == .waiting)
        #expect(staged.received(unitID: 2, from: 0) == .ready(Push(unitID: 2, staged: true)))
        #expect(staged.refused(by: 0) == nil, "nothing awaits shard 0's answer")
        #expect(staged.waitingCount == 0)
    }

    @Test func aUnitStagedAgainWaitsForTheNewAnswersToo() {
        var staged = StagedPushes(shardCount: 2)
        staged.stage(Push(unitID: 5, baseVersion: 1, staged: true))
        staged.stage(Push(unitID: 5, baseVersion: 2, staged: true))
        #expect(staged.received(unitID: 5, from: 0) == .waiting)
        #expect(staged.received(unitID: 5, from: 1) == .waiting)
        #expect(staged.received(unitID: 5, from: 0) == .waiting)
        #expect(staged.received(unitID: 5, from: 1) == .ready(Push(unitID: 5, baseVersion: 2, staged: true)))
    }

    @Test func slicesFollowTheMapAndJoinBackIntoTheBuffer() {
        let map = ShardMap.balanced(parameterCount: 11, shards: 3)
        let values = (0..<11).map(Float.init)
        let slices = map.slices(of: values)
        #expect(slices == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 10]])
        #expect(map.join(slices) == values)
    }

    @Test func topkKeepsEachRangesShareOfItsEntriesAndOtherEncodingsStayAsTheyAre() throws {
        let map = ShardMap.balanced(parameterCount: 1_000, shards: 3)
        let topk = Messages.Encoding(name: "topk", parameter: 100)
        #expect(try map.ranges.map { try $0.encoding(wire: topk, parameterCount: 1_000) }
                == [.topK(count: 33), .topK(count: 33), .topK(count: 33)])
        let one = Messages.Encoding(name: "topk", parameter: 1)
        #expect(try map.ranges[0].encoding(wire: one, parameterCount: 1_000) == .topK(count: 1), "at least one entry")
        let sign = Messages.Encoding(name: "sign", parameter: 64)
        #expect(try map.ranges[1].encoding(wire: sign, parameterCount: 1_000) == .sign(blockSize: 64))
        #expect(try map.ranges[2].encoding(wire: nil, parameterCount: 1_000) == .fp32)
        #expect(throws: EncodingChoiceError.self) {
            try map.ranges[0].encoding(wire: Messages.Encoding(name: "topk", parameter: 1_001), parameterCount: 1_000)
        }
    }

    @Test func theSliceEncodersKeepTheirOwnErrorFeedback() {
        var encoder = PushEncoder(count: 4, encoding: .sign(blockSize: 4))
        var first = Push(unitID: 1)
        encoder.fill(&first, with: [1, -1, 1, -1])
        #expect(first.values.isEmpty && !first.encodedValues.isEmpty)
        var fp32 = PushEncoder(count: 4, encoding: .fp32)
        var plain = Push(unitID: 1)
        fp32.fill(&plain, with: [1, 2, 3, 4])
        #expect(plain.values == [1, 2, 3, 4] && plain.encodedValues.isEmpty)
        var notFinite = Push(unitID: 2)
        encoder.fill(&notFinite, with: [.nan, 0, 0, 0])
        #expect(notFinite.encodedValues.isEmpty && notFinite.values.count == 4, "not finite: fp32, for the receiver to refuse")
    }
}
