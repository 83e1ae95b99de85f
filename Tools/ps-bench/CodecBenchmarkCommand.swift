import ArgumentParser
import BenchMessages
import WireCodec

/// `ps-bench codec`: encode and decode speed of the wire codec, against `memcpy` of the same bytes.
///
/// Prints one line per case and operation (the median of `--runs` timed runs after a warm-up), then
/// one machine-readable summary line.
struct CodecBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "Encode and decode speed of the wire codec against memcpy of the encoded bytes.",
        discussion: "Build with -c release. Prints one line per case and operation, then a summary line."
    )

    @Option(help: "Timed runs per figure; the median is reported.")
    var runs = 9

    @Option(help: "The least time one timed run takes, in milliseconds.")
    var milliseconds = 40

    @Option(help: "Only the cases whose name contains this text.")
    var filter: String?

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard milliseconds >= 1 else { throw ValidationError("--milliseconds must be at least 1") }
    }

    func run() throws {
        #if DEBUG
        print("warning: a debug build; figures mean little without -c release")
        #endif
        var summary: [String] = []
        for benchmark in CodecBenchmarkCase.all where filter.map({ benchmark.name.contains($0) }) ?? true {
            for (operation, body) in benchmark.operations {
                let nanoseconds = CodecTiming.medianNanosecondsPerOperation(
                    runs: runs, minimumNanoseconds: Double(milliseconds) * 1e6, body
                )
                let megabytesPerSecond = Double(benchmark.encodedSize) / nanoseconds * 1e3
                print(
                    "codec \(benchmark.name) \(operation): \(CodecTiming.format(nanoseconds)) ns/op, "
                        + "\(CodecTiming.format(megabytesPerSecond)) MB/s (\(benchmark.encodedSize) bytes)"
                )
                summary.append("\(benchmark.name).\(operation).ns=\(CodecTiming.format(nanoseconds))")
            }
        }
        print("codec-summary runs=\(runs) " + summary.joined(separator: " ") + " checksum=\(CodecTiming.checksum)")
    }
}
