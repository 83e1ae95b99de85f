import Learning
import Messages
import TensorEncoding
import Testing
@testable import ParameterServer

/// The server's chain of keyframes and deltas against the weights it stands for and the workers that
/// follow it: the error bound, bit-identical replicas, the cache's bound, and who gets a keyframe.
@Suite struct WeightsChainTests {
    /// Weights that move like a model's under training: every version adds a step whose size differs
    /// by block, as layers' do, with a few coordinates standing still.
    struct Trajectory {
        var weights: [Float]
        var generator: Xoshiro256
        let blockSize: Int

        init(count: Int, blockSize: Int = 64, seed: UInt64 = 7) {
            var generator = Xoshiro256(seed: seed)
            weights = (0..<count).map { _ in Float(generator.nextNormal() * 0.05) }
            self.generator = generator
            self.blockSize = blockSize
        }

        mutating func step() {
            var start = 0
            while start < weights.count {
                let size = Float(0.001 * (1 + Double(generator.next(below: 8))))
                for i in start..<min(start + blockSize, weights.count) where generator.next(below: 10) != 0 {
                    weights[i] += size * Float(generator.nextNormal())
                }
                start += blockSize
            }
        }
    }

    static let count = 3_000

    /// The frames a worker holding `held` is sent, as the runtime sends them: bytes decoded as an Envelope.
    static func deliver(_ chain: WeightsChain, after held: UInt64?, to replica: inout WeightsReplica) throws {
        for frame in chain.frames(after: held) {
            let envelope = try Envelope(serializedBytes: frame.payload)
            guard case .weights(let weights)? = envelope.body else {
                Issue.record("a chain frame that is not Weights")
                return
            }
            #expect(try replica.apply(weights) == .updated)
        }
    }

    @Test(arguments: [TensorEncoding.sign(blockSize: 64), .q8(blockSize: 64), .topK(count: 300)])
    func theReplicaStaysWithinOneDeltasErrorAndTheErrorDoesNotGrow(delta: TensorEncoding) {
        var trajectory = Trajectory(count: Self.count)
        var chain = WeightsChain(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: delta)
        chain.publish(version: 0, weights: trajectory.weights)
        var errors: [Double] = []
        for version in 1...600 as ClosedRange<UInt64> {
            trajectory.step()
            let w = trajectory.weights
            // x = W_V − R_p: what this delta encodes.
            let x = zip(w, chain.replica).map { $0 - $1 }
            chain.publish(version: version, weights: w)
            let e = zip(w, chain.replica).map { $0 - $1 }
            // Up to the rounding of R_p + x′: half an ulp of the weights.
            let slack = 2 * (w.map(\.magnitude).max() ?? 0).ulp
            switch delta {
            case .sign(let blockSize):
                // Per block ‖e‖² = ‖x‖² − ‖x‖₁²/L.
                for start in stride(from: 0, to: Self.count, by: blockSize) {
                    let block = start..<min(start + blockSize, Self.count)
                    let squares = block.reduce(0.0) { $0 + Double(x[$1] * x[$1]) }
                    let l1 = block.reduce(0.0) { $0 + Double(x[$1].magnitude) }
                    let bound = squares - l1 * l1 / Double(block.count)
                    let error = block.reduce(0.0) { $0 + Double(e[$1] * e[$1]) }
                    #expect(error <= bound * (1 + 1e-3) + Double(block.count) * Double(slack * slack), "version \(version), block at \(start)")
                }
            case .q8(let blockSize):
                // |e| ≤ s/2 with s = max|x| / 127 of the block.
                for start in stride(from: 0, to: Self.count, by: blockSize) {
                    let block = start..<min(start + blockSize, Self.count)
                    let s = block.map { x[$0].magnitude }.max()! / 127
                    for i in block { #expect(e[i].magnitude <= s / 2 * (1 + 0x1p-14) + slack, "version \(version), value \(i)") }
                }
            default:
                // topk: what was not sent is x itself, and the k largest |x| were sent.
                let sent = e.indices.filter { e[$0].magnitude < x[$0].magnitude * 0.01 + slack }
                #expect(sent.count >= 300, "version \(version): \(sent.count) entries sent")
            }
            errors.append((e.reduce(0.0) { $0 + Double($1 * $1) } / Double(Self.count)).squareRoot())
        }
        // Error feedback: the rounding of earlier deltas is carried, not piled up.
        let early = errors[100..<200].reduce(0, +) / 100
        let late = errors[500..<600].reduce(0, +) / 100
        #expect(late <= early * 1.5, "RMS error \(early) at versions 100-200, \(late) at 500-600")
    }

    @Test func workersFollowingTheFramesHoldTheServersReplicaBitForBit() throws {
        var trajectory = Trajectory(count: Self.count)
        var chain = WeightsChain(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64))
        // Workers that pull every version, every 3rd, every 17th, and one that joins at 200.
        let cadences = [1, 3, 17, 5]
        var replicas = cadences.map { _ in WeightsReplica(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64)) }
        var sent: [UInt64?] = cadences.map { _ in nil }
        var keyframes = 0
        for version in 0...300 as ClosedRange<UInt64> {
            if version > 0 { trajectory.step() }
            chain.publish(version: version, weights: trajectory.weights)
            for (worker, cadence) in cadences.enumerated() where version % UInt64(cadence) == 0 && (worker < 3 || version >= 200) {
                keyframes += chain.frames(after: sent[worker]).filter(\.isKeyframe).count
                try Self.deliver(chain, after: sent[worker], to: &replicas[worker])
                sent[worker] = chain.lastVersion
                #expect(replicas[worker].version == version)
                #expect(replicas[worker].values.map(\.bitPattern) == chain.replica.map(\.bitPattern), "worker \(worker) at \(version)")
            }
        }
        // Three first keyframes and the late joiner's; following workers never needed another.
        #expect(keyframes == 4)
    }

    @Test func theCacheHoldsAKeyframeAndAtMostTwoKeyframesOfDeltas() {
        var trajectory = Trajectory(count: Self.count)
        var chain = WeightsChain(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64))
        let fp32Keyframe = Envelope(body: .weights(Weights(version: 1 << 20, values: trajectory.weights))).serializedSize()
        let delta = TensorEncoding.sign(blockSize: 64).maxEncodedSize(count: Self.count) + 16
        var largest = 0
        for version in 0...2_000 as ClosedRange<UInt64> {
            if version > 0 { trajectory.step() }
            chain.publish(version: version, weights: trajectory.weights)
            largest = max(largest, chain.cachedBytes)
        }
        #expect(largest <= 3 * fp32Keyframe + 2 * delta, "\(largest) bytes cached; an fp32 keyframe is \(fp32Keyframe)")
        #expect(chain.keyframe?.encoding == .fp32, "later keyframes are the replica itself, exactly")
    }

    @Test func aWorkerFarBehindOrHoldingNothingGetsTheKeyframeAndTheDeltasAfterIt() throws {
        var trajectory = Trajectory(count: Self.count)
        var chain = WeightsChain(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64))
        var early = WeightsReplica(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64))
        chain.publish(version: 0, weights: trajectory.weights)
        try Self.deliver(chain, after: nil, to: &early)
        for version in 1...200 as ClosedRange<UInt64> {
            trajectory.step()
            chain.publish(version: version, weights: trajectory.weights)
        }
        let keyframe = try #require(chain.keyframe)
        #expect(keyframe.version > 0)
        for held in [nil, 0, 12_345] as [UInt64?] {
            let frames = chain.frames(after: held)
            #expect(frames.first == keyframe, "held \(held.map(String.init) ?? "nothing")")
            #expect(frames.dropFirst().allSatisfy { !$0.isKeyframe && $0.version > keyframe.version })
        }
        try Self.deliver(chain, after: 0, to: &early)
        #expect(early.values.map(\.bitPattern) == chain.replica.map(\.bitPattern))
        #expect(chain.frames(after: 200).isEmpty, "the last point: nothing to send")
        #expect(chain.frames(after: 199).map(\.version) == [200])
    }

    @Test func aChainResumedFromItsLastPointGoesOnBitForBit() throws {
        var trajectory = Trajectory(count: Self.count)
        var chain = WeightsChain(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64))
        for version in 0...20 as ClosedRange<UInt64> {
            if version > 0 { trajectory.step() }
            chain.publish(version: version, weights: trajectory.weights)
        }
        let point = try #require(chain.lastPoint)
        var resumed = WeightsChain(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64), resuming: point)
        // A worker of the resumed session starts from the keyframe: R itself.
        var worker = WeightsReplica(count: Self.count, pullEncoding: .q8(blockSize: 64), deltaEncoding: .sign(blockSize: 64))
        try Self.deliver(resumed, after: nil, to: &worker)
        #expect(worker.values.map(\.bitPattern) == chain.replica.map(\.bitPattern) && worker.version == 20)
        trajectory.step()
        chain.publish(version: 21, weights: trajectory.weights)
        resumed.publish(version: 21, weights: trajectory.weights)
        #expect(resumed.deltas.last?.payload == chain.deltas.last?.payload)
        #expect(resumed.replica.map(\.bitPattern) == chain.replica.map(\.bitPattern))
    }

    @Test func weightsThatAreNotFiniteStartTheChainAgain() {
        var weights = [Float](repeating: 0.5, count: 100)
        var chain = WeightsChain(count: 100, pullEncoding: .q8(blockSize: 10), deltaEncoding: .sign(blockSize: 10))
        chain.publish(version: 0, weights: weights)
        weights[42] = .nan
        chain.publish(version: 1, weights: weights)
        #expect(chain.keyframe?.version == 1 && chain.deltas.isEmpty)
        #expect(chain.frames(after: 0).first?.isKeyframe == true)
    }
}

/// A worker's side: which frames it takes, which it ignores, and which it refuses, naming the field.
@Suite struct WeightsReplicaTests {
    static func replica(holding version: UInt64, _ values: [Float] = [1, 2, 3, 4]) throws -> WeightsReplica {
        var replica = WeightsReplica(count: 4, pullEncoding: .fp32, deltaEncoding: .sign(blockSize: 4))
        #expect(try replica.apply(Weights(version: version, values: values)) == .updated)
        return replica
    }

    /// sign(4) of (+0.5, −0.5, +0.5, −0.5): scale 0.5, bits 0b1010.
    static let delta: [UInt8] = [0x00, 0x00, 0x00, 0x3F, 0x0A]

    @Test func aDeltaOnTheHeldVersionIsAdded() throws {
        var replica = try Self.replica(holding: 3)
        #expect(try replica.apply(Weights(version: 5, encodedValues: Self.delta, baseVersion: 3)) == .updated)
        #expect(replica.values == [1.5, 1.5, 3.5, 3.5])
        #expect(replica.version == 5)
        // Sent again (a pull crossed the frames on their way): already applied, left alone.
        #expect(try replica.apply(Weights(version: 5, encodedValues: Self.delta, baseVersion: 3)) == .unchanged)
        #expect(try replica.apply(Weights(version: 5)) == .unchanged, "the server's \"you hold the current version\"")
    }

    @Test func aDeltaOnAnotherVersionIsNeverAppliedAndDeltasWaitForWholeWeights() throws {
        var replica = try Self.replica(holding: 3)
        #expect(try replica.apply(Weights(version: 6, encodedValues: Self.delta, baseVersion: 4)) == .baseMismatch(base: 4, held: 3))
        #expect(replica.values == [1, 2, 3, 4] && replica.version == 3 && replica.holdsWeights)
        #expect(try replica.apply(Weights(version: 7, encodedValues: Self.delta, baseVersion: 6)) == .unchanged)
        // Whole weights end the wait, even older ones (a keyframe may be older than what was held).
        #expect(try replica.apply(Weights(version: 2, values: [0, 0, 0, 0])) == .updated)
        #expect(try replica.apply(Weights(version: 4, encodedValues: Self.delta, baseVersion: 2)) == .updated)
        #expect(replica.values == [0.5, -0.5, 0.5, -0.5])

        var empty = WeightsReplica(count: 4, pullEncoding: .fp32, deltaEncoding: .sign(blockSize: 4))
        #expect(try empty.apply(Weights(version: 1, encodedValues: Self.delta, baseVersion: 0)) == .baseMismatch(base: 0, held: nil))
    }

    @Test(arguments: [
        (Weights(version: 5, encodedValues: Array(delta.dropLast()), baseVersion: 3), ErrorReport.Code.badEncoding,
         "the server's Weights.encoded_values (a sign(4) delta from version 3 to 5): sign: 4 bytes for 4 values (expected 5)"),
        (Weights(version: 5, encodedValues: [0x00, 0x00, 0xC0, 0x7F, 0x0A], baseVersion: 3), .badEncoding,
         "the server's Weights.encoded_values (a sign(4) delta from version 3 to 5): sign: scale of block 0 (byte 0) is nan"),
        (Weights(version: 5, encodedValues: [0x00, 0x00, 0x80, 0x7F, 0x0A], baseVersion: 3), .badEncoding, "scale of block 0 (byte 0) is inf"),
        (Weights(version: 5, values: [1, 1, 1, 1], baseVersion: 3), .malformed,
         "the server's delta on version 3 has Weights.values; a delta travels in Weights.encoded_values only"),
        (Weights(version: 5, values: [1, 1, 1]), .wrongDimensions, "the server sent 3 weights for a model of 4 parameters"),
    ])
    func aFrameThatCannotBeUsedIsRefusedNamingTheFieldAndChangesNothing(weights: Weights, code: ErrorReport.Code, message: String) throws {
        var replica = try Self.replica(holding: 3)
        do {
            _ = try replica.apply(weights)
            Issue.record("accepted \(weights)")
        } catch {
            #expect(error.code == code)
            #expect(error.description.contains(message), "\(error.description)")
        }
        #expect(replica.values == [1, 2, 3, 4] && replica.version == 3)
    }

    @Test func theProtocolREADMEsDeltaFrameByteForByte() throws {
        let payload = TensorEncoding.sign(blockSize: 4).encoded([0.5, -0.25, 0.25, -0.5, 1, -1])
        let frame = Envelope(body: .weights(Weights(version: 7, encodedValues: payload, baseVersion: 5))).serializedBytes()
        #expect(frame == [0x22, 0x10, 0x08, 0x07, 0x1A, 0x0A, 0x00, 0x00, 0xC0, 0x3E, 0x0A, 0x00, 0x00, 0x80, 0x3F, 0x02, 0x20, 0x05])
        var replica = WeightsReplica(count: 6, pullEncoding: .fp32, deltaEncoding: .sign(blockSize: 4))
        _ = try replica.apply(Weights(version: 5, values: [Float](repeating: 0, count: 6)))
        guard case .weights(let weights)? = try Envelope(serializedBytes: frame).body else { return }
        #expect(try replica.apply(weights) == .updated)
        #expect(replica.values == [0.375, -0.375, 0.375, -0.375, 1, -1] && replica.version == 7)
    }

    @Test func refusedFirstWeightsLeaveAReplicaThatHoldsNothingEmpty() {
        // Found by FuzzWeightsReplica: the buffer was sized before the payload was checked.
        var replica = WeightsReplica(count: 4, pullEncoding: .q8(blockSize: 4), deltaEncoding: .sign(blockSize: 4))
        #expect(throws: WeightsRefusal.self) { try replica.apply(Weights(version: 1, encodedValues: [0, 0, 0x80, 0xFF, 1, 2, 3, 4])) }
        #expect(replica.values.isEmpty && !replica.holdsWeights)
    }

    @Test func aDeltaWithoutAnAgreedDeltaEncodingIsRefused() {
        var replica = WeightsReplica(count: 4, pullEncoding: .fp32)
        #expect(throws: WeightsRefusal.self) { try replica.apply(Weights(version: 1, encodedValues: Self.delta, baseVersion: 0)) }
    }
}
