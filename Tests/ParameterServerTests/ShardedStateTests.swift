import Learning
import Messages
import Testing
@testable import ParameterServer

/// The pieces a sharded session's state travels in: ranges of a training state, their wire form,
/// the map, and the checkpoint's record of the shards.
@Suite struct ShardedStateTests {
    private func state(count: Int) -> ModelTrainingState {
        ModelTrainingState(
            parameters: (0..<count).map { Float($0) / 3 },
            optimizer: OptimizerState(kind: "adam", buffers: ["m": (0..<count).map { Float($0) }, "v": (0..<count).map { -Float($0) }],
                                      stepCount: 7),
            scheduleStep: 9)
    }

    @Test(arguments: [1, 2, 3, 7])
    func rangesOfAStateJoinBackToIt(shards: Int) throws {
        let whole = state(count: 23)
        let map = ShardMap.balanced(parameterCount: 23, shards: shards)
        #expect(map.ranges.map(\.count).reduce(0, +) == 23)
        #expect(map.ranges.map(\.count).max()! - map.ranges.map(\.count).min()! <= 1)
        let parts = try map.ranges.map { try ModelTrainingState(wireBytes: whole.slice($0.indices).wireBytes()) }
        #expect(try ModelTrainingState.joined(parts) == whole)
    }

    @Test func partsOfDifferentStepsDoNotJoin() {
        let whole = state(count: 10)
        var late = whole.slice(5..<10)
        late.scheduleStep += 1
        #expect(throws: ModelStateError.self) { try ModelTrainingState.joined([whole.slice(0..<5), late]) }
    }

    @Test func aStateWithAShortBufferIsRefused() {
        var broken = state(count: 6)
        broken.optimizer.buffers["m"]?.removeLast()
        #expect(throws: ModelStateError("optimiser buffer m has 5 values, expected 6")) {
            _ = try ModelTrainingState(wireBytes: broken.wireBytes())
        }
    }

    @Test func theCheckpointNamesItsShardsAndRefusesPartsThatDoNotCoverTheModel() throws {
        var checkpoint = sampleCheckpoint()
        let count = checkpoint.model.parameters.count
        checkpoint.shards = [
            .init(index: 0, offset: 0, count: count / 2, shard: "shard-a", address: "10.0.0.1:4000"),
            .init(index: 1, offset: count / 2, count: count - count / 2, shard: "shard-b", address: "10.0.0.2:4000"),
        ]
        #expect(try SessionCheckpoint(fileBytes: checkpoint.fileBytes()).shards == checkpoint.shards)
        checkpoint.shards.removeLast()
        #expect(throws: CheckpointError.invalidContents("the shard parts cover \(count / 2) of the model's \(count) parameters")) {
            _ = try SessionCheckpoint(fileBytes: checkpoint.fileBytes())
        }
    }

    @Test func aWelcomeMapMustCoverTheModelInOrder() throws {
        func endpoint(_ index: UInt32, _ offset: UInt64, _ count: UInt64) -> ShardEndpoint {
            ShardEndpoint(index: index, host: "127.0.0.1", port: 4000 + index, offset: offset, count: count)
        }
        let good = try ShardMap(endpoints: [endpoint(0, 0, 5), endpoint(1, 5, 5)], parameterCount: 10)
        #expect(good.ranges.map(\.offset) == [0, 5])
        #expect(throws: ShardMapError("the shard map covers 9 of the model's 10 parameters")) {
            _ = try ShardMap(endpoints: [endpoint(0, 0, 5), endpoint(1, 5, 4)], parameterCount: 10)
        }
        #expect(throws: ShardMapError.self) { _ = try ShardMap(endpoints: [endpoint(0, 0, 5), endpoint(1, 6, 4)], parameterCount: 10) }
        #expect(throws: ShardMapError.self) { _ = try ShardMap(endpoints: [endpoint(1, 0, 10)], parameterCount: 10) }
        #expect(throws: ShardMapError.self) { _ = try ShardMap(endpoints: [], parameterCount: 10) }
    }

    @Test func ticketsAreBoundToTheSessionAndTheWorker() {
        let key = ShardTicket.makeKey()
        let ticket = ShardTicket.make(key: key, sessionID: "s-1", worker: 3)
        #expect(ShardTicket.isValid(ticket, key: key, sessionID: "s-1", worker: 3))
        #expect(!ShardTicket.isValid(ticket, key: key, sessionID: "s-1", worker: 4))
        #expect(!ShardTicket.isValid(ticket, key: key, sessionID: "s-2", worker: 3))
        #expect(!ShardTicket.isValid(ticket, key: ShardTicket.makeKey(), sessionID: "s-1", worker: 3))
        #expect(!ShardTicket.isValid(Array(ticket.dropLast()), key: key, sessionID: "s-1", worker: 3))
    }
}
