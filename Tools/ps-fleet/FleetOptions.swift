import ArgumentParser
import Foundation
import ParameterServer

/// `ps-fleet`'s command line: the server, the fleet's size, its churn, how it stops, and what each
/// worker runs. Every value is checked in ``validate()``, before a worker starts.
struct FleetOptions: ParsableArguments {
    @Argument(help: "The server's host name or address.")
    var host: String

    @Argument(help: "The server's port.")
    var port: Int = 8888

    @Option(help: "Workers to keep running.")
    var workers: Int

    @Option(help: ArgumentHelp("Mean seconds between churn events (exponentially distributed); no churn without it.", valueName: "seconds"))
    var churnEvery: Double?

    @Option(help: "The share of churn events that SIGKILL a worker; the others stop it gracefully with SIGINT.")
    var killFraction: Double = 1

    @Option(help: "Seeds the churn schedule and each worker's fault seed (default: from the clock, printed at start).")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Stop after this many seconds (default: run until signalled).", valueName: "seconds"))
    var duration: Double?

    @Option(help: ArgumentHelp("Stop when this local process exits: the server's, so the fleet ends with the session.", valueName: "pid"))
    var serverPid: Int32?

    // Unconditional: the value itself starts with "--", which would otherwise be taken for one of ours.
    @Option(parsing: .unconditional, help: ArgumentHelp("Further ps-worker arguments, separated by spaces, e.g. \"--threads 2 --data /mnist\".", valueName: "arguments"))
    var workerArgs: String = ""

    @Option(help: ArgumentHelp(
        "Faults every worker injects (ps-worker --inject): delay=50ms, jitter=20ms, slowdown=3, crash-after=30s, drop-connection=0.01, seed=7. Without seed=, each worker gets its own seed derived from --seed.",
        valueName: "faults"))
    var inject: [String] = []

    @Option(help: ArgumentHelp("Seconds between a worker's connection attempts while the server is not up.", valueName: "seconds"))
    var retry: Double = 1

    @Option(help: ArgumentHelp("Seconds a worker has to leave after SIGINT before it is killed.", valueName: "seconds"))
    var stopTimeout: Double = 10

    @Option(help: ArgumentHelp("Directory for the workers' log files, created if missing (default: a new temporary directory).", valueName: "dir"))
    var logDir: String?

    @Option(help: ArgumentHelp("The ps-worker executable (default: the one next to ps-fleet).", valueName: "path"))
    var workerBinary: String?

    func validate() throws {
        guard !host.isEmpty else { throw ValidationError("HOST must not be empty") }
        guard (1...65535).contains(port) else { throw ValidationError("PORT must be 1...65535, got \(port)") }
        guard (1...1000).contains(workers) else { throw ValidationError("--workers must be 1...1000, got \(workers)") }
        if let churnEvery {
            guard churnEvery >= 0.1, churnEvery.isFinite else { throw ValidationError("--churn-every must be at least 0.1 seconds") }
        }
        guard (0...1).contains(killFraction) else { throw ValidationError("--kill-fraction must be from 0 to 1, got \(killFraction)") }
        if let duration {
            guard duration > 0, duration.isFinite else { throw ValidationError("--duration must be a positive number of seconds") }
        }
        if let serverPid {
            guard serverPid > 0 else { throw ValidationError("--server-pid must be a process ID") }
        }
        guard retry > 0, retry.isFinite else { throw ValidationError("--retry must be a positive number of seconds") }
        guard stopTimeout > 0, stopTimeout.isFinite else { throw ValidationError("--stop-timeout must be a positive number of seconds") }
        // The fleet names its workers; a fixed name would make every worker look like the same one.
        if workerArgumentList.contains(where: { $0 == "--name" || $0.hasPrefix("--name=") || $0 == "--inject" }) {
            throw ValidationError("--worker-args must not contain --name (the fleet names its workers) or --inject (use --inject)")
        }
        do {
            _ = try FaultInjection(parsing: inject)
        } catch {
            throw ValidationError("--inject: \(error)")
        }
        if let workerBinary, !FileManager.default.isExecutableFile(atPath: workerBinary) {
            throw ValidationError("--worker-binary \(workerBinary) is not an executable file")
        }
    }

    /// `--worker-args` split on white space (no quoting: ps-worker's arguments need none).
    var workerArgumentList: [String] {
        workerArgs.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// `churn every 10s on average (50% SIGKILL)`, or `no churn`, for the line ps-fleet starts with.
    var churnDescription: String {
        guard let churnEvery else { return "no churn" }
        return "churn every \(String(format: "%g", churnEvery))s on average (\(Int((killFraction * 100).rounded()))% SIGKILL)"
    }

    /// What the supervisor needs from these options, with what ps-fleet resolved at start: the worker
    /// executable, the log directory and the seed.
    func supervisorConfiguration(executable: String, logDirectory: String, seed: UInt64) -> FleetSupervisor.Configuration {
        FleetSupervisor.Configuration(
            size: workers, executable: executable,
            workerArguments: [host, String(port), String(format: "%g", retry)],
            extraArguments: workerArgumentList, faults: inject, logDirectory: logDirectory,
            churnEvery: churnEvery.map { .seconds($0) }, killFraction: killFraction, seed: seed,
            duration: duration.map { .seconds($0) }, serverPID: serverPid.map { pid_t($0) },
            stopTimeout: .seconds(stopTimeout))
    }
}
