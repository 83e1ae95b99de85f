import Foundation
import Testing

/// Runs the built `ps-train` executable (built next to this test bundle by `swift build --build-tests`).
@Suite struct PSTrainTests {
    static var executable: URL? {
        var candidates: [URL] = []
        if let bundle = Bundle.main.executableURL { candidates.append(bundle.deletingLastPathComponent()) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug"))
        return candidates.map { $0.appendingPathComponent("ps-train") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Runs ps-train on a thread of its own: waiting on a process must not hold one of the few threads
    /// of Swift Testing's cooperative pool, which the suites running beside this one need.
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(arguments) })
            }
        }
    }

    private static func runBlocking(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        guard let executable = Self.executable else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "ps-train is not built; run swift build --build-tests"])
        }
        process.executableURL = executable
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func trainsOnASubsetAndPrintsTheSummaryLast() async throws {
        let (status, output) = try await Self.run([
            "--model", "mlp", "--hidden", "32", "--epochs", "2", "--train-limit", "1000", "--test-limit", "500",
        ])
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("BLAS: OpenBLAS ") == true)
        #expect(lines.filter { $0.hasPrefix("epoch ") }.count == 2)
        let summary = Dictionary(
            uniqueKeysWithValues: try #require(lines.last).split(separator: " ").map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            })
        #expect(summary["model"] == "mlp:32")
        #expect(summary["epochs"] == "2")
        #expect(summary["train_images"] == "1000")
        #expect(Double(summary["seconds"] ?? "") != nil)
        #expect((Double(summary["samples_per_second"] ?? "") ?? 0) > 0)
        let accuracy = try #require(Double(summary["test_accuracy"] ?? ""))
        #expect(accuracy > 0.7 && accuracy <= 1)
    }

    @Test func helpListsEveryOption() async throws {
        let (status, output) = try await Self.run(["--help"])
        #expect(status == 0)
        for option in [
            "--model", "--hidden", "--epochs", "--batch-size", "--optimizer", "--lr", "--schedule", "--threads",
            "--seed", "--data", "--train-limit", "--eval-every", "--eval-interval", "USAGE: ps-train",
        ] {
            #expect(output.contains(option), "--help lacks \(option)")
        }
    }

    @Test func rejectsBadOptions() async throws {
        let (status, output) = try await Self.run(["--model", "cnn", "--hidden", "64"])
        #expect(status != 0)
        #expect(output.contains("--hidden applies to --model mlp only"))
    }

    /// `--momentum 0` without `--optimizer` asks the MLP's own Nesterov for no momentum: plain SGD.
    @Test func momentumZeroTurnsTheFamilysNesterovIntoSGD() async throws {
        let (status, output) = try await Self.run(["--model", "mlp", "--hidden", "16", "--epochs", "1", "--train-limit", "256",
                                             "--test-limit", "100", "--momentum", "0"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("; sgd lr "), "\(output)")
    }

    /// `--eval-interval S` evaluates once each S seconds of training pass: at least once in a run of
    /// several intervals, and never more often than the intervals it trained for (no catching up).
    @Test func evaluatesEveryIntervalOfTrainingSeconds() async throws {
        let interval = 0.02
        let (status, output) = try await Self.run([
            "--model", "mlp", "--hidden", "64", "--epochs", "2", "--train-limit", "20000", "--test-limit", "200",
            "--eval-interval", "\(interval)",
        ])
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n")
        let trained = lines.filter { $0.hasPrefix("evaluation at epoch ") }.compactMap { line in
            line.split(separator: "trained ").last.flatMap { Double($0.prefix { $0 != " " }) }
        }
        let summary = try #require(lines.last)
        let seconds = try #require(summary.split(separator: " ").first { $0.hasPrefix("training_seconds=") }
            .flatMap { Double($0.dropFirst("training_seconds=".count)) })
        #expect(seconds > 2 * interval, "too fast to tell: \(summary)")
        #expect(trained.count >= 2, "\(output)")
        #expect(trained.count <= Int(seconds / interval) + 1, "\(trained.count) evaluations in \(seconds) s")
        #expect(trained == trained.sorted(), "\(trained)")
    }

    @Test func refusesAnIntervalThatIsNotAPositiveNumberOfSeconds() async throws {
        for bad in ["0", "-1", "nan", "inf"] {
            let (status, output) = try await Self.run(["--model", "mlp", "--epochs", "1", "--train-limit", "64", "--eval-interval=\(bad)"])
            #expect(status != 0, "\(output)")
            #expect(output.contains("--eval-interval must be a positive number of seconds"), "\(bad): \(output)")
        }
    }

    /// Nesterov without momentum, or a momentum outside 0..<1, once trapped inside the optimiser.
    @Test(arguments: [
        (["--optimizer", "nesterov", "--momentum", "0"], "nesterov needs a momentum above 0"),
        (["--optimizer", "momentum", "--momentum", "1"], "momentum must be in 0..<1"),
        (["--momentum=-0.5"], "momentum must be in 0..<1"),
    ])
    func refusesAMomentumItsOptimiserCannotRunWith(arguments: [String], reason: String) async throws {
        let (status, output) = try await Self.run(["--model", "mlp", "--epochs", "1", "--train-limit", "64"] + arguments)
        #expect(status != 0, "\(output)")
        #expect(output.contains(reason), "\(output)")
        #expect(!output.contains("precondition"), "\(output)")
    }
}
