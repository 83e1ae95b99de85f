import Messages
import Testing
import WireCodec
@testable import ParameterServer

/// The worked examples of Schemas/Messages/README.md, "Shards", byte for byte: a map in a Welcome,
/// a ShardApply frame and a worker's ticket.
@Suite struct ShardWireExampleTests {
    private static func hex(_ bytes: [UInt8], separator: String = " ") -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: separator)
    }

    @Test func theMapOfTwoShardsInAWelcome() throws {
        var welcome = Welcome()
        welcome.shards = [
            ShardEndpoint(index: 0, host: "10.0.0.2", port: 9000, offset: 0, count: 5),
            ShardEndpoint(index: 1, host: "10.0.0.3", port: 9000, offset: 5, count: 5),
        ]
        #expect(Self.hex(welcome.serializedBytes()) == "a2 01 0f 12 08 31 30 2e 30 2e 30 2e 32 18 a8 46 28 05 "
            + "a2 01 13 08 01 12 08 31 30 2e 30 2e 30 2e 33 18 a8 46 20 05 28 05")
        let map = try ShardMap(endpoints: welcome.shards, parameterCount: 10)
        #expect(map.ranges.map(\.indices) == [0..<5, 5..<10])
    }

    @Test func aShardApplyFrame() {
        var apply = ShardApply()
        apply.version = 8
        apply.kind = .delta
        apply.scale = 1
        apply.arrivalsPerStep = 4
        apply.slices = [StagedSlice(unitID: 17, workerID: 3, sampleCount: 512)]
        let payload = Envelope(body: .shardApply(apply)).serializedBytes()
        var frame: [UInt8] = [UInt8(payload.count), 0, 0, 0]
        frame += payload
        #expect(Self.hex(frame) == "17 00 00 00 82 01 14 08 08 10 01 1d 00 00 80 3f 20 04 2a 07 08 11 10 03 18 80 04")
    }

    @Test func aWorkersTicket() {
        let ticket = ShardTicket.make(key: (0..<32).map { UInt8($0) }, sessionID: "s-1", worker: 3)
        #expect(Self.hex(ticket, separator: "") == "9b86de279389d743173204da0595d92fb87c1109af546cea3af1ffe4fd61ed84")
    }
}
