import Learning
import Messages
import TensorEncoding
import Testing
@testable import ParameterServer

/// The publisher answers pulls as the server does: one payload per version and encoding for every
/// puller, an empty `Weights` for a peer that holds the version, and for peers that follow the chain,
/// a keyframe, then deltas once the version is a stride of updates past the chain's last point.
@Suite struct WeightsPublisherTests {
    static let count = 1000

    static func weights(_ version: UInt64) -> [Float] {
        (0..<count).map { Float($0 % 17) * 0.01 + Float(version) * 0.001 }
    }

    static func decoded(_ frame: WeightsPublisher.Frame) throws -> Weights {
        guard case .weights(let weights)? = try Envelope(serializedBytes: frame.payload).body else {
            throw HarnessError(message: "not a Weights frame")
        }
        return weights
    }

    @Test func wholeWeightsAreMadeOncePerVersionAndEncodingAndNotSentToAPeerThatHoldsThem() throws {
        var publisher = WeightsPublisher(count: Self.count, pullEncoding: .q8(), deltaEncoding: nil, strideAllowed: true, localSteps: 1)
        var q8 = PublisherPeerState(pullEncoding: .q8(), followsChain: false)
        var other = PublisherPeerState(pullEncoding: .q8(), followsChain: false)
        var fp32 = PublisherPeerState(pullEncoding: .fp32, followsChain: false)
        let first = publisher.frames(for: &q8, knownVersion: 0, version: 0, parameters: Self.weights(0), activeWorkers: 2)
        let second = publisher.frames(for: &other, knownVersion: nil, version: 0, parameters: Self.weights(0), activeWorkers: 2)
        #expect(first == second && first.count == 1 && first[0].valuesEncoding == "q8")
        let whole = publisher.frames(for: &fp32, knownVersion: 0, version: 0, parameters: Self.weights(0), activeWorkers: 2)
        #expect(try Self.decoded(whole[0]).values == Self.weights(0))
        // Holding version 3 already: the empty answer. Holding 2: version 3's weights.
        let current = publisher.frames(for: &fp32, knownVersion: 3, version: 3, parameters: Self.weights(3), activeWorkers: 2)
        #expect(current.count == 1 && current[0].valuesEncoding == nil)
        #expect(try Self.decoded(current[0]) == Weights(version: 3))
        let newer = publisher.frames(for: &fp32, knownVersion: 2, version: 3, parameters: Self.weights(3), activeWorkers: 2)
        #expect(try Self.decoded(newer[0]).values == Self.weights(3))
    }

    @Test func aPeerFollowingTheChainGetsAKeyframeThenDeltasAStrideApart() throws {
        var publisher = WeightsPublisher(count: Self.count, pullEncoding: .fp32, deltaEncoding: .sign(), strideAllowed: true, localSteps: 1)
        var peer = PublisherPeerState(pullEncoding: .fp32, followsChain: true)
        let keyframe = publisher.frames(for: &peer, knownVersion: 0, version: 0, parameters: Self.weights(0), activeWorkers: 2)
        #expect(keyframe.count == 1 && keyframe[0].valuesEncoding == "fp32" && peer.chainVersion == 0)
        // One update past the chain with two workers: within the stride, a routine pull is told it holds the chain's newest.
        let within = publisher.frames(for: &peer, knownVersion: 1, version: 1, parameters: Self.weights(1), activeWorkers: 2)
        #expect(try within.map(Self.decoded) == [Weights(version: 0)])
        let delta = publisher.frames(for: &peer, knownVersion: 1, version: 2, parameters: Self.weights(2), activeWorkers: 2)
        let weights = try Self.decoded(try #require(delta.first))
        #expect(delta.count == 1 && delta[0].valuesEncoding == "delta-sign")
        #expect(weights.version == 2 && weights.baseVersion == 0 && peer.chainVersion == 2)
        // Sent unasked (nil), the chain is brought up to date whatever the stride.
        let unasked = publisher.frames(for: &peer, knownVersion: nil, version: 3, parameters: Self.weights(3), activeWorkers: 2)
        #expect(try unasked.map(Self.decoded).map(\.baseVersion) == [2] && peer.chainVersion == 3)
    }

    @Test func withoutTheStrideEveryRoutinePullBringsTheNewestVersion() throws {
        var publisher = WeightsPublisher(count: Self.count, pullEncoding: .fp32, deltaEncoding: .sign(), strideAllowed: false, localSteps: 1)
        var peer = PublisherPeerState(pullEncoding: .fp32, followsChain: true)
        _ = publisher.frames(for: &peer, knownVersion: 0, version: 0, parameters: Self.weights(0), activeWorkers: 4)
        let next = publisher.frames(for: &peer, knownVersion: 1, version: 1, parameters: Self.weights(1), activeWorkers: 4)
        #expect(try next.map(Self.decoded).map(\.version) == [1] && peer.chainVersion == 1)
    }
}
