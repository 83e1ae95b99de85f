// encoding-bench: TensorEncoding at the size of the MLP 784-512-10 (407,050 values), one encoding at
// a time: encode (appending to a reused array), decode (into a reused buffer), decodeAdding (into the
// weights), and an error-feedback step as a worker pushes; beside a plain memcpy of the payload's
// bytes and of the binary32 vector. Each figure is the median of runs of batches of at least 40 ms
// after a warm-up; one line per figure, then a Markdown table.
//
//   encoding-bench [runs]
import Foundation
import TensorEncoding

let runs = CommandLine.arguments.count > 1 ? max(Int(CommandLine.arguments[1]) ?? 9, 1) : 9
let count = 407_050  // 784·512 + 512 + 512·10 + 10

/// Folded from every batch so that the optimiser cannot drop the work.
nonisolated(unsafe) var checksum: UInt64 = 0

/// The median nanoseconds per call of `body` over `runs` batches, after a warm-up batch.
@MainActor
func medianNanoseconds(_ body: () -> UInt64) -> Double {
    func time(_ iterations: Int) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<iterations { checksum &+= body() }
        return Double(DispatchTime.now().uptimeNanoseconds - start)
    }
    var iterations = 1
    while true {
        let elapsed = time(iterations)
        if elapsed >= 40e6 { break }
        iterations = Int(Double(iterations) * min(max(40e6 / max(elapsed, 1) * 1.2, 2), 100))
    }
    _ = time(iterations)
    let samples = (0..<runs).map { _ in time(iterations) / Double(iterations) }.sorted()
    return samples[samples.count / 2]
}

/// A vector like a gradient of the MLP: normal values whose scale changes every 512 values (a row of
/// weights) across 2⁻¹⁴ to 2⁻⁴, and a fifth of them exact zeros (MNIST's border pixels give no
/// gradient). Seeded, so every run measures the same vector.
func gradient() -> [Float] {
    var state: UInt64 = 0x5EED
    func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) * 0x1p-53
    }
    var scale = 1.0
    return (0..<count).map { i in
        if i % 512 == 0 { scale = pow(2, -14 + 10 * uniform()) }
        if uniform() < 0.2 { return 0 }
        let normal = (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * Double.pi * uniform())
        return Float(normal * scale)
    }
}

/// fp16 through Swift's `Float16`, clamped as the fp16 encoding clamps: the alternative to the bit
/// manipulation that TensorEncoding uses, measured on the same loop shape.
enum Float16Reference {
    static func encode(_ values: UnsafeBufferPointer<Float>, into output: UnsafeMutableRawBufferPointer) {
        for i in 0..<values.count {
            let x = values[i]
            let clamped = x.isFinite ? min(max(x, -65504), 65504) : x
            output.storeBytes(of: Float16(clamped).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<output.count {
            output[i] = Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }
}

struct Row {
    var name: String
    var payload: Int
    var encode: Double
    var encodeRaw: Double
    var decode: Double
    var decodeAdding: Double
    var memcpy: Double
    var feedback: Double?
}

let values = gradient()
var weights = values.map { $0 * 1000 }
var decoded = [Float](repeating: 0, count: count)
var output: [UInt8] = []
output.reserveCapacity(4 * count + 64)
var raw = [UInt8](repeating: 0, count: 4 * count + 64)
var copy = [UInt8](repeating: 0, count: 4 * count + 64)

/// Prints one line per figure: ns per call, ns per value, and MB/s of binary32 input (4n bytes).
func report(_ name: String, _ operation: String, _ nanoseconds: Double) {
    let perValue = nanoseconds / Double(count)
    let megabytesPerSecond = Double(4 * count) / nanoseconds * 1e3
    print("\(name) \(operation): \(String(format: "%.1f", nanoseconds / 1e3)) µs, \(String(format: "%.3f", perValue)) ns/value, \(String(format: "%.0f", megabytesPerSecond)) MB/s")
}

@MainActor
func measure(_ encoding: TensorEncoding, feedback: Bool) -> Row {
    let name = encoding.description
    let payload = values.withUnsafeBufferPointer { x in
        output.removeAll(keepingCapacity: true)
        encoding.encode(x, into: &output)
        return output
    }
    let encode = medianNanoseconds {
        values.withUnsafeBufferPointer { x in
            output.removeAll(keepingCapacity: true)
            encoding.encode(x, into: &output)
            return UInt64(output.count)
        }
    }
    let encodeRaw = medianNanoseconds {
        values.withUnsafeBufferPointer { x in
            raw.withUnsafeMutableBytes { UInt64(encoding.encode(x, into: $0)) }
        }
    }
    let decode = medianNanoseconds {
        payload.withUnsafeBytes { bytes in
            decoded.withUnsafeMutableBufferPointer { out in
                try! encoding.decode(bytes, into: out)
                return UInt64(out[count / 2].bitPattern)
            }
        }
    }
    let decodeAdding = medianNanoseconds {
        payload.withUnsafeBytes { bytes in
            weights.withUnsafeMutableBufferPointer { out in
                // Alternating signs keep the weights where they are over millions of calls.
                try! encoding.decodeAdding(bytes, scale: checksum & 1 == 0 ? 1e-3 : -1e-3, into: out)
                return UInt64(out[count / 3].bitPattern & 1)
            }
        }
    }
    let memcpy = medianNanoseconds {
        payload.withUnsafeBytes { bytes in
            copy.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
            return UInt64(copy[payload.count / 2])
        }
    }
    var feedbackTime: Double?
    if feedback {
        var compressor = ErrorFeedbackEncoder(count: count, encoding: encoding)
        feedbackTime = medianNanoseconds {
            values.withUnsafeBufferPointer { x in
                output.removeAll(keepingCapacity: true)
                try! compressor.encode(x, into: &output)
                return UInt64(output.count)
            }
        }
    }
    let row = Row(
        name: name, payload: payload.count, encode: encode, encodeRaw: encodeRaw, decode: decode, decodeAdding: decodeAdding,
        memcpy: memcpy, feedback: feedbackTime)
    report(name, "encode", encode)
    report(name, "encode-raw", encodeRaw)
    report(name, "decode", decode)
    report(name, "decodeAdding", decodeAdding)
    report(name, "memcpy(\(payload.count) B)", memcpy)
    if let feedbackTime { report(name, "error-feedback-step", feedbackTime) }
    return row
}

/// fp16 by Float16, the same three operations.
@MainActor
func measureFloat16() -> Row {
    let payload = TensorEncoding.fp16.encoded(values)
    let encode = medianNanoseconds {
        values.withUnsafeBufferPointer { x in
            raw.withUnsafeMutableBytes { Float16Reference.encode(x, into: $0) }
            return UInt64(raw[count])
        }
    }
    let decode = medianNanoseconds {
        payload.withUnsafeBytes { bytes in
            decoded.withUnsafeMutableBufferPointer { out in
                Float16Reference.decode(bytes, into: out)
                return UInt64(out[count / 2].bitPattern)
            }
        }
    }
    report("fp16-via-Float16", "encode-raw", encode)
    report("fp16-via-Float16", "decode", decode)
    return Row(name: "fp16 via `Float16`", payload: payload.count, encode: .nan, encodeRaw: encode, decode: decode, decodeAdding: .nan, memcpy: .nan)
}

var rows: [Row] = []
for encoding: TensorEncoding in [.fp32, .fp16, .bf16, .q8(), .topK(count: count / 100), .topK(count: count / 1000), .sign()] {
    rows.append(measure(encoding, feedback: encoding != .fp32))
}
rows.append(measureFloat16())
let vectorCopy = medianNanoseconds {
    values.withUnsafeBytes { bytes in
        copy.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
        return UInt64(copy[count])
    }
}
report("binary32 vector", "memcpy(\(4 * count) B)", vectorCopy)
print("checksum \(checksum)")

// The table for Benchmarks/encodings.md: µs per call (ns per value).
func cell(_ nanoseconds: Double?) -> String {
    guard let nanoseconds, !nanoseconds.isNaN else { return "—" }
    return "\(String(format: nanoseconds >= 100e3 ? "%.0f" : "%.1f", nanoseconds / 1e3)) (\(String(format: "%.3f", nanoseconds / Double(count))))"
}
print()
print("| Encoding | Payload (B) | encode | encode-raw | decode | decodeAdding | memcpy of payload | error-feedback step |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for row in rows {
    print("| \(row.name) | \(row.payload) | \(cell(row.encode)) | \(cell(row.encodeRaw)) | \(cell(row.decode)) | \(cell(row.decodeAdding)) | \(cell(row.memcpy)) | \(cell(row.feedback)) |")
}
print("| memcpy of the binary32 vector | \(4 * count) | | | | | \(cell(vectorCopy)) | |")
