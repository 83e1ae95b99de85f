import Foundation
import ParameterServer
import Testing

/// The commands' help and their answers to bad flags, as a user sees them.
@Suite(.timeLimit(.minutes(2)))
struct CommandLineTests {
    @Test func serverHelpDocumentsEveryOptionScriptsUse() throws {
        let help = try RunningProcess("ps-server", ["--help"])
        #expect(try help.waitForExit(timeout: .seconds(30)) == 0)
        let text = help.output.joined(separator: "\n")
        for option in ["--port", "--mode", "--workers", "--model", "--epochs", "--batch-size", "--local-steps",
                       "--optimizer", "--lr", "--max-staleness", "--staleness-policy", "--max-frame-bytes",
                       "--max-connections", "--handshake-timeout", "--heartbeat-timeout", "--token-file", "--token",
                       "--insecure", "DOWNPOUR_TOKEN"] {
            #expect(text.contains(option), "ps-server --help lacks \(option)")
        }
        #expect(text.contains("async, sync or ssp"))
    }

    @Test func workerHelpShowsTheOriginalArguments() throws {
        let help = try RunningProcess("ps-worker", ["--help"])
        #expect(try help.waitForExit(timeout: .seconds(30)) == 0)
        let text = help.output.joined(separator: "\n")
        #expect(text.contains("<host> [<port>] [<retry-interval>]"))
        for option in ["--data", "--threads", "--once", "--name", "--inject", "--token-file", "--token", "DOWNPOUR_TOKEN"] {
            #expect(text.contains(option), "ps-worker --help lacks \(option)")
        }
    }

    @Test(arguments: [
        ("ps-server", ["--mode", "turbo"], "turbo"),
        ("ps-server", ["--workers", "0"], "--workers must be at least 1"),
        ("ps-server", ["--eval-interval=0"], "--eval-interval must be a positive number of seconds"),
        ("ps-server", ["--hidden", "12,x"], "--hidden takes positive widths"),
        ("ps-server", ["--host", "0.0.0.0"], "(--token-file PATH or DOWNPOUR_TOKEN), TLS (--tls-cert and --tls-key), or pass --insecure to accept that"),
        ("ps-server", ["--token", "a", "--token-file", "b"], "give either --token or --token-file, not both"),
        ("ps-worker", ["127.0.0.1", "--token-file", "/nonexistent/token"], "--token-file /nonexistent/token: No such file or directory"),
        ("ps-worker", ["127.0.0.1", "70000"], "PORT must be 1...65535"),
        ("ps-worker", ["127.0.0.1", "8888", "0"], "RETRY_INTERVAL must be a positive number"),
        ("ps-worker", ["127.0.0.1", "--inject", "slowdown=0.5"], "expected a factor of at least 1"),
        ("ps-shard", ["127.0.0.1", "--listen", "9001"], "--listen 9001: expected HOST:PORT"),
        ("ps-shard", ["127.0.0.1", "--listen", "0.0.0.0:9001", "--listen-port", "9002"], "give one or the other"),
        ("ps-shard", ["127.0.0.1", "--tls-key", "k.pem"], "--tls-cert and --tls-key go together"),
    ])
    func badFlagsAreRefusedWithAClearMessage(command: String, arguments: [String], message: String) throws {
        let process = try RunningProcess(command, arguments)
        #expect(try process.waitForExit(timeout: .seconds(30)) != 0)
        #expect(process.output.contains { $0.contains(message) }, "\(process.output)")
    }

    /// The container image (Tools/scripts/build-image.sh) carries what these load: Foundation would
    /// bring libFoundation and ICU's 38 MB of data back into it, so the sources use FoundationEssentials.
    @Test(arguments: ["ps-server", "ps-worker", "ps-shard", "ps-train"])
    func executablesLoadNoFoundationOrICU(product: String) throws {
        let path = RunningProcess.productsDirectory.appendingPathComponent(product).path
        let ldd = try RunningProcess("/usr/bin/ldd", [path])
        #expect(try ldd.waitForExit(timeout: .seconds(30)) == 0)
        let libraries = ldd.output.joined(separator: "\n")
        #expect(libraries.contains("libswiftCore.so"), "ldd \(path) printed: \(libraries)")
        for forbidden in ["libFoundation.so", "lib_FoundationICU.so", "libFoundationInternationalization.so"] {
            #expect(!libraries.contains(forbidden), "\(product) loads \(forbidden)")
        }
    }

    /// The fleet benchmark with ps-worker's default offer (every encoding, and deltas), briefly: it
    /// must negotiate, push, pull and report, or BENCHMARKS.md's figures cannot be remade.
    @Test func fleetBenchmarkRunsWithTheDefaultExchangeAndReports() throws {
        let bench = try RunningProcess("ps-bench", ["fleet", "--workers", "2", "--parameters", "20000", "--warmup", "0.5",
                                                    "--seconds", "0.5", "--runs", "1", "--pull-every-unit"])
        #expect(try bench.waitForExit(timeout: .seconds(60)) == 0, "\(bench.output)")
        let summary = try #require(bench.output.last { $0.hasPrefix("summary ") }, "\(bench.output)")
        let fields = SummaryLine.parse(summary.dropFirst("summary ".count))
        #expect(fields["push_encoding"] == "sign(4096)" && fields["pull_encoding"] == "q8(256)", "\(summary)")
        #expect((Double(fields["samples_per_s"] ?? "") ?? 0) > 0, "\(summary)")
    }

    @Test func workerRefusesACorruptDataFileByName() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("downpour-corrupt-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // An IDX header announcing 10 images with no pixels after it.
        let header: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]
        try Data(header).write(to: directory.appendingPathComponent("train-images-idx3-ubyte"))
        try Data([0, 0, 8, 1, 0, 0, 0, 10] + [UInt8](repeating: 1, count: 10))
            .write(to: directory.appendingPathComponent("train-labels-idx1-ubyte"))
        let worker = try RunningProcess("ps-worker", ["127.0.0.1", "--data", directory.path])
        #expect(try worker.waitForExit(timeout: .seconds(30)) != 0)
        let text = worker.output.joined(separator: "\n")
        #expect(text.contains("train-images-idx3-ubyte"))
        #expect(text.contains("truncated"))
    }
}
