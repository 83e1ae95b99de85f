import ArgumentParser
import Foundation
import ParameterServer
import Reactor

/// `ps-fleet HOST [PORT] --workers N`: runs a fleet of `ps-worker` processes for demos and soak tests,
/// kills and replaces them on a seeded schedule, and stops them all cleanly.
@main
struct PSFleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-fleet",
        abstract: "Run N ps-worker processes against a server, with seeded churn, for demos and soak tests.",
        discussion: """
            Starts --workers workers named fleet-1, fleet-2, ... (ps-worker is found next to ps-fleet unless \
            --worker-binary is given); their output goes to one log file each in --log-dir. With --churn-every, \
            at random intervals averaging that many seconds, a random worker is killed with SIGKILL (or, for \
            the share of events --kill-fraction leaves over, stopped with SIGINT) and a new one takes its place. \
            A worker that exits by itself (say --inject crash-after=30s) is replaced too. A worker takes a few \
            seconds to load MNIST and join, so churn much faster than that mostly replaces workers that never \
            trained. The same --seed and \
            --workers give the same churn schedule. Each action prints one line, stamped with the time since \
            start:

              +12.3s killed fleet-3 (pid 1234); started fleet-7 (pid 1250)

            The fleet stops after --duration, when the process --server-pid exits, or on Ctrl-C (SIGINT) or \
            SIGTERM: every worker gets SIGINT and leaves gracefully; whoever is still running after \
            --stop-timeout is killed; every worker is reaped before ps-fleet exits. A second Ctrl-C kills \
            them at once. The last line printed is a machine-readable summary of key=value pairs (workers=, \
            started=, killed=, interrupted=, exited_by_themselves=, stragglers=, reason=, seconds=, seed=, \
            log_dir=). ps-fleet exits 0, or 1 if workers could not be started or kept running.

            Example: ps-fleet 127.0.0.1 8888 --workers 4 --churn-every 10 --seed 7 --inject delay=20ms
            """)

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
    private var workerArgumentList: [String] {
        workerArgs.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    func run() throws {
        unblockTerminationSignals()
        unblockChildSignals()
        closeInheritedDescriptorsOnExec()
        let executable = try workerBinary ?? ToolPaths.sibling("ps-worker", flag: "--worker-binary")
        if let serverPid, !processIsAlive(serverPid) {
            throw StartupError("--server-pid \(serverPid): no such process")
        }
        let logDirectory = try ToolPaths.logDirectory(logDir, prefix: "ps-fleet")
        let seed = self.seed ?? UInt64(UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970 * 1000)))
        let churn = churnEvery.map { "churn every \(String(format: "%g", $0))s on average (\(Int((killFraction * 100).rounded()))% SIGKILL)" } ?? "no churn"
        say("ps-fleet: \(workers) workers against \(host):\(port), \(churn), seed \(seed)")
        say("ps-fleet: worker logs in \(logDirectory)")

        let configuration = FleetSupervisor.Configuration(
            size: workers, executable: executable,
            workerArguments: [host, String(port), String(format: "%g", retry)],
            extraArguments: workerArgumentList, faults: inject, logDirectory: logDirectory,
            churnEvery: churnEvery.map { .seconds($0) }, killFraction: killFraction, seed: seed,
            duration: duration.map { .seconds($0) }, serverPID: serverPid.map { pid_t($0) },
            stopTimeout: .seconds(stopTimeout))
        let loop = try EventLoop()
        let fleet = FleetSupervisor(configuration: configuration, loop: loop) { say($0) }
        fleet.onFinished = { loop.stop() }
        let watchers = [
            try loop.watchSignal(SIGINT) { fleet.stop(reason: "SIGINT") },
            try loop.watchSignal(SIGTERM) { fleet.stop(reason: "SIGTERM") },
        ]
        try fleet.start()
        try loop.run()
        withExtendedLifetime(watchers) {}

        say(fleet.tally.sentence)
        say(fleet.tally.summary(seconds: fleet.elapsed, seed: seed, logDirectory: logDirectory).description)
        if fleet.failed { throw ExitCode.failure }
    }
}

/// Makes SIGCHLD deliverable: the fleet reaps its workers when it arrives.
///
/// Like SIGINT and SIGTERM, SIGCHLD can arrive blocked from the parent (a test runner's threads block it),
/// and then no worker's exit would ever be noticed. Called before any thread starts, so all inherit it.
func unblockChildSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGCHLD)
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
}

/// Prints a line at once: a pipe's reader (a test, `tee`) sees each action as it happens, not when a
/// buffer fills.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// A failure to start, printed by ArgumentParser as "Error: ..." with exit status 1.
struct StartupError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
