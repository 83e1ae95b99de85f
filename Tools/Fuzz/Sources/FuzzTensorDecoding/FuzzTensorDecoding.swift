import TensorEncoding

/// libFuzzer's entry point: decodes the input's payload with `decode` and `decodeAdding`.
///
/// The input: byte 0 picks the encoding (modulo 6: fp32, fp16, bf16, q8, sign, topk); byte 1 the
/// block size of q8 and sign (1 to 200, or for 200…255 one of 256, 4096, 0, −1, Int.max: the last
/// three must be refused); bytes 2 and 3 the value count n (little-endian, modulo 4097); the rest,
/// at whatever alignment it lands, is the payload.
///
/// What must hold: neither decoder traps or reads out of bounds (AddressSanitizer); they accept and
/// refuse the same payloads, with the same error; a refusal leaves the output untouched and names an
/// offset inside the payload; what is accepted decodes to finite values, decodeAdding adds exactly
/// what decode gives, and fp32, fp16 and bf16 payloads re-encode to the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTensorDecoding(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let encoding = encoding(selector: input[0], blockSize: input[1])
    let count = (Int(input[2]) | Int(input[3]) << 8) % 4097
    let payload = UnsafeRawBufferPointer(rebasing: input[4...])

    // NaN sentinels: a refusal must leave them, bit for bit; decode must overwrite every one.
    var decoded = [Float](repeating: .nan, count: count)
    let decodeResult = decoded.withUnsafeMutableBufferPointer { output in
        Result { () throws(TensorDecodingError) in try encoding.decode(payload, into: output) }
    }
    let base = (0..<count).map { Float($0 % 7) - 3 }
    var sum = base
    let addResult = sum.withUnsafeMutableBufferPointer { output in
        Result { () throws(TensorDecodingError) in try encoding.decodeAdding(payload, scale: 0.5, into: output) }
    }

    switch (decodeResult, addResult) {
    case (.failure(let error), .failure(let addError)):
        check(error == addError, "decode refused with \(error), decodeAdding with \(addError)")
        check(error.offset >= 0 && error.offset <= payload.count, "offset \(error.offset) outside \(payload.count) bytes: \(error)")
        check(!error.description.isEmpty, "empty description")
        check(decoded.allSatisfy { $0.isNaN }, "a refused decode wrote to its output: \(error)")
        check(zip(sum, base).allSatisfy { $0.bitPattern == $1.bitPattern }, "a refused decodeAdding changed its output: \(error)")
    case (.success, .success):
        check(decoded.allSatisfy { $0.isFinite }, "\(encoding) accepted a payload that decodes to a non-finite value")
        for i in 0..<count {
            // Unlisted topk entries are not touched at all; everything else is base + 0.5 · x′.
            let expected = base[i] + 0.5 * decoded[i]
            check(sum[i].bitPattern == expected.bitPattern || (decoded[i] == 0 && sum[i] == base[i]),
                  "decodeAdding gave \(sum[i]) at \(i), decode + add gives \(expected)")
        }
        switch encoding {
        case .fp32, .fp16, .bf16:
            let again = encoding.encoded(decoded)
            check(again.elementsEqual(payload), "\(encoding) payload does not re-encode to the same bytes")
        default:
            break
        }
    default:
        fatalError("FuzzTensorDecoding: decode gave \(decodeResult), decodeAdding \(addResult)")
    }
    return 0
}

func encoding(selector: UInt8, blockSize byte: UInt8) -> TensorEncoding {
    let blockSize = byte < 200 ? Int(byte) + 1 : [256, 4096, 0, -1, Int.max][Int(byte - 200) % 5]
    switch selector % 6 {
    case 0: return .fp32
    case 1: return .fp16
    case 2: return .bf16
    case 3: return .q8(blockSize: blockSize)
    case 4: return .sign(blockSize: blockSize)
    default: return .topK(count: Int(byte))
    }
}

/// Stops the process, which libFuzzer reports as a crash with the input that caused it.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("FuzzTensorDecoding: \(message())") }
}
