// codec-compare: Downpour's WireCodec and swift-protobuf 1.39 on the same messages, in one run.
// Downpour's figures come from ps-bench's own CodecBenchmarkCase (linked here); swift-protobuf's
// from the same messages built with protoc-gen-swift. One line per case, library and operation
// (median of runs after a warm-up), then a summary line.
import SwiftProtobuf
import SwiftProtobufBench

let runs = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 9 : 9

/// Runs `body` once per iteration and folds its results, so that the work cannot be dropped.
func batch(_ body: @escaping () -> UInt64) -> (Int) -> UInt64 {
    { iterations in
        var sum: UInt64 = 0
        for _ in 0..<iterations { sum &+= body() }
        return sum
    }
}

/// swift-protobuf's encode (it can only produce a new array or Data) and decode of `message`.
func swiftProtobufCase<M: SwiftProtobuf.Message>(_ message: M, digest: @escaping (M) -> UInt64) -> ([UInt8], [(String, (Int) -> UInt64)]) {
    let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
    let encode = batch { UInt64(((try? message.serializedBytes()) as [UInt8]?)?.count ?? 0) }
    let decode = batch { (try? M(serializedBytes: bytes)).map(digest) ?? 0 }
    return (bytes, [("swift-protobuf encode-array", encode), ("swift-protobuf decode", decode)])
}

func floats(_ count: Int) -> [Float] {
    CodecBenchmarkCase.floats(count)
}

func pushGradient(_ count: Int) -> Downpour_Bench_PushGradient {
    var message = Downpour_Bench_PushGradient()
    message.workerID = 3
    message.baseVersion = 42
    message.batchSize = 32
    message.loss = 0.25
    message.values = floats(count)
    message.tag = "w3"
    return message
}

func weights() -> Downpour_Bench_Weights {
    var message = Downpour_Bench_Weights()
    message.version = 42
    for (name, shape) in [("dense0.weight", [784, 128]), ("dense0.bias", [128]), ("dense1.weight", [128, 10]), ("dense1.bias", [10])] as [(String, [UInt32])] {
        var tensor = Downpour_Bench_Tensor()
        tensor.name = name
        tensor.shape = shape
        tensor.data = floats(Int(shape.reduce(1, *)))
        message.tensors.append(tensor)
    }
    return message
}

var heartbeat = Downpour_Bench_Heartbeat()
heartbeat.workerID = 3
heartbeat.seq = 1_234_567
heartbeat.unixNanos = 1_764_380_000_123_456_789

let theirs: [String: ([UInt8], [(String, (Int) -> UInt64)])] = [
    "heartbeat": swiftProtobufCase(heartbeat) { $0.seq },
    "push-gradient-1k": swiftProtobufCase(pushGradient(1000)) { UInt64($0.values.count) },
    "push-gradient-100k": swiftProtobufCase(pushGradient(100_000)) { UInt64($0.values.count) },
    "weights-mlp": swiftProtobufCase(weights()) { UInt64($0.tensors.count) },
]

var summary: [String] = []
for benchmark in CodecBenchmarkCase.all {
    guard let (bytes, protobufOperations) = theirs[benchmark.name] else { continue }
    precondition(bytes == benchmark.encoded, "\(benchmark.name): swift-protobuf and Downpour encode differently")
    let operations = benchmark.operations.map { ($0.0 == "memcpy" ? "memcpy" : "downpour " + $0.0, $0.1) } + protobufOperations
    for (operation, body) in operations {
        let nanoseconds = CodecTiming.medianNanosecondsPerOperation(runs: runs, minimumNanoseconds: 40e6, body)
        let megabytesPerSecond = Double(benchmark.encodedSize) / nanoseconds * 1e3
        print("compare \(benchmark.name) \(operation): \(CodecTiming.format(nanoseconds)) ns/op, \(CodecTiming.format(megabytesPerSecond)) MB/s (\(benchmark.encodedSize) bytes)")
        summary.append("\(benchmark.name).\(operation.split(separator: " ").joined(separator: "."))=\(CodecTiming.format(nanoseconds))")
    }
}
print("compare-summary runs=\(runs) " + summary.joined(separator: " ") + " checksum=\(CodecTiming.checksum)")
