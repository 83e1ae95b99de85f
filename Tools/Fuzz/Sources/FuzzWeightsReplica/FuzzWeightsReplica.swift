import Messages
import ParameterServer
import TensorEncoding

/// libFuzzer's entry point: feeds a stream of frames to a worker's `WeightsReplica`, as a hostile or
/// broken server would send them.
///
/// The input: byte 0 picks the delta encoding (modulo 4: sign(4), q8(4), topk(3), fp16); byte 1 the
/// pull encoding (even: fp32, odd: q8(4)); byte 2 the parameter count n (modulo 65); the rest is frames,
/// each a 2-byte little-endian length and that many bytes of an `Envelope` (a body other than
/// `Weights`, or bytes that do not decode, are skipped).
///
/// What must hold: nothing traps or reads out of bounds (AddressSanitizer); a refused frame, one the
/// replica ignores, and a delta on another version leave the weights and their version as they were,
/// bit for bit; an applied delta adds exactly what `decode` gives, in binary32, and moves the version
/// forward; applied whole weights are n values of the frame's version.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWeightsReplica(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size >= 3 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let delta: TensorEncoding = [.sign(blockSize: 4), .q8(blockSize: 4), .topK(count: 3), .fp16][Int(input[0]) % 4]
    let pull: TensorEncoding = input[1] % 2 == 0 ? .fp32 : .q8(blockSize: 4)
    let count = Int(input[2]) % 65
    var replica = WeightsReplica(count: count, pullEncoding: pull, deltaEncoding: delta)
    var offset = 3
    while offset + 2 <= size {
        let length = Int(input[offset]) | Int(input[offset + 1]) << 8
        let end = min(size, offset + 2 + length)
        let bytes = UnsafeRawBufferPointer(rebasing: input[(offset + 2)..<end])
        offset = end
        guard case .weights(let weights)? = (try? Envelope(serializedBytes: bytes))?.body else { continue }
        let before = replica
        let outcome: WeightsReplica.Outcome
        do {
            outcome = try replica.apply(weights)
        } catch {
            check(!error.description.isEmpty, "a refusal without a message")
            check(same(replica, before), "a refused frame changed the replica: \(error)")
            continue
        }
        switch outcome {
        case .unchanged, .baseMismatch:
            check(replica.values.map(\.bitPattern) == before.values.map(\.bitPattern) && replica.version == before.version,
                  "\(outcome) changed the weights or their version")
            if case .baseMismatch(let base, _) = outcome {
                check(weights.baseVersion == base && replica.awaitsWholeWeights, "a mismatch on \(base) that does not wait for whole weights")
            }
        case .updated:
            check(replica.holdsWeights && replica.values.count == count && replica.version == weights.version,
                  "updated weights are not \(count) values of version \(weights.version)")
            if let base = weights.baseVersion {
                check(before.holdsWeights && before.version == base && weights.version > base, "a delta applied on the wrong version")
                let decoded = try! delta.decoded(weights.encodedValues, count: count)
                for i in 0..<count {
                    let expected = before.values[i] + decoded[i]
                    // topk leaves the entries it does not list alone, which + 0 would not (−0 + 0 = +0).
                    check(replica.values[i].bitPattern == expected.bitPattern || (decoded[i] == 0 && replica.values[i] == before.values[i]),
                          "value \(i): \(replica.values[i]), expected \(before.values[i]) + \(decoded[i])")
                }
            }
        }
    }
    return 0
}

/// The same weights, version and state, bit for bit.
func same(_ a: WeightsReplica, _ b: WeightsReplica) -> Bool {
    a.values.map(\.bitPattern) == b.values.map(\.bitPattern) && a.version == b.version && a.holdsWeights == b.holdsWeights
        && a.awaitsWholeWeights == b.awaitsWholeWeights
}

/// Stops the process, which libFuzzer reports as a crash with the input that caused it.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("FuzzWeightsReplica: \(message())") }
}
