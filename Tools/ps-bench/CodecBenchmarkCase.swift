import BenchMessages
import WireCodec

/// One message to measure, with its operations as closures that each run a whole batch, so that the
/// loop inside is specialised for the concrete message type and the closure call is amortised.
struct CodecBenchmarkCase {
    var name: String
    /// The message's encoding.
    var encoded: [UInt8]
    var encodedSize: Int { encoded.count }
    /// (operation, run it `n` times and return a checksum).
    var operations: [(String, (Int) -> UInt64)]

    /// Builds the operations for `message`; `digest` reads a field of a decoded message for the checksum.
    static func make<M: WireMessage>(_ name: String, _ message: M, digest: @escaping (M) -> UInt64) -> CodecBenchmarkCase {
        let bytes = message.serializedBytes()
        let size = bytes.count
        // Buffers live as long as the benchmark process; nothing frees them.
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        bytes.withUnsafeBytes { source.copyMemory(from: $0) }
        // The same bytes one byte further on: frames arrive at any offset in a read buffer.
        let shifted = UnsafeMutableRawBufferPointer.allocate(byteCount: size + 1, alignment: 16)
        bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: shifted[1...]).copyMemory(from: $0) }
        let oddInput = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(shifted)[1...])
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        let input = UnsafeRawBufferPointer(source)

        let encode: (Int) -> UInt64 = { iterations in
            var sum: UInt64 = 0
            for _ in 0..<iterations {
                let length = message.serializedSize()
                message.serialize(into: UnsafeMutableRawBufferPointer(rebasing: destination[..<length]))
                sum &+= UInt64(destination[length &- 1])
            }
            return sum
        }
        let encodeArray: (Int) -> UInt64 = { iterations in
            var sum: UInt64 = 0
            for _ in 0..<iterations {
                sum &+= UInt64(message.serializedBytes().count)
            }
            return sum
        }
        func decoding(_ input: UnsafeRawBufferPointer) -> (Int) -> UInt64 {
            { iterations in
                var sum: UInt64 = 0
                for _ in 0..<iterations {
                    if let decoded = try? M(serializedBytes: input) { sum &+= digest(decoded) }
                }
                return sum
            }
        }
        let memcpy: (Int) -> UInt64 = { iterations in
            var sum: UInt64 = 0
            for _ in 0..<iterations {
                destination.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: size)
                sum &+= UInt64(destination[size &- 1])
            }
            return sum
        }
        return CodecBenchmarkCase(
            name: name, encoded: bytes,
            operations: [
                ("encode", encode), ("encode-array", encodeArray), ("decode", decoding(input)),
                ("decode-odd-address", decoding(oddInput)), ("memcpy", memcpy),
            ]
        )
    }

    static func floats(_ count: Int) -> [Float] {
        (0..<count).map { Float($0 % 1000) * 0.001 - 0.5 }
    }

    static var all: [CodecBenchmarkCase] {
        let heartbeat = Heartbeat(workerID: 3, seq: 1_234_567, unixNanos: 1_764_380_000_123_456_789)
        let push1k = PushGradient(workerID: 3, baseVersion: 42, batchSize: 32, loss: 0.25, values: floats(1000), tag: "w3")
        let push100k = PushGradient(workerID: 3, baseVersion: 42, batchSize: 32, loss: 0.25, values: floats(100_000), tag: "w3")
        let weights = Weights(version: 42, tensors: [
            Tensor(name: "dense0.weight", shape: [784, 128], data: floats(784 * 128)),
            Tensor(name: "dense0.bias", shape: [128], data: floats(128)),
            Tensor(name: "dense1.weight", shape: [128, 10], data: floats(128 * 10)),
            Tensor(name: "dense1.bias", shape: [10], data: floats(10)),
        ])
        return [
            make("heartbeat", heartbeat) { $0.seq },
            make("push-gradient-1k", push1k) { UInt64($0.values.count) },
            make("push-gradient-100k", push100k) { UInt64($0.values.count) },
            make("weights-mlp", weights) { UInt64($0.tensors.count) },
        ]
    }
}
