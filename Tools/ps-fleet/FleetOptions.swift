import ArgumentParser
import Foundation
import ParameterServer

/// `ps-fleet`'s command line: the server, the fleet's size, its churn, how it stops, and what each
/// worker (and shard) runs. Every value is checked in ``validate()``, before a worker starts.
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

    @Option(help: "ps-shard processes to keep running as well, named shard-1, shard-2, ... (for ps-server --shards M: M, or more for spares).")
    var shards = 0

    @Option(help: ArgumentHelp("Mean seconds between shard churn events (a random shard SIGKILLed and replaced); no shard churn without it.", valueName: "seconds"))
    var shardChurnEvery: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("Further ps-shard arguments, separated by spaces, e.g. \"--listen-host 127.0.0.1\".", valueName: "arguments"))
    var shardArgs: String = ""

    @Option(help: ArgumentHelp("The ps-shard executable (default: the one next to ps-fleet).", valueName: "path"))
    var shardBinary: String?

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
        try validateShards()
    }

    private func validateShards() throws {
        guard (0...256).contains(shards) else { throw ValidationError("--shards must be 0...256, got \(shards)") }
        if shards == 0 {
            guard shardChurnEvery == nil, shardArgs.isEmpty, shardBinary == nil else {
                throw ValidationError("--shard-churn-every, --shard-args and --shard-binary need --shards")
            }
            return
        }
        if let shardChurnEvery {
            guard shardChurnEvery >= 0.1, shardChurnEvery.isFinite else { throw ValidationError("--shard-churn-every must be at least 0.1 seconds") }
        }
        if shardArgumentList.contains(where: { $0 == "--name" || $0.hasPrefix("--name=") }) {
            throw ValidationError("--shard-args must not contain --name (the fleet names its shards)")
        }
        if let shardBinary, !FileManager.default.isExecutableFile(atPath: shardBinary) {
            throw ValidationError("--shard-binary \(shardBinary) is not an executable file")
        }
    }

    /// `--worker-args` split on white space (no quoting: ps-worker's arguments need none).
    var workerArgumentList: [String] {
        workerArgs.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// `--shard-args` split on white space.
    var shardArgumentList: [String] {
        shardArgs.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// `churn every 10s on average (50% SIGKILL)`, or `no churn`, for the line ps-fleet starts with;
    /// with shards, theirs too.
    var churnDescription: String {
        var text = "no churn"
        if let churnEvery {
            text = "churn every \(String(format: "%g", churnEvery))s on average (\(Int((killFraction * 100).rounded()))% SIGKILL)"
        }
        guard shards > 0 else { return text }
        return text + "; \(shards) shard(s), " + (shardChurnEvery.map { "one SIGKILLed every \(String(format: "%g", $0))s on average" } ?? "no shard churn")
    }

    /// What the supervisor needs from these options, with what ps-fleet resolved at start: the worker
    /// and shard executables, the log directory and the seed.
    func supervisorConfiguration(executable: String, shardExecutable: String?, logDirectory: String, seed: UInt64) -> FleetSupervisor.Configuration {
        // Workers and shards both dial the server as HOST PORT RETRY.
        let server = [host, String(port), String(format: "%g", retry)]
        let workerPool = FleetSupervisor.Pool(
            prefix: "fleet", noun: "worker", size: workers, executable: executable, arguments: server,
            extraArguments: workerArgumentList, faults: inject, churnEvery: churnEvery.map { .seconds($0) },
            killFraction: killFraction, stream: ChurnSchedule.workerStream)
        // A shard's churn is always a kill: a shard that leaves gracefully is lost to the session all the same.
        let shardPool = shardExecutable.map {
            FleetSupervisor.Pool(
                prefix: "shard", noun: "shard", size: shards, executable: $0, arguments: server, extraArguments: shardArgumentList,
                churnEvery: shardChurnEvery.map { .seconds($0) }, killFraction: 1, stream: ChurnSchedule.shardStream)
        }
        return FleetSupervisor.Configuration(
            workers: workerPool, shards: shards > 0 ? shardPool : nil, logDirectory: logDirectory, seed: seed,
            duration: duration.map { .seconds($0) }, serverPID: serverPid.map { pid_t($0) },
            stopTimeout: .seconds(stopTimeout))
    }
}
