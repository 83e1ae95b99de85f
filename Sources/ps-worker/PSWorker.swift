import ArgumentParser
import Foundation
import Learning
import ParameterServer
import Reactor
import TensorEncoding

/// `ps-worker HOST [PORT] [RETRY_INTERVAL]`: a long-lived worker that joins every session.
@main
struct PSWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-worker",
        abstract: "A long-lived parameter-server worker that joins every training session.",
        discussion: """
            Connects to the server at HOST:PORT, retrying every RETRY_INTERVAL seconds until it is up, and \
            prints one line per failed attempt. It trains the work units the server hands out, on its own \
            copy of MNIST. After a session it waits for the next one (continuous mode) unless --once is \
            given. Ctrl-C (SIGINT) or SIGTERM leaves gracefully: the server requeues this worker's units at once.

            Example: ps-worker 127.0.0.1 8888 5
            """)

    @Argument(help: "The server's host name or address.")
    var host: String

    @Argument(help: "The server's port.")
    var port: Int = 8888

    @Argument(help: "Seconds between connection attempts while the server is not up.")
    var retryInterval: Double = 5

    @Option(help: "MNIST directory (default: Data/mnist, found from the executable, the source or the current directory).")
    var data: String?

    @Option(help: "OpenBLAS threads for training.")
    var threads = 1

    @Flag(help: "Exit after one session instead of waiting for the next.")
    var once = false

    @Option(help: "The name this worker gives the server (default: worker-PID@HOSTNAME).")
    var name: String?

    @Option(help: "Work units to hold at once, so the next is here when one finishes.")
    var unitsAhead = 2

    @Option(help: ArgumentHelp(
        "Read the server's token from this file (a trailing newline is ignored; keep it chmod 600). Without --token-file or --token, the environment variable DOWNPOUR_TOKEN is used if set. With a token, the worker also requires the server to prove it holds it.",
        valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp(AuthenticationToken.flagHelp, valueName: "secret"))
    var token: String?

    @Option(help: ArgumentHelp("Encodings to offer the server besides fp32, comma-separated (default: all of fp16, bf16, q8, topk, sign); \"fp32\" offers none, as a worker written before encodings.", valueName: "list"))
    var encodings: String?

    @Option(help: ArgumentHelp(
        "Faults to inject, as key=value pairs (repeatable or comma-separated): delay=50ms, jitter=20ms, slowdown=3, crash-after=30s, drop-connection=0.01, seed=7.",
        valueName: "faults"))
    var inject: [String] = []

    func validate() throws {
        guard !host.isEmpty else { throw ValidationError("HOST must not be empty") }
        guard (1...65535).contains(port) else { throw ValidationError("PORT must be 1...65535, got \(port)") }
        guard retryInterval > 0, retryInterval.isFinite else { throw ValidationError("RETRY_INTERVAL must be a positive number of seconds") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard unitsAhead >= 1 else { throw ValidationError("--units-ahead must be at least 1") }
        do {
            _ = try FaultInjection(parsing: inject)
        } catch {
            throw ValidationError("--inject: \(error)")
        }
        _ = try resolvedToken()
        _ = try offeredEncodings()
    }

    /// The encodings --encodings names, checked against those this worker knows.
    private func offeredEncodings() throws -> [String] {
        guard let encodings else { return TensorEncoding.wireNames }
        let names = encodings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0 != "fp32" }
        for name in names where !TensorEncoding.wireNames.contains(name) {
            throw ValidationError("--encodings: unknown encoding \"\(name)\" (known: fp32, \(TensorEncoding.wireNames.joined(separator: ", ")))")
        }
        return names
    }

    /// The token from --token, --token-file or the environment, if any.
    private func resolvedToken() throws -> AuthenticationToken.Resolution? {
        do {
            return try AuthenticationToken.resolve(flag: token, file: tokenFile)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        unblockTerminationSignals()
        BLAS.configure(threads: threads)
        let directory = try MNIST.dataDirectory(override: data)
        let train = try MNIST.load(directory: directory, images: MNIST.trainImages, labels: MNIST.trainLabels)
        let workerName = name ?? "worker-\(getpid())@\(ProcessInfo.processInfo.hostName)"
        print("ps-worker \(workerName): \(train.count) training images from \(directory); "
            + "BLAS: OpenBLAS \(BLAS.kernelName) kernels, \(threads) thread(s)")
        let token = try resolvedToken()
        for warning in token?.warnings ?? [] { print("WARNING: \(warning)") }
        if let token {
            print("authentication: token from \(token.source); the server must prove it holds it too")
        }

        var configuration = WorkerConfiguration(
            host: host, port: port, retryInterval: .milliseconds(Int(retryInterval * 1000)), name: workerName)
        configuration.threads = threads
        configuration.once = once
        configuration.unitsAhead = unitsAhead
        configuration.faults = try FaultInjection(parsing: inject)
        configuration.encodings = try offeredEncodings()
        configuration.token = token?.token

        let loop = try EventLoop()
        let worker = WorkerRuntime(
            configuration: configuration, loop: loop, trainSampleCount: train.count,
            log: { line in
                print(line)
                fflush(nil)
            },
            makeModel: { specification in
                MNISTWorkerModel(description: try ModelDescription(specification: specification), trainSet: train)
            })
        let status = ExitStatus()
        worker.onExit = { code in
            status.code = code
            loop.stop()
        }
        var interrupts = 0
        let interrupted = {
            interrupts += 1
            if interrupts > 1 {
                // A second Ctrl-C does not wait for the goodbye to be written.
                status.code = 130
                loop.stop()
            } else {
                worker.leave(reason: "interrupted")
            }
        }
        let watchers = [try loop.watchSignal(SIGINT, interrupted), try loop.watchSignal(SIGTERM, interrupted)]
        worker.start()
        try loop.run()
        withExtendedLifetime(watchers) {}
        if status.code != 0 { throw ExitCode(status.code) }
    }
}

/// The process's exit status, set from loop callbacks.
final class ExitStatus: @unchecked Sendable {
    // Only touched on the loop thread, and read after the loop has stopped.
    var code: Int32 = 0
}
